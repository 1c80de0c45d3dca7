"""Recurrent layers: RNN, GRU and LSTM with every attribute (directions forward / reverse /
bidirectional, activations with their alpha / beta, clip, GRU's linear_before_reset, LSTM's
input_forget and peepholes, layout, sequence_lens, initial_h / initial_c). float32 and float64.

Lowering, per direction (scratch reused by the next one):
1. one GEMM projects the inputs of every time step at once, Gx = X W^T + biases, with W
   pre-packed at compile time when it is a constant (else packed once at run time);
2. per time step one product of the recurrent weights (pre-packed the same way) with the previous
   hidden state of every batch row, Gh = R H (float32 with at most GEMV_MAX_BATCH rows: a
   matrix-vector kernel per row, hal/gemv.c, on the same packed R; else a GEMM), then one loop
   over batch and hidden units applies the gates and writes Y (a float32 LSTM with the default
   activations, no clip, input_forget or peepholes calls hal/recurrent.c's cell per batch row:
   vector sigmoid and tanh on x86).
Gate order is ONNX's: LSTM i o f c, GRU z r h. With ``sequence_lens``, batch row b runs its
first seq_lens[b] steps (a reverse direction starts at step seq_lens[b] - 1), keeps its state
after them, and its Y rows past them are zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..codegen.loops import c_literal, math_fn
from ..codegen.names import c_comment
from ..errors import ModelError
from ..ir.graph import Node, TensorType
from .linalg import Matrix, gemm_calls, gemm_work_floats, pack_a, packed_a_floats, \
    sgemm_scratch_floats, widen_floats
from .registry import InferContext, Op, register

DIRECTIONS = ("forward", "reverse", "bidirectional")
DTYPES = ("f32", "f64")
GEMV_MAX_BATCH = 3         # up to this many batch rows the per-step product runs as GEMVs

# name -> (alpha default, beta default); None: the activation takes no such parameter. The
# defaults are onnxruntime's (0 where it has none; ThresholdedRelu's is 0, not the op's 1).
ACTIVATIONS = {
    "relu": (None, None), "tanh": (None, None), "sigmoid": (None, None),
    "affine": (0.0, 0.0), "leakyrelu": (0.01, None), "thresholdedrelu": (0.0, None),
    "scaledtanh": (0.0, 0.0), "hardsigmoid": (0.2, 0.5), "elu": (1.0, None),
    "softsign": (None, None), "softplus": (None, None),
}
ACTIVATION_NAMES = ("Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu",
                    "ScaledTanh", "HardSigmoid", "Elu", "Softsign", "Softplus")


@dataclass(frozen=True)
class Activation:
    name: str            # lower case key of ACTIVATIONS
    alpha: float
    beta: float

    def numpy(self, v: np.ndarray) -> np.ndarray:
        a, b, n = self.alpha, self.beta, self.name
        one = v.dtype.type(1)
        if n == "relu":
            return np.maximum(v, 0)
        if n == "tanh":
            return np.tanh(v)
        if n == "sigmoid":
            return one / (one + np.exp(-v))
        if n == "affine":
            return v.dtype.type(a) * v + v.dtype.type(b)
        if n == "leakyrelu":
            return np.where(v >= 0, v, v.dtype.type(a) * v)
        if n == "thresholdedrelu":
            return np.where(v > a, v, 0).astype(v.dtype)
        if n == "scaledtanh":
            return v.dtype.type(a) * np.tanh(v.dtype.type(b) * v)
        if n == "hardsigmoid":
            return np.clip(v.dtype.type(a) * v + v.dtype.type(b), 0, 1)
        if n == "elu":
            return np.where(v >= 0, v, v.dtype.type(a) * (np.exp(v) - one))
        if n == "softsign":
            return v / (one + np.abs(v))
        return np.log1p(np.exp(v))                  # softplus

    def c(self, v: str, dtype) -> str:
        """The C expression of the activation of the variable ``v`` (read more than once)."""
        def lit(x):
            return c_literal(x, dtype)

        def fn(name):
            return math_fn(name, dtype)
        one, zero = lit(1.0), lit(0.0)
        return {
            "relu": f"({v} > {zero} ? {v} : {zero})",
            "tanh": f"{fn('tanh')}({v})",
            "sigmoid": f"{one} / ({one} + {fn('exp')}(-{v}))",
            "affine": f"{lit(self.alpha)} * {v} + {lit(self.beta)}",
            "leakyrelu": f"({v} >= {zero} ? {v} : {lit(self.alpha)} * {v})",
            "thresholdedrelu": f"({v} > {lit(self.alpha)} ? {v} : {zero})",
            "scaledtanh": f"{lit(self.alpha)} * {fn('tanh')}({lit(self.beta)} * {v})",
            "hardsigmoid": f"{fn('fmin')}({one}, {fn('fmax')}({zero}, {lit(self.alpha)} * {v} + "
                           f"{lit(self.beta)}))",
            "elu": f"({v} >= {zero} ? {v} : {lit(self.alpha)} * ({fn('exp')}({v}) - {one}))",
            "softsign": f"{v} / ({one} + {fn('fabs')}({v}))",
            "softplus": f"{fn('log1p')}({fn('exp')}({v}))",
        }[self.name]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Spec:
    """One recurrent node, from its attributes and input shapes."""
    cell: str                # RNN, GRU, LSTM
    seq: int
    batch: int
    inputs: int
    hidden: int
    direction: str
    layout: int
    activations: tuple       # per direction, a tuple of Activation (f, g, h)
    clip: float | None
    linear_before_reset: bool
    input_forget: bool

    @property
    def gates(self) -> int:
        return {"RNN": 1, "GRU": 3, "LSTM": 4}[self.cell]

    @property
    def directions(self) -> int:
        return 2 if self.direction == "bidirectional" else 1

    def reverse(self, d: int) -> bool:
        return self.direction == "reverse" or d == 1

    @property
    def gh(self) -> int:
        return self.gates * self.hidden


DEFAULT_ACTIVATIONS = {"RNN": ("Tanh",), "GRU": ("Sigmoid", "Tanh"),
                       "LSTM": ("Sigmoid", "Tanh", "Tanh")}


def spec_of(node: Node, types: list, fail) -> Spec:
    x, w, r = types[:3]
    cell = node.op
    if x is None or w is None or r is None:
        raise fail("X, W and R are required")
    if x.rank != 3 or w.rank != 3 or r.rank != 3:
        raise fail(f"X, W and R must have rank 3, got {x}, {w} and {r}")
    if x.dtype.short not in DTYPES:
        raise fail(f"no kernel for element type {x.dtype} (supported: {', '.join(DTYPES)})")
    if w.dtype != x.dtype or r.dtype != x.dtype:
        raise fail(f"X, W and R element types differ: {x.dtype}, {w.dtype}, {r.dtype}")
    direction = _text(node.attr("direction", "forward"))
    if direction not in DIRECTIONS:
        raise fail(f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
    layout = int(node.attr("layout", 0))
    if layout not in (0, 1):
        raise fail(f"layout {layout} is not 0 or 1")
    seq, batch = (x.shape[0], x.shape[1]) if layout == 0 else (x.shape[1], x.shape[0])
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[cell]
    hidden = int(node.attr("hidden_size", r.shape[2]))
    dirs = 2 if direction == "bidirectional" else 1
    for name, t, shape in (("W", w, (dirs, gates * hidden, x.shape[2])),
                           ("R", r, (dirs, gates * hidden, hidden))):
        if tuple(t.shape) != shape:
            raise fail(f"{name} {t} must be {list(shape)} (directions, {gates} gates x "
                       f"hidden_size {hidden}, ...)")
    names = node.attr("activations")
    names = [_text(n) for n in names] if names else list(DEFAULT_ACTIVATIONS[cell]) * dirs
    per = len(DEFAULT_ACTIVATIONS[cell])
    if len(names) == per and dirs == 2:
        names = names * 2
    if len(names) != per * dirs:
        raise fail(f"{len(names)} activations given, {cell} takes {per} per direction")
    alphas = [float(a) for a in node.attr("activation_alpha", []) or []]
    betas = [float(b) for b in node.attr("activation_beta", []) or []]
    acts = []
    for n in names:
        key = n.lower()
        if key not in ACTIVATIONS:
            raise fail(f"activation {n!r} is not supported (supported: "
                       f"{', '.join(ACTIVATION_NAMES)})")
        alpha, beta = ACTIVATIONS[key]
        if alpha is not None and alphas:
            alpha = alphas.pop(0)
        if beta is not None and betas:
            beta = betas.pop(0)
        acts.append(Activation(key, alpha or 0.0, beta or 0.0))
    clip = node.attr("clip")
    for i, (name, shape) in enumerate((("B", (dirs, 2 * gates * hidden)),
                                       ("sequence_lens", (batch,)),
                                       ("initial_h", None), ("initial_c", None),
                                       ("P", (dirs, 3 * hidden))), start=3):
        if i >= len(types) or types[i] is None or (cell != "LSTM" and i > 5):
            continue
        if shape is None:
            shape = (dirs, batch, hidden) if layout == 0 else (batch, dirs, hidden)
        if tuple(types[i].shape) != shape:
            raise fail(f"{name} {types[i]} must be {list(shape)}")
    return Spec(cell, seq, batch, x.shape[2], hidden, direction, layout,
                tuple(tuple(acts[d * per:(d + 1) * per]) for d in range(dirs)),
                None if clip is None else float(clip),
                bool(node.attr("linear_before_reset", 0)), bool(node.attr("input_forget", 0)))


def _input(node: Node, i: int) -> str:
    return node.inputs[i] if i < len(node.inputs) else ""


# --- numpy reference --------------------------------------------------------------------------
def _reference(spec: Spec, x, w, r, b=None, seq_lens=None, h0=None, c0=None, p=None):
    H, D, S, N = spec.hidden, spec.directions, spec.seq, spec.batch
    dt = x.dtype
    if spec.layout == 1:
        x = x.transpose(1, 0, 2)
        h0 = None if h0 is None else h0.transpose(1, 0, 2)
        c0 = None if c0 is None else c0.transpose(1, 0, 2)
    y = np.zeros((S, D, N, H), dt)
    y_h = np.zeros((D, N, H), dt)
    y_c = np.zeros((D, N, H), dt)
    lens = [S] * N if seq_lens is None else [int(v) for v in seq_lens]
    clip = (lambda v: v) if spec.clip is None else (lambda v: np.clip(v, -spec.clip, spec.clip))
    for d in range(D):
        acts = spec.activations[d]
        wb = np.zeros(spec.gh, dt) if b is None else b[d, :spec.gh]
        rb = np.zeros(spec.gh, dt) if b is None else b[d, spec.gh:]
        pi, po, pf = (np.zeros(H, dt),) * 3 if p is None else np.split(p[d], 3)
        for n in range(N):
            h = np.zeros(H, dt) if h0 is None else h0[d, n].copy()
            c = np.zeros(H, dt) if c0 is None else c0[d, n].copy()
            steps = range(lens[n] - 1, -1, -1) if spec.reverse(d) else range(lens[n])
            for t in steps:
                gx = w[d] @ x[t, n] + wb
                gh = r[d] @ h + rb
                if spec.cell == "RNN":
                    h = acts[0].numpy(clip(gx + gh))
                elif spec.cell == "GRU":
                    z = acts[0].numpy(clip(gx[:H] + gh[:H]))
                    rr = acts[0].numpy(clip(gx[H:2 * H] + gh[H:2 * H]))
                    if spec.linear_before_reset:
                        hc = gx[2 * H:] + rr * gh[2 * H:]
                    else:
                        hc = gx[2 * H:] + r[d, 2 * H:] @ (rr * h) + rb[2 * H:]
                    h = (1 - z) * acts[1].numpy(clip(hc)) + z * h
                else:
                    g = gx + gh
                    i = acts[0].numpy(clip(g[:H] + pi * c))
                    f = 1 - i if spec.input_forget else acts[0].numpy(clip(g[2 * H:3 * H] + pf * c))
                    c = f * c + i * acts[1].numpy(clip(g[3 * H:]))
                    o = acts[0].numpy(clip(g[H:2 * H] + po * c))
                    h = o * acts[2].numpy(c)
                y[t, d, n] = h
            y_h[d, n], y_c[d, n] = h, c
    if spec.layout == 1:
        return [y.transpose(2, 0, 1, 3), y_h.transpose(1, 0, 2), y_c.transpose(1, 0, 2)]
    return [y, y_h, y_c]


# --- lowering ---------------------------------------------------------------------------------
@dataclass
class _Buffers:
    """Scratch offsets (in elements) of one recurrent node."""
    gx: int
    gh: int
    h: int
    c: int
    rh: int
    bias: int
    packed_r: int
    gemm: int
    total: int


def _buffers(spec: Spec, node: Node, graph) -> _Buffers:
    H, G = spec.hidden, spec.gh
    f32 = graph.types[node.inputs[0]].dtype.short == "f32"
    sizes = {"gx": spec.seq * spec.batch * G, "gh": spec.batch * G, "h": spec.batch * H,
             "c": spec.batch * H if spec.cell == "LSTM" else 0,
             "rh": spec.batch * H if spec.cell == "GRU" and not spec.linear_before_reset else 0,
             "bias": G if _input(node, 3) and _input(node, 3) not in graph.constants else 0,
             "packed_r": 0, "gemm": 0}
    if f32:
        if node.inputs[2] not in graph.constants:
            sizes["packed_r"] = sum(packed_a_floats(rows, H) for rows in _r_blocks(spec))
        w_constant = node.inputs[1] in graph.constants
        sizes["gemm"] = max(sgemm_scratch_floats(G, spec.seq * spec.batch, spec.inputs,
                                                 w_constant), gemm_work_floats(spec.batch))
    offsets, at = {}, 0
    for key, size in sizes.items():
        offsets[key] = at
        at += widen_floats(size)
    return _Buffers(**offsets, total=at)


def _r_blocks(spec: Spec) -> list:
    """Rows of R multiplied together per step: GRU without linear_before_reset multiplies its
    candidate's rows later, by the reset hidden state."""
    if spec.cell == "GRU" and not spec.linear_before_reset:
        return [2 * spec.hidden, spec.hidden]
    return [spec.gh]


