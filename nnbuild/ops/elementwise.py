"""Elementwise ops: unary math and activations, n-ary arithmetic with numpy broadcasting,
comparisons and logic, Where, Cast, Clip, PRelu, Identity and Dropout.

Each op is one C expression per element; codegen writes it as a loop nest specialised to the
shapes (``codegen.loops.broadcast_loop``), for every element type.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..codegen.loops import (Scalar, broadcast_loop, broadcast_shape, c_literal, compute_ctype,
                             emit_nest, encode_narrow, load_value, math_fn, store_value)
from ..errors import ModelError
from ..ir.graph import Node, TensorType
from .registry import InferContext, Op, register

_erf = np.vectorize(math.erf, otypes=[np.float64])


# --- unary -----------------------------------------------------------------------------------
class Unary(Op):
    """y = f(x), same type and shape."""
    def infer(self, ctx: InferContext) -> list:
        return [ctx.types[0]]

    def c_expr(self, node: Node, x: str, dtype) -> str:
        raise NotImplementedError

    def np_fn(self, node: Node, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def reference(self, node, x):
        return [np.asarray(self.np_fn(node, x)).astype(x.dtype)]

    def lower(self, node, ctx) -> None:
        dtype = ctx.type(node.inputs[0]).dtype
        broadcast_loop(ctx, node.outputs[0], [node.inputs[0]],
                       lambda v: self.c_expr(node, v[0], dtype))


def _unary(op: str, since: int, c, ref, doc: str):
    """Register a unary op from a C expression template ({x}, {f:name} math functions) and a
    numpy reference; attributes with defaults are passed to both as keywords."""
    @register(op, since=since)
    class _Op(Unary):
        __doc__ = doc

        def c_expr(self, node, x, dtype):
            return c(node, x, dtype)

        def np_fn(self, node, x):
            return ref(node, x)
    _Op.__name__ = op
    return _Op


def _lit(node, key, default, dtype):
    return c_literal(node.attr(key, default), dtype)


def _select(cond: str, a: str, b: str, dtype) -> str:
    """cond ? a : b; for float, nn_vm_select (hal/nn_vmath.h) on the bits, as GCC does not
    if-convert a float ?: whose arms compute, which stops the loop's vectorisation."""
    if compute_ctype(dtype) == "float":
        return f"nn_vm_select({cond}, {a}, {b})"
    return f"{cond} ? {a} : {b}"


def _clamp01(v: str, dtype) -> str:
    """max(0, min(1, v)) (NaN: 1 through fmin/fmax; for float NaN stays NaN, as in numpy)."""
    if compute_ctype(dtype) == "float":
        return f"nn_vm_clamp01({v})"
    return f"{math_fn('fmax', dtype)}(0, {math_fn('fmin', dtype)}(1, {v}))"


_unary("Relu", 6, lambda n, x, t: _select(f"{x} > 0", x, "0", t), lambda n, x: np.maximum(x, 0),
       "y = max(x, 0)")
_unary("Abs", 6, lambda n, x, t: f"{x} < 0 ? -{x} : {x}" if t.short[0] != "u" else x,
       lambda n, x: np.abs(x), "y = |x|")
_unary("Neg", 6, lambda n, x, t: f"-{x}", lambda n, x: np.negative(x), "y = -x")
_unary("Exp", 6, lambda n, x, t: f"{math_fn('exp', t)}({x})", lambda n, x: np.exp(x), "y = e^x")
_unary("Log", 6, lambda n, x, t: f"{math_fn('log', t)}({x})", lambda n, x: np.log(x), "y = ln x")
_unary("Sqrt", 6, lambda n, x, t: f"{math_fn('sqrt', t)}({x})", lambda n, x: np.sqrt(x),
       "y = sqrt(x)")
_unary("Reciprocal", 6, lambda n, x, t: f"1 / {x}", lambda n, x: np.reciprocal(x), "y = 1/x")
_unary("Floor", 6, lambda n, x, t: f"{math_fn('floor', t)}({x})", lambda n, x: np.floor(x),
       "y = floor(x)")
