"""`nnbuild profile --threads 1,2`: one profiling build run at each thread count, the per-node
times side by side with each node's speedup and its time beyond perfect scaling."""
import numpy as np
import onnx
import pytest
from onnx import helper

from nnbuild.analysis.profile import profile_threads, scaling_table
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
    assert lines[0].split() == ["node", "op", "ms@1", "ms@2", "x@2", "lost@2"]
    fc1 = lines[2].split()
    assert fc1[:2] == ["fc1", "MatMul"]
    ms1, ms2, speedup, lost = (float(v) for v in fc1[2:])
    assert (ms1, ms2) == (round(one.rows[1].seconds * 1e3, 4), round(two.rows[1].seconds * 1e3, 4))
    assert speedup == pytest.approx(ms1 / ms2, abs=0.01)
    assert lost == pytest.approx(ms2 - ms1 / 2, abs=2e-4)
    assert lines[3].startswith("kernels: ") and "at 1" in lines[3] and "at 2" in lines[3]
    top = scaling_table([one, two], top=1).splitlines()
    assert len(top) == 1 + 1 + 3                   # header, the node losing most, totals


def test_profile_cli_takes_a_list_of_thread_counts(tmp_path, capsys):
    model = _mlp(tmp_path / "mlp.onnx")
    args = ["profile", model, "--runs", "2", "--trace", str(tmp_path / "t.json"),
            "--html", str(tmp_path / "r.html")]
    assert main(args + ["--threads", "1,2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[2:] == ["ms@1", "ms@2", "x@2", "lost@2"]
    assert main(args + ["--threads", "0,2"]) != 0
    assert "--threads 0,2" in capsys.readouterr().err
