"""MaxUnpool puts MaxPool's values back at its indices: without output_shape it matches
onnxruntime; a larger output_shape pads each dim at its end (the ONNX reference's reading), a
run-time one is checked against the declared output, and a bad index is a shape error."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from helpers import check_against_onnxruntime, make_model

F32, I64 = np.float32, np.int64


def _pool_then_unpool(shape, attrs, output_shape=None, declared=None):
    nodes = [helper.make_node("MaxPool", ["x"], ["v", "i"], **attrs),
             helper.make_node("MaxUnpool", ["v", "i"] + (["s"] if output_shape else []), ["y"],
                              **attrs)]
    inputs = {"x": (F32, shape)}
    inits = {}
    if output_shape is not None and declared is None:
        inits["s"] = np.array(output_shape, I64)
    elif output_shape is not None:
        inputs["s"] = (I64, [len(output_shape)])
    outputs = {"y": (F32, declared)} if declared else ["y"]
    return make_model(nodes, inputs, outputs, inits, opset=11)


@pytest.mark.parametrize("shape,attrs", [
    ([2, 3, 8, 8], dict(kernel_shape=[2, 2], strides=[2, 2])),
    ([1, 2, 9], dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
    ([1, 2, 4, 6, 6], dict(kernel_shape=[2, 3, 3], strides=[2, 3, 3])),
])
def test_maxunpool_matches_onnxruntime(cache_dir, shape, attrs):
    check_against_onnxruntime(_pool_then_unpool(shape, attrs), cache_dir)


def _expected_padded(x, out):
    pooled = x.reshape(1, 1, 2, 2, 2, 2).max((3, 5))
    y = np.zeros(out, F32)
    y[:, :, 1:4:2, 1:4:2] = pooled           # argmax is the bottom-right of each 2x2 window
    return y


def test_a_larger_output_shape_pads_at_the_end(cache_dir):
    x = np.arange(16, dtype=F32).reshape(1, 1, 4, 4)
    model = _pool_then_unpool([1, 1, 4, 4], dict(kernel_shape=[2, 2], strides=[2, 2]),
                              [1, 1, 5, 6])
    y = nnbuild.compile(model, cache_dir=cache_dir).run({"x": x})["y"]
    np.testing.assert_array_equal(y, _expected_padded(x, [1, 1, 5, 6]))


def test_run_time_output_shape_is_checked_against_the_declared_one(cache_dir):
    x = np.arange(16, dtype=F32).reshape(1, 1, 4, 4)
    model = _pool_then_unpool([1, 1, 4, 4], dict(kernel_shape=[2, 2], strides=[2, 2]),
                              [1, 1, 5, 5], declared=[1, 1, 5, 5])
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    y = compiled.run({"x": x, "s": np.array([1, 1, 5, 5], I64)})["y"]
    np.testing.assert_array_equal(y, _expected_padded(x, [1, 1, 5, 5]))
    with pytest.raises(Exception, match="shape"):
        compiled.run({"x": x, "s": np.array([1, 1, 6, 5], I64)})


def test_an_index_outside_the_output_is_a_shape_error(cache_dir):
    node = helper.make_node("MaxUnpool", ["v", "i"], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    model = make_model([node], {"v": (F32, [1, 1, 2, 2]), "i": (I64, [1, 1, 2, 2])}, ["y"],
                       opset=11)
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    v = np.ones([1, 1, 2, 2], F32)
    np.testing.assert_array_equal(
        compiled.run({"v": v, "i": np.array([0, 3, 12, 15], I64).reshape(1, 1, 2, 2)})["y"]
        .reshape(-1).nonzero()[0], [0, 3, 12, 15])
    with pytest.raises(Exception, match="shape"):
        compiled.run({"v": v, "i": np.array([0, 3, 12, 16], I64).reshape(1, 1, 2, 2)})
