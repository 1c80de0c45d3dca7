"""More elementwise math: trigonometric and hyperbolic functions, Sign, IsNaN / IsInf, the
activations Celu, ThresholdedRelu, Shrink, Mish, Gelu, Swish, and the integer ops Mod,
BitShift and the Bitwise family.

Same shape as ``elementwise``: one C expression per element, written as a loop nest by
``codegen.loops.broadcast_loop``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..codegen.loops import broadcast_loop, c_literal, compute_ctype, math_fn
from ..ir.graph import TensorType
from .elementwise import Unary, _erf, _lit, _nary, _select, _softplus_c, _unary
from .registry import register


def _fn(name):
    """A unary op that is one C math function."""
    return lambda n, x, t: f"{math_fn(name, t)}({x})"


# --- trigonometric and hyperbolic -----------------------------------------------------------
_unary("Tan", 7, _fn("tan"), lambda n, x: np.tan(x), "y = tan x")
_unary("Asin", 7, _fn("asin"), lambda n, x: np.arcsin(x), "y = asin x")
_unary("Acos", 7, _fn("acos"), lambda n, x: np.arccos(x), "y = acos x")
_unary("Atan", 7, _fn("atan"), lambda n, x: np.arctan(x), "y = atan x")
_unary("Sinh", 9, _fn("sinh"), lambda n, x: np.sinh(x), "y = sinh x")
_unary("Cosh", 9, _fn("cosh"), lambda n, x: np.cosh(x), "y = cosh x")
_unary("Asinh", 9, _fn("asinh"), lambda n, x: np.arcsinh(x), "y = asinh x")
_unary("Acosh", 9, _fn("acosh"), lambda n, x: np.arccosh(x), "y = acosh x")
_unary("Atanh", 9, _fn("atanh"), lambda n, x: np.arctanh(x), "y = atanh x")


def _sign(n, x, t):
    if t.short[0] == "u" or t.short == "bool":
        return f"{x} > 0"
    return f"{x} > 0 ? 1 : {x} < 0 ? -1 : {x}"      # keeps 0, -0 and NaN


_unary("Sign", 9, _sign, lambda n, x: np.sign(x), "y = -1, 0 or 1 by the sign of x (NaN stays)")

# --- activations --------------------------------------------------------------------------------
def _celu_c(n, x, t):
    alpha = _lit(n, "alpha", 1.0, t)
    neg = f"{alpha} * ({math_fn('exp', t)}({x} / {alpha}) - 1)"
    if compute_ctype(t) == "float":     # min(0, neg) as a select: the loop stays vectorisable
        low = f"nn_vm_select({neg} < 0, {neg}, 0)"
    else:
        low = f"{math_fn('fmin', t)}(0, {neg})"
    return f"({_select(f'!({x} <= 0)', x, '0', t)}) + {low}"       # max(x, 0); NaN stays


_unary("Celu", 12, _celu_c,
       lambda n, x: np.maximum(x, 0) + np.minimum(
           0, np.float32(n.attr("alpha", 1.0)) * (np.exp(x / np.float32(n.attr("alpha", 1.0))) - 1)),
       "y = max(0, x) + min(0, alpha * (e^(x / alpha) - 1))")
_unary("ThresholdedRelu", 10,
       lambda n, x, t: f"{x} > {_lit(n, 'alpha', 1.0, t)} ? {x} : 0",
       lambda n, x: np.where(x > np.float32(n.attr("alpha", 1.0)), x, 0),
       "y = x > alpha ? x : 0")


def _shrink_c(n, x, t):
    lambd, bias = _lit(n, "lambd", 0.5, t), _lit(n, "bias", 0.0, t)
    if t.is_integer:    # the attributes are floats; integers compare and shift in double
        lambd, bias = (f"{float(n.attr(k, d))!r}" for k, d in (("lambd", 0.5), ("bias", 0.0)))
        if t.short[0] == "u":
            return f"{x} > {lambd} ? {x} - {bias} : 0"
    return f"{x} < -{lambd} ? {x} + {bias} : {x} > {lambd} ? {x} - {bias} : 0"


def _shrink_ref(n, x):
    lambd, bias = float(n.attr("lambd", 0.5)), float(n.attr("bias", 0.0))
    wide = x.astype(np.float64)
    return np.where(wide < -lambd, wide + bias, np.where(wide > lambd, wide - bias, 0))


_unary("Shrink", 9, _shrink_c, _shrink_ref,
       "y = x < -lambd ? x + bias : x > lambd ? x - bias : 0")
_unary("Mish", 18,
       lambda n, x, t: f"{x} * {math_fn('tanh', t)}({_softplus_c(n, x, t)})",
       lambda n, x: x * np.tanh(np.logaddexp(0, x)), "y = x * tanh(ln(1 + e^x))")
_unary("Swish", 24,
       lambda n, x, t: f"{x} / (1 + {math_fn('exp', t)}(-{_lit(n, 'alpha', 1.0, t)} * {x}))",
       lambda n, x: x / (1 + np.exp(-np.float32(n.attr("alpha", 1.0)) * x)),
       "y = x * sigmoid(alpha * x)")


def _gelu_c(n, x, t):
    if n.attr("approximate", "none") == "tanh":
        inner = f"{c_literal(math.sqrt(2 / math.pi), t)} * ({x} + {c_literal(0.044715, t)} * {x} * {x} * {x})"
        return f"{c_literal(0.5, t)} * {x} * (1 + {math_fn('tanh', t)}({inner}))"
    return f"{c_literal(0.5, t)} * {x} * (1 + {math_fn('erf', t)}({x} * {c_literal(math.sqrt(0.5), t)}))"


def _gelu_ref(n, x):
    w = x.astype(np.float64)
    if n.attr("approximate", "none") == "tanh":
        return 0.5 * w * (1 + np.tanh(math.sqrt(2 / math.pi) * (w + 0.044715 * w ** 3)))
    return 0.5 * w * (1 + _erf(w / math.sqrt(2)))


_unary("Gelu", 20, _gelu_c, _gelu_ref,
       "y = x/2 * (1 + erf(x / sqrt 2)), or the tanh approximation")


class _FloatTest(Unary):
    """A bool per element."""
    def infer(self, ctx):
        return [TensorType(dtypes.BOOL, ctx.types[0].shape)]

    def reference(self, node, x):
        return [np.asarray(self.np_fn(node, x)).astype(np.bool_)]


@register("IsNaN", since=9)
class IsNaN(_FloatTest):
    """y = x is NaN"""
    def c_expr(self, node, x, dtype):
        return f"isnan({x})"

    def np_fn(self, node, x):
        return np.isnan(x)


@register("IsInf", since=10)
class IsInf(_FloatTest):
    """y = x is +inf (detect_positive) or -inf (detect_negative)"""
    def c_expr(self, node, x, dtype):
        pos, neg = node.attr("detect_positive", 1), node.attr("detect_negative", 1)
        if pos and neg:
            return f"isinf({x})"
        if pos:
            return f"{x} == INFINITY"
        return f"{x} == -INFINITY" if neg else "0"

    def np_fn(self, node, x):
        pos, neg = node.attr("detect_positive", 1), node.attr("detect_negative", 1)
        return (np.isposinf(x) & bool(pos)) | (np.isneginf(x) & bool(neg))


# --- integer arithmetic ---------------------------------------------------------------------
def _mod_c(n, a, t):
    x, y = a
    if t.is_float:
        r = f"{math_fn('fmod', t)}({x}, {y})"
        if n.attr("fmod", 0):
            return r
        # numpy's remainder: fmod moved to the sign of the divisor, a zero signed like it
        return (f"{r} != 0 ? (({r} < 0) != ({y} < 0) ? {r} + {y} : {r}) "
                f": {math_fn('copysign', t)}(0, {y})")
    if n.attr("fmod", 0) or t.short[0] == "u":
        return f"{x} % {y}"
    # Python / numpy mod: the result takes the sign of the divisor
    return f"({x} % {y} != 0 && ({x} % {y} < 0) != ({y} < 0) ? {x} % {y} + {y} : {x} % {y})"


def _mod_ref(n, a, b):
    if n.attr("fmod", 0):
        return np.fmod(a, b)
    return np.mod(a, b)


_nary("Mod", 10, _mod_c, _mod_ref, "y = a mod b (sign of b; with fmod=1 the sign of a)")


def _shift_c(n, a, t):
    x, s = a
    bits = 8 * np.dtype(t.numpy).itemsize
    signed = t.short[0] == "i"
    out_of_range = f"{s} < 0 || {s} >= {bits}" if signed else f"{s} >= {bits}"
    if n.attr("direction") == "LEFT":      # through the unsigned type: no signed overflow
        shifted = f"({t.ctype})((u{t.ctype}){x} << {s})" if signed else f"{x} << {s}"
        return f"{out_of_range} ? 0 : {shifted}"
    fill = f"({x} < 0 ? -1 : 0)" if signed else "0"
    return f"{out_of_range} ? {fill} : {x} >> {s}"


def _shift_ref(n, a, b):
    a, b = np.broadcast_arrays(a, b)
    bits = 8 * a.dtype.itemsize
    valid = (b >= 0) & (b < bits)
    safe = np.where(valid, b, 0).astype(a.dtype)
    if n.attr("direction") == "LEFT":
        unsigned = np.dtype(f"u{a.dtype.itemsize}")
        shifted = np.left_shift(a.view(unsigned), safe.astype(unsigned)).view(a.dtype)
        return np.where(valid, shifted, 0)
    fill = np.where(a < 0, -1, 0) if a.dtype.kind == "i" else 0
    return np.where(valid, np.right_shift(a, safe), fill)


_nary("BitShift", 11, _shift_c, _shift_ref, "y = a << b or a >> b (direction); 0 (or -1) when b is outside [0, bits)")
_nary("BitwiseAnd", 18, lambda n, a, t: f"{a[0]} & {a[1]}", lambda n, a, b: a & b, "y = a & b")
_nary("BitwiseOr", 18, lambda n, a, t: f"{a[0]} | {a[1]}", lambda n, a, b: a | b, "y = a | b")
_nary("BitwiseXor", 18, lambda n, a, t: f"{a[0]} ^ {a[1]}", lambda n, a, b: a ^ b, "y = a ^ b")
_unary("BitwiseNot", 18, lambda n, x, t: f"~{x}", lambda n, x: np.invert(x), "y = ~x")
