"""Loop nests written straight into the network source, specialised to their shapes.

Elementwise and broadcasting ops (and, later, fused chains of them) become one loop nest:

    {
        const float *a = ...;  const float *b = ...;  float *y = ...;
        for (size_t i0 = 0; i0 < 64; ++i0)
            for (size_t i1 = 0; i1 < 3136; ++i1)
                y[i0 * 3136 + i1] = a[i0 * 3136 + i1] + b[i0];
    }

Dimensions where every operand moves alike are merged, so a same-shape op is one flat loop.
A big nest (``emit_nest``) becomes a static task function run by ``<p>_parallel_for`` over
tiles of its outer dimensions, fixed by the shapes alone:

    /* relu8 (Relu): 802816 elements in 32 tasks */
    static void net_relu8_task(const void *storage, int task, void *scratch)
    {
        unsigned char *arena = ((net_storage const *)storage)->arena;
        (void)scratch;
        const size_t begin = (size_t)task * 25088, end = begin + 25088;
        ...
        for (size_t i0 = begin; i0 < end; ++i0)
            y[i0] = nn_vm_select(a[i0] > 0, a[i0], 0);
    }
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes

OPERAND_NAMES = "abcdefgh"


def c_literal(value, dtype) -> str:
    """A C literal of ``value`` in the element type ``dtype`` (a DType); for a narrow type, in
    the type its loops compute in (float, or the integer value)."""
    if dtype.is_narrow:
        return c_literal(float(value), dtypes.FLOAT32) if dtype.is_floating else str(int(value))
    if dtype.short == "bool":
        return "1" if value else "0"
    if dtype.is_float:
        v = float(value)
        if math.isnan(v):
            return "NAN"
        if math.isinf(v):
            return "INFINITY" if v > 0 else "-INFINITY"
        text = repr(float(np.float32(v))) if dtype.short == "f32" else repr(v)
        return text + ("f" if dtype.short == "f32" else "")
    v = int(value)
    if dtype.short == "i64" and v == -(1 << 63):
        return "INT64_MIN"
    suffix = {"i64": "LL", "u64": "ULL", "u32": "U"}.get(dtype.short, "")
    return f"{v}{suffix}"


# Element types C has no arithmetic for: loaded as float, stored back (see nn_half.h).
HALF_TYPES = {"f16": ("nn_f16_to_f32", "nn_f32_to_f16"), "bf16": ("nn_bf16_to_f32", "nn_f32_to_bf16")}


# Narrow types (one element per byte, see dtypes): the type loops compute in, the load of a
# stored byte and the store of a computed value (float8 stores saturate, Cast's default).
NARROW_TYPES = {
    "f8e4m3fn": ("float", "nn_f8e4m3fn_to_f32({})", "nn_f8e4m3fn_from({}, 1)"),
    "f8e4m3fnuz": ("float", "nn_f8e4m3fnuz_to_f32({})", "nn_f8e4m3fnuz_from({}, 1)"),
    "f8e5m2": ("float", "nn_f8e5m2_to_f32({})", "nn_f8e5m2_from({}, 1)"),
    "f8e5m2fnuz": ("float", "nn_f8e5m2fnuz_to_f32({})", "nn_f8e5m2fnuz_from({}, 1)"),
    "f8e8m0": ("float", "nn_f8e8m0_to_f32({})", "nn_f8e8m0_from({}, 1, NN_ROUND_UP)"),
    "f4e2m1": ("float", "nn_f4e2m1_to_f32({})", "nn_f4e2m1_from({})"),
    "i4": ("int8_t", "nn_i4_to_i8({})", "nn_low_bits({}, 0xf)"),
    "u4": ("uint8_t", "nn_u4_to_u8({})", "nn_low_bits({}, 0xf)"),
    "i2": ("int8_t", "nn_i2_to_i8({})", "nn_low_bits({}, 0x3)"),
    "u2": ("uint8_t", "nn_u2_to_u8({})", "nn_low_bits({}, 0x3)"),
}


def compute_ctype(dtype) -> str:
    """The C type a loop computes in for elements of ``dtype``: float for f16 / bf16 (which are
    stored as uint16_t) and the narrow floats, int8_t / uint8_t for the 4- and 2-bit integers,
    else the storage type itself."""
    if dtype.short in NARROW_TYPES:
        return NARROW_TYPES[dtype.short][0]
    return "float" if dtype.short in HALF_TYPES else dtype.ctype


ROUND_MODES = {"up": "NN_ROUND_UP", "down": "NN_ROUND_DOWN", "nearest": "NN_ROUND_NEAREST"}


def encode_narrow(ctx, to, value: str, from_float: bool, saturate: bool = True,
                  round_mode: str = "up") -> str:
    """The stored byte of narrow type ``to`` for the C value ``value`` (a float or an integer
    as ``from_float`` says), converted as ONNX's Cast converts: round to nearest even
    (float8 e8m0: ``round_mode``), ``saturate`` out-of-range floats; integers keep their low
    bits, floats are first truncated toward zero."""
    ctx.helper("narrow")
    if to.short in ("i4", "u4", "i2", "u2"):
        mask = "0xf" if to.short.endswith("4") else "0x3"
        whole = f"nn_trunc_i64((double)({value}))" if from_float else f"(int64_t)({value})"
        return f"nn_low_bits({whole}, {mask})"
    if to.short == "f8e8m0":
        return f"nn_f8e8m0_from((float)({value}), {int(saturate)}, {ROUND_MODES[round_mode]})"
    if to.short == "f4e2m1":
        return f"nn_f4e2m1_from((double)({value}))"
    return f"nn_{to.short}_from((double)({value}), {int(saturate)})"


def load_value(ctx, dtype, text: str) -> str:
    """A C load of an element (``text``) as its compute type."""
    return _convert(ctx, dtype, 0, text)


def store_value(ctx, dtype, text: str) -> str:
    """The C value to store for a compute-type expression."""
    return _convert(ctx, dtype, 1, text)


# Float functions with a branch-free version in hal/nn_vmath.h, which auto-vectorises.
VMATH_FUNCTIONS = ("exp", "log", "log1p", "tanh", "erf")


def math_fn(name: str, dtype) -> str:
    """C math function for the element type: expf for float (nn_expf where nn_vmath.h has
    it), exp for double."""
    if compute_ctype(dtype) != "float":
        return name
    return f"nn_{name}f" if name in VMATH_FUNCTIONS else name + "f"


def _strides_for(shape: tuple, out_shape: tuple) -> list:
    """Element strides of ``shape`` broadcast to ``out_shape`` (0 on broadcast dims)."""
    shape = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(0 if d == 1 else step)
        step *= d
    strides = strides[::-1]
    return [0 if d == 1 else s for d, s in zip(shape, strides)]


def _merge(out_shape: tuple, operand_strides: list) -> tuple:
    """Merge neighbouring dims where every operand is contiguous across the boundary."""
    dims = [d for d in out_shape]
    strides = [list(s) for s in operand_strides]
    keep = [i for i, d in enumerate(dims) if d != 1]
    dims = [dims[i] for i in keep]
    strides = [[s[i] for i in keep] for s in strides]
    k = len(dims) - 1
    while k > 0:
        if all(s[k - 1] == s[k] * dims[k] for s in strides):
            dims[k - 1] *= dims[k]
            for s in strides:
                s[k - 1] = s[k]
            del dims[k]
            for s in strides:
                del s[k]
        k -= 1
    return dims, strides


def _index(strides: list) -> str:
    terms = []
    for k, s in enumerate(strides):
        if s == 1:
            terms.append(f"i{k}")
        elif s:
            terms.append(f"i{k} * {s}")
    return " + ".join(terms) or "0"


def broadcast_loop(ctx, out: str, operands: list, expr) -> None:
    """Emit ``out[...] = expr(operand loads...)`` over ``out``'s shape with numpy broadcasting.

    ``operands`` are value names or ready C expressions wrapped in ``Scalar``; ``expr`` maps the
    list of C load expressions to the C expression of one output element, or to a pair
    (statements, expression) when the element needs named temporaries first (a fused chain
    composes its ops' expressions so: ``const float t0 = ...;``). f16 / bf16 and narrow
    operands are loaded as their compute type and the output is stored from it
    (``compute_ctype``), so ``expr`` never sees their storage.
    """
    out_shape = ctx.shape(out)
    if 0 in out_shape:
        return                   # no elements: no loop (one over 0 would be dead code)
    tensors = [o for o in operands if not isinstance(o, Scalar)]
    strides = [_strides_for(ctx.shape(o), out_shape) for o in tensors]
    out_strides = _strides_for(out_shape, out_shape)
    dims, merged = _merge(out_shape, [out_strides] + strides)
    lines = [f"{ctx.ctype(out)} *y = {ctx.ptr(out)};"]
    loads, t = [], 0
    for o in operands:
        if isinstance(o, Scalar):
            loads.append(o.text)
            continue
        var = OPERAND_NAMES[t]
        lines.append(f"const {ctx.ctype(o)} *{var} = {ctx.ptr(o)};")
        loads.append(_convert(ctx, ctx.type(o).dtype, 0, f"{var}[{_index(merged[t + 1])}]"))
        t += 1
    value = expr(loads)
    prelude = []
    if isinstance(value, tuple):
        prelude, value = value
    body = prelude + [f"y[{_index(merged[0])}] = {_convert(ctx, ctx.type(out).dtype, 1, value)};"]
    emit_nest(ctx, lines, dims, body, cost=len(body))


# --- loop nests, inline or split over the thread pool ------------------------------------------
# A nest whose work (elements times statements per element) is at least PARALLEL_MIN_WORK
# becomes a task function run by <p>_parallel_for (hal/nn_pool.h), about TASK_WORK per task;
# smaller ones stay inline, where handing a job to the workers would cost about what it saves.
# Measured on an AVX-512 Xeon: a vectorised Relu over 16384 floats takes 1.2 us on one core; a
# parallel_for of empty tasks 0.05 us (2 tasks) to 0.33 us (32 tasks) at 2 threads. The tiles
# depend on the shapes only, never on the thread count, and each element is computed by the
# same statement whichever task holds it: results are bit-identical at every thread count.
PARALLEL_MIN_WORK = 16384
TASK_WORK = 8192
MAX_TASKS = 32                   # NN_POOL_MAX_TASKS
TILE_ALIGN = 16                  # a tile of the innermost dimension starts at a multiple of this


def emit_nest(ctx, setup: list, dims: list, body, row: int = 0, cost: int = 1) -> None:
    """Emit ``setup`` (declarations) and ``for (size_t i0 = 0; i0 < dims[0]; ++i0) ... body``.

    ``body`` is a list of statements over the indices ``i0, i1...``; or, with ``row`` > 0, the
    loop nest's innermost dimension is a contiguous run of ``row`` elements handled by one
    statement (a memcpy), and ``body(start, count)`` gives the statements for the part of the
    run from C expression ``start`` with ``count`` elements ("0" and the row length when the run
    is whole). ``cost``: the work of one element (statements). Big nests go to a task function
    (see PARALLEL_MIN_WORK)."""
    total = math.prod(dims) * (row or 1)
    split = _split(list(dims) + ([row] if row else []), total * cost)
    if split is None:
        loops, indent = [], ""
        for k, d in enumerate(dims):
            loops.append(f"{indent}for (size_t i{k} = 0; i{k} < {d}; ++i{k})")
            indent += "    "
        statements = body("0", str(row)) if row else body
        ctx.emit(_block(setup + _nested(loops, statements, indent)))
        return
    k, chunks, size = split
    extents = list(dims) + ([row] if row else [])
    lines = []
    for j in range(k):            # dimensions before k: one index per task
        stride = chunks * math.prod(extents[j + 1:k])
        at = "(size_t)task" if stride == 1 else f"(size_t)task / {stride}"
        lines.append(f"const size_t i{j} = {at}{f' % {extents[j]}' if j else ''};")
    chunk = "(size_t)task" if k == 0 else f"(size_t)task % {chunks}"
    end = f"begin + {size}" if chunks * size == extents[k] else \
        f"begin + {size} < {extents[k]} ? begin + {size} : {extents[k]}"
    lines.append(f"const size_t begin = {chunk} * {size}, end = {end};")
    lines += setup
    loops, indent = [], ""
    for j in range(k, len(dims)):
        start, stop = ("begin", "end") if j == k else ("0", str(dims[j]))
        loops.append(f"{indent}for (size_t i{j} = {start}; i{j} < {stop}; ++i{j})")
        indent += "    "
    if row:
        statements = body("begin", "(end - begin)") if k == len(dims) else body("0", str(row))
    else:
        statements = body
    lines += _nested(loops, statements, indent)
    tasks = math.prod(extents[:k]) * chunks
    ctx.parallel(lines, tasks, f"{total} elements in {tasks} tasks")


def _split(extents: list, work: int):
    """(k, chunks, size): tasks take one index of each dimension before k and ``size`` of
    dimension k (``chunks`` parts); None when the nest stays inline."""
    if work < PARALLEL_MIN_WORK or not extents:
        return None
    want = min(MAX_TASKS, work // TASK_WORK)
    k = 0
    while k < len(extents) - 1 and math.prod(extents[:k + 1]) < want:
        k += 1
    outer = math.prod(extents[:k])
    chunks = min(extents[k], -(-want // outer), MAX_TASKS // outer)
    if chunks == 1:               # k > 0 here: one index of each dimension up to k - 1
        return k - 1, extents[k - 1], 1
    size = -(-extents[k] // chunks)
    if k == len(extents) - 1 and size > TILE_ALIGN:
        size = -(-size // TILE_ALIGN) * TILE_ALIGN
    chunks = -(-extents[k] // size)
    if outer * chunks < 2:
        return None
    return k, chunks, size


def _nested(loops: list, statements: list, indent: str) -> list:
    """Loop headers then the innermost statements at ``indent``, braced when a loop holds
    more than one."""
    if loops and len(statements) > 1:
        return loops[:-1] + [loops[-1] + " {"] + [indent + s for s in statements] + \
            [indent[4:] + "}"]
    return loops + [indent + s for s in statements]


def _block(lines: list) -> str:
    return "{\n" + "\n".join("    " + line for line in lines) + "\n}"


def _convert(ctx, dtype, direction: int, text: str) -> str:
    """Wrap a load (direction 0) or a store (1) of a half or narrow type in its conversion."""
    if dtype.short in NARROW_TYPES:
        ctx.helper("narrow")
        return NARROW_TYPES[dtype.short][1 + direction].format(text)
    if dtype.short not in HALF_TYPES:
        return text
    ctx.helper("half")
    return f"{HALF_TYPES[dtype.short][direction]}({text})"


class Scalar:
    """An operand that is one C expression for every element (a literal, or ``*p``)."""

    def __init__(self, text: str):
        self.text = text


def broadcast_shape(shapes: list, node) -> tuple:
    """numpy broadcasting of ``shapes``; a ModelError naming the node when they clash."""
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        from ..errors import ModelError
        raise ModelError(f"node {node.label} ({node.op}): shapes "
                         f"{' and '.join(str(list(s)) for s in shapes)} do not broadcast") from None