class _Recurrent(Op):
    def spec(self, node: Node, graph) -> Spec:
        types = [graph.types[i] if i else None for i in node.inputs]

        def fail(message):
            return ModelError(f"node {node.label} ({node.op}): {message}")
        return spec_of(node, types, fail)

    def infer(self, ctx: InferContext) -> list:
        s = spec_of(ctx.node, ctx.types, ctx.fail)
        dtype = ctx.types[0].dtype
        y = (s.seq, s.directions, s.batch, s.hidden) if s.layout == 0 else \
            (s.batch, s.seq, s.directions, s.hidden)
        state = (s.directions, s.batch, s.hidden) if s.layout == 0 else \
            (s.batch, s.directions, s.hidden)
        return [TensorType(dtype, shape) for shape in (y, state, state)][:len(ctx.node.outputs)]

    def reference(self, node, *inputs):
        types = [None if v is None else TensorType.of(v) for v in inputs]

        def fail(message):
            return ModelError(f"node {node.label} ({node.op}): {message}")
        spec = spec_of(node, types, fail)
        return _reference(spec, *inputs)[:len(node.outputs)]

    def flops(self, node, graph):
        s = self.spec(node, graph)
        return 2 * s.directions * s.seq * s.batch * s.gh * (s.inputs + s.hidden)

    def scratch_bytes(self, node, graph):
        s = self.spec(node, graph)
        return graph.types[node.inputs[0]].dtype.itemsize * _buffers(s, node, graph).total

    def lower(self, node, ctx):
        spec = self.spec(node, ctx.graph)
        for d in range(spec.directions):
            ctx.emit(_Direction(spec, node, ctx, d).code())


