"""Element types: ONNX TensorProto codes, numpy dtypes, C types and short IR names in one table.

The narrow types (float8 variants, float8 e8m0, float4 e2m1, int4/uint4, int2/uint2) are
storage-only: one element per byte (``uint8_t``) in every buffer the generated code touches,
the C API's included, exactly as ml_dtypes lays them out in numpy. A float type's byte is its bit
pattern; a 4-bit or 2-bit type sits in the byte's low bits (two's complement for int4/int2) and
the high bits are zero. Loops load them as float (the float types) or int8_t / uint8_t (the
integers) and store back through ``nn_narrow.h``. ONNX's own packing (two int4 or four int2 per
byte) exists only in the .onnx file; ``numpy_helper.to_array`` unpacks it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

try:  # bfloat16 and float8 come from ml_dtypes, which onnx depends on
    import ml_dtypes
except ImportError:  # pragma: no cover
    ml_dtypes = None


@dataclass(frozen=True)
class DType:
    code: int          # onnx.TensorProto.DataType
    short: str         # name in the text IR
    numpy: object      # numpy dtype (None where numpy has none)
    ctype: str         # C storage type
    npy_descr: str     # .npy header descr

    @property
    def itemsize(self) -> int:
        return np.dtype(self.numpy).itemsize

    @property
    def is_float(self) -> bool:
        """A float type the ops compute on (the narrow floats are storage only)."""
        return self.short in ("f16", "bf16", "f32", "f64")

    @property
    def is_integer(self) -> bool:
        """An integer type the ops compute on (int4 / int2 and friends are storage only)."""
        return self.short.startswith(("i", "u")) and not self.is_narrow

    @property
    def is_narrow(self) -> bool:
        """Stored one element per byte, computed on only after a conversion (nn_narrow.h)."""
        return self.code in NARROW_CODES

    @property
    def is_floating(self) -> bool:
        """Any floating-point type, narrow ones included (how IR text writes its values)."""
        return self.is_float or (self.is_narrow and self.short.startswith("f"))

    def __str__(self) -> str:
        return self.short


_TABLE = [
    DType(1, "f32", np.float32, "float", "<f4"),
    DType(2, "u8", np.uint8, "uint8_t", "|u1"),
    DType(3, "i8", np.int8, "int8_t", "|i1"),
    DType(4, "u16", np.uint16, "uint16_t", "<u2"),
    DType(5, "i16", np.int16, "int16_t", "<i2"),
    DType(6, "i32", np.int32, "int32_t", "<i4"),
    DType(7, "i64", np.int64, "int64_t", "<i8"),
    DType(9, "bool", np.bool_, "bool", "|b1"),
    DType(10, "f16", np.float16, "uint16_t", "<f2"),
    DType(11, "f64", np.float64, "double", "<f8"),
    DType(12, "u32", np.uint32, "uint32_t", "<u4"),
    DType(13, "u64", np.uint64, "uint64_t", "<u8"),
]
NARROW_CODES = frozenset(range(17, 27))
if ml_dtypes is not None:
    _TABLE.append(DType(16, "bf16", ml_dtypes.bfloat16, "uint16_t", "<V2"))
    _TABLE += [DType(code, short, getattr(ml_dtypes, name), "uint8_t", "<V1")
               for code, short, name in (
                   (17, "f8e4m3fn", "float8_e4m3fn"), (18, "f8e4m3fnuz", "float8_e4m3fnuz"),
                   (19, "f8e5m2", "float8_e5m2"), (20, "f8e5m2fnuz", "float8_e5m2fnuz"),
                   (21, "u4", "uint4"), (22, "i4", "int4"), (23, "f4e2m1", "float4_e2m1fn"),
                   (24, "f8e8m0", "float8_e8m0fnu"), (25, "u2", "uint2"), (26, "i2", "int2"))
               if hasattr(ml_dtypes, name)]

BY_CODE = {d.code: d for d in _TABLE}
BY_SHORT = {d.short: d for d in _TABLE}
_BY_NUMPY = {np.dtype(d.numpy): d for d in _TABLE}

FLOAT32 = BY_SHORT["f32"]
INT64 = BY_SHORT["i64"]
INT32 = BY_SHORT["i32"]
BOOL = BY_SHORT["bool"]


def from_code(code: int) -> DType:
    if code not in BY_CODE:
        from .errors import ModelError
        raise ModelError(f"unsupported tensor element type {code} "
                         f"(supported: {', '.join(d.short for d in _TABLE)})")
    return BY_CODE[code]


def onnx_name(code: int) -> str:
    """ONNX's name of an element type code (FLOAT8E4M3FN, STRING...), else the number."""
    import onnx
    try:
        return onnx.TensorProto.DataType.Name(code)
    except ValueError:
        return str(code)


def from_short(short: str) -> DType:
    return BY_SHORT[short]


def from_numpy(dtype) -> DType:
    return _BY_NUMPY[np.dtype(dtype)]


def bits(dtype: DType) -> int:
    """Bits of one element as ONNX stores it in a file (4 for int4, 2 for int2, ...)."""
    return {"u4": 4, "i4": 4, "f4e2m1": 4, "u2": 2, "i2": 2}.get(dtype.short,
                                                                   8 * dtype.itemsize)


def limits(dtype: DType) -> tuple:
    """(min, max) of an integer type, the narrow ones included."""
    info = ml_dtypes.iinfo(dtype.numpy) if dtype.is_narrow else np.iinfo(dtype.numpy)
    return int(info.min), int(info.max)


def cast(array: np.ndarray, to: DType, saturate: bool = True, round_mode: str = "up"):
    """numpy: ``array`` converted to ``to`` as ONNX's Cast does (the narrow types as ONNX's
    reference implementation converts them, through ml_dtypes)."""
    array = np.asarray(array)
    with np.errstate(invalid="ignore", over="ignore"):
        if to.short == "f8e8m0":
            from onnx.numpy_helper import to_float8e8m0
            return to_float8e8m0(array.astype(np.float32), saturate, round_mode)
        if to.short.startswith("f8") and saturate:
            info = ml_dtypes.finfo(to.numpy)
            wide = array if array.dtype in (np.float16, np.float32, np.float64) else \
                array.astype(np.float32)
            return np.clip(wide, float(info.min), float(info.max)).astype(to.numpy)
        source = from_numpy(array.dtype) if np.dtype(array.dtype) in _BY_NUMPY else None
        if source is not None and source.is_narrow and to.is_narrow:   # ml_dtypes has no
            array = array.astype(np.float32 if source.is_floating else np.int64)   # direct cast
        return array.astype(to.numpy)
