"""Spectral ops: STFT and MelWeightMatrix (opset 17, see their classes) and DFT (opset 17's axis attribute and opset 20's axis input; real or complex
input, dft_length truncating or zero-padding, onesided, inverse, and the one-sided inverse that
gives a real signal).

A signal is one line along ``axis`` of X [batch, ..., signal..., 1 | 2] (real or re, im). The
transform is a direct sum over a twiddle table computed once per run (cos and sin of 2 pi m /
N in double), accumulated in double:  Y[f] = sum_k x[k] e^{-+2 pi i f k / N}  (1/N for inverse).
A run-time axis is resolved by a table of (outer, length, inner, n, n_out) per axis; when the
shape changes (onesided, dft_length) the model declares Y's shape and only the axes giving it run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..codegen.loops import HALF_TYPES, NARROW_TYPES, compute_ctype
from ..ir.graph import Node, TensorType
from .index import block, load, store
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
        if ctx.has(2) and ctx.values[2] is None:      # a run-time axis
            if not node_onesided(ctx.node) and length is None:    # the shape stays
                signal(ctx.node, x.shape, 0, None, ctx.fail)
                return [TensorType(x.dtype, x.shape[:-1] + (2,))]
            shape = ctx.declared(0, 2, "axis")
            if not _axes_giving(ctx.node, x.shape, length, shape):
                raise ctx.fail(f"no axis turns {x} into the declared shape {list(shape)}")
            return [TensorType(x.dtype, shape)]
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
        else:                          # a table per axis; only those giving Y's shape run
            table = _signals(node, shape, length)
            fits = _axes_giving(node, shape, length, ctx.shape(y))
            lines += [f"int64_t a = {ctx.ptr(axis_name)}[0];",
                      f"if (a < 0) a += {rank};",
                      ctx.check_statement(" || ".join(f"a == {a}" for a in fits),
                                          f"run-time axis gives the declared {list(ctx.shape(y))}")]
            for key in ("outer", "n_in", "inner", "n", "n_out"):
                values = ctx.table("int64_t", [getattr(t, key) if t else 0 for t in table],
                                   f"dft_{key}")
                lines.append(f"const size_t {key} = (size_t){values}[a];")
            s = table[fits[0]]
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


def _signals(node: Node, shape: tuple, length) -> list:
    """The Signal of each axis 0 .. rank - 2, None where the axis cannot be transformed."""
    out = []
    for a in range(len(shape) - 1):
        try:
            out.append(signal(node, shape, a, length, ValueError))
        except ValueError:
            out.append(None)
    return out


def _axes_giving(node: Node, shape: tuple, length, y_shape: tuple) -> list:
    """The axes along which a DFT of X (``shape``) has the shape ``y_shape``."""
    fits = []
    for a, s in enumerate(_signals(node, shape, length)):
        if s is not None:
            want = list(shape)
            want[a], want[-1] = s.n_out, 2 if s.complex_out else 1
            if tuple(want) == tuple(y_shape):
                fits.append(a)
    return fits


def node_onesided(node: Node) -> bool:
    return bool(node.attr("onesided", 0))


def _int_or_none(ctx, i):
    v = ctx.known(i) if ctx.has(i) else None
    return None if v is None else int(np.asarray(v).reshape(-1)[0])


def _scalar_c(ctx, name: str, ctype: str) -> str:
    """A C expression for input ``name``'s single value: a literal when known, else a read."""
    v = ctx.known(name)
    if v is not None:
        item = np.asarray(v).reshape(-1)[0].item()
        return f"(({ctype}){item!r})"
    return f"(({ctype}){ctx.ptr(name)}[0])"


