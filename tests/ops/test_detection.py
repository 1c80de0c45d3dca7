"""NonMaxSuppression matches onnxruntime when the model declares how many boxes survive, and a
run that keeps another number of boxes fails with the shape error instead of writing past the
output."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from helpers import check_against_onnxruntime, make_model, onnxruntime_outputs

F32 = np.float32


def _nms_model(count, batches=2, classes=3, boxes=12, center=0, with_threshold=True):
    ins = ["boxes", "scores", "max_out", "iou"] + (["score_min"] if with_threshold else [])
    node = helper.make_node("NonMaxSuppression", ins, ["selected"], center_point_box=center)
    outputs = {"selected": (np.int64, [count, 3])} if count is not None else ["selected"]
    return make_model([node], {"boxes": (F32, [batches, boxes, 4]),
                               "scores": (F32, [batches, classes, boxes]),
                               "max_out": (np.int64, [1]), "iou": (F32, [1]),
                               "score_min": (F32, [1])} if with_threshold else
                      {"boxes": (F32, [batches, boxes, 4]), "scores": (F32, [batches, classes, boxes]),
                       "max_out": (np.int64, [1]), "iou": (F32, [1])}, outputs, opset=11)


def _feeds(seed, batches=2, classes=3, boxes=12, with_threshold=True):
    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, 10, (batches, boxes, 4)).astype(F32)
    scores = rng.choice([0.1, 0.3, 0.5, 0.7, 0.9], (batches, classes, boxes)).astype(F32)  # ties
    feeds = {"boxes": corners, "scores": scores, "max_out": np.array([4], np.int64),
             "iou": np.array([0.2], F32)}
    if with_threshold:
        feeds["score_min"] = np.array([0.2], F32)
    return feeds


@pytest.mark.parametrize("center", [0, 1])
@pytest.mark.parametrize("with_threshold", [True, False])
def test_nms_with_declared_count(cache_dir, center, with_threshold):
    feeds = _feeds(center, with_threshold=with_threshold)
    free = _nms_model(None, center=center, with_threshold=with_threshold)
    count = len(onnxruntime_outputs(free, feeds)["selected"])
    model = _nms_model(count, center=center, with_threshold=with_threshold)
    check_against_onnxruntime(model, cache_dir, feeds)


def test_nms_another_count_is_a_shape_error(cache_dir):
    feeds = _feeds(5)
    count = len(onnxruntime_outputs(_nms_model(None), feeds)["selected"])
    compiled = nnbuild.compile(_nms_model(count + 1), cache_dir=cache_dir)
    with pytest.raises(Exception, match="shape"):
        compiled.run(feeds)


def test_nms_without_declared_count_is_a_data_dependent_shape():
    with pytest.raises(nnbuild.ModelError, match="declare a static shape"):
        nnbuild.translate(_nms_model(None))
