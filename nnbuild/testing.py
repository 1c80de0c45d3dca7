"""The numeric contract every test shares: tolerances stated once, per element type.

Two tiers, both ``|actual - expected| <= atol + rtol * |expected|`` elementwise:
- OP_TOLERANCE: one op, or a small graph, against onnxruntime / the ONNX reference.
- MODEL_TOLERANCE: whole networks, where accumulation order differs over many layers.
Integers and bools compare exactly. NaN must match NaN, and infinities must match exactly.
The narrow float types (float8, float4) compare exactly too, NaN matching NaN: EXACT_FLOATS.
"""
from __future__ import annotations

import numpy as np

EXACT_FLOATS = {name: (0.0, 0.0) for name in (
    "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
    "float4_e2m1fn")}
OP_TOLERANCE = {          # dtype -> (rtol, atol)
    "float16": (1e-3, 1e-3),
    "bfloat16": (1e-2, 1e-2),
    "float32": (1e-4, 1e-5),
    "float64": (1e-10, 1e-12),
    **EXACT_FLOATS,
}
MODEL_TOLERANCE = {
    "float16": (1e-2, 1e-2),
    "bfloat16": (5e-2, 5e-2),
    "float32": (1e-3, 1e-4),
    "float64": (1e-8, 1e-10),
    **EXACT_FLOATS,
}


def mismatch(actual: np.ndarray, expected: np.ndarray, tolerance: dict = OP_TOLERANCE) -> str | None:
    """None when ``actual`` matches ``expected`` within the tolerance of its dtype, else a
    one-line description of the worst element."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        return f"shape {actual.shape} != expected {expected.shape}"
    if actual.dtype != expected.dtype:
        return f"dtype {actual.dtype} != expected {expected.dtype}"
    if actual.size == 0:
        return None
    name = str(actual.dtype)
    if name not in tolerance:
        bad = np.flatnonzero(actual.reshape(-1) != expected.reshape(-1))
        if bad.size:
            i = bad[0]
            return (f"{bad.size} of {actual.size} elements differ; first at flat index {i}: "
                    f"{actual.reshape(-1)[i]} != {expected.reshape(-1)[i]}")
        return None
    rtol, atol = tolerance[name]
    a, e = actual.astype(np.float64).reshape(-1), expected.astype(np.float64).reshape(-1)
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    inf_e = np.isinf(e)
    with np.errstate(invalid="ignore"):        # inf - inf: judged by the inf rule below
        err = np.abs(a - e)
    bad = (nan_a != nan_e) | (inf_e & (a != e)) | (~nan_e & ~inf_e & ~(err <= atol + rtol * np.abs(e)))
    if not bad.any():
        return None
    worst = int(np.argmax(np.where(bad, np.nan_to_num(err, nan=np.inf), -1)))
    return (f"{int(bad.sum())} of {a.size} elements outside rtol={rtol} atol={atol}; worst at "
            f"flat index {worst}: {a[worst]!r} vs expected {e[worst]!r}")


def assert_close(actual, expected, tolerance: dict = OP_TOLERANCE, what: str = "output") -> None:
    problem = mismatch(actual, expected, tolerance)
    assert problem is None, f"{what}: {problem}"
