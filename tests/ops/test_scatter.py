"""ReverseSequence matches onnxruntime; TensorScatter (opset 24) matches the ONNX reference
evaluator; bad run-time positions are an error, not a stray write."""
import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import nnbuild
from helpers import check_against_onnxruntime, make_model
from nnbuild.testing import assert_close

F32 = np.float32


@pytest.mark.parametrize("batch_axis", [0, 1])
def test_reverse_sequence(cache_dir, batch_axis):
    node = helper.make_node("ReverseSequence", ["x", "lens"], ["y"], batch_axis=batch_axis,
                            time_axis=1 - batch_axis)
    model = make_model([node], {"x": (F32, [4, 5, 3]), "lens": (np.int64, [4 if batch_axis == 0 else 5])},
                       ["y"], opset=10)
    lens = np.array([5, 0, 3, 1] if batch_axis == 0 else [4, 1, 2, 3, 0], np.int64)
    feeds = {"x": np.random.default_rng(0).standard_normal((4, 5, 3)).astype(F32), "lens": lens}
    check_against_onnxruntime(model, cache_dir, feeds)
    with pytest.raises(Exception, match="shape"):
        nnbuild.compile(model, cache_dir=cache_dir).run({"x": feeds["x"], "lens": lens + 9})


@pytest.mark.parametrize("mode", ["linear", "circular"])
def test_tensor_scatter(cache_dir, mode):
    node = helper.make_node("TensorScatter", ["past", "update", "at"], ["present"], mode=mode)
    model = make_model([node], {"past": (F32, [2, 3, 6, 4]), "update": (F32, [2, 3, 3, 4]),
                                "at": (np.int64, [2])}, ["present"], opset=24)
    rng = np.random.default_rng(1)
    feeds = {"past": rng.standard_normal((2, 3, 6, 4)).astype(F32),
             "update": rng.standard_normal((2, 3, 3, 4)).astype(F32),
             "at": np.array([3, 5] if mode == "circular" else [3, 0], np.int64)}
    expected = ReferenceEvaluator(model).run(None, feeds)[0]
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    assert_close(compiled.run(feeds)["present"], expected)
    with pytest.raises(Exception, match="shape"):
        compiled.run({**feeds, "at": np.array([6, 0], np.int64)})
