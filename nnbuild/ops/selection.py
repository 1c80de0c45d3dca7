"""Ops whose output size is a run-time value: TopK (k), OneHot (depth), Compress (how many
conditions hold), NonZero (how many elements are non-zero) and Unique (how many distinct
items; kernel ``unique_*`` in ``hal/generic/unique.c``).

When that value is a constant the shape follows from it; otherwise the model must declare the
output's static shape, and the kernel checks at run time that the value gives that shape (the
run fails with ``<P>_ERR_SHAPE`` otherwise; nothing is written past the output). Loop nests in
the network source; f16 / bf16 elements are compared as float.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..codegen.loops import NARROW_TYPES, compute_ctype
from ..ir.graph import TensorType
from .index import block, load, split_at
from .registry import Op, normalize_axis, register


def _first(value) -> float:
    return np.asarray(value).reshape(-1)[0]


# --- TopK --------------------------------------------------------------------------------------
@register("TopK", since=1)
class TopK(Op):
    """values, indices = the k largest (or smallest) elements along ``axis``, sorted, the lower
    index first among equals"""

    def canonicalize(self, node, version, graph):
        if version >= 10:
            return [node]
        name = f"{node.outputs[0]}__k"           # opset 1: k is an attribute
        graph.add_constant(name, np.array([node.attr("k")], np.int64))
        attrs = {key: v for key, v in node.attrs.items() if key != "k"}
        return [node.replace(inputs=(node.inputs[0], name), attrs=attrs)]

    def _axis(self, node, rank):
        return normalize_axis(node.attr("axis", -1), rank, node)

    def infer(self, ctx):
        x = ctx.types[0]
        axis = self._axis(ctx.node, x.rank)
        if ctx.types[1].size != 1:
            raise ctx.fail(f"k {ctx.types[1]} must hold one value")
        if ctx.runtime(1):
            shape = ctx.declared(0, 1, "k")
            if len(shape) != x.rank or any(d != s for i, (d, s) in enumerate(zip(shape, x.shape))
                                           if i != axis) or shape[axis] > x.shape[axis]:
                raise ctx.fail(f"the declared shape {list(shape)} is no top-k of {x} on axis "
                               f"{axis}")
        else:
            k = int(_first(ctx.value(1, "k")))
            if not 0 <= k <= x.shape[axis]:
                raise ctx.fail(f"k {k} is outside [0, {x.shape[axis]}]")
            shape = x.shape[:axis] + (k,) + x.shape[axis + 1:]
        return [TensorType(x.dtype, tuple(shape)), TensorType(dtypes.INT64, tuple(shape))]

    def reference(self, node, x, k):
        axis = self._axis(node, x.ndim)
        k = int(_first(k))
        key = -x if node.attr("largest", 1) and x.dtype.kind != "u" else x
        if node.attr("largest", 1) and x.dtype.kind == "u":
            key = np.iinfo(x.dtype).max - x
        order = np.argsort(key, axis=axis, kind="stable")
        index = np.take(order, np.arange(k), axis=axis)
        return [np.take_along_axis(x, index, axis=axis), index.astype(np.int64)]

    def scratch_bytes(self, node, graph):
        x = graph.types[node.inputs[0]]
        return 8 * x.shape[self._axis(node, x.rank)]

    def lower(self, node, ctx):
        x, k_name = node.inputs[0], node.inputs[1]
        values, indices = node.outputs[0], node.outputs[1] if len(node.outputs) > 1 else ""
        shape = ctx.shape(x)
        axis = self._axis(node, len(shape))
        outer, n, inner = split_at(shape, axis)
        k = ctx.shape(values)[axis]
        lines = []
        if ctx.known(k_name) is None:
            lines.append(ctx.check_statement(f"{ctx.ptr(k_name)}[0] == {k}",
                                             f"run-time k {k_name} is the declared {k}"))
        if outer * inner * k == 0:
            ctx.emit(block(lines) if lines else "/* no elements */")
            return
        dtype = ctx.type(x).dtype
        ct = compute_ctype(dtype)
        better = ">" if node.attr("largest", 1) else "<"
        out_index = "(o * {k} + j) * {inner} + i".format(k=k, inner=inner)
        lines += [f"const {dtype.ctype} *x = {ctx.ptr(x)};",
                  f"{dtype.ctype} *values = {ctx.ptr(values)};"]
        if indices:
            lines.append(f"int64_t *indices = {ctx.ptr(indices)};")
        lines += [f"size_t *order = {ctx.scratch('size_t')};",
                  f"for (size_t o = 0; o < {outer}; ++o)",
                  f"    for (size_t i = 0; i < {inner}; ++i) {{",
                  f"        const {dtype.ctype} *p = x + o * {n * inner} + i;",
                  f"        for (size_t m = 0; m < {n}; ++m)",
                  "            order[m] = m;",
                  f"        for (size_t j = 0; j < {k}; ++j) {{   /* selection: best of the rest */",
                  "            size_t best = j;",
                  f"            for (size_t m = j + 1; m < {n}; ++m) {{",
                  f"                const {ct} a = {load(ctx, dtype, f'p[order[m] * {inner}]')};",
                  f"                const {ct} b = {load(ctx, dtype, f'p[order[best] * {inner}]')};",
                  f"                if (a {better} b || (a == b && order[m] < order[best]))",
                  "                    best = m;",
                  "            }",
                  "            const size_t picked = order[best];",
                  "            order[best] = order[j];",
                  "            order[j] = picked;",
                  f"            values[{out_index}] = p[picked * {inner}];"]
        if indices:
            lines.append(f"            indices[{out_index}] = (int64_t)picked;")
        lines += ["        }", "    }"]
        ctx.emit(block(lines))


# --- OneHot ------------------------------------------------------------------------------------
@register("OneHot", since=9)
class OneHot(Op):
    """y = values[1] where the (depth-wrapped) index equals the position along ``axis``, else
    values[0]; indices outside [-depth, depth) give a row of values[0]"""

    def infer(self, ctx):
        indices, values = ctx.types[0], ctx.types[2]
        if ctx.types[1].size != 1 or values.size != 2:
            raise ctx.fail(f"depth {ctx.types[1]} must hold one value and values {values} two")
        rank = indices.rank + 1
        axis = normalize_axis(ctx.node.attr("axis", -1), rank, ctx.node)
        if ctx.runtime(1):
            shape = ctx.declared(0, 1, "depth")
            if len(shape) != rank or tuple(shape[:axis]) + tuple(shape[axis + 1:]) != \
                    indices.shape:
                raise ctx.fail(f"the declared shape {list(shape)} is no one-hot of {indices}")
        else:
            depth = int(_first(ctx.value(1, "depth")))
            if depth < 1:
                raise ctx.fail(f"depth {depth} must be positive")
            shape = indices.shape[:axis] + (depth,) + indices.shape[axis:]
        return [TensorType(values.dtype, tuple(shape))]

    def reference(self, node, indices, depth, values):
        depth = int(_first(depth))
        axis = normalize_axis(node.attr("axis", -1), indices.ndim + 1, node)
        idx = indices.astype(np.int64)
        idx = np.where(idx < 0, idx + depth, idx)
        shape = [1] * (indices.ndim + 1)
        shape[axis] = depth
        hot = np.expand_dims(idx, axis) == np.arange(depth).reshape(shape)
        return [np.where(hot, values[1], values[0]).astype(values.dtype)]

    def lower(self, node, ctx):
        indices, depth_name, values, y = node.inputs[0], node.inputs[1], node.inputs[2], \
            node.outputs[0]
        shape = ctx.shape(y)
        axis = normalize_axis(node.attr("axis", -1), len(shape), node)
        outer, depth, inner = split_at(shape, axis)
        lines = []
        if ctx.known(depth_name) is None:
            lines.append(ctx.check_statement(f"(int64_t){ctx.ptr(depth_name)}[0] == {depth}",
                                             f"run-time depth {depth_name} is the declared "
                                             f"{depth}"))
        if ctx.type(y).size == 0:
            ctx.emit(block(lines) if lines else "/* no elements */")
            return
        it, vt = ctx.ctype(indices), ctx.ctype(values)
        lines += [f"const {it} *idx = {ctx.ptr(indices)};",
                  f"const {vt} *v = {ctx.ptr(values)};", f"{vt} *y = {ctx.ptr(y)};",
                  f"for (size_t o = 0; o < {outer}; ++o)",
                  f"    for (size_t i = 0; i < {inner}; ++i) {{",
                  f"        int64_t at = (int64_t)idx[o * {inner} + i];",
                  "        if (at < 0)",
                  f"            at += {depth};",
                  f"        for (size_t d = 0; d < {depth}; ++d)",
                  f"            y[(o * {depth} + d) * {inner} + i] = (int64_t)d == at ? v[1] : v[0];",
                  "    }"]
        ctx.emit(block(lines))


# --- Compress ----------------------------------------------------------------------------------
@register("Compress", since=9)
class Compress(Op):
    """y = the slices of x along ``axis`` (of flattened x without one) whose condition holds"""

    def infer(self, ctx):
        x, cond = ctx.types[0], ctx.types[1]
        if cond.rank != 1 or cond.dtype != dtypes.BOOL:
            raise ctx.fail(f"condition {cond} must be a 1-D bool tensor")
        axis = ctx.node.attr("axis")
        lead = () if axis is None else x.shape[:normalize_axis(axis, x.rank, ctx.node)]
        trail = () if axis is None else x.shape[normalize_axis(axis, x.rank, ctx.node) + 1:]
        n = x.size if axis is None else x.shape[normalize_axis(axis, x.rank, ctx.node)]
        if ctx.runtime(1):
            shape = ctx.declared(0, 1, "condition")
            if len(shape) != len(lead) + 1 + len(trail) or tuple(shape[:len(lead)]) != lead or \
                    tuple(shape[len(lead) + 1:]) != trail or shape[len(lead)] > n:
                raise ctx.fail(f"the declared shape {list(shape)} is no selection from {x}")
        else:
            kept = int(np.count_nonzero(ctx.value(1, "condition")[:n]))
            shape = lead + (kept,) + trail
        return [TensorType(x.dtype, tuple(shape))]

    def reference(self, node, x, cond):
        axis = node.attr("axis")
        return [np.compress(cond, x, axis=axis)]

    def lower(self, node, ctx):
        x, cond, y = node.inputs[0], node.inputs[1], node.outputs[0]
        shape = ctx.shape(x)
        axis = node.attr("axis")
        if axis is None:
            outer, n, inner = 1, ctx.type(x).size, 1
        else:
            outer, n, inner = split_at(shape, normalize_axis(axis, len(shape), node))
        kept = ctx.shape(y)[0 if axis is None else normalize_axis(axis, len(shape), node)]
        usable = min(n, ctx.type(cond).size)
        ct = ctx.ctype(x)
        lines = [f"const bool *c = {ctx.ptr(cond)};", "size_t kept = 0;",
                 f"for (size_t m = 0; m < {usable}; ++m)", "    kept += c[m] ? 1 : 0;",
                 ctx.check_statement(f"kept == {kept}", f"conditions that hold match the "
                                                        f"declared {kept}")]
        if outer * kept * inner:
            lines += [f"const {ct} *x = {ctx.ptr(x)};", f"{ct} *y = {ctx.ptr(y)};",
                      "size_t j = 0;",
                      f"for (size_t m = 0; m < {usable}; ++m) {{",
                      "    if (!c[m])", "        continue;",
                      f"    for (size_t o = 0; o < {outer}; ++o)",
                      f"        memcpy(y + (o * {kept} + j) * {inner}, x + (o * {n} + m) * {inner}, "
                      f"{inner} * sizeof(*y));",
                      "    ++j;", "}"]
        ctx.emit(block(lines))


# --- NonZero -----------------------------------------------------------------------------------
@register("NonZero", since=9)
class NonZero(Op):
    """y [rank, count] = the coordinates of x's non-zero elements, row-major order"""

    def infer(self, ctx):
        x = ctx.types[0]
        if ctx.known(0) is not None:
            count = int(np.count_nonzero(ctx.known(0)))
            return [TensorType(dtypes.INT64, (max(x.rank, 1), count))]
        shape = ctx.declared(0, 0, "the count of non-zero elements of")
        if len(shape) != 2 or shape[0] != max(x.rank, 1):
            raise ctx.fail(f"the declared shape {list(shape)} must be [{max(x.rank, 1)}, count]")
        return [TensorType(dtypes.INT64, tuple(shape))]

    def reference(self, node, x):
        return [np.array(np.nonzero(x.reshape(-1) if x.ndim == 0 else x), np.int64)
                .reshape(max(x.ndim, 1), -1)]

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        shape = ctx.shape(x) or (1,)
        count = ctx.shape(y)[1]
        dtype = ctx.type(x).dtype
        zero = "0" if dtype.short not in ("f16", "bf16") else "0.0f"
        value = load(ctx, dtype, "x[e]")
        lines = [f"const {dtype.ctype} *x = {ctx.ptr(x)};", f"int64_t *y = {ctx.ptr(y)};",
                 "size_t count = 0;",
                 f"for (size_t e = 0; e < {ctx.type(x).size}; ++e) {{",
                 f"    if ({value} == {zero})", "        continue;",
                 f"    if (count < {count}) {{", "        size_t rest = e;"]
        for d in reversed(range(len(shape))):
            lines += [f"        y[{d * count} + count] = (int64_t)(rest % {shape[d]});",
                      f"        rest /= {shape[d]};"]
        lines += ["        (void)rest;", "    }", "    ++count;", "}",
                  ctx.check_statement(f"count == {count}", f"non-zero elements match the "
                                                           f"declared {count}")]
        ctx.emit(block(lines))


