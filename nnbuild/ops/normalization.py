"""Normalization: BatchNormalization (inference), InstanceNormalization, LayerNormalization,
LRN, Softmax and LogSoftmax. Element type: float32. Kernels live in hal/<target>/norm.c.

Older opset forms are canonicalized:
- BatchNormalization: ``is_test``, ``consumed_inputs`` and ``momentum`` are dropped; before
  opset 9 ``spatial=0`` (statistics per feature, parameters shaped C x D1 x ... x Dn) with
  constant parameters becomes ``Mul`` + ``Add``, otherwise it stays as ``spatial=0``.
- Softmax / LogSoftmax before opset 13 flatten the input to 2-D at ``axis`` (default 1) and
  normalise over all trailing dims: the node keeps ``axis`` and gets ``coerce_2d=1``. From
  opset 13 they normalise over the single ``axis`` (default -1).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..codegen.loops import c_literal, compute_ctype
from ..ir.graph import Node, TensorType
from .index import block, load, store
from .registry import InferContext, Op, normalize_axis, register

F32 = dtypes.FLOAT32


def _require_f32(ctx: InferContext, indices, min_rank: int = 1) -> TensorType:
    for i in indices:
        if ctx.has(i) and ctx.types[i].dtype != F32:
            raise ctx.fail(f"input {i} ({ctx.node.inputs[i]}) has element type "
                           f"{ctx.types[i].dtype}; supported: f32")
    x = ctx.types[0]
    if x.rank < min_rank:
        raise ctx.fail(f"input {x} needs rank >= {min_rank}")
    return x


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _f32(value) -> str:
    """The shortest float literal that reads back as the same float32: 1e-05f, not
    9.999999747378752e-06f."""
    v = np.float32(value)
    return f"{str(v)}f" if np.isfinite(v) else c_literal(v, F32)


# --- batch normalization ---------------------------------------------------------------------
@register("BatchNormalization", since=1)
class BatchNormalization(Op):
    """y = (x - mean) / sqrt(var + epsilon) * scale + bias, per channel (axis 1).
    With training_mode=1 mean and var are the batch's (over every axis but 1, var biased) and
    the optional outputs are running_mean = input_mean * momentum + mean * (1 - momentum) and
    running_var likewise."""
    TRAINING_ONLY = ("is_test", "consumed_inputs", "momentum")

    def canonicalize(self, node, version, graph):
        dropped = self.TRAINING_ONLY[:2] if node.attr("training_mode", 0) else self.TRAINING_ONLY
        attrs = {k: v for k, v in node.attrs.items() if k not in dropped}
        if version >= 9 or attrs.pop("spatial", 1):
            return [node.replace(attrs=attrs)]
        # BN(x, s, b, m, v) {spatial=0}  =>  Add(Mul(x, s / sqrt(v + eps)), b - m * ...)
        params = node.inputs[1:5]
        if len(node.outputs) > 1 or not all(graph.is_constant(p) for p in params):
            return [node.replace(attrs=dict(attrs, spatial=0))]
        scale, bias, mean, var = (np.asarray(graph.constants[p], np.float64) for p in params)
        s = scale / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
        y = node.outputs[0]
        s_name = graph.add_constant(graph.unique_name(f"{y}_scale"), s.astype(np.float32))
        t_name = graph.add_constant(graph.unique_name(f"{y}_shift"),
                                    (bias - mean * s).astype(np.float32))
        scaled = graph.unique_name(f"{y}_scaled")
        return [Node("Mul", (node.inputs[0], s_name), (scaled,), {}, node.sources),
                Node("Add", (scaled, t_name), (y,), {}, node.sources)]

    def _layout(self, node: Node, shape: tuple) -> tuple:
        """(batch, channels, inner): per-feature statistics (spatial=0) see one channel per
        element of a sample."""
        if node.attr("spatial", 1):
            return shape[0], shape[1], _size(shape[2:])
        return shape[0], _size(shape[1:]), 1

    def infer(self, ctx):
        x = _require_f32(ctx, range(5), min_rank=2)
        if len(ctx.types) < 5:
            raise ctx.fail("needs inputs X, scale, B, input_mean, input_var")
        channels = self._layout(ctx.node, x.shape)[1]
        for i, what in enumerate(("scale", "B", "input_mean", "input_var"), start=1):
            if ctx.types[i].size != channels:
                raise ctx.fail(f"{what} {ctx.types[i]} must hold {channels} values for input {x}")
            if ctx.types[i].shape != ctx.types[1].shape:     # the folding pass combines them
                raise ctx.fail(f"{what} {ctx.types[i]} and scale {ctx.types[1]} differ in shape")
        extra = [o for o in ctx.node.outputs[1:] if o]
        used = set(ctx.graph.outputs) | set(ctx.graph.consumers())
        if ctx.node.attr("training_mode", 0):
            if len(ctx.node.outputs) > 3:
                raise ctx.fail("training_mode=1 has outputs Y, running_mean, running_var")
        elif any(o in used for o in extra):
            raise ctx.fail("the running/saved statistics outputs are training-only and not "
                           "supported; only Y may be used")
        # unread extra outputs keep their declared role's type and are never written
        return [x] + [ctx.types[3 if k % 2 == 0 else 4] for k in range(len(ctx.node.outputs) - 1)]

    def reference(self, node, x, scale, bias, mean, var):
        batch, channels, inner = self._layout(node, x.shape)
        shape = (batch, channels, inner)
        p = [np.asarray(a, np.float64).reshape(1, channels, 1) for a in (scale, bias, mean, var)]
        extra = [None] * (len(node.outputs) - 1)
        if node.attr("training_mode", 0):
            wide = x.reshape(shape).astype(np.float64)
            batch_mean, batch_var = wide.mean(axis=(0, 2)), wide.var(axis=(0, 2))
            momentum = float(node.attr("momentum", 0.9))
            running = [p[2].reshape(-1) * momentum + batch_mean * (1 - momentum),
                       p[3].reshape(-1) * momentum + batch_var * (1 - momentum)]
            extra = [r.astype(a.dtype) for r, a in zip(running, (mean, var))][:len(extra)]
            p[2], p[3] = batch_mean.reshape(1, channels, 1), batch_var.reshape(1, channels, 1)
        y = (x.reshape(shape) - p[2]) / np.sqrt(p[3] + float(node.attr("epsilon", 1e-5)))
        y = y * p[0] + p[1]
        return [y.astype(x.dtype).reshape(x.shape)] + extra

    def fold(self, ctx):
        folded = super().fold(ctx)
        return None if folded is None or len(folded) > 1 else folded

    def flops(self, node, graph):
        return 2 * graph.types[node.inputs[0]].size

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        batch, channels, inner = self._layout(node, ctx.shape(x))
        if node.attr("training_mode", 0):
            return self.lower_training(node, ctx, batch, channels, inner)
        ctx.call("norm", "batchnorm_f32", ctx.ptr(x), ctx.ptr(y),
                 *(ctx.ptr(p) for p in node.inputs[1:5]),
                 _f32(node.attr("epsilon", 1e-5)), batch, channels, inner)

    def lower_training(self, node, ctx, batch, channels, inner):
        """Batch statistics per channel in double, then y and the running statistics."""
        x, scale, bias, mean, var = node.inputs[:5]
        outs = list(node.outputs) + [""] * (3 - len(node.outputs))
        count, momentum = batch * inner, float(node.attr("momentum", 0.9))
        at = f"(n * {channels} + c) * {inner} + i"
        lines = [f"const float *x = {ctx.ptr(x)};", f"float *y = {ctx.ptr(outs[0])};",
                 f"const float *scale = {ctx.ptr(scale)}, *bias = {ctx.ptr(bias)};",
                 f"for (size_t c = 0; c < {channels}; ++c) {{",
                 "    double sum = 0, squares = 0;",
                 f"    for (size_t n = 0; n < {batch}; ++n)",
                 f"        for (size_t i = 0; i < {inner}; ++i)",
                 f"            sum += x[{at}];",
                 f"    const double mean = sum / {count};",
                 f"    for (size_t n = 0; n < {batch}; ++n)",
                 f"        for (size_t i = 0; i < {inner}; ++i)",
                 f"            squares += (x[{at}] - mean) * (x[{at}] - mean);",
                 f"    const double var = squares / {count};",
                 f"    const double inv = 1.0 / sqrt(var + {float(node.attr('epsilon', 1e-5))!r});",
                 f"    for (size_t n = 0; n < {batch}; ++n)",
                 f"        for (size_t i = 0; i < {inner}; ++i)",
                 f"            y[{at}] = (float)((x[{at}] - mean) * inv * scale[c] + bias[c]);"]
        for out, given, stat in ((outs[1], mean, "mean"), (outs[2], var, "var")):
            if out:
                lines.append(f"    {ctx.ptr(out)}[c] = (float)({ctx.ptr(given)}[c] * "
                             f"{momentum!r} + {stat} * {1 - momentum!r});")
        lines.append("}")
        ctx.emit("{\n" + "\n".join("    " + line for line in lines) + "\n}")


# --- instance and layer normalization --------------------------------------------------------
def _normalize(x: np.ndarray, axes: tuple, epsilon: float) -> tuple:
    """(normalised x, mean, 1 / std) over ``axes``, in float64."""
    x = x.astype(np.float64)
    mean = x.mean(axis=axes, keepdims=True)
    inv = 1 / np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + epsilon)
    return (x - mean) * inv, mean, inv


@register("InstanceNormalization", since=1)
class InstanceNormalization(Op):
    """y = (x - mean) / sqrt(var + epsilon) * scale[c] + bias[c], statistics per (n, c)"""
    def canonicalize(self, node, version, graph):
        return [node.replace(attrs={k: v for k, v in node.attrs.items()
                                    if k != "consumed_inputs"})]

    def infer(self, ctx):
        x = _require_f32(ctx, range(3), min_rank=3)
        for i, what in ((1, "scale"), (2, "B")):
            if ctx.types[i].size != x.shape[1]:
                raise ctx.fail(f"{what} {ctx.types[i]} must hold {x.shape[1]} values")
        return [x]

    def reference(self, node, x, scale, bias):
        norm, _, _ = _normalize(x, tuple(range(2, x.ndim)), float(node.attr("epsilon", 1e-5)))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return [(norm * scale.reshape(shape) + bias.reshape(shape)).astype(x.dtype)]

    def flops(self, node, graph):
        return 5 * graph.types[node.inputs[0]].size

    def lower(self, node, ctx):
        x = node.inputs[0]
        shape = ctx.shape(x)
        ctx.call("norm", "instancenorm_f32", ctx.ptr(x), ctx.ptr(node.outputs[0]),
                 ctx.ptr(node.inputs[1]), ctx.ptr(node.inputs[2]),
                 _f32(node.attr("epsilon", 1e-5)), shape[0], shape[1], _size(shape[2:]))


@register("LayerNormalization", since=17)
class LayerNormalization(Op):
    """y = (x - mean) / sqrt(var + epsilon) * scale + bias, statistics over dims axis..-1;
    optional outputs Mean and InvStdDev (shape x.shape[:axis] + 1s)"""
    def _axis(self, node: Node, rank: int) -> int:
        return normalize_axis(int(node.attr("axis", -1)), rank, node)

    def infer(self, ctx):
        x = _require_f32(ctx, range(3))
        if ctx.node.attr("stash_type", 1) != 1:
            raise ctx.fail(f"stash_type {ctx.node.attr('stash_type')} is not supported "
                           f"(supported: 1, float32)")
        axis = self._axis(ctx.node, x.rank)
        normalized = x.shape[axis:]
        for i, what in ((1, "Scale"), (2, "B")):
            if not ctx.has(i):
                continue
            t = ctx.types[i]
            try:
                fits = np.broadcast_shapes(t.shape, normalized) == tuple(normalized)
            except ValueError:
                fits = False
            if not fits:
                raise ctx.fail(f"{what} {t} does not broadcast to the normalized shape "
                               f"{list(normalized)}")
            if t.size != _size(normalized) and ctx.node.inputs[i] not in ctx.graph.constants:
                raise ctx.fail(f"{what} {t} must hold {_size(normalized)} values when it is "
                               f"not a constant")
        stats = TensorType(F32, x.shape[:axis] + (1,) * (x.rank - axis))
        return [x, stats, stats]

    def reference(self, node, x, scale, bias=None):
        axis = self._axis(node, x.ndim)
        norm, mean, inv = _normalize(x, tuple(range(axis, x.ndim)),
                                     float(node.attr("epsilon", 1e-5)))
        y = norm * scale + (0 if bias is None else bias)
        return [y.astype(x.dtype), mean.astype(np.float32), inv.astype(np.float32)]

    def flops(self, node, graph):
        return 6 * graph.types[node.inputs[0]].size

    def _param(self, ctx, name: str, normalized: tuple) -> str:
        """A pointer to the parameter, expanded at compile time where it broadcasts."""
        if ctx.type(name).size == _size(normalized):
            return ctx.ptr(name)
        full = np.ascontiguousarray(np.broadcast_to(ctx.graph.constants[name], normalized))
        return ctx.weight(f"{name}@{'x'.join(map(str, normalized))}", full)

    def lower(self, node, ctx):
        x = node.inputs[0]
        shape = ctx.shape(x)
        axis = self._axis(node, len(shape))
        normalized = shape[axis:]
        bias = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else ""
        outs = list(node.outputs) + [""] * (3 - len(node.outputs))
        ctx.call("norm", "layernorm_f32", ctx.ptr(x), ctx.ptr(outs[0]),
                 self._param(ctx, node.inputs[1], normalized),
                 self._param(ctx, bias, normalized) if bias else "NULL",
                 ctx.ptr(outs[1]) if outs[1] else "NULL",
                 ctx.ptr(outs[2]) if outs[2] else "NULL",
                 _f32(node.attr("epsilon", 1e-5)), _size(shape[:axis]), _size(normalized))


@register("RMSNormalization", since=23)
class RMSNormalization(Op):
    """y = x / sqrt(mean(x^2 over dims axis..-1) + epsilon) * scale; any float type, the mean
    of squares in double"""
    def _axis(self, node: Node, rank: int) -> int:
        return normalize_axis(int(node.attr("axis", -1)), rank, node)

    def infer(self, ctx):
        x = ctx.types[0]
        if not x.dtype.is_float:
            raise ctx.fail(f"element type {x.dtype}; supported: f32, f64, f16, bf16")
        normalized = x.shape[self._axis(ctx.node, x.rank):]
        scale = ctx.types[1]
        try:
            fits = np.broadcast_shapes(scale.shape, normalized) == tuple(normalized)
        except ValueError:
            fits = False
        if not fits:
            raise ctx.fail(f"scale {scale} does not broadcast to the normalized shape "
                           f"{list(normalized)}")
        if scale.size != _size(normalized) and ctx.node.inputs[1] not in ctx.graph.constants:
            raise ctx.fail(f"scale {scale} must hold {_size(normalized)} values when it is "
                           f"not a constant")
        return [x]

    def reference(self, node, x, scale):
        axes = tuple(range(self._axis(node, x.ndim), x.ndim))
        wide = x.astype(np.float64)
        rms = np.sqrt((wide * wide).mean(axis=axes, keepdims=True)
                      + float(node.attr("epsilon", 1e-5)))
        return [(wide / rms * scale.astype(np.float64)).astype(x.dtype)]

    def flops(self, node, graph):
        return 4 * graph.types[node.inputs[0]].size

    def lower(self, node, ctx):
        x, scale = node.inputs[:2]
        shape, dtype = ctx.shape(x), ctx.type(x).dtype
        axis = self._axis(node, len(shape))
        rows, size = _size(shape[:axis]), _size(shape[axis:])
        if rows * size == 0:
            return
        scale_ptr = LayerNormalization._param(self, ctx, scale, shape[axis:])
        sdtype = ctx.type(scale).dtype
        epsilon = repr(float(node.attr("epsilon", 1e-5)))
        value = f"(double){load(ctx, dtype, 'x[r * SIZE + j]'.replace('SIZE', str(size)))}"
        gain = f"(double){load(ctx, sdtype, 's[j]')}"
        result = store(ctx, dtype, f"({compute_ctype(dtype)})({value} * inv * {gain})")
        ctx.emit(block([
            f"const {dtype.ctype} *x = {ctx.ptr(x)};",
            f"const {sdtype.ctype} *s = {scale_ptr};",
            f"{dtype.ctype} *y = {ctx.ptr(node.outputs[0])};",
            f"for (size_t r = 0; r < {rows}; ++r) {{",
            "    double squares = 0;",
            f"    for (size_t j = 0; j < {size}; ++j) {{",
            f"        const double v = {value};",
            "        squares += v * v;",
            "    }",
            f"    const double inv = 1.0 / sqrt(squares / {size} + {epsilon});",
            f"    for (size_t j = 0; j < {size}; ++j)",
            f"        y[r * {size} + j] = {result};",
            "}"]))


# --- local response normalization ------------------------------------------------------------
@register("LRN", since=1)
class LRN(Op):
    """y = x / (bias + alpha / size * sum of x^2 over `size` neighbouring channels) ^ beta"""
    def infer(self, ctx):
        x = _require_f32(ctx, [0], min_rank=3)
        if int(ctx.node.attr("size", 0)) < 1:
            raise ctx.fail("attribute size (the channel window) must be a positive integer")
        return [x]

    def reference(self, node, x):
        size = int(node.attr("size"))
        alpha, beta = float(node.attr("alpha", 1e-4)), float(node.attr("beta", 0.75))
        bias = float(node.attr("bias", 1.0))
        channels = x.shape[1]
        squares = x.astype(np.float64) ** 2
        total = np.zeros_like(squares)
        before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
        for c in range(channels):
            total[:, c] = squares[:, max(0, c - before):min(channels, c + after + 1)].sum(axis=1)
        return [(x / (bias + alpha / size * total) ** beta).astype(x.dtype)]

    def flops(self, node, graph):
        return (2 * int(node.attr("size")) + 3) * graph.types[node.inputs[0]].size

    def lower(self, node, ctx):
        x = node.inputs[0]
        shape = ctx.shape(x)
        ctx.call("norm", "lrn_f32", ctx.ptr(x), ctx.ptr(node.outputs[0]), shape[0], shape[1],
                 _size(shape[2:]), int(node.attr("size")), _f32(node.attr("alpha", 1e-4)),
                 _f32(node.attr("beta", 0.75)), _f32(node.attr("bias", 1.0)))


# --- softmax ---------------------------------------------------------------------------------
class SoftmaxBase(Op):
    kernel = ""

    def canonicalize(self, node, version, graph):
        # before 13: Softmax(x) {axis=a}  =>  Softmax(x) {axis=a, coerce_2d=1}
        if version >= 13:
            return [node]
        axis = int(node.attr("axis", 1))
        if axis == -1:       # the trailing dims are just the last one: the same as opset 13
            return [node.replace(attrs={"axis": -1})]
        return [node.replace(attrs={"axis": axis, "coerce_2d": 1})]

    def lines(self, node: Node, shape: tuple) -> tuple:
        """(outer, n, inner): normalise over n elements `inner` apart."""
        axis = normalize_axis(int(node.attr("axis", -1)), len(shape), node)
        if node.attr("coerce_2d", 0):
            return _size(shape[:axis]), _size(shape[axis:]), 1
        return _size(shape[:axis]), shape[axis], _size(shape[axis + 1:])

    def infer(self, ctx):
        x = ctx.types[0]
        if not x.dtype.is_float:
            raise ctx.fail(f"element type {x.dtype}; supported: f32, f64, f16, bf16")
        self.lines(ctx.node, x.shape)      # checks the axis
        return [x]

    def reference(self, node, x):
        outer, n, inner = self.lines(node, x.shape)
        v = x.astype(np.float64).reshape(outer, n, inner)
        shifted = v - v.max(axis=1, keepdims=True)
        log_sum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        y = self.finish(shifted, log_sum)
        return [y.astype(x.dtype).reshape(x.shape)]

    def flops(self, node, graph):
        return 4 * graph.types[node.inputs[0]].size

    def lower(self, node, ctx):
        x = node.inputs[0]
        dtype = ctx.type(x).dtype
        if dtype == F32:
            ctx.call("norm", self.kernel, ctx.ptr(x), ctx.ptr(node.outputs[0]),
                     *self.lines(node, ctx.shape(x)))
            return
        # f64, f16, bf16: a loop in double
        outer, n, inner = self.lines(node, ctx.shape(x))
        if outer * n * inner == 0:
            return
        at = f"(o * {n} + k) * {inner} + i"
        value = f"(double){load(ctx, dtype, f'x[{at}]')}"
        finish = self.c_finish.replace("VALUE", value)
        result = store(ctx, dtype, f"({compute_ctype(dtype)})({finish})")
        ctx.emit(block([
            f"const {dtype.ctype} *x = {ctx.ptr(x)};",
            f"{dtype.ctype} *y = {ctx.ptr(node.outputs[0])};",
            f"for (size_t o = 0; o < {outer}; ++o)",
            f"    for (size_t i = 0; i < {inner}; ++i) {{",
            "        double top = -INFINITY, sum = 0;",
            f"        for (size_t k = 0; k < {n}; ++k) {{",
            f"            const double v = {value};",
            "            top = v > top ? v : top;",
            "        }",
            f"        for (size_t k = 0; k < {n}; ++k)",
            f"            sum += exp({value} - top);",
            f"        for (size_t k = 0; k < {n}; ++k)",
            f"            y[{at}] = {result};",
            "    }"]))


@register("Softmax", since=1)
class Softmax(SoftmaxBase):
    """y = exp(x - max) / sum(exp(x - max)) along axis"""
    kernel = "softmax_f32"
    c_finish = "exp(VALUE - top) / sum"

    def finish(self, shifted, log_sum):
        return np.exp(shifted - log_sum)


@register("LogSoftmax", since=1)
class LogSoftmax(SoftmaxBase):
    """y = x - max - log(sum(exp(x - max))) along axis"""
    kernel = "logsoftmax_f32"
    c_finish = "VALUE - top - log(sum)"

    def finish(self, shifted, log_sum):
        return shifted - log_sum