_unary("Ceil", 6, lambda n, x, t: f"{math_fn('ceil', t)}({x})", lambda n, x: np.ceil(x),
       "y = ceil(x)")
_unary("Round", 11, lambda n, x, t: f"{math_fn('nearbyint', t)}({x})", lambda n, x: np.round(x),
       "y = x rounded half to even")
_unary("Sin", 7, lambda n, x, t: f"{math_fn('sin', t)}({x})", lambda n, x: np.sin(x), "y = sin x")
_unary("Cos", 7, lambda n, x, t: f"{math_fn('cos', t)}({x})", lambda n, x: np.cos(x), "y = cos x")
_unary("Tanh", 6, lambda n, x, t: f"{math_fn('tanh', t)}({x})", lambda n, x: np.tanh(x),
       "y = tanh x")
_unary("Erf", 9, lambda n, x, t: f"{math_fn('erf', t)}({x})", lambda n, x: _erf(x), "y = erf x")
_unary("Sigmoid", 6, lambda n, x, t: f"1 / (1 + {math_fn('exp', t)}(-{x}))",
       lambda n, x: 1 / (1 + np.exp(-x)), "y = 1 / (1 + e^-x)")
def _softplus_c(n, x, t):
    if compute_ctype(t) == "float":
        return f"nn_softplusf({x})"
    return (f"({x} > 0 ? {x} + {math_fn('log1p', t)}({math_fn('exp', t)}(-{x})) "
            f": {math_fn('log1p', t)}({math_fn('exp', t)}({x})))")


_unary("Softplus", 1, _softplus_c, lambda n, x: np.logaddexp(0, x), "y = ln(1 + e^x)")
_unary("Softsign", 1, lambda n, x, t: f"{x} / (1 + {math_fn('fabs', t)}({x}))",
       lambda n, x: x / (1 + np.abs(x)), "y = x / (1 + |x|)")
_unary("LeakyRelu", 6,
       lambda n, x, t: _select(f"{x} >= 0", x, f"{_lit(n, 'alpha', 0.01, t)} * {x}", t),
       lambda n, x: np.where(x >= 0, x, np.float32(n.attr("alpha", 0.01)) * x),
       "y = x >= 0 ? x : alpha * x")
_unary("Elu", 6,
       lambda n, x, t: _select(f"{x} >= 0", x, f"{_lit(n, 'alpha', 1.0, t)} * "
                                                  f"({math_fn('exp', t)}({x}) - 1)", t),
       lambda n, x: np.where(x >= 0, x, np.float32(n.attr("alpha", 1.0)) * (np.exp(x) - 1)),
       "y = x >= 0 ? x : alpha * (e^x - 1)")
_SELU_ALPHA, _SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875
_unary("Selu", 6,
       lambda n, x, t: f"{_lit(n, 'gamma', _SELU_GAMMA, t)} * ("
                       + _select(f"{x} > 0", x, f"{_lit(n, 'alpha', _SELU_ALPHA, t)} * "
                                 f"({math_fn('exp', t)}({x}) - 1)", t) + ")",
       lambda n, x: np.float32(n.attr("gamma", _SELU_GAMMA)) * np.where(
           x > 0, x, np.float32(n.attr("alpha", _SELU_ALPHA)) * (np.exp(x) - 1)),
       "y = gamma * (x > 0 ? x : alpha * (e^x - 1))")
_unary("HardSigmoid", 6,
       lambda n, x, t: _clamp01(f"{_lit(n, 'alpha', 0.2, t)} * {x} + {_lit(n, 'beta', 0.5, t)}",
                                t),
       lambda n, x: np.clip(np.float32(n.attr("alpha", 0.2)) * x
                            + np.float32(n.attr("beta", 0.5)), 0, 1),
       "y = max(0, min(1, alpha * x + beta))")
