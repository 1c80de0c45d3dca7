"""benchmarks/run.py, the issue-6 benchmark command: one small run on the MLP gives a row per
thread count with both sides' median and p90 latency, peak RSS, the ratio, and the library's
code size without its weights; the table ends with the geometric mean per thread count."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MLP_WEIGHT_KB = (784 * 1024 + 1024 * 1024 + 1024 * 10) * 4 / 1024


def test_benchmark_run_reports_latency_memory_and_code_size(tmp_path):
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "run.py"),
                    "--models", "mlp", "--threads", "1,2", "--runs", "5", "--warmup", "1",
                    "--repeat", "1", "--work", str(tmp_path / "work"), "--json", str(out_json),
                    "--markdown", str(out_md)], check=True, capture_output=True, cwd=ROOT)
    result = json.loads(out_json.read_text())
    assert result["fma_peak_gflops_per_core"] > 0
    assert result["cpu"] and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", result["started_utc"])
    rows = result["rows"]
    assert [(r["model"], r["threads"]) for r in rows] == [("mlp", 1), ("mlp", 2)]
    for r in rows:
        assert r["check"] == "ok"
        assert 0 < r["ours_ms"] <= r["ours_p90"] and 0 < r["ort_ms"] <= r["ort_p90"]
        assert abs(r["ratio"] - r["ours_ms"] / r["ort_ms"]) < 1e-9
        # the app holds its weights (7.4 MB) in memory, onnxruntime its interpreter too
        assert MLP_WEIGHT_KB / 1024 < r["ours_rss_mb"] < 200 and r["ort_rss_mb"] > 0
        # code without the weights: the kernels and the model's step list, well under 1 MB
        assert 1 < r["code_kb"] < 1024
    table = out_md.read_text()
    assert "| mlp | 1 |" in table and "| mlp | 2 |" in table
    assert table.count("**geometric mean**") == 2
