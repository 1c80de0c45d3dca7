"""`nnbuild profile` accounts for the whole run: every node has a row, and the kernels' times
add up to the end-to-end latency (the acceptance check of the optimizer issue, on a small model
whose run is long next to the call from Python)."""
import numpy as np
import onnx
from onnx import helper

from nnbuild.analysis.profile import profile_model, table
from nnbuild.options import Options

from helpers import make_model


def test_kernel_times_sum_to_the_end_to_end_latency(tmp_path):
    rng = np.random.default_rng(0)
    names = ["x", "h1", "h2", "h3", "y"]
    nodes = [node for k in range(4) for node in (
        helper.make_node("MatMul", [names[k], f"W{k}"], [f"m{k}"], name=f"fc{k}"),
        helper.make_node("Tanh", [f"m{k}"], [names[k + 1]], name=f"tanh{k}"))]
    model = make_model(nodes, {"x": (np.float32, [192, 512])}, ["y"],
                       {f"W{k}": rng.standard_normal((512, 512)).astype(np.float32) / 23
                        for k in range(4)})
    path = tmp_path / "mlp.onnx"
    onnx.save(model, path)
    p = profile_model(str(path), Options(), runs=5, work_dir=str(tmp_path / "work"))
    assert [r.label for r in p.rows] == [f"fc{k}+tanh{k}" for k in range(4)]
    assert 0.9 <= p.run_coverage <= 1.0, table(p)
    assert 0 < p.coverage <= 1.1
    last = [line for line in table(p).splitlines() if line.startswith("kernels / end to end")]
    assert last == [f"kernels / end to end: the rows sum to {100 * p.coverage:.1f}% of it; each "
                    f"run's kernels take {100 * p.run_coverage:.1f}% of the run (medians)"]