_unary("HardSwish", 14,
       lambda n, x, t: f"{x} * "
                       + _clamp01(f"{x} * {c_literal(1 / 6, t)} + {c_literal(0.5, t)}", t),
       lambda n, x: x * np.clip(x * np.float32(1 / 6) + np.float32(0.5), 0, 1),
       "y = x * max(0, min(1, x / 6 + 1/2))")
_unary("Not", 1, lambda n, x, t: f"!{x}", lambda n, x: np.logical_not(x), "y = !x")


@register("Identity", since=1)
class Identity(Unary):
    """y = x (kept only where removal is not possible, e.g. an input passed to an output)."""
    def np_fn(self, node, x):
        return x

    def lower(self, node, ctx):
        ctx.emit(f"memcpy({ctx.ptr(node.outputs[0])}, {ctx.ptr(node.inputs[0])}, "
                 f"{ctx.type(node.inputs[0]).nbytes});")


@register("Dropout", since=1)
class Dropout(Op):
    """Inference: y = x and the optional mask is all true. Training (opset 12+, training_mode
    true at run time): mask = u >= ratio for u uniform in [0, 1) from MT19937 seeded with
    ``seed`` (0 when absent; one draw per element in row-major order, as numpy's RandomState
    draws them, so ONNX's reference gives the same mask), y = mask * x / (1 - ratio). Every run
    draws the same mask: results stay deterministic."""
    def canonicalize(self, node, version, graph):
        if node.attr("is_test", 1) == 0 and version < 7:
            raise ModelError(f"node {node.label} (Dropout): is_test=0 (training) is random; "
                             f"only inference Dropout is supported")
        training = node.inputs[2] if len(node.inputs) > 2 else ""
        ratio = node.inputs[1] if len(node.inputs) > 1 else ""
        never = not training or (training in graph.constants and not bool(
            np.asarray(graph.constants[training]).reshape(-1)[0]))
        no_drop = ratio in graph.constants and float(
            np.asarray(graph.constants[ratio]).reshape(-1)[0]) == 0
        if never or no_drop:
            attrs = {k: v for k, v in node.attrs.items() if k not in ("is_test", "ratio", "seed")}
            return [node.replace(attrs=attrs, inputs=node.inputs[:1])]
        seed = int(node.attr("seed", 0))
        if not 0 <= seed < 1 << 32:
            raise ModelError(f"node {node.label} (Dropout): seed {seed} is outside 0..2^32-1")
        if not ratio:      # training_mode given, ratio omitted: its default
            ratio = graph.add_constant(graph.unique_name(f"{node.outputs[0]}_ratio"),
                                       np.array(0.5, np.float32))
        return [node.replace(attrs={"seed": seed}, inputs=(node.inputs[0], ratio, training))]

    def infer(self, ctx):
        x = ctx.types[0]
        if len(ctx.types) > 1:
            ratio, training = ctx.types[1], ctx.types[2]
            if ratio.size != 1 or not ratio.dtype.is_float:
                raise ctx.fail(f"ratio {ratio} must be one float")
            if training.size != 1 or training.dtype != dtypes.BOOL:
                raise ctx.fail(f"training_mode {training} must be one bool")
            if not x.dtype.is_float:
                raise ctx.fail(f"training Dropout of {x.dtype}: supported f16, bf16, f32, f64")
        return [x, TensorType(dtypes.BOOL, x.shape)]

    def reference(self, node, x, ratio=None, training=None):
        if ratio is None or not bool(np.asarray(training).reshape(-1)[0]) or \
                float(np.asarray(ratio).reshape(-1)[0]) == 0:
            return [x, np.ones(x.shape, bool)]
        ratio = np.asarray(ratio).reshape(())
        mask = np.random.RandomState(int(node.attr("seed", 0))).uniform(0, 1.0, x.shape) >= ratio
        return [(mask * x * (1.0 / (1.0 - ratio))).astype(x.dtype), mask]

    def lower(self, node, ctx):
        x, outs = node.inputs[0], node.outputs
        if len(node.inputs) == 1:
            ctx.emit(f"memcpy({ctx.ptr(outs[0])}, {ctx.ptr(x)}, {ctx.type(x).nbytes});")
            if len(outs) > 1 and outs[1]:
                ctx.emit(f"memset({ctx.ptr(outs[1])}, 1, {ctx.type(outs[1]).nbytes});")
            return
        self.lower_training(node, ctx)

    def lower_training(self, node, ctx):
        x, ratio, training = node.inputs
        y, mask = (list(node.outputs) + [""])[:2]
        xt, rt = ctx.type(x), ctx.type(ratio).dtype
        if xt.size == 0:
            return
        ct, rct = compute_ctype(xt.dtype), compute_ctype(rt)
        ctx.helper("mt19937")
        m = f"{ctx.ptr(mask)}" if mask else None
        lines = [f"const {xt.dtype.ctype} *x = {ctx.ptr(x)};", f"{xt.dtype.ctype} *y = {ctx.ptr(y)};",
                 f"const {rct} ratio = {load_value(ctx, rt, f'{ctx.ptr(ratio)}[0]')};",
                 f"if (!{ctx.ptr(training)}[0] || ratio == 0) {{",
                 f"    memcpy(y, x, {xt.nbytes});"]
        lines += [f"    memset({m}, 1, {xt.size});"] if m else []
        lines += ["} else {",
                  "    nn_mt19937 rng;",
                  f"    nn_mt19937_seed(&rng, {int(node.attr('seed', 0))}u);",
                  f"    const {rct} scale = 1 / (1 - ratio);",
                  f"    for (size_t i = 0; i < {xt.size}; ++i) {{",
                  "        const bool keep = nn_mt19937_double(&rng) >= (double)ratio;",
                  f"        const {ct} kept = ({ct})keep * {load_value(ctx, xt.dtype, 'x[i]')};",
                  f"        y[i] = {store_value(ctx, xt.dtype, f'({ct})(kept * scale)')};"]
        lines += [f"        {m}[i] = keep;"] if m else []
        lines += ["    }", "}"]
        ctx.emit("{\n" + "\n".join("    " + line for line in lines) + "\n}")


