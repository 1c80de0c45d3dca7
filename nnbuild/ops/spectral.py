"""Spectral ops: DFT (opset 17's axis attribute and opset 20's axis input; real or complex
input, dft_length truncating or zero-padding, onesided, inverse, and the one-sided inverse that
gives a real signal).

A signal is one line along ``axis`` of X [batch, ..., signal..., 1 | 2] (real or re, im). The
transform is a direct sum over a twiddle table computed once per run (cos and sin of 2 pi m /
N in double), accumulated in double:  Y[f] = sum_k x[k] e^{-+2 pi i f k / N}  (1/N for inverse).
A run-time axis is resolved by a table of (outer, length, inner) per possible axis.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..codegen.loops import HALF_TYPES
from ..ir.graph import Node, TensorType
from .registry import InferContext, Op, register


@dataclass(frozen=True)
class Signal:
    """Where the DFT runs: ``outer`` lines of ``n_in`` samples ``inner`` apart, transformed with
    length ``n`` into ``n_out`` outputs; ``complex_in`` / ``complex_out``: last dim 2, not 1."""
    outer: int
    n_in: int
    inner: int
    n: int
    n_out: int
    complex_in: bool
    complex_out: bool


def _axis(value, rank: int, fail) -> int:
    axis = int(np.asarray(value).reshape(-1)[0])
    if not (-rank <= axis <= -2 or 0 <= axis <= rank - 2):
        raise fail(f"axis {axis} is outside [-{rank}, -2] and [0, {rank - 2}]")
    return axis + rank if axis < 0 else axis


def signal(node: Node, shape: tuple, axis: int, length, fail) -> Signal:
    rank = len(shape)
    if rank < 2 or shape[-1] not in (1, 2):
        raise fail(f"input must be [batch, ..., 1 or 2], got {list(shape)}")
    onesided, inverse = bool(node.attr("onesided", 0)), bool(node.attr("inverse", 0))
    n_in = shape[axis]
    if onesided and inverse:       # half a spectrum in, a real signal of length n out
        n = int(length) if length is not None else 2 * (n_in - 1)
        n_out, complex_out = n, False
    else:
        n = int(length) if length is not None else n_in
        n_out, complex_out = (n // 2 + 1 if onesided else n), True
    if n < 1:
        raise fail(f"dft_length {n} must be >= 1")
    return Signal(int(np.prod(shape[:axis], dtype=np.int64)), n_in,
                  int(np.prod(shape[axis + 1:-1], dtype=np.int64)), n, n_out, shape[-1] == 2,
                  complex_out)


@register("DFT", since=17)
class DFT(Op):
    """Y = the discrete Fourier transform of X along ``axis`` (see the module docstring)."""
    def canonicalize(self, node, version, graph):
        if version < 20:                # axis was an attribute, default 1
            axis = graph.add_constant(graph.unique_name(f"{node.outputs[0]}_axis"),
                                      np.array(node.attr("axis", 1), np.int64))
            inputs = list(node.inputs) + [""] * (2 - len(node.inputs)) + [axis]
            attrs = {k: v for k, v in node.attrs.items() if k != "axis"}
            return [node.replace(inputs=tuple(inputs[:3]), attrs=attrs)]
        return [node]

    def _length(self, ctx: InferContext):
        return int(np.asarray(ctx.value(1, "dft_length")).reshape(-1)[0]) if ctx.has(1) else None

    def infer(self, ctx):
        x = ctx.types[0]
        if not x.dtype.is_float:
            raise ctx.fail(f"no kernel for element type {x.dtype} (supported: float types)")
        length = self._length(ctx)
        if ctx.has(2) and ctx.values[2] is None:      # a run-time axis: shape-preserving only
            if node_onesided(ctx.node) or length is not None:
                ctx.value(2, "axis")                  # the error: it must be known
            signal(ctx.node, x.shape, 0, None, ctx.fail)
            return [TensorType(x.dtype, x.shape[:-1] + (2,))]
        axis = _axis(ctx.values[2] if ctx.has(2) else -2, x.rank, ctx.fail)
        s = signal(ctx.node, x.shape, axis, length, ctx.fail)
        shape = list(x.shape)
        shape[axis], shape[-1] = s.n_out, 2 if s.complex_out else 1
        return [TensorType(x.dtype, tuple(shape))]

    def reference(self, node, x, length=None, axis=None):
        rank = x.ndim
        a = _axis(-2 if axis is None else axis, rank, ValueError)
        n = None if length is None else int(np.asarray(length).reshape(-1)[0])
        wide = x.astype(np.float64)
        z = wide[..., 0] + (1j * wide[..., 1] if x.shape[-1] == 2 else 0)
        onesided, inverse = bool(node.attr("onesided", 0)), bool(node.attr("inverse", 0))
        if onesided and inverse:
            y = np.fft.irfft(z, n=n, axis=a)[..., None]
        else:
            y = (np.fft.ifft if inverse else np.fft.fft)(z, n=n, axis=a)
            if onesided:
                y = np.take(y, range(y.shape[a] // 2 + 1), axis=a)
            y = np.stack([y.real, y.imag], -1)
        return [y.astype(x.dtype)]

    def flops(self, node, graph):
        y = graph.types[node.outputs[0]]
        x = graph.types[node.inputs[0]]
        return 8 * y.size * max(x.shape[1:-1] or (1,))

    def scratch_bytes(self, node, graph):
        """The twiddle table: cos and sin of n angles."""
        x, y = graph.types[node.inputs[0]], graph.types[node.outputs[0]]
        n = max(max(x.shape[:-1]), max(y.shape[:-1]))
        if len(node.inputs) > 1 and node.inputs[1] in graph.constants:
            n = max(n, int(np.asarray(graph.constants[node.inputs[1]]).reshape(-1)[0]))
        return 16 * n

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        shape = ctx.shape(x)
        rank = len(shape)
        length = int(np.asarray(ctx.value(node.inputs[1])).reshape(-1)[0]) \
            if len(node.inputs) > 1 and node.inputs[1] else None
        axis_name = node.inputs[2] if len(node.inputs) > 2 else ""
        known = not axis_name or axis_name in ctx.graph.constants
        dtype = ctx.type(y).dtype
        load, store = HALF_TYPES.get(dtype.short, ("", ""))
        if load:
            ctx.helper("half")
        onesided, inverse = bool(node.attr("onesided", 0)), bool(node.attr("inverse", 0))
        lines = [f"const {ctx.ctype(x)} *x = {ctx.ptr(x)};", f"{ctx.ctype(y)} *y = {ctx.ptr(y)};",
                 f"double *tc = {ctx.scratch('double')};"]
        if known:
            axis = _axis(ctx.graph.constants[axis_name] if axis_name else -2, rank,
                         lambda m: ValueError(m))
            s = signal(node, shape, axis, length, ValueError)
            lines += [f"const size_t outer = {s.outer}, n_in = {s.n_in}, inner = {s.inner};",
                      f"const size_t n = {s.n}, n_out = {s.n_out};"]
        else:                          # shape-preserving: n = n_out = n_in along the axis
            table = [signal(node, shape, a, None, ValueError) for a in range(rank - 1)]
            lines += [f"int64_t a = {ctx.ptr(axis_name)}[0];",
                      f"if (a < 0) a += {rank};",
                      f"if (a < 0 || a > {rank - 2}) a = {rank - 2};  /* out of range */"]
            for key, attr in (("outer", "outer"), ("n_in", "n_in"), ("inner", "inner")):
                values = ctx.table("int64_t", [getattr(t, attr) for t in table], f"dft_{key}")
                lines.append(f"const size_t {key} = (size_t){values}[a];")
            lines.append("const size_t n = n_in, n_out = n_in;")
            s = table[0]
        cin, cout = 2 if s.complex_in else 1, 2 if s.complex_out else 1
        sign = "" if inverse else "-"
        scale = "1.0 / (double)n" if inverse else "1.0"

        def read(part, f):
            expr = f"x[((o * n_in + {f}) * inner + i) * {cin}{' + 1' if part else ''}]"
            return f"(double){load}({expr})" if load else f"(double){expr}"
        lines += ["double *ts = tc + n;",
                  "for (size_t m = 0; m < n; ++m) {",
                  "    const double angle = 6.283185307179586 * (double)m / (double)n;",
                  "    tc[m] = cos(angle);",
                  f"    ts[m] = {sign}sin(angle);",
                  "}",
                  "for (size_t o = 0; o < outer; ++o)",
                  "    for (size_t i = 0; i < inner; ++i)",
                  "        for (size_t f = 0; f < n_out; ++f) {",
                  "            double re = 0.0" + (", im = 0.0;" if s.complex_out else ";")]
        if onesided and inverse:     # the full spectrum: X[n - g] = conj(X[g])
            lines += ["            for (size_t g = 0; g < n; ++g) {",
                      "                const size_t src = g < n / 2 + 1 ? g : n - g;",
                      "                if (src >= n_in) continue;",
                      f"                const double xr = {read(0, 'src')};",
                      f"                const double xi = g < n / 2 + 1 ? "
                      f"{read(1, 'src') if s.complex_in else '0.0'} : "
                      f"-{read(1, 'src') if s.complex_in else '0.0'};"]
        else:
            lines += ["            const size_t count = n < n_in ? n : n_in;",
                      "            for (size_t g = 0; g < count; ++g) {",
                      f"                const double xr = {read(0, 'g')};",
                      f"                const double xi = {read(1, 'g') if s.complex_in else '0.0'};"]
        lines += ["                const size_t m = (f * g) % n;",
                  "                re += xr * tc[m] - xi * ts[m];"]
        if s.complex_out:
            lines.append("                im += xr * ts[m] + xi * tc[m];")
        lines += ["            }",
                  f"            const size_t at = ((o * n_out + f) * inner + i) * {cout};"]
        ct = "float" if load else dtype.ctype
        for k, part in enumerate(("re", "im")[:cout]):
            value = f"({ct})({part} * {scale})"
            lines.append(f"            y[at{' + 1' if k else ''}] = "
                         f"{f'{store}({value})' if store else value};")
        lines.append("        }")
        ctx.emit("{\n" + "\n".join("    " + ln for ln in lines) + "\n}")


def node_onesided(node: Node) -> bool:
    return bool(node.attr("onesided", 0))
