"""What the whole-network tests share: run a built app on .npy inputs, and compare every output
with MODEL_TOLERANCE."""
from __future__ import annotations

import os
import subprocess

import numpy as np

from nnbuild.codegen.names import app_output_files    # the app's file name for each output
from nnbuild.testing import MODEL_TOLERANCE, assert_close

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
APP_TIMEOUT_S = 600


def run_app(app: str, feeds: dict, output_names: list, work_dir: str) -> dict:
    """Run ``app --input NAME=FILE.npy ... --output-dir DIR`` and read back every output."""
    out_dir = os.path.join(work_dir, "outputs")
    os.makedirs(out_dir, exist_ok=True)
    cmd = [app, "--output-dir", out_dir]
    for i, (name, array) in enumerate(feeds.items()):
        path = os.path.join(work_dir, f"input{i}.npy")
        np.save(path, array)
        cmd += ["--input", f"{name}={path}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=APP_TIMEOUT_S)
    assert proc.returncode == 0, (f"{os.path.basename(app)} exited with {proc.returncode}: "
                                  f"{proc.stderr.strip() or proc.stdout.strip()}")
    files = app_output_files(list(output_names))
    return {name: np.load(os.path.join(out_dir, f)) for name, f in zip(output_names, files)}


def assert_outputs_match(actual: dict, expected: dict, what: str) -> None:
    """Same output names in the same order, each within MODEL_TOLERANCE."""
    assert list(actual) == list(expected), f"{what}: outputs {list(actual)} != {list(expected)}"
    for name in expected:
        assert_close(actual[name], expected[name], MODEL_TOLERANCE, what=f"{what} output {name}")
