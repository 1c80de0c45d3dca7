"""Atomic and concurrent builds.

`nnbuild build` killed (SIGKILL) at several points of regenerating an existing project: during
code generation and while staging files the folder is untouched; inside the in-place update
(the journaled renames) the next nnbuild run (nnbuild.build.outdir.recover, which every publish
calls first) rolls the folder back to the previous project; in each case the previous app still
runs and gives the previous outputs, and a later build publishes the new model cleanly.
nnbuild.compile from several processes and threads at once on one cache entry: one entry,
complete, every caller gets correct outputs (the entry is made under an fcntl lock).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import nnbuild
from nnbuild.build import outdir

KILLER = r'''
import os, signal, sys
point, n, model, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
import nnbuild.api as api
from nnbuild.codegen.project import GeneratedProject
def die():
    os.kill(os.getpid(), signal.SIGKILL)
if point == "codegen":                       # while translating / generating
    api.generate_project = lambda *a, **k: die()
elif point == "staging":                     # after n files of the new project are staged
    def write_into(self, folder, _orig=GeneratedProject.write_into):
        self.files = dict(list(sorted(self.files.items()))[:n])
        _orig(self, folder)
        die()
    GeneratedProject.write_into = write_into
elif point == "update":                      # at the n-th rename of the in-place update
    real, count = os.replace, [0]
    def replace(a, b):
        count[0] += 1
        if count[0] == n:
            die()
        real(a, b)
    os.replace = replace
elif point == "build":                       # the new project published, cmake not yet run
    api.build_project = lambda *a, **k: die()
elif point in ("configure", "compile"):      # inside cmake's configure / ninja's build
    import glob, subprocess, time
    from nnbuild.build import driver
    real_run = driver.subprocess.run
    def run(cmd, **kw):
        if (point == "compile") != ("--build" in cmd):
            return real_run(cmd, **kw)
        child = subprocess.Popen(cmd, **kw)
        deadline = time.time() + 60
        while point == "compile" and time.time() < deadline and child.poll() is None and \
                len(glob.glob(os.path.join(out, "build", "**", "*.o"), recursive=True)) < n:
            time.sleep(0.01)
        if point == "configure":
            time.sleep(n / 10)
        os.killpg(0, signal.SIGKILL)          # nnbuild, cmake and ninja together
    driver.subprocess.run = run
from nnbuild import cli
sys.exit(cli.main(["build", model, "-o", out]))
'''


def model_with_weights(seed: int) -> onnx.ModelProto:
    w = np.random.default_rng(seed).standard_normal((6, 4)).astype(np.float32)
    b = np.random.default_rng(seed + 100).standard_normal(4 + seed).astype(np.float32)[:4]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"),
             helper.make_node("Add", ["m", "b"], ["y"], name="add")]
    if seed:                                  # the new model also has one more node
        nodes[-1] = helper.make_node("Add", ["m", "b"], ["a"], name="add")
        nodes.append(helper.make_node("Relu", ["a"], ["y"], name="relu"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [3, 6])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [3, 4])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def snapshot(folder: str) -> dict:
    """rel path -> sha256 of every file outside build/."""
    out = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if os.path.relpath(os.path.join(root, d), folder) != "build"]
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


def app_output(app: str, tmp, x) -> np.ndarray:
    np.save(tmp / "x.npy", x)
    subprocess.run([app, "--input", str(tmp / "x.npy"), "--output-dir", str(tmp / "o")],
                   check=True, capture_output=True)
    return np.load(tmp / "o" / "y.npy")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The previous project (model A) built in root/net; model B saved beside it."""
    root = tmp_path_factory.mktemp("atomic")
    onnx.save(model_with_weights(0), str(root / "a.onnx"))
    onnx.save(model_with_weights(1), str(root / "net.onnx"))
    result = nnbuild.build(str(root / "a.onnx"), str(root / "net"), name="net")
    x = np.random.default_rng(5).standard_normal((3, 6)).astype(np.float32)
    return root, result, x, app_output(result.app, root, x)


KILL_POINTS = [("codegen", 0), ("staging", 1), ("staging", 5), ("update", 1), ("update", 2),
               ("update", 4), ("update", 9)]