# --- STFT --------------------------------------------------------------------------------------
@register("STFT", since=17)
class STFT(Op):
    """Y [batch, frames, bins, 2] = the DFT of each frame x[b, f * frame_step + t] * window[t]
    (t < frame_length; frame_length: the window's length, else the frame_length input, else the
    signal length); frames = (signal length - frame_length) / frame_step + 1, bins =
    frame_length / 2 + 1 when ``onesided`` (real input only), else frame_length. frame_step and
    frame_length may be run-time values: the model then declares Y's shape and the kernel checks
    it."""

    def _parts(self, node):
        ins = list(node.inputs) + [""] * (4 - len(node.inputs))
        return ins[0], ins[1], ins[2], ins[3]

    def infer(self, ctx):
        x = ctx.types[0]
        if not x.dtype.is_float or x.rank != 3 or x.shape[2] not in (1, 2):
            raise ctx.fail(f"signal {x} must be [batch, length, 1 or 2] of a float type")
        onesided = bool(ctx.node.attr("onesided", 1))
        if onesided and x.shape[2] == 2:
            raise ctx.fail("onesided needs a real signal")
        length = x.shape[1]
        window = ctx.types[2] if ctx.has(2) else None
        if window is not None and (window.rank != 1 or window.dtype != x.dtype):
            raise ctx.fail(f"window {window} must be 1-D of the signal's type")
        fl = window.shape[0] if window is not None else _int_or_none(ctx, 3) if ctx.has(3) \
            else length
        if window is not None and ctx.has(3) and _int_or_none(ctx, 3) not in (None, fl):
            raise ctx.fail(f"frame_length {_int_or_none(ctx, 3)} differs from the window's {fl}")
        step = _int_or_none(ctx, 1)
        if fl is not None and not 1 <= fl <= length:
            raise ctx.fail(f"frame_length {fl} is outside [1, {length}]")
        if step is not None and step < 1:
            raise ctx.fail(f"frame_step {step} must be positive")
        if fl is not None and step is not None:
            shape = (x.shape[0], (length - fl) // step + 1, fl // 2 + 1 if onesided else fl, 2)
        else:
            shape = ctx.declared(0, 1 if step is None else 3, "frame_step / frame_length, which "
                                 "decide the frame count, and")
            if len(shape) != 4 or shape[0] != x.shape[0] or shape[3] != 2 or \
                    not 1 <= shape[1] <= length or not 1 <= shape[2] <= length:
                raise ctx.fail(f"the declared shape {list(shape)} is no STFT of {x}")
        return [TensorType(x.dtype, tuple(shape))]

    def reference(self, node, x, step, window=None, frame_length=None):
        step = int(np.asarray(step).reshape(-1)[0])
        fl = window.shape[0] if window is not None else x.shape[1] if frame_length is None \
            else int(np.asarray(frame_length).reshape(-1)[0])
        w = np.ones(fl) if window is None else window.astype(np.float64)
        z = x[..., 0].astype(np.float64) + (1j * x[..., 1] if x.shape[2] == 2 else 0)
        frames = (x.shape[1] - fl) // step + 1
        seg = np.stack([z[:, f * step:f * step + fl] * w for f in range(frames)], 1)
        y = np.fft.fft(seg, axis=-1)
        if node.attr("onesided", 1):
            y = y[..., :fl // 2 + 1]
        return [np.stack([y.real, y.imag], -1).astype(x.dtype)]

    def scratch_bytes(self, node, graph):
        return 16 * graph.types[node.inputs[0]].shape[1]

    def flops(self, node, graph):
        y = graph.types[node.outputs[0]]
        return 8 * y.size // 2 * y.shape[2]

    def lower(self, node, ctx):
        x, step, window, fl_name = self._parts(node)
        y = node.outputs[0]
        batch, length, channels = ctx.shape(x)
        _, frames, bins, _ = ctx.shape(y)
        onesided = bool(node.attr("onesided", 1))
        dtype = ctx.type(x).dtype
        fl = str(ctx.shape(window)[0]) if window else _scalar_c(ctx, fl_name, "int64_t") \
            if fl_name else str(length)
        lines = [f"const int64_t step = {_scalar_c(ctx, step, 'int64_t')};",
                 f"const int64_t fl = {fl};",
                 ctx.check_statement(
                     f"step >= 1 && fl >= 1 && fl <= {length} && ({length} - fl) / step + 1 == "
                     f"{frames} && {'fl / 2 + 1' if onesided else 'fl'} == {bins}",
                     f"frame_step and frame_length give the declared {frames} frames x "
                     f"{bins} bins")]
        if window and fl_name:
            lines.append(ctx.check_statement(f"{_scalar_c(ctx, fl_name, 'int64_t')} == fl",
                                             "frame_length is the window's length"))
        if ctx.type(y).size == 0:
            ctx.emit(block(lines))
            return

        def at(expr):
            return f"(double){load(ctx, dtype, expr)}"
        weight = at("w[t]") if window else "1.0"
        lines += [f"const {dtype.ctype} *x = {ctx.ptr(x)};", f"{dtype.ctype} *y = {ctx.ptr(y)};"]
        if window:
            lines.append(f"const {dtype.ctype} *w = {ctx.ptr(window)};")
        lines += [f"double *tc = {ctx.scratch('double')}, *ts = tc + fl;",
                  "for (int64_t m = 0; m < fl; ++m) {",
                  "    const double angle = 6.283185307179586 * (double)m / (double)fl;",
                  "    tc[m] = cos(angle);", "    ts[m] = -sin(angle);", "}",
                  f"for (size_t b = 0; b < {batch}; ++b)",
                  f"    for (size_t f = 0; f < {frames}; ++f) {{",
                  f"        const {dtype.ctype} *frame = x + (b * {length} + f * (size_t)step) * "
                  f"{channels};",
                  f"        for (size_t k = 0; k < {bins}; ++k) {{",
                  "            double re = 0.0, im = 0.0;",
                  "            for (size_t t = 0; t < (size_t)fl; ++t) {",
                  f"                const double wt = {weight};",
                  f"                const double xr = {at(f'frame[t * {channels}]')} * wt;",
                  "                const double xi = " +
                  (f"{at(f'frame[t * {channels} + 1]')} * wt;" if channels == 2 else "0.0;"),
                  "                const size_t m = (k * t) % (size_t)fl;",
                  "                re += xr * tc[m] - xi * ts[m];",
                  "                im += xr * ts[m] + xi * tc[m];",
                  "            }",
                  f"            const size_t o = ((b * {frames} + f) * {bins} + k) * 2;",
                  f"            y[o] = {store(ctx, dtype, f'({compute_ctype(dtype)})re')};",
                  f"            y[o + 1] = {store(ctx, dtype, f'({compute_ctype(dtype)})im')};",
                  "        }", "    }"]
        ctx.emit(block(lines))


# --- MelWeightMatrix ---------------------------------------------------------------------------
@register("MelWeightMatrix", since=17)
class MelWeightMatrix(Op):
    """W [dft_length / 2 + 1, num_mel_bins]: triangular filters between num_mel_bins + 2 points
    spaced evenly on the mel scale (2595 log10(1 + hz / 700)) from lower_edge_hertz to
    upper_edge_hertz, each mapped to the spectrogram bin floor((dft_length + 1) hz /
    sample_rate), as the ONNX reference computes them. Run-time inputs: the model declares W's
    shape and the kernel checks it."""

    def _dtype(self, node, fail):
        d = dtypes.from_code(int(node.attr("output_datatype", 1)))
        if not d.is_float or d.short in NARROW_TYPES:
            raise fail(f"output_datatype {d} is not a float type")
        return d

    def infer(self, ctx):
        d = self._dtype(ctx.node, ctx.fail)
        mel, dft = _int_or_none(ctx, 0), _int_or_none(ctx, 1)
        if mel is not None and dft is not None:
            shape = (dft // 2 + 1, mel)
        else:
            shape = ctx.declared(0, 0 if mel is None else 1, "num_mel_bins / dft_length, "
                                 "which decide the size, and")
            if len(shape) != 2:
                raise ctx.fail(f"the declared shape {list(shape)} must be [bins, num_mel_bins]")
        if shape[0] < 1 or shape[1] < 1:
            raise ctx.fail(f"shape {list(shape)} needs dft_length >= 0 and num_mel_bins >= 1")
        return [TensorType(d, tuple(shape))]

    def reference(self, node, mel, dft, rate, lower, upper):
        mel, dft, rate = (int(np.asarray(v).reshape(-1)[0]) for v in (mel, dft, rate))
        lo32 = np.float32(2595) * np.log1p(np.float32(np.asarray(lower).reshape(-1)[0]) /
                                           np.float32(700))
        hi32 = np.float32(2595) * np.log1p(np.float32(np.asarray(upper).reshape(-1)[0]) /
                                           np.float32(700))
        lo, hi = float(lo32) / np.log(10), float(hi32) / np.log(10)
        points = np.arange(mel + 2) * ((hi - lo) / (mel + 2)) + lo
        hz = 700 * np.expm1(points / 2595 * np.log(10))
        bins = np.floor((dft + 1) * hz / rate).astype(np.int64)
        w = np.zeros((dft // 2 + 1, mel))
        for i in range(mel):
            low, centre, high = bins[i], bins[i + 1], bins[i + 2]
            if centre == low:
                w[centre, i] = 1
            else:
                for j in range(low, centre + 1):
                    w[j, i] = (j - low) / (centre - low)
            for j in range(centre, high):
                w[j, i] = (high - j) / (high - centre)
        return [w.astype(self._dtype(node, ValueError).numpy)]

    def scratch_bytes(self, node, graph):
        return 8 * (graph.types[node.outputs[0]].shape[1] + 2)

    def lower(self, node, ctx):
        y = node.outputs[0]
        rows, mel = ctx.shape(y)
        d = ctx.type(y).dtype
        names = node.inputs
        value = f"({compute_ctype(d)})v"
        lines = [f"const int64_t mel = {_scalar_c(ctx, names[0], 'int64_t')};",
                 f"const int64_t dft = {_scalar_c(ctx, names[1], 'int64_t')};",
                 f"const double rate = {_scalar_c(ctx, names[2], 'double')};",
                 f"const float lower = {_scalar_c(ctx, names[3], 'float')};",
                 f"const float upper = {_scalar_c(ctx, names[4], 'float')};",
                 ctx.check_statement(f"mel == {mel} && dft >= 0 && dft / 2 + 1 == {rows}",
                                     f"num_mel_bins and dft_length give the declared "
                                     f"[{rows}, {mel}]"),
                 f"int64_t *bin = {ctx.scratch('int64_t')};",
                 "const double lo = (double)(2595.0f * log1pf(lower / 700.0f)) / log(10.0);",
                 "const double hi = (double)(2595.0f * log1pf(upper / 700.0f)) / log(10.0);",
                 f"for (size_t i = 0; i < {mel + 2}; ++i) {{",
                 f"    const double point = (double)i * ((hi - lo) / {mel + 2}.0) + lo;",
                 "    const double hz = 700.0 * expm1(point / 2595.0 * log(10.0));",
                 "    const double b = floor((double)(dft + 1) * hz / rate);",
                 f"    if (!(b >= 0.0 && b <= {rows}.0)) {ctx.shape_error}   "
                 "/* a filter point outside the spectrum */",
                 "    bin[i] = (int64_t)b;", "}",
                 f"for (size_t i = 0; i < {mel}; ++i)",
                 f"    if (bin[i + 1] >= {rows} || (bin[i + 2] > bin[i + 1] && "
                 f"bin[i + 2] > {rows})) {ctx.shape_error}",
                 f"{d.ctype} *w = {ctx.ptr(y)};",
                 f"for (size_t e = 0; e < {rows * mel}; ++e)",
                 f"    w[e] = {store(ctx, d, f'({compute_ctype(d)})0')};",
                 f"for (size_t i = 0; i < {mel}; ++i) {{",
                 "    const int64_t low = bin[i], centre = bin[i + 1], high = bin[i + 2];",
                 "    if (centre == low) {",
                 "        const double v = 1.0;",
                 f"        w[(size_t)centre * {mel} + i] = {store(ctx, d, value)};",
                 "    }",
                 "    for (int64_t j = low; centre != low && j <= centre; ++j) {",
                 "        const double v = (double)(j - low) / (double)(centre - low);",
                 f"        w[(size_t)j * {mel} + i] = {store(ctx, d, value)};",
                 "    }",
                 "    for (int64_t j = centre; j < high; ++j) {",
                 "        const double v = (double)(high - j) / (double)(high - centre);",
                 f"        w[(size_t)j * {mel} + i] = {store(ctx, d, value)};",
                 "    }", "}"]
        ctx.emit(block(lines))
