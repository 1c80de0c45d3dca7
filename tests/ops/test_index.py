"""ArgMax / ArgMin, Hardmax, CumSum / CumProd, Trilu and EyeLike match onnxruntime."""
import numpy as np
from onnx import helper

from helpers import check_against_onnxruntime, make_model

F32 = np.float32


def test_argmax_argmin(cache_dir):
    nodes = [helper.make_node("ArgMax", ["x"], ["max1"], axis=1),
             helper.make_node("ArgMax", ["x"], ["max_last"], axis=-1, keepdims=0,
                              select_last_index=1),
             helper.make_node("ArgMin", ["x"], ["min0"], axis=0, keepdims=0),
             helper.make_node("ArgMin", ["x"], ["min_last"], axis=2, select_last_index=1)]
    x = np.random.default_rng(6).integers(-3, 3, (3, 4, 5)).astype(F32)   # ties on purpose
    model = make_model(nodes, {"x": (F32, [3, 4, 5])}, ["max1", "max_last", "min0", "min_last"])
    check_against_onnxruntime(model, cache_dir, {"x": x})


def test_hardmax(cache_dir):
    nodes = [helper.make_node("Hardmax", ["x"], ["last"]),
             helper.make_node("Hardmax", ["x"], ["first"], axis=0)]
    check_against_onnxruntime(make_model(nodes, {"x": (F32, [3, 4, 5])}, ["last", "first"],
                                         opset=13), cache_dir)


def test_cumsum_constant_and_runtime_axis(cache_dir):
    nodes = [helper.make_node("CumSum", ["x", "axis"], ["sum"]),
             helper.make_node("CumSum", ["x", "one"], ["rev_excl"], reverse=1, exclusive=1),
             helper.make_node("CumSum", ["i", "axis"], ["int_sum"], exclusive=1)]
    model = make_model(nodes, {"x": (F32, [2, 3, 4]), "i": (np.int64, [2, 3, 4]),
                               "axis": (np.int32, [])}, ["sum", "rev_excl", "int_sum"],
                       initializers={"one": np.array(1, np.int64)})
    feeds = {"x": np.random.default_rng(7).standard_normal((2, 3, 4)).astype(F32),
             "i": np.arange(24, dtype=np.int64).reshape(2, 3, 4), "axis": np.array(-1, np.int32)}
    check_against_onnxruntime(model, cache_dir, feeds)


def test_trilu_runtime_k(cache_dir):
    nodes = [helper.make_node("Trilu", ["x", "k"], ["upper"]),
             helper.make_node("Trilu", ["x", "k"], ["lower"], upper=0),
             helper.make_node("Trilu", ["x"], ["upper0"])]
    model = make_model(nodes, {"x": (F32, [2, 4, 5]), "k": (np.int64, [])},
                       ["upper", "lower", "upper0"])
    feeds = {"x": np.random.default_rng(8).standard_normal((2, 4, 5)).astype(F32),
             "k": np.array(-1, np.int64)}
    check_against_onnxruntime(model, cache_dir, feeds)


def test_eyelike(cache_dir):
    nodes = [helper.make_node("EyeLike", ["x"], ["eye"], k=1),
             helper.make_node("EyeLike", ["x"], ["eye_f"], dtype=1, k=-2)]
    check_against_onnxruntime(make_model(nodes, {"x": (np.int32, [4, 5])}, ["eye", "eye_f"]),
                              cache_dir)


def test_lp_normalization(cache_dir):
    nodes = [helper.make_node("LpNormalization", ["x"], ["l2"]),
             helper.make_node("LpNormalization", ["x"], ["l1"], p=1, axis=0)]
    x = np.random.default_rng(13).standard_normal((3, 4)).astype(F32)
    x[:, 1] = 0                      # a zero norm along axis 0 gives zeros
    check_against_onnxruntime(make_model(nodes, {"x": (F32, [3, 4])}, ["l2", "l1"]), cache_dir,
                              {"x": x})


def test_scatter_elements_scatter_nd_gather_nd(cache_dir):
    nodes = [helper.make_node("ScatterElements", ["data", "ei", "eu"], ["se"], axis=1),
             helper.make_node("ScatterElements", ["data", "ei", "eu"], ["se_add"], axis=1,
                              reduction="add"),
             helper.make_node("ScatterND", ["data", "ni", "nu"], ["snd"]),
             helper.make_node("ScatterND", ["data", "ni", "nu"], ["snd_max"], reduction="max"),
             helper.make_node("GatherND", ["data", "gi"], ["gnd"]),
             helper.make_node("GatherND", ["data", "bi"], ["gnd_batch"], batch_dims=1)]
    rng = np.random.default_rng(14)
    inits = {"ei": np.array([[0, -1], [2, 2], [1, 0]], np.int64),
             "ni": np.array([[2], [0]], np.int64),
             "gi": np.array([[1, 3], [-1, 0]], np.int64),
             "bi": np.array([[3], [0], [1]], np.int64)}
    feeds = {"data": rng.standard_normal((3, 4)).astype(F32),
             "eu": rng.standard_normal((3, 2)).astype(F32),
             "nu": rng.standard_normal((2, 4)).astype(F32)}
    model = make_model(nodes, {"data": (F32, [3, 4]), "eu": (F32, [3, 2]), "nu": (F32, [2, 4])},
                       ["se", "se_add", "snd", "snd_max", "gnd", "gnd_batch"],
                       initializers=inits, opset=18)
    check_against_onnxruntime(model, cache_dir, feeds)
