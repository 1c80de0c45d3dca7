"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss match onnxruntime for every
reduction, with and without weights and ignore_index."""
import numpy as np
import pytest
from onnx import helper

from helpers import check_against_onnxruntime, make_model

F32 = np.float32


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_nll_and_sce(reduction, cache_dir):
    nodes = [helper.make_node("NegativeLogLikelihoodLoss", ["x", "t", "w"], ["nll_w"],
                              reduction=reduction, ignore_index=2),
             helper.make_node("NegativeLogLikelihoodLoss", ["x", "t"], ["nll"],
                              reduction=reduction),
             helper.make_node("SoftmaxCrossEntropyLoss", ["x", "t", "w"], ["sce", "logp"],
                              reduction=reduction, ignore_index=1)]
    rng = np.random.default_rng(9)
    feeds = {"x": rng.standard_normal((3, 5, 2, 2)).astype(F32),
             "t": rng.integers(0, 5, (3, 2, 2)).astype(np.int64),
             "w": rng.uniform(0.2, 1.5, (5,)).astype(F32)}
    model = make_model(nodes, {"x": (F32, [3, 5, 2, 2]), "t": (np.int64, [3, 2, 2]),
                               "w": (F32, [5])}, ["nll_w", "nll", "sce", "logp"], opset=13)
    check_against_onnxruntime(model, cache_dir, feeds)
