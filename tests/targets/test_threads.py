"""The thread pool (hal/common/nn_pool.c) and what it promises.

- The pool alone (tests/targets/pool_driver.c): every task of a job runs exactly once, with
  1..4 threads all threads take part, two concurrent callers both complete; also under
  ThreadSanitizer when it links here.
- Whole networks (resnet_small, mobilenet_small, transformer_small from tests/models/data):
  outputs at 1, 2, 3 and 4 threads are bit-identical, through the app (--threads N) and through
  the C API (<p>_set_num_threads from Python), and match onnxruntime.
- A matrix product large enough to be split into many tiles: bit-identical at every thread
  count, for every target this CPU runs.
(No heap allocation during runs with threads > 1: tests/hardening/harness.c.)
"""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import helper

import nnbuild
from nnbuild.resources import templates_dir
from nnbuild.testing import MODEL_TOLERANCE, OP_TOLERANCE, assert_close
from helpers import make_model, onnxruntime_outputs, random_inputs, target_param

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), "models", "data")
COMMON = os.path.join(templates_dir(), "hal", "common")
THREADS = (1, 2, 3, 4)
CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def build_pool_driver(tmp_path, cc: str, flags: list) -> str:
    (tmp_path / "nn_config.h").write_text("#define NN_PREFIX t\n")
    exe = str(tmp_path / "driver")
    cmd = [cc, "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pthread", *flags,
           "-I", str(tmp_path), "-I", COMMON, os.path.join(COMMON, "nn_pool.c"),
           os.path.join(HERE, "pool_driver.c"), "-o", exe]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return exe


@pytest.mark.skipif(CC is None, reason="no C compiler")
def test_pool_runs_every_task_once_on_all_threads(tmp_path):
    proc = subprocess.run([build_pool_driver(tmp_path, CC, [])], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "PASSED" in proc.stdout, proc.stdout + proc.stderr


def _links_tsan(cc) -> bool:
    proc = subprocess.run([cc, "-fsanitize=thread", "-x", "c", "-", "-o", os.devnull],
                          input="int main(void){return 0;}", capture_output=True, text=True)
    return proc.returncode == 0


@pytest.mark.skipif(not shutil.which("clang") or not _links_tsan("clang"),
                    reason="no ThreadSanitizer runtime")
def test_pool_is_thread_sanitizer_clean(tmp_path):
    exe = build_pool_driver(tmp_path, shutil.which("clang"), ["-fsanitize=thread"])
    proc = subprocess.run([exe], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TSAN_OPTIONS": "halt_on_error=1:exitcode=25"})
    assert proc.returncode == 0 and "WARNING: ThreadSanitizer" not in proc.stderr, \
        proc.stdout + proc.stderr[-4000:]


def run_app(app: str, feeds: dict, names: list, work, threads: int) -> dict:
    out = work / f"out{threads}"
    cmd = [app, "--output-dir", str(out), "--threads", str(threads)]
    for i, (name, value) in enumerate(feeds.items()):
        np.save(work / f"in{i}.npy", value)
        cmd += ["--input", f"{name}={work / f'in{i}.npy'}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return {name: np.load(out / f"{name}.npy") for name in names}


def assert_identical(a: dict, b: dict, what: str) -> None:
    assert list(a) == list(b), what
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, what
        assert a[name].tobytes() == b[name].tobytes(), f"{what}: output {name} differs"


@pytest.mark.parametrize("net,target", [
    ("resnet_small", "host"), ("mobilenet_small", "host"), ("transformer_small", "host"),
    ("mobilenet_small", "generic")])
def test_networks_are_bit_identical_at_every_thread_count(net, target, tmp_path):
    path = os.path.join(DATA, f"{net}.onnx")
    model = onnx.load(path)
    feeds = random_inputs(model)
    names = [o.name for o in model.graph.output]
    result = nnbuild.build(path, str(tmp_path / "project"), name=net, target=target)
    by_app = {t: run_app(result.app, feeds, names, tmp_path, t) for t in THREADS}
    compiled = nnbuild.compile(path, cache_dir=str(tmp_path / "cache"), name=net, target=target)
    by_api = {}
    for t in THREADS:
        compiled.set_num_threads(t)
        by_api[t] = compiled.run(feeds)
    for t in THREADS:
        assert_identical(by_app[t], by_app[1], f"{net}: app at {t} threads vs 1")
        assert_identical(by_api[t], by_app[1], f"{net}: C API at {t} threads vs app at 1")
    expected = onnxruntime_outputs(model, feeds)
    for name, value in expected.items():
        assert_close(by_app[1][name], value, MODEL_TOLERANCE, what=f"{net} output {name}")


@target_param()
def test_split_matrix_product_is_bit_identical_at_every_thread_count(target, tmp_path):
    """Y = X W + b with 300 x 384 x 520: many tiles over rows and columns."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((384, 520)).astype(np.float32)
    b = rng.standard_normal(520).astype(np.float32)
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["t"]),
                        helper.make_node("Add", ["t", "b"], ["y"])],
                       {"x": (np.float32, [300, 384])}, ["y"], {"w": w, "b": b})
    feeds = {"x": rng.standard_normal((300, 384)).astype(np.float32)}
    compiled = nnbuild.compile(model, cache_dir=str(tmp_path), target=target)
    results = {}
    for t in THREADS:
        compiled.set_num_threads(t)
        results[t] = compiled.run(feeds)
        assert_identical(results[t], results[1], f"{target}: {t} threads vs 1")
    expected = onnxruntime_outputs(model, feeds)
    assert_close(results[1]["y"], expected["y"], OP_TOLERANCE, what="y")
