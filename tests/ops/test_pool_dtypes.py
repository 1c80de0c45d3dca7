"""MaxPool over the element types besides float32 (f16, f64, i8, u8: a loop nest copying the
winning element) matches onnxruntime, Indices and storage order included; bf16 is compared
with the op's numpy reference."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from helpers import check_against_onnxruntime, make_model

CASES = [   # spatial shape, attributes
    ([9], dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
    ([5, 5], dict(kernel_shape=[5, 5], pads=[2, 2, 2, 2])),
    ([7, 6], dict(kernel_shape=[2, 3], strides=[2, 1], dilations=[2, 1], ceil_mode=1)),
    ([4, 5, 6], dict(kernel_shape=[2, 2, 3], strides=[1, 2, 2], pads=[0, 1, 1, 1, 0, 1])),
]


def _model(dtype, spatial, attrs, indices=False):
    node = helper.make_node("MaxPool", ["x"], ["y", "i"] if indices else ["y"], **attrs)
    return make_model([node], {"x": (dtype, [2, 3] + spatial)},
                      ["y", "i"] if indices else ["y"], opset=12)


def _feeds(dtype, spatial, seed=0):
    rng = np.random.default_rng(seed)
    shape = [2, 3] + spatial
    if np.dtype(dtype).kind in "iu":     # the full range, ties included
        info = np.iinfo(dtype)
        return {"x": rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)}
    return {"x": rng.permutation(np.arange(np.prod(shape))).reshape(shape).astype(dtype) / 7}


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.float16, np.float64])
@pytest.mark.parametrize("spatial,attrs", CASES)
def test_maxpool_types_match_onnxruntime(cache_dir, dtype, spatial, attrs):
    check_against_onnxruntime(_model(dtype, spatial, attrs), cache_dir, _feeds(dtype, spatial))


@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize("spatial,attrs", CASES[1:])
def test_maxpool_f64_indices_match_onnxruntime(cache_dir, storage_order, spatial, attrs):
    model = _model(np.float64, spatial, dict(attrs, storage_order=storage_order), indices=True)
    check_against_onnxruntime(model, cache_dir, _feeds(np.float64, spatial, seed=2))


def test_maxpool_bf16_matches_the_reference(cache_dir):
    import ml_dtypes
    from onnx import TensorProto
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                            strides=[2, 2])
    graph = helper.make_graph([node], "t", [helper.make_tensor_value_info(
        "x", TensorProto.BFLOAT16, [1, 2, 6, 6])], [helper.make_empty_tensor_value_info("y")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    x = _feeds(np.float32, [6, 6])["x"][:1, :2].astype(ml_dtypes.bfloat16)
    y = nnbuild.compile(model, cache_dir=cache_dir).run({"x": x})["y"]
    expected = x.astype(np.float32)
    expected = np.pad(expected, [(0, 0), (0, 0), (1, 1), (1, 1)], constant_values=-np.inf)
    expected = np.lib.stride_tricks.sliding_window_view(expected, (3, 3), axis=(2, 3))
    np.testing.assert_array_equal(y.astype(np.float32), expected[:, :, ::2, ::2].max((-1, -2)))


def test_maxpool_int32_is_refused_with_the_supported_types():
    with pytest.raises(nnbuild.ModelError, match="supported: f32, f16, bf16, f64, i8, u8"):
        nnbuild.translate(_model(np.int32, [5, 5], CASES[1][1]))