# --- Unique ------------------------------------------------------------------------------------
def _unique_items(shape: tuple, axis) -> tuple:
    """(outer, n, inner): Unique compares n items, each outer x inner elements."""
    if axis is None:
        return 1, int(np.prod(shape, dtype=np.int64)), 1
    return split_at(shape, axis)


@register("Unique", since=11)
class Unique(Op):
    """Y, indices, inverse_indices, counts = the distinct elements of x (or slices along
    ``axis``), ascending (``sorted``=1) or in order of first occurrence; the index of each one's
    first occurrence, the distinct item each item of x equals, how often each occurs.

    The count is a run-time value: known when x is, or when x has at most one item; otherwise
    the model must declare Y's static shape (or that of indices or counts) and the kernel
    checks the count against it."""

    def _axis(self, node, rank):
        axis = node.attr("axis")
        return None if axis is None else normalize_axis(axis, rank, node)

    def infer(self, ctx):
        x = ctx.types[0]
        if not (x.dtype.is_float or x.dtype.is_integer or x.dtype == dtypes.BOOL) or \
                x.dtype.short in NARROW_TYPES:
            raise ctx.fail(f"no kernel for element type {x.dtype}")
        axis = self._axis(ctx.node, x.rank)
        outer, n, inner = _unique_items(x.shape, axis)
        if ctx.known(0) is not None:
            count = self.reference(ctx.node, ctx.known(0))[3].size
        elif n <= 1:                    # zero or one item: that many distinct ones
            count = n
        else:
            count = self._declared_count(ctx, x, axis, n)
        y = (count,) if axis is None else x.shape[:axis] + (count,) + x.shape[axis + 1:]
        return [TensorType(x.dtype, y), TensorType(dtypes.INT64, (count,)),
                TensorType(dtypes.INT64, (n,)), TensorType(dtypes.INT64, (count,))]

    def _declared_count(self, ctx, x, axis, n) -> int:
        outputs = ctx.node.outputs
        for k in (0, 1, 3):            # Y, indices or counts, whichever the model declares
            t = ctx.graph.types.get(outputs[k]) if k < len(outputs) and outputs[k] else None
            if t is not None and t.is_static:
                shape = ctx.declared(k, 0, "the number of distinct items of")
                break
        else:
            shape, k = ctx.declared(0, 0, "the number of distinct items of"), 0
        if k:
            count = shape[0] if len(shape) == 1 else -1
        elif axis is None:
            count = shape[0] if len(shape) == 1 else -1
        else:
            count = shape[axis] if len(shape) == x.rank and all(
                d == s for i, (d, s) in enumerate(zip(shape, x.shape)) if i != axis) else -1
        if not 1 <= count <= n:
            raise ctx.fail(f"the declared shape {list(shape)} of {outputs[k]!r} gives no count "
                           f"of distinct items of {x} in [1, {n}]")
        return count

    def reference(self, node, x):
        axis = self._axis(node, x.ndim)
        flat = x.reshape(-1) if axis is None else x
        wide = flat.astype(np.float64) if flat.dtype.kind == "V" or \
            str(flat.dtype) == "bfloat16" else flat
        _, index, inverse, counts = np.unique(wide, return_index=True, return_inverse=True,
                                              return_counts=True, axis=axis)
        inverse = inverse.reshape(-1)
        if not node.attr("sorted", 1):
            perm = np.argsort(index, kind="stable")
            rank = np.empty_like(perm)
            rank[perm] = np.arange(perm.size)
            index, counts, inverse = index[perm], counts[perm], rank[inverse]
        y = np.take(flat, index, axis=0 if axis is None else axis)
        return [y, index.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64)]

    def scratch_bytes(self, node, graph):
        x = graph.types[node.inputs[0]]
        outer, n, inner = _unique_items(x.shape, self._axis(node, x.rank))
        return 8 * n * (outer * inner + 5)

    def lower(self, node, ctx):
        x = node.inputs[0]
        outs = list(node.outputs) + [""] * (4 - len(node.outputs))
        shape = ctx.shape(x)
        axis = self._axis(node, len(shape))
        outer, n, inner = _unique_items(shape, axis)
        if outs[1] or outs[3]:
            count = ctx.shape(outs[1] or outs[3])[0]
        else:
            count = ctx.shape(outs[0])[0 if axis is None else axis]
        if n == 0:
            ctx.emit("/* no items */")
            return
        dtype = ctx.type(x).dtype
        if dtype.is_float:
            kt, fn = "double", "unique_f64"
        elif np.dtype(dtype.numpy).kind == "i":
            kt, fn = "int64_t", "unique_i64"
        else:
            kt, fn = "uint64_t", "unique_u64"
        width = outer * inner
        lines = [f"const {dtype.ctype} *x = {ctx.ptr(x)};",
                 f"unsigned char *s = (unsigned char *){ctx.scratch('double')};",
                 f"{kt} *keys = ({kt} *)s;",
                 f"size_t *order = (size_t *)(s + {8 * n * width});",
                 f"size_t *tmp = order + {n};",
                 f"int64_t *first = (int64_t *)(s + {8 * n * (width + 2)});",
                 f"int64_t *inverse = first + {n};",
                 f"int64_t *counts = inverse + {n};",
                 f"for (size_t o = 0; o < {outer}; ++o)",
                 f"    for (size_t i = 0; i < {n}; ++i)",
                 f"        for (size_t e = 0; e < {inner}; ++e)",
                 f"            keys[i * {width} + o * {inner} + e] = "
                 f"({kt}){load(ctx, dtype, f'x[(o * {n} + i) * {inner} + e]')};",
                 f"const size_t distinct = {ctx.fn('unique', fn)}(keys, {n}, {width}, "
                 f"{'true' if node.attr('sorted', 1) else 'false'}, order, tmp, first, inverse, "
                 f"counts);",
                 ctx.check_statement(f"distinct == {count}",
                                     f"distinct items match the declared {count}")]
        if outs[0]:
            lines += [f"{dtype.ctype} *y = {ctx.ptr(outs[0])};",
                      f"for (size_t o = 0; o < {outer}; ++o)",
                      f"    for (size_t u = 0; u < {count}; ++u)",
                      f"        memcpy(y + (o * {count} + u) * {inner}, "
                      f"x + (o * {n} + (size_t)first[u]) * {inner}, {inner} * sizeof(*y));"]
        for name, src, size in ((outs[1], "first", count), (outs[2], "inverse", n),
                                (outs[3], "counts", count)):
            if name and size:
                lines.append(f"memcpy({ctx.ptr(name)}, {src}, {size} * sizeof(int64_t));")
        ctx.emit(block(lines))
