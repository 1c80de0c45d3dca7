"""The cost model (FLOPs, bytes moved, intensity, roofline), `nnbuild calibrate` and
`nnbuild profile`: per-kernel timers only in profiling builds, one row per node named after
the ONNX nodes, Chrome trace and HTML report."""
import ctypes
import json

import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild.analysis.cost import Cost, Machine, node_cost
from nnbuild.analysis.profile import chrome_trace, html_report, profile_model, table
from nnbuild.ir import parse_graph
from nnbuild.options import Options


def test_cost_of_a_matmul_and_an_elementwise_op():
    graph = parse_graph("""
    graph g opsets(ai.onnx=17) {
      input %a: f32[4,8]
      input %b: f32[8,16]
      %y: f32[4,16] = MatMul(%a, %b)  # mm
      %r: f32[4,16] = Relu(%y)  # relu
      output %r
    }""")
    mm, relu = (node_cost(graph, n) for n in graph.nodes)
    assert mm == Cost(flops=2 * 4 * 8 * 16, bytes=4 * (32 + 128 + 64))
    assert relu == Cost(flops=64, bytes=4 * 128)
    machine = Machine("test", flops_per_s=1e9, bytes_per_s=1e8)
    assert machine.ridge == 10.0
    assert mm.intensity == pytest.approx(1024 / 896)
    assert mm.roofline_s(machine) == pytest.approx(896 / 1e8)      # bandwidth-bound
    assert Cost(10 ** 6, 10).roofline_s(machine) == pytest.approx(1e-3)   # compute-bound


def _model():
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "W", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "W2"], ["y"], name="fc", transB=1)]
    from helpers import make_model
    return make_model(nodes, {"x": (np.float32, [1, 3, 8, 8])}, ["y"],
                      {"W": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
                       "b": rng.standard_normal(4).astype(np.float32),
                       "W2": rng.standard_normal((10, 256)).astype(np.float32)})


def test_profile_rows_are_the_nodes_and_reports_are_written(tmp_path):
    import onnx
    path = tmp_path / "net.onnx"
    onnx.save(_model(), path)
    machine = Machine("test", 1e10, 1e9)
    p = profile_model(str(path), Options(), runs=3, work_dir=str(tmp_path / "work"),
                      machine=machine)
    assert [(r.label, r.op) for r in p.rows] == [("conv+relu", "FusedConv"),
                                                 ("flatten", "Flatten"), ("fc", "Gemm")]
    assert all(r.seconds >= 0 for r in p.rows) and p.kernel_total_s > 0
    assert p.rows[0].flops == 2 * 4 * 27 * 64 + 256 and p.rows[0].roofline_pct is not None
    text = table(p)
    assert text.splitlines()[0].split() == ["node", "op", "ms", "%", "GFLOP/s", "%", "roof"]
    assert "conv+relu" in text and "end to end" in text
    trace = chrome_trace(p)
    per_node = [e for e in trace["traceEvents"] if e["pid"] == 1 and e["ph"] == "X"]
    assert [e["name"] for e in per_node] == ["conv+relu", "flatten", "fc"]
    last_run = [e for e in trace["traceEvents"] if e["pid"] == 2 and e["ph"] == "X"]
    assert [e["name"] for e in last_run] == ["conv+relu", "flatten", "fc"]  # its steps
    json.dumps(trace)
    page = html_report(p)
    assert page.startswith("<!DOCTYPE html>") and "Arena timeline" in page and "<svg" in page
    assert "http" not in page                              # self-contained


def test_profile_without_a_work_dir_leaves_no_build_behind(tmp_path, monkeypatch):
    import onnx
    import tempfile
    path = tmp_path / "net.onnx"
    onnx.save(_model(), path)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    p = profile_model(str(path), Options(), runs=2)
    assert len(p.rows) == 3
    assert list(scratch.iterdir()) == []


def test_normal_builds_have_no_timers(cache_dir):
    compiled = nnbuild.compile(_model(), cache_dir=cache_dir)
    lib = ctypes.CDLL(compiled.library_path)
    assert not hasattr(lib, f"{compiled.prefix}_profile")
    source = open(f"{compiled.project_dir}/src/{compiled.prefix}.c").read()
    assert "#ifdef NN_PROFILE" in source and "_STEP_DONE(i) ((void)0)" in source


def test_calibrate_stores_the_machine(tmp_path):
    from nnbuild.analysis.machine import calibrate, load_machine, machine_file
    machine = calibrate(cache_dir=str(tmp_path), runs=1, size=64, stream_mb=1)
    assert machine.flops_per_s > 0 and machine.bytes_per_s > 0
    assert machine_file(str(tmp_path)).startswith(str(tmp_path))
    assert load_machine(str(tmp_path)) == machine
