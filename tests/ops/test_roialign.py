"""RoiAlign matches the ONNX reference evaluator (the spec's arithmetic, also for mode max,
where onnxruntime differs) and onnxruntime in mode avg: half_pixel and output_half_pixel
regions, fixed and adaptive sampling grids, spatial_scale, regions reaching outside the image,
several batches and channels, opset 10's form (no coordinate_transformation_mode)."""
import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import nnbuild
from nnbuild.testing import assert_close
from helpers import check_against_onnxruntime, make_model

F32 = np.float32
ROIS = np.array([[0, 0, 9, 9], [0, 5, 4, 9], [5, 5, 9, 9], [-3, 2, 12.5, 7.25],
                 [2.2, 1.7, 2.4, 1.9]], F32)


def _model(opset=16, dtype=F32, **attrs):
    node = helper.make_node("RoiAlign", ["x", "rois", "batch"], ["y"], **attrs)
    return make_model([node], {"x": (dtype, [2, 3, 10, 12]), "rois": (dtype, [5, 4]),
                               "batch": (np.int64, [5])}, ["y"], opset=opset)


def _feeds(dtype=F32):
    x = np.random.default_rng(0).standard_normal((2, 3, 10, 12)).astype(dtype)
    return {"x": x, "rois": ROIS.astype(dtype), "batch": np.array([0, 1, 1, 0, 1], np.int64)}


@pytest.mark.parametrize("attrs", [
    dict(output_height=5, output_width=4, sampling_ratio=2),
    dict(coordinate_transformation_mode="output_half_pixel", output_height=3, output_width=6),
    dict(output_height=2, output_width=2, spatial_scale=0.5, sampling_ratio=0),
    dict(mode="max", output_height=5, output_width=5, sampling_ratio=2),
    dict(mode="max", coordinate_transformation_mode="output_half_pixel", output_height=4,
         output_width=3, spatial_scale=0.75),
], ids=["half-pixel", "output-half-pixel-adaptive", "scaled", "max", "max-output-half-pixel"])
def test_roialign_against_the_onnx_reference(attrs, cache_dir):
    model, feeds = _model(**attrs), _feeds()
    expected = ReferenceEvaluator(model).run(None, feeds)[0]
    got = nnbuild.compile(model, cache_dir=cache_dir).run(feeds)["y"]
    assert_close(got, expected)


@pytest.mark.parametrize("opset,attrs", [
    (16, dict(output_height=4, output_width=4, sampling_ratio=3)),
    (10, dict(output_height=3, output_width=5)),            # output_half_pixel, adaptive grid
])
def test_roialign_avg_against_onnxruntime(opset, attrs, cache_dir):
    check_against_onnxruntime(_model(opset, **attrs), cache_dir, _feeds())


def test_roialign_float64(cache_dir):
    model, feeds = _model(dtype=np.float64, output_height=3, output_width=3), _feeds(np.float64)
    expected = ReferenceEvaluator(model).run(None, feeds)[0]
    assert_close(nnbuild.compile(model, cache_dir=cache_dir).run(feeds)["y"], expected)


def test_roialign_batch_index_outside_the_input_fails_the_run(cache_dir):
    feeds = _feeds()
    feeds["batch"] = np.array([0, 1, 2, 0, 1], np.int64)
    with pytest.raises(Exception, match="shape"):
        nnbuild.compile(_model(), cache_dir=cache_dir).run(feeds)
