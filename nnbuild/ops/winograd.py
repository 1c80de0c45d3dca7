"""Winograd convolution F(m x m, 3 x 3) for Conv (kernel ``hal/<target>/winograd.c``).

A 3x3, stride-1, undilated 2-D Conv with constant float32 weights may run as F(2x2, 3x3) or
F(4x4, 3x3): 2.25x or 4x fewer multiplies than the direct product, paid for by transforms of
the input and output tiles and by a larger rounding error. The weights are transformed here at
compile time, U = G w G^T in float64 then rounded once to float32, and stored as one SGEMM
right operand per transformed element and group, already in the SGEMM's packed B panel layout
(``pack_b``): the kernel multiplies V^T (tiles x input channels, which its input transform
writes in the packed A layout) by U^T. Which convolutions use it
is decided by the -O2 pass ``select-conv-algorithm`` (``passes/select_conv_algorithm.py``):
the node gets the attribute ``winograd`` = m, which the lowering reads (docs/winograd.md
holds the measurements behind the rule).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from .linalg import blocking

TILE_SIZES = (2, 4)
ATTR = "winograd"
# V and M of one chunk of tiles are kept to about this many bytes (cache-sized; see chunking).
CHUNK_BYTES = 1 << 20
# Private chunks (chunking): where U takes at most PRIVATE_U_BYTES (every chunk streams it once)
# and the tiles fill at least PRIVATE_MIN_PANELS MR-tile panels, each chunk is one thread's task,
# its V and M in that thread's scratch: NN_POOL_SCRATCH_BYTES of hal/nn_pool.h, mirrored here.
PRIVATE_U_BYTES = 1 << 19
PRIVATE_MIN_PANELS = 4
POOL_SCRATCH_BYTES = 1 << 20
# choose(): transformed F(2x2) weights larger than this need this many output tiles to pay for
# streaming them (in a network they come from memory: docs/winograd.md).
MAX_WEIGHT_BYTES = 1 << 20
MIN_TILES_BIG_WEIGHTS = 32


def _matrices(m: int) -> tuple:
    """(B^T, G, A^T) of F(m, 3) as exact fractions: the points 0, 1, -1 (, 2, -2) and
    infinity (Lavin & Gray's choice; winograd.c holds the same B^T and A^T)."""
    if m == 2:
        bt = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
        g = [[1, 0, 0], [Fraction(1, 2)] * 3, [Fraction(1, 2), Fraction(-1, 2), Fraction(1, 2)],
             [0, 0, 1]]
        at = [[1, 1, 1, 0], [0, 1, -1, -1]]
    else:
        bt = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
              [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
        f = Fraction
        g = [[f(1, 4), 0, 0], [f(-1, 6)] * 3, [f(-1, 6), f(1, 6), f(-1, 6)],
             [f(1, 24), f(1, 12), f(1, 6)], [f(1, 24), f(-1, 12), f(1, 6)], [0, 0, 1]]
        at = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
    return tuple(np.array([[float(v) for v in row] for row in mat]) for mat in (bt, g, at))


def applicable(g) -> bool:
    """A 2-D 3x3 convolution with unit strides and dilations (any padding, groups, batch)."""
    return (g.spatial == 2 and tuple(g.kernel) == (3, 3) and tuple(g.strides) == (1, 1)
            and tuple(g.dilations) == (1, 1) and g.in_channels != g.groups)


def pack_b(b: np.ndarray) -> np.ndarray:
    """The k x n matrix ``b`` in the SGEMM's packed B layout (nn_gemm.h), whole: per block of KC
    rows, NR-column panels stored row by row, columns past n zero; element (p, j) at
    (p // KC) * KC * Np + (j // NR) * NR * kc + (p % KC) * NR + j % NR, Np = n rounded up to NR."""
    b = np.asarray(b, np.float32)
    k, n = b.shape
    NR, KC = blocking().NR, blocking().KC        # noqa: N806 (the names of gemm.h)
    panels = -(-n // NR)
    padded = np.zeros((k, panels * NR), np.float32)
    padded[:, :n] = b
    return np.concatenate([padded[pc:pc + KC].reshape(-1, panels, NR).transpose(1, 0, 2).ravel()
                           for pc in range(0, k, KC)])


def transform_weights(w: np.ndarray, groups: int, m: int) -> np.ndarray:
    """W [M, C / groups, 3, 3] -> U = G W G^T per channel pair, as (alpha^2 x groups) packed
    SGEMM right operands U^T (C / groups x M / groups each), index xi * groups + group."""
    _, gm, _ = _matrices(m)
    u = np.einsum("ak,mckl,bl->abmc", gm, np.asarray(w, np.float64), gm)  # alpha, alpha, M, C
    alpha = m + 2
    u = u.reshape(alpha * alpha, groups, w.shape[0] // groups, w.shape[1]).astype(np.float32)
    return np.concatenate([pack_b(u[xi, grp].T) for xi in range(alpha * alpha)
                           for grp in range(groups)])


def reference(x: np.ndarray, w: np.ndarray, bias, pads: tuple, out_size: tuple, groups: int,
              m: int) -> np.ndarray:
    """numpy, float64: the same algorithm the kernel runs (for error studies in tests and
    docs; the model's reference stays Conv.reference)."""
    bt, gm, at = _matrices(m)
    alpha = m + 2
    n, c, h, wd = x.shape
    oh, ow = out_size
    th, tw = -(-oh // m), -(-ow // m)
    xp = np.zeros((n, c, th * m + 2, tw * m + 2))
    top, left = pads
    rows, cols = min(h, th * m + 2 - top), min(wd, tw * m + 2 - left)
    xp[:, :, top:top + rows, left:left + cols] = x[:, :, :rows, :cols]
    tiles = np.lib.stride_tricks.sliding_window_view(xp, (alpha, alpha), axis=(2, 3))
    tiles = tiles[:, :, ::m, ::m]                                   # n, c, th, tw, alpha, alpha
    v = np.einsum("ai,nctuij,bj->nctuab", bt, tiles, bt)
    u = np.einsum("ak,mckl,bl->mcab", gm, np.asarray(w, np.float64), gm)
    cg, mg = c // groups, w.shape[0] // groups
    prod = np.concatenate([np.einsum("mcab,nctuab->nmtuab", u[k * mg:(k + 1) * mg],
                                     v[:, k * cg:(k + 1) * cg]) for k in range(groups)], axis=1)
    y = np.einsum("ia,nmtuab,jb->nmtiuj", at, prod, at).reshape(n, -1, th * m, tw * m)
    y = y[:, :, :oh, :ow]
    if bias is not None:
        y = y + np.asarray(bias, np.float64).reshape(1, -1, 1, 1)
    return y


def _round16(n: int) -> int:
    return -(-n // 16) * 16


def _transform_floats(g, m: int) -> int:
    """Floats of the transforms' scratch: the larger of the input's and the output's."""
    alpha, tw, mr = m + 2, -(-g.out_size[1] // m), blocking().MR
    return max(_round16(g.in_size[1]) + alpha * _round16(tw * m + 2 + mr),    # input
               _round16(tw * m + 2) + alpha * alpha * tw)                   # output


def _chunk_floats(g, m: int, tiles: int) -> int:
    """Floats of V and M for a chunk of ``tiles`` tiles (each element's block skewed)."""
    mr, area = blocking().MR, (m + 2) * (m + 2)
    tp = -(-tiles // mr) * mr
    return area * (_round16(g.in_channels * tp) + 16 + _round16(g.out_channels * tp) + 16)


def chunking(g, m: int) -> tuple:
    """(tiles per chunk, private): the tiles of all images, in the order image, tile row, tile
    column, are cut into chunks of whole MR-tile panels (the SGEMM's rows), as many panels in
    each as the budget allows, then spread evenly over the chunks that makes (the last holds
    the rest); one chunk where all fit.

    Private (each chunk one thread's task, nn_winograd_driver.h): where U is at most
    PRIVATE_U_BYTES and the tiles fill at least PRIVATE_MIN_PANELS panels, in chunks that fit a
    worker's scratch with the transforms' scratch (POOL_SCRATCH_BYTES), at least two of them.
    Otherwise the phases split over the pool and V and M of a chunk take about CHUNK_BYTES
    (twice that when U exceeds CHUNK_BYTES / 2). From the shapes alone, never the thread
    count."""
    mr, alpha = blocking().MR, m + 2
    tiles = g.batch * -(-g.out_size[0] // m) * -(-g.out_size[1] // m)
    panels = -(-tiles // mr)
    u_bytes = 4 * alpha * alpha * g.in_channels * g.out_channels // g.groups

    def spread(chunks: int) -> int:        # panels per chunk
        return -(-panels // chunks)

    if u_bytes <= PRIVATE_U_BYTES and panels >= PRIVATE_MIN_PANELS:
        room = POOL_SCRATCH_BYTES // 4 - _transform_floats(g, m)
        fit = 0
        while fit < panels and _chunk_floats(g, m, (fit + 1) * mr) <= room:
            fit += 1
        if fit:
            return spread(max(2, -(-panels // fit))) * mr, True
    per_tile = 4 * alpha * alpha * (g.in_channels + g.out_channels)
    budget = CHUNK_BYTES * (2 if u_bytes > CHUNK_BYTES // 2 else 1)
    fit = max(1, budget // per_tile // mr)
    if fit >= panels:
        return tiles, False
    return spread(-(-panels // fit)) * mr, False


def work_floats(g, m: int) -> int:
    """Floats of winograd_conv's work buffer (winograd.h says the same): one chunk's V and M,
    then the transforms' scratch."""
    return _chunk_floats(g, m, chunking(g, m)[0]) + _transform_floats(g, m)


def c_params(g, m: int, name: str = "wino") -> str:
    """A ``static const nn_winograd_params`` for the kernel."""
    th, tw = -(-g.out_size[0] // m), -(-g.out_size[1] // m)
    tiles, private = chunking(g, m)
    return (f"static const nn_winograd_params {name} = {{\n"
            f"    .batch = {g.batch}, .in_channels = {g.in_channels}, "
            f".out_channels = {g.out_channels}, .groups = {g.groups},\n"
            f"    .in_h = {g.in_size[0]}, .in_w = {g.in_size[1]}, .out_h = {g.out_size[0]}, "
            f".out_w = {g.out_size[1]}, .pad_h = {g.pads_begin[0]}, .pad_w = {g.pads_begin[1]},\n"
            f"    .m = {m}, .tiles_h = {th}, .tiles_w = {tw}, .chunk_tiles = {tiles}, "
            f".private_chunks = {int(private)},\n}};")


def lower_lines(ctx, g, m: int, w_name: str, w: np.ndarray, x: str, bias: str, y: str,
                epilogue: str = "") -> list:
    """The C block of one Winograd convolution (the caller emits it); ``epilogue``: a C
    initializer of conv.h's ``nn_conv_epilogue`` applied as the output is stored."""
    packed = ctx.weight(f"{w_name}:winograd{m}-g{g.groups}", transform_weights(w, g.groups, m))
    scratch = ctx.scratch("float")
    ctx.fn("conv", "conv")                    # winograd.h takes conv.h's nn_conv_epilogue
    lines = [c_params(g, m)]
    if epilogue:
        lines.append(f"const nn_conv_epilogue epilogue = {epilogue};")
    lines.append(f"{ctx.fn('winograd', 'winograd_conv')}(&wino, {x}, {packed}, {bias}, {y}, "
                 f"{scratch}, {'&epilogue' if epilogue else 'NULL'});")
    return lines


def choose(g) -> int:
    """m of the Winograd convolution to run for geometry ``g``, or 0 for the direct kernels.

    Measured (docs/winograd.md: one 3x3 pad-1 Conv + Relu per shape, one thread, x86-avx512,
    at d839c65): F(2x2) beats the direct kernels on every shape with at least 32 input and
    output channels per group (0.55x to 0.9x the time; 16 -> 64 at 55x55 loses), except where
    its transformed weights (16 C M floats) exceed MAX_WEIGHT_BYTES and the image has fewer
    than MIN_TILES_BIG_WEIGHTS output tiles: 512 -> 512 at 7x7 (16 tiles) streams 16 MiB of U
    for little work and runs 1.35x slower, at 14x14 (49 tiles) 0.78x, at 28x28 0.55x; inside a
    network, where the weights come from memory, 160 -> 224 to 192 -> 384 at 7x7 (U of 2.2 to
    4.5 MiB) ran 1.2-1.7x faster on the direct kernels (Inception-v1 and v2). F(4x4) is
    faster still on large images but its error is about 10x the direct kernels' (above
    OP_TOLERANCE for >= 128 input channels), so it is never chosen here; a node's ``winograd``
    attribute (the text or JSON IR) still selects it."""
    if not applicable(g):
        return 0
    c, m = g.in_channels // g.groups, g.out_channels // g.groups
    tiles = g.batch * -(-g.out_size[0] // 2) * -(-g.out_size[1] // 2)
    if 16 * c * m * 4 > MAX_WEIGHT_BYTES and tiles < MIN_TILES_BIG_WEIGHTS:
        return 0
    return 2 if min(c, m) >= 32 else 0
