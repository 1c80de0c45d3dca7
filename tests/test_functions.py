"""Ops without a kernel whose ONNX schema defines a function body are expanded into it."""
import numpy as np
from onnx import helper

import nnbuild
from helpers import check_against_onnxruntime, make_model


def test_function_op_is_expanded_and_matches_onnxruntime(cache_dir):
    # MeanVarianceNormalization has no kernel: its schema function (ReduceMean, Sub, Sqrt...)
    model = make_model([helper.make_node("MeanVarianceNormalization", ["x"], ["y"],
                                         axes=[0, 2, 3])],
                       {"x": (np.float32, [2, 3, 4, 5])}, ["y"], opset=13)
    check_against_onnxruntime(model, cache_dir)
    graph = nnbuild.translate(model)
    assert "MeanVarianceNormalization" not in {n.op for n in graph.nodes}