@pytest.mark.parametrize("point,n", KILL_POINTS, ids=[f"{p}{n}" for p, n in KILL_POINTS])
def test_killed_build_leaves_the_previous_project(built, point, n, tmp_path):
    root, result, x, previous_y = built
    before = snapshot(str(root / "net"))
    proc = subprocess.run([sys.executable, "-c", KILLER, point, str(n), str(root / "net.onnx"),
                           str(root / "net")], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    rolled_back = outdir.recover(str(root / "net"))          # what the next run does first
    assert rolled_back == (point == "update" and n > 1)     # rename 1 writes the journal
    assert snapshot(str(root / "net")) == before
    np.testing.assert_array_equal(app_output(result.app, tmp_path, x), previous_y)


BUILD_KILLS = [("configure", 2), ("compile", 1), ("compile", 3)]


@pytest.mark.parametrize("point,n", BUILD_KILLS, ids=[f"{p}{n}" for p, n in BUILD_KILLS])
def test_killed_inside_cmake_or_ninja_rolls_back_to_the_previous_app(point, n, tmp_path):
    """Killed (the whole process group) while cmake configures or ninja compiles the new
    project: the next run restores the previous project and its app; rebuilding the previous
    model then recompiles what the killed build touched (no stale objects of the new model)."""
    onnx.save(model_with_weights(0), str(tmp_path / "a.onnx"))
    onnx.save(model_with_weights(1), str(tmp_path / "b.onnx"))
    out = tmp_path / "net"
    first = nnbuild.build(str(tmp_path / "a.onnx"), str(out), name="net")
    x = np.random.default_rng(7).standard_normal((3, 6)).astype(np.float32)
    previous_y = app_output(first.app, tmp_path, x)
    before = snapshot(str(out))
    proc = subprocess.run([sys.executable, "-c", KILLER, point, str(n), str(tmp_path / "b.onnx"),
                           str(out)], capture_output=True, text=True, start_new_session=True)
    assert proc.returncode == -9, proc.stderr
    assert outdir.recover(str(out))
    assert snapshot(str(out)) == before
    np.testing.assert_array_equal(app_output(first.app, tmp_path, x), previous_y)
    again = nnbuild.build(str(tmp_path / "a.onnx"), str(out), name="net")
    np.testing.assert_array_equal(app_output(again.app, tmp_path, x), previous_y)
    assert not os.path.exists(out / outdir.JOURNAL)


def test_a_failing_build_keeps_the_new_project_and_its_log(tmp_path, monkeypatch):
    """A build error (not a kill) commits: the new sources stay beside the log to debug."""
    from nnbuild import api
    from nnbuild.errors import BuildError
    onnx.save(model_with_weights(0), str(tmp_path / "a.onnx"))
    onnx.save(model_with_weights(1), str(tmp_path / "b.onnx"))
    nnbuild.build(str(tmp_path / "a.onnx"), str(tmp_path / "net"), name="net")

    def broken(*args, **kwargs):
        raise BuildError("build failed: error: injected")
    monkeypatch.setattr(api, "build_project", broken)
    with pytest.raises(BuildError):
        nnbuild.build(str(tmp_path / "b.onnx"), str(tmp_path / "net"), name="net")
    assert not os.path.exists(tmp_path / "net" / outdir.JOURNAL)
    assert "relu" in (tmp_path / "net" / "src" / "net.c").read_text()


def test_killed_before_the_cmake_build_then_a_rerun_builds_the_new_model(built, tmp_path):
    """Killed once the new project is published: the rerun builds it; no staging folder is
    left beside -o by any of the killed runs."""
    root, result, x, previous_y = built
    proc = subprocess.run([sys.executable, "-c", KILLER, "build", "0", str(root / "net.onnx"),
                           str(root / "net")], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    new = nnbuild.build(str(root / "net.onnx"), str(root / "net"))
    y = app_output(new.app, tmp_path, x)
    expected = np.maximum(x @ numpy_helper.to_array(model_with_weights(1).graph.initializer[0])
                          + numpy_helper.to_array(model_with_weights(1).graph.initializer[1]), 0)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    assert not [n for n in os.listdir(root) if n.startswith(".net.tmp-")]
    assert not os.path.exists(root / "net" / outdir.JOURNAL)


def _compile_and_run(model_path: str, cache: str, x) -> np.ndarray:
    return nnbuild.compile(model_path, cache_dir=cache).run({"x": x})["y"]


CHILD = r'''
import sys, numpy as np, nnbuild
y = nnbuild.compile(sys.argv[1], cache_dir=sys.argv[2]).run({"x": np.load(sys.argv[3])})["y"]
np.save(sys.argv[4], y)
'''


def test_concurrent_compiles_share_one_cache_entry(tmp_path):
    """Three processes and three threads compile the same model into an empty cache at once."""
    onnx.save(model_with_weights(0), str(tmp_path / "m.onnx"))
    x = np.random.default_rng(6).standard_normal((3, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    m = model_with_weights(0)
    expected = x @ numpy_helper.to_array(m.graph.initializer[0]) \
        + numpy_helper.to_array(m.graph.initializer[1])
    cache = str(tmp_path / "cache")
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "m.onnx"), cache,
                               str(tmp_path / "x.npy"), str(tmp_path / f"y{i}.npy")])
             for i in range(3)]
    results, errors = [], []

    def worker():
        try:
            results.append(_compile_and_run(str(tmp_path / "m.onnx"), cache, x))
        except Exception as e:              # reported below
            errors.append(e)
    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait() for p in procs] == [0, 0, 0]
    assert not errors, errors
    results += [np.load(tmp_path / f"y{i}.npy") for i in range(3)]
    assert len(results) == 6
    for y in results:
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    entries = [n for n in os.listdir(cache) if not n.startswith(".")]
    assert len(entries) == 1 and os.path.isfile(os.path.join(cache, entries[0], "complete"))
    assert not [n for n in os.listdir(cache) if ".tmp-" in n]


def test_interrupted_first_update_of_an_empty_folder_is_recovered(built, tmp_path):
    """An existing empty -o killed mid-update holds a journal, not nnbuild.json: the next run
    still takes the folder, rolls it back (empty) and publishes."""
    root, _, _, _ = built
    out = tmp_path / "fresh"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", KILLER, "update", "3", str(root / "net.onnx"),
                           str(out)], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert os.path.isfile(out / outdir.JOURNAL)
    nnbuild.generate(str(root / "net.onnx"), str(out))
    assert os.path.isfile(out / "nnbuild.json") and not os.path.exists(out / outdir.JOURNAL)
