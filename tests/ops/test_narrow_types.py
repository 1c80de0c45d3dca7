"""The narrow element types (float8 e4m3fn / e4m3fnuz / e5m2 / e5m2fnuz / e8m0, float4 e2m1,
int4 / uint4 / int2 / uint2): one element per byte everywhere, converted by nn_narrow.h
bit-exactly as ONNX's reference implementation (ml_dtypes) converts them, through Cast,
CastLike, QuantizeLinear and DequantizeLinear, the IR's text and JSON forms, the Python
runtime and the app's .npy files."""
from __future__ import annotations

import os
import shutil
import subprocess

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import nnbuild
from nnbuild import dtypes
from nnbuild.ir import jsonio, text
from nnbuild.ir.graph import Graph, Node, TensorType, splat
from nnbuild.resources import templates_dir

CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
FLOAT8 = {"f8e4m3fn": ml_dtypes.float8_e4m3fn, "f8e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
          "f8e5m2": ml_dtypes.float8_e5m2, "f8e5m2fnuz": ml_dtypes.float8_e5m2fnuz}
SMALL_INTS = {"i4": (ml_dtypes.int4, "0xf"), "u4": (ml_dtypes.uint4, "0xf"),
              "i2": (ml_dtypes.int2, "0x3"), "u2": (ml_dtypes.uint2, "0x3")}
ROUND_MODES = ("up", "down", "nearest")


