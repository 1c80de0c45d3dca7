"""Sampling at computed positions: GridSample (opsets 16-22) and AffineGrid (opset 20).

GridSample reads every output position of ``grid`` (normalised coordinates in [-1, 1],
innermost dim first) from the image with nearest, linear or cubic taps; the kernel is
``grid_sample_f32`` in ``hal/<target>/sampling.c``. Element type: float32.
"""
from __future__ import annotations

import itertools

import numpy as np

from .. import dtypes
from ..ir.graph import TensorType
from .registry import Op, register

MODES = {"nearest": 0, "linear": 1, "cubic": 2}
OLD_MODES = {"bilinear": "linear", "bicubic": "cubic"}      # opset 16 spellings
PADDINGS = {"zeros": 0, "border": 1, "reflection": 2}


def _mode(node) -> str:
    mode = node.attr("mode", "linear")
    return OLD_MODES.get(mode, mode)


# --- GridSample --------------------------------------------------------------------------------
def _denormalize(n, size: int, align: bool):
    return (n + 1) / 2 * (size - 1) if align else ((n + 1) * size - 1) / 2


def _reflect(x, lo, hi):
    rng = hi - lo
    if rng <= 0:
        return lo
    if x < lo:
        dx = lo - x
        k = int(dx / rng)
        r = dx - k * rng
        return lo + r if k % 2 == 0 else hi - r
    if x > hi:
        dx = x - hi
        k = int(dx / rng)
        r = dx - k * rng
        return hi - r if k % 2 == 0 else lo + r
    return x


def _cubic(t):
    a = -0.75
    t1, u, u1 = t + 1, 1 - t, 2 - t
    return [((a * t1 - 5 * a) * t1 + 8 * a) * t1 - 4 * a, ((a + 2) * t - (a + 3)) * t * t + 1,
            ((a + 2) * u - (a + 3)) * u * u + 1, ((a * u1 - 5 * a) * u1 + 8 * a) * u1 - 4 * a]


def _axis_taps(v: float, size: int, mode: str, padding: str, align: bool) -> list:
    """[(input index or None for a zero, weight)] of one normalised coordinate along one dim."""
    lo, hi = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
    v = _denormalize(float(v), size, align)
    if mode == "nearest":
        v = float(np.rint(v))
    if mode != "cubic" and (v < lo or v > hi):     # cubic pads each tap (as onnxruntime)
        if padding == "border":
            v = min(max(v, 0.0), size - 1.0)
        elif padding == "reflection":
            v = _reflect(v, lo, hi)

    def index(i):
        if 0 <= i < size:
            return i
        if padding == "zeros":
            return None
        if padding == "reflection":
            i = int(_reflect(float(i), lo, hi))
        return min(max(i, 0), size - 1)
    if mode == "nearest":
        return [(index(int(v)), 1.0)]
    base = int(np.floor(v))
    t = v - base
    if mode == "linear":
        return [(index(base), 1 - t), (index(base + 1), t)]
    return [(index(base - 1 + k), w) for k, w in enumerate(_cubic(t))]


@register("GridSample", since=16)
class GridSample(Op):
    """y[n, c, p] = x[n, c] sampled at grid[n, p] (nearest / linear / cubic; padding zeros,
    border or reflection; align_corners)"""

    def _check(self, ctx):
        x, grid = ctx.types[0], ctx.types[1]
        node = ctx.node
        if x.dtype != dtypes.FLOAT32 or grid.dtype != dtypes.FLOAT32:
            raise ctx.fail(f"element types {x.dtype} / {grid.dtype} are not supported "
                           f"(supported: f32)")
        if not 3 <= x.rank <= 5 or grid.rank != x.rank or grid.shape[-1] != x.rank - 2 \
                or grid.shape[0] != x.shape[0]:
            raise ctx.fail(f"input {x} and grid {grid} must be N x C x <1 to 3 dims> and "
                           f"N x <dims> x {x.rank - 2}")
        if _mode(node) not in MODES:
            raise ctx.fail(f"mode {node.attr('mode')!r} is not supported (supported: "
                           f"{', '.join(list(MODES) + list(OLD_MODES))})")
        if node.attr("padding_mode", "zeros") not in PADDINGS:
            raise ctx.fail(f"padding_mode {node.attr('padding_mode')!r} is not supported "
                           f"(supported: {', '.join(PADDINGS)})")

    def infer(self, ctx):
        self._check(ctx)
        x, grid = ctx.types[0], ctx.types[1]
        return [TensorType(x.dtype, x.shape[:2] + grid.shape[1:-1])]

    def reference(self, node, x, grid):
        mode, padding = _mode(node), node.attr("padding_mode", "zeros")
        align = bool(node.attr("align_corners", 0))
        spatial = x.shape[2:]
        y = np.zeros(x.shape[:2] + grid.shape[1:-1], x.dtype)
        for n in range(x.shape[0]):
            for at in itertools.product(*(range(d) for d in grid.shape[1:-1])):
                coords = grid[(n,) + at][::-1]
                per_dim = [_axis_taps(c, s, mode, padding, align) for c, s in zip(coords, spatial)]
                for combo in itertools.product(*per_dim):
                    if any(i is None for i, _ in combo):
                        continue
                    w = np.prod([w for _, w in combo])
                    y[(n, slice(None)) + at] += np.float32(w) * x[(n, slice(None)) +
                                                                 tuple(i for i, _ in combo)]
        return [y]

    def flops(self, node, graph):
        taps = {"nearest": 1, "linear": 2, "cubic": 4}[_mode(node)]
        rank = graph.types[node.inputs[0]].rank - 2
        return 2 * graph.types[node.outputs[0]].size * taps ** rank

    def lower(self, node, ctx):
        x, grid, y = node.inputs[0], node.inputs[1], node.outputs[0]
        shape, out = ctx.shape(x), ctx.shape(y)
        if 0 in out:
            return
        rank = len(shape) - 2
        extents = list(shape[2:]) + [1] * (3 - rank)
        lines = ["{", "    static const nn_grid_sample geometry = {",
                 f"        .batch = {shape[0]}, .channels = {shape[1]}, .rank = {rank}, "
                 f".in = {{{', '.join(map(str, extents))}}}, "
                 f".points = {int(np.prod(out[2:]))},",
                 f"        .mode = {MODES[_mode(node)]}, "
                 f".padding = {PADDINGS[node.attr('padding_mode', 'zeros')]}, "
                 f".align_corners = {'true' if node.attr('align_corners', 0) else 'false'}}};",
                 f"    {ctx.fn('sampling', 'grid_sample_f32')}({ctx.ptr(x)}, {ctx.ptr(grid)}, "
                 f"{ctx.ptr(y)}, &geometry);", "}"]
        ctx.emit("\n".join(lines))
