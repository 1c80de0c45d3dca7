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


# --- shapes: Reshape, Squeeze, Unsqueeze, ConstantOfShape ----------------------------------------
def test_reshape_to_a_runtime_shape(cache_dir):
    node = helper.make_node("Reshape", ["x", "shape"], ["y"])
    model = make_model([node], {"x": (F32, [2, 3, 4]), "shape": (np.int64, [3])},
                       {"y": (F32, [4, 3, 2])}, opset=14)
    x = np.arange(24, dtype=F32).reshape(2, 3, 4)
    run_cases(model, cache_dir,
              [{"x": x, "shape": np.array(s, np.int64)} for s in ([4, 3, 2], [4, -1, 2])],
              [{"x": x, "shape": np.array(s, np.int64)} for s in ([2, 3, 4], [-1, -1, 2])])


def test_squeeze_and_unsqueeze_runtime_axes(cache_dir):
    nodes = [helper.make_node("Squeeze", ["x", "sq"], ["s"]),
             helper.make_node("Unsqueeze", ["s", "unsq"], ["y"])]
    model = make_model(nodes, {"x": (F32, [1, 3, 1, 2]), "sq": (np.int64, [2]),
                               "unsq": (np.int64, [1])},
                       {"s": (F32, [3, 2]), "y": (F32, [3, 1, 2])}, opset=13)
    x = np.arange(6, dtype=F32).reshape(1, 3, 1, 2)
    feeds = lambda sq, unsq: {"x": x, "sq": np.array(sq, np.int64),
                              "unsq": np.array(unsq, np.int64)}
    run_cases(model, cache_dir, [feeds([0, 2], [1]), feeds([-2, 0], [-2])],
              [feeds([0, 1], [1]), feeds([0, 0], [1]), feeds([0, 2], [0])])


def test_constant_of_runtime_shape(cache_dir):
    node = helper.make_node("ConstantOfShape", ["shape"], ["y"],
                            value=helper.make_tensor("v", 1, [1], [2.5]))
    model = make_model([node], {"shape": (np.int64, [2])}, {"y": (F32, [2, 3])}, opset=13)
    run_cases(model, cache_dir, [{"shape": np.array([2, 3], np.int64)}],
              [{"shape": np.array([3, 2], np.int64)}])


# --- movement: Split, Slice, Tile, Expand --------------------------------------------------------
def test_split_by_runtime_sizes(cache_dir):
    node = helper.make_node("Split", ["x", "split"], ["a", "b"], axis=1)
    model = make_model([node], {"x": (F32, [2, 5]), "split": (np.int64, [2])},
                       {"a": (F32, [2, 2]), "b": (F32, [2, 3])}, opset=13)
    x = np.arange(10, dtype=F32).reshape(2, 5)
    run_cases(model, cache_dir, [{"x": x, "split": np.array([2, 3], np.int64)}],
              [{"x": x, "split": np.array([3, 2], np.int64)}])


def test_slice_from_runtime_starts_and_steps(cache_dir):
    # the starts, ends and steps move the window; only the count is fixed by the declaration
    node = helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["y"])
    # (int32 indices: read and widened at run time)
    model = make_model([node], {"x": (F32, [4, 10]), **{k: (np.int32, [1]) for k in
                                ("starts", "ends", "axes", "steps")}}, {"y": (F32, [4, 3])},
                       opset=13)
    x = np.arange(40, dtype=F32).reshape(4, 10)
    feeds = lambda *v: {"x": x, **{k: np.array([n], np.int32) for k, n in
                                   zip(("starts", "ends", "axes", "steps"), v)}}
    run_cases(model, cache_dir,
              [feeds(0, 3, 1, 1), feeds(5, 100, -1, 2), feeds(-1, -8, 1, -3), feeds(9, 0, 1, -4)],
              [feeds(0, 4, 1, 1), feeds(0, 3, 0, 1), feeds(0, 3, 1, 0)])


