"""Linear quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, and the
integer matrix products MatMulInteger and QLinearMatMul.

Quantized types: the integers int8, uint8, int16, uint16, int32 and the narrow int4, uint4,
int2, uint2 (round half to even, saturate), the float8 variants e4m3fn, e4m3fnuz, e5m2, e5m2fnuz
(x / scale rounded to nearest even, ``saturate`` as Cast's; their zero point is ignored, it must
be 0) and float4 e2m1 (x / scale + zero point, rounded, saturating), as ONNX's reference does.
``precision`` (opset 23) names the type x / scale is computed in. A scale (and zero point) is one
value per tensor, one per index along ``axis``, or one per ``block_size`` run along ``axis``
(blocked: same rank as x). Viewing x as [outer, n, inner] around the axis, element (o, k, i)
takes scale 0, k, or (o * blocks + k / block_size) * inner + i.
Rounding is half to even (``nearbyint`` in the default rounding mode), then saturation.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..codegen.loops import compute_ctype, encode_narrow, load_value, store_value
from ..ir.graph import TensorType
from .index import block, load, split_at, store
from .registry import Op, normalize_axis, register

INTEGER_QUANT_TYPES = ("i8", "u8", "i16", "u16", "i32", "i4", "u4", "i2", "u2")
FLOAT8_QUANT_TYPES = ("f8e4m3fn", "f8e4m3fnuz", "f8e5m2", "f8e5m2fnuz")
QUANT_TYPES = INTEGER_QUANT_TYPES + FLOAT8_QUANT_TYPES + ("f4e2m1",)


def _limits(dtype) -> tuple:
    return dtypes.limits(dtype)


def _quotient_type(x, scale, precision: int):
    """The element type x / scale is computed in: ``precision`` when given, else numpy's
    promotion of the two (a half type only when both are that type)."""
    if precision:
        return dtypes.from_code(precision)
    if x == scale:
        return x
    return dtypes.BY_SHORT["f64"] if "f64" in (x.short, scale.short) else dtypes.FLOAT32


def _scale_layout(ctx_fail, x_shape: tuple, scale_shape: tuple, axis: int, block_size: int):
    """'tensor', 'axis' or 'block' for a scale of ``scale_shape`` against x."""
    size = int(np.prod(scale_shape, dtype=np.int64))
    if block_size:
        want = list(x_shape)
        want[axis] = -(-x_shape[axis] // block_size)
        if list(scale_shape) != want:
            raise ctx_fail(f"blocked scale {list(scale_shape)} must be {want}")
        return "block"
    if size == 1:
        return "tensor"
    if len(scale_shape) == 1 and scale_shape[0] == x_shape[axis]:
        return "axis"
    raise ctx_fail(f"scale {list(scale_shape)} is neither per tensor, per axis ({x_shape[axis]} "
                   f"values) nor blocked")


def _expand(param: np.ndarray, x_shape: tuple, axis: int, block_size: int) -> np.ndarray:
    """numpy: a scale or zero point broadcast to x's shape."""
    if param.size == 1 and not block_size:
        return param.reshape(())
    if block_size:
        return np.repeat(param, block_size, axis=axis).take(range(x_shape[axis]), axis=axis)
    shape = [1] * len(x_shape)
    shape[axis] = x_shape[axis]
    return param.reshape(shape)


