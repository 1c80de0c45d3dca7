"""Helpers for tests that read as specifications: build a small ONNX graph, compile it with
nnbuild, run it on seeded random inputs, and compare with onnxruntime."""
from __future__ import annotations

import time

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import nnbuild
from nnbuild.testing import OP_TOLERANCE, assert_close

NP_TO_ONNX = {np.dtype(k): v for k, v in {
    np.float32: onnx.TensorProto.FLOAT, np.float64: onnx.TensorProto.DOUBLE,
    np.float16: onnx.TensorProto.FLOAT16, np.int64: onnx.TensorProto.INT64,
    np.int32: onnx.TensorProto.INT32, np.int8: onnx.TensorProto.INT8,
    np.uint8: onnx.TensorProto.UINT8, np.bool_: onnx.TensorProto.BOOL}.items()}


def make_model(nodes, inputs: dict, outputs, initializers: dict | None = None,
               opset: int = 17) -> onnx.ModelProto:
    """nodes: onnx NodeProtos; inputs: {name: (np dtype, shape)}; outputs: names, or
    {name: (np dtype, shape)}; initializers: {name: np.ndarray}."""
    ins = [helper.make_tensor_value_info(n, NP_TO_ONNX[np.dtype(d)], list(s))
           for n, (d, s) in inputs.items()]
    if isinstance(outputs, dict):
        outs = [helper.make_tensor_value_info(n, NP_TO_ONNX[np.dtype(d)], list(s))
                for n, (d, s) in outputs.items()]
    else:
        outs = [helper.make_empty_tensor_value_info(n) for n in outputs]
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in (initializers or {}).items()]
    graph = helper.make_graph(nodes, "test", ins, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8)    # what the installed onnxruntime reads
    return model


def random_inputs(model: onnx.ModelProto, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        t = vi.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)
        shape = [d.dim_value for d in t.shape.dim]
        if dtype == np.bool_:
            feeds[vi.name] = rng.integers(0, 2, shape).astype(bool)
        elif np.issubdtype(dtype, np.integer):
            feeds[vi.name] = rng.integers(-5 if dtype.kind == "i" else 0, 6, shape).astype(dtype)
        else:
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def onnxruntime_outputs(model: onnx.ModelProto, feeds: dict) -> dict:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def check_against_onnxruntime(model: onnx.ModelProto, cache_dir: str, feeds: dict | None = None,
                              tolerance: dict = OP_TOLERANCE, **options) -> dict:
    """Compile with nnbuild, run both, assert every output matches; returns our outputs."""
    feeds = random_inputs(model) if feeds is None else feeds
    expected = onnxruntime_outputs(model, feeds)
    compiled = nnbuild.compile(model, cache_dir=cache_dir, **options)
    actual = compiled.run(feeds)
    assert list(actual) == list(expected), f"outputs {list(actual)} != {list(expected)}"
    for name in expected:
        assert_close(actual[name], expected[name], tolerance, what=f"output {name}")
    return actual


def check_at_thread_counts(model: onnx.ModelProto, cache_dir: str, target: str,
                           feeds: dict | None = None, tolerance: dict = OP_TOLERANCE,
                           label: str = "", **options) -> dict:
    """Compile for ``target``, run at 1 and at 3 threads: the 1-thread outputs match
    onnxruntime's within ``tolerance`` and the 3-thread outputs are the same bytes. Returns the
    1-thread outputs."""
    feeds = random_inputs(model) if feeds is None else feeds
    expected = onnxruntime_outputs(model, feeds)
    compiled = nnbuild.compile(model, cache_dir=cache_dir, target=target, **options)
    results = {}
    for threads in (1, 3):
        compiled.set_num_threads(threads)
        results[threads] = compiled.run(feeds)
    what = f"{target} {label}".strip()
    for name, want in expected.items():
        assert_close(results[1][name], want, tolerance, what=f"{what} {name}")
        assert results[3][name].tobytes() == results[1][name].tobytes(), \
            f"{what} {name}: 3 threads differ from 1"
    return results[1]


def best_cpu_seconds(model: onnx.ModelProto, cache_dir: str, target: str, runs: int = 5) -> float:
    """CPU time (not wall time: the machine may be loaded) of the fastest of ``runs`` runs on
    one thread, after a warm-up run; call overhead included."""
    feeds = random_inputs(model)
    compiled = nnbuild.compile(model, cache_dir=cache_dir, target=target)
    compiled.set_num_threads(1)
    compiled.run(feeds)
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        compiled.run(feeds)
        best = min(best, time.process_time() - start)
    return best


def target_param(names=None):
    """Parametrize a test's ``target`` over hardware interfaces (default: every target); one
    whose code this CPU cannot run is skipped."""
    from nnbuild import targets
    here = targets.supported_here()
    return pytest.mark.parametrize("target", [
        pytest.param(n, marks=pytest.mark.skipif(n not in here, reason=f"this CPU cannot run {n}"))
        for n in (names or list(targets.TARGETS))])
