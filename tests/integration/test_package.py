"""The model as a Python extension, as a user makes and ships it: `nnbuild package`, then
`pip wheel` (an isolated build: nnbuild is not there, the generated sources are), then the
wheel installed into a fresh venv that has no nnbuild, where examples/python-extension runs."""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

from cmake_helpers import EXAMPLES
from helpers import onnxruntime_outputs
from nnbuild.testing import MODEL_TOLERANCE, assert_close



def _example_model() -> str:
    """The quick-start classifier, written by examples/make_example_model.py into a temporary
    folder (the model is generated, not checked in: a fresh clone has none)."""
    import tempfile
    path = os.path.join(tempfile.mkdtemp(prefix="nnbuild-example-"), "classifier.onnx")
    subprocess.run([sys.executable, os.path.join(EXAMPLES, "make_example_model.py"), path],
                   check=True, capture_output=True)
    return path


MODEL = _example_model()
USE = os.path.join(EXAMPLES, "python-extension", "use_classifier.py")


def nnbuild(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnbuild", *args], capture_output=True, text=True)


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True)


def wheel(package: str, dist: str, *args: str) -> str:
    """pip wheel -v; returns the wheel's path."""
    proc = pip("wheel", "-v", "--no-deps", package, "-w", dist, *args)
    if proc.returncode and "satisfies the requirement scikit-build-core" in proc.stderr:
        pytest.skip("scikit-build-core could not be fetched for the isolated build (offline?)")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if "--no-build-isolation" not in args:    # nnbuild is not in pip's build environment
        assert "classifier: building the generated sources" in proc.stdout + proc.stderr
    wheels = [f for f in os.listdir(dist) if f.endswith(".whl")]
    assert len(wheels) == 1, wheels
    return os.path.join(dist, wheels[0])


def image() -> np.ndarray:
    return np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("pkg") / "classifier-pkg")
    proc = nnbuild("package", MODEL, "-o", folder, "--name", "classifier")
    assert proc.returncode == 0, proc.stderr
    assert "pip install" in proc.stdout
    return folder


@pytest.fixture(scope="module")
def venv(package, tmp_path_factory):
    """A fresh venv (no nnbuild, no system site-packages) with the package's wheel installed."""
    root = tmp_path_factory.mktemp("venv")
    whl = wheel(package, str(root / "dist"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "env")], check=True)
    python = str(root / "env" / "bin" / "python")
    proc = pip("--python", python, "install", "--no-input", whl)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return python


def run_in(python: str, code: str, cwd) -> str:
    """``python -c code`` in ``cwd`` (not the checkout: `-c` puts the folder on sys.path)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_package_folder_is_a_scikit_build_core_project(package):
    files = set()
    for folder, _, names in os.walk(package):
        files |= {os.path.relpath(os.path.join(folder, n), package) for n in names}
    assert {"pyproject.toml", "CMakeLists.txt", "native.c", "python/classifier/__init__.py",
            "model/classifier.onnx", "generated/include/classifier.h"} <= files
    with open(os.path.join(package, "pyproject.toml")) as f:
        assert 'build-backend = "scikit_build_core.build"' in f.read()


def test_wheel_runs_in_a_fresh_venv_without_nnbuild(venv, tmp_path):
    assert "absent" in run_in(venv, "import importlib.util as u; "
                                    "print('absent' if u.find_spec('nnbuild') is None else 'here')", tmp_path)
    np.save(tmp_path / "x.npy", image())
    run_in(venv, f"import numpy as np, classifier; x = np.load({str(tmp_path / 'x.npy')!r}); "
                 f"np.save({str(tmp_path / 'y.npy')!r}, classifier.run(x))", tmp_path)
    expected = onnxruntime_outputs(onnx.load(MODEL), {"image": image()})["probs"]
    assert_close(np.load(tmp_path / "y.npy"), expected, MODEL_TOLERANCE, what="probs")


def test_example_script_runs_threads_and_reports_bad_inputs(venv):
    out = run_in(venv, open(USE).read(), cwd=os.path.dirname(USE))
    assert "TensorInfo(name='image', dtype=dtype('float32'), shape=(1, 3, 32, 32))" in out
    assert "TypeError: classifier.run: input 'image' has dtype float64, expected float32" in out
    assert "ValueError: classifier.run: input 'image' has shape [1, 2, 32, 32], " \
           "expected [1, 3, 32, 32]" in out


def test_sequential_runs_reuse_one_workspace(venv, package, tmp_path):
    """The extension keeps one workspace between calls: after the first run, runs allocate
    nothing of its size (tracemalloc sees the extension's PyMem_RawMalloc)."""
    with open(os.path.join(package, "generated", "nnbuild.json")) as f:
        arena = json.load(f)["arena_bytes"]
    out = run_in(venv, "import numpy as np, tracemalloc, classifier\n"
                       "x = np.zeros((1, 3, 32, 32), np.float32)\n"
                       "tracemalloc.start()\n"
                       "classifier.run(x)\n"
                       "kept, first = tracemalloc.get_traced_memory()\n"
                       "tracemalloc.reset_peak()\n"
                       "for _ in range(5):\n"
                       "    classifier.run(x)\n"
                       "print(first, tracemalloc.get_traced_memory()[1] - kept)\n", tmp_path)
    first, later = map(int, out.split())            # peak bytes above what was allocated
    assert first >= arena > later, (arena, first, later)


def test_dict_in_dict_out_and_name_errors(venv, tmp_path):
    out = run_in(venv, "import numpy as np, classifier\n"
                       "x = np.zeros((1, 3, 32, 32), np.float32)\n"
                       "print(sorted(classifier.run({'image': x})))\n"
                       "try:\n    classifier.run({'img': x})\n"
                       "except ValueError as e:\n    print(e)\n", tmp_path)
    assert "['probs']" in out
    assert "inputs are ['image']; unknown: ['img']; missing: ['image']" in out


def test_build_with_nnbuild_at_hand_compiles_the_model_with_nn_add_model(package, tmp_path):
    pytest.importorskip("scikit_build_core")
    proc = pip("wheel", "--no-deps", "--no-build-isolation", "-v", package, "-w", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # found with no flags: scikit-build-core's cmake.root entry point gives nnbuild_ROOT
    assert "classifier: compiling model/classifier.onnx with nnbuild" in proc.stdout + proc.stderr


def test_package_refuses_file_weights_and_foreign_folders(tmp_path):
    proc = nnbuild("package", MODEL, "-o", str(tmp_path / "p"), "--weights", "file")
    assert proc.returncode == 2 and "a package embeds its weights" in proc.stderr
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    proc = nnbuild("package", MODEL, "-o", str(tmp_path / "mine"))
    assert proc.returncode == 2 and "did not write" in proc.stderr
