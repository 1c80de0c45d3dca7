"""Normalization ops match onnxruntime on random inputs: BatchNormalization across the opsets
where its form changed (7 with `spatial`, 9, 14, 15), InstanceNormalization,
LayerNormalization (axis, optional bias, Mean / InvStdDev outputs), LRN, and Softmax /
LogSoftmax both before opset 13 (flattened to 2-D at axis) and from 13 on (one axis)."""
import numpy as np
import pytest
from onnx import helper

from onnx.reference import ReferenceEvaluator

import nnbuild
from nnbuild.testing import assert_close
from helpers import check_against_onnxruntime, make_model, random_inputs

F32 = np.float32


def check_against_onnx_reference(model, cache_dir):
    """For forms onnxruntime has no kernel for: compare with the ONNX reference evaluator."""
    feeds = random_inputs(model)
    expected = ReferenceEvaluator(model).run(None, feeds)
    actual = nnbuild.compile(model, cache_dir=cache_dir).run(feeds)
    for (name, got), want in zip(actual.items(), expected):
        assert_close(got, want, what=f"output {name}")


def params(*shapes, seed=7, positive=()):
    """Seeded parameters named p0, p1, ...; those in ``positive`` are > 0 (variances)."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, shape in enumerate(shapes):
        v = rng.standard_normal(shape).astype(F32)
        out[f"p{i}"] = np.abs(v) + F32(0.5) if i in positive else v
    return out


# --- BatchNormalization ----------------------------------------------------------------------
@pytest.mark.parametrize("opset,attrs", [(7, {}), (7, {"spatial": 1}), (9, {}),
                                         (14, {"training_mode": 0}), (15, {})])
def test_batchnorm_opsets(opset, attrs, cache_dir):
    node = helper.make_node("BatchNormalization", ["x", "p0", "p1", "p2", "p3"], ["y"],
                            epsilon=1e-3, **attrs)
    model = make_model([node], {"x": (F32, [2, 4, 5, 3])}, ["y"],
                       params([4], [4], [4], [4], positive=(3,)), opset=opset)
    check_against_onnxruntime(model, cache_dir)


@pytest.mark.parametrize("constant_params", [True, False])
def test_batchnorm_opset7_per_feature(constant_params, cache_dir):
    # spatial=0: statistics per feature, parameters shaped C x D1 x D2
    node = helper.make_node("BatchNormalization", ["x", "p0", "p1", "p2", "p3"], ["y"],
                            spatial=0)
    values = params([3, 4, 2], [3, 4, 2], [3, 4, 2], [3, 4, 2], positive=(3,))
    inputs = {"x": (F32, [2, 3, 4, 2])}
    if not constant_params:
        inputs.update({k: (F32, v.shape) for k, v in values.items()})
    model = make_model([node], inputs, ["y"], values if constant_params else None, opset=7)
    feeds = {"x": np.random.default_rng(1).standard_normal((2, 3, 4, 2)).astype(F32)}
    if not constant_params:
        feeds.update(values)
    check_against_onnxruntime(model, cache_dir, feeds)


def test_batchnorm_opset6_is_test(cache_dir):
    node = helper.make_node("BatchNormalization", ["x", "p0", "p1", "p2", "p3"], ["y"],
                            is_test=1, spatial=1, momentum=0.8)
    model = make_model([node], {"x": (F32, [2, 4, 3])}, ["y"],
                       params([4], [4], [4], [4], positive=(3,)), opset=6)
    check_against_onnx_reference(model, cache_dir)


def test_batchnorm_2d_input_and_runtime_params(cache_dir):
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])
    shapes = {"x": (F32, [3, 6]), "s": (F32, [6]), "b": (F32, [6]), "m": (F32, [6]),
              "v": (F32, [6])}
    model = make_model([node], shapes, ["y"], opset=15)
    rng = np.random.default_rng(2)
    feeds = {k: rng.standard_normal(s).astype(F32) for k, (_, s) in shapes.items()}
    feeds["v"] = np.abs(feeds["v"]) + F32(0.1)
    check_against_onnxruntime(model, cache_dir, feeds)


def test_batchnorm_training_mode_uses_batch_statistics(cache_dir):
    """training_mode=1: mean and (biased) variance of the batch per channel, and the running
    statistics input * momentum + batch * (1 - momentum), as ONNX's reference computes them."""
    nodes = [helper.make_node("BatchNormalization", ["x", "p0", "p1", "p2", "p3"],
                              ["y", "running_mean", "running_var"], training_mode=1,
                              momentum=0.8, epsilon=1e-3),
             helper.make_node("BatchNormalization", ["x", "p0", "p1", "p2", "p3"], ["y_only"],
                              training_mode=1)]
    model = make_model(nodes, {"x": (F32, [2, 4, 3, 5])},
                       ["y", "running_mean", "running_var", "y_only"],
                       params([4], [4], [4], [4], positive=(3,)), opset=15)
    feeds = random_inputs(model)
    expected = ReferenceEvaluator(model).run(None, feeds)
    actual = nnbuild.compile(model, cache_dir=cache_dir).run(feeds)
    for name, want in zip(["y", "running_mean", "running_var", "y_only"], expected):
        assert_close(actual[name], want, what=name)


