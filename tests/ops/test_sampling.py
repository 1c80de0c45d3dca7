"""GridSample (every mode, padding and align_corners, 2-D and 3-D) and AffineGrid match
onnxruntime."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from helpers import check_against_onnxruntime, make_model

F32 = np.float32


def _grid(shape, seed):
    """Normalised coordinates, some of them outside [-1, 1] so that padding is exercised."""
    return (np.random.default_rng(seed).uniform(-1.3, 1.3, shape)).astype(F32)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_grid_sample_2d(cache_dir, mode):
    nodes = [helper.make_node("GridSample", ["x", "grid"], [f"{padding}_{align}"], mode=mode,
                              padding_mode=padding, align_corners=align)
             for padding in ("zeros", "border", "reflection") for align in (0, 1)]
    model = make_model(nodes, {"x": (F32, [2, 3, 5, 4]), "grid": (F32, [2, 6, 7, 2])},
                       [n.output[0] for n in nodes], opset=20)
    feeds = {"x": np.random.default_rng(1).standard_normal((2, 3, 5, 4)).astype(F32),
             "grid": _grid((2, 6, 7, 2), 2)}
    check_against_onnxruntime(model, cache_dir, feeds)


def test_grid_sample_opset16_bilinear_spelling(cache_dir):
    node = helper.make_node("GridSample", ["x", "grid"], ["y"], mode="bilinear",
                            padding_mode="border")
    model = make_model([node], {"x": (F32, [1, 2, 4, 4]), "grid": (F32, [1, 3, 5, 2])}, ["y"],
                       opset=16)
    feeds = {"x": np.random.default_rng(3).standard_normal((1, 2, 4, 4)).astype(F32),
             "grid": _grid((1, 3, 5, 2), 4)}
    check_against_onnxruntime(model, cache_dir, feeds)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_grid_sample_3d(cache_dir, mode):
    nodes = [helper.make_node("GridSample", ["x", "grid"], [f"y{align}"], mode=mode,
                              align_corners=align) for align in (0, 1)]
    model = make_model(nodes, {"x": (F32, [1, 2, 3, 4, 5]), "grid": (F32, [1, 2, 3, 4, 3])},
                       ["y0", "y1"], opset=20)
    feeds = {"x": np.random.default_rng(5).standard_normal((1, 2, 3, 4, 5)).astype(F32),
             "grid": _grid((1, 2, 3, 4, 3), 6)}
    check_against_onnxruntime(model, cache_dir, feeds)


@pytest.mark.parametrize("align", [0, 1])
def test_affine_grid_2d_and_3d_constant_size(cache_dir, align):
    nodes = [helper.make_node("AffineGrid", ["theta2", "size2"], ["grid2"], align_corners=align),
             helper.make_node("AffineGrid", ["theta3", "size3"], ["grid3"], align_corners=align)]
    model = make_model(nodes, {"theta2": (F32, [2, 2, 3]), "theta3": (F32, [2, 3, 4])},
                       ["grid2", "grid3"], opset=20,
                       initializers={"size2": np.array([2, 3, 5, 6], np.int64),
                                     "size3": np.array([2, 1, 4, 5, 3], np.int64)})
    check_against_onnxruntime(model, cache_dir)


def test_affine_grid_runtime_size_checked_against_the_declared_shape(cache_dir):
    node = helper.make_node("AffineGrid", ["theta", "size"], ["grid"])
    model = make_model([node], {"theta": (F32, [2, 2, 3]), "size": (np.int64, [4])},
                       {"grid": (F32, [2, 4, 7, 2])}, opset=20)
    theta = np.random.default_rng(7).standard_normal((2, 2, 3)).astype(F32)
    check_against_onnxruntime(model, cache_dir, {"theta": theta,
                                                 "size": np.array([2, 3, 4, 7], np.int64)})
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    with pytest.raises(Exception, match="shape"):
        compiled.run({"theta": theta, "size": np.array([2, 3, 4, 6], np.int64)})