# --- n-ary with broadcasting --------------------------------------------------------------------
def _align_at_axis(node, graph, index: int, axis: int) -> list:
    """Nodes computing ``node`` with input ``index`` given trailing size-1 dims so that its
    dims start at ``axis`` of input 0 under numpy broadcasting."""
    a, b = node.inputs[0], node.inputs[index]
    ta, tb = graph.types.get(a), graph.types.get(b)
    if ta is None or tb is None:
        raise ModelError(f"node {node.label} ({node.op}): the legacy axis broadcast needs the "
                         f"ranks of its inputs before inference ({a!r}, {b!r} are computed)")
    axis = axis + ta.rank if axis < 0 else axis
    trailing = ta.rank - axis - tb.rank
    if trailing < 0:
        raise ModelError(f"node {node.label} ({node.op}): axis {axis} leaves no room for "
                         f"{tb} in {ta}")
    if trailing == 0:
        return [node]
    axes = np.arange(tb.rank, tb.rank + trailing, dtype=np.int64)
    inputs = list(node.inputs)
    if b in graph.constants:
        inputs[index] = graph.add_constant(graph.unique_name(f"{b}_aligned"),
                                           np.expand_dims(graph.constants[b], tuple(axes)))
        return [node.replace(inputs=tuple(inputs))]
    axes_name = graph.add_constant(graph.unique_name(f"{b}_align_axes"), axes)
    inputs[index] = graph.unique_name(f"{b}_aligned")
    graph.types[inputs[index]] = TensorType(tb.dtype, tb.shape + (1,) * trailing)
    unsqueeze = Node("Unsqueeze", (b, axes_name), (inputs[index],), {}, node.sources)
    return [unsqueeze, node.replace(inputs=tuple(inputs))]