# --- the conversions of nn_narrow.h, compiled and run ------------------------------------------
CONVERTER = r"""
#include <stdio.h>
#include <stdlib.h>
#include "nn_narrow.h"
/* decode: every byte through every decoder, as float.  encode FILE: each double of FILE through
 * every encoder, one byte each. */
int main(int argc, char **argv) {
    if (argc == 2) {
        for (int c = 0; c < 256; ++c) {
            uint8_t b = (uint8_t)c;
            float v[9] = {nn_f8e4m3fn_to_f32(b), nn_f8e4m3fnuz_to_f32(b), nn_f8e5m2_to_f32(b),
                          nn_f8e5m2fnuz_to_f32(b), nn_f8e8m0_to_f32(b), nn_f4e2m1_to_f32(b),
                          nn_i4_to_i8(b), nn_u4_to_u8(b), nn_i2_to_i8(b)};
            float u2 = nn_u2_to_u8(b);
            fwrite(v, sizeof v, 1, stdout);
            fwrite(&u2, sizeof u2, 1, stdout);
        }
        return 0;
    }
    FILE *f = fopen(argv[2], "rb");
    double x;
    while (f && fread(&x, sizeof x, 1, f) == 1) {
        uint8_t o[17];
        int k = 0;
        for (int s = 0; s < 2; ++s) {
            o[k++] = nn_f8e4m3fn_from(x, s);   o[k++] = nn_f8e4m3fnuz_from(x, s);
            o[k++] = nn_f8e5m2_from(x, s);     o[k++] = nn_f8e5m2fnuz_from(x, s);
        }
        o[k++] = nn_f4e2m1_from(x);
        for (int s = 0; s < 2; ++s)
            for (int m = 0; m < 3; ++m) o[k++] = nn_f8e8m0_from((float)x, s, m);
        o[k++] = nn_low_bits(nn_trunc_i64(x), 0xf);
        o[k++] = nn_low_bits(nn_trunc_i64(x), 0x3);
        fwrite(o, 1, sizeof o, stdout);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def converter(tmp_path_factory):
    folder = tmp_path_factory.mktemp("narrow")
    (folder / "conv.c").write_text(CONVERTER)
    exe = folder / "conv"
    subprocess.run([CC, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror",
                    f"-I{os.path.join(templates_dir(), 'project')}", str(folder / "conv.c"),
                    "-o", str(exe), "-lm"], check=True)
    return exe


def bits_of(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array).view(np.uint8 if array.itemsize == 1 else np.uint32)


def test_every_code_decodes_as_ml_dtypes(converter):
    """All 256 float8 codes (NaN's sign included), 16 float4 / int4 / uint4 codes, 4 int2 /
    uint2 codes: the decoded float's bits equal ml_dtypes'."""
    out = subprocess.run([str(converter), "decode"], capture_output=True, check=True).stdout
    got = np.frombuffer(out, np.float32).reshape(256, 10)
    codes = np.arange(256, dtype=np.uint8)
    columns = [ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e4m3fnuz, ml_dtypes.float8_e5m2,
               ml_dtypes.float8_e5m2fnuz, ml_dtypes.float8_e8m0fnu]
    for j, t in enumerate(columns):
        want = codes.view(t).astype(np.float32)
        assert np.array_equal(bits_of(want), bits_of(got[:, j])), t.__name__
    for j, (t, mask) in enumerate([(ml_dtypes.float4_e2m1fn, 15), (ml_dtypes.int4, 15),
                                   (ml_dtypes.uint4, 15), (ml_dtypes.int2, 3),
                                   (ml_dtypes.uint2, 3)], start=5):
        low = codes[: mask + 1]
        want = low.view(t).astype(np.float32)
        assert np.array_equal(bits_of(want), bits_of(got[: mask + 1, j])), t.__name__


def encode_inputs() -> np.ndarray:
    """Every representable value, every midpoint (ties), one float32 step either side of each
    midpoint, values past the largest, specials, subnormal and random floats."""
    parts = []
    for t in list(FLOAT8.values()) + [ml_dtypes.float4_e2m1fn]:
        n = 16 if t is ml_dtypes.float4_e2m1fn else 256
        values = np.arange(n, dtype=np.uint8).view(t).astype(np.float32)
        values = np.unique(values[np.isfinite(values)])
        mids = (values[1:] + values[:-1]) / 2
        parts += [values, mids, np.nextafter(mids, np.float32(np.inf)),
                  np.nextafter(mids, np.float32(-np.inf)), values * 1.25, values * 1.0625]
    rng = np.random.default_rng(0)
    parts += [(rng.standard_normal(3000) * s).astype(np.float32) for s in (1e-3, 1, 300, 1e5)]
    parts.append(np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45, 1e-39,
                           2.0 ** -127, 1.5 * 2.0 ** -126, 2.0 ** 127, 1.5 * 2.0 ** 127, 3e38,
                           -3e38, 7.5, -8.5, 15.9, -16.0, 1e10], np.float32))
    return np.concatenate(parts).astype(np.float32)


def test_encoders_match_the_reference(converter, tmp_path):
    """float8 with saturate on and off, float4, e8m0 in each round mode with saturate on and
    off, and the truncating, wrapping float -> int4 / int2 conversions: bit-exact."""
    x = encode_inputs()
    x.astype(np.float64).tofile(tmp_path / "x.bin")
    out = subprocess.run([str(converter), "encode", str(tmp_path / "x.bin")],
                         capture_output=True, check=True).stdout
    got = np.frombuffer(out, np.uint8).reshape(-1, 17)
    column = iter(range(17))
    for saturate in (False, True):
        for short in FLOAT8:
            want = dtypes.cast(x, dtypes.from_short(short), saturate)
            k = next(column)
            bad = np.flatnonzero(bits_of(want) != got[:, k])
            assert bad.size == 0, (short, saturate, x[bad[:5]], bits_of(want)[bad[:5]],
                                   got[bad[:5], k])
    k = next(column)
    assert np.array_equal(bits_of(x.astype(ml_dtypes.float4_e2m1fn)), got[:, k])
    for saturate in (False, True):
        for mode in ROUND_MODES:
            want = dtypes.cast(x, dtypes.from_short("f8e8m0"), saturate, mode)
            assert np.array_equal(bits_of(want), got[:, next(column)]), (saturate, mode)
    finite = np.isfinite(x) & (np.abs(x) < 2.0 ** 62)
    with np.errstate(invalid="ignore"):
        for mask, t in ((15, ml_dtypes.int4), (3, ml_dtypes.int2)):
            want = bits_of(x[finite].astype(t)) & mask
            assert np.array_equal(want, got[finite, next(column)]), t.__name__
    assert np.all(got[~np.isfinite(x), 15:] == 0)     # NaN and infinities become 0


# --- through models: Cast, CastLike, Quantize / Dequantize ---------------------------------
def model_of(nodes, inputs: dict, outputs: list, inits: dict | None = None, opset: int = 25):
    def info(name, dtype, shape):
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(
            np.dtype(dtype)), list(shape))
    graph = helper.make_graph(
        nodes, "narrow", [info(n, d, s) for n, (d, s) in inputs.items()],
        [helper.make_empty_tensor_value_info(n) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in (inits or {}).items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def assert_bit_exact(actual: dict, expected: dict):
    for name, want in expected.items():
        got = actual[name]
        assert got.dtype == want.dtype and got.shape == want.shape, name
        if want.dtype.kind in "fV" and want.dtype != np.bool_:
            wide_got, wide_want = got.astype(np.float64), want.astype(np.float64)
            nan = np.isnan(wide_want)
            assert np.array_equal(np.isnan(wide_got), nan), name
            assert np.array_equal(wide_got[~nan], wide_want[~nan]), name
            assert np.array_equal(np.signbit(wide_got[~nan]), np.signbit(wide_want[~nan])), name
        else:
            assert np.array_equal(got, want), name


def test_cast_to_and_from_every_narrow_type(cache_dir):
    """f32 -> each narrow type (float8 with saturate on and off, e8m0 in each round mode)
    -> f32 and f16, int8 -> int4 / int2 (wrapping), int4 -> int8, f16 -> float8."""
    x = encode_inputs()[::7][:512].reshape(8, 64)
    ints = np.arange(-64, 64, dtype=np.int8).reshape(2, 64)
    nodes, outputs = [], []

    def cast(src, to, name, **attrs):
        nodes.append(helper.make_node("Cast", [src], [name], to=to, **attrs))
        outputs.append(name)
    for short in list(FLOAT8) + ["f4e2m1"]:
        code = dtypes.from_short(short).code
        for saturate in ((0, 1) if short in FLOAT8 else (1,)):
            cast("x", code, f"{short}_{saturate}", saturate=saturate)
            cast(f"{short}_{saturate}", TensorProto.FLOAT, f"{short}_{saturate}_f32")
        cast("h", code, f"{short}_from_f16")
        cast(f"{short}_from_f16", TensorProto.FLOAT16, f"{short}_to_f16")
    for mode in ROUND_MODES:
        cast("x", TensorProto.FLOAT8E8M0, f"e8m0_{mode}", round_mode=mode, saturate=0)
        cast(f"e8m0_{mode}", TensorProto.FLOAT, f"e8m0_{mode}_f32")
    for short in SMALL_INTS:
        code = dtypes.from_short(short).code
        cast("n", code, f"{short}_from_i8")
        cast(f"{short}_from_i8", TensorProto.INT8, f"{short}_to_i8")
        cast("x", code, f"{short}_from_f32")
        cast(f"{short}_from_f32", TensorProto.FLOAT, f"{short}_to_f32")
    model = model_of(nodes, {"x": (np.float32, x.shape), "h": (np.float16, x.shape),
                             "n": (np.int8, ints.shape)}, outputs)
    finite = np.where(np.isfinite(x) & (np.abs(x) < 1e6), x, 3.0).astype(np.float32)
    feeds = {"x": finite, "h": x.astype(np.float16), "n": ints}
    expected = dict(zip(outputs, ReferenceEvaluator(model).run(None, feeds)))
    actual = nnbuild.compile(model, cache_dir=cache_dir).run(feeds)
    assert_bit_exact(actual, expected)


def test_castlike_and_narrow_graph_inputs_and_outputs(cache_dir):
    """Narrow tensors cross the C API unconverted: an int4 and a float8 input, a float8 and a
    uint2 output (one element per byte, as numpy holds them)."""
    nodes = [helper.make_node("CastLike", ["q", "like"], ["q_as_f8"], saturate=0),
             helper.make_node("Cast", ["f8"], ["f8_as_f32"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["q"], ["q_as_u2"], to=TensorProto.UINT2)]
    like = np.zeros(0, ml_dtypes.float8_e5m2)
    q = np.arange(-8, 8).astype(ml_dtypes.int4).reshape(4, 4)
    f8 = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e4m3fn)
    model = model_of(nodes, {"q": (ml_dtypes.int4, q.shape), "f8": (f8.dtype, f8.shape)},
                     ["q_as_f8", "f8_as_f32", "q_as_u2"], {"like": like})
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    assert [s.dtype for s in compiled.inputs] == [np.dtype(ml_dtypes.int4), f8.dtype]
    reference = model_of(nodes[:2], {"q": (ml_dtypes.int4, q.shape), "f8": (f8.dtype, f8.shape)},
                         ["q_as_f8", "f8_as_f32"], {"like": like})
    expected = dict(zip(["q_as_f8", "f8_as_f32"],
                        ReferenceEvaluator(reference).run(None, {"q": q, "f8": f8})))
    # ml_dtypes casts no int4 to uint2: the low two bits, as between any integer types
    expected["q_as_u2"] = (q.astype(np.int64) & 3).astype(ml_dtypes.uint2)
    assert_bit_exact(compiled.run({"q": q, "f8": f8}), expected)
    with pytest.raises(nnbuild.UsageError, match="int4"):     # never converted silently
        compiled.run({"q": q.astype(np.int8), "f8": f8})


@pytest.mark.parametrize("short", ["i4", "u4", "i2", "u2", "f8e4m3fn", "f8e5m2", "f4e2m1"])
def test_quantize_dequantize_round_trip(cache_dir, short):
    """Per-axis and blocked scales, a zero point of the quantized type, halfway cases: bit-exact
    with ONNX's reference evaluator."""
    dtype = dtypes.from_short(short)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 6)) * 6).astype(np.float32)
    x[0, :4] = [0.25, 0.75, -0.25, 2.5]
    zp_values = {"i4": [1, -2, 0, 3], "u4": [8, 0, 15, 3], "i2": [0, -1, 1, 0],
                 "u2": [1, 0, 3, 2]}.get(short, [0, 0, 0, 0])
    zero = np.array(zp_values).astype(dtype.numpy)
    block_zero = np.array(zp_values * 3).reshape(4, 3).astype(dtype.numpy)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=0),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"], axis=0),
             helper.make_node("QuantizeLinear", ["x", "bs", "bz"], ["bq"], axis=1,
                              block_size=2),
             helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["bdq"], axis=1,
                              block_size=2)]
    inits = {"s": np.array([0.5, 1.0, 0.25, 2.0], np.float32), "z": zero,
             "bs": (rng.random((4, 3)) + 0.25).astype(np.float32), "bz": block_zero}
    model = model_of(nodes, {"x": (np.float32, x.shape)}, ["q", "dq", "bq", "bdq"], inits)
    expected = dict(zip(["q", "dq", "bq", "bdq"], ReferenceEvaluator(model).run(None, {"x": x})))
    assert_bit_exact(nnbuild.compile(model, cache_dir=cache_dir).run({"x": x}), expected)


