"""Window functions (HannWindow, HammingWindow, BlackmanWindow) and CenterCropPad: ops whose
output shape is an input's *value* (the window size, the crop shape).

They have ONNX function bodies, but those route the value through Range / Pad / Slice whose
intermediate shapes no model declares; as ops of their own, a value known only at run time
needs only the declared shape of the output (``InferContext.declared``), checked when the
network runs. A constant value folds (windows) or lowers to a plain copy (CenterCropPad).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir.graph import TensorType
from .index import store as store_from_compute
from .movement import Axis, copy_nest, fill, runtime_ints, store_known, strides_of
from .registry import Op, register

# w[n] = a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N), N = size (periodic) or size - 1
WINDOWS = {"HannWindow": (0.5, 0.5, 0.0), "HammingWindow": (25 / 46, 21 / 46, 0.0),
           "BlackmanWindow": (0.42, 0.5, 0.08)}


class Window(Op):
    """y[n] = a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N) for n < size."""
    def dtype(self, node):
        return dtypes.from_code(int(node.attr("output_datatype", 1)))

    def infer(self, ctx):
        if ctx.types[0].size != 1:
            raise ctx.fail(f"size must be a scalar, it is {ctx.types[0]}")
        size = ctx.known(0)
        if size is None:                  # read at run time: the declared length, checked
            shape = ctx.declared(0, 0, "size")
            if len(shape) != 1:
                raise ctx.fail(f"the declared output shape {list(shape)} is not one dimension")
            return [TensorType(self.dtype(ctx.node), shape)]
        n = int(np.asarray(size).reshape(-1)[0])
        if n < 0:
            raise ctx.fail(f"size {n} is negative")
        return [TensorType(self.dtype(ctx.node), (n,))]

    def reference(self, node, size):
        n = int(np.asarray(size).reshape(-1)[0])
        a0, a1, a2 = WINDOWS[node.op]
        period = n if node.attr("periodic", 1) else n - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            phase = np.arange(n) * (2 * np.pi) / period
        y = a0 - a1 * np.cos(phase) + a2 * np.cos(2 * phase)
        return [y.astype(self.dtype(node).numpy)]

    def lower(self, node, ctx):
        y = node.outputs[0]
        size = ctx.known(node.inputs[0])
        if size is not None:
            store_known(ctx, y, self.reference(node, size)[0])
            return
        n = ctx.shape(y)[0]
        a0, a1, a2 = WINDOWS[node.op]
        period = "size" if node.attr("periodic", 1) else "(size - 1)"
        dtype = ctx.type(y).dtype
        value = (f"{a0!r} - {a1!r} * cos(phase)" + (f" + {a2!r} * cos(2.0 * phase)" if a2 else ""))
        store = store_from_compute(ctx, dtype, f"(float)({value})") \
            if dtype.short in ("f16", "bf16") else f"({dtype.ctype})({value})"
        lines = [f"const int64_t size = (int64_t){ctx.ptr(node.inputs[0])}[0];",
                 ctx.check_statement(f"size == {n}", f"run-time size is the declared {n}"),
                 f"{dtype.ctype} *y = {ctx.ptr(y)};",
                 f"for (int64_t i = 0; i < {n}; ++i) {{",
                 f"    const double phase = (double)i * {2 * np.pi!r} / (double){period};   /* 2 pi i / N */",
                 f"    y[i] = {store};",
                 "}"]
        ctx.emit("{\n" + "\n".join("    " + line for line in lines) + "\n}")


for _op in WINDOWS:
    register(_op, since=17)(type(_op, (Window,), {"__doc__": Window.__doc__}))


@register("CenterCropPad", since=18)
class CenterCropPad(Op):
    """y = x cropped or zero-padded, centred, to ``shape`` along ``axes`` (default all)."""
    def axes(self, node, rank, fail) -> list:
        axes = node.attr("axes")
        axes = list(range(rank)) if axes is None else [int(a) for a in axes]
        if any(not -rank <= a < rank for a in axes):
            raise fail(f"axes {axes} out of range for rank {rank}")
        return [a % rank for a in axes]

    def infer(self, ctx):
        x = ctx.types[0]
        axes = self.axes(ctx.node, x.rank, ctx.fail)
        if ctx.types[1].size != len(axes):
            raise ctx.fail(f"shape holds {ctx.types[1].size} values for {len(axes)} axes")
        given = ctx.known(1)
        if given is None:                 # read at run time: the declared shape, checked
            out = ctx.declared(0, 1, "shape")
            if len(out) != x.rank or any(out[a] != x.shape[a] for a in range(x.rank)
                                         if a not in axes):
                raise ctx.fail(f"the declared output shape {list(out)} is no crop or pad of {x}")
            return [TensorType(x.dtype, out)]
        out = list(x.shape)
        for a, d in zip(axes, np.asarray(given).reshape(-1)):
            if d < 0:
                raise ctx.fail(f"shape {[int(v) for v in given]} has a negative dimension")
            out[a] = int(d)
        return [TensorType(x.dtype, tuple(out))]

    def reference(self, node, x, shape):
        out = list(x.shape)
        for a, d in zip(self.axes(node, x.ndim, ValueError), shape.reshape(-1)):
            out[a] = int(d)
        y = np.zeros(out, x.dtype)
        src, dst = self._windows(x.shape, out)
        y[tuple(dst)] = x[tuple(src)]
        return [y]

    @staticmethod
    def _windows(shape, out) -> tuple:
        """Per axis the slices of x read and of y written (centred; an odd difference puts
        the extra element at the end)."""
        src, dst = [], []
        for d, n in zip(shape, out):
            k = min(d, n)
            src.append(slice((d - k) // 2, (d - k) // 2 + k))
            dst.append(slice((n - k) // 2, (n - k) // 2 + k))
        return src, dst

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        shape, out = ctx.shape(x), ctx.shape(y)
        if ctx.known(node.inputs[1]) is None:
            axes = self.axes(node, len(shape), ValueError)
            want = [out[a] for a in axes]
            lines = runtime_ints(ctx, node.inputs[1], "given", len(want), "0") + [   # i32 / i64
                ctx.check_statement(f"nn_dims_equal(given, {ctx.table('int64_t', want, 'dims')}, "
                                    f"{len(want)})", f"run-time shape is the declared {want}")]
            ctx.emit("{\n" + "\n".join("    " + line for line in lines) + "\n}")
        if ctx.type(y).size == 0:
            return
        if any(n > d for d, n in zip(shape, out)):
            fill(ctx, y, 0, ctx.type(y).dtype)
        src, dst = self._windows(shape, out)
        xs, ys = strides_of(shape), strides_of(out)
        copy_nest(ctx, y, x, [Axis(s.stop - s.start, ys[k], xs[k]) for k, s in enumerate(src)],
                  dst_offset=sum(s.start * ys[k] for k, s in enumerate(dst)),
                  src_offset=sum(s.start * xs[k] for k, s in enumerate(src)))

    def flops(self, node, graph):
        return 0