class Broadcasting(Op):
    """y = f(a, b, ...) with numpy broadcasting; output type from ``out_dtype``."""
    def canonicalize(self, node, version, graph):
        # before opset 7: Add(a, b) {broadcast=1, axis=k}  =>  Add(a, Unsqueeze(b))
        # (b's dims line up with a's from axis k; numpy lines them up from the last dim)
        if version >= 7:
            return [node]
        attrs = {k: v for k, v in node.attrs.items()
                 if k not in ("broadcast", "axis", "consumed_inputs")}
        if "axis" not in node.attrs or not node.attr("broadcast", 0):
            return [node.replace(attrs=attrs)]
        return _align_at_axis(node.replace(attrs=attrs), graph, 1, node.attrs["axis"])

    def out_dtype(self, ctx):
        return ctx.types[0].dtype

    def infer(self, ctx):
        shapes = [t.shape for t in ctx.types if t is not None]
        return [TensorType(self.out_dtype(ctx), broadcast_shape(shapes, ctx.node))]

    def c_expr(self, node, args: list, dtype) -> str:
        raise NotImplementedError

    def np_fn(self, node, *args):
        raise NotImplementedError

    def reference(self, node, *args):
        out = np.asarray(self.np_fn(node, *args))
        return [out.astype(self.np_out_dtype(node, args))]

    def np_out_dtype(self, node, args):
        return args[0].dtype

    def lower(self, node, ctx):
        dtype = ctx.type(node.inputs[0]).dtype
        operands = [_operand(ctx, i) for i in node.inputs if i]
        broadcast_loop(ctx, node.outputs[0], operands,
                       lambda v: self.c_expr(node, v, dtype))


def _operand(ctx, name):
    """A one-element constant becomes a literal; anything else is read from memory."""
    array = ctx.graph.constants.get(name)
    if array is not None and array.size == 1 and ctx.type(name).rank <= len(ctx.shape(name)) \
            and array.dtype != np.float16:
        return Scalar(c_literal(array.reshape(-1)[0], ctx.type(name).dtype))
    return name


def _nary(op: str, since: int, c, ref, doc: str, out_bool: bool = False, variadic=False):
    @register(op, since=since)
    class _Op(Broadcasting):
        __doc__ = doc

        def out_dtype(self, ctx):
            return dtypes.BOOL if out_bool else ctx.types[0].dtype

        def np_out_dtype(self, node, args):
            return np.bool_ if out_bool else args[0].dtype

        def c_expr(self, node, args, dtype):
            return c(node, args, dtype)

        def np_fn(self, node, *args):
            return ref(node, *args)
    _Op.__name__ = op
    return _Op


def _fold_left(fn):
    def apply(node, *args):
        out = args[0]
        for a in args[1:]:
            out = fn(out, a)
        return out
    return apply


def _chain(op_text):
    return lambda n, a, t: f" {op_text} ".join(a) if len(a) > 1 else a[0]


def _int_div(node, a, b):
    if np.issubdtype(a.dtype, np.integer):
        return np.trunc(a / b).astype(a.dtype)
    return a / b


def _minmax(fn_name, cmp):
    def c(node, args, t):
        expr = args[0]
        for a in args[1:]:
            expr = f"{math_fn(fn_name, t)}({expr}, {a})" if t.is_float else \
                f"({expr} {cmp} {a} ? {expr} : {a})"
        return expr
    return c


_nary("Add", 1, _chain("+"), _fold_left(np.add), "y = a + b")
_nary("Sub", 1, _chain("-"), _fold_left(np.subtract), "y = a - b")
_nary("Mul", 1, _chain("*"), _fold_left(np.multiply), "y = a * b")
_nary("Div", 1, _chain("/"), _int_div, "y = a / b (integers truncate)")
_nary("Pow", 1, lambda n, a, t: f"{math_fn('pow', t) if t.is_float else 'pow'}({a[0]}, {a[1]})",
      lambda n, a, b: np.power(a, b.astype(a.dtype)), "y = a ^ b")
_nary("Max", 6, _minmax("fmax", ">"), _fold_left(np.maximum), "y = max(a, b, ...)")
_nary("Min", 6, _minmax("fmin", "<"), _fold_left(np.minimum), "y = min(a, b, ...)")
_nary("Sum", 6, _chain("+"), _fold_left(np.add), "y = a + b + ...")
_nary("Mean", 6, lambda n, a, t: f"({' + '.join(a)}) / {c_literal(len(a), t)}",
      lambda n, *a: sum(a[1:], a[0]) / np.asarray(len(a), a[0].dtype), "y = (a + b + ...) / n")
