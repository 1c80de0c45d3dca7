"""ai.onnx.ml ops with numbers: ArrayFeatureExtractor, Binarizer, LabelEncoder and TreeEnsemble
match onnxruntime; string tensors are refused with a clear error."""
import numpy as np
import pytest
from onnx import helper, numpy_helper

import nnbuild
from helpers import check_against_onnxruntime, make_model
from nnbuild.errors import ModelError

F32 = np.float32
ML = "ai.onnx.ml"


def ml_model(nodes, inputs, outputs, ml_opset, initializers=None):
    model = make_model(nodes, inputs, outputs, initializers)
    model.opset_import.append(helper.make_opsetid(ML, ml_opset))
    return model


def test_array_feature_extractor_runtime_indices(cache_dir):
    node = helper.make_node("ArrayFeatureExtractor", ["x", "i"], ["z"], domain=ML)
    model = ml_model([node], {"x": (F32, [2, 3, 5]), "i": (np.int64, [4])}, ["z"], 1)
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 3, 5)).astype(F32),
             "i": np.array([4, 0, 0, 2], np.int64)}
    check_against_onnxruntime(model, cache_dir, feeds)


def test_array_feature_extractor_index_out_of_range_is_an_error(cache_dir):
    node = helper.make_node("ArrayFeatureExtractor", ["x", "i"], ["z"], domain=ML)
    model = ml_model([node], {"x": (F32, [3, 4]), "i": (np.int64, [1])}, ["z"], 1)
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    with pytest.raises(Exception, match="shape"):
        compiled.run({"x": np.zeros((3, 4), F32), "i": np.array([4], np.int64)})


def test_binarizer(cache_dir):
    nodes = [helper.make_node("Binarizer", ["x"], ["y"], domain=ML, threshold=0.25),
             helper.make_node("Binarizer", ["x"], ["z"], domain=ML)]
    model = ml_model(nodes, {"x": (F32, [3, 4])}, ["y", "z"], 1)
    check_against_onnxruntime(model, cache_dir)


def test_label_encoder_numbers(cache_dir):
    nodes = [helper.make_node("LabelEncoder", ["i"], ["f"], domain=ML, keys_int64s=[5, -3, 2, 0],
                              values_floats=[0.5, 1.5, 2.5, 3.5], default_float=-1.0),
             helper.make_node("LabelEncoder", ["x"], ["k"], domain=ML,
                              keys_floats=[1.0, -2.0, 3.0], values_int64s=[10, 20, 30])]
    model = ml_model(nodes, {"i": (np.int64, [2, 6]), "x": (F32, [7])}, ["f", "k"], 2)
    feeds = {"i": np.array([[5, -3, 2, 0, 1, 7], [0, 0, 5, 2, -3, 9]], np.int64),
             "x": np.array([1, -2, 3, 0, 3, 2.5, -2], F32)}
    check_against_onnxruntime(model, cache_dir, feeds)


def test_label_encoder_strings_are_refused():
    node = helper.make_node("LabelEncoder", ["i"], ["s"], domain=ML, keys_int64s=[1, 2],
                            values_strings=["a", "b"])
    model = ml_model([node], {"i": (np.int64, [3])}, ["s"], 2)
    with pytest.raises(ModelError, match="strings"):
        nnbuild.translate(model)


def _tree_attrs(dtype):
    """Two trees over 3 features, 2 targets: every comparison mode, a set membership node and
    a missing value that goes the true way."""
    modes = [0, 1, 2, 3, 4, 5, 6]
    return dict(
        nodes_featureids=[0, 1, 2, 0, 1, 2, 0], nodes_modes=numpy_helper.from_array(
            np.array(modes, np.uint8), "nodes_modes"),
        nodes_splits=numpy_helper.from_array(np.array([0.0, 0.5, -0.5, 1.0, 0.0, 0.25, 0.0],
                                                      dtype), "nodes_splits"),
        nodes_truenodeids=[1, 2, 0, 4, 5, 2, 4], nodes_trueleafs=[0, 0, 1, 0, 1, 1, 1],
        nodes_falsenodeids=[3, 1, 1, 6, 3, 3, 5], nodes_falseleafs=[0, 1, 1, 0, 1, 1, 1],
        nodes_missing_value_tracks_true=[0, 1, 0, 0, 0, 0, 0],
        membership_values=numpy_helper.from_array(np.array([1.0, 2.0, np.nan], dtype),
                                                  "membership_values"),
        leaf_targetids=[0, 1, 0, 1, 1, 0], leaf_weights=numpy_helper.from_array(
            np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], dtype), "leaf_weights"),
        tree_roots=[0, 3], n_targets=2)


@pytest.mark.parametrize("aggregate", [0, 1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tree_ensemble(cache_dir, aggregate, dtype):
    node = helper.make_node("TreeEnsemble", ["x"], ["y"], domain=ML, aggregate_function=aggregate,
                            post_transform=0, **_tree_attrs(dtype))
    model = ml_model([node], {"x": (dtype, [16, 3])}, ["y"], 5)
    x = np.random.default_rng(3).choice([-1.0, 0.0, 0.25, 0.5, 1.0, 2.0, np.nan], (16, 3))
    check_against_onnxruntime(model, cache_dir, {"x": x.astype(dtype)})
