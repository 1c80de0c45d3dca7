"""Pooling: MaxPool and AveragePool over 1-D, 2-D and 3-D windows (kernel_shape, strides, pads,
dilations, ceil_mode, auto_pad; MaxPool's optional Indices output), GlobalMaxPool and
GlobalAveragePool. Element type: float32; MaxPool also takes f16, bf16, f64, i8 and u8 (a loop
nest in the network source that copies the winning element).

The window geometry (output extents, padding from auto_pad) is worked out once here
(``window``); the kernels in ``hal/<target>/pool.c`` get it as one static ``nn_pool_window``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..errors import ModelError
from ..ir.graph import Node, TensorType
from .index import load, store
from .registry import InferContext, Op, attr_ints, register

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


@dataclass(frozen=True)
class Window:
    """One pooling window per spatial dim, with the output extents it produces."""
    kernel: tuple
    strides: tuple
    dilations: tuple
    pads_begin: tuple
    pads_end: tuple
    out: tuple

    @property
    def volume(self) -> int:
        return int(np.prod(self.kernel))


def window(node: Node, spatial: tuple) -> Window:
    """The window of a MaxPool / AveragePool ``node`` over input extents ``spatial``."""
    def fail(message: str) -> ModelError:
        return ModelError(f"node {node.label} ({node.op}): {message}")
    rank = len(spatial)
    kernel = attr_ints(node, "kernel_shape")
    if kernel is None or len(kernel) != rank or min(kernel) < 1:
        raise fail(f"kernel_shape {kernel} must give {rank} positive extents for input "
                   f"spatial shape {list(spatial)}")
    strides = attr_ints(node, "strides") or [1] * rank
    dilations = attr_ints(node, "dilations") or [1] * rank
    if len(strides) != rank or len(dilations) != rank or min(strides + dilations) < 1:
        raise fail(f"strides {strides} and dilations {dilations} need {rank} positive values")
    auto_pad = node.attr("auto_pad", "NOTSET") or "NOTSET"
    if auto_pad not in AUTO_PADS:
        raise fail(f"auto_pad {auto_pad!r} is not one of {', '.join(AUTO_PADS)}")
    extent = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-n // s) for n, s in zip(spatial, strides)]
        total = [max(0, (o - 1) * s + e - n) for o, s, e, n in zip(out, strides, extent, spatial)]
        small, big = [t // 2 for t in total], [t - t // 2 for t in total]
        begin, end = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
        return Window(*map(tuple, (kernel, strides, dilations, begin, end, out)))
    pads = attr_ints(node, "pads") or [0] * (2 * rank)
    if auto_pad == "VALID":
        pads = [0] * (2 * rank)
    if len(pads) != 2 * rank or min(pads) < 0:
        raise fail(f"pads {pads} need {2 * rank} values >= 0")
    begin, end = pads[:rank], pads[rank:]
    ceil_mode = bool(node.attr("ceil_mode", 0))
    out = []
    for n, b, e, k, s in zip(spatial, begin, end, extent, strides):
        span = n + b + e - k
        if span < 0:
            raise fail(f"window extent {k} is larger than the padded input {n + b + e}")
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= n + b:
            o -= 1       # the last window must start inside the input or its leading pad
        out.append(o)
    return Window(*map(tuple, (kernel, strides, dilations, begin, end, out)))


def _require_f32(ctx: InferContext, low_rank: int = 3) -> TensorType:
    x = ctx.types[0]
    if x.dtype != dtypes.FLOAT32:
        raise ctx.fail(f"element type {x.dtype} is not supported (supported: f32)")
    if not low_rank <= x.rank <= 5:
        raise ctx.fail(f"input {x} must be N x C with 1 to 3 spatial dims")
    return x


def _taps(x: np.ndarray, w: Window):
    """For each kernel tap: the input values under it at every output position, and whether
    each position is inside the input (False: padding or beyond)."""
    spatial = x.shape[2:]
    for k in itertools.product(*(range(n) for n in w.kernel)):
        pos = [np.arange(o) * s - b + kk * d
               for o, s, b, kk, d in zip(w.out, w.strides, w.pads_begin, k, w.dilations)]
        inside = [(p >= 0) & (p < n) for p, n in zip(pos, spatial)]
        clipped = [np.clip(p, 0, n - 1) for p, n in zip(pos, spatial)]
        values = x[(slice(None), slice(None)) + np.ix_(*clipped)]
        mask = np.ones(w.out, bool)
        for axis, m in enumerate(inside):
            mask = mask & m.reshape([-1 if a == axis else 1 for a in range(len(w.out))])
        yield pos, values, mask


def _padded_count(w: Window, spatial: tuple) -> np.ndarray:
    """Per output position: the taps inside the input plus its padding."""
    count = np.ones(w.out, np.int64)
    for axis, (o, s, b, e, k, d, n) in enumerate(zip(w.out, w.strides, w.pads_begin, w.pads_end,
                                                     w.kernel, w.dilations, spatial)):
        first = np.arange(o) * s - b
        per = np.array([np.sum(first_i + np.arange(k) * d < n + e) for first_i in first])
        count = count * per.reshape([-1 if a == axis else 1 for a in range(len(w.out))])
    return count


def _geometry(ctx, x: str, w: Window) -> list:
    """The ``nn_pool_window`` initializer lines: spatial extents padded to three dims with
    leading 1s."""
    shape = ctx.shape(x)
    lead = 3 - (len(shape) - 2)

    def dims(values, fill):
        return "{" + ", ".join(str(v) for v in [fill] * lead + list(values)) + "}"
    return [f".planes = {shape[0] * shape[1]}, .in = {dims(shape[2:], 1)}, "
            f".out = {dims(w.out, 1)},",
            f".kernel = {dims(w.kernel, 1)}, .stride = {dims(w.strides, 1)}, "
            f".dilation = {dims(w.dilations, 1)},",
            f".pad_begin = {dims(w.pads_begin, 0)}, .pad_end = {dims(w.pads_end, 0)}}};"]


def _emit_windowed(ctx, node: Node, fn: str, args: str) -> None:
    """``{ static const nn_pool_window window = {...}; <prefix>_<fn>(x, y, args, &window); }``"""
    x = node.inputs[0]
    w = window(node, ctx.shape(x)[2:])
    lines = ["{", "    static const nn_pool_window window = {"]
    lines += ["        " + line for line in _geometry(ctx, x, w)]
    lines.append(f"    {ctx.fn('pool', fn)}({ctx.ptr(x)}, {ctx.ptr(node.outputs[0])}, {args}, "
                 f"&window);")
    ctx.emit("\n".join(lines + ["}"]))


class WindowedPool(Op):
    def infer(self, ctx):
        x = _require_f32(ctx)
        w = window(ctx.node, x.shape[2:])
        return [TensorType(x.dtype, x.shape[:2] + w.out)]

    def flops(self, node, graph):
        w = window(node, graph.types[node.inputs[0]].shape[2:])
        return graph.types[node.outputs[0]].size * w.volume


MAXPOOL_TYPES = ("f32", "f16", "bf16", "f64", "i8", "u8")


def _maxpool_loop(ctx, node: Node) -> None:
    """MaxPool of a type the f32 kernel does not take: per output position, the first of the
    largest window elements inside the input is copied (with its flat index when asked)."""
    x, y = node.inputs[0], node.outputs[0]
    shape = ctx.shape(x)
    w = window(node, shape[2:])
    lead = 3 - len(w.out)
    n_in, n_out = (1,) * lead + tuple(shape[2:]), (1,) * lead + w.out
    kernel, stride, dil = ((1,) * lead + t for t in (w.kernel, w.strides, w.dilations))
    begin = (0,) * lead + w.pads_begin
    dtype = ctx.type(x).dtype
    planes, plane = shape[0] * shape[1], int(np.prod(n_in))
    indices = len(node.outputs) > 1 and node.outputs[1]
    lowest = {"i8": "INT8_MIN", "u8": "0", "f64": "-INFINITY"}.get(dtype.short) or \
        store(ctx, dtype, "-INFINITY")
    flat = f"((size_t)i[0] * {n_in[1]} + (size_t)i[1]) * {n_in[2]} + (size_t)i[2]"
    if node.attr("storage_order", 0):       # Indices: column-major flat index within a plane
        column = f"p * {plane} + (size_t)i[2] * {n_in[1] * n_in[0]} + (size_t)i[1] * {n_in[0]} + " \
                 "(size_t)i[0]"
    else:
        column = "from"
    lines = [f"const {dtype.ctype} *x = {ctx.ptr(x)};", f"{dtype.ctype} *y = {ctx.ptr(y)};"]
    if indices:
        lines.append(f"int64_t *indices = {ctx.ptr(node.outputs[1])};")

    def table(values, hint):
        return ctx.table("int64_t", values, hint)
    lines += [f"for (size_t p = 0, e = 0; p < {planes}; ++p)",
              f"    for (size_t o = 0; o < {int(np.prod(n_out))}; ++o, ++e) {{",
              f"        const int64_t at[3] = {{(int64_t)(o / {n_out[1] * n_out[2]}), "
              f"(int64_t)(o / {n_out[2]} % {n_out[1]}), (int64_t)(o % {n_out[2]})}};",
              "        size_t best = 0, found = 0;"] + (
              ["        size_t best_index = 0;"] if indices else []) + [
              f"        for (size_t k = 0; k < {int(np.prod(kernel))}; ++k) {{",
              f"            const int64_t tap[3] = {{(int64_t)(k / {kernel[1] * kernel[2]}), "
              f"(int64_t)(k / {kernel[2]} % {kernel[1]}), (int64_t)(k % {kernel[2]})}};",
              "            int64_t i[3];",
              "            int inside = 1;",
              "            for (int d = 0; d < 3; ++d) {",
              f"                i[d] = at[d] * {table(stride, 'pool_stride')}[d] - "
              f"{table(begin, 'pool_pad')}[d] + tap[d] * {table(dil, 'pool_dilation')}[d];",
              f"                inside = inside && i[d] >= 0 && i[d] < {table(n_in, 'pool_in')}[d];",
              "            }",
              "            if (!inside)",
              "                continue;",
              f"            const size_t from = p * {plane} + {flat};",
              f"            if (!found || {load(ctx, dtype, 'x[from]')} > "
              f"{load(ctx, dtype, 'x[best]')}) {{",
              "                best = from;",
              "                found = 1;"] + ([
              f"                best_index = {column};"] if indices else []) + [
              "            }",
              "        }",
              f"        y[e] = found ? x[best] : {lowest};   /* a window all padding: lowest */"]
    if indices:
        lines.append("        indices[e] = found ? (int64_t)best_index : 0;")
    lines.append("    }")
    ctx.emit("{\n" + "\n".join("    " + line for line in lines) + "\n}")


@register("MaxPool", since=1)
class MaxPool(WindowedPool):
    """y = max over each window (padding never wins); Indices = flat position of the max."""
    def infer(self, ctx):
        x = ctx.types[0]
        if x.dtype.short not in MAXPOOL_TYPES:
            raise ctx.fail(f"element type {x.dtype} is not supported (supported: "
                           f"{', '.join(MAXPOOL_TYPES)})")
        if not 3 <= x.rank <= 5:
            raise ctx.fail(f"input {x} must be N x C with 1 to 3 spatial dims")
        w = window(ctx.node, x.shape[2:])
        y = TensorType(x.dtype, x.shape[:2] + w.out)
        if ctx.node.attr("storage_order", 0) not in (0, 1):
            raise ctx.fail("storage_order must be 0 (row-major) or 1 (column-major)")
        return [y, TensorType(dtypes.INT64, y.shape)]

    def reference(self, node, x):
        w = window(node, x.shape[2:])
        lowest = np.iinfo(x.dtype).min if x.dtype.kind in "iu" else -np.inf
        y = np.full(x.shape[:2] + w.out, lowest, x.dtype)
        flat = np.zeros(y.shape, np.int64)
        spatial = x.shape[2:]
        column = node.attr("storage_order", 0) == 1
        for pos, values, mask in _taps(x, w):
            better = mask & (values > y)
            y = np.where(better, values, y)
            grids = np.meshgrid(*pos, indexing="ij")
            order = reversed(range(len(spatial))) if column else range(len(spatial))
            index = np.zeros(w.out, np.int64)
            for a in order:
                index = index * spatial[a] + grids[a]
            flat = np.where(better, index, flat)
        plane = int(np.prod(spatial))
        flat = flat + (np.arange(x.shape[0] * x.shape[1]) * plane).reshape(
            x.shape[:2] + (1,) * len(spatial))
        return [y, flat]

    def lower(self, node, ctx):
        if ctx.type(node.inputs[0]).dtype != dtypes.FLOAT32:
            return _maxpool_loop(ctx, node)
        indices = ctx.ptr(node.outputs[1]) if len(node.outputs) > 1 and node.outputs[1] else "NULL"
        _emit_windowed(ctx, node, "maxpool_f32",
                       f"{indices}, {int(node.attr('storage_order', 0))}")


@register("AveragePool", since=1)
class AveragePool(WindowedPool):
    """y = mean over each window; count_include_pad counts padding positions as zeros."""
    def reference(self, node, x):
        w = window(node, x.shape[2:])
        total = np.zeros(x.shape[:2] + w.out, np.float64)
        count = np.zeros(w.out, np.int64)
        for _, values, mask in _taps(x, w):
            total += np.where(mask, values, 0)
            count += mask
        if node.attr("count_include_pad", 0):
            count = _padded_count(w, x.shape[2:])
        return [(total / np.maximum(count, 1)).astype(x.dtype)]

    def lower(self, node, ctx):
        _emit_windowed(ctx, node, "avgpool_f32",
                       "true" if node.attr("count_include_pad", 0) else "false")


@register("LpPool", since=2)
class LpPool(WindowedPool):
    """y = (sum of |x|^p over each window)^(1/p), p default 2; padding adds nothing. A loop nest
    in the network source (double sums)."""
    def reference(self, node, x):
        w = window(node, x.shape[2:])
        p = float(node.attr("p", 2))
        total = np.zeros(x.shape[:2] + w.out, np.float64)
        for _, values, mask in _taps(x, w):
            total += np.where(mask, np.abs(values.astype(np.float64)) ** p, 0)
        return [(total ** (1 / p)).astype(x.dtype)]

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        shape = ctx.shape(x)
        w = window(node, shape[2:])
        p = int(node.attr("p", 2))
        rank = len(w.out)
        planes = shape[0] * shape[1]
        if planes * int(np.prod(w.out)) == 0:
            return
        in_strides = [int(np.prod(shape[2 + j + 1:])) for j in range(rank)]
        power = {1: "fabs(v)", 2: "v * v"}.get(p, f"pow(fabs(v), {p})")
        root = {1: "acc", 2: "sqrt(acc)"}.get(p, f"pow(acc, {1 / p!r})")
        at = " + ".join(f"(size_t)i{j} * {s}" for j, s in enumerate(in_strides))
        inner = [f"const double v = (double)xp[{at}];", f"acc += {power};"]
        for j in reversed(range(rank)):
            inner = [f"for (size_t k{j} = 0; k{j} < {w.kernel[j]}; ++k{j}) {{",
                     f"    const ptrdiff_t i{j} = (ptrdiff_t)(o{j} * {w.strides[j]} + "
                     f"k{j} * {w.dilations[j]}) - {w.pads_begin[j]};",
                     f"    if (i{j} < 0 || i{j} >= {shape[2 + j]})",
                     "        continue;"] + ["    " + line for line in inner] + ["}"]
        out_at = " + ".join(f"o{j} * {int(np.prod(w.out[j + 1:]))}" for j in range(rank))
        body = ["double acc = 0;"] + inner + [
            f"y[c * {int(np.prod(w.out))} + {out_at}] = (float)({root});"]
        for j in reversed(range(rank)):
            body = [f"for (size_t o{j} = 0; o{j} < {w.out[j]}; ++o{j}) {{"] + \
                ["    " + line for line in body] + ["}"]
        lines = [f"const float *x = {ctx.ptr(x)};", f"float *y = {ctx.ptr(y)};",
                 f"for (size_t c = 0; c < {planes}; ++c) {{",
                 f"    const float *xp = x + c * {int(np.prod(shape[2:]))};"]
        lines += ["    " + line for line in body] + ["}"]
        ctx.emit("{\n" + "\n".join("    " + line for line in lines) + "\n}")


class GlobalPool(Op):
    kernel = ""

    def infer(self, ctx):
        x = _require_f32(ctx, low_rank=2)
        return [TensorType(x.dtype, x.shape[:2] + (1,) * (x.rank - 2))]

    def flops(self, node, graph):
        return graph.types[node.inputs[0]].size

    def lower(self, node, ctx):
        shape = ctx.shape(node.inputs[0])
        ctx.call("pool", self.kernel, ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0]),
                 shape[0] * shape[1], int(np.prod(shape[2:])))


@register("GlobalMaxPool", since=1)
class GlobalMaxPool(GlobalPool):
    """y[n, c] = max over all spatial positions of x[n, c]"""
    kernel = "global_maxpool_f32"

    def reference(self, node, x):
        return [np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True)]


@register("GlobalAveragePool", since=1)
class GlobalAveragePool(GlobalPool):
    """y[n, c] = mean over all spatial positions of x[n, c]"""
    kernel = "global_avgpool_f32"

    def reference(self, node, x):
        return [np.mean(x, axis=tuple(range(2, x.ndim)), dtype=np.float64,
                        keepdims=True).astype(x.dtype)]
