"""CMake integration, as a user does it: find_package(nnbuild) + nn_add_model() in their own
project (examples/cmake-app: two models in one executable), configure, build, run; editing a
model regenerates and rebuilds, an unchanged model does not; mistakes fail at configure time."""
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from cmake_helpers import build, configure, copy_example, example_outputs, pattern
from helpers import onnxruntime_outputs
from nnbuild.testing import MODEL_TOLERANCE, assert_close

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples", "cmake-app"))


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """examples/cmake-app, configured and built once: (source dir, build dir, first build log)."""
    source = copy_example("cmake-app", tmp_path_factory.mktemp("cmake"))
    build_dir = os.path.join(source, "build")
    configure(source, build_dir)
    return source, build_dir, build(build_dir)


def run_app(build_dir: str) -> dict:
    out = subprocess.run([os.path.join(build_dir, "app")], capture_output=True, text=True,
                         check=True).stdout
    return example_outputs(out)


def expected(source: str) -> dict:
    """onnxruntime on the app's input pattern, for both models."""
    models = os.path.join(source, "models")
    probs = onnxruntime_outputs(onnx.load(os.path.join(models, "classifier.onnx")),
                                {"image": pattern((1, 3, 32, 32))})["probs"]
    scores = onnxruntime_outputs(onnx.load(os.path.join(models, "scorer.onnx")),
                                 {"features": pattern((4, 16))})["scores"]
    return {"classifier": probs.reshape(-1), "scorer": scores.reshape(-1)}


def test_two_models_in_one_executable_match_onnxruntime(app):
    source, build_dir, log = app
    assert "generating classifier.nnbuild" in log and "generating scorer.nnbuild" in log
    actual, reference = run_app(build_dir), expected(source)
    for model in ("classifier", "scorer"):
        assert_close(actual[model], reference[model], MODEL_TOLERANCE, what=model)


def test_standalone_app_from_nn_add_model_executable(app, tmp_path):
    source, build_dir, _ = app
    np.save(tmp_path / "image.npy", pattern((1, 3, 32, 32)))
    subprocess.run([os.path.join(build_dir, "classifier_app"), "--input",
                    f"image={tmp_path / 'image.npy'}", "--output-dir", str(tmp_path)], check=True)
    assert_close(np.load(tmp_path / "probs.npy").reshape(-1), expected(source)["classifier"],
                 MODEL_TOLERANCE, what="classifier_app")


def test_unchanged_model_is_not_regenerated(app):
    _, build_dir, _ = app
    assert "no work to do" in build(build_dir)


def test_touched_model_regenerates_but_recompiles_nothing(app):
    source, build_dir, _ = app
    os.utime(os.path.join(source, "models", "scorer.onnx"))
    log = build(build_dir)
    assert "generating scorer.nnbuild" in log and "classifier.nnbuild" not in log
    assert "Building" not in log, log           # identical files keep their timestamps
    assert "no work to do" in build(build_dir)


def test_edited_model_is_regenerated_and_rebuilt(app):
    source, build_dir, _ = app
    path = os.path.join(source, "models", "scorer.onnx")
    model = onnx.load(path)
    bias = next(t for t in model.graph.initializer if t.name == "fc2.b")
    bias.CopyFrom(numpy_helper.from_array(np.array([10, 20, 30], np.float32), "fc2.b"))
    onnx.save(model, path)
    log = build(build_dir)
    assert "generating scorer.nnbuild" in log and "Linking C executable app" in log
    actual, reference = run_app(build_dir), expected(source)
    assert_close(actual["scorer"], reference["scorer"], MODEL_TOLERANCE, what="edited scorer")
    assert actual["scorer"][0] > 5                      # the new bias shows


def test_reconfigure_with_the_same_options_changes_nothing(app):
    source, build_dir, _ = app
    configure(source, build_dir)
    assert "no work to do" in build(build_dir)


def user_project(tmp_path, body: str) -> str:
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(user LANGUAGES C)\n"
        "find_package(nnbuild CONFIG REQUIRED)\n" + body)
    return str(tmp_path)


def test_unknown_argument_is_a_configure_error(tmp_path):
    source = user_project(tmp_path, "nn_add_model(m MODEL m.onnx WEIGTHS file)\n")
    proc = configure(source, str(tmp_path / "build"), check=False)
    assert proc.returncode != 0
    assert "nn_add_model(m): unknown arguments: WEIGTHS;file" in proc.stderr


def test_no_python_with_nnbuild_is_a_clear_configure_error(tmp_path):
    source = user_project(tmp_path, "")
    proc = configure(source, str(tmp_path / "build"), "-DNNBUILD_PYTHON=/nonexistent/python",
                     check=False)
    assert proc.returncode != 0
    assert "no Python with nnbuild installed was found" in proc.stderr
    assert "-DNNBUILD_PYTHON=" in proc.stderr


def test_changed_options_regenerate(tmp_path):
    model = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "cmake-app",
                         "models", "scorer.onnx")
    source = user_project(tmp_path, f'nn_add_model(scorer MODEL "{os.path.abspath(model)}" '
                          'SHAPES "features=${ROWS}x16" PREFIX my_scorer)\n')
    build_dir = str(tmp_path / "build")
    configure(source, build_dir, "-DROWS=2")
    assert "generating scorer.nnbuild" in build(build_dir)
    assert "no work to do" in build(build_dir)
    configure(source, build_dir, "-DROWS=5")
    assert "generating scorer.nnbuild" in build(build_dir)
    header = tmp_path / "build" / "scorer.nnbuild" / "project" / "include" / "my_scorer.h"
    assert "my_scorer_run" in header.read_text()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_makefile_generator_regenerates_once_per_change(tmp_path):
    model = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "cmake-app",
                         "models", "scorer.onnx")
    local = tmp_path / "scorer.onnx"
    shutil.copy(model, local)
    source = user_project(tmp_path, 'nn_add_model(scorer MODEL scorer.onnx '
                                    'SHAPES "features=1x16")\nadd_executable(app app.c)\n'
                                    'target_link_libraries(app PRIVATE scorer)\n')
    (tmp_path / "app.c").write_text(
        '#include "scorer.h"\nint main(void) { return scorer_num_inputs() != 1; }\n')
    build_dir = str(tmp_path / "build")
    configure(source, build_dir, generator="Unix Makefiles")

    def make():
        return subprocess.run(["make", "-C", build_dir], capture_output=True, text=True,
                              check=True).stdout
    assert "generating scorer.nnbuild" in make()
    assert "generating" not in make()
    os.utime(local)
    assert "generating scorer.nnbuild" in make()
    assert "generating" not in make()
    subprocess.run([os.path.join(build_dir, "app")], check=True)
