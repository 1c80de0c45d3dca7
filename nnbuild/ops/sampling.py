"""Sampling at computed positions: GridSample (opsets 16-22) and AffineGrid (opset 20).
AffineGrid is a loop nest in the network source; its size input may be a run-time value
when the model declares the grid shape (checked at run time).

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


# --- AffineGrid --------------------------------------------------------------------------------
def _base_coords(n: int, align: bool) -> np.ndarray:
    """The normalised coordinates of n positions along one dim, in float64 (as the spec's
    linspace: -1 .. 1 through the outer pixels' centres, or their edges)."""
    if align:
        return -1.0 + np.arange(n) * (2.0 / (n - 1)) if n > 1 else np.array([-1.0])
    step = 2.0 / n
    return -1.0 + step / 2 + np.arange(n) * step


@register("AffineGrid", since=20)
class AffineGrid(Op):
    """grid[n, (d,) h, w] = theta[n] @ (x_w, y_h, (z_d,) 1): the sampling grid of an affine
    transform for an output of ``size`` = (N, C, (D,) H, W); ``size`` may be a run-time value
    when the model declares the grid's shape (it is checked at run time)."""

    def infer(self, ctx):
        theta = ctx.types[0]
        if theta.dtype not in (dtypes.FLOAT32, dtypes.BY_SHORT["f64"]) or theta.rank != 3 or \
                theta.shape[1:] not in ((2, 3), (3, 4)):
            raise ctx.fail(f"theta {theta} must be f32 / f64 N x 2 x 3 or N x 3 x 4")
        spatial = theta.shape[1]
        if ctx.types[1].size != spatial + 2:
            raise ctx.fail(f"size {ctx.types[1]} must hold {spatial + 2} values for theta {theta}")
        if ctx.runtime(1):
            shape = ctx.declared(0, 1, "size")
            if len(shape) != spatial + 2 or shape[0] != theta.shape[0] or shape[-1] != spatial:
                raise ctx.fail(f"the declared grid shape {list(shape)} does not fit theta {theta}")
            return [TensorType(theta.dtype, shape)]
        size = [int(v) for v in ctx.value(1, "size").reshape(-1)]
        if size[0] != theta.shape[0] or min(size) < 0:
            raise ctx.fail(f"size {size} does not fit theta {theta}")
        return [TensorType(theta.dtype, (size[0],) + tuple(size[2:]) + (spatial,))]

    def reference(self, node, theta, size):
        spatial = theta.shape[1]
        dims = [int(v) for v in size.reshape(-1)[2:]]
        align = bool(node.attr("align_corners", 0))
        axes = np.meshgrid(*[_base_coords(d, align) for d in dims], indexing="ij")
        base = np.stack([a.reshape(-1) for a in reversed(axes)] + [np.ones(int(np.prod(dims)))])
        grid = np.einsum("nij,jp->npi", theta.astype(np.float64), base)
        return [grid.reshape((theta.shape[0], *dims, spatial)).astype(theta.dtype)]

    def lower(self, node, ctx):
        theta, size, grid = node.inputs[0], node.inputs[1], node.outputs[0]
        out = ctx.shape(grid)
        spatial, dims = out[-1], out[1:-1]
        ct = ctx.ctype(theta)
        lines = []
        if ctx.known(size) is None:     # checked against the declared shape
            s = ctx.ptr(size)
            ok = " && ".join(f"{s}[{i}] == {d}" for i, d in [(0, out[0])] +
                             [(2 + k, d) for k, d in enumerate(dims)])
            lines.append(ctx.check_statement(f"{s}[1] >= 0 && {ok}",
                                             f"run-time size {size} gives the declared {list(out)}"))
        if ctx.type(grid).size == 0:
            ctx.emit("\n".join(lines))
            return
        align = bool(node.attr("align_corners", 0))
        tables = [ctx.weight(f"{grid}:axis{k}", _base_coords(d, align))
                  for k, d in enumerate(dims)]
        points = int(np.prod(dims))
        cols = spatial + 1
        lines += [f"const {ct} *theta = {ctx.ptr(theta)};", f"{ct} *grid = {ctx.ptr(grid)};"]
        body = [f"const {ct} *t = theta + n * {spatial * cols};",
                f"{ct} *g = grid + n * {points * spatial};",
                "size_t p = 0;"]
        loops = [f"for (size_t i{k} = 0; i{k} < {d}; ++i{k})" for k, d in enumerate(dims)]
        coords = [f"{tables[k]}[i{k}]" for k in reversed(range(len(dims)))]   # x first
        inner = ["{"] + [f"    const double c{k} = {c};" for k, c in enumerate(coords)]
        for r in range(spatial):
            terms = " + ".join(f"(double)t[{r * cols + k}] * c{k}" for k in range(spatial))
            inner.append(f"    g[p * {spatial} + {r}] = ({ct})({terms} + (double)t[{r * cols + spatial}]);")
        inner += ["    ++p;", "}"]
        nest = []
        for k, loop in enumerate(loops):
            nest.append("    " * k + loop)
        nest += ["    " * len(loops) + s for s in inner]
        lines += [f"for (size_t n = 0; n < {out[0]}; ++n) {{"] + ["    " + s for s in body + nest] + ["}"]
        ctx.emit("{\n" + "\n".join("    " + s for s in lines) + "\n}")
