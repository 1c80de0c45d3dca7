"""Unique matches onnxruntime: sorted and in order of first occurrence, over all elements or
slices along an axis, float and integer elements; the number of distinct items is a run-time
value, so the model declares it and the generated code checks it; a model that does not
declare it is refused (data-dependent shape) unless x has at most one item."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from helpers import check_against_onnxruntime, make_model

F32, I64 = np.float32, np.int64
OUTS = ["y", "indices", "inverse", "counts"]


def _model(x_dtype, x_shape, y_shape, count, n, **attrs):
    node = helper.make_node("Unique", ["x"], OUTS, **attrs)
    return make_model([node], {"x": (x_dtype, x_shape)},
                      {"y": (x_dtype, y_shape), "indices": (I64, [count]),
                       "inverse": (I64, [n]), "counts": (I64, [count])}, opset=11)


@pytest.mark.parametrize("is_sorted", [1, 0])
def test_unique_elements_float_with_repeats(is_sorted, cache_dir):
    x = np.array([[2.5, -1, 0], [3, 2.5, -1], [0, 7, -1]], F32)      # 5 distinct
    model = _model(F32, [3, 3], [5], 5, 9, sorted=is_sorted)
    check_against_onnxruntime(model, cache_dir, {"x": x})


@pytest.mark.parametrize("axis,is_sorted", [(0, 1), (1, 1), (-1, 0), (1, 0)])
def test_unique_slices_along_an_axis(axis, is_sorted, cache_dir):
    """Slices compare lexicographically; x [2, 5, 2] has 3 distinct slices along axis 1,
    along axis 0 and -1 it has 2."""
    x = np.array([[[1, 2], [0, 5], [1, 2], [0, 5], [1, 3]],
                  [[4, 4], [9, 9], [4, 4], [9, 9], [0, 0]]], I64)
    if axis in (-1, 2):
        x[:, :, 1] = x[:, :, 0] + 1
    n = x.shape[axis]
    count = np.unique(x, axis=axis).shape[axis]
    y_shape = list(x.shape)
    y_shape[axis] = count
    model = _model(I64, list(x.shape), y_shape, count, n, axis=axis, sorted=is_sorted)
    check_against_onnxruntime(model, cache_dir, {"x": x})


def test_unique_count_is_checked_at_run_time(cache_dir):
    model = _model(I64, [6], [3], 3, 6)
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    out = compiled.run({"x": np.array([4, 1, 4, 9, 1, 1], I64)})
    assert out["y"].tolist() == [1, 4, 9] and out["counts"].tolist() == [3, 2, 1]
    assert out["indices"].tolist() == [1, 0, 3] and out["inverse"].tolist() == [1, 0, 1, 2, 0, 0]
    with pytest.raises(Exception, match="shape"):
        compiled.run({"x": np.array([4, 1, 4, 9, 1, 2], I64)})       # 4 distinct


def test_unique_without_declared_count_is_data_dependent():
    node = helper.make_node("Unique", ["x"], OUTS)
    model = make_model([node], {"x": (F32, [4])}, OUTS, opset=11)
    with pytest.raises(nnbuild.ModelError, match="declare a static shape"):
        nnbuild.translate(model)


def test_unique_of_one_item_needs_no_declaration(cache_dir):
    node = helper.make_node("Unique", ["x"], OUTS, axis=0)
    model = make_model([node], {"x": (F32, [1, 3])}, OUTS, opset=11)
    check_against_onnxruntime(model, cache_dir, {"x": np.array([[3, -1, 3]], F32)})
