"""The benchmark set's seeded networks (benchmarks/models.py) are valid ONNX, reproducible,
and nnbuild's results match onnxruntime's within MODEL_TOLERANCE. ResNet-18, the BERT-style
encoder and the MLP run in the default tier; MobileNetV2 and the LSTM with --runslow."""
from __future__ import annotations

import os
import sys

import pytest

import nnbuild
from nnbuild.testing import MODEL_TOLERANCE, assert_close
from helpers import onnxruntime_outputs

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "benchmarks"))
import models  # noqa: E402  (benchmarks/models.py)


def test_builders_are_reproducible():
    for build in (models.resnet18, models.bert_encoder, models.mlp):
        assert build().SerializeToString() == build().SerializeToString()


@pytest.mark.parametrize("name", [
    "resnet18", "bert_encoder", "mlp",
    pytest.param("mobilenet_v2", marks=pytest.mark.slow),
    pytest.param("lstm", marks=pytest.mark.slow)])
def test_benchmark_network_matches_onnxruntime(name, tmp_path):
    model = models.BUILDERS[name]()
    feeds = models.feeds(model)
    expected = onnxruntime_outputs(model, feeds)
    actual = nnbuild.compile(model, cache_dir=str(tmp_path), name=name).run(feeds)
    assert list(actual) == list(expected)
    for out, value in expected.items():
        assert_close(actual[out], value, MODEL_TOLERANCE, what=f"{name} output {out}")