class _Linear(Op):
    """Shared layout logic; input 0 is x, 1 the scale, 2 the optional zero point."""
    def axis(self, node, rank, scale_size: int):
        """The quantization axis (0 for a per-tensor scale, whose axis does not matter)."""
        if scale_size == 1 and not node.attr("block_size", 0):
            return 0
        return normalize_axis(int(node.attr("axis", 1)), rank, node)

    def check_layout(self, ctx):
        x = ctx.types[0]
        axis = self.axis(ctx.node, x.rank, ctx.types[1].size)
        block_size = int(ctx.node.attr("block_size", 0))
        layout = _scale_layout(ctx.fail, x.shape, ctx.types[1].shape, axis, block_size)
        if ctx.has(2) and ctx.types[2].shape != ctx.types[1].shape and \
                ctx.types[2].size != ctx.types[1].size:
            raise ctx.fail(f"zero point {ctx.types[2]} does not match the scale {ctx.types[1]}")
        return layout

    def param_index(self, node, ctx) -> tuple:
        """(outer, n, inner, C index expression of the scale for element (o, k, i))."""
        shape = ctx.shape(node.inputs[0])
        scale = ctx.type(node.inputs[1])
        axis = self.axis(node, len(shape), scale.size)
        outer, n, inner = split_at(shape, axis) if shape else (1, 1, 1)
        block_size = int(node.attr("block_size", 0))
        if block_size:
            blocks = -(-n // block_size)
            return outer, n, inner, f"(o * {blocks} + k / {block_size}) * {inner} + i"
        if scale.size == 1:
            return outer, n, inner, "0"
        return outer, n, inner, "k"


@register("QuantizeLinear", since=10)
class QuantizeLinear(_Linear):
    """y = saturate(round_half_even(x / scale) + zero_point)"""
    def out_dtype(self, node, types):
        if len(types) > 2 and types[2] is not None:
            return types[2].dtype
        code = int(node.attr("output_dtype", 0))
        return dtypes.from_code(code) if code else dtypes.BY_SHORT["u8"]

    def infer(self, ctx):
        out = self.out_dtype(ctx.node, ctx.types)
        if out.short not in QUANT_TYPES:
            raise ctx.fail(f"output element type {out} is not supported "
                           f"(supported: {', '.join(QUANT_TYPES)})")
        precision = int(ctx.node.attr("precision", 0))
        if precision and not dtypes.from_code(precision).is_float:
            raise ctx.fail(f"precision {dtypes.from_code(precision)} is not a float type")
        self.check_layout(ctx)
        return [TensorType(out, ctx.types[0].shape)]

    def reference(self, node, x, scale, zero_point=None):
        axis = self.axis(node, x.ndim, scale.size)
        block_size = int(node.attr("block_size", 0))
        out = self.out_dtype(node, [None, None, None if zero_point is None
                                    else TensorType.of(zero_point)])
        wide = _quotient_type(dtypes.from_numpy(x.dtype), dtypes.from_numpy(scale.dtype),
                              int(node.attr("precision", 0))).numpy
        q = x.astype(wide) / _expand(scale, x.shape, axis, block_size).astype(wide)
        zp = None if zero_point is None else _expand(zero_point, x.shape, axis, block_size)
        if out.short in FLOAT8_QUANT_TYPES:
            return [dtypes.cast(q, out, bool(node.attr("saturate", 1)))]
        if out.short == "f4e2m1":
            return [dtypes.cast(q if zp is None else q + zp.astype(np.float32), out)]
        q = np.rint(q).astype(np.float64)
        if zp is not None:
            q = q + zp.astype(np.float64)
        lo, hi = _limits(out)
        return [np.clip(q, lo, hi).astype(np.int64).astype(out.numpy)]

    def lower(self, node, ctx):
        x, scale, y = node.inputs[0], node.inputs[1], node.outputs[0]
        zp = node.inputs[2] if len(node.inputs) > 2 else ""
        xt, st, out = ctx.type(x).dtype, ctx.type(scale).dtype, ctx.type(y).dtype
        outer, n, inner, at = self.param_index(node, ctx)
        if outer * n * inner == 0:
            return
        qt = _quotient_type(xt, st, int(node.attr("precision", 0)))
        ct = compute_ctype(qt)
        lines = [f"const {xt.ctype} *x = {ctx.ptr(x)};", f"const {st.ctype} *s = {ctx.ptr(scale)};",
                 f"{out.ctype} *y = {ctx.ptr(y)};"]
        element = f"(o * {n} + k) * {inner} + i"

        def operand(dtype, text):        # an operand as the quotient type holds it
            value = f"({ct}){load_value(ctx, dtype, text)}"
            return load_value(ctx, qt, store_value(ctx, qt, value)) if dtype != qt else value
        quotient = f"{operand(xt, f'x[{element}]')} / {operand(st, f's[{at}]')}"
        quotient = load_value(ctx, qt, store_value(ctx, qt, quotient))   # rounds a half type
        zero = "0"
        if zp and out.short not in FLOAT8_QUANT_TYPES:
            lines.append(f"const {out.ctype} *z = {ctx.ptr(zp)};")
            zero = f"({ct}){load_value(ctx, out, f'z[{at}]')}"
        if out.short in FLOAT8_QUANT_TYPES or out.short == "f4e2m1":
            value = quotient if zero == "0" else f"({ct})({quotient} + {zero})"
            body = [f"y[{element}] = "
                    f"{encode_narrow(ctx, out, value, True, bool(node.attr('saturate', 1)))};"]
        else:
            fn = "nearbyint" if ct == "double" else "nearbyintf"
            lo, hi = _limits(out)
            stored = encode_narrow(ctx, out, "q", False) if out.is_narrow else f"({out.ctype})q"
            body = [f"double q = (double){fn}({quotient}) + (double){zero};",
                    f"q = q < {lo} ? {lo} : q > {hi} ? {hi} : q;",
                    f"y[{element}] = {stored};"]
        lines += [f"for (size_t o = 0; o < {outer}; ++o)",
                  f"    for (size_t k = 0; k < {n}; ++k)",
                  f"        for (size_t i = 0; i < {inner}; ++i) {{"]
        lines += ["            " + b for b in body] + ["        }"]
        ctx.emit(block(lines))


@register("DequantizeLinear", since=10)
class DequantizeLinear(_Linear):
    """y = (x - zero_point) * scale, in the scale's element type (or output_dtype)"""
    def out_dtype(self, node, scale_dtype):
        code = int(node.attr("output_dtype", 0))
        return dtypes.from_code(code) if code else scale_dtype

    def infer(self, ctx):
        x = ctx.types[0]
        if x.dtype.short not in QUANT_TYPES:
            raise ctx.fail(f"input element type {x.dtype} is not supported "
                           f"(supported: {', '.join(QUANT_TYPES)})")
        self.check_layout(ctx)
        return [TensorType(self.out_dtype(ctx.node, ctx.types[1].dtype), x.shape)]

    @staticmethod
    def uses_zero_point(dtype) -> bool:
        """float8 and float4 inputs ignore their zero point (it must be 0)."""
        return dtype.short in INTEGER_QUANT_TYPES

    def reference(self, node, x, scale, zero_point=None):
        axis = self.axis(node, x.ndim, scale.size)
        block_size = int(node.attr("block_size", 0))
        v = x.astype(np.float32)
        if zero_point is not None and self.uses_zero_point(dtypes.from_numpy(x.dtype)):
            v = v - _expand(zero_point, x.shape, axis, block_size).astype(np.float32)
        out = self.out_dtype(node, dtypes.from_numpy(scale.dtype))
        return [(v * _expand(scale, x.shape, axis, block_size)).astype(out.numpy)]

    def lower(self, node, ctx):
        x, scale, y = node.inputs[0], node.inputs[1], node.outputs[0]
        zp = node.inputs[2] if len(node.inputs) > 2 else ""
        xt, st, out = ctx.type(x).dtype, ctx.type(scale).dtype, ctx.type(y).dtype
        outer, n, inner, at = self.param_index(node, ctx)
        if outer * n * inner == 0:
            return
        ct = "double" if "f64" in (st.short, out.short) else "float"
        lines = [f"const {xt.ctype} *x = {ctx.ptr(x)};", f"const {st.ctype} *s = {ctx.ptr(scale)};",
                 f"{out.ctype} *y = {ctx.ptr(y)};"]
        element = f"(o * {n} + k) * {inner} + i"
        shifted = f"({ct}){load_value(ctx, xt, f'x[{element}]')}"
        if zp and self.uses_zero_point(xt):
            lines.append(f"const {xt.ctype} *z = {ctx.ptr(zp)};")
            shifted = f"({shifted} - ({ct}){load_value(ctx, xt, f'z[{at}]')})"
        value = f"({compute_ctype(out)})({shifted} * ({ct}){load(ctx, st, f's[{at}]')})"
        lines += [f"for (size_t o = 0; o < {outer}; ++o)",
                  f"    for (size_t k = 0; k < {n}; ++k)",
                  f"        for (size_t i = 0; i < {inner}; ++i)",
                  f"            y[{element}] = {store(ctx, out, value)};"]
        ctx.emit(block(lines))


@register("DynamicQuantizeLinear", since=11)
class DynamicQuantizeLinear(Op):
    """scale = (max(0, max x) - min(0, min x)) / 255, zero_point = saturate(round(-min / scale)),
    y = saturate(round(x / scale) + zero_point), all uint8"""
    def infer(self, ctx):
        x = ctx.types[0]
        if x.dtype != dtypes.FLOAT32:
            raise ctx.fail(f"element type {x.dtype}; supported: f32")
        u8 = dtypes.BY_SHORT["u8"]
        return [TensorType(u8, x.shape), TensorType(x.dtype, ()), TensorType(u8, ())]

    def reference(self, node, x):
        lo, hi = min(0.0, float(x.min(initial=0))), max(0.0, float(x.max(initial=0)))
        scale = np.float32((hi - lo) / 255)
        zp = np.clip(np.rint(np.float32(0 - lo) / scale), 0, 255)
        y = np.clip(np.rint(x / scale) + zp, 0, 255)
        return [y.astype(np.uint8), np.array(scale, np.float32), np.array(zp, np.uint8)]

    def lower(self, node, ctx):
        x = node.inputs[0]
        size = ctx.type(x).size
        outs = list(node.outputs) + [""] * (3 - len(node.outputs))
        lines = [f"const float *x = {ctx.ptr(x)};",
                 "float lo = 0, hi = 0;",
                 f"for (size_t e = 0; e < {size}; ++e) {{",
                 "    lo = x[e] < lo ? x[e] : lo;",
                 "    hi = x[e] > hi ? x[e] : hi;",
                 "}",
                 "const float scale = (hi - lo) / 255.0f;",
                 "float zp = nearbyintf((0 - lo) / scale);",
                 "zp = zp < 0 ? 0 : zp > 255 ? 255 : zp;"]
        if outs[0]:
            lines += [f"uint8_t *y = {ctx.ptr(outs[0])};",
                      f"for (size_t e = 0; e < {size}; ++e) {{",
                      "    float q = nearbyintf(x[e] / scale) + zp;",
                      "    y[e] = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);",
                      "}"]
        if outs[1]:
            lines.append(f"{ctx.ptr(outs[1])}[0] = scale;")
        if outs[2]:
            lines.append(f"{ctx.ptr(outs[2])}[0] = (uint8_t)zp;")
        ctx.emit(block(lines))


# --- integer matrix products -------------------------------------------------------------------
def _matmul_shapes(fail, a: tuple, b: tuple) -> tuple:
    """(batch, M, K, N, a_batched, b_batched, out shape) for a [..., M, K] @ [..., K, N] whose
    batch dims are equal or missing on one side."""
    if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
        raise fail(f"shapes {list(a)} and {list(b)} do not multiply")
    ab, bb = a[:-2], b[:-2]
    if ab and bb and ab != bb:
        raise fail(f"batch dims {list(ab)} and {list(bb)} must be equal (or one side 2-D)")
    batch_dims = ab or bb
    batch = int(np.prod(batch_dims, dtype=np.int64))
    return batch, a[-2], a[-1], b[-1], bool(ab), bool(bb), tuple(batch_dims) + (a[-2], b[-1])


def _zero_point(ctx, name: str, per: str) -> str:
    """C expression of a zero point: scalar, or one per row (a: m) / column (b: n)."""
    if not name:
        return "0"
    t = ctx.type(name)
    return f"(int32_t){ctx.ptr(name)}[{per if t.size > 1 else '0'}]"


def _matmul_lines(ctx, a, b, azp, bzp, shapes) -> list:
    """C lines leaving acc (int32) for element (p, m, n) inside the innermost loop body."""
    batch, m, k, n, a_batched, b_batched, _ = shapes
    return [f"const {ctx.ctype(a)} *A = {ctx.ptr(a)};", f"const {ctx.ctype(b)} *B = {ctx.ptr(b)};",
            f"for (size_t p = 0; p < {batch}; ++p)",
            f"    for (size_t m = 0; m < {m}; ++m)",
            f"        for (size_t n = 0; n < {n}; ++n) {{",
            "            int32_t acc = 0;",
            f"            for (size_t j = 0; j < {k}; ++j)",
            f"                acc += ((int32_t)A[{f'p * {m * k} + ' if a_batched else ''}m * {k} + j]"
            f" - {_zero_point(ctx, azp, 'm')}) * ((int32_t)B[{f'p * {k * n} + ' if b_batched else ''}"
            f"j * {n} + n] - {_zero_point(ctx, bzp, 'n')});"]


def _np_matmul_int(a, b, azp, bzp):
    A = a.astype(np.int32) - (0 if azp is None else (azp.astype(np.int32).reshape(-1, 1)
                                                     if azp.size > 1 else azp.astype(np.int32)))
    B = b.astype(np.int32) - (0 if bzp is None else bzp.astype(np.int32))
    return np.matmul(A, B)


@register("MatMulInteger", since=10)
class MatMulInteger(Op):
    """y = (a - a_zero_point) @ (b - b_zero_point) in int32"""
    def infer(self, ctx):
        shapes = _matmul_shapes(ctx.fail, ctx.types[0].shape, ctx.types[1].shape)
        return [TensorType(dtypes.INT32, shapes[-1])]

    def reference(self, node, a, b, azp=None, bzp=None):
        return [_np_matmul_int(a, b, azp, bzp).astype(np.int32)]

    def lower(self, node, ctx):
        ins = list(node.inputs) + [""] * (4 - len(node.inputs))
        shapes = _matmul_shapes(ValueError, ctx.shape(ins[0]), ctx.shape(ins[1]))
        _, m, _, n = shapes[:4]
        lines = [f"int32_t *y = {ctx.ptr(node.outputs[0])};"]
        lines += _matmul_lines(ctx, ins[0], ins[1], ins[2], ins[3], shapes)
        lines += [f"            y[(p * {m} + m) * {n} + n] = acc;", "        }"]
        ctx.emit(block(lines))


@register("QLinearMatMul", since=10)
class QLinearMatMul(Op):
    """y = saturate(round((a - a_zp) @ (b - b_zp) * (a_scale * b_scale / y_scale)) + y_zp);
    the multiplier is computed in the scales' element type, the product in double"""
    def infer(self, ctx):
        shapes = _matmul_shapes(ctx.fail, ctx.types[0].shape, ctx.types[3].shape)
        for i in (1, 4, 6):
            if ctx.types[i].size != 1:
                raise ctx.fail("only per-tensor scales are supported")
        return [TensorType(ctx.types[7].dtype, shapes[-1])]

    def reference(self, node, a, a_scale, azp, b, b_scale, bzp, y_scale, yzp):
        c = _np_matmul_int(a, b, azp, bzp)
        d = c * (a_scale * b_scale / y_scale) + yzp
        lo, hi = _limits(dtypes.from_numpy(yzp.dtype))
        return [np.clip(np.rint(d), lo, hi).astype(yzp.dtype)]

    def lower(self, node, ctx):
        a, a_scale, azp, b, b_scale, bzp, y_scale, yzp = node.inputs
        shapes = _matmul_shapes(ValueError, ctx.shape(a), ctx.shape(b))
        _, m, _, n = shapes[:4]
        st, out = ctx.type(a_scale).dtype, ctx.type(yzp).dtype
        lo, hi = _limits(out)

        def scale(name):
            return f"({compute_ctype(st)}){load(ctx, st, f'{ctx.ptr(name)}[0]')}"
        product = f"{scale(a_scale)} * {scale(b_scale)}"
        if st.short in ("f16", "bf16"):       # each step rounds to the scales' type
            product = f"{load(ctx, st, store(ctx, st, product))}"
        multiplier = f"({product}) / {scale(y_scale)}"
        if st.short in ("f16", "bf16"):
            multiplier = f"{load(ctx, st, store(ctx, st, multiplier))}"
        lines = [f"{out.ctype} *y = {ctx.ptr(node.outputs[0])};",
                 f"const double multiplier = (double)({multiplier});",
                 f"const double zero = (double){ctx.ptr(yzp)}[0];"]
        lines += _matmul_lines(ctx, a, b, azp, bzp, shapes)
        lines += ["            double q = nearbyint((double)acc * multiplier + zero);",
                  f"            q = q < {lo} ? {lo} : q > {hi} ? {hi} : q;",
                  f"            y[(p * {m} + m) * {n} + n] = ({out.ctype})q;", "        }"]
        ctx.emit(block(lines))
