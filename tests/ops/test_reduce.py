"""Reductions match onnxruntime on random inputs: every Reduce op over single, several,
negative and all axes, with and without keepdims; axes as an attribute (older opsets) and as
an input (ReduceSum from 13, the others from 18); noop_with_empty_axes; integer inputs."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild.errors import ModelError
from helpers import check_against_onnxruntime, make_model

F32 = np.float32
OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare",
       "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"]
# (axes, keepdims): None = every axis
AXES = [([1], 1), ([0, 2], 1), ([-1], 0), ([1, 2], 0), ([0, 1, 2, 3], 1), (None, 0)]


def axes_as_input(op, opset):
    return opset >= (13 if op == "ReduceSum" else 18)


def reduce_nodes(op, opset, cases, **attrs):
    """One node per (axes, keepdims) case; returns nodes, initializers, output names."""
    nodes, inits, outs = [], {}, []
    for k, (axes, keepdims) in enumerate(cases):
        inputs, extra = ["x"], dict(attrs)
        if axes is not None and axes_as_input(op, opset):
            inits[f"axes{k}"] = np.array(axes, np.int64)
            inputs.append(f"axes{k}")
        elif axes is not None:
            extra["axes"] = axes
        nodes.append(helper.make_node(op, inputs, [f"y{k}"], keepdims=keepdims, **extra))
        outs.append(f"y{k}")
    return nodes, inits, outs


def positive_feeds(shape, dtype=F32):
    rng = np.random.default_rng(5)
    return {"x": (np.abs(rng.standard_normal(shape)) + 0.2).astype(dtype)}


@pytest.mark.parametrize("opset", [11, 18])
@pytest.mark.parametrize("op", OPS)
def test_reduce_f32(op, opset, cache_dir):
    nodes, inits, outs = reduce_nodes(op, opset, AXES)
    model = make_model(nodes, {"x": (F32, [3, 4, 5, 2])}, outs, inits, opset=opset)
    feeds = positive_feeds([3, 4, 5, 2]) if op in ("ReduceLogSum", "ReduceProd") else None
    check_against_onnxruntime(model, cache_dir, feeds)


@pytest.mark.parametrize("opset", [11, 13])
def test_reduce_sum_axes_attribute_then_input(opset, cache_dir):
    nodes, inits, outs = reduce_nodes("ReduceSum", opset, [([0, 2], 0), ([-2], 1)])
    model = make_model(nodes, {"x": (F32, [4, 3, 6])}, outs, inits, opset=opset)
    check_against_onnxruntime(model, cache_dir)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceSumSquare", "ReduceL2"])
def test_empty_axes(op, cache_dir):
    # an empty axes input, or none: every axis, or with noop_with_empty_axes=1 no reduction
    opset = 13 if op == "ReduceSum" else 18
    nodes = []
    for noop in (0, 1):
        nodes += [helper.make_node(op, ["x", "empty"], [f"a{noop}"], noop_with_empty_axes=noop),
                  helper.make_node(op, ["x"], [f"b{noop}"], noop_with_empty_axes=noop, keepdims=0)]
    model = make_model(nodes, {"x": (F32, [2, 3, 4])}, ["a0", "b0", "a1", "b1"],
                       {"empty": np.array([], np.int64)}, opset=opset)
    check_against_onnxruntime(model, cache_dir)


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_reduce_integers(dtype, cache_dir):
    nodes = []
    for op in ("ReduceSum", "ReduceMax", "ReduceMin"):
        nodes += [helper.make_node(op, ["x", "axes"], [f"{op}_1"], keepdims=0),
                  helper.make_node(op, ["x"], [f"{op}_all"])]
    model = make_model(nodes, {"x": (dtype, [3, 4, 5])}, [n.output[0] for n in nodes],
                       {"axes": np.array([1], np.int64)}, opset=18)
    check_against_onnxruntime(model, cache_dir)


def test_large_spatial_mean(cache_dir):
    # the head of a classifier: mean over H and W of an N x C x H x W map
    nodes, inits, outs = reduce_nodes("ReduceMean", 18, [([2, 3], 1), ([1], 0)])
    model = make_model(nodes, {"x": (F32, [1, 256, 14, 14])}, outs, inits, opset=18)
    check_against_onnxruntime(model, cache_dir)


def test_generated_loop_is_specialised(tmp_path):
    nodes, inits, outs = reduce_nodes("ReduceMean", 18, [([2, 3], 0)])
    model = make_model(nodes, {"x": (F32, [1, 8, 7, 7])}, outs, inits, opset=18)
    project = nnbuild.generate(model, str(tmp_path / "out"))
    source = project.files["src/model.c"].decode()
    assert "for (size_t i0 = 0; i0 < 8; ++i0) {" in source
    assert "acc += (double)x[i0 * 49 + r0];" in source
    assert "y[i0] = (float)(acc / 49);" in source


def test_runtime_axes_are_a_clear_error():
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"])
    model = make_model([node], {"x": (F32, [2, 3]), "axes": (np.int64, [1])}, ["y"], opset=13)
    with pytest.raises(ModelError, match="axes .* must be known at compile time"):
        nnbuild.translate(model)


def test_unsupported_dtype_is_a_clear_error():
    node = helper.make_node("ReduceMean", ["x"], ["y"])
    model = make_model([node], {"x": (np.int32, [2, 3])}, ["y"], opset=18)
    with pytest.raises(ModelError, match=r"ReduceMean.*i32 is not supported \(supported: f32, f64, f16, bf16\)"):
        nnbuild.translate(model)


def test_computed_axes_are_folded_first(cache_dir, tmp_path):
    nodes = [helper.make_node("Identity", ["axes"], ["picked"]),
             helper.make_node("ReduceSum", ["x", "picked"], ["y"])]
    model = make_model(nodes, {"x": (F32, [2, 3])}, ["y"], {"axes": np.array([1], np.int64)},
                       opset=13)
    check_against_onnxruntime(model, cache_dir)                 # -O2 folds Identity(@axes)
    check_against_onnxruntime(model, cache_dir, opt_level=0)    # -O0: inference knows them


def test_max_min_of_bool_and_narrow_integers(cache_dir):
    nodes = [helper.make_node("ReduceMax", ["u"], ["umax"], axes=[0]),
             helper.make_node("ReduceMin", ["i"], ["imin"], keepdims=0, axes=[1])]
    model = make_model(nodes, {"u": (np.uint8, [3, 4]), "i": (np.int8, [3, 4])},
                       ["umax", "imin"], opset=13)
    check_against_onnxruntime(model, cache_dir)
    # bool (opset 20; this onnxruntime lacks it): max is any, min is all
    nodes = [helper.make_node("ReduceMax", ["b", "axes"], ["any"]),
             helper.make_node("ReduceMin", ["b", "axes"], ["all"])]
    model = make_model(nodes, {"b": (np.bool_, [3, 4])}, ["any", "all"],
                       {"axes": np.array([1], np.int64)}, opset=20)
    b = np.array([[0, 0, 0, 0], [1, 0, 1, 0], [1, 1, 1, 1]], bool)
    out = nnbuild.compile(model, cache_dir=cache_dir).run({"b": b})
    np.testing.assert_array_equal(out["any"], b.any(axis=1, keepdims=True))
    np.testing.assert_array_equal(out["all"], b.all(axis=1, keepdims=True))


@pytest.mark.parametrize("op", ["ReduceL1", "ReduceSum", "ReduceLogSumExp", "ReduceMax"])
def test_empty_set_builds_without_warnings(op, cache_dir):
    # reducing over a zero-length axis: the identity, and no loop over nothing in the C
    model = make_model([helper.make_node(op, ["x", "axes"], ["y"])], {"x": (F32, [2, 0, 4])},
                       ["y"], {"axes": np.array([1], np.int64)}, opset=18)
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    y = compiled.run({"x": np.zeros((2, 0, 4), F32)})["y"]
    expected = {"ReduceL1": 0, "ReduceSum": 0, "ReduceLogSumExp": -np.inf, "ReduceMax": -np.inf}
    np.testing.assert_array_equal(y, np.full((2, 1, 4), expected[op], F32))
    import glob
    import os
    for log in glob.glob(os.path.join(compiled.project_dir, "build", "*.log")):
        assert "warning:" not in open(log).read()


def test_half_types_load_as_float(cache_dir):
    nodes = [helper.make_node("ReduceMax", ["x"], ["max"], axes=[1]),
             helper.make_node("ReduceSum", ["x", "axes"], ["sum"])]
    model = make_model(nodes, {"x": (np.float16, [3, 5])}, ["max", "sum"],
                       {"axes": np.array([1], np.int64)}, opset=13)
    check_against_onnxruntime(model, cache_dir)
