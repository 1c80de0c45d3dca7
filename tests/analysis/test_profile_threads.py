"""`nnbuild profile --threads 1,2`: one profiling build run at each thread count, the per-node
times side by side with each node's speedup, its time beyond perfect scaling, and two parts of
that: time outside the pool's jobs (the caller alone) and time waiting inside them."""
import numpy as np
import onnx
import pytest
from onnx import helper

from nnbuild.analysis.profile import chrome_trace, profile_threads, scaling_table
from nnbuild.cli import main
from nnbuild.options import Options

from helpers import make_model


def _mlp(path):
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("MatMul", ["x", "W0"], ["m"], name="fc0"),
             helper.make_node("Relu", ["m"], ["h"], name="relu0"),
             helper.make_node("MatMul", ["h", "W1"], ["y"], name="fc1")]
    onnx.save(make_model(nodes, {"x": (np.float32, [64, 256])}, ["y"],
                         {f"W{k}": rng.standard_normal((256, 256)).astype(np.float32) / 16
                          for k in range(2)}), path)
    return str(path)


def test_profile_at_one_and_two_threads_side_by_side(tmp_path):
    one, two = profile_threads(_mlp(tmp_path / "mlp.onnx"), Options(), (1, 2), runs=3,
                               work_dir=str(tmp_path / "work"))
    assert (one.threads, two.threads) == (1, 2)
    assert [r.label for r in one.rows] == [r.label for r in two.rows] == ["fc0+relu0", "fc1"]
    assert all(r.seconds > 0 for r in one.rows + two.rows)
    lines = scaling_table([one, two]).splitlines()
    assert lines[0].split() == ["node", "op", "ms@1", "ms@2", "x@2", "lost@2", "alone@2",
                                "wait@2"]
    fc1 = lines[2].split()
    assert fc1[:2] == ["fc1", "MatMul"]
    ms1, ms2, speedup, lost, alone, wait = (float(v) for v in fc1[2:])
    assert (alone, wait) == (round(two.rows[1].alone_s() * 1e3, 4),
                             round(two.rows[1].wait_s(2) * 1e3, 4))
    assert (ms1, ms2) == (round(one.rows[1].seconds * 1e3, 4), round(two.rows[1].seconds * 1e3, 4))
    assert speedup == pytest.approx(ms1 / ms2, abs=0.01)
    assert lost == pytest.approx(ms2 - ms1 / 2, abs=2e-4)
    assert lines[3].startswith("kernels: ") and "at 1" in lines[3] and "at 2" in lines[3]
    top = scaling_table([one, two], top=1).splitlines()
    assert len(top) == 1 + 1 + 4                   # header, the node losing most, totals


def test_the_pools_share_of_each_node(tmp_path):
    """At one thread no job goes to the pool: each node's time is the caller's alone. At two,
    a 64 x 256 x 256 product (8 MFLOP) is split over the workers: most of its time is inside
    pooled jobs, and the tasks' time of both threads fits in them (busy <= 2 x pooled)."""
    one, two = profile_threads(_mlp(tmp_path / "mlp.onnx"), Options(), (1, 2), runs=3,
                               work_dir=str(tmp_path / "work"))
    assert all(r.pooled_s == r.busy_s == 0.0 and r.alone_s() == r.seconds for r in one.rows)
    for r in two.rows:
        # per run pooled <= the step's time and busy <= 2 x pooled, so also their medians (the
        # step timer's clock is C11 timespec_get, the pool's CLOCK_MONOTONIC: 1% for the two)
        assert 0 < r.pooled_s <= r.seconds * 1.01 and 0 < r.busy_s <= 2 * r.pooled_s, r
        assert r.alone_s() == max(r.seconds - r.pooled_s, 0.0)
        assert r.wait_s(2) == pytest.approx(r.pooled_s - r.busy_s / 2, abs=1e-12)


def test_the_last_runs_timeline_of_tasks_per_thread(tmp_path):
    """Each step's start is marked on the pool's clock and each pooled task is recorded with its
    step and thread: at 2 threads every task lies inside its step, on thread 0 (the caller) or
    1; at 1 thread there are marks only. The Chrome trace shows them as process 2."""
    one, two = profile_threads(_mlp(tmp_path / "mlp.onnx"), Options(), (1, 2), runs=2,
                               work_dir=str(tmp_path / "work"))
    assert [e[:2] for e in one.timeline] == [(k, -1) for k in range(len(one.rows) + 1)]
    marks = {step: start for step, thread, start, _ in two.timeline if thread < 0}
    assert sorted(marks) == list(range(len(two.rows) + 1)) and marks[0] == 0.0
    assert all(marks[k] <= marks[k + 1] for k in range(len(two.rows)))
    tasks = [e for e in two.timeline if e[1] >= 0]
    assert {step for step, *_ in tasks} == {0, 1}              # both MatMuls go to the pool
    for step, thread, start, end in tasks:
        assert thread in (0, 1) and marks[step] <= start <= end <= marks[step + 1]
    trace = chrome_trace(two)["traceEvents"]
    on_threads = [e for e in trace if e.get("pid") == 2 and e.get("tid", 0) > 0]
    assert len(on_threads) == len(tasks)
    assert {e["name"] for e in on_threads} == {"fc0+relu0", "fc1"}


def test_profile_cli_takes_a_list_of_thread_counts(tmp_path, capsys):
    model = _mlp(tmp_path / "mlp.onnx")
    args = ["profile", model, "--runs", "2", "--trace", str(tmp_path / "t.json"),
            "--html", str(tmp_path / "r.html")]
    assert main(args + ["--threads", "1,2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[2:] == ["ms@1", "ms@2", "x@2", "lost@2", "alone@2", "wait@2"]
    assert main(args + ["--threads", "0,2"]) != 0
    assert "--threads 0,2" in capsys.readouterr().err