def test_tile_and_expand_by_runtime_values(cache_dir):
    nodes = [helper.make_node("Tile", ["x", "reps"], ["t"]),
             helper.make_node("Expand", ["x", "shape"], ["e"])]
    model = make_model(nodes, {"x": (F32, [2, 1]), "reps": (np.int64, [2]),
                               "shape": (np.int64, [3])},
                       {"t": (F32, [4, 3]), "e": (F32, [3, 2, 5])}, opset=13)
    x = np.array([[1], [2]], F32)
    feeds = lambda r, s: {"x": x, "reps": np.array(r, np.int64), "shape": np.array(s, np.int64)}
    run_cases(model, cache_dir, [feeds([2, 3], [3, 2, 5]), feeds([2, 3], [3, 1, 5])],
              [feeds([3, 2], [3, 2, 5]), feeds([2, 3], [3, 2, 4])])


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "wrap"])
def test_pad_by_runtime_pads(mode, cache_dir):
    # pads, axes and the constant read at run time; negative pads crop
    node = helper.make_node("Pad", ["x", "pads", "value", "axes"], ["y"], mode=mode)
    model = make_model([node], {"x": (F32, [3, 4]), "pads": (np.int64, [2]),
                                "value": (F32, []), "axes": (np.int64, [1])},
                       {"y": (F32, [3, 6])}, opset=18)
    x = np.arange(12, dtype=F32).reshape(3, 4)
    feeds = lambda p, a=1, v=1.5: {"x": x, "pads": np.array(p, np.int64),
                                   "value": np.array(v, F32), "axes": np.array([a], np.int64)}
    crop = [feeds([-1, 3])] if mode == "constant" else []   # onnxruntime: reflect pads < kept
    run_cases(model, cache_dir, [feeds([1, 1]), feeds([0, 2], v=-3), feeds([2, 0], a=-1)] + crop,
              [feeds([1, 2]), feeds([1, 1], a=0)])


def test_range_of_runtime_bounds(cache_dir):
    node = helper.make_node("Range", ["start", "limit", "delta"], ["y"])
    model = make_model([node], {k: (F32, []) for k in ("start", "limit", "delta")},
                       {"y": (F32, [4])}, opset=13)
    feeds = lambda s, l, d: {"start": np.array(s, F32), "limit": np.array(l, F32),
                             "delta": np.array(d, F32)}
    run_cases(model, cache_dir, [feeds(0, 4, 1), feeds(1, -0.5, -0.4)],
              [feeds(0, 5, 1), feeds(0, 4, 0)])


# --- Resize ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,coord", [("nearest", "asymmetric"), ("linear", "half_pixel"),
                                        ("cubic", "pytorch_half_pixel"),
                                        ("linear", "tf_crop_and_resize")])
def test_resize_by_runtime_scales(mode, coord, cache_dir):
    # the tap tables follow the run-time scales (and roi): 2.0 and 2.2 both give 8 rows
    node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], mode=mode,
                            coordinate_transformation_mode=coord)
    model = make_model([node], {"x": (F32, [1, 2, 4, 5]), "roi": (F32, [8]),
                                "scales": (F32, [4])}, {"y": (F32, [1, 2, 8, 3])}, opset=13)
    x = np.random.default_rng(2).standard_normal((1, 2, 4, 5)).astype(F32)
    feeds = lambda *s: {"x": x, "roi": np.array([0, 0, 0.1, 0.2, 1, 1, 0.9, 0.7], F32),
                        "scales": np.array([1, 1, *s], F32)}
    run_cases(model, cache_dir, [feeds(2.0, 0.6), feeds(2.2, 0.75)],
              [feeds(1.5, 0.6), feeds(2.0, 0.0)])


def test_resize_to_runtime_sizes_keeping_the_aspect_ratio(cache_dir):
    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear",
                            keep_aspect_ratio_policy="not_larger", axes=[2, 3])
    model = make_model([node], {"x": (F32, [1, 1, 4, 6]), "sizes": (np.int64, [2])},
                       {"y": (F32, [1, 1, 6, 9])}, opset=18)
    x = np.random.default_rng(3).standard_normal((1, 1, 4, 6)).astype(F32)
    run_cases(model, cache_dir,
              [{"x": x, "sizes": np.array(s, np.int64)} for s in ([6, 9], [7, 9])],
              [{"x": x, "sizes": np.array([5, 12], np.int64)}])   # ratio 1.25: [5, 8]


