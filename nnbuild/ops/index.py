"""Ops along one axis or over index positions: ArgMax / ArgMin, Hardmax, CumSum / CumProd,
Trilu and EyeLike.

Each is a loop nest written into the network source. Along an axis the tensor is viewed as
[outer, n, inner] (row-major), so element (o, k, i) sits at (o * n + k) * inner + i. f16 / bf16
elements are loaded as float and stored back through ``nn_half.h``.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..codegen.loops import c_literal, compute_ctype, load_value, store_value
from ..ir.graph import TensorType
from .movement import store_known
from .registry import Op, normalize_axis, register


def split_at(shape: tuple, axis: int) -> tuple:
    """(outer, n, inner) of ``shape`` around ``axis``."""
    return (int(np.prod(shape[:axis], dtype=np.int64)), int(shape[axis]),
            int(np.prod(shape[axis + 1:], dtype=np.int64)))


def load(ctx, dtype, text: str) -> str:
    """A C load of an element as its compute type (f16 / bf16 and the narrow floats become
    float, int4 / int2 int8_t: ``codegen.loops.compute_ctype``)."""
    return load_value(ctx, dtype, text)


def store(ctx, dtype, text: str) -> str:
    """The C value to store for a compute-type expression."""
    return store_value(ctx, dtype, text)


def block(lines: list) -> str:
    return "{\n" + "\n".join("    " + line for line in lines) + "\n}"


# --- ArgMax / ArgMin ---------------------------------------------------------------------------
class ArgReduce(Op):
    """y = int64 index of the extreme element along ``axis`` (first one, or the last with
    select_last_index=1)."""
    cmp = ">"

    def _axis(self, node, rank):
        return normalize_axis(node.attr("axis", 0), rank, node)

    def infer(self, ctx):
        x = ctx.types[0]
        axis = self._axis(ctx.node, x.rank)
        shape = list(x.shape)
        if ctx.node.attr("keepdims", 1):
            shape[axis] = 1
        else:
            del shape[axis]
        return [TensorType(dtypes.INT64, tuple(shape))]

    def reference(self, node, x):
        axis = self._axis(node, x.ndim)
        pick = np.argmax if self.cmp == ">" else np.argmin
        if node.attr("select_last_index", 0):
            flipped = np.flip(x, axis)
            y = x.shape[axis] - 1 - pick(flipped, axis=axis)
        else:
            y = pick(x, axis=axis)
        if node.attr("keepdims", 1):
            y = np.expand_dims(y, axis)
        return [np.asarray(y, np.int64)]

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        dtype = ctx.type(x).dtype
        outer, n, inner = split_at(ctx.shape(x), self._axis(node, ctx.type(x).rank))
        if outer * inner == 0:
            return
        cmp = self.cmp + ("=" if node.attr("select_last_index", 0) else "")
        ct = compute_ctype(dtype)
        lines = [f"const {dtype.ctype} *x = {ctx.ptr(x)};", f"int64_t *y = {ctx.ptr(y)};",
                 f"for (size_t o = 0; o < {outer}; ++o)",
                 f"    for (size_t i = 0; i < {inner}; ++i) {{",
                 f"        const {dtype.ctype} *p = x + o * {n * inner} + i;",
                 f"        {ct} best = {load(ctx, dtype, 'p[0]')};",
                 "        int64_t at = 0;",
                 f"        for (size_t k = 1; k < {n}; ++k) {{",
                 f"            const {ct} v = {load(ctx, dtype, f'p[k * {inner}]')};",
                 f"            if (v {cmp} best) {{",
                 "                best = v;",
                 "                at = (int64_t)k;",
                 "            }",
                 "        }",
                 f"        y[o * {inner} + i] = at;",
                 "    }"]
        ctx.emit(block(lines))


@register("ArgMax", since=1)
class ArgMax(ArgReduce):
    """y = index of the largest element along axis"""
    cmp = ">"


@register("ArgMin", since=1)
class ArgMin(ArgReduce):
    """y = index of the smallest element along axis"""
    cmp = "<"


# --- Hardmax -----------------------------------------------------------------------------------
@register("Hardmax", since=13)
class Hardmax(Op):
    """y = 1 at the first largest element along ``axis`` (default -1), 0 elsewhere."""
    def infer(self, ctx):
        return [ctx.types[0]]

    def reference(self, node, x):
        axis = normalize_axis(node.attr("axis", -1), x.ndim, node)
        y = np.zeros_like(x)
        np.put_along_axis(y, np.expand_dims(np.argmax(x, axis=axis), axis), 1, axis=axis)
        return [y]

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        dtype = ctx.type(x).dtype
        outer, n, inner = split_at(ctx.shape(x), normalize_axis(node.attr("axis", -1),
                                                                ctx.type(x).rank, node))
        if outer * n * inner == 0:
            return
        ct = compute_ctype(dtype)
        one, zero = (store(ctx, dtype, c_literal(v, dtype if ct != "float" else dtypes.FLOAT32))
                     for v in (1, 0))
        lines = [f"const {dtype.ctype} *x = {ctx.ptr(x)};", f"{dtype.ctype} *y = {ctx.ptr(y)};",
                 f"for (size_t o = 0; o < {outer}; ++o)",
                 f"    for (size_t i = 0; i < {inner}; ++i) {{",
                 f"        const size_t base = o * {n * inner} + i;",
                 f"        {ct} best = {load(ctx, dtype, 'x[base]')};",
                 "        size_t at = 0;",
                 f"        for (size_t k = 1; k < {n}; ++k) {{",
                 f"            const {ct} v = {load(ctx, dtype, f'x[base + k * {inner}]')};",
                 "            if (v > best) {",
                 "                best = v;",
                 "                at = k;",
                 "            }",
                 "        }",
                 f"        for (size_t k = 0; k < {n}; ++k)",
                 f"            y[base + k * {inner}] = k == at ? {one} : {zero};",
                 "    }"]
        ctx.emit(block(lines))


# --- CumSum / CumProd --------------------------------------------------------------------------
class Cumulative(Op):
    """y = running sum / product along ``axis`` (an input; it may be known only at run time),
    optionally ``exclusive`` (starting from the identity) and ``reverse``."""
    identity, op, np_fn = "0", "+", np.cumsum

    def infer(self, ctx):
        return [ctx.types[0]]

    def reference(self, node, x, axis):
        axis = normalize_axis(int(np.asarray(axis).reshape(-1)[0]), x.ndim, node)
        y = np.flip(x, axis) if node.attr("reverse", 0) else x
        y = type(self).np_fn(y, axis=axis, dtype=x.dtype)
        if node.attr("exclusive", 0):
            y = np.roll(y, 1, axis)
            index = [slice(None)] * x.ndim
            index[axis] = 0
            y[tuple(index)] = 0 if self.op == "+" else 1
        if node.attr("reverse", 0):
            y = np.flip(y, axis)
        return [np.ascontiguousarray(y.astype(x.dtype))]

    def lower(self, node, ctx):
        x, axis_name, y = node.inputs[0], node.inputs[1], node.outputs[0]
        dtype, shape = ctx.type(x).dtype, ctx.shape(x)
        if 0 in shape:
            return
        lines = [f"const {dtype.ctype} *x = {ctx.ptr(x)};", f"{dtype.ctype} *y = {ctx.ptr(y)};"]
        if axis_name in ctx.graph.constants:
            axis = normalize_axis(int(ctx.graph.constants[axis_name].reshape(-1)[0]),
                                  len(shape), node)
            outer, n, inner = (str(v) for v in split_at(shape, axis))
        else:   # the axis comes at run time: the [outer, n, inner] view is computed then
            dims = ctx.table("int64_t", shape, "dims")
            atype = ctx.ctype(axis_name)
            lines += [f"const {atype} a = {ctx.ptr(axis_name)}[0];",
                      f"const size_t axis = (size_t)(a < 0 ? a + {len(shape)} : a);",
                      "size_t outer = 1, inner = 1;",
                      f"for (size_t d = 0; d < {len(shape)}; ++d) {{",
                      "    if (d < axis)",
                      f"        outer *= (size_t){dims}[d];",
                      "    else if (d > axis)",
                      f"        inner *= (size_t){dims}[d];",
                      "}",
                      f"const size_t n = (size_t){dims}[axis];"]
            outer, n, inner = "outer", "n", "inner"
        ct = compute_ctype(dtype)
        reverse = node.attr("reverse", 0)
        k = f"{n} - 1 - j" if reverse else "j"
        here = f"o * {n} * {inner} + ({k}) * {inner} + i"
        step = [f"            const size_t at = {here};"]
        if node.attr("exclusive", 0):
            step += [f"            y[at] = {store(ctx, dtype, 'acc')};",
                     f"            acc {self.op}= {load(ctx, dtype, 'x[at]')};"]
        else:
            step += [f"            acc {self.op}= {load(ctx, dtype, 'x[at]')};",
                     f"            y[at] = {store(ctx, dtype, 'acc')};"]
        lines += [f"for (size_t o = 0; o < {outer}; ++o)",
                  f"    for (size_t i = 0; i < {inner}; ++i) {{",
                  f"        {ct} acc = {self.identity};",
                  f"        for (size_t j = 0; j < {n}; ++j) {{"] + step + ["        }", "    }"]
        ctx.emit(block(lines))


@register("CumSum", since=11)
class CumSum(Cumulative):
    """y = running sum along axis"""
    identity, op, np_fn = "0", "+", np.cumsum


@register("CumProd", since=26)
class CumProd(Cumulative):
    """y = running product along axis"""
    identity, op, np_fn = "1", "*", np.cumprod


# --- Trilu, EyeLike ---------------------------------------------------------------------------
@register("Trilu", since=14)
class Trilu(Op):
    """y = x with the elements below (upper=1) or above (upper=0) the k-th diagonal zeroed;
    k (default 0) may come at run time."""
    def infer(self, ctx):
        if ctx.types[0].rank < 2:
            raise ctx.fail("needs rank >= 2")
        return [ctx.types[0]]

    def reference(self, node, x, k=None):
        k = 0 if k is None else int(np.asarray(k).reshape(-1)[0])
        return [np.triu(x, k) if node.attr("upper", 1) else np.tril(x, k)]

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        shape = ctx.shape(x)
        if 0 in shape:
            return
        rows, cols = shape[-2:]
        batch = int(np.prod(shape[:-2], dtype=np.int64))
        k_name = node.inputs[1] if len(node.inputs) > 1 else ""
        dtype = ctx.type(x).dtype
        lines = [f"const {dtype.ctype} *x = {ctx.ptr(x)};", f"{dtype.ctype} *y = {ctx.ptr(y)};"]
        if not k_name:
            k = "0"
        elif k_name in ctx.graph.constants:
            k = str(int(ctx.graph.constants[k_name].reshape(-1)[0]))
        else:
            lines.append(f"const int64_t k = {ctx.ptr(k_name)}[0];")
            k = "k"
        keep = ">=" if node.attr("upper", 1) else "<="
        lines += [f"for (size_t b = 0; b < {batch}; ++b)",
                  f"    for (size_t r = 0; r < {rows}; ++r)",
                  f"        for (size_t c = 0; c < {cols}; ++c) {{",
                  f"            const size_t at = (b * {rows} + r) * {cols} + c;",
                  f"            y[at] = (int64_t)c - (int64_t)r {keep} {k} ? x[at] : 0;",
                  "        }"]
        ctx.emit(block(lines))


@register("EyeLike", since=9)
class EyeLike(Op):
    """y = ones on the k-th diagonal of a 2-D tensor shaped like x, element type ``dtype``
    (default: x's)."""
    def infer(self, ctx):
        x = ctx.types[0]
        if x.rank != 2:
            raise ctx.fail("needs a 2-D input")
        code = ctx.node.attr("dtype")
        return [TensorType(dtypes.from_code(code) if code is not None else x.dtype, x.shape)]

    def _value(self, node, shape, dtype):
        return np.eye(shape[0], shape[1], k=node.attr("k", 0), dtype=dtype)

    def fold(self, ctx):
        return [self._value(ctx.node, ctx.types[0].shape, self.infer(ctx)[0].dtype.numpy)]

    def reference(self, node, x):
        code = node.attr("dtype")
        dtype = dtypes.from_code(code).numpy if code is not None else x.dtype
        return [self._value(node, x.shape, dtype)]

    def lower(self, node, ctx):
        t = ctx.type(node.outputs[0])
        store_known(ctx, node.outputs[0], self._value(node, t.shape, t.dtype.numpy))


# --- LpNormalization ---------------------------------------------------------------------------
@register("LpNormalization", since=1)
class LpNormalization(Op):
    """y = x / ||x||_p along ``axis`` (default -1), p 1 or 2 (default 2); a zero norm gives 0."""
    def _p(self, node, fail):
        p = int(node.attr("p", 2))
        if p not in (1, 2):
            raise fail(f"p={p}; supported: 1, 2")
        return p

    def infer(self, ctx):
        x = ctx.types[0]
        if not x.dtype.is_float:
            raise ctx.fail(f"element type {x.dtype}; supported: f32, f64, f16, bf16")
        self._p(ctx.node, ctx.fail)
        normalize_axis(ctx.node.attr("axis", -1), x.rank, ctx.node)
        return [x]

    def reference(self, node, x):
        axis = normalize_axis(node.attr("axis", -1), x.ndim, node)
        wide = x.astype(np.float64)
        if self._p(node, ValueError) == 1:
            norm = np.abs(wide).sum(axis=axis, keepdims=True)
        else:
            norm = np.sqrt((wide * wide).sum(axis=axis, keepdims=True))
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(norm == 0, 0, wide / norm)
        return [y.astype(x.dtype)]

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        dtype = ctx.type(x).dtype
        outer, n, inner = split_at(ctx.shape(x), normalize_axis(node.attr("axis", -1),
                                                                ctx.type(x).rank, node))
        if outer * n * inner == 0:
            return
        at = f"(o * {n} + k) * {inner} + i"
        value = f"(double){load(ctx, dtype, f'x[{at}]')}"
        if self._p(node, ValueError) == 1:
            step, norm = f"sum += fabs({value});", "sum"
        else:
            step, norm = f"sum += {value} * {value};", "sqrt(sum)"
        result = store(ctx, dtype, f"({compute_ctype(dtype)})(norm == 0 ? 0 : {value} / norm)")
        ctx.emit(block([
            f"const {dtype.ctype} *x = {ctx.ptr(x)};", f"{dtype.ctype} *y = {ctx.ptr(y)};",
            f"for (size_t o = 0; o < {outer}; ++o)",
            f"    for (size_t i = 0; i < {inner}; ++i) {{",
            "        double sum = 0;",
            f"        for (size_t k = 0; k < {n}; ++k)",
            f"            {step}",
            f"        const double norm = {norm};",
            f"        for (size_t k = 0; k < {n}; ++k)",
            f"            y[{at}] = {result};",
            "    }"]))


# --- ScatterElements, ScatterND, GatherND ------------------------------------------------------
def _reduction_attr(node) -> str:
    value = node.attr("reduction", "none")
    return value.decode() if isinstance(value, bytes) else value


_COMBINE = {"none": "{u}", "add": "{y} + {u}", "mul": "{y} * {u}",
            "max": "{u} > {y} ? {u} : {y}", "min": "{u} < {y} ? {u} : {y}"}
_NP_COMBINE = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def _scatter_store(ctx, dtype, target: str, update: str, reduction: str) -> str:
    """``y[target] = (y[target] combined with update)`` through the compute type."""
    current = load(ctx, dtype, f"y[{target}]")
    value = _COMBINE[reduction].format(y=current, u=load(ctx, dtype, update))
    return f"y[{target}] = {store(ctx, dtype, value)};"


def _copy_data(ctx, data: str, y: str) -> list:
    return [f"memcpy(y, {ctx.ptr(data)}, {ctx.type(data).nbytes});"] if ctx.type(data).size else []


def _index_value(ctx, name: str, at: str, extent: int) -> str:
    """An index read at run time, negative ones counted from the end."""
    return f"({ctx.ptr(name)}[{at}] < 0 ? {ctx.ptr(name)}[{at}] + {extent} : {ctx.ptr(name)}[{at}])"


class ScatterCommon(Op):
    def check_reduction(self, ctx):
        reduction = _reduction_attr(ctx.node)
        if reduction not in _COMBINE:
            raise ctx.fail(f"reduction {reduction!r}; supported: {', '.join(_COMBINE)}")

    def infer(self, ctx):
        self.check_reduction(ctx)
        return [ctx.types[0]]


@register("ScatterElements", since=11)
class ScatterElements(ScatterCommon):
    """y = data with y[..., indices[p], ...] (at ``axis``) = updates[p] (or combined by
    ``reduction``: add, mul, max, min), in index order"""
    def reference(self, node, data, indices, updates):
        axis = normalize_axis(node.attr("axis", 0), data.ndim, node)
        y = data.copy()
        reduction = _reduction_attr(node)
        for p in np.ndindex(*indices.shape):
            target = list(p)
            target[axis] = int(indices[p]) % data.shape[axis]
            t = tuple(target)
            y[t] = updates[p] if reduction == "none" else _NP_COMBINE[reduction](y[t], updates[p])
        return [y]

    def lower(self, node, ctx):
        data, indices, updates = node.inputs[:3]
        shape, ishape = ctx.shape(data), ctx.shape(indices)
        dtype = ctx.type(data).dtype
        axis = normalize_axis(node.attr("axis", 0), len(shape), node)
        lines = [f"{dtype.ctype} *y = {ctx.ptr(node.outputs[0])};"] + _copy_data(ctx, data, "y")
        if ctx.type(indices).size:
            ystrides = [int(np.prod(shape[j + 1:], dtype=np.int64)) for j in range(len(shape))]
            istrides = [int(np.prod(ishape[j + 1:], dtype=np.int64)) for j in range(len(ishape))]
            at = " + ".join(f"p{j} * {s}" for j, s in enumerate(istrides)) or "0"
            idx = _index_value(ctx, indices, at, shape[axis])
            target = " + ".join(f"(size_t){idx} * {s}" if j == axis else f"p{j} * {s}"
                                for j, s in enumerate(ystrides))
            body = [_scatter_store(ctx, dtype, target, f"{ctx.ptr(updates)}[{at}]",
                                   _reduction_attr(node))]
            for j in reversed(range(len(ishape))):
                body = [f"for (size_t p{j} = 0; p{j} < {ishape[j]}; ++p{j})"] + \
                    ["    " + line for line in body]
            lines += body
        ctx.emit(block(lines))


@register("Scatter", since=9)
class Scatter(ScatterElements):
    """Deprecated ScatterElements (no reduction)"""


@register("ScatterND", since=11)
class ScatterND(ScatterCommon):
    """y = data with the slices y[indices[b]] = updates[b] (or combined by ``reduction``)"""
    def reference(self, node, data, indices, updates):
        y = data.copy()
        reduction = _reduction_attr(node)
        for b in np.ndindex(*indices.shape[:-1]):
            t = tuple(int(i) for i in indices[b])
            y[t] = updates[b] if reduction == "none" else _NP_COMBINE[reduction](y[t], updates[b])
        return [y]

    def lower(self, node, ctx):
        data, indices, updates = node.inputs[:3]
        shape, ishape = ctx.shape(data), ctx.shape(indices)
        dtype = ctx.type(data).dtype
        k = ishape[-1]
        count = int(np.prod(ishape[:-1], dtype=np.int64))
        piece = int(np.prod(shape[k:], dtype=np.int64))
        lines = [f"{dtype.ctype} *y = {ctx.ptr(node.outputs[0])};"] + _copy_data(ctx, data, "y")
        if count and piece:
            offset = " + ".join(
                f"(size_t){_index_value(ctx, indices, f'b * {k} + {j}', shape[j])} * "
                f"{int(np.prod(shape[j + 1:], dtype=np.int64))}" for j in range(k)) or "0"
            lines += [f"for (size_t b = 0; b < {count}; ++b) {{",
                      f"    const size_t offset = {offset};",
                      f"    for (size_t e = 0; e < {piece}; ++e)",
                      "        " + _scatter_store(ctx, dtype, "offset + e",
                                                  f"{ctx.ptr(updates)}[b * {piece} + e]",
                                                  _reduction_attr(node)),
                      "}"]
        ctx.emit(block(lines))


@register("GatherND", since=11)
class GatherND(Op):
    """y[b..., m...] = data[b..., indices[b..., m..., :], ...] with ``batch_dims`` leading
    dims shared"""
    def _dims(self, node, shape, ishape):
        b = int(node.attr("batch_dims", 0))
        k = ishape[-1]
        return b, k, tuple(ishape[:-1]) + tuple(shape[b + k:])

    def infer(self, ctx):
        x, i = ctx.types[0], ctx.types[1]
        b, k, out = self._dims(ctx.node, x.shape, i.shape)
        if b + k > x.rank or x.shape[:b] != i.shape[:b]:
            raise ctx.fail(f"indices {i} do not fit data {x} with batch_dims={b}")
        return [TensorType(x.dtype, out)]

    def reference(self, node, data, indices):
        b, k, out = self._dims(node, data.shape, indices.shape)
        batch = int(np.prod(data.shape[:b], dtype=np.int64))
        d = data.reshape((batch,) + data.shape[b:])
        ind = indices.reshape(batch, -1, k)
        rows = [d[n][tuple(int(v) for v in ind[n, m])] for n in range(batch)
                for m in range(ind.shape[1])]
        return [np.asarray(rows, data.dtype).reshape(out)]

    def lower(self, node, ctx):
        data, indices = node.inputs[:2]
        shape, ishape = ctx.shape(data), ctx.shape(indices)
        b, k, out = self._dims(node, shape, ishape)
        batch = int(np.prod(shape[:b], dtype=np.int64))
        per_batch = int(np.prod(ishape[b:-1], dtype=np.int64))
        piece = int(np.prod(shape[b + k:], dtype=np.int64))
        data_batch = int(np.prod(shape[b:], dtype=np.int64))
        if batch * per_batch * piece == 0:
            return
        dtype = ctx.type(data).dtype
        row = f"(n * {per_batch} + m) * {k}"
        offset = " + ".join(
            f"(size_t){_index_value(ctx, indices, f'{row} + {j}', shape[b + j])} * "
            f"{int(np.prod(shape[b + j + 1:], dtype=np.int64))}" for j in range(k)) or "0"
        ctx.emit(block([
            f"const {dtype.ctype} *x = {ctx.ptr(data)};", f"{dtype.ctype} *y = {ctx.ptr(node.outputs[0])};",
            f"for (size_t n = 0; n < {batch}; ++n)",
            f"    for (size_t m = 0; m < {per_batch}; ++m) {{",
            f"        const {dtype.ctype} *src = x + n * {data_batch} + {offset};",
            f"        memcpy(y + (n * {per_batch} + m) * {piece}, src, {piece} * sizeof *src);",
            "    }"]))
