"""Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceSumSquare,
ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp.

Canonical form: the axes are a compile-time second input (an attribute before opset 13 for
ReduceSum and before 18 for the others), with ``keepdims`` and ``noop_with_empty_axes``.
Sums accumulate in double for floating-point inputs and in int64_t for integers; max and min
keep the element type.

Each reduction is a loop nest written into the network source, specialised to the shape:
kept dims outside, reduced dims inside, neighbouring dims merged:

    for (size_t i0 = 0; i0 < 128; ++i0) {
        double acc = 0;
        for (size_t r0 = 0; r0 < 49; ++r0)
            acc += x[i0 * 49 + r0];
        y[i0] = (float)(acc / 49);
    }

Each output is computed by one pass in a fixed order; a big reduction splits its kept dims
over the thread pool (``codegen.loops.emit_nest``), with the same results at any thread count.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..codegen.loops import compute_ctype, emit_nest
from ..errors import ModelError
from ..ir.graph import Node, TensorType
from .index import load as load_as_compute, store as store_from_compute
from .registry import InferContext, Op, normalize_axis, register

FLOATS = ("f32", "f64", "f16", "bf16")
INTEGERS = ("i32", "i64")


@dataclass(frozen=True)
class Reduction:
    """How one reduction reads in C. In the templates ``{x}`` is the element, ``{wx}`` the
    element converted to the accumulator type, ``{acc}`` the accumulator, ``{n}`` the count
    of reduced elements."""
    init: str                 # "0", "1", "lowest" or "highest"
    step: str                 # statement folding {x} into {acc}
    finish: str = "{acc}"     # expression of the result
    wide: bool = True         # accumulate in double / int64_t (else in the element type)
    integers: bool = False    # also int32 / int64
    flops_per_element: int = 1


def _max_step(cmp: str) -> str:
    return "{acc} = {x} " + cmp + " {acc} ? {x} : {acc};"


REDUCTIONS = {
    "ReduceSum": Reduction("0", "{acc} += {wx};", integers=True),
    "ReduceMean": Reduction("0", "{acc} += {wx};", "{acc} / {n}"),
    "ReduceMax": Reduction("lowest", _max_step(">"), wide=False, integers=True),
    "ReduceMin": Reduction("highest", _max_step("<"), wide=False, integers=True),
    "ReduceProd": Reduction("1", "{acc} *= {wx};", integers=True),
    "ReduceSumSquare": Reduction("0", "{acc} += {wx} * {wx};", flops_per_element=2),
    "ReduceL1": Reduction("0", "{acc} += fabs({wx});"),
    "ReduceL2": Reduction("0", "{acc} += {wx} * {wx};", "sqrt({acc})", flops_per_element=2),
    "ReduceLogSum": Reduction("0", "{acc} += {wx};", "log({acc})"),
    # the running maximum {top} comes from a first pass over the same elements
    "ReduceLogSumExp": Reduction("0", "{acc} += exp({wx} - {top});",
                                 "{top} + log({acc})", flops_per_element=3),
}

NUMPY = {
    "ReduceSum": lambda x, a: np.sum(x, axis=a, keepdims=True),
    "ReduceMean": lambda x, a: np.mean(x, axis=a, keepdims=True),
    "ReduceMax": lambda x, a: np.max(x, axis=a, keepdims=True),
    "ReduceMin": lambda x, a: np.min(x, axis=a, keepdims=True),
    "ReduceProd": lambda x, a: np.prod(x, axis=a, keepdims=True),
    "ReduceSumSquare": lambda x, a: np.sum(x * x, axis=a, keepdims=True),
    "ReduceL1": lambda x, a: np.sum(np.abs(x), axis=a, keepdims=True),
    "ReduceL2": lambda x, a: np.sqrt(np.sum(x * x, axis=a, keepdims=True)),
    "ReduceLogSum": lambda x, a: np.log(np.sum(x, axis=a, keepdims=True)),
    "ReduceLogSumExp": lambda x, a: _logsumexp(x, a),
}


def _logsumexp(x, axes):
    top = np.max(x, axis=axes, keepdims=True)
    return top + np.log(np.sum(np.exp(x - top), axis=axes, keepdims=True))


_LIMITS = {("f32", "lowest"): "-INFINITY", ("f32", "highest"): "INFINITY",
           ("f64", "lowest"): "-INFINITY", ("f64", "highest"): "INFINITY",
           ("f16", "lowest"): "-INFINITY", ("f16", "highest"): "INFINITY",
           ("bf16", "lowest"): "-INFINITY", ("bf16", "highest"): "INFINITY",
           ("bool", "lowest"): "0", ("bool", "highest"): "1"}
for _bits in (8, 16, 32, 64):
    _LIMITS[(f"i{_bits}", "lowest")] = f"INT{_bits}_MIN"
    _LIMITS[(f"i{_bits}", "highest")] = f"INT{_bits}_MAX"
    _LIMITS[(f"u{_bits}", "lowest")] = "0"
    _LIMITS[(f"u{_bits}", "highest")] = f"UINT{_bits}_MAX"
# max and min only compare: they also take bool and the narrower integers
ORDERED = ("bool", "i8", "u8", "i16", "u16", "u32", "u64")


class Reduce(Op):
    """y = reduction of x over ``axes`` (all axes when none are given)."""
    axes_input_since = 18

    @property
    def kind(self) -> Reduction:
        return REDUCTIONS[self.op_type]

    def canonicalize(self, node, version, graph):
        # Reduce(x) {axes=[...]}  =>  Reduce(x, @axes)
        if version >= self.axes_input_since or "axes" not in node.attrs:
            return [node]
        axes = graph.unique_name(f"{node.outputs[0]}_axes")
        graph.add_constant(axes, np.array(node.attrs["axes"], np.int64))
        attrs = {k: v for k, v in node.attrs.items() if k != "axes"}
        return [node.replace(inputs=(node.inputs[0], axes), attrs=attrs)]

    def reduced_axes(self, node: Node, rank: int, axes) -> tuple:
        """The sorted axes to reduce; () when the node is a no-op."""
        if axes is None or np.asarray(axes).size == 0:
            return () if node.attr("noop_with_empty_axes", 0) else tuple(range(rank))
        picked = sorted({normalize_axis(int(a), rank, node) for a in np.asarray(axes).reshape(-1)})
        return tuple(picked)

    def out_shape(self, node: Node, shape: tuple, axes: tuple) -> tuple:
        if node.attr("keepdims", 1):
            return tuple(1 if i in axes else d for i, d in enumerate(shape))
        return tuple(d for i, d in enumerate(shape) if i not in axes)

    def _axes_value(self, ctx: InferContext):
        if not ctx.has(1):
            return None
        if ctx.types[1].size == 0:           # no axes, whatever the run-time value
            return np.zeros(0, np.int64)
        return ctx.value(1, "axes")

    def infer(self, ctx):
        x = ctx.types[0]
        allowed = FLOATS + (INTEGERS if self.kind.integers else ())
        if not self.kind.wide:
            allowed += ORDERED
        if x.dtype.short not in allowed:
            raise ctx.fail(f"element type {x.dtype} is not supported "
                           f"(supported: {', '.join(allowed)})")
        if ctx.runtime(1) and ctx.types[1].size:
            shape = ctx.declared(0, 1, "axes")
            if not self.runtime_kernels(ctx.node, x.shape, shape, ctx.types[1].size):
                raise ctx.fail(f"the declared output shape {list(shape)} is no reduction of "
                               f"{x} over {ctx.types[1].size} axes")
            return [TensorType(x.dtype, shape)]
        axes = self.reduced_axes(ctx.node, x.rank, self._axes_value(ctx))
        return [TensorType(x.dtype, self.out_shape(ctx.node, x.shape, axes))]

    def runtime_kernels(self, node: Node, shape: tuple, declared: tuple, count: int) -> dict:
        """Axes read at run time: {reduced axes of size > 1: [bit masks of the axes sets
        giving the declared shape]}. Reducing a size-1 axis or not computes the same, so each
        key is one kernel; the run-time mask picks it (and any other mask is ERR_SHAPE)."""
        rank = len(shape)
        if rank > 16:
            raise ModelError(f"node {node.label} ({node.op}): axes known only at run time "
                             f"need rank <= 16, x has rank {rank}")
        kernels: dict = {}
        for mask in range(1, 1 << rank):
            axes = tuple(a for a in range(rank) if mask >> a & 1)
            if len(axes) <= count and self.out_shape(node, shape, axes) == tuple(declared):
                kernels.setdefault(tuple(a for a in axes if shape[a] != 1), []).append(mask)
        return kernels

    def reference(self, node, x, axes=None):
        picked = self.reduced_axes(node, x.ndim, axes)
        wide = np.int64 if x.dtype.kind == "i" else x.dtype if x.dtype.kind in "ub" \
            else np.float64
        y = NUMPY[self.op_type](x.astype(wide), picked)
        return [np.asarray(y).astype(x.dtype).reshape(self.out_shape(node, x.shape, picked))]

    def flops(self, node, graph):
        return graph.types[node.inputs[0]].size * self.kind.flops_per_element

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        axes_name = node.inputs[1] if len(node.inputs) > 1 else ""
        axes = ctx.known(axes_name) if axes_name else None
        if axes_name and axes is None and ctx.type(axes_name).size:
            ctx.emit(self._runtime_axes(ctx, node))
            return
        if axes_name and axes is None:
            axes = np.zeros(0, np.int64)
        picked = self.reduced_axes(node, ctx.type(x).rank, axes)
        if ctx.type(y).size:       # no outputs: nothing to write; big ones over the pool
            setup, kept, body, count = reduce_parts(ctx, x, y, picked, self.kind)
            emit_nest(ctx, setup, kept, body, cost=max(count, 1))

    def _runtime_axes(self, ctx, node) -> str:
        """Axes read at run time: their mask is checked against the declared shape, then
        picks one of the kernels specialised at compile time (usually there is one)."""
        x, axes, y = node.inputs[0], node.inputs[1], node.outputs[0]
        shape, out = ctx.shape(x), ctx.shape(y)
        kernels = self.runtime_kernels(node, shape, out, ctx.type(axes).size)
        dims = ctx.table("int64_t", shape, "dims")
        want = ctx.table("int64_t", out, "dims")
        ok = (f"nn_axes_mask({ctx.ptr(axes)}, {ctx.type(axes).size}, {len(shape)}, &mask) && "
              f"nn_reduced_shape_is({dims}, {len(shape)}, mask, {int(node.attr('keepdims', 1))}, "
              f"{want}, {len(out)})")
        lines = ["uint64_t mask;",
                 ctx.check_statement(ok, f"run-time axes {axes} reduce to the declared "
                                         f"{list(out)}")]
        if not ctx.type(y).size:
            lines.append("(void)mask;")
            return "{\n" + "\n".join("    " + line for line in lines) + "\n}"
        wide = sum(1 << a for a, d in enumerate(shape) if d != 1)
        lines.append(f"switch (mask & 0x{wide:x}u) {{       /* the reduced axes of size > 1 */")
        for picked in sorted(kernels):
            bits = sum(1 << a for a in picked)
            lines.append(f"case 0x{bits:x}u: {reduce_loop(ctx, x, y, picked, self.kind)} break;")
        lines += [f"default: {ctx.shape_error}", "}"]
        text = "\n".join(lines)
        return "{\n" + "\n".join("    " + line for line in text.split("\n")) + "\n}"


def _merged_dims(shape: tuple, axes: tuple) -> list:
    """[(extent, reduced, stride)] with size-1 dims dropped and neighbours of the same kind
    merged (row-major, so they are contiguous with each other)."""
    dims = []
    for i, d in enumerate(shape):
        if d == 1:
            continue
        reduced = i in axes
        if dims and dims[-1][1] == reduced:
            dims[-1][0] *= d
        else:
            dims.append([d, reduced])
    out, stride = [], 1
    for extent, reduced in reversed(dims):
        out.append((extent, reduced, stride))
        stride *= extent
    return out[::-1]


def _index(terms: list) -> str:
    text = " + ".join(v if s == 1 else f"{v} * {s}" for v, s in terms)
    return text or "0"


def reduce_loop(ctx, x: str, y: str, axes: tuple, kind: Reduction) -> str:
    """The C block computing y = reduction of x over ``axes``."""
    setup, kept, body, _ = reduce_parts(ctx, x, y, axes, kind)
    lines = setup + _nest([(e, 0) for e in kept], "i", body)
    return "{\n" + "\n".join("    " + line for line in lines) + "\n}"


def reduce_parts(ctx, x: str, y: str, axes: tuple, kind: Reduction) -> tuple:
    """(declarations, extents of the kept dims i0, i1..., statements computing one output,
    count of reduced elements): y = reduction of x over ``axes``."""
    dtype = ctx.type(x).dtype
    dims = _merged_dims(ctx.shape(x), axes)
    kept = [(e, s) for e, r, s in dims if not r]
    reduced = [(e, s) for e, r, s in dims if r]
    count = int(np.prod([e for e, _ in reduced])) if reduced else 1
    kept_vars = [f"i{k}" for k in range(len(kept))]
    out_terms, step = [], 1
    for var, (extent, _) in zip(reversed(kept_vars), reversed(kept)):
        out_terms.append((var, step))
        step *= extent
    x_terms = [(v, s) for v, (_, s) in zip(kept_vars, kept)]
    x_terms += [(f"r{k}", s) for k, (_, s) in enumerate(reduced)]
    x_terms.sort(key=lambda t: -t[1])
    # f16 / bf16 elements are loaded as float and the result stored back
    etype = compute_ctype(dtype)
    load = load_as_compute(ctx, dtype, f"x[{_index(x_terms)}]")

    # integers wrap around like the element type would: uint64_t arithmetic is modular
    acc_type = etype if not kind.wide else "double" if dtype.is_float else "uint64_t"
    init = _LIMITS.get((dtype.short, kind.init), kind.init)
    wide_load = load if acc_type == etype else f"({acc_type}){load}"
    finish = kind.finish.format(acc="acc", n=count, top="top")
    if acc_type == etype and finish == "acc":
        result = finish
    else:
        result = f"({etype})" + (finish if finish == "acc" else f"({finish})")
    result = store_from_compute(ctx, dtype, result)

    body = []
    empty = count == 0           # an empty set: no loop over it (and no read of x)
    if "{top}" in kind.step:     # a first pass for the running maximum
        body.append(f"{etype} top = {_LIMITS[(dtype.short, 'lowest')]};")
        if not empty:
            body += _nest(reduced, "r", _max_step(">").format(acc="top", x=load))
    body.append(f"{acc_type} acc = {init};")
    if not empty:
        body += _nest(reduced, "r", kind.step.format(acc="acc", x=load, wx=wide_load, top="top"))
    body.append(f"y[{_index(out_terms[::-1])}] = {result};")

    lines = [] if empty else [f"const {dtype.ctype} *x = {ctx.ptr(x)};"]
    lines.append(f"{dtype.ctype} *y = {ctx.ptr(y)};")
    return lines, [e for e, _ in kept], body, count


def _nest(dims: list, var: str, body) -> list:
    """Loops over ``dims`` (outermost first) around ``body`` (one statement or a list)."""
    lines = [body] if isinstance(body, str) else list(body)
    for k in reversed(range(len(dims))):
        head = f"for (size_t {var}{k} = 0; {var}{k} < {dims[k][0]}; ++{var}{k})"
        if len(lines) == 1:
            lines = [head] + ["    " + lines[0]]
        else:
            lines = [head + " {"] + ["    " + line for line in lines] + ["}"]
    return lines


def _register(op: str, since: int, axes_input_since: int):
    @register(op, since=since)
    class _Op(Reduce):
        __doc__ = f"y = {op[6:]} of x over axes"
    _Op.axes_input_since = axes_input_since
    _Op.__name__ = op
    return _Op


for _op in REDUCTIONS:
    _register(_op, 1, 13 if _op == "ReduceSum" else 18)