# --- InstanceNormalization, LayerNormalization -----------------------------------------------
def test_instance_normalization(cache_dir):
    nodes = [helper.make_node("InstanceNormalization", ["x", "p0", "p1"], ["y"], epsilon=1e-4),
             helper.make_node("InstanceNormalization", ["v", "p2", "p3"], ["w"])]
    model = make_model(nodes, {"x": (F32, [2, 3, 5, 4]), "v": (F32, [1, 4, 7])}, ["y", "w"],
                       params([3], [3], [4], [4]))
    check_against_onnxruntime(model, cache_dir)


@pytest.mark.parametrize("axis", [-1, 1, -2])
def test_layer_normalization(axis, cache_dir):
    shape = [2, 3, 4, 5]
    normalized = shape[axis:]
    nodes = [helper.make_node("LayerNormalization", ["x", "p0", "p1"], ["y"], axis=axis,
                              epsilon=1e-3),
             helper.make_node("LayerNormalization", ["x", "p0"], ["z", "mean", "inv"],
                              axis=axis)]
    model = make_model(nodes, {"x": (F32, shape)}, ["y", "z", "mean", "inv"],
                       params(normalized, normalized))
    check_against_onnxruntime(model, cache_dir)


def test_layer_normalization_broadcast_scale(cache_dir):
    node = helper.make_node("LayerNormalization", ["x", "p0", "p1"], ["y"], axis=-2)
    model = make_model([node], {"x": (F32, [2, 3, 4])}, ["y"], params([1, 4], [3, 1]))
    check_against_onnxruntime(model, cache_dir)


# --- LRN -------------------------------------------------------------------------------------
@pytest.mark.parametrize("attrs", [dict(size=5), dict(size=3, alpha=0.002, beta=0.6, bias=2.0)])
def test_lrn(attrs, cache_dir):
    node = helper.make_node("LRN", ["x"], ["y"], **attrs)
    check_against_onnxruntime(make_model([node], {"x": (F32, [2, 7, 4, 3])}, ["y"]), cache_dir)


def test_lrn_even_size(cache_dir):
    # onnxruntime takes odd sizes only (and onnx's reference evaluator sums over the wrong
    # axis), so the spec's formula is written out: channels c - 1 .. c + 2 for size 4
    node = helper.make_node("LRN", ["x"], ["y"], size=4, alpha=0.01, beta=0.5, bias=1.5)
    model = make_model([node], {"x": (F32, [2, 7, 3, 2])}, ["y"])
    x = random_inputs(model)["x"]
    squares = np.pad(x.astype(np.float64) ** 2, [(0, 0), (1, 2), (0, 0), (0, 0)])
    window = sum(squares[:, k:k + 7] for k in range(4))
    expected = (x / (1.5 + 0.01 / 4 * window) ** 0.5).astype(F32)
    assert_close(nnbuild.compile(model, cache_dir=cache_dir).run({"x": x})["y"], expected)


# --- Softmax, LogSoftmax ---------------------------------------------------------------------
@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_axes(op, opset, cache_dir):
    # opset 11 normalises over the dims from axis on, flattened; 13 over the one axis
    axes = [None, 0, 1, 2, -1, -3]
    nodes = [helper.make_node(op, ["x"], [f"y{k}"], **({} if a is None else {"axis": a}))
             for k, a in enumerate(axes)]
    model = make_model(nodes, {"x": (F32, [2, 3, 4, 5])}, [f"y{k}" for k in range(len(axes))],
                       opset=opset)
    check_against_onnxruntime(model, cache_dir)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_is_numerically_stable(op, cache_dir):
    model = make_model([helper.make_node(op, ["x"], ["y"])], {"x": (F32, [3, 1000])}, ["y"])
    rng = np.random.default_rng(4)
    feeds = {"x": (rng.standard_normal((3, 1000)) * 30 + np.array([[0], [500], [-500]]))
             .astype(F32)}
    result = check_against_onnxruntime(model, cache_dir, feeds)
    assert np.all(np.isfinite(result["y"]))


def test_softmax_canonical_form():
    model = make_model([helper.make_node("Softmax", ["x"], ["y"])], {"x": (F32, [2, 3, 4])},
                       ["y"], opset=11)
    node = nnbuild.translate(model).nodes[0]
    assert node.attrs == {"axis": 1, "coerce_2d": 1}


def test_rms_normalization(cache_dir):
    nodes = [helper.make_node("RMSNormalization", ["x", "w_last"], ["last"]),
             helper.make_node("RMSNormalization", ["x", "w_two"], ["two"], axis=1, epsilon=0.1)]
    model = make_model(nodes, {"x": (np.float32, [2, 3, 5]), "w_last": (np.float32, [5]),
                               "w_two": (np.float32, [3, 5])}, ["last", "two"], opset=23)
    model.ir_version = 10
    feeds = {k: np.random.default_rng(10).standard_normal(s).astype(np.float32)
             for k, s in (("x", (2, 3, 5)), ("w_last", (5,)), ("w_two", (3, 5)))}
    expected = ReferenceEvaluator(model).run(None, feeds)      # onnxruntime lacks opset 23 here
    actual = nnbuild.compile(model, cache_dir=cache_dir).run(feeds)
    for name, want in zip(["last", "two"], expected):
        assert_close(actual[name], want, what=name)


def test_softmax_float64_loops(cache_dir):
    nodes = [helper.make_node("Softmax", ["x"], ["soft"], axis=1),
             helper.make_node("LogSoftmax", ["x"], ["log"])]
    check_against_onnxruntime(make_model(nodes, {"x": (np.float64, [2, 4, 3])}, ["soft", "log"],
                                         opset=13), cache_dir)
