"""Shape ops match onnxruntime: Shape, Size, ConstantOfShape, Reshape, Flatten, Squeeze and
Unsqueeze, in their old (attribute) and new (input) opset forms; shape arithmetic chains fold
to static shapes; the generated C builds without warnings."""
import glob
import os

import numpy as np
import pytest
from onnx import helper

import nnbuild
from helpers import check_against_onnxruntime, make_model
from nnbuild.errors import ModelError
from nnbuild.ir.graph import is_splat

F32, I64 = np.float32, np.int64


def check(model, cache_dir, feeds=None, **options):
    """Compare with onnxruntime and require a warning-free build (-Wall -Wextra)."""
    out = check_against_onnxruntime(model, cache_dir, feeds, **options)
    compiled = nnbuild.compile(model, cache_dir=cache_dir, **options)
    for log in glob.glob(os.path.join(compiled.project_dir, "build", "*.log")):
        with open(log) as f:
            assert "warning:" not in f.read(), f"compiler warnings, see {log}"
    return out


@pytest.mark.parametrize("opset", [13, 15])
def test_shape_and_size_are_outputs(opset, cache_dir):
    attrs = {"start": 1, "end": -1} if opset >= 15 else {}
    nodes = [helper.make_node("Shape", ["x"], ["s"], **attrs),
             helper.make_node("Size", ["x"], ["n"])]
    check(make_model(nodes, {"x": (F32, [2, 3, 4, 5])}, ["s", "n"], opset=opset), cache_dir)


@pytest.mark.parametrize("opt_level", [0, 2])
def test_pytorch_flatten_chain_folds_to_a_static_reshape(opt_level, cache_dir):
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as torch.flatten(x, 1) exports."""
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
             helper.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"]),
             helper.make_node("Concat", ["batch1", "minus1"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["y"])]
    model = make_model(nodes, {"x": (F32, [2, 3, 4, 5])}, ["y"],
                       {"zero": np.array(0, I64), "axes0": np.array([0], I64),
                        "minus1": np.array([-1], I64)})
    graph = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    assert [n.op for n in graph.nodes] == ["Reshape"]
    assert graph.types["y"].shape == (2, 60)
    check(model, cache_dir, opt_level=opt_level)


def test_data_dependent_reshape_is_a_clear_error():
    model = make_model([helper.make_node("Reshape", ["x", "s"], ["y"])],
                       {"x": (F32, [2, 6]), "s": (I64, [2])}, ["y"])
    with pytest.raises(ModelError, match="must be known at compile time"):
        nnbuild.translate(model)


def test_reshape(cache_dir):
    """0 copies the input dimension, or is a real 0 with allowzero; -1 takes the rest."""
    shapes = [[0, -1], [2, 0, -1], [-1], [2, 2, 3, 2, 5]]
    nodes = [helper.make_node("Reshape", ["x", f"s{k}"], [f"y{k}"]) for k in range(len(shapes))]
    nodes.append(helper.make_node("Reshape", ["e", "s_zero"], ["z"], allowzero=1))
    model = make_model(nodes, {"x": (F32, [4, 15, 2]), "e": (F32, [0, 3])},
                       [f"y{k}" for k in range(len(shapes))] + ["z"],
                       {**{f"s{k}": np.array(s, I64) for k, s in enumerate(shapes)},
                        "s_zero": np.array([3, 0], I64)}, opset=14)
    check(model, cache_dir)


def test_reshape_opset1_shape_attribute():
    """Opset 1-4 Reshape carries its shape as an attribute; it becomes the constant input."""
    model = make_model([helper.make_node("Reshape", ["x"], ["y"], shape=[3, -1])],
                       {"x": (F32, [2, 3, 4])}, ["y"], opset=4)
    graph = nnbuild.translate(model)
    assert graph.types["y"].shape == (3, 8)
    assert len(graph.nodes[0].inputs) == 2 and graph.nodes[0].attrs == {}


def test_flatten(cache_dir):
    axes = [0, 1, 2, -1, 4]
    nodes = [helper.make_node("Flatten", ["x"], [f"y{k}"], axis=a) for k, a in enumerate(axes)]
    check(make_model(nodes, {"x": (F32, [2, 3, 4, 5])}, [f"y{k}" for k in range(len(axes))],
                     opset=13), cache_dir)


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_unsqueeze(opset, cache_dir):
    def node(op, x, y, axes):
        if opset >= 13:
            return helper.make_node(op, [x, f"{y}_axes"], [y])
        return helper.make_node(op, [x], [y], axes=axes)
    axes = {"sq": [1, -1], "un": [0, 3, -1]}
    nodes = [node("Squeeze", "x", "sq", axes["sq"]), node("Unsqueeze", "sq", "un", axes["un"]),
             helper.make_node("Squeeze", ["x"], ["all"])]
    inits = {f"{k}_axes": np.array(v, I64) for k, v in axes.items()} if opset >= 13 else {}
    model = make_model(nodes, {"x": (F32, [3, 1, 4, 1])}, ["sq", "un", "all"], inits, opset=opset)
    check(model, cache_dir)


def test_squeeze_of_a_wide_axis_is_an_error():
    model = make_model([helper.make_node("Squeeze", ["x", "a"], ["y"])], {"x": (F32, [3, 2])},
                       ["y"], {"a": np.array([1], I64)})
    with pytest.raises(ModelError, match="cannot squeeze axis 1 of size 2"):
        nnbuild.translate(model)


@pytest.mark.parametrize("value", [None, np.array([7], I64), np.array([2.5], F32),
                                   np.array([1], np.int32), np.array([True])])
def test_constant_of_shape_from_a_runtime_shape(value, cache_dir):
    """At -O0 the fill is a loop (default: float 0)."""
    attrs = {} if value is None else {"value": helper.make_tensor(
        "v", helper.np_dtype_to_tensor_dtype(value.dtype), [1], value)}
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("ConstantOfShape", ["s"], ["y"], **attrs)]
    check(make_model(nodes, {"x": (F32, [2, 3, 5])}, ["y"]), cache_dir, opt_level=0)


def test_constant_of_shape_folds_to_a_compact_splat():
    value = helper.make_tensor("v", 1, [1], [0.5])
    model = make_model([helper.make_node("ConstantOfShape", ["s"], ["c"], value=value),
                        helper.make_node("Add", ["x", "c"], ["y"])],
                       {"x": (F32, [1000, 1000])}, ["y"], {"s": np.array([1000, 1000], I64)})
    graph = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    assert is_splat(graph.constants["c"]) and graph.constants["c"].shape == (1000, 1000)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int8, np.uint8, np.int32, np.bool_])
def test_views_for_every_element_type(dtype, cache_dir):
    nodes = [helper.make_node("Reshape", ["x", "s"], ["r"]),
             helper.make_node("Flatten", ["x"], ["f"], axis=2),
             helper.make_node("Unsqueeze", ["x", "a"], ["u"])]
    model = make_model(nodes, {"x": (dtype, [2, 3, 4])}, ["r", "f", "u"],
                       {"s": np.array([4, -1], I64), "a": np.array([1], I64)})
    check(model, cache_dir)
