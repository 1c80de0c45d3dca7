"""Elementwise ops match onnxruntime on random inputs, with numpy broadcasting and every
element type the op takes."""
import numpy as np
import pytest
from onnx import helper

from helpers import check_against_onnxruntime, make_model

F32 = np.float32

UNARY = ["Relu", "Abs", "Neg", "Exp", "Sqrt", "Tanh", "Erf", "Sigmoid", "Softplus", "Softsign",
         "LeakyRelu", "Elu", "Selu", "HardSigmoid", "HardSwish", "Floor", "Ceil", "Sin", "Cos",
         "Reciprocal"]


@pytest.mark.parametrize("op", UNARY)
def test_unary_f32(op, cache_dir):
    model = make_model([helper.make_node(op, ["x"], ["y"])], {"x": (F32, [2, 3, 5])}, ["y"])
    feeds = {"x": np.random.default_rng(1).standard_normal((2, 3, 5)).astype(F32)}
    if op in ("Sqrt", "Log"):
        feeds["x"] = np.abs(feeds["x"]) + 0.1
    check_against_onnxruntime(model, cache_dir, feeds)


def test_unary_attributes(cache_dir):
    nodes = [helper.make_node("LeakyRelu", ["x"], ["a"], alpha=0.3),
             helper.make_node("Elu", ["x"], ["b"], alpha=0.7),
             helper.make_node("HardSigmoid", ["x"], ["c"], alpha=0.3, beta=0.4)]
    check_against_onnxruntime(make_model(nodes, {"x": (F32, [4, 6])}, ["a", "b", "c"]), cache_dir)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
@pytest.mark.parametrize("shapes", [([2, 3, 4], [2, 3, 4]), ([2, 3, 4], [4]), ([2, 1, 4], [3, 1]),
                                    ([1], [2, 3]), ([2, 3, 1, 5], [1, 3, 4, 1])])
def test_binary_broadcasting(op, shapes, cache_dir):
    model = make_model([helper.make_node(op, ["a", "b"], ["y"])],
                       {"a": (F32, shapes[0]), "b": (F32, shapes[1])}, ["y"])
    check_against_onnxruntime(model, cache_dir)


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_integer_arithmetic(dtype, cache_dir):
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Mul", ["a", "b"], ["m"]),
             helper.make_node("Sub", ["a", "b"], ["d"])]
    check_against_onnxruntime(make_model(nodes, {"a": (dtype, [3, 4]), "b": (dtype, [4])},
                                         ["s", "m", "d"]), cache_dir)


def test_variadic_sum_mean_max(cache_dir):
    nodes = [helper.make_node("Sum", ["a", "b", "c"], ["s"]),
             helper.make_node("Mean", ["a", "b", "c"], ["m"]),
             helper.make_node("Max", ["a", "b", "c"], ["x"])]
    shapes = {"a": (F32, [2, 3]), "b": (F32, [3]), "c": (F32, [2, 1])}
    check_against_onnxruntime(make_model(nodes, shapes, ["s", "m", "x"]), cache_dir)


def test_pow_prelu_where_clip(cache_dir):
    nodes = [helper.make_node("Pow", ["p", "e"], ["pw"]),
             helper.make_node("PRelu", ["a", "slope"], ["pr"]),
             helper.make_node("Greater", ["a", "b"], ["gt"]),
             helper.make_node("Where", ["gt", "a", "b"], ["wh"]),
             helper.make_node("Clip", ["a", "lo", "hi"], ["cl"])]
    model = make_model(nodes, {"a": (F32, [2, 3, 4]), "b": (F32, [4])}, ["pw", "pr", "gt", "wh", "cl"],
                       {"p": np.abs(np.random.default_rng(2).standard_normal((2, 3)).astype(F32)) + 0.5,
                        "e": np.array([1.5, 2.0, 0.5], F32),
                        "slope": np.array([[0.1], [0.2], [0.3]], F32),
                        "lo": np.array(-0.5, F32), "hi": np.array(0.7, F32)})
    check_against_onnxruntime(model, cache_dir)


def test_clip_opset6_attributes(cache_dir):
    model = make_model([helper.make_node("Clip", ["x"], ["y"], min=-0.2, max=0.3)],
                       {"x": (F32, [10])}, ["y"], opset=6)
    check_against_onnxruntime(model, cache_dir)


@pytest.mark.parametrize("to,np_to", [(7, np.int64), (1, np.float32), (9, np.bool_), (6, np.int32)])
def test_cast(to, np_to, cache_dir):
    model = make_model([helper.make_node("Cast", ["x"], ["y"], to=to)], {"x": (F32, [3, 4])}, ["y"])
    feeds = {"x": (np.random.default_rng(3).standard_normal((3, 4)) * 4).astype(F32)}
    check_against_onnxruntime(model, cache_dir, feeds)


def test_logic_and_comparisons(cache_dir):
    B = np.bool_
    nodes = [helper.make_node("And", ["p", "q"], ["and"]), helper.make_node("Or", ["p", "q"], ["or"]),
             helper.make_node("Xor", ["p", "q"], ["xor"]), helper.make_node("Not", ["p"], ["not"]),
             helper.make_node("Equal", ["i", "j"], ["eq"]), helper.make_node("Less", ["i", "j"], ["lt"])]
    model = make_model(nodes, {"p": (B, [2, 3]), "q": (B, [3]), "i": (np.int64, [2, 3]),
                               "j": (np.int64, [2, 3])}, ["and", "or", "xor", "not", "eq", "lt"])
    check_against_onnxruntime(model, cache_dir)


def test_cast_to_float16_and_back(cache_dir):
    nodes = [helper.make_node("Cast", ["x"], ["h"], to=10), helper.make_node("Cast", ["h"], ["y"], to=1)]
    model = make_model(nodes, {"x": (F32, [3, 7])}, ["h", "y"])
    check_against_onnxruntime(model, cache_dir)


@pytest.mark.parametrize("seed", [None, 0, 12345])
def test_training_dropout_draws_the_reference_mask(seed, cache_dir):
    """training_mode and ratio are run-time inputs; with training on, the mask is numpy's
    RandomState(seed) draw (seed 0 when absent) and kept values scale by 1 / (1 - ratio)."""
    from onnx.reference import ReferenceEvaluator
    import nnbuild
    attrs = {} if seed is None else {"seed": seed}
    nodes = [helper.make_node("Dropout", ["x", "r", "t"], ["y", "mask"], **attrs),
             helper.make_node("Dropout", ["x", "r", "t"], ["y_only"], **attrs)]
    model = make_model(nodes, {"x": (F32, [3, 700]), "r": (F32, []), "t": (np.bool_, [])},
                       ["y", "mask", "y_only"], opset=13)
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    x = np.random.default_rng(5).standard_normal((3, 700)).astype(F32)
    reference_model = make_model(nodes, {"x": (F32, [3, 700]), "r": (F32, []),
                                         "t": (np.bool_, [])}, ["y", "mask", "y_only"],
                                 opset=13)
    if seed is None:     # the reference draws an unseeded mask; ours is seed 0's
        for node in reference_model.graph.node:
            node.attribute.append(helper.make_attribute("seed", 0))
    for ratio, training in ((0.75, True), (0.3, True), (0.5, False), (0.0, True)):
        feeds = {"x": x, "r": np.array(ratio, F32), "t": np.array(training)}
        expected = ReferenceEvaluator(reference_model).run(None, feeds)
        actual = compiled.run(feeds)
        for name, want in zip(["y", "mask", "y_only"], expected):
            np.testing.assert_array_equal(actual[name], want, err_msg=f"{name} {ratio} {training}")