@pytest.mark.parametrize("precision", [TensorProto.FLOAT16, TensorProto.BFLOAT16, None])
def test_quantize_in_the_precision_it_names(cache_dir, precision):
    """precision (opset 23) rounds x and scale to that type and divides in it; without it two
    float16 operands divide in float16, as numpy does."""
    attrs = {} if precision is None else {"precision": precision}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], **attrs),
             helper.make_node("QuantizeLinear", ["h", "hs", "hz"], ["hq"])]
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(2000) * 40).astype(np.float32)
    model = model_of(nodes, {"x": (np.float32, x.shape), "h": (np.float16, x.shape)},
                     ["q", "hq"], {"s": np.array(0.3, np.float32), "z": np.array(3, np.int8),
                                   "hs": np.array(0.3, np.float16), "hz": np.array(-2, np.int8)},
                     opset=25)
    feeds = {"x": x, "h": x.astype(np.float16)}
    expected = dict(zip(["q", "hq"], ReferenceEvaluator(model).run(None, feeds)))
    assert_bit_exact(nnbuild.compile(model, cache_dir=cache_dir).run(feeds), expected)


def test_quantize_float8_without_saturation(cache_dir):
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], saturate=0)]
    x = np.array([1.0, 500.0, -1e5, np.inf, 0.3], np.float32)
    model = model_of(nodes, {"x": (np.float32, x.shape)}, ["q"],
                     {"s": np.array(0.5, np.float32),
                      "z": np.zeros(1, ml_dtypes.float8_e4m3fn)})
    expected = {"q": ReferenceEvaluator(model).run(None, {"x": x})[0]}
    assert_bit_exact(nnbuild.compile(model, cache_dir=cache_dir).run({"x": x}), expected)


