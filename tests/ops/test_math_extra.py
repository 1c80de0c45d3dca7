"""The extra elementwise math (trigonometric, Sign, IsNaN / IsInf, Celu, Shrink, Mish, Gelu...),
Mod, BitShift, Bitwise ops, CastLike and the pre-opset-7 broadcast forms match onnxruntime."""
import numpy as np
from onnx import helper

from helpers import check_against_onnxruntime, make_model

F32 = np.float32


def test_trigonometric_and_hyperbolic(cache_dir):
    ops = ["Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Atanh", "Sign"]
    nodes = [helper.make_node(op, ["x"], [op.lower()]) for op in ops]
    nodes.append(helper.make_node("Acosh", ["big"], ["acosh"]))
    x = np.random.default_rng(2).uniform(-0.95, 0.95, (3, 7)).astype(F32)
    x[0, :3] = 0
    feeds = {"x": x, "big": 1 + np.abs(x)}
    model = make_model(nodes, {"x": (F32, [3, 7]), "big": (F32, [3, 7])},
                       [op.lower() for op in ops] + ["acosh"])
    check_against_onnxruntime(model, cache_dir, feeds)


def test_activations(cache_dir):
    nodes = [helper.make_node("Celu", ["x"], ["celu"], alpha=0.7),
             helper.make_node("ThresholdedRelu", ["x"], ["trelu"], alpha=0.4),
             helper.make_node("Shrink", ["x"], ["shrink"], lambd=0.6, bias=0.2),
             helper.make_node("Mish", ["x"], ["mish"]),
             helper.make_node("Gelu", ["x"], ["gelu"]),
             helper.make_node("Gelu", ["x"], ["gelu_tanh"], approximate="tanh")]
    outs = ["celu", "trelu", "shrink", "mish", "gelu", "gelu_tanh"]
    check_against_onnxruntime(make_model(nodes, {"x": (F32, [4, 9])}, outs, opset=20), cache_dir)


def test_isnan_isinf(cache_dir):
    nodes = [helper.make_node("IsNaN", ["x"], ["nan"]),
             helper.make_node("IsInf", ["x"], ["inf"]),
             helper.make_node("IsInf", ["x"], ["neg"], detect_positive=0)]
    x = np.array([1.0, np.nan, np.inf, -np.inf, -2.0, 0.0], F32)
    check_against_onnxruntime(make_model(nodes, {"x": (F32, [6])}, ["nan", "inf", "neg"]),
                              cache_dir, {"x": x})


def test_mod_integer_and_float(cache_dir):
    nodes = [helper.make_node("Mod", ["a", "b"], ["mod"]),
             helper.make_node("Mod", ["a", "b"], ["fmod"], fmod=1),
             helper.make_node("Mod", ["fa", "fb"], ["float_fmod"], fmod=1),
             helper.make_node("Mod", ["a8", "b8"], ["mod8"])]
    rng = np.random.default_rng(3)
    b = rng.integers(1, 7, (4,)) * np.array([1, -1, 1, -1])
    feeds = {"a": rng.integers(-20, 20, (3, 4)).astype(np.int32), "b": b.astype(np.int32),
             "fa": rng.uniform(-9, 9, (3, 4)).astype(F32), "fb": b.astype(F32) * 1.5,
             "a8": rng.integers(-100, 100, (3, 4)).astype(np.int8), "b8": b.astype(np.int8)}
    model = make_model(nodes, {"a": (np.int32, [3, 4]), "b": (np.int32, [4]),
                               "fa": (F32, [3, 4]), "fb": (F32, [4]),
                               "a8": (np.int8, [3, 4]), "b8": (np.int8, [4])},
                       ["mod", "fmod", "float_fmod", "mod8"])
    check_against_onnxruntime(model, cache_dir, feeds)


def test_bitshift_and_bitwise(cache_dir):
    u8 = np.uint8
    nodes = [helper.make_node("BitShift", ["a", "s"], ["left"], direction="LEFT"),
             helper.make_node("BitShift", ["a", "s"], ["right"], direction="RIGHT"),
             helper.make_node("BitwiseAnd", ["a", "b"], ["and"]),
             helper.make_node("BitwiseOr", ["a", "b"], ["or"]),
             helper.make_node("BitwiseXor", ["a", "b"], ["xor"]),
             helper.make_node("BitwiseNot", ["a"], ["not"])]
    rng = np.random.default_rng(4)
    feeds = {"a": rng.integers(0, 256, (2, 5)).astype(u8), "s": rng.integers(0, 8, (5,)).astype(u8),
             "b": rng.integers(0, 256, (2, 5)).astype(u8)}
    model = make_model(nodes, {"a": (u8, [2, 5]), "s": (u8, [5]), "b": (u8, [2, 5])},
                       ["left", "right", "and", "or", "xor", "not"], opset=18)
    check_against_onnxruntime(model, cache_dir, feeds)


def test_castlike(cache_dir):
    nodes = [helper.make_node("CastLike", ["x", "like_i"], ["to_int"]),
             helper.make_node("CastLike", ["x", "like_h"], ["to_half"])]
    feeds = {"x": np.array([[1.7, -2.2, 3.0], [0.5, 100.25, -7.9]], F32),
             "like_i": np.zeros((1,), np.int32), "like_h": np.zeros((1,), np.float16)}
    model = make_model(nodes, {"x": (F32, [2, 3]), "like_i": (np.int32, [1]),
                               "like_h": (np.float16, [1])}, ["to_int", "to_half"])
    check_against_onnxruntime(model, cache_dir, feeds)


def test_opset6_axis_broadcast_and_channel_prelu(cache_dir):
    # Add-6 lines b up with a from `axis`; PRelu-6 takes one slope per channel
    nodes = [helper.make_node("Add", ["a", "b"], ["sum"], broadcast=1, axis=1),
             helper.make_node("Mul", ["a", "c"], ["product"], broadcast=1),
             helper.make_node("PRelu", ["a", "slope"], ["prelu"])]
    model = make_model(nodes, {"a": (F32, [2, 3, 4]), "b": (F32, [3]), "c": (F32, [4])},
                       ["sum", "product", "prelu"],
                       initializers={"slope": np.array([0.1, -0.5, 2.0], F32)}, opset=6)
    model.ir_version = 3
    feeds = {"a": np.random.default_rng(5).standard_normal((2, 3, 4)).astype(F32),
             "b": np.array([1, 2, 3], F32), "c": np.array([1, -1, 2, 0.5], F32)}
    a = feeds["a"]
    expected = {"sum": a + feeds["b"][:, None], "product": a * feeds["c"],
                "prelu": np.where(a < 0, a * np.array([0.1, -0.5, 2.0], F32)[:, None], a)}
    import nnbuild
    actual = nnbuild.compile(model, cache_dir=cache_dir).run(feeds)
    for name, want in expected.items():
        np.testing.assert_allclose(actual[name], want, rtol=1e-6)


def test_bitcast_keeps_the_bits(cache_dir):
    import nnbuild
    nodes = [helper.make_node("BitCast", ["x"], ["i"], to=6),
             helper.make_node("BitCast", ["i"], ["back"], to=1)]
    model = make_model(nodes, {"x": (F32, [3])}, ["i", "back"], opset=26)
    model.ir_version = 13
    x = np.array([1.5, -0.0, np.inf], F32)
    out = nnbuild.compile(model, cache_dir=cache_dir).run({"x": x})
    np.testing.assert_array_equal(out["i"], x.view(np.int32))
    np.testing.assert_array_equal(out["back"].view(np.int32), x.view(np.int32))
