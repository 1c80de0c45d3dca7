"""Ops that write rows to positions read at run time: ReverseSequence (opset 10) and
TensorScatter (opset 24). Row copies (memcpy of whole inner blocks, any element type) in the
network source; positions outside the tensor end the run with ``<P>_ERR_SHAPE``.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir.graph import TensorType
from .index import block
from .registry import Op, normalize_axis, register


@register("ReverseSequence", since=10)
class ReverseSequence(Op):
    """y[b, t] = x[b, lens[b] - 1 - t] for t < lens[b], else x[b, t] (batch and time are axes
    0 and 1, in either order)"""

    def infer(self, ctx):
        x, lens = ctx.types[0], ctx.types[1]
        b, t = ctx.node.attr("batch_axis", 1), ctx.node.attr("time_axis", 0)
        if x.rank < 2 or {b, t} != {0, 1}:
            raise ctx.fail(f"batch_axis {b} and time_axis {t} must be 0 and 1 of {x}")
        if lens.dtype != dtypes.INT64 or lens.shape != (x.shape[b],):
            raise ctx.fail(f"sequence_lens {lens} must be i64 [{x.shape[b]}]")
        return [x]

    def reference(self, node, x, lens):
        b_axis = node.attr("batch_axis", 1)
        y = x.copy()
        for b, n in enumerate(lens):
            index = [slice(None)] * x.ndim
            index[b_axis] = b
            index[1 - b_axis] = slice(0, int(n))
            y[tuple(index)] = np.flip(x[tuple(index)], axis=0)
        return [y]

    def lower(self, node, ctx):
        x, lens, y = node.inputs[0], node.inputs[1], node.outputs[0]
        shape = ctx.shape(x)
        b_axis = node.attr("batch_axis", 1)
        batch, steps = shape[b_axis], shape[1 - b_axis]
        inner = int(np.prod(shape[2:]))
        if ctx.type(x).size == 0:
            return
        ct = ctx.ctype(x)
        at = "(t * {B} + b)" if b_axis == 1 else "(b * {T} + t)"
        dst, src = at.format(B=batch, T=steps), at.replace("t", "from").format(B=batch, T=steps)
        ctx.emit(block([
            f"const {ct} *x = {ctx.ptr(x)};", f"const int64_t *lens = {ctx.ptr(lens)};",
            f"{ct} *y = {ctx.ptr(y)};",
            f"for (size_t b = 0; b < {batch}; ++b)",
            f"    if (lens[b] < 0 || lens[b] > {steps}) {ctx.shape_error}   "
            f"/* a length outside [0, {steps}] */",
            f"for (size_t b = 0; b < {batch}; ++b)",
            f"    for (size_t t = 0; t < {steps}; ++t) {{",
            "        const size_t n = (size_t)lens[b];",
            "        const size_t from = t < n ? n - 1 - t : t;",
            f"        memcpy(y + {dst} * {inner}, x + {src} * {inner}, {inner} * sizeof(*y));",
            "    }"]))


@register("TensorScatter", since=24)
class TensorScatter(Op):
    """present = past with update's rows written along ``axis`` from write_indices[batch]
    (default 0); mode circular wraps around the axis, linear must fit"""

    def _axis(self, node, rank):
        return normalize_axis(node.attr("axis", -2), rank, node)

    def infer(self, ctx):
        past, update = ctx.types[0], ctx.types[1]
        axis = self._axis(ctx.node, past.rank)
        if ctx.node.attr("mode", "linear") not in ("linear", "circular"):
            raise ctx.fail(f"mode {ctx.node.attr('mode')!r} is not supported (supported: "
                           f"linear, circular)")
        if axis == 0 or update.rank != past.rank or update.dtype != past.dtype or \
                any(u != p for i, (u, p) in enumerate(zip(update.shape, past.shape))
                    if i != axis) or update.shape[axis] > past.shape[axis]:
            raise ctx.fail(f"update {update} does not fit past {past} along axis {axis}")
        if ctx.has(2) and (ctx.types[2].dtype != dtypes.INT64 or
                           ctx.types[2].shape != (past.shape[0],)):
            raise ctx.fail(f"write_indices {ctx.types[2]} must be i64 [{past.shape[0]}]")
        return [past]

    def reference(self, node, past, update, write_indices=None):
        axis = self._axis(node, past.ndim)
        if write_indices is None:
            write_indices = np.zeros(past.shape[0], np.int64)
        out = past.copy()
        size = past.shape[axis]
        for prefix in np.ndindex(past.shape[:axis]):
            for s in range(update.shape[axis]):
                pos = int(write_indices[prefix[0]]) + s
                if node.attr("mode", "linear") == "circular":
                    pos %= size
                out[prefix + (pos,)] = update[prefix + (s,)]
        return [out]

    def lower(self, node, ctx):
        past, update, out = node.inputs[0], node.inputs[1], node.outputs[0]
        indices = node.inputs[2] if len(node.inputs) > 2 else ""
        shape = ctx.shape(past)
        axis = self._axis(node, len(shape))
        batch, mid = shape[0], int(np.prod(shape[1:axis]))
        size, rows, inner = shape[axis], ctx.shape(update)[axis], int(np.prod(shape[axis + 1:]))
        ct = ctx.ctype(past)
        lines = [f"{ct} *y = {ctx.ptr(out)};", f"const {ct} *u = {ctx.ptr(update)};"]
        if ctx.ptr(past) != ctx.ptr(out):
            lines.append(f"memcpy(y, {ctx.ptr(past)}, {ctx.type(past).nbytes});")
        if ctx.type(update).size == 0:
            ctx.emit(block(lines))
            return
        start = f"{ctx.ptr(indices)}[b]" if indices else "0"
        circular = node.attr("mode", "linear") == "circular"
        lines += [f"for (size_t b = 0; b < {batch}; ++b) {{",
                  f"    const int64_t first = {start};",
                  f"    if (first < 0 || first {'>=' if circular else '>'} "
                  f"{size if circular else size - rows}) {ctx.shape_error}   "
                  f"/* a write index outside the cache */",
                  f"    for (size_t m = 0; m < {mid}; ++m)",
                  f"        for (size_t s = 0; s < {rows}; ++s) {{",
                  f"            const size_t pos = ((size_t)first + s){f' % {size}' if circular else ''};",
                  f"            memcpy(y + ((b * {mid} + m) * {size} + pos) * {inner}, "
                  f"u + ((b * {mid} + m) * {rows} + s) * {inner}, {inner} * sizeof(*y));",
                  "        }", "}"]
        ctx.emit(block(lines))
