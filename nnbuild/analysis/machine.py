"""`nnbuild calibrate`: measure this machine once for the roofline (peak FLOP/s of the SGEMM
kernel, streaming memory bandwidth) and store it per machine under the cache folder:
``<cache>/machines/<host>-<arch>.json``."""
from __future__ import annotations

import json
import os
import platform
import time

import numpy as np

from ..fileio import replacing
from .cost import Machine


def machine_name() -> str:
    return f"{platform.node() or 'host'}-{platform.machine() or 'cpu'}"


def machine_file(cache_dir: str | None = None) -> str:
    from ..build.cache import default_cache_dir
    return os.path.join(cache_dir or default_cache_dir(), "machines", f"{machine_name()}.json")


def load_machine(cache_dir: str | None = None) -> Machine | None:
    path = machine_file(cache_dir)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        data = json.load(f)
    return Machine(data["name"], float(data["flops_per_s"]), float(data["bytes_per_s"]))


def _best_seconds(model, feeds: dict, runs: int) -> float:
    """Fastest of ``runs`` calls of the C entry point on buffers allocated once (so that no
    page of a fresh output buffer is faulted in inside the timed region)."""
    import ctypes
    arrays = [np.ascontiguousarray(feeds[s.name]) for s in model.inputs]
    outs = [np.zeros(s.shape, s.dtype) for s in model.outputs]
    ins = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
    outp = (ctypes.c_void_p * len(outs))(*[o.ctypes.data for o in outs])
    run = model._fn("run_ws")
    workspace = model._workspace.ctypes.data
    run(workspace, ins, outp)                   # warm up: caches filled
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        run(workspace, ins, outp)
        best = min(best, time.perf_counter() - start)
    return best


def calibrate(cache_dir: str | None = None, runs: int = 5, size: int = 512,
              stream_mb: int = 64) -> Machine:
    """Build two probe models with nnbuild itself and time them: a size^3 MatMul (peak) and an
    Add over stream_mb MB per operand (bandwidth: two reads and one write per element)."""
    from onnx import TensorProto, helper

    from .. import api

    def model_of(node, inputs, output_shape, inits=()):
        graph = helper.make_graph(
            [node], "probe", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
                              for n, s in inputs],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)], list(inits))
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = min(m.ir_version, 8)
        return m
    rng = np.random.default_rng(0)
    n = size
    gemm = api.compile(model_of(helper.make_node("MatMul", ["a", "b"], ["y"]),
                                [("a", [n, n]), ("b", [n, n])], [n, n]), cache_dir=cache_dir)
    feeds = {k: rng.standard_normal((n, n)).astype(np.float32) for k in "ab"}
    flops = 2.0 * n ** 3 / _best_seconds(gemm, feeds, runs)
    count = stream_mb * (1 << 20) // 4
    add = api.compile(model_of(helper.make_node("Add", ["a", "b"], ["y"]),
                               [("a", [count]), ("b", [count])], [count]), cache_dir=cache_dir)
    feeds = {k: np.ones(count, np.float32) for k in "ab"}
    bandwidth = 3.0 * 4 * count / _best_seconds(add, feeds, runs)
    machine = Machine(machine_name(), flops, bandwidth)
    path = machine_file(cache_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with replacing(path) as f:
        json.dump({"name": machine.name, "flops_per_s": flops, "bytes_per_s": bandwidth,
                   "probe": {"matmul": n, "stream_mb": stream_mb, "runs": runs}}, f, indent=2)
        f.write("\n")
    return machine