def test_movement_ops_carry_narrow_elements(cache_dir):
    """Pad (its constant stored as the type's code), Transpose, Concat, ConstantOfShape,
    Reshape, Gather, Slice, Split, Where, Expand and Tile move float8 and int4 elements byte
    for byte."""
    x = np.arange(-3, 3).astype(ml_dtypes.float8_e4m3fn).reshape(2, 3)
    q = np.arange(-3, 3).astype(ml_dtypes.int4).reshape(2, 3)
    fill = numpy_helper.from_array(np.array([-5], ml_dtypes.int4))
    nodes = [helper.make_node("Pad", ["x", "pads", "x_fill"], ["x_padded"]),
             helper.make_node("Pad", ["q", "pads", "q_fill"], ["q_padded"]),
             helper.make_node("ConstantOfShape", ["shape"], ["filled"], value=fill),
             helper.make_node("Transpose", ["q"], ["q_t"]),
             helper.make_node("Concat", ["x", "x"], ["x_x"], axis=0),
             helper.make_node("Reshape", ["q", "shape6"], ["q_flat"]),
             helper.make_node("Gather", ["x", "index"], ["x_col"], axis=1),
             helper.make_node("Slice", ["q", "starts", "ends"], ["q_slice"]),
             helper.make_node("Split", ["q"], ["q_a", "q_b"], axis=0, num_outputs=2),
             helper.make_node("Where", ["c", "x", "x_x_half"], ["x_where"]),
             helper.make_node("Expand", ["q", "shape223"], ["q_wide"]),
             helper.make_node("Tile", ["x", "reps"], ["x_tiled"])]
    inits = {"pads": np.array([0, 1, 1, 0], np.int64), "shape": np.array([2, 2], np.int64),
             "x_fill": np.array(1.5, ml_dtypes.float8_e4m3fn), "shape6": np.array([6], np.int64),
             "q_fill": np.array(-2, ml_dtypes.int4), "index": np.array([2, 0], np.int64),
             "starts": np.array([0, 1], np.int64), "ends": np.array([2, 3], np.int64),
             "x_x_half": (x * 0.5).astype(x.dtype), "shape223": np.array([2, 2, 3], np.int64),
             "reps": np.array([1, 2], np.int64)}
    names = ["x_padded", "q_padded", "filled", "q_t", "x_x", "q_flat", "x_col", "q_slice",
             "q_a", "q_b", "x_where", "q_wide", "x_tiled"]
    model = model_of(nodes, {"x": (x.dtype, x.shape), "q": (q.dtype, q.shape),
                             "c": (np.bool_, (2, 3))}, names, inits, opset=24)
    feeds = {"x": x, "q": q, "c": np.array([[True, False, True], [False, False, True]])}
    expected = dict(zip(names, ReferenceEvaluator(model).run(None, feeds)))
    assert_bit_exact(nnbuild.compile(model, cache_dir=cache_dir).run(feeds), expected)


