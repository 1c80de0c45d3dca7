"""Element types: ONNX TensorProto codes, numpy dtypes, C types and short IR names in one table."""
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
        return self.short in ("f16", "bf16", "f32", "f64")

    @property
    def is_integer(self) -> bool:
        return self.short.startswith(("i", "u"))

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
if ml_dtypes is not None:
    _TABLE.append(DType(16, "bf16", ml_dtypes.bfloat16, "uint16_t", "<V2"))

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


def from_short(short: str) -> DType:
    return BY_SHORT[short]


def from_numpy(dtype) -> DType:
    return _BY_NUMPY[np.dtype(dtype)]
