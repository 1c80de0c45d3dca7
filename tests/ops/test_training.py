"""Adagrad, Adam and Momentum (domain ai.onnx.preview.training) match the ONNX reference
evaluator (onnxruntime has no kernels for them), for one and for several tensor groups, at the
first step (t = 0: no bias correction) and later."""
import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import nnbuild
from nnbuild.testing import assert_close

DOMAIN = "ai.onnx.preview.training"


def _model(op, groups, state, shapes, dtype=onnx.TensorProto.FLOAT, **attrs):
    names = [f"{k}{i}" for k in ["X", "G"] + state for i in range(groups)]
    outs = [f"{k}{i}_new" for k in ["X"] + state for i in range(groups)]
    node = helper.make_node(op, ["R", "T"] + names, outs, domain=DOMAIN, **attrs)
    ins = [helper.make_tensor_value_info("R", dtype, []),
           helper.make_tensor_value_info("T", onnx.TensorProto.INT64, [])]
    ins += [helper.make_tensor_value_info(n, dtype, shapes[int(n[-1])]) for n in names]
    graph = helper.make_graph([node], "opt", ins,
                              [helper.make_tensor_value_info(o, dtype, None) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(DOMAIN, 1)])
    model.ir_version = 8
    return model


def _check(model, cache_dir, t, dtype=np.float32):
    rng = np.random.default_rng(t)
    feeds = {"R": np.array(0.1, dtype), "T": np.array(t, np.int64)}
    for vi in model.graph.input[2:]:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        feeds[vi.name] = rng.uniform(0.1, 1.0, shape).astype(dtype)   # H >= 0 (squares summed)
    expected = ReferenceEvaluator(model).run(None, feeds)
    actual = nnbuild.compile(model, cache_dir=cache_dir).run(feeds)
    for vi, want in zip(model.graph.output, expected):
        assert_close(actual[vi.name], np.asarray(want, dtype), what=vi.name)


@pytest.mark.parametrize("t", [0, 3])
def test_adagrad(cache_dir, t):
    model = _model("Adagrad", 2, ["H"], [[3, 2], [5]], decay_factor=0.1, epsilon=1e-5,
                   norm_coefficient=0.01)
    _check(model, cache_dir, t)


@pytest.mark.parametrize("t", [0, 3])
def test_adam(cache_dir, t):
    model = _model("Adam", 2, ["V", "H"], [[4], [2, 3]], alpha=0.9, beta=0.8, epsilon=1e-3,
                   norm_coefficient=0.01, norm_coefficient_post=0.02)
    _check(model, cache_dir, t)


@pytest.mark.parametrize("mode", ["standard", "nesterov"])
@pytest.mark.parametrize("t", [0, 2])
def test_momentum(cache_dir, mode, t):
    model = _model("Momentum", 1, ["V"], [[6]], alpha=0.9, beta=0.5, mode=mode,
                   norm_coefficient=0.01)
    _check(model, cache_dir, t)


def test_momentum_double(cache_dir):
    model = _model("Momentum", 2, ["V"], [[3], [2, 2]], onnx.TensorProto.DOUBLE, alpha=0.9,
                   beta=0.5, mode="standard", norm_coefficient=0.0)
    _check(model, cache_dir, 1, np.float64)