def test_cast_to_an_unsupported_type_names_the_node():
    node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.STRING, name="to_text")
    model = model_of([node], {"x": (np.float32, (2,))}, ["y"])
    with pytest.raises(nnbuild.ModelError, match=r"to_text \(Cast\): to=STRING is not "
                                                 r"supported \(supported: f32, .*i4, "):
        nnbuild.translate(model)


def test_cast_without_to_names_the_node():
    model = model_of([helper.make_node("Cast", ["x"], ["y"], name="untyped")],
                     {"x": (np.float32, (2,))}, ["y"])
    with pytest.raises(nnbuild.ModelError, match=r"untyped \(Cast\): attribute 'to' is required"):
        nnbuild.translate(model)


def test_unknown_round_mode_is_one_clear_error():
    node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT8E8M0, round_mode="odd",
                            name="to_scale")
    model = model_of([node], {"x": (np.float32, (2,))}, ["y"])
    with pytest.raises(nnbuild.ModelError, match=r"to_scale \(Cast\): round_mode 'odd' "
                                                 r"\(supported: up, down, nearest\)"):
        nnbuild.translate(model)


# --- the IR's two forms ------------------------------------------------------------------
@pytest.mark.parametrize("code", range(17, 27))
def test_narrow_constants_round_trip_through_text_and_json(code):
    dtype = dtypes.from_code(code)
    n = {8: 256, 4: 16, 2: 4}[dtypes.bits(dtype)]
    values = np.arange(n, dtype=np.uint8).view(dtype.numpy)
    finite = values[np.isfinite(values.astype(np.float32))]     # text writes NaN unsigned
    g = Graph("g", inputs=["x"], outputs=["y"])
    g.types["x"] = g.types["y"] = TensorType(dtype, (3,))
    g.add_constant("many", values.copy())
    g.add_constant("few", finite[-5:].copy())
    g.add_constant("fill", splat(finite[1], dtype.numpy, (3,)))
    g.nodes = [Node("Identity", ("x",), ("y",))]
    for back in (text.parse_graph(text.format_graph(g)),
                 jsonio.graph_from_json(jsonio.graph_to_json(g))):
        assert back.types["x"].dtype is dtype
        for name in ("few", "fill") + (("many",) if n > 16 else ()):
            assert back.constants[name].dtype == values.dtype
            assert np.array_equal(bits_of(np.ascontiguousarray(back.constants[name])),
                                  bits_of(np.ascontiguousarray(g.constants[name]))), name
    assert np.array_equal(bits_of(jsonio.graph_from_json(jsonio.graph_to_json(g))
                                  .constants["many"]), bits_of(values))


