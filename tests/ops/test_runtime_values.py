"""Values that only exist at run time: an op whose output shape depends on a graph input (the
reduction axes, a Reshape shape, Slice starts...) takes the shape the model declares for its
output, reads the value at run time, and returns <P>_ERR_SHAPE when the value gives another
shape. Each family: the run-time value is really used (two values, two results), and a value
disagreeing with the declaration is the error, through the built C code."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild.errors import ModelError, UsageError
from helpers import check_against_onnxruntime, make_model

F32 = np.float32
DISAGREES = "a run-time shape value disagrees with the shape the model declares"


def run_cases(model, cache_dir, good: list, bad: list) -> None:
    """Each feed of ``good`` matches onnxruntime; each of ``bad`` is ERR_SHAPE."""
    for feeds in good:
        check_against_onnxruntime(model, cache_dir, feeds=feeds)
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    for feeds in bad:
        with pytest.raises(UsageError, match=DISAGREES):
            compiled.run(feeds)


# --- reductions -----------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceLogSumExp", "ReduceMax"])
def test_reduction_over_runtime_axes(op, cache_dir):
    # x [3,2,2] to [3,2]: axes [1] and [2] (or -1) give the declared shape, [0] does not
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=0)
    model = make_model([node], {"x": (F32, [3, 2, 2]), "axes": (np.int64, [1])},
                       {"y": (F32, [3, 2])}, opset=18)
    x = np.random.default_rng(0).standard_normal((3, 2, 2)).astype(F32)
    run_cases(model, cache_dir,
              [{"x": x, "axes": np.array([a], np.int64)} for a in (1, 2, -1)],
              [{"x": x, "axes": np.array([a], np.int64)} for a in (0, 3, -4)])


def test_reduction_keepdims_over_runtime_axes(cache_dir):
    # keepdims: the declared [1,4,1] fixes which axes of size > 1 are reduced
    node = helper.make_node("ReduceL2", ["x", "axes"], ["y"], keepdims=1)
    model = make_model([node], {"x": (F32, [2, 4, 3]), "axes": (np.int64, [2])},
                       {"y": (F32, [1, 4, 1])}, opset=18)
    x = np.random.default_rng(1).standard_normal((2, 4, 3)).astype(F32)
    run_cases(model, cache_dir,
              [{"x": x, "axes": np.array(a, np.int64)} for a in ([0, 2], [-1, 0])],
              [{"x": x, "axes": np.array(a, np.int64)} for a in ([0, 1], [2, 2])])


def test_runtime_axes_without_a_declared_shape_stay_an_error():
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)
    model = make_model([node], {"x": (F32, [3, 2, 2]), "axes": (np.int64, [1])}, ["y"], opset=18)
    with pytest.raises(ModelError, match="axes 'axes' must be known at compile time, or the "
                                         "model must declare a static shape for output 'y'"):
        nnbuild.translate(model)


def test_declared_shape_no_reduction_gives_is_refused():
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)
    model = make_model([node], {"x": (F32, [3, 2, 2]), "axes": (np.int64, [1])},
                       {"y": (F32, [5])}, opset=18)
    with pytest.raises(ModelError, match=r"declared output shape \[5\] is no reduction"):
        nnbuild.translate(model)


# --- the app and the IR -------------------------------------------------------------------------
def test_app_reports_the_error_in_one_line_and_exits_2(tmp_path):
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)
    model = make_model([node], {"x": (F32, [3, 2, 2]), "axes": (np.int64, [1])},
                       {"y": (F32, [3, 2])}, opset=18)
    result = nnbuild.build(model, str(tmp_path / "out"), name="red")
    np.save(tmp_path / "x.npy", np.ones((3, 2, 2), F32))
    runs = {}
    for a in (1, 0):
        np.save(tmp_path / "axes.npy", np.array([a], np.int64))
        runs[a] = subprocess.run([result.app, "--input", f"x={tmp_path / 'x.npy'}",
                                  "--input", f"axes={tmp_path / 'axes.npy'}",
                                  "--output-dir", str(tmp_path / f"y{a}")],
                                 capture_output=True, text=True)
    assert runs[1].returncode == 0, runs[1].stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y1" / "y.npy"), np.full((3, 2), 2, F32))
    assert runs[0].returncode == 2
    assert runs[0].stderr == f"red_app: error: run failed: {DISAGREES}\n"


def test_declared_shapes_survive_the_ir_round_trip():
    from nnbuild.ir import jsonio, text
    from nnbuild.ops.infer import infer_graph
    node = helper.make_node("ReduceMax", ["x", "axes"], ["y"], keepdims=0)
    model = make_model([node], {"x": (F32, [3, 2, 2]), "axes": (np.int64, [1])},
                       {"y": (F32, [3, 2])}, opset=18)
    graph = nnbuild.translate(model)
    for back in (text.parse_graph(text.format_graph(graph)),
                 jsonio.graph_from_json(jsonio.graph_to_json(graph))):
        infer_graph(back)                            # re-inference takes the declaration again
        assert back.types["y"].shape == (3, 2)