class _Direction:
    """The C block of one direction of a recurrent node."""

    def __init__(self, spec: Spec, node: Node, ctx, d: int):
        self.s, self.node, self.ctx, self.d = spec, node, ctx, d
        self.dtype = ctx.type(node.inputs[0]).dtype
        self.t = self.dtype.ctype
        self.buf = _buffers(spec, node, ctx.graph)
        self.scratch = ctx.scratch(self.t)

    def lit(self, v) -> str:
        return c_literal(v, self.dtype)

    def at(self, offset: int) -> str:
        return f"{self.scratch} + {offset}" if offset else self.scratch

    def const(self, i: int):
        name = _input(self.node, i)
        return self.ctx.graph.constants.get(name) if name else None

    # --- pieces ---
    def bias_lines(self) -> tuple:
        """(statements, pointer) of the bias added to the input projection: Wb + Rb, except the
        GRU candidate's Rb when linear_before_reset (it is scaled by r)."""
        s, d, G = self.s, self.d, self.s.gh
        keep = 2 * s.hidden if s.cell == "GRU" and s.linear_before_reset else G
        b = _input(self.node, 3)
        if not b:
            return [], None
        value = self.const(3)
        if value is not None:
            v = np.asarray(value[d])
            fused = v[:G] + np.concatenate([v[G:G + keep], np.zeros(G - keep, v.dtype)])
            return [], self.ctx.weight(f"{b}:rnn-bias{d}-{keep}", fused.astype(v.dtype))
        src = f"{self.ctx.ptr(b)} + {d * 2 * G}" if d else self.ctx.ptr(b)
        dst = f"{self.t} *bias = {self.at(self.buf.bias)};"
        loop = (f"for (size_t j = 0; j < {G}; ++j) bias[j] = wb[j] + "
                + (f"(j < {keep} ? wb[{G} + j] : {self.lit(0)});" if keep < G else f"wb[{G} + j];"))
        return [f"const {self.t} *wb = {src};", dst, loop], "bias"

    def rbh(self) -> str | None:
        """The GRU candidate's recurrent bias when linear_before_reset, else None."""
        s, b = self.s, _input(self.node, 3)
        if not (s.cell == "GRU" and s.linear_before_reset and b):
            return None
        start = self.d * 2 * s.gh + s.gh + 2 * s.hidden
        value = self.const(3)
        if value is not None:
            v = np.asarray(value).reshape(-1)[start:start + s.hidden]
            return self.ctx.weight(f"{b}:gru-rbh{self.d}", v.copy())
        return f"({self.ctx.ptr(b)} + {start})"

    def x_row(self, t: str, b: str) -> str:
        s = self.s
        return f"{t} * {s.batch} + {b}" if s.layout == 0 else f"{b} * {s.seq} + {t}"

    def y_offset(self, t: str, b: str) -> str:
        s, d = self.s, self.d
        if s.layout == 0:
            return f"(({t} * {s.directions} + {d}) * {s.batch} + {b}) * {s.hidden}"
        return f"(({b} * {s.seq} + {t}) * {s.directions} + {d}) * {s.hidden}"

    def state_offset(self, b: str) -> str:
        s, d = self.s, self.d
        if s.layout == 0:
            return f"({d * s.batch} + {b}) * {s.hidden}"
        return f"({b} * {s.directions} + {d}) * {s.hidden}"

    def r_products(self) -> tuple:
        """(statements before the loop, per-step products) of R's row blocks with H."""
        s, d, ctx, H, G = self.s, self.d, self.ctx, self.s.hidden, self.s.gh
        r = self.node.inputs[2]
        before, products, row, packed_at = [], [], 0, self.buf.packed_r
        for k, rows in enumerate(_r_blocks(s)):
            source = "rh" if k == 1 else "h"
            out = f"gh + {row}" if row else "gh"
            r_ptr = f"{ctx.ptr(r)} + {(d * G + row) * H}"
            if self.dtype.short == "f64":
                products.append(f"{ctx.fn('gemm', 'dgemm')}({rows}, {s.batch}, {H}, 1.0, "
                                f"{r_ptr}, {H}, 1, {source}, 1, {H}, NULL, false, {out}, 1, "
                                f"{G});")
            else:
                value = self.const(2)
                if value is not None:
                    packed = ctx.weight(f"{r}:rnn-r{d}-{row}", pack_a(value[d, row:row + rows]))
                else:
                    packed = self.at(packed_at)
                    before.append(f"{ctx.fn('gemm', 'sgemm_pack_a')}({rows}, {H}, {r_ptr}, {H}, "
                                  f"1, {packed});")
                    packed_at += packed_a_floats(rows, H)
                if s.batch <= GEMV_MAX_BATCH:       # a few columns: stream R once per column
                    products.append(f"{ctx.fn('gemv', 'sgemv_packed')}({rows}, {H}, {s.batch}, "
                                    f"{packed}, {source}, {H}, {out}, {G});")
                else:
                    products.append(f"{ctx.fn('gemm', 'sgemm')}({rows}, {s.batch}, {H}, 1.0f, "
                                    f"{packed}, {source}, 1, {H}, NULL, false, {out}, 1, {G}, "
                                    f"{self.at(self.buf.gemm)});")
            row += rows
        return before, products

    def projection(self, bias) -> list:
        """Gx = W X^T + bias for every time step in one GEMM (rows in X's order)."""
        s, d, ctx, G = self.s, self.d, self.ctx, self.s.gh
        w, x = self.node.inputs[1], self.node.inputs[0]
        value = self.const(1)
        rows = s.seq * s.batch
        lhs = Matrix(f"{ctx.ptr(w)} + {d * G * s.inputs}", G, s.inputs, s.inputs, 1,
                     None if value is None else np.asarray(value[d]), f"{w}[{d}]", "W")
        rhs = Matrix(ctx.ptr(x), s.inputs, rows, 1, s.inputs, label="X^T")
        out = Matrix("gx", G, rows, 1, G, label="Gx^T")
        scratch = self.at(self.buf.gemm) if self.dtype.short == "f32" else None
        return gemm_calls(ctx, self.dtype, lhs, rhs, out, bias=bias, scratch=scratch)

    def clip(self, v: str) -> str:
        if self.s.clip is None:
            return v
        fn = math_fn("fmin", self.dtype), math_fn("fmax", self.dtype)
        return f"{fn[0]}({fn[1]}({v}, {self.lit(-self.s.clip)}), {self.lit(self.s.clip)})"

    def gate(self, name: str, pre: str, act: Activation) -> list:
        return [f"{self.t} {name} = {self.clip(pre)};", f"{name} = {act.c(name, self.dtype)};"]

    def cell(self) -> list:
        """Statements for hidden unit j of batch row b: x, r point at its Gx and Gh rows, hb
        (and cb) at its state; the new h is left in hb[j]."""
        s, H, acts = self.s, self.s.hidden, self.s.activations[self.d]
        if s.cell == "RNN":
            return self.gate("hn", "x[j] + r[j]", acts[0]) + ["hb[j] = hn;"]
        if s.cell == "GRU":
            lines = self.gate("z", "x[j] + r[j]", acts[0])
            if s.linear_before_reset:
                rbh = self.rbh()
                rec = f"r[{2 * H} + j]" + (f" + {rbh}[j]" if rbh else "")
                lines += self.gate("rr", f"x[{H} + j] + r[{H} + j]", acts[0])
                lines += self.gate("hc", f"x[{2 * H} + j] + rr * ({rec})", acts[1])
            else:      # z (kept in its Gh slot) and r came first: gru_reset_phase
                lines = [f"const {self.t} z = r[j];"]
                lines += self.gate("hc", f"x[{2 * H} + j] + r[{2 * H} + j]", acts[1])
            return lines + [f"hb[j] = ({self.lit(1)} - z) * hc + z * hb[j];"]
        p = _input(self.node, 7)
        peep = {k: f" + p[{off} + j] * cb[j]" if p else "" for k, off in
                (("i", 0), ("o", H), ("f", 2 * H))}
        lines = self.gate("gi", f"x[j] + r[j]{peep['i']}", acts[0])
        if s.input_forget:
            lines.append(f"const {self.t} gf = {self.lit(1)} - gi;")
        else:
            lines += self.gate("gf", f"x[{2 * H} + j] + r[{2 * H} + j]{peep['f']}", acts[0])
        lines += self.gate("gc", f"x[{3 * H} + j] + r[{3 * H} + j]", acts[1])
        lines.append("cb[j] = gf * cb[j] + gi * gc;")
        lines += self.gate("go", f"x[{H} + j] + r[{H} + j]{peep['o']}", acts[0])
        lines.append(f"hb[j] = go * {acts[2].c('cb[j]', self.dtype)};")
        return lines

    def default_lstm_cell(self) -> bool:
        """A float32 LSTM with the default activations and no clip, input_forget or peepholes
        runs its cell in hal/recurrent.c (vectorised on x86); any other cell is a loop here."""
        s = self.s
        return (s.cell == "LSTM" and self.dtype.short == "f32" and s.clip is None and
                not s.input_forget and not _input(self.node, 7) and
                tuple(a.name for a in s.activations[self.d]) == ("sigmoid", "tanh", "tanh"))

    def gru_reset_phase(self) -> list:
        """GRU without linear_before_reset: z and r of every unit, and rh = r * h for the
        candidate's product (r's slot of gh keeps z)."""
        H, acts = self.s.hidden, self.s.activations[self.d]
        return (self.gate("z", "x[j] + r[j]", acts[0]) +
                self.gate("rr", f"x[{H} + j] + r[{H} + j]", acts[0]) +
                ["r[j] = z;", "rhb[j] = rr * hb[j];"])

    def per_batch(self, zero: str | None) -> list:
        """The start of the loop body for batch row b at step s: the time step t, pointers to
        its Gx and Gh rows and its state. With sequence_lens, a row past its length writes
        zeros to ``zero`` (a C pointer expression and row offset) and is skipped."""
        s, ctx, t, H, G = self.s, self.ctx, self.t, self.s.hidden, self.s.gh
        lens, reverse = _input(self.node, 4), self.s.reverse(self.d)
        lines = []
        if lens:
            lines += [f"const size_t len = (size_t){ctx.ptr(lens)}[b];", "if (s >= len) {"]
            if zero:
                lines.append(f"    for (size_t j = 0; j < {H}; ++j) {zero} + j] = "
                             f"{self.lit(0)};")
            lines += ["    continue;", "}", f"const size_t t = {'len - 1 - s' if reverse else 's'};"]
        else:
            lines.append(f"const size_t t = {f'{s.seq - 1} - s' if reverse else 's'};")
        lines += [f"const {t} *x = gx + ({self.x_row('t', 'b')}) * {G};",
                  f"{t} *r = gh + b * {G};", f"{t} *hb = h + b * {H};"]
        if s.cell == "LSTM":
            lines.append(f"{t} *cb = c + b * {H};")
            if _input(self.node, 7):
                p = ctx.ptr(_input(self.node, 7))
                lines.append(f"const {t} *p = {p} + {self.d * 3 * H};" if self.d else
                             f"const {t} *p = {p};")
        return lines

    def batch_loop(self, prelude: list, body: list) -> list:
        s, H = self.s, self.s.hidden
        return ([f"for (size_t b = 0; b < {s.batch}; ++b) {{"] + ["    " + x for x in prelude] +
                [f"    for (size_t j = 0; j < {H}; ++j) {{"] + ["        " + x for x in body] +
                ["    }", "}"])

    def code(self) -> str:
        s, ctx, d, t, H = self.s, self.ctx, self.d, self.t, self.s.hidden
        node = self.node
        label = {"RNN": "one gate", "GRU": "gates z r h", "LSTM": "gates i o f c"}[s.cell]
        way = "reverse" if s.reverse(d) else "forward"
        two_phase = s.cell == "GRU" and not s.linear_before_reset
        lines = [f"/* {c_comment(f'direction {d} ({way}), {label}')} */",
                 f"{t} *gx = {self.at(self.buf.gx)};", f"{t} *gh = {self.at(self.buf.gh)};",
                 f"{t} *h = {self.at(self.buf.h)};"]
        if s.cell == "LSTM":
            lines.append(f"{t} *c = {self.at(self.buf.c)};")
        if two_phase:
            lines.append(f"{t} *rh = {self.at(self.buf.rh)};")
        bias_lines, bias = self.bias_lines()
        lines += bias_lines + self.projection(bias)
        for state, index in (("h", 5), ("c", 6)):
            if state == "c" and s.cell != "LSTM":
                continue
            init = _input(node, index)
            if init:
                lines.append(f"for (size_t b = 0; b < {s.batch}; ++b) for (size_t j = 0; "
                             f"j < {H}; ++j) {state}[b * {H} + j] = {ctx.ptr(init)}"
                             f"[{self.state_offset('b')} + j];")
            else:
                lines.append(f"for (size_t i = 0; i < {s.batch * H}; ++i) {state}[i] = "
                             f"{self.lit(0)};")
        before, products = self.r_products()
        lines += before
        y = node.outputs[0] if node.outputs and node.outputs[0] else ""
        step = [products[0]]
        if two_phase:
            step += self.batch_loop(self.per_batch(f"rh[b * {H}") + [f"{t} *rhb = rh + b * {H};"],
                                    self.gru_reset_phase())
            step.append(products[1])
        zero = f"{ctx.ptr(y)}[{self.y_offset('s', 'b')}" if y else None
        if self.default_lstm_cell():
            y_row = f"{ctx.ptr(y)} + {self.y_offset('t', 'b')}" if y else "NULL"
            call = f"{ctx.fn('recurrent', 'lstm_cell_f32')}(x, r, hb, cb, {y_row}, {H});"
            step += ([f"for (size_t b = 0; b < {s.batch}; ++b) {{"] +
                     ["    " + x for x in self.per_batch(zero) + [call]] + ["}"])
        else:
            body = self.cell()
            if y:
                body.append(f"{ctx.ptr(y)}[{self.y_offset('t', 'b')} + j] = hb[j];")
            step += self.batch_loop(self.per_batch(zero), body)
        lines += [f"for (size_t s = 0; s < {s.seq}; ++s) {{"] + ["    " + x for x in step] + ["}"]
        for k, state in ((1, "h"), (2, "c")):
            out = node.outputs[k] if len(node.outputs) > k else ""
            if out:
                lines.append(f"for (size_t b = 0; b < {s.batch}; ++b) for (size_t j = 0; "
                             f"j < {H}; ++j) {ctx.ptr(out)}[{self.state_offset('b')} + j] = "
                             f"{state}[b * {H} + j];")
        return "{\n" + "\n".join("    " + x for x in lines for x in x.split("\n")) + "\n}"


@register("RNN", since=7)
class RNN(_Recurrent):
    """Ht = f(Xt W^T + Ht-1 R^T + Wb + Rb) per direction."""


@register("GRU", since=7)
class GRU(_Recurrent):
    """z, r = f(..), h~ = g(Xt Wh^T + (r . Ht-1) Rh^T + ..), Ht = (1 - z) h~ + z Ht-1."""


@register("LSTM", since=7)
class LSTM(_Recurrent):
    """i, o, f = f(..) with peepholes, c~ = g(..), Ct = f Ct-1 + i c~, Ht = o h(Ct)."""