def test_packed_external_int4_weights_are_read(tmp_path):
    """ONNX packs int4 two per byte in a file: 5 values take 3 bytes of external data."""
    w = np.array([-8, 7, 3, -1, 2], ml_dtypes.int4)
    model = model_of([helper.make_node("DequantizeLinear", ["w", "s"], ["y"], axis=0)],
                     {}, ["y"], {"w": w, "s": np.array(0.5, np.float32)}, opset=21)
    onnx.save(model, str(tmp_path / "m.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    graph = nnbuild.translate(str(tmp_path / "m.onnx"))
    assert np.array_equal(graph.constants["w"].astype(np.int8), [-8, 7, 3, -1, 2])


# --- the app's .npy files ------------------------------------------------------------------
def test_app_reads_and_writes_narrow_npy(tmp_path):
    """np.save writes float8 / int4 arrays as raw one-byte records ('<V1'; e5m2 as '<f1'); the
    app takes them and writes its narrow outputs so."""
    nodes = [helper.make_node("Cast", ["a"], ["a_f8"], to=TensorProto.FLOAT8E4M3FN),
             helper.make_node("Cast", ["b"], ["b_i8"], to=TensorProto.INT8),
             helper.make_node("Cast", ["b"], ["b_i4"], to=TensorProto.INT4)]
    a = np.linspace(-3, 3, 12).astype(ml_dtypes.float8_e5m2)
    b = np.arange(12).astype(ml_dtypes.uint4)
    inputs = {"a": (a.dtype, a.shape), "b": (b.dtype, b.shape)}
    onnx.save(model_of(nodes, inputs, ["a_f8", "b_i8", "b_i4"]), str(tmp_path / "narrow.onnx"))
    result = nnbuild.build(str(tmp_path / "narrow.onnx"), str(tmp_path / "out"))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    subprocess.run([result.app, "--input", f"a={tmp_path / 'a.npy'}", "--input",
                    f"b={tmp_path / 'b.npy'}", "--output-dir", str(tmp_path / "y")], check=True)
    got = {name: np.load(tmp_path / "y" / f"{name}.npy") for name in ("a_f8", "b_i8", "b_i4")}
    assert got["a_f8"].dtype == got["b_i4"].dtype == np.dtype("V1")
    a_f8, b_i8 = ReferenceEvaluator(model_of(nodes[:2], inputs, ["a_f8", "b_i8"])).run(
        None, {"a": a, "b": b})
    assert np.array_equal(got["a_f8"].view(np.uint8), bits_of(a_f8))
    assert np.array_equal(got["b_i8"], b_i8)
    # ml_dtypes casts no uint4 to int4: the low four bits, as between any integer types
    assert np.array_equal(got["b_i4"].view(ml_dtypes.int4), b.astype(np.int8).astype(ml_dtypes.int4))


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_generated_conversions_compile_without_warnings(tmp_path, compiler):
    """The network source using every conversion family, and the app, under -Wall -Wextra
    -Werror."""
    if not shutil.which(compiler):
        pytest.skip(f"{compiler} is not installed")
    nodes = [helper.make_node("Cast", ["x"], ["a"], to=TensorProto.FLOAT8E4M3FN, saturate=0),
             helper.make_node("Cast", ["a"], ["b"], to=TensorProto.FLOAT16),
             helper.make_node("Cast", ["x"], ["c"], to=TensorProto.FLOAT8E8M0,
                              round_mode="nearest"),
             helper.make_node("Cast", ["x"], ["d"], to=TensorProto.INT4),
             helper.make_node("Cast", ["d"], ["e"], to=TensorProto.INT64),
             helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"]),
             helper.make_node("Where", ["t", "a", "a"], ["w"])]
    model = model_of(nodes, {"x": (np.float32, (4, 8)), "t": (np.bool_, ())},
                     ["b", "c", "e", "q", "dq", "w"],
                     {"s": np.array(0.5, np.float32), "z": np.array(1, ml_dtypes.uint2)})
    onnx.save(model, str(tmp_path / "narrow.onnx"))
    out = tmp_path / "gen"
    nnbuild.generate(str(tmp_path / "narrow.onnx"), str(out))
    flags = [compiler, "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{out / 'include'}",
             f"-I{out / 'src'}", f"-I{out / 'hal'}", f"-I{out / 'app'}", "-c"]
    for source in (out / "src" / "narrow.c", out / "app" / "main.c"):
        subprocess.run(flags + [str(source), "-o", str(tmp_path / f"{source.stem}.o")],
                       check=True)