_nary("Equal", 1, lambda n, a, t: f"{a[0]} == {a[1]}", lambda n, a, b: a == b, "y = a == b", True)
_nary("Less", 1, lambda n, a, t: f"{a[0]} < {a[1]}", lambda n, a, b: a < b, "y = a < b", True)
_nary("LessOrEqual", 12, lambda n, a, t: f"{a[0]} <= {a[1]}", lambda n, a, b: a <= b,
      "y = a <= b", True)
_nary("Greater", 1, lambda n, a, t: f"{a[0]} > {a[1]}", lambda n, a, b: a > b, "y = a > b", True)
_nary("GreaterOrEqual", 12, lambda n, a, t: f"{a[0]} >= {a[1]}", lambda n, a, b: a >= b,
      "y = a >= b", True)
_nary("And", 1, lambda n, a, t: f"{a[0]} && {a[1]}", lambda n, a, b: a & b, "y = a and b", True)
_nary("Or", 1, lambda n, a, t: f"{a[0]} || {a[1]}", lambda n, a, b: a | b, "y = a or b", True)
_nary("Xor", 1, lambda n, a, t: f"{a[0]} != {a[1]}", lambda n, a, b: a ^ b, "y = a xor b", True)
_PRelu = _nary("PRelu", 6, lambda n, a, t: f"{a[0]} < 0 ? {a[0]} * {a[1]} : {a[0]}",
      lambda n, x, s: np.where(x < 0, x * s, x), "y = x < 0 ? slope * x : x")


def _prelu_canonicalize(node, version, graph):
    # before opset 7: PRelu(x, slope[C])  =>  PRelu(x, slope[C, 1, ...]) (one slope per channel)
    node = node.replace(attrs={k: v for k, v in node.attrs.items() if k != "consumed_inputs"})
    slope = graph.types.get(node.inputs[1])
    if version >= 7 or slope is None or slope.rank != 1 or slope.size == 1:
        return [node]
    return _align_at_axis(node, graph, 1, 1)


_PRelu.canonicalize = staticmethod(_prelu_canonicalize)


@register("Where", since=9)
class Where(Broadcasting):
    """y = cond ? a : b"""
    def out_dtype(self, ctx):
        return ctx.types[1].dtype

    def np_out_dtype(self, node, args):
        return args[1].dtype

    def np_fn(self, node, cond, a, b):
        return np.where(cond, a, b)

    def c_expr(self, node, args, dtype):
        return f"{args[0]} ? {args[1]} : {args[2]}"


@register("Clip", since=6)
class Clip(Op):
    """y = min(max(x, lo), hi); bounds are inputs (attributes before opset 11)."""
    def canonicalize(self, node, version, graph):
        if version >= 11:
            return [node]
        inputs = [node.inputs[0]]
        for key in ("min", "max"):
            if key in node.attrs:
                name = graph.unique_name(f"{node.outputs[0]}_{key}")
                graph.add_constant(name, np.array(node.attrs[key], np.float32))
                inputs.append(name)
            else:
                inputs.append("")
        return [node.replace(inputs=tuple(inputs), attrs={})]

    def infer(self, ctx):
        return [ctx.types[0]]

    def reference(self, node, x, lo=None, hi=None):
        y = x
        if lo is not None:
            y = np.maximum(y, lo)
        if hi is not None:
            y = np.minimum(y, hi)
        return [np.asarray(y).astype(x.dtype)]

    def lower(self, node, ctx):
        x = node.inputs[0]
        dtype = ctx.type(x).dtype
        bounds = []
        for i in (1, 2):
            name = node.inputs[i] if len(node.inputs) > i else ""
            if not name:
                bounds.append(None)
            elif name in ctx.graph.constants:
                bounds.append(c_literal(ctx.graph.constants[name].reshape(-1)[0], dtype))
            else:
                bounds.append(f"{ctx.ptr(name)}[0]")

        def expr(v):
            e = v[0]
            if bounds[0] is not None:
                e = f"({e} < {bounds[0]} ? {bounds[0]} : {e})"
            if bounds[1] is not None:
                e = f"({e} > {bounds[1]} ? {bounds[1]} : {e})"
            return e
        broadcast_loop(ctx, node.outputs[0], [x], expr)


