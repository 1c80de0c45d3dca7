"""Data movement: Transpose, Concat, Split, Slice, Gather, GatherElements, Tile, Expand, Pad,
DepthToSpace, SpaceToDepth and Range.

These ops only move bytes, so one code shape covers them all, for every element type: a loop
nest over the output where each dimension advances the source by a fixed stride (Transpose,
Slice, Tile, Expand) or through a small table of offsets computed at compile time (Gather with
known indices, Pad reflect/edge/wrap, nearest Resize). Dimensions that move contiguously on
both sides are merged, and a contiguous innermost run becomes one ``memcpy``:

    {
        const float *x = ((const float *)inputs[0]);
        float *y = ((float *)outputs[0]);
        for (size_t i0 = 0; i0 < 6; ++i0)
            memcpy(y + 16 + i0 * 40, x + i0 * 24, 24 * sizeof(*y));
    }

A big nest is split over the thread pool like any generated loop (``codegen.loops.emit_nest``):
tasks take ranges of its outer dimensions, or pieces of one long memcpy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..codegen.loops import c_literal, compute_ctype, emit_nest
from ..codegen.names import c_comment
from ..ir.graph import Node, TensorType, is_splat, splat
from .registry import InferContext, Op, attr_ints, normalize_axis, register

MEMCPY_MIN = 4          # contiguous runs at least this long are copied with memcpy


# --- loop nests for data movement ----------------------------------------------------------------
def strides_of(shape) -> list:
    """Row-major element strides of ``shape``."""
    strides, step = [], 1
    for d in reversed(tuple(shape)):
        strides.append(step)
        step *= int(d)
    return strides[::-1]


@dataclass(frozen=True)
class Axis:
    """One dimension of a copy: its extent, the destination stride, and the source stride or a
    table of source offsets (one per step, in elements)."""
    size: int
    dst: int
    src: int = 0
    table: tuple | None = None


def _as_affine(axis: Axis) -> tuple:
    """(axis, offset): a table with a constant step becomes a stride plus a start offset."""
    t = axis.table
    if t is None:
        return axis, 0
    step = t[1] - t[0] if len(t) > 1 else 0
    if all(t[i + 1] - t[i] == step for i in range(len(t) - 1)):
        return Axis(axis.size, axis.dst, step), t[0]
    return axis, 0


def simplify(axes: list, src_offset: int = 0) -> tuple:
    """Drop unit dimensions, turn affine tables into strides, merge contiguous neighbours."""
    kept = []
    for axis in axes:
        axis, offset = _as_affine(axis)
        src_offset += offset
        if axis.size != 1:
            kept.append(axis)
    merged: list = []
    for axis in kept:
        prev = merged[-1] if merged else None
        if prev is not None and prev.table is None and axis.table is None \
                and prev.dst == axis.dst * axis.size and prev.src == axis.src * axis.size:
            merged[-1] = Axis(prev.size * axis.size, axis.dst, axis.src)
        else:
            merged.append(axis)
    return merged, src_offset


def index_expr(offset: int, terms: list) -> str:
    """``offset + i0 * 12 - i1 * 3 + t0[i2]`` from (expression, multiplier) terms."""
    text = str(offset) if offset else ""
    for expr, k in terms:
        if k == 0:
            continue
        piece = expr if abs(k) == 1 else f"{expr} * {abs(k)}"
        if not text:
            text = piece if k > 0 else f"-{piece}"
        else:
            text += f" + {piece}" if k > 0 else f" - {piece}"
    return text or "0"


def offset_ctype(values) -> str:
    return "int32_t" if all(-(1 << 31) <= int(v) < (1 << 31) for v in values) else "int64_t"


def offset_table(ctx, values, hint: str) -> str:
    """A static table of element offsets, int32 where they fit."""
    values = [int(v) for v in values]
    return ctx.table(offset_ctype(values), values, hint)


def _block(lines: list) -> str:
    return "{\n" + "\n".join("    " + line for line in lines) + "\n}"


def copy_nest(ctx, dst: str, src: str, axes: list, dst_offset: int = 0, src_offset: int = 0,
              hint: str = "offsets", comment: str | None = None) -> None:
    """Emit ``y[dst pattern] = x[src pattern]`` over ``axes`` (see ``Axis``)."""
    if any(a.size == 0 for a in axes):
        return
    axes, src_offset = simplify(axes, src_offset)
    row = None
    if axes and axes[-1].table is None and axes[-1].dst == 1 and axes[-1].src == 1 \
            and axes[-1].size >= MEMCPY_MIN:
        row = axes.pop()
    ctype = ctx.ctype(dst)
    lines = [f"/* {comment} */"] if comment else []
    lines += [f"const {ctype} *x = {ctx.ptr(src)};", f"{ctype} *y = {ctx.ptr(dst)};"]
    y_terms = [(f"i{k}", a.dst) for k, a in enumerate(axes)]
    x_terms = []
    for k, a in enumerate(axes):
        if a.table is not None:
            x_terms.append((f"{offset_table(ctx, a.table, hint)}[i{k}]", 1))
        else:
            x_terms.append((f"i{k}", a.src))
    y_index, x_index = index_expr(dst_offset, y_terms), index_expr(src_offset, x_terms)
    dims = [a.size for a in axes]
    if row is None:
        emit_nest(ctx, lines, dims, [f"y[{y_index}] = x[{x_index}];"])
        return

    def copy_row(start: str, count: str) -> list:      # count elements from start of the row
        y_at, x_at = (_at(p, index, start) for p, index in (("y", y_index), ("x", x_index)))
        return [f"memcpy({y_at}, {x_at}, {count} * sizeof(*y));"]
    emit_nest(ctx, lines, dims, copy_row, row=row.size)


def _at(pointer: str, index: str, start: str) -> str:
    """``pointer + index + start``, leaving out zero terms."""
    terms = [t for t in (index, start) if t != "0"]
    return " + ".join([pointer] + terms)


def value_literal(value, dtype) -> str:
    """A C literal of one element in the storage type (raw bits for f16 / bf16 and the narrow
    types, which are stored as one byte each)."""
    if dtype.short in ("f16", "bf16") or dtype.is_narrow:
        raw = np.asarray(value).astype(dtype.numpy).reshape(1)
        bits = raw.view(np.uint16 if dtype.itemsize == 2 else np.uint8)[0]
        return f"0x{int(bits):0{2 * dtype.itemsize}X}"
    return c_literal(np.asarray(value).reshape(-1)[0], dtype)


def fill(ctx, dst: str, value, dtype) -> None:
    """Fill the whole of ``dst`` with one value (a literal, or a C expression string)."""
    t = ctx.type(dst)
    if t.size == 0:
        return
    if not isinstance(value, str) and not np.asarray(value).astype(dtype.numpy).any() \
            and not np.signbit(np.asarray(value, np.float64)).any():
        ctx.emit(f"memset({ctx.ptr(dst)}, 0, {t.nbytes});")
        return
    v = value if isinstance(value, str) else value_literal(value, dtype)
    emit_nest(ctx, [f"{t.dtype.ctype} *y = {ctx.ptr(dst)};"], [t.size], [f"y[i0] = {v};"])


def store_known(ctx, name: str, array: np.ndarray) -> None:
    """Write a value known at compile time (kept in the weight blob) into ``name``."""
    t = ctx.type(name)
    if t.size == 0:
        return
    array = np.ascontiguousarray(np.asarray(array, t.dtype.numpy).reshape(t.shape))
    ctx.emit(f"memcpy({ctx.ptr(name)}, {ctx.weight(f'{name}:value', array)}, {t.nbytes});")


def known(ctx, name: str) -> np.ndarray:
    """The compile-time value of ``name`` while lowering (see LoweringContext.value)."""
    return ctx.value(name)


def keep_splat(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """A movement of a one-value constant is that value in the new shape (stays compact)."""
    if is_splat(x) and out.size > 1:
        return splat(x.reshape(-1)[0], x.dtype, out.shape)
    return out


def _ints(ctx: InferContext, i: int, what: str) -> list:
    return [int(v) for v in np.asarray(ctx.value(i, what)).reshape(-1)]


def _attr_to_input(node: Node, graph, key: str, name: str, dtype=np.int64):
    """Move attribute ``key`` into a new constant; returns its name ("" if absent)."""
    if key not in node.attrs:
        return ""
    const = graph.unique_name(f"{node.outputs[0]}_{name}")
    graph.add_constant(const, np.array(node.attrs[key], dtype))
    return const


class Movement(Op):
    """Pure data movement: no arithmetic."""
    def flops(self, node, graph):
        return 0


# --- Transpose ----------------------------------------------------------------------------------
@register("Transpose", since=1)
class Transpose(Movement):
    """y = x with its axes permuted by ``perm`` (default: reversed)."""
    def perm(self, node, rank, fail):
        perm = attr_ints(node, "perm") or list(range(rank))[::-1]
        if sorted(perm) != list(range(rank)):
            raise fail(f"perm {perm} is not a permutation of 0..{rank - 1}")
        return perm

    def infer(self, ctx):
        x = ctx.types[0]
        perm = self.perm(ctx.node, x.rank, ctx.fail)
        return [TensorType(x.dtype, tuple(x.shape[p] for p in perm))]

    def reference(self, node, x):
        return [keep_splat(x, np.transpose(x, self.perm(node, x.ndim, ValueError)))]

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        perm = self.perm(node, ctx.type(x).rank, ValueError)
        xs, ys = strides_of(ctx.shape(x)), strides_of(ctx.shape(y))
        copy_nest(ctx, y, x, [Axis(d, ys[k], xs[perm[k]]) for k, d in enumerate(ctx.shape(y))])


# --- Concat and Split ---------------------------------------------------------------------------
@register("Concat", since=4)
class Concat(Movement):
    """y = the inputs joined along ``axis``."""
    def infer(self, ctx):
        ts = [t for t in ctx.types if t is not None]
        rank = ts[0].rank
        axis = normalize_axis(ctx.node.attr("axis", 0), rank, ctx.node)
        for t in ts[1:]:
            if t.rank != rank or any(a != b for k, (a, b) in enumerate(zip(t.shape, ts[0].shape))
                                     if k != axis):
                raise ctx.fail(f"inputs {ts[0]} and {t} differ outside axis {axis}")
            if t.dtype != ts[0].dtype:
                raise ctx.fail(f"inputs mix element types {ts[0].dtype} and {t.dtype}")
        shape = list(ts[0].shape)
        shape[axis] = sum(t.shape[axis] for t in ts)
        return [TensorType(ts[0].dtype, tuple(shape))]

    def reference(self, node, *xs):
        xs = [x for x in xs if x is not None]
        axis = node.attr("axis", 0)
        return [np.concatenate(xs, axis=axis)]

    def lower(self, node, ctx):
        y = node.outputs[0]
        axis = normalize_axis(node.attr("axis", 0), ctx.type(y).rank, node)
        ys = strides_of(ctx.shape(y))
        in_place = ctx.plan.slices.get(ctx.node_index, {})    # inputs the memory plan put in
        start = 0                                              # their slice of y: no copy
        for k, x in enumerate(node.inputs):
            if not x:
                continue
            shape = ctx.shape(x)
            xs = strides_of(shape)
            if k in in_place:
                ctx.emit(f"/* input {k}: {c_comment(x)} was written in place at byte "
                         f"{in_place[k]} of {c_comment(y)}: no copy */")
            else:
                copy_nest(ctx, y, x, [Axis(d, ys[i], xs[i]) for i, d in enumerate(shape)],
                          dst_offset=start * ys[axis], comment=f"input {k}: {x}")
            start += shape[axis]


@register("Split", since=2)
class Split(Movement):
    """ys = x cut along ``axis`` into parts of the sizes ``split`` (an input from opset 13),
    else into equal parts (``num_outputs`` from opset 18; the last part may be smaller)."""
    def canonicalize(self, node, version, graph):
        if version >= 13 or "split" not in node.attrs:
            return [node]
        split = _attr_to_input(node, graph, "split", "split")
        attrs = {k: v for k, v in node.attrs.items() if k != "split"}
        return [node.replace(inputs=(node.inputs[0], split), attrs=attrs)]

    def sizes(self, node, dim, split, fail):
        n = len(node.outputs)
        if split is not None:
            split = [int(s) for s in split]
            if len(split) != n or sum(split) != dim or min(split, default=0) < 0:
                raise fail(f"split {split} does not cut a dimension of {dim} into {n} parts")
            return split
        n = int(node.attr("num_outputs", n))
        if n != len(node.outputs):
            raise fail(f"num_outputs={n} but the node has {len(node.outputs)} outputs")
        chunk = -(-dim // n)
        sizes = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
        if sizes[-1] < 0 or ("num_outputs" not in node.attrs and dim % n):
            raise fail(f"cannot split a dimension of {dim} into {n} equal parts")
        return sizes

    def infer(self, ctx):
        x = ctx.types[0]
        axis = normalize_axis(ctx.node.attr("axis", 0), x.rank, ctx.node)
        split = _ints(ctx, 1, "split") if ctx.has(1) and not ctx.runtime(1) else None
        if ctx.runtime(1):                # read at run time: the declared parts, checked
            split = []
            for k, name in enumerate(ctx.node.outputs):
                shape = ctx.declared(k, 1, "split") if name else ()
                if len(shape) != x.rank or any(d != e for i, (d, e) in
                                               enumerate(zip(shape, x.shape)) if i != axis):
                    raise ctx.fail(f"the declared shape {list(shape)} of output {name!r} is "
                                   f"no part of {x} along axis {axis}")
                split.append(shape[axis])
        out = []
        for s in self.sizes(ctx.node, x.shape[axis], split, ctx.fail):
            shape = list(x.shape)
            shape[axis] = s
            out.append(TensorType(x.dtype, tuple(shape)))
        return out

    def reference(self, node, x, split=None):
        axis = node.attr("axis", 0) % x.ndim
        sizes = self.sizes(node, x.shape[axis], None if split is None else split.reshape(-1),
                           ValueError)
        return np.split(x, np.cumsum(sizes)[:-1], axis=axis)

    def lower(self, node, ctx):
        x = node.inputs[0]
        shape = ctx.shape(x)
        axis = normalize_axis(node.attr("axis", 0), len(shape), node)
        has_split = len(node.inputs) > 1 and node.inputs[1]
        split = ctx.known(node.inputs[1]) if has_split else None
        if has_split and split is None:   # read at run time: it must be the declared parts
            split = [ctx.shape(y)[axis] for y in node.outputs]
            ctx.check(f"nn_dims_equal({ctx.ptr(node.inputs[1])}, "
                      f"{ctx.table('int64_t', split, 'dims')}, {len(split)})",
                      f"run-time split is the declared {split}")
        split = None if split is None else np.asarray(split).reshape(-1)
        xs = strides_of(shape)
        start = 0
        for y, size in zip(node.outputs, self.sizes(node, shape[axis], split, ValueError)):
            if y:
                out = ctx.shape(y)
                ys = strides_of(out)
                copy_nest(ctx, y, x, [Axis(d, ys[i], xs[i]) for i, d in enumerate(out)],
                          src_offset=start * xs[axis], comment=f"output {y}")
            start += size


# --- Slice --------------------------------------------------------------------------------------
def slice_plan(shape, starts, ends, axes, steps, fail) -> list:
    """Per dimension (start, step, count), clamped as the ONNX spec says."""
    rank = len(shape)
    plan = [(0, 1, d) for d in shape]
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise fail("starts, ends, axes and steps differ in length")
    seen = set()
    for start, end, axis, step in zip(starts, ends, axes, steps):
        if not -rank <= axis < rank:
            raise fail(f"axis {axis} out of range for rank {rank}")
        axis %= rank
        if axis in seen:
            raise fail(f"axis {axis} is sliced twice")
        seen.add(axis)
        if step == 0:
            raise fail("a step of 0")
        dim = shape[axis]
        start = start + dim if start < 0 else start
        end = end + dim if end < 0 else end
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
            count = max(0, -(-(end - start) // step))
        else:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
            count = max(0, -(-(start - end) // -step))
        plan[axis] = (start, step, count)
    return plan


@register("Slice", since=1)
class Slice(Movement):
    """y = x[starts:ends:steps] along ``axes`` (attributes before opset 10, inputs after)."""
    def canonicalize(self, node, version, graph):
        if version >= 10:
            return [node]
        inputs = [node.inputs[0]] + [_attr_to_input(node, graph, k, k)
                                     for k in ("starts", "ends", "axes")]
        return [node.replace(inputs=tuple(inputs), attrs={})]

    def plan(self, node, shape, args, fail):
        vals = [None if a is None else [int(v) for v in np.asarray(a).reshape(-1)] for a in args]
        vals += [None] * (4 - len(vals))
        return slice_plan(shape, vals[0], vals[1], vals[2], vals[3], fail)

    def _args(self, ctx):
        return [_ints(ctx, i, what) if ctx.has(i) else None
                for i, what in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps"))]

    def infer(self, ctx):
        x = ctx.types[0]
        runtime = [i for i in range(1, 5) if ctx.runtime(i)]
        if runtime:                       # read at run time: the declared shape, checked
            shape = ctx.declared(0, runtime[0], ("starts", "ends", "axes", "steps")[runtime[0] - 1])
            if len(shape) != x.rank:
                raise ctx.fail(f"the declared output shape {list(shape)} is no slice of {x}")
            return [TensorType(x.dtype, shape)]
        plan = self.plan(ctx.node, x.shape, self._args(ctx), ctx.fail)
        return [TensorType(x.dtype, tuple(c for _, _, c in plan))]

    def reference(self, node, x, *args):
        plan = self.plan(node, x.shape, list(args), ValueError)
        index = tuple(slice(s, s + st * c if s + st * c >= 0 else None, st) if c else slice(0, 0)
                      for s, st, c in plan)
        return [keep_splat(x, x[index])]

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        shape = ctx.shape(x)
        args = [ctx.known(i) if i else None for i in node.inputs[1:]]
        if any(i and a is None for i, a in zip(node.inputs[1:], args)):
            _runtime_slice(ctx, node)
            return
        plan = self.plan(node, shape, args, ValueError)
        xs, ys = strides_of(shape), strides_of(ctx.shape(y))
        axes = [Axis(c, ys[k], xs[k] * st) for k, (_, st, c) in enumerate(plan)]
        copy_nest(ctx, y, x, axes, src_offset=sum(s * xs[k] for k, (s, _, _) in enumerate(plan)))


def runtime_ints(ctx, name: str, var: str, count: int, default: str) -> list:
    """C lines declaring ``int64_t var[count]`` from input ``name`` (any integer type, read
    at run time or known), or from ``default`` (an expression of k) when it is absent."""
    if not name:
        source = default
    elif ctx.known(name) is not None:
        source = f"{ctx.table('int64_t', np.asarray(ctx.known(name)).reshape(-1), var)}[k]"
    else:
        source = f"(int64_t){ctx.ptr(name)}[k]"
    return [f"int64_t {var}[{max(count, 1)}];",
            f"for (size_t k = 0; k < {count}; ++k) {var}[k] = {source};"]


def runtime_copy(ctx, x: str, y: str, first: str, step: str) -> list:
    """C lines copying y[i...] = x[(first[d] + i_d * step[d]) ...] over y's shape, with
    ``first`` and ``step`` run-time arrays (per axis of x)."""
    shape, out = ctx.shape(x), ctx.shape(y)
    xs, ys = strides_of(shape), strides_of(out)
    ctype = ctx.ctype(y)
    lines = [f"const {ctype} *x = {ctx.ptr(x)};", f"{ctype} *y = {ctx.ptr(y)};",
             "ptrdiff_t base = 0;", f"ptrdiff_t sx[{len(shape)}];",
             f"for (int d = 0; d < {len(shape)}; ++d) {{",
             f"    base += (ptrdiff_t)({first}[d] * {ctx.table('int64_t', xs, 'strides')}[d]);",
             f"    sx[d] = (ptrdiff_t)({step}[d] * {ctx.table('int64_t', xs, 'strides')}[d]);", "}"]
    loops = [(d, n) for d, n in enumerate(out) if n != 1]
    indent, x_index, y_index = "", ["base"], []
    for k, (d, n) in enumerate(loops):
        lines.append(f"{indent}for (size_t i{k} = 0; i{k} < {n}; ++i{k})")
        indent += "    "
        x_index.append(f"(ptrdiff_t)i{k} * sx[{d}]")
        y_index.append(f"i{k}" if ys[d] == 1 else f"i{k} * {ys[d]}")
    lines.append(f"{indent}y[{' + '.join(y_index) or '0'}] = x[{' + '.join(x_index)}];")
    return lines


def _runtime_slice(ctx, node) -> None:
    """Slice with starts / ends / axes / steps read at run time: the plan (first index and
    step per axis) is computed and checked against the declared shape, then one copy nest."""
    x, y = node.inputs[0], node.outputs[0]
    shape, out = ctx.shape(x), ctx.shape(y)
    names = list(node.inputs[1:]) + [""] * (5 - len(node.inputs))
    n = ctx.type(names[0]).size
    lines = []
    for name, var, default in zip(names, ("starts", "ends", "axes", "steps"),
                                  ("0", "0", "(int64_t)k", "1")):
        lines += runtime_ints(ctx, name, var, n, default)
    rank = len(shape)
    lines += [f"int64_t first[{rank}], step[{rank}];",
              ctx.check_statement(
                  f"nn_slice_plan(starts, ends, axes, steps, {n}, "
                  f"{ctx.table('int64_t', shape, 'dims')}, {rank}, "
                  f"{ctx.table('int64_t', out, 'dims')}, first, step)",
                  f"run-time starts/ends/axes/steps give the declared {list(out)}")]
    if ctx.type(y).size:
        lines += runtime_copy(ctx, x, y, "first", "step")
    ctx.emit(_block(lines))


# --- Gather and GatherElements ------------------------------------------------------------------
def _clamped_index(k: str, n: int) -> list:
    """C lines that wrap a negative index and clamp it into [0, n) (never read outside)."""
    return [f"if ({k} < 0) {k} += {n};",
            f"if ({k} < 0) {k} = 0; else if ({k} >= {n}) {k} = {n - 1};  /* out of range: clamp */"]


def _index_loop(ctx, node, axes: list, body: list) -> None:
    """Emit a loop nest over ``axes`` whose body (lines) reads indices from ``ind``."""
    x, ind, y = node.inputs[0], node.inputs[1], node.outputs[0]
    lines = [f"const {ctx.ctype(x)} *x = {ctx.ptr(x)};",
             f"const {ctx.ctype(ind)} *ind = {ctx.ptr(ind)};", f"{ctx.ctype(y)} *y = {ctx.ptr(y)};"]
    inner = math.prod(ctx.shape(y)) // max(1, math.prod(a.size for a in axes))
    emit_nest(ctx, lines, [a.size for a in axes], body, cost=inner)   # a body moves inner elements


@register("Gather", since=1)
class Gather(Movement):
    """y = x indexed along ``axis`` by ``indices`` (negative indices count from the end)."""
    def infer(self, ctx):
        x, ind = ctx.types[0], ctx.types[1]
        axis = normalize_axis(ctx.node.attr("axis", 0), x.rank, ctx.node)
        if not ind.dtype.is_integer:
            raise ctx.fail(f"indices must be int32 or int64, not {ind.dtype}")
        n = x.shape[axis]
        if n == 0 and ind.size:
            raise ctx.fail(f"cannot index an empty axis {axis} of {x}")
        if ctx.values[1] is not None:
            idx = np.asarray(ctx.values[1])
            if idx.size and (idx.min() < -n or idx.max() >= n):
                raise ctx.fail(f"indices {idx.reshape(-1).tolist()} out of range for a "
                               f"dimension of {n}")
        return [TensorType(x.dtype, x.shape[:axis] + ind.shape + x.shape[axis + 1:])]

    def reference(self, node, x, idx):
        axis = node.attr("axis", 0)
        return [keep_splat(x, np.take(x, idx.astype(np.int64), axis=axis))]

    def lower(self, node, ctx):
        x, ind, y = node.inputs[0], node.inputs[1], node.outputs[0]
        shape = ctx.shape(x)
        axis = normalize_axis(node.attr("axis", 0), len(shape), node)
        outer, n = int(np.prod(shape[:axis])), shape[axis]
        inner, m = int(np.prod(shape[axis + 1:])), ctx.type(ind).size
        if ctx.type(y).size == 0:
            return
        value = ctx.graph.constants.get(ind)
        if value is not None:       # indices known: a table of rows
            rows = tuple((int(i) % n) * inner for i in np.asarray(value).reshape(-1))
            copy_nest(ctx, y, x, [Axis(outer, m * inner, n * inner), Axis(m, inner, table=rows),
                                  Axis(inner, 1, 1)], hint="gather_rows")
            return
        axes = [a for a in (Axis(outer, m * inner, n * inner), Axis(m, inner, 0)) if a.size > 1]
        names = [f"i{k}" for k in range(len(axes))]
        y_index = index_expr(0, [(v, a.dst) for v, a in zip(names, axes)])
        x_index = index_expr(0, [(v, a.src) for v, a in zip(names, axes)] + [("(size_t)k", inner)])
        if inner >= MEMCPY_MIN:
            move = f"memcpy(y + {y_index}, x + {x_index}, {inner} * sizeof(*y));"
        elif inner == 1:
            move = f"y[{y_index}] = x[{x_index}];"
        else:
            move = f"for (size_t j = 0; j < {inner}; ++j) y[{y_index} + j] = x[{x_index} + j];"
        k = names[-1] if m > 1 else "0"
        _index_loop(ctx, node, axes, [f"int64_t k = ind[{k}];"] + _clamped_index("k", n) + [move])


@register("GatherElements", since=11)
class GatherElements(Movement):
    """y[i..., j, k...] = x[i..., indices[i..., j, k...], k...] along ``axis``."""
    def infer(self, ctx):
        x, ind = ctx.types[0], ctx.types[1]
        axis = normalize_axis(ctx.node.attr("axis", 0), x.rank, ctx.node)
        if ind.rank != x.rank:
            raise ctx.fail(f"indices {ind} and data {x} differ in rank")
        if x.shape[axis] == 0 and ind.size:
            raise ctx.fail(f"cannot index an empty axis of {x}")
        return [TensorType(x.dtype, ind.shape)]

    def reference(self, node, x, idx):
        axis = node.attr("axis", 0) % x.ndim
        idx = idx.astype(np.int64)
        idx = np.where(idx < 0, idx + x.shape[axis], idx)
        return [np.take_along_axis(x, idx, axis=axis)]

    def lower(self, node, ctx):
        x, ind, y = node.inputs[0], node.inputs[1], node.outputs[0]
        shape, out = ctx.shape(x), ctx.shape(y)
        axis = normalize_axis(node.attr("axis", 0), len(shape), node)
        if ctx.type(y).size == 0:
            return
        xs, ys = strides_of(shape), strides_of(out)
        dims = [k for k, d in enumerate(out) if d > 1]          # loop i<j> runs over dims[j]
        y_index = index_expr(0, [(f"i{j}", ys[k]) for j, k in enumerate(dims)])
        x_index = index_expr(0, [(f"i{j}", xs[k]) for j, k in enumerate(dims) if k != axis]
                             + [("(size_t)k", xs[axis])])
        body = [f"int64_t k = ind[{y_index}];"] + _clamped_index("k", shape[axis]) \
            + [f"y[{y_index}] = x[{x_index}];"]
        _index_loop(ctx, node, [Axis(out[k], 0) for k in dims], body)


# --- Tile and Expand ----------------------------------------------------------------------------
@register("Tile", since=6)
class Tile(Movement):
    """y = x repeated ``repeats[k]`` times along each axis k."""
    def infer(self, ctx):
        x = ctx.types[0]
        if ctx.runtime(1):                # read at run time: the declared shape, checked
            shape = ctx.declared(0, 1, "repeats")
            if len(shape) != x.rank or any(d % n if n else d for d, n in zip(shape, x.shape)):
                raise ctx.fail(f"the declared output shape {list(shape)} is no tiling of {x}")
            return [TensorType(x.dtype, shape)]
        reps = _ints(ctx, 1, "repeats")
        if len(reps) != x.rank or min(reps, default=0) < 0:
            raise ctx.fail(f"repeats {reps} must be {x.rank} non-negative counts")
        return [TensorType(x.dtype, tuple(d * r for d, r in zip(x.shape, reps)))]

    def reference(self, node, x, reps):
        return [keep_splat(x, np.tile(x, [int(r) for r in reps.reshape(-1)]))]

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        shape = ctx.shape(x)
        reps = ctx.known(node.inputs[1])
        if reps is None:                  # read at run time: it must give the declared shape
            out = ctx.shape(y)
            ctx.check(f"nn_tiled_shape_is({ctx.ptr(node.inputs[1])}, "
                      f"{ctx.table('int64_t', shape, 'dims')}, {len(shape)}, "
                      f"{ctx.table('int64_t', out, 'dims')})",
                      f"run-time repeats give the declared {list(out)}")
            reps = [n // d if d else 0 for n, d in zip(out, shape)]
        reps = [int(r) for r in np.asarray(reps).reshape(-1)]
        view = [v for d, r in zip(shape, reps) for v in (r, d)]     # [r0, d0, r1, d1, ...]
        vs, xs = strides_of(view), strides_of(shape)
        axes = []
        for k in range(len(shape)):
            axes += [Axis(reps[k], vs[2 * k], 0), Axis(shape[k], vs[2 * k + 1], xs[k])]
        copy_nest(ctx, y, x, axes)


@register("Expand", since=8)
class Expand(Movement):
    """y = x broadcast to ``shape`` (numpy rules; the result may be larger than ``shape``)."""
    def infer(self, ctx):
        x = ctx.types[0]
        if ctx.runtime(1):                # read at run time: the declared shape, checked
            shape = ctx.declared(0, 1, "shape")
            try:
                ok = np.broadcast_shapes(x.shape, shape) == shape
            except ValueError:
                ok = False
            if not ok or len(shape) < ctx.types[1].size:
                raise ctx.fail(f"{x} does not expand to the declared output shape {list(shape)}")
            return [TensorType(x.dtype, shape)]
        want = _ints(ctx, 1, "shape")
        try:
            shape = np.broadcast_shapes(x.shape, tuple(want))
        except ValueError:
            raise ctx.fail(f"{x} does not broadcast to {want}") from None
        return [TensorType(x.dtype, tuple(int(d) for d in shape))]

    def reference(self, node, x, shape):
        out = np.broadcast_shapes(x.shape, tuple(int(d) for d in shape.reshape(-1)))
        if x.size == 1 or is_splat(x):
            return [splat(x.reshape(-1)[0], x.dtype, out)]
        return [np.ascontiguousarray(np.broadcast_to(x, out))]

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        out = ctx.shape(y)
        if ctx.known(node.inputs[1]) is None:     # read at run time: check it
            ctx.check(f"nn_expanded_shape_is({ctx.ptr(node.inputs[1])}, "
                      f"{ctx.type(node.inputs[1]).size}, "
                      f"{ctx.table('int64_t', ctx.shape(x) or (1,), 'dims')}, {ctx.type(x).rank}, "
                      f"{ctx.table('int64_t', out or (1,), 'dims')}, {len(out)})",
                      f"run-time shape expands to the declared {list(out)}")
        shape = (1,) * (len(out) - ctx.type(x).rank) + ctx.shape(x)
        xs, ys = strides_of(shape), strides_of(out)
        copy_nest(ctx, y, x, [Axis(d, ys[k], 0 if shape[k] == 1 else xs[k])
                              for k, d in enumerate(out)])


# --- Pad ----------------------------------------------------------------------------------------
PAD_MODES = ("constant", "reflect", "edge", "wrap")


@register("Pad", since=2)
class Pad(Movement):
    """y = x with ``pads`` added before and after each axis (negative pads crop); the new cells
    hold ``constant_value`` or repeat the border (modes: constant, reflect, edge, wrap)."""
    def canonicalize(self, node, version, graph):
        if version >= 11:
            return [node]
        pads = _attr_to_input(node, graph, "pads", "pads")
        value = _attr_to_input(node, graph, "value", "value", np.float32)
        attrs = {k: v for k, v in node.attrs.items() if k == "mode"}
        return [node.replace(inputs=(node.inputs[0], pads, value), attrs=attrs)]

    def pads(self, node, rank, pads, axes, fail) -> list:
        """[(before, after)] per dimension."""
        pads = [int(p) for p in np.asarray(pads).reshape(-1)]
        axes = list(range(rank)) if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]
        if len(pads) != 2 * len(axes):
            raise fail(f"pads {pads} needs two values per axis ({len(axes)} axes)")
        out = [(0, 0)] * rank
        for k, a in enumerate(axes):
            if not -rank <= a < rank:
                raise fail(f"axis {a} out of range for rank {rank}")
            out[a % rank] = (pads[k], pads[k + len(axes)])
        return out

    def mode(self, node, fail):
        mode = node.attr("mode", "constant")
        if mode not in PAD_MODES:
            raise fail(f"mode {mode!r} is not supported (supported: {', '.join(PAD_MODES)})")
        return mode

    def infer(self, ctx):
        x = ctx.types[0]
        self.mode(ctx.node, ctx.fail)
        runtime = [i for i in (1, 3) if ctx.runtime(i)]
        if runtime:                       # read at run time: the declared shape, checked
            shape = ctx.declared(0, runtime[0], "pads" if runtime[0] == 1 else "axes")
            if len(shape) != x.rank:
                raise ctx.fail(f"the declared output shape {list(shape)} is no padding of {x}")
            return [TensorType(x.dtype, shape)]
        axes = ctx.value(3, "axes") if ctx.has(3) else None
        pads = self.pads(ctx.node, x.rank, ctx.value(1, "pads"), axes, ctx.fail)
        shape = tuple(d + b + e for d, (b, e) in zip(x.shape, pads))
        if any(d < 0 for d in shape):
            raise ctx.fail(f"pads {pads} crop more than {x} holds")
        if self.mode(ctx.node, ctx.fail) != "constant" and \
                any(d == 0 and (b or e) for d, (b, e) in zip(x.shape, pads)):
            raise ctx.fail("cannot pad an empty dimension except with a constant")
        return [TensorType(x.dtype, shape)]

    def reference(self, node, x, pads, value=None, axes=None):
        pads = self.pads(node, x.ndim, pads, axes, ValueError)
        crop = tuple(slice(max(-b, 0), x.shape[k] - max(-e, 0)) for k, (b, e) in enumerate(pads))
        grow = [(max(b, 0), max(e, 0)) for b, e in pads]
        mode = self.mode(node, ValueError)
        if mode == "constant":
            v = 0 if value is None or value.size == 0 else value.reshape(-1)[0]
            v = np.asarray(v).astype(x.dtype)
            return [np.pad(x[crop], grow, mode="constant", constant_values=v)]
        return [np.pad(x[crop], grow, mode={"edge": "edge", "reflect": "reflect",
                                            "wrap": "wrap"}[mode])]

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        shape, out = ctx.shape(x), ctx.shape(y)
        inputs = list(node.inputs) + [""] * (4 - len(node.inputs))
        if any(name and ctx.known(name) is None for name in (inputs[1], inputs[3])):
            self._lower_runtime(ctx, node, inputs)
            return
        axes = known(ctx, inputs[3]) if inputs[3] else None
        pads = self.pads(node, len(shape), known(ctx, inputs[1]), axes, ValueError)
        xs, ys = strides_of(shape), strides_of(out)
        if self.mode(node, ValueError) == "constant":
            self._lower_constant(ctx, node, inputs[2], shape, pads, xs, ys)
            return
        mode = {"edge": "edge", "reflect": "reflect", "wrap": "wrap"}[node.attr("mode")]
        axes = []
        for k, (d, (b, e)) in enumerate(zip(shape, pads)):
            idx = np.arange(d)[max(-b, 0):d - max(-e, 0)]
            idx = np.pad(idx, (max(b, 0), max(e, 0)), mode=mode)
            axes.append(Axis(out[k], ys[k], table=tuple(int(i) * xs[k] for i in idx)))
        copy_nest(ctx, y, x, axes, hint="pad_rows")

    def _lower_runtime(self, ctx, node, inputs):
        """Pads (or axes) read at run time: begin / end per axis are checked against the
        declared shape, then every output element finds its source per axis
        (``nn_pad_source``: inside, or the mode's border rule, or -1 for the constant)."""
        x, y = node.inputs[0], node.outputs[0]
        shape, out = ctx.shape(x), ctx.shape(y)
        rank, n = len(shape), ctx.type(inputs[1]).size // 2
        lines = runtime_ints(ctx, inputs[1], "pads", 2 * n, "0")
        if inputs[3]:
            lines += runtime_ints(ctx, inputs[3], "axes", n, "0")
        dims = ctx.table("int64_t", shape, "dims")
        lines += [f"int64_t begin[{rank}], end[{rank}];",
                  ctx.check_statement(f"nn_pad_plan(pads, {'axes' if inputs[3] else 'NULL'}, {n}, "
                                      f"{dims}, {rank}, {ctx.table('int64_t', out, 'dims')}, "
                                      f"begin, end)",
                                      f"run-time pads give the declared {list(out)}")]
        if not ctx.type(y).size:
            ctx.emit(_block(lines))
            return
        mode = {"constant": 0, "edge": 1, "reflect": 2, "wrap": 3}[self.mode(node, ValueError)]
        dtype = ctx.type(y).dtype
        if inputs[2] and ctx.known(inputs[2]) is None:
            value = f"{ctx.ptr(inputs[2])}[0]"
        else:
            v = ctx.known(inputs[2]) if inputs[2] else None
            value = value_literal(0 if v is None or v.size == 0 else v.reshape(-1)[0], dtype)
        xs = ctx.table("int64_t", strides_of(shape), "strides")
        ys = ctx.table("int64_t", out, "dims")
        ctype = dtype.ctype
        lines += [f"const {ctype} *x = {ctx.ptr(x)};", f"{ctype} *y = {ctx.ptr(y)};",
                  f"const {ctype} value = {value};",
                  f"for (size_t i = 0; i < {ctx.type(y).size}; ++i) {{",
                  "    size_t rest = i;",
                  "    ptrdiff_t at = 0;",
                  f"    for (int d = {rank - 1}; d >= 0 && at >= 0; --d) {{"
                  "       /* innermost axis first */",
                  f"        int64_t o = (int64_t)(rest % (size_t){ys}[d]);",
                  f"        rest /= (size_t){ys}[d];",
                  "        int64_t lo = begin[d] < 0 ? -begin[d] : 0;",
                  f"        int64_t kept = {dims}[d] - lo - (end[d] < 0 ? -end[d] : 0);",
                  "        int64_t j = nn_pad_source(o - (begin[d] > 0 ? begin[d] : 0), kept, "
                  f"{mode});",
                  f"        at = j < 0 ? -1 : at + (ptrdiff_t)((lo + j) * {xs}[d]);",
                  "    }",
                  "    y[i] = at < 0 ? value : x[at];",
                  "}"]
        ctx.emit(_block(lines))

    def _lower_constant(self, ctx, node, value_name, shape, pads, xs, ys):
        x, y = node.inputs[0], node.outputs[0]
        dtype = ctx.type(y).dtype
        if any(b > 0 or e > 0 for b, e in pads):
            if not value_name:
                value = 0
            elif value_name in ctx.graph.constants:
                value = ctx.graph.constants[value_name].reshape(-1)
                value = value[0] if value.size else 0
            else:
                value = f"{ctx.ptr(value_name)}[0]"
            fill(ctx, y, value, dtype)
        axes = []
        src, dst = 0, 0
        for k, (d, (b, e)) in enumerate(zip(shape, pads)):
            count = d - max(-b, 0) - max(-e, 0)
            axes.append(Axis(max(count, 0), ys[k], xs[k]))
            src += max(-b, 0) * xs[k]
            dst += max(b, 0) * ys[k]
        copy_nest(ctx, y, x, axes, dst_offset=dst, src_offset=src,
                  comment="the input inside the padding")


# --- DepthToSpace and SpaceToDepth --------------------------------------------------------------
@register("DepthToSpace", since=1)
class DepthToSpace(Movement):
    """[N, C*b*b, H, W] -> [N, C, H*b, W*b]; mode DCR (depth-column-row) or CRD."""
    def infer(self, ctx):
        x, b = ctx.types[0], int(ctx.node.attr("blocksize"))
        if x.rank != 4 or x.shape[1] % (b * b):
            raise ctx.fail(f"needs a 4-D input with channels divisible by {b * b}, got {x}")
        if ctx.node.attr("mode", "DCR") not in ("DCR", "CRD"):
            raise ctx.fail(f"mode {ctx.node.attr('mode')!r} is not supported (DCR, CRD)")
        n, c, h, w = x.shape
        return [TensorType(x.dtype, (n, c // (b * b), h * b, w * b))]

    def _view(self, node, shape):
        """(x reshaped to 6-D, transpose taking it to y viewed as [N, C, H, b, W, b])."""
        b = int(node.attr("blocksize"))
        n, c, h, w = shape
        if node.attr("mode", "DCR") == "DCR":
            return (n, b, b, c // (b * b), h, w), (0, 3, 4, 1, 5, 2)
        return (n, c // (b * b), b, b, h, w), (0, 1, 4, 2, 5, 3)

    def reference(self, node, x):
        view, perm = self._view(node, x.shape)
        n, c, h, w = x.shape
        b = int(node.attr("blocksize"))
        return [np.transpose(x.reshape(view), perm).reshape(n, c // (b * b), h * b, w * b)]

    def lower(self, node, ctx):
        view, perm = self._view(node, ctx.shape(node.inputs[0]))
        _lower_view(ctx, node, view, perm)


@register("SpaceToDepth", since=1)
class SpaceToDepth(Movement):
    """[N, C, H*b, W*b] -> [N, C*b*b, H, W]; mode DCR (block offsets before channels, the
    only form before opset 28) or CRD (channels before block offsets)."""
    def infer(self, ctx):
        x, b = ctx.types[0], int(ctx.node.attr("blocksize"))
        if x.rank != 4 or x.shape[2] % b or x.shape[3] % b:
            raise ctx.fail(f"needs a 4-D input with H and W divisible by {b}, got {x}")
        if ctx.node.attr("mode", "DCR") not in ("DCR", "CRD"):
            raise ctx.fail(f"mode {ctx.node.attr('mode')!r} is not supported (DCR, CRD)")
        n, c, h, w = x.shape
        return [TensorType(x.dtype, (n, c * b * b, h // b, w // b))]

    def _view(self, node, shape):
        b = int(node.attr("blocksize"))
        n, c, h, w = shape
        if node.attr("mode", "DCR") == "DCR":
            return (n, c, h // b, b, w // b, b), (0, 3, 5, 1, 2, 4)
        return (n, c, h // b, b, w // b, b), (0, 1, 3, 5, 2, 4)

    def reference(self, node, x):
        view, perm = self._view(node, x.shape)
        n, c, h, w = x.shape
        b = int(node.attr("blocksize"))
        return [np.transpose(x.reshape(view), perm).reshape(n, c * b * b, h // b, w // b)]

    def lower(self, node, ctx):
        view, perm = self._view(node, ctx.shape(node.inputs[0]))
        _lower_view(ctx, node, view, perm)


def _lower_view(ctx, node, view, perm) -> None:
    """y = transpose(x viewed as ``view``, ``perm``), y contiguous."""
    vs = strides_of(view)
    out = [view[p] for p in perm]
    ys = strides_of(out)
    copy_nest(ctx, node.outputs[0], node.inputs[0],
              [Axis(d, ys[k], vs[perm[k]]) for k, d in enumerate(out)])


# --- Range --------------------------------------------------------------------------------------
@register("Range", since=11)
class Range(Movement):
    """y = start, start + delta, ... up to (not including) limit."""
    def infer(self, ctx):
        runtime = [i for i in range(3) if ctx.runtime(i)]
        if runtime:                       # read at run time: the declared length, checked
            shape = ctx.declared(0, runtime[0], ("start", "limit", "delta")[runtime[0]])
            if len(shape) != 1:
                raise ctx.fail(f"the declared output shape {list(shape)} is not one dimension")
            return [TensorType(ctx.types[0].dtype, shape)]
        start, limit, delta = (np.asarray(ctx.value(i, w)).reshape(-1)[0]
                               for i, w in ((0, "start"), (1, "limit"), (2, "delta")))
        if delta == 0:
            raise ctx.fail("delta is 0")
        n = max(int(np.ceil((float(limit) - float(start)) / float(delta))), 0)
        return [TensorType(ctx.types[0].dtype, (n,))]

    def reference(self, node, start, limit, delta):
        start, limit, delta = (np.asarray(v).reshape(-1)[0] for v in (start, limit, delta))
        n = max(int(np.ceil((float(limit) - float(start)) / float(delta))), 0)
        return [(start + np.arange(n).astype(start.dtype) * delta).astype(start.dtype)]

    def lower(self, node, ctx):
        args = [ctx.known(i) for i in node.inputs]
        y = node.outputs[0]
        if all(a is not None for a in args):
            store_known(ctx, y, self.reference(node, *args)[0])
            return
        # read at run time: n = max(ceil((limit - start) / delta), 0) must be the declared n
        from .index import load as load_as_compute, store as store_from_compute
        dtype = ctx.type(y).dtype
        ctype = compute_ctype(dtype)      # f16 / bf16 compute in float
        start, limit, delta = (load_as_compute(ctx, dtype, f"{ctx.ptr(name)}[0]") if a is None
                               else c_literal(np.asarray(a).reshape(-1)[0], dtype)
                               for name, a in zip(node.inputs, args))
        n = ctx.shape(y)[0]
        lines = [f"const {ctype} start = {start}, limit = {limit}, delta = {delta};",
                 ctx.check_statement(f"delta != 0 && (int64_t)fmax(ceil(((double)limit - "
                                     f"(double)start) / (double)delta), 0.0) == {n}",
                                     f"run-time start, limit and delta give {n} values"),
                 f"{dtype.ctype} *y = {ctx.ptr(y)};",
                 f"for (size_t i = 0; i < {n}; ++i)",
                 "    y[i] = " + store_from_compute(
                     ctx, dtype, f"({ctype})(start + ({ctype})i * delta)") + ";"]
        ctx.emit(_block(lines))
