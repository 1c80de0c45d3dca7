"""TopK, OneHot, Compress and NonZero match onnxruntime, with their size-deciding input as a
constant or (with a declared output shape) a run-time value that is checked when it runs."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from helpers import check_against_onnxruntime, make_model

F32 = np.float32


def test_topk_constant_k_largest_and_smallest_with_ties(cache_dir):
    nodes = [helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1),
             helper.make_node("TopK", ["x", "k"], ["sv", "si"], axis=-1, largest=0),
             helper.make_node("TopK", ["n", "k"], ["nv", "ni"], axis=0)]
    model = make_model(nodes, {"x": (F32, [3, 5, 4]), "n": (np.int64, [6, 2])},
                       ["v", "i", "sv", "si", "nv", "ni"], opset=11,
                       initializers={"k": np.array([3], np.int64)})
    rng = np.random.default_rng(0)
    feeds = {"x": rng.integers(-2, 3, (3, 5, 4)).astype(F32),       # many equal values
             "n": rng.integers(-3, 4, (6, 2)).astype(np.int64)}
    check_against_onnxruntime(model, cache_dir, feeds)


def test_topk_runtime_k_is_checked(cache_dir):
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"])
    model = make_model([node], {"x": (F32, [4, 6]), "k": (np.int64, [1])},
                       {"v": (F32, [4, 2]), "i": (np.int64, [4, 2])}, opset=11)
    x = np.random.default_rng(1).standard_normal((4, 6)).astype(F32)
    check_against_onnxruntime(model, cache_dir, {"x": x, "k": np.array([2], np.int64)})
    with pytest.raises(Exception, match="shape"):
        nnbuild.compile(model, cache_dir=cache_dir).run({"x": x, "k": np.array([3], np.int64)})


def test_onehot_runtime_depth_negative_and_out_of_range_indices(cache_dir):
    nodes = [helper.make_node("OneHot", ["idx", "depth", "values"], ["y"], axis=1),
             helper.make_node("OneHot", ["idx", "depth", "values"], ["last"])]
    model = make_model(nodes, {"idx": (np.int64, [2, 3]), "depth": (F32, []),
                               "values": (F32, [2])},
                       {"y": (F32, [2, 5, 3]), "last": (F32, [2, 3, 5])}, opset=11)
    feeds = {"idx": np.array([[0, -1, 4], [7, -6, 2]], np.int64),
             "depth": np.array(5, F32), "values": np.array([-1, 2], F32)}
    check_against_onnxruntime(model, cache_dir, feeds)


def test_compress_runtime_condition(cache_dir):
    nodes = [helper.make_node("Compress", ["x", "c"], ["y"], axis=1),
             helper.make_node("Compress", ["x", "c"], ["flat"])]
    model = make_model(nodes, {"x": (F32, [2, 4, 3]), "c": (np.bool_, [4])},
                       {"y": (F32, [2, 2, 3]), "flat": (F32, [2])}, opset=11)
    feeds = {"x": np.random.default_rng(2).standard_normal((2, 4, 3)).astype(F32),
             "c": np.array([True, False, False, True])}
    check_against_onnxruntime(model, cache_dir, feeds)
    with pytest.raises(Exception, match="shape"):
        nnbuild.compile(model, cache_dir=cache_dir).run(
            {"x": feeds["x"], "c": np.array([True, True, False, True])})


def test_nonzero_declared_count(cache_dir):
    node = helper.make_node("NonZero", ["x"], ["y"])
    x = np.array([[0, 1.5, 0], [2, 0, -3]], F32)
    model = make_model([node], {"x": (F32, [2, 3])}, {"y": (np.int64, [2, 3])}, opset=13)
    check_against_onnxruntime(model, cache_dir, {"x": x})
    with pytest.raises(Exception, match="shape"):
        nnbuild.compile(model, cache_dir=cache_dir).run({"x": np.ones((2, 3), F32)})


def test_nonzero_without_declared_shape_is_data_dependent():
    model = make_model([helper.make_node("NonZero", ["x"], ["y"])], {"x": (F32, [2, 3])}, ["y"])
    with pytest.raises(nnbuild.ModelError, match="declare a static shape"):
        nnbuild.translate(model)