# --- window functions and CenterCropPad: the value is the shape ---------------------------------
@pytest.mark.parametrize("op", ["HannWindow", "HammingWindow", "BlackmanWindow"])
def test_window_of_runtime_size(op, cache_dir):
    nodes = [helper.make_node(op, ["size"], ["y"]),
             helper.make_node(op, ["seven"], ["z"], periodic=0)]       # a constant folds
    model = make_model(nodes, {"size": (np.int64, [])}, {"y": (F32, [10]), "z": (F32, [7])},
                       {"seven": np.array(7, np.int64)}, opset=17)
    run_cases(model, cache_dir, [{"size": np.array(10, np.int64)}],
              [{"size": np.array(9, np.int64)}])


def test_center_crop_pad_to_a_runtime_shape(cache_dir):
    # crops axis 0 (9 -> 4: rows 2..5), pads axis 2 (3 -> 6: one column before, two after)
    node = helper.make_node("CenterCropPad", ["x", "shape"], ["y"], axes=[0, 2])
    x = np.arange(54, dtype=F32).reshape(9, 2, 3)
    expected = np.zeros((4, 2, 6), F32)
    expected[:, :, 1:4] = x[2:6]
    for itype in (np.int64, np.int32):   # (onnxruntime's expansion refuses an int32 shape)
        model = make_model([node], {"x": (F32, [9, 2, 3]), "shape": (itype, [2])},
                           {"y": (F32, [4, 2, 6])}, opset=18)
        compiled = nnbuild.compile(model, cache_dir=cache_dir)
        y = compiled.run({"x": x, "shape": np.array([4, 6], itype)})["y"]
        np.testing.assert_array_equal(y, expected)
        with pytest.raises(UsageError, match=DISAGREES):
            compiled.run({"x": x, "shape": np.array([4, 5], itype)})
    int64 = make_model([node], {"x": (F32, [9, 2, 3]), "shape": (np.int64, [2])},
                       {"y": (F32, [4, 2, 6])}, opset=18)
    check_against_onnxruntime(int64, cache_dir, feeds={"x": x, "shape": np.array([4, 6])})


def test_a_view_sharing_its_input_bytes_still_checks(cache_dir, tmp_path):
    # Relu -> Reshape(run-time shape) -> Relu: the memory plan makes the Reshape a view of
    # the first Relu's bytes (no copy is emitted), the check of the shape value stays
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reshape", ["r", "s"], ["v"]),
             helper.make_node("Relu", ["v"], ["y"])]
    model = make_model(nodes, {"x": (F32, [2, 6]), "s": (np.int64, [2])},
                       {"y": (F32, [3, 4])}, opset=14)
    model.graph.value_info.append(helper.make_tensor_value_info("v", 1, [3, 4]))
    source = nnbuild.generate(model, str(tmp_path / "view")).files["src/model.c"].decode()
    assert "viewed as f32[3,4]: no copy" in source
    x = np.random.default_rng(4).standard_normal((2, 6)).astype(F32)
    run_cases(model, cache_dir, [{"x": x, "s": np.array([3, -1], np.int64)}],
              [{"x": x, "s": np.array([4, 3], np.int64)}])


def test_a_declaration_holds_back_through_unary_ops(cache_dir):
    # no value_info for s or d: y's declared shape is theirs too (Sqrt and Cast keep shapes)
    nodes = [helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=0),
             helper.make_node("Cast", ["s"], ["d"], to=11), helper.make_node("Sqrt", ["d"], ["y"])]
    model = make_model(nodes, {"x": (F32, [3, 2, 2]), "axes": (np.int64, [1])},
                       {"y": (np.float64, [3, 2])}, opset=18)
    x = np.random.default_rng(5).random((3, 2, 2)).astype(F32)
    run_cases(model, cache_dir, [{"x": x, "axes": np.array([a], np.int64)} for a in (1, 2)],
              [{"x": x, "axes": np.array([0], np.int64)}])


def test_center_crop_pad_to_a_constant_shape(cache_dir):
    node = helper.make_node("CenterCropPad", ["x", "shape"], ["y"], axes=[-1, 0])
    model = make_model([node], {"x": (F32, [5, 3, 4])}, ["y"],
                       {"shape": np.array([7, 2], np.int64)}, opset=18)
    check_against_onnxruntime(model, cache_dir)