@register("Cast", since=6)
class Cast(Op):
    """y = x converted to the element type ``to``. Into a narrow type (nn_narrow.h): round to
    nearest even, ``saturate`` (default 1) clamps out-of-range floats to the largest finite
    float8 value instead of inf / NaN, ``round_mode`` (up, down, nearest) rounds to float8 e8m0;
    integers keep their low bits (floats truncated toward zero first)."""
    def infer(self, ctx):
        self.options(ctx.node)
        return [TensorType(self.target(ctx.node, ctx.types), ctx.types[0].shape)]

    def target(self, node, types):
        code = node.attr("to")
        if code is None:
            raise ModelError(f"node {node.label} ({node.op}): attribute 'to' is required")
        if code not in dtypes.BY_CODE:
            raise ModelError(f"node {node.label} ({node.op}): to={dtypes.onnx_name(code)} is "
                             f"not supported (supported: {', '.join(dtypes.BY_SHORT)})")
        return dtypes.from_code(code)

    def options(self, node) -> tuple:
        round_mode = node.attr("round_mode", "up")
        if round_mode not in ("up", "down", "nearest"):
            raise ModelError(f"node {node.label} ({node.op}): round_mode {round_mode!r} "
                             f"(supported: up, down, nearest)")
        return bool(node.attr("saturate", 1)), round_mode

    def reference(self, node, x, *like):
        to = self.target(node, [None] + [TensorType.of(a) for a in like])
        return [dtypes.cast(x, to, *self.options(node))]

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        to, source = ctx.type(y).dtype, ctx.type(x).dtype
        if to.is_narrow:
            size = ctx.type(y).size
            if size == 0:
                return
            value = load_value(ctx, source, "x[i0]")
            code = encode_narrow(ctx, to, value, compute_ctype(source) in ("float", "double"),
                                 *self.options(node))
            setup = [f"const {source.ctype} *x = {ctx.ptr(x)};", f"{to.ctype} *y = {ctx.ptr(y)};"]
            emit_nest(ctx, setup, [size], [f"y[i0] = {code};"])
            return
        if to.short == "bool":
            expr = lambda v: f"{v[0]} != 0"
        else:
            expr = lambda v: f"({compute_ctype(to)}){v[0]}"
        broadcast_loop(ctx, y, [x], expr)


@register("CastLike", since=15)
class CastLike(Cast):
    """y = x converted to the element type of ``target_type`` (whose values are not read)."""
    def target(self, node, types):
        return types[1].dtype

    def fold(self, ctx):
        if ctx.values[0] is None:
            return None
        return [dtypes.cast(ctx.values[0], ctx.types[1].dtype, *self.options(ctx.node))]


@register("BitCast", since=26)
class BitCast(Op):
    """y = the bytes of x read as the element type ``to`` (same width, same shape)."""
    def infer(self, ctx):
        x, to = ctx.types[0], dtypes.from_code(ctx.node.attr("to"))
        if to.itemsize != x.dtype.itemsize:
            raise ctx.fail(f"{x.dtype} and {to} differ in width")
        return [TensorType(to, x.shape)]

    def reference(self, node, x):
        return [np.ascontiguousarray(x).view(dtypes.from_code(node.attr("to")).numpy)]

    def lower(self, node, ctx):
        if ctx.type(node.inputs[0]).size:
            ctx.emit(f"memcpy({ctx.ptr(node.outputs[0])}, {ctx.ptr(node.inputs[0])}, "
                     f"{ctx.type(node.inputs[0]).nbytes});")
