"""Matrix products: Gemm and MatMul, and the GEMM plumbing that Conv shares; Einsum (a loop
nest specialised to the equation and shapes) and Det (LU with partial pivoting).

float32 runs on the cache-blocked SGEMM of ``hal/<target>/gemm.c``, whose left operand is
packed into micro-kernel panels (``pack_a``) of the target's blocking (``targets.py``). A
constant operand is packed here, at compile time, into the weight blob; when the constant is
the right-hand one (a layer's weights), the product is computed transposed, Y^T = B^T A^T, so
that it still is. Other left operands are packed at run time into the node's scratch. A
product of one or two columns (a layer at batch 1 or 2) runs as matrix-vector products on the
same packed operand (``hal/<target>/gemv.c``, ``gemv_calls``). float64
uses the plain DGEMM. float16 and bfloat16 MatMul widens its operands to float32 in scratch
(constants at compile time, straight into the packed layout), runs the SGEMM and rounds the
result back once, to nearest even (``widen_loop``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..codegen.loops import HALF_TYPES, broadcast_loop, broadcast_shape, c_literal
from ..codegen.names import c_comment
from ..errors import ModelError
from ..ir.graph import Node, TensorType
from ..targets import GENERIC, active
from .registry import InferContext, Op, register

# The generic SGEMM blocking (NN_GEMM_* in templates/hal/generic/gemm.h). Lowering packs for
# the active target's blocking, ``blocking()``.
GEMM_BLOCKING = GENERIC.gemm.as_dict()
MR, NR, KC, NC = (GEMM_BLOCKING[k] for k in ("MR", "NR", "KC", "NC"))
KERNEL_DTYPES = ("f32", "f64")
WIDENED_DTYPES = tuple(HALF_TYPES)       # computed in float32, rounded back once


def blocking():
    """The SGEMM blocking of the target being generated for (``targets.active``)."""
    return active().gemm


def packed_a_floats(m: int, k: int) -> int:
    """Floats of an m x k left operand packed by ``pack_a`` (NN_GEMM_PACKED_A_FLOATS)."""
    mr = blocking().MR
    return -(-m // mr) * mr * k


def gemm_work_floats(n: int) -> int:
    """Floats of the SGEMM's B-panel buffer for n columns (NN_GEMM_WORK_FLOATS)."""
    b = blocking()
    return b.KC * (-(-min(n, b.NC) // b.NR) * b.NR)


def pack_a(a: np.ndarray) -> np.ndarray:
    """The m x k matrix ``a`` in the SGEMM's packed layout: per block of KC columns, MR-row
    panels stored column by column, rows past m zero (see gemm.h)."""
    a = np.asarray(a, np.float32)
    m, k = a.shape
    MR, KC = blocking().MR, blocking().KC        # noqa: N806 (the names of gemm.h)
    panels = -(-m // MR)
    out = np.zeros(panels * MR * k, np.float32)
    for pc in range(0, k, KC):
        kc = min(KC, k - pc)
        block = out[pc * panels * MR:(pc + kc) * panels * MR].reshape(panels, kc, MR)
        full = m // MR
        block[:full] = a[:full * MR, pc:pc + kc].reshape(full, MR, kc).transpose(0, 2, 1)
        if m % MR:
            block[full, :, :m % MR] = a[full * MR:, pc:pc + kc].T
    return out


@dataclass(frozen=True)
class Matrix:
    """A strided matrix in C: element (i, j) at ptr[i * rs + j * cs]; ``value`` when it is
    known at compile time (then it is pre-packed, under weight-blob key ``key``)."""
    ptr: str
    rows: int
    cols: int
    rs: int
    cs: int
    value: np.ndarray | None = None
    key: str = ""
    label: str = ""      # how the generated comment names it

    @property
    def T(self) -> "Matrix":
        value = None if self.value is None else self.value.T
        label = self.label[:-2] if self.label.endswith("^T") else self.label + "^T"
        return Matrix(self.ptr, self.cols, self.rows, self.cs, self.rs, value, self.key + ".T",
                      label)


def sgemm_scratch_floats(m: int, n: int, k: int, lhs_constant: bool) -> int:
    """Scratch of one ``gemm_calls`` product: the run-time packed left operand, then B panels."""
    return (0 if lhs_constant else packed_a_floats(m, k)) + gemm_work_floats(n)


def gemm_calls(ctx, dtype, lhs: Matrix, rhs: Matrix, out: Matrix, alpha: float = 1.0,
               bias: str | None = None, accumulate: bool = False,
               scratch: str | None = None) -> list:
    """C statements for out = init + alpha * lhs rhs, init being out itself (accumulate),
    bias[i], or 0. float32 needs ``scratch`` of ``sgemm_scratch_floats``."""
    m, k, n = lhs.rows, lhs.cols, rhs.cols
    flags = (bias or "NULL", "true" if accumulate else "false")
    scale = "" if alpha == 1.0 else f"{alpha!r} * "
    init = f"{out.label} + " if accumulate else "bias + " if bias else ""
    packed_when = "compile" if lhs.value is not None else "run"
    comment = c_comment(f"{out.label} [{m}x{n}] = {init}{scale}{lhs.label} [{m}x{k}] "
                        f"* {rhs.label} [{k}x{n}]" +
                        (f"; {lhs.label} packed at {packed_when} time" if dtype.short == "f32"
                         else ""))

    def call(fn, *args):
        return f"{ctx.fn('gemm', fn)}({', '.join(str(a) for a in args)});"
    if dtype.short == "f64":
        return [f"/* {comment} */",
                call("dgemm", m, n, k, c_literal(alpha, dtype), lhs.ptr, lhs.rs, lhs.cs,
                     rhs.ptr, rhs.rs, rhs.cs, *flags, out.ptr, out.rs, out.cs)]
    calls = [f"/* {comment} */"]
    if lhs.value is not None:
        packed, work = ctx.weight(f"{lhs.key}:sgemm-packed", pack_a(lhs.value)), scratch
    else:
        packed, work = scratch, f"{scratch} + {packed_a_floats(m, k)}"
        calls.append(call("sgemm_pack_a", m, k, lhs.ptr, lhs.rs, lhs.cs, packed))
    if n <= GEMV_MAX_COLUMNS and rhs.rs == 1 and out.rs == 1 and not accumulate:
        factor = None if alpha == 1.0 else c_literal(alpha, dtype)
        return calls + gemv_calls(ctx, m, n, k, packed, rhs, out, factor, bias)
    calls.append(call("sgemm", m, n, k, c_literal(alpha, dtype), packed, rhs.ptr, rhs.rs,
                      rhs.cs, *flags, out.ptr, out.rs, out.cs, work))
    return calls


# Up to this many columns of a float32 product (a batch-1 layer: one) run as matrix-vector
# products on the same packed left operand (hal gemv.h), streaming it once per column: the
# SGEMM's register tile would read each column's values from a B panel padded to NR columns,
# whose cache lines A's stream evicts from L1 tile after tile. MLP 784-1024-1024-10 on Zen 4
# (x86-avx512), SGEMM -> GEMV: batch 1 0.153 -> 0.081 ms at one thread, 0.092 -> 0.043 at two;
# batch 2 0.181 -> 0.161 and 0.111 -> 0.082; batch 3 0.181 -> 0.240 (the SGEMM wins).
GEMV_MAX_COLUMNS = 2


def gemv_calls(ctx, m: int, n: int, k: int, packed: str, rhs: Matrix, out: Matrix,
               alpha: str | None, bias: str | None) -> list:
    """C statements for out = bias + alpha * A rhs with A packed, as GEMVs: rhs's and out's
    columns contiguous (rs 1); alpha a C literal, None for 1. The bias and alpha follow in one
    loop over out, the same float operations as the SGEMM's stores (bias[i] + alpha * acc)."""
    ctx.fn("gemm", "sgemm")         # gemv.c reads the gemm kernels' packed layout (gemm.h)
    calls = [f"{ctx.fn('gemv', 'sgemv_packed')}({m}, {k}, {n}, {packed}, {rhs.ptr}, {rhs.cs}, "
             f"{out.ptr}, {out.cs});"]
    scaled = f"{alpha} * " if alpha else ""
    if bias or scaled:      # names of their own: the caller's expressions may use y or bias
        value = f"{'gemv_bias[i] + ' if bias else ''}{scaled}gemv_y[j * {out.cs} + i]"
        lines = [f"float *gemv_y = {out.ptr};",
                 *([f"const float *gemv_bias = {bias};"] if bias else []),
                 f"for (size_t j = 0; j < {n}; ++j)",
                 f"    for (size_t i = 0; i < {m}; ++i)",
                 f"        gemv_y[j * {out.cs} + i] = {value};"]
        calls.append("{\n" + "".join(f"    {line}\n" for line in lines) + "}")
    return calls


def check_kernel_dtype(ctx, node: Node, name: str) -> None:
    dtype = ctx.type(name).dtype
    if dtype.short not in KERNEL_DTYPES:
        raise ModelError(f"node {node.label} ({node.op}): no kernel for element type {dtype} "
                         f"(supported: {', '.join(KERNEL_DTYPES)})")


def widen_floats(count: int) -> int:
    """Floats a widened copy of ``count`` elements takes (kept 64-byte aligned)."""
    return -(-count // 16) * 16


def widen_loop(ctx, dtype, count: int, src: str, dst: str, direction: int) -> str:
    """A loop converting ``count`` half elements at ``src`` to float at ``dst`` (direction 0) or
    float back to half (1, round to nearest even)."""
    ctx.helper("half")
    return (f"for (size_t i = 0; i < {count}; ++i) "
            f"{dst}[i] = {HALF_TYPES[dtype.short][direction]}({src}[i]);")


def _swapped(m: int, n: int, a_constant: bool, b_constant: bool) -> bool:
    """Compute Y^T = B^T A^T? When only B is constant (it gets pre-packed), or when neither is
    and A is a few rows against a wider B (the kernel is most efficient with rows >= MR)."""
    if b_constant != a_constant:
        return b_constant
    return not a_constant and m < blocking().MR and n > m


def _constant(graph, name: str):
    return graph.constants.get(name) if name else None


# --- Gemm -------------------------------------------------------------------------------------
@register("Gemm", since=1)
class Gemm(Op):
    """Y = alpha * op(A) op(B) + beta * C, op = transpose when transA / transB; C broadcasts."""
    def canonicalize(self, node, version, graph):
        if "broadcast" in node.attrs:          # before opset 7: C broadcasting was opt-in
            return [node.replace(attrs={k: v for k, v in node.attrs.items() if k != "broadcast"})]
        return [node]

    @staticmethod
    def dims(node: Node, a_shape, b_shape) -> tuple:
        m, k = a_shape[::-1] if node.attr("transA", 0) else a_shape
        k2, n = b_shape[::-1] if node.attr("transB", 0) else b_shape
        return m, k, k2, n

    def infer(self, ctx: InferContext) -> list:
        a, b = ctx.types[0], ctx.types[1]
        if a.rank != 2 or b.rank != 2:
            raise ctx.fail(f"A and B must be matrices, got {a} and {b}")
        if a.dtype != b.dtype:
            raise ctx.fail(f"A and B element types differ: {a.dtype} and {b.dtype}")
        m, k, k2, n = self.dims(ctx.node, a.shape, b.shape)
        if k != k2:
            raise ctx.fail(f"inner dimensions differ: op(A) is {m}x{k}, op(B) is {k2}x{n}")
        if ctx.has(2):
            c = ctx.types[2]
            if c.rank > 2 or any(d not in (1, t) for d, t in zip(c.shape[::-1], (n, m))):
                raise ctx.fail(f"C {c} does not broadcast to the output [{m},{n}]")
        return [TensorType(a.dtype, (m, n))]

    def reference(self, node, a, b, c=None):
        a = a.T if node.attr("transA", 0) else a
        b = b.T if node.attr("transB", 0) else b
        y = np.asarray(node.attr("alpha", 1.0), a.dtype) * (a @ b)
        if c is not None:
            y = y + np.asarray(node.attr("beta", 1.0), a.dtype) * c
        return [np.asarray(y).astype(a.dtype)]

    def flops(self, node, graph):
        m, k, _, n = self.dims(node, graph.types[node.inputs[0]].shape,
                               graph.types[node.inputs[1]].shape)
        return 2 * m * n * k

    def _plan(self, node: Node, graph):
        a, b = node.inputs[:2]
        m, k, _, n = self.dims(node, graph.types[a].shape, graph.types[b].shape)
        swapped = _swapped(m, n, _constant(graph, a) is not None, _constant(graph, b) is not None)
        return m, n, k, swapped

    def scratch_bytes(self, node, graph):
        if graph.types[node.outputs[0]].dtype.short != "f32":
            return 0
        m, n, k, swapped = self._plan(node, graph)
        a, b = node.inputs[:2]
        if swapped:
            return 4 * sgemm_scratch_floats(n, m, k, _constant(graph, b) is not None)
        return 4 * sgemm_scratch_floats(m, n, k, _constant(graph, a) is not None)

    def lower(self, node, ctx):
        a, b = node.inputs[:2]
        c = node.inputs[2] if len(node.inputs) > 2 else ""
        y = node.outputs[0]
        check_kernel_dtype(ctx, node, y)
        dtype = ctx.type(y).dtype
        m, n, k, swapped = self._plan(node, ctx.graph)
        (ar, ac), (br, bc) = ctx.shape(a), ctx.shape(b)
        op_a = Matrix(ctx.ptr(a), ar, ac, ac, 1, _constant(ctx.graph, a), a, "A")
        op_b = Matrix(ctx.ptr(b), br, bc, bc, 1, _constant(ctx.graph, b), b, "B")
        op_a = op_a.T if node.attr("transA", 0) else op_a
        op_b = op_b.T if node.attr("transB", 0) else op_b
        out = Matrix(ctx.ptr(y), m, n, n, 1, label="Y")
        lhs, rhs, out = (op_b.T, op_a.T, out.T) if swapped else (op_a, op_b, out)
        bias, accumulate = self._init(node, ctx, c, out.rows, swapped)
        scratch = ctx.scratch(dtype.ctype) if dtype.short == "f32" else None
        for call in gemm_calls(ctx, dtype, lhs, rhs, out, float(node.attr("alpha", 1.0)), bias,
                               accumulate, scratch):
            ctx.emit(call)

    def _init(self, node, ctx, c: str, rows: int, swapped: bool):
        """How beta * C enters: as the kernel's per-row bias where C varies along kernel rows
        only, else written into Y first (then accumulated onto)."""
        beta = float(node.attr("beta", 1.0))
        if not c or beta == 0.0:
            return None, False
        y = node.outputs[0]
        dtype = ctx.type(y).dtype
        shape = (1,) * (2 - ctx.type(c).rank) + tuple(ctx.shape(c))
        along_rows = shape[0] == 1 if swapped else shape[1] == 1
        value = _constant(ctx.graph, c)
        if along_rows and value is not None:
            full = np.broadcast_to(np.asarray(value).reshape(shape), ctx.shape(y))
            vector = (full[0, :] if swapped else full[:, 0]) * np.asarray(beta, dtype.numpy)
            key = f"{c}:bias-{beta!r}-{rows}{'T' * swapped}"
            return ctx.weight(key, vector.astype(dtype.numpy)), False
        if along_rows and beta == 1.0 and ctx.type(c).size == rows:
            return ctx.ptr(c), False
        scale = "" if beta == 1.0 else f"{c_literal(beta, dtype)} * "
        broadcast_loop(ctx, y, [c], lambda v: f"{scale}{v[0]}")
        return None, True


# --- MatMul -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MatMulShape:
    """numpy matmul of A [..., M, K] and B [..., K, N]: a 1-D A is one row, a 1-D B one column."""
    m: int
    k: int
    n: int
    batch: tuple         # broadcast batch dims of the output
    a_batch: tuple       # A's batch dims, right-aligned to ``batch`` with 1s
    b_batch: tuple
    out: tuple           # the output shape (1-D operands drop their dim)

    @staticmethod
    def of(a: tuple, b: tuple, node: Node) -> "MatMulShape":
        a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
        b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
        batch = broadcast_shape([a2[:-2], b2[:-2]], node)
        out = batch + ((a2[-2],) if len(a) > 1 else ()) + ((b2[-1],) if len(b) > 1 else ())

        def pad(dims):
            return (1,) * (len(batch) - len(dims)) + tuple(dims)
        return MatMulShape(a2[-2], a2[-1], b2[-1], batch, pad(a2[:-2]), pad(b2[:-2]), out)

    @property
    def batches(self) -> int:
        return int(np.prod(self.batch, dtype=np.int64))


def _batch_strides(dims: tuple, batch: tuple, step: int) -> list:
    """Element strides of each batch dim (0 where the operand is broadcast)."""
    strides, s = [], step
    for d in reversed(dims):
        strides.append(0 if d == 1 else s)
        s *= d
    return strides[::-1]


def loop_nest(extents: list, body: list) -> str:
    """``for (size_t i0 ...) for (size_t i1 ...) { body }``; just the body without extents."""
    if not extents:
        return "\n".join(body)
    lines, indent = [], ""
    for j, d in enumerate(extents):
        brace = " {" if j == len(extents) - 1 else ""
        lines.append(f"{indent}for (size_t i{j} = 0; i{j} < {d}; ++i{j}){brace}")
        indent += "    "
    lines += [indent + stmt for stmt in body]
    lines.append(indent[4:] + "}")
    return "\n".join(lines)


@register("MatMul", since=1)
class MatMul(Op):
    """Y = A @ B with numpy semantics (batch dims broadcast; 1-D operands promoted)."""
    def infer(self, ctx: InferContext) -> list:
        a, b = ctx.types[0], ctx.types[1]
        if a.rank == 0 or b.rank == 0:
            raise ctx.fail(f"operands must have rank >= 1, got {a} and {b}")
        if a.dtype != b.dtype:
            raise ctx.fail(f"A and B element types differ: {a.dtype} and {b.dtype}")
        s = MatMulShape.of(a.shape, b.shape, ctx.node)
        k2 = b.shape[0] if b.rank == 1 else b.shape[-2]
        if s.k != k2:
            raise ctx.fail(f"inner dimensions differ: A {a} has {s.k} columns, B {b} {k2} rows")
        return [TensorType(a.dtype, s.out)]

    def reference(self, node, a, b):
        return [np.asarray(np.matmul(a, b)).astype(a.dtype)]

    def flops(self, node, graph):
        s = MatMulShape.of(graph.types[node.inputs[0]].shape, graph.types[node.inputs[1]].shape,
                           node)
        return 2 * s.batches * s.m * s.n * s.k

    def _plan(self, node, graph):
        """(shape, mode): 'flat' = B is one constant matrix, so A's rows of every batch form
        one product (computed transposed, B^T pre-packed); else one product per batch, with
        'const-a' (A one constant matrix), 'swapped' or 'plain'."""
        a, b = node.inputs
        s = MatMulShape.of(graph.types[a].shape, graph.types[b].shape, node)
        a_const = a in graph.constants and np.prod(s.a_batch, dtype=np.int64) == 1
        b_const = b in graph.constants and np.prod(s.b_batch, dtype=np.int64) == 1
        if b_const and not a_const:
            return s, "flat"
        if a_const:
            return s, "const-a"
        return s, "swapped" if _swapped(s.m, s.n, False, False) else "plain"

    @staticmethod
    def _widened(node, mode) -> list:
        """The operands a half-precision product copies to float32: the output, and each input
        not pre-packed at compile time."""
        a, b = node.inputs
        return ([a] if mode != "const-a" else []) + ([b] if mode != "flat" else []) + \
            [node.outputs[0]]

    def _sgemm_floats(self, s, mode) -> int:
        if mode == "flat":
            return sgemm_scratch_floats(s.n, s.batches * s.m, s.k, True)
        if mode == "swapped":
            return sgemm_scratch_floats(s.n, s.m, s.k, False)
        return sgemm_scratch_floats(s.m, s.n, s.k, mode == "const-a")

    def scratch_bytes(self, node, graph):
        short = graph.types[node.outputs[0]].dtype.short
        if short not in ("f32",) + WIDENED_DTYPES:
            return 0
        s, mode = self._plan(node, graph)
        floats = widen_floats(self._sgemm_floats(s, mode))
        if short in WIDENED_DTYPES:
            floats += sum(widen_floats(graph.types[v].size) for v in self._widened(node, mode))
        return 4 * floats

    def lower(self, node, ctx):
        y = node.outputs[0]
        dtype = ctx.type(y).dtype
        if dtype.short not in WIDENED_DTYPES:
            check_kernel_dtype(ctx, node, y)
            scratch = ctx.scratch(dtype.ctype) if dtype.short == "f32" else None
            self._product(node, ctx, dtype, {v: ctx.ptr(v) for v in (*node.inputs, y)}, scratch)
            return
        s, mode = self._plan(node, ctx.graph)
        scratch = ctx.scratch("float")
        ptrs = {v: ctx.ptr(v) for v in node.inputs}
        offset = widen_floats(self._sgemm_floats(s, mode))
        for v in self._widened(node, mode):
            ptrs[v] = f"({scratch} + {offset})"
            offset += widen_floats(ctx.type(v).size)
        ctx.emit(f"/* {dtype} operands widened to float32; the product rounded back once */")
        for v in self._widened(node, mode)[:-1]:
            ctx.emit(widen_loop(ctx, dtype, ctx.type(v).size, ctx.ptr(v), ptrs[v], 0))
        self._product(node, ctx, dtypes.FLOAT32, ptrs, scratch)
        ctx.emit(widen_loop(ctx, dtype, ctx.type(y).size, ptrs[y], ctx.ptr(y), 1))

    def _product(self, node, ctx, dtype, ptrs: dict, scratch) -> None:
        """Y = A @ B in ``dtype`` (f32 or f64) over the tensors at ``ptrs``."""
        a, b = node.inputs
        y = node.outputs[0]
        s, mode = self._plan(node, ctx.graph)
        if mode == "flat":               # Y^T (N x rows) = B^T (N x K) A^T (K x rows)
            rows = s.batches * s.m
            b_value = np.asarray(ctx.graph.constants[b]).reshape(s.k, s.n)
            lhs = Matrix(ptrs[b], s.k, s.n, s.n, 1, b_value, b, "B").T
            rhs = Matrix(ptrs[a], rows, s.k, s.k, 1, label="A").T
            out = Matrix(ptrs[y], rows, s.n, s.n, 1, label="Y").T
            for call in gemm_calls(ctx, dtype, lhs, rhs, out, scratch=scratch):
                ctx.emit(call)
            return
        dims = [(i, d) for i, d in enumerate(s.batch) if d != 1]
        index = {}
        for name, batch, step in ((a, s.a_batch, s.m * s.k), (b, s.b_batch, s.k * s.n),
                                  (y, s.batch, s.m * s.n)):
            strides = _batch_strides(batch, s.batch, step)
            terms = [f"i{j} * {strides[i]}" for j, (i, _) in enumerate(dims) if strides[i]]
            index[name] = f"{ptrs[name]} + {' + '.join(terms)}" if terms else ptrs[name]
        a_value = np.asarray(ctx.graph.constants[a]).reshape(s.m, s.k) if mode == "const-a" \
            else None
        lhs = Matrix(index[a], s.m, s.k, s.k, 1, a_value, a, "A")
        rhs = Matrix(index[b], s.k, s.n, s.n, 1, label="B")
        out = Matrix(index[y], s.m, s.n, s.n, 1, label="Y")
        if mode == "swapped":
            lhs, rhs, out = rhs.T, lhs.T, out.T
        body = gemm_calls(ctx, dtype, lhs, rhs, out, scratch=scratch)
        ctx.emit(loop_nest([d for _, d in dims], body))


# --- Einsum -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EinsumSpec:
    """An Einsum equation bound to operand shapes: per operand the label of each dim (the dims
    under "..." get labels "0", "1", ... right-aligned), the output labels, each label's extent
    and the labels summed over."""
    operands: tuple
    output: tuple
    sizes: dict
    summed: tuple

    @staticmethod
    def of(equation: str, shapes: list, fail) -> "EinsumSpec":
        eq = equation.replace(" ", "")
        lhs, arrow, rhs = eq.partition("->")
        terms = lhs.split(",")
        if len(terms) != len(shapes):
            raise fail(f"equation {equation!r} names {len(terms)} operands, "
                       f"{len(shapes)} given")
        letters = set()
        for t in terms + ([rhs] if arrow else []):
            body = t.replace("...", "", 1)
            if not all(c.isalpha() for c in body) or "." in body:
                raise fail(f"equation {equation!r}: term {t!r} is not letters with at most "
                           f"one '...'")
        ellipsis_rank = 0
        for t, shape in zip(terms, shapes):
            n = len(t.replace("...", ""))
            if ("..." in t and len(shape) < n) or ("..." not in t and len(shape) != n):
                raise fail(f"equation {equation!r}: term {t!r} does not fit an operand of "
                           f"rank {len(shape)}")
            if "..." in t:
                ellipsis_rank = max(ellipsis_rank, len(shape) - n)
        operands, sizes = [], {}
        for t, shape in zip(terms, shapes):
            head, _, tail = t.partition("...")
            middle = len(shape) - len(head) - len(tail)
            labels = tuple(head) + tuple(str(ellipsis_rank - middle + i)
                                         for i in range(middle)) + tuple(tail)
            for label, d in zip(labels, shape):
                if label.isdigit():            # ellipsis dims broadcast
                    if sizes.get(label, 1) != 1 and d not in (1, sizes[label]):
                        raise fail(f"equation {equation!r}: '...' dims {list(shape)} do not "
                                   f"broadcast")
                    sizes[label] = max(sizes.get(label, 1), d)
                elif sizes.setdefault(label, d) != d:
                    raise fail(f"equation {equation!r}: {label!r} is {sizes[label]} and {d}")
            letters.update(labels)
            operands.append(labels)
        dots = tuple(str(i) for i in range(ellipsis_rank))
        if arrow:
            head, _, tail = rhs.partition("...")
            output = tuple(head) + (dots if "..." in rhs else ()) + tuple(tail)
            unknown = [c for c in output if c not in letters]
            if unknown or len(set(output)) != len(output):
                raise fail(f"equation {equation!r}: output {rhs!r} repeats a label or names "
                           f"one no operand has")
        else:
            counts = {}
            for labels in operands:
                for label in labels:
                    counts[label] = counts.get(label, 0) + 1
            output = dots + tuple(sorted(c for c in counts if not c.isdigit() and counts[c] == 1))
        summed = tuple(sorted(c for c in letters if c not in output))
        return EinsumSpec(tuple(operands), output, sizes, summed)

    def strides(self, k: int, shape: tuple) -> dict:
        """label -> element stride in operand k (repeated labels add up; broadcast dims 0)."""
        out, step = {}, 1
        for label, d in reversed(list(zip(self.operands[k], shape))):
            out[label] = out.get(label, 0) + (step if d != 1 else 0)
            step *= d
        return out


@register("Einsum", since=12)
class Einsum(Op):
    """y = einsum(equation, inputs...): products over shared labels, summed over the labels the
    output lacks (diagonals, transposes, reductions, batched products; '...' broadcasts)."""
    def spec(self, node, shapes, fail) -> EinsumSpec:
        return EinsumSpec.of(str(node.attr("equation", "")), shapes, fail)

    def infer(self, ctx):
        dtypes_ = {t.dtype for t in ctx.types}
        if len(dtypes_) != 1:
            raise ctx.fail(f"operand element types differ: {sorted(map(str, dtypes_))}")
        s = self.spec(ctx.node, [t.shape for t in ctx.types], ctx.fail)
        return [TensorType(ctx.types[0].dtype, tuple(s.sizes[c] for c in s.output))]

    def reference(self, node, *arrays):
        wide = [a.astype(np.float32) if str(a.dtype) in ("bfloat16", "float16") else a
                for a in arrays]
        return [np.asarray(np.einsum(str(node.attr("equation")), *wide)).astype(arrays[0].dtype)]

    def flops(self, node, graph):
        s = self.spec(node, [graph.types[i].shape for i in node.inputs], _fail(node))
        return len(node.inputs) * int(np.prod([s.sizes[c] for c in s.output + s.summed],
                                              dtype=np.int64))

    def lower(self, node, ctx):
        from ..codegen.loops import HALF_TYPES, compute_ctype
        y = node.outputs[0]
        dtype = ctx.type(y).dtype
        if not (dtype.is_float or dtype.is_integer):
            raise _fail(node)(f"no kernel for element type {dtype}")
        s = self.spec(node, [ctx.shape(i) for i in node.inputs], _fail(node))
        ct = compute_ctype(dtype)
        acc = "double" if dtype.short == "f64" else ct
        load, store = ("", "") if dtype.short not in HALF_TYPES else HALF_TYPES[dtype.short]
        if load:
            ctx.helper("half")
        var = {c: f"i_{c}" if not c.isdigit() else f"e{c}" for c in s.sizes}
        out_strides = EinsumSpec((s.output,) + s.operands, s.output, s.sizes, s.summed) \
            .strides(0, tuple(s.sizes[c] for c in s.output))
        lines = [f"{ctx.ctype(y)} *y = {ctx.ptr(y)};"]
        terms = []
        for k, name in enumerate(node.inputs):
            lines.append(f"const {ctx.ctype(name)} *x{k} = {ctx.ptr(name)};")
            st = s.strides(k, ctx.shape(name))
            index = " + ".join(f"{var[c]} * {v}" if v != 1 else var[c]
                               for c, v in st.items() if v) or "0"
            terms.append(f"{load}(x{k}[{index}])" if load else f"x{k}[{index}]")
        out_index = " + ".join(f"{var[c]} * {v}" if v != 1 else var[c]
                               for c, v in out_strides.items() if v) or "0"
        indent = ""
        for c in s.output:
            lines.append(f"{indent}for (size_t {var[c]} = 0; {var[c]} < {s.sizes[c]}; "
                         f"++{var[c]}) {{")
            indent += "    "
        lines.append(f"{indent}{acc} acc = 0;")
        inner = indent
        for c in s.summed:
            lines.append(f"{inner}for (size_t {var[c]} = 0; {var[c]} < {s.sizes[c]}; "
                         f"++{var[c]})")
            inner += "    "
        lines.append(f"{inner}acc += {' * '.join(terms)};")
        value = f"({ct})acc" if acc != ct else "acc"
        lines.append(f"{indent}y[{out_index}] = {f'{store}({value})' if store else value};")
        for _ in s.output:
            indent = indent[4:]
            lines.append(f"{indent}}}")
        ctx.emit("{\n" + "\n".join("    " + x for x in lines) + "\n}")


def _fail(node):
    def fail(message):
        return ModelError(f"node {node.label} ({node.op}): {message}")
    return fail


# --- Det --------------------------------------------------------------------------------------
@register("Det", since=11)
class Det(Op):
    """y = det(X) of each square matrix X[..., M, M] (LU with partial pivoting, in double)."""
    def infer(self, ctx):
        x = ctx.types[0]
        if x.rank < 2 or x.shape[-1] != x.shape[-2]:
            raise ctx.fail(f"X must be square matrices [..., M, M], got {x}")
        if not x.dtype.is_float:
            raise ctx.fail(f"no kernel for element type {x.dtype} (supported: float types)")
        return [TensorType(x.dtype, x.shape[:-2])]

    def reference(self, node, x):
        return [np.asarray(np.linalg.det(x.astype(np.float64))).astype(x.dtype)]

    def scratch_bytes(self, node, graph):
        m = graph.types[node.inputs[0]].shape[-1]
        return 8 * m * m

    def lower(self, node, ctx):
        from ..codegen.loops import HALF_TYPES
        x, y = node.inputs[0], node.outputs[0]
        m = ctx.shape(x)[-1]
        count = ctx.type(y).size
        dtype = ctx.type(y).dtype
        load, store = HALF_TYPES.get(dtype.short, ("", ""))
        if load:
            ctx.helper("half")
        ctx.emit(f"""{{
    const {ctx.ctype(x)} *x = {ctx.ptr(x)};
    {ctx.ctype(y)} *y = {ctx.ptr(y)};
    double *a = {ctx.scratch('double')};
    for (size_t n = 0; n < {count}; ++n) {{
        for (size_t i = 0; i < {m * m}; ++i) a[i] = (double){load}(x[n * {m * m} + i]);
        double det = 1.0;
        for (size_t k = 0; k < {m}; ++k) {{
            size_t p = k;
            for (size_t i = k + 1; i < {m}; ++i)
                if (fabs(a[i * {m} + k]) > fabs(a[p * {m} + k])) p = i;
            if (a[p * {m} + k] == 0.0) {{
                det = 0.0;
                break;
            }}
            if (p != k) {{          /* row swap: the sign flips */
                for (size_t j = 0; j < {m}; ++j) {{
                    const double t = a[k * {m} + j];
                    a[k * {m} + j] = a[p * {m} + j];
                    a[p * {m} + j] = t;
                }}
                det = -det;
            }}
            det *= a[k * {m} + k];
            for (size_t i = k + 1; i < {m}; ++i) {{
                const double f = a[i * {m} + k] / a[k * {m} + k];
                for (size_t j = k + 1; j < {m}; ++j) a[i * {m} + j] -= f * a[k * {m} + j];
            }}
        }}
        y[n] = {store}(({dtype.ctype if not store else 'float'})det);
    }}
}}""")
