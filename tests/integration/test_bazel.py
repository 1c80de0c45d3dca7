"""The Bazel rules (bazel/, `load("@nnbuild//bazel:defs.bzl", "nn_model")`), on a copy of
examples/bazel-app with a second model that uses every other option:

- the example builds, its apps run and its cc_test passes; the outputs match onnxruntime;
- hermetic: two clean builds in different folders and output bases give byte-identical
  generated files, libraries and binaries, and a clean build with --disk_cache is served
  entirely from the cache (no action runs);
- Bazel, `nnbuild generate` and CMake's nn_add_model() generate identical sources for the same
  model and options.

The Bazel tests skip when `bazel` is not on PATH (Debian: apt-get install bazel-bootstrap). Each Bazel
server lives under the test's own --output_user_root and is shut down at the end. Every
generator run (Bazel's, `nnbuild generate`, CMake's) uses one snapshot of nnbuild's sources
taken at the start (PYTHONPATH), so an edit to the checkout meanwhile cannot make them differ.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import nnbuild
from helpers import make_model
from nnbuild import resources
from nnbuild.testing import MODEL_TOLERANCE, assert_close

BAZEL = shutil.which("bazel")
needs_bazel = pytest.mark.skipif(BAZEL is None, reason="bazel not installed "
                                 "(Debian: apt-get install bazel-bootstrap)")

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "..", "examples", "bazel-app")

# Every option of nn_model() other than the example's: the same names as nn_add_model().
SCORER_RULE = """
nn_model(
    name = "scorer",
    model = "models/scorer.onnx",
    target = "generic",
    weights = "file",
    opt_level = 1,
    shapes = ["features=4x16"],
    prefix = "mlp",
)
"""
SCORER_GENERATE = ["--target", "generic", "--weights", "file", "-O1", "--shape",
                   "features=4x16", "--name", "mlp"]
SCORER_CMAKE = ("nn_add_model(scorer MODEL models/scorer.onnx TARGET generic WEIGHTS file "
                "OPT_LEVEL 1 SHAPES features=4x16 PREFIX mlp)")


def scorer_model() -> onnx.ModelProto:
    """A small MLP with a symbolic batch: features f32[N,16] -> scores f32[N,3]."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array((rng.standard_normal(s) * 0.5).astype(np.float32), n)
             for n, s in (("w1", (16, 32)), ("b1", (32,)), ("w2", (32, 3)))]
    nodes = [helper.make_node("MatMul", ["features", "w1"], ["h0"], name="fc1"),
             helper.make_node("Add", ["h0", "b1"], ["h1"], name="fc1.bias"),
             helper.make_node("Tanh", ["h1"], ["h2"], name="tanh"),
             helper.make_node("MatMul", ["h2", "w2"], ["scores"], name="fc2")]
    graph = helper.make_graph(
        nodes, "scorer",
        [helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("scores", onnx.TensorProto.FLOAT, ["N", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def make_workspace(folder) -> str:
    """examples/bazel-app copied to ``folder``, nnbuild's repository named by its absolute
    path, plus the scorer model and rule."""
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("bazel-*"))
    workspace = os.path.join(folder, "WORKSPACE")
    with open(workspace) as f:
        text = f.read()
    assert 'path = "../../bazel"' in text
    with open(workspace, "w") as f:
        f.write(text.replace('path = "../../bazel"', f'path = "{resources.bazel_dir()}"'))
    onnx.save(scorer_model(), os.path.join(folder, "models", "scorer.onnx"))
    with open(os.path.join(folder, "BUILD"), "a") as f:
        f.write(SCORER_RULE)
    return str(folder)


def snapshot(folder) -> dict:
    """A copy of nnbuild's sources and templates in ``folder``; the environment that makes
    Python (and so nnbuild_configure, CMake and `python -m nnbuild`) import it."""
    package = os.path.dirname(os.path.abspath(nnbuild.__file__))
    ignore = shutil.ignore_patterns("__pycache__", "bazel", "cmake")
    shutil.copytree(package, os.path.join(folder, "nnbuild"), ignore=ignore)
    if not os.path.isdir(os.path.join(folder, "nnbuild", "templates")):     # a checkout
        shutil.copytree(resources.templates_dir(), os.path.join(folder, "templates"),
                        ignore=ignore)
    return {**os.environ, "PYTHONPATH": str(folder), "NNBUILD_PYTHON": sys.executable,
            "PYTHONDONTWRITEBYTECODE": "1"}


class Bazel:
    """One workspace and its own output root (so its own server and output base)."""

    def __init__(self, workspace, root, env):
        self.workspace, self.root, self.env = str(workspace), str(root), env

    def __call__(self, *args, check=True):
        cmd = [BAZEL, f"--output_user_root={self.root}", "--nohome_rc", "--max_idle_secs=300",
               *args]
        env = self.env
        proc = subprocess.run(cmd, cwd=self.workspace, env=env, capture_output=True, text=True,
                              timeout=600)
        if check:
            assert proc.returncode == 0, \
                f"{' '.join(args)} failed:\n" + "\n".join(proc.stderr.splitlines()[-40:])
        return proc

    def bin(self, *parts) -> str:
        return os.path.join(self.workspace, "bazel-bin", *parts)

    def shutdown(self):
        subprocess.run([BAZEL, f"--output_user_root={self.root}", "--nohome_rc",
                        "--max_idle_secs=300", "shutdown"], cwd=self.workspace,
                       capture_output=True, timeout=120)


def processes_line(stderr: str) -> str:
    """Bazel's summary of the build's spawns: 'INFO: 31 processes: 9 internal, 22 linux-sandbox.'"""
    lines = [line for line in stderr.splitlines() if re.match(r"INFO: \d+ process", line)]
    assert lines, stderr[-2000:]
    return lines[-1]


def tree(folder) -> dict:
    """Relative path -> bytes of every file below ``folder`` (symlinks followed)."""
    out = {}
    for root, _, files in os.walk(folder, followlinks=True):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder).replace(os.sep, "/")] = f.read()
    return out


def test_fixed_files_list_depends_only_on_the_options(tmp_path):
    """`nnbuild generate --fixed-files` (what nn_model runs): the same files as without it,
    plus the kernels and helpers the model does not use; the same list for any model; and
    the folders Bazel makes for the declared outputs do not count as someone else's files."""
    half = make_model([helper.make_node("Cast", ["x"], ["h"], to=onnx.TensorProto.FLOAT16),
                       helper.make_node("Neg", ["h"], ["y"])], {"x": (np.float32, [4])}, ["y"])
    onnx.save(scorer_model(), str(tmp_path / "scorer.onnx"))   # MatMul: the gemm kernels
    onnx.save(half, str(tmp_path / "half.onnx"))               # float16: src/nn_half.h
    lists = []
    for model, shapes in (("scorer", {"features": "4x16"}), ("half", {})):
        nnbuild.generate(str(tmp_path / f"{model}.onnx"), str(tmp_path / model), name="net",
                         shapes=shapes)
        fixed_dir = tmp_path / f"{model}-fixed"
        for folder in ("include", "src", "hal", "weights", "app"):
            (fixed_dir / folder).mkdir(parents=True)
        nnbuild.generate(str(tmp_path / f"{model}.onnx"), str(fixed_dir), name="net",
                         shapes=shapes, fixed_files=True)
        fixed = tree(fixed_dir)
        assert_same_sources(generated(fixed_dir), generated(tmp_path / model), "the default")
        assert sorted(json.loads(fixed["nnbuild.json"])["files"]) == sorted(fixed)
        lists.append(sorted(fixed))
    assert lists[0] == lists[1]


def test_the_rule_declares_every_file_generate_writes(tmp_path):
    """nn_model declares its outputs one by one (bazel/defs.bzl): every shipped hal/ header and
    source of the fixed file list must be among them, or a Bazel build cannot see it."""
    onnx.save(scorer_model(), str(tmp_path / "scorer.onnx"))
    nnbuild.generate(str(tmp_path / "scorer.onnx"), str(tmp_path / "p"), name="net",
                     shapes={"features": "4x16"}, fixed_files=True)
    with open(os.path.join(resources.bazel_dir(), "bazel", "defs.bzl")) as f:
        rule = f.read()
    files = json.loads((tmp_path / "p" / "nnbuild.json").read_text())["files"]
    shipped = [f[len("hal/"):] for f in files if re.fullmatch(r"hal/nn_\w+\.[ch]", f)]
    assert shipped and [f for f in shipped if f'"{f}"' not in rule
                        and f'"hal/{f}"' not in rule] == []


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Workspace A (built and tested, filling a disk cache) and B (another folder, another
    output base, built without the cache)."""
    base = tmp_path_factory.mktemp("bazel")
    cache = str(base / "disk-cache")
    env = snapshot(base / "nnbuild-snapshot")
    a = Bazel(make_workspace(base / "a" / "ws"), base / "a" / "root", env)
    b = Bazel(make_workspace(base / "b" / "deeper" / "ws"), base / "b" / "root", env)
    try:
        a("build", f"--disk_cache={cache}", "//...")
        a("test", f"--disk_cache={cache}", "//...")
        b("build", "//...")
        yield a, b, cache
    finally:
        a.shutdown()
        b.shutdown()


@needs_bazel
def test_example_app_runs_and_matches_onnxruntime(builds, tmp_path):
    import onnxruntime as ort
    a, _, _ = builds
    app = subprocess.run([a.bin("app")], capture_output=True, text=True, timeout=60)
    assert app.returncode == 0, app.stderr
    assert app.stdout.startswith("classifier probs ")

    image = (((7 * np.arange(3 * 32 * 32)) % 13 - 6) / 8).astype(np.float32).reshape(1, 3, 32, 32)
    np.save(tmp_path / "image.npy", image)
    proc = subprocess.run([a.bin("classifier_app"), "--input", f"image={tmp_path}/image.npy",
                           "--output-dir", str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    session = ort.InferenceSession(os.path.join(a.workspace, "models", "classifier.onnx"))
    expected = session.run(None, {"image": image})[0]
    assert_close(np.load(tmp_path / "out" / "probs.npy"), expected, MODEL_TOLERANCE)
    printed = [float(v) for v in app.stdout.split()[2:12]]     # main.c: "classifier probs ..."
    np.testing.assert_allclose(printed, expected[0], atol=1e-6)


@needs_bazel
def test_weights_file_app_loads_its_blob_from_runfiles(builds, tmp_path):
    """weights = "file": `bazel run` finds the blob in the app's runfiles."""
    import onnxruntime as ort
    a, _, _ = builds
    features = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    np.save(tmp_path / "features.npy", features)
    a("run", "//:scorer_app", "--", "--input", f"features={tmp_path}/features.npy",
      "--output-dir", str(tmp_path / "out"))
    session = ort.InferenceSession(os.path.join(a.workspace, "models", "scorer.onnx"))
    expected = session.run(None, {"features": features})[0]
    assert_close(np.load(tmp_path / "out" / "scores.npy"), expected, MODEL_TOLERANCE)


@needs_bazel
def test_two_clean_builds_in_different_output_bases_are_byte_identical(builds):
    a, b, _ = builds
    for name in ("classifier_gen", "scorer_gen"):
        first, second = tree(a.bin(name)), tree(b.bin(name))
        assert sorted(first) == sorted(second)
        for rel in first:
            assert first[rel] == second[rel], f"{name}/{rel} differs between the builds"
    for product in ("libclassifier.a", "libscorer.a", "app", "classifier_app", "scorer_app"):
        with open(a.bin(product), "rb") as f, open(b.bin(product), "rb") as g:
            assert f.read() == g.read(), f"{product} differs between the builds"


@needs_bazel
def test_clean_build_with_disk_cache_runs_no_action(builds):
    _, b, cache = builds
    b("clean")
    proc = b("build", f"--disk_cache={cache}", "//...")
    summary = processes_line(proc.stderr)
    spawned = re.findall(r"(\d+) ([a-z-]+(?: [a-z]+)*)", summary.split(":", 2)[2])
    kinds = {kind: int(n) for n, kind in spawned}
    hits = {"remote cache hit", "disk cache hit"}     # Bazel 4 calls the disk cache "remote"
    assert sum(kinds.get(k, 0) for k in hits) >= 20, summary    # generator, compiles, links
    assert set(kinds) <= hits | {"internal"}, summary           # and nothing ran
    assert os.path.isfile(b.bin("classifier_app"))


def generated(folder) -> dict:
    """The generated files; nnbuild.json without its file list (Bazel's also lists the
    kernels and helpers the model does not use) and without the target option as given:
    nn_model passes the name nnbuild_configure resolved `host` to, another integration may
    pass `host` (the resolved "target" beside it must agree)."""
    files = tree(folder)
    record = json.loads(files.pop("nnbuild.json"))
    record.pop("files")
    record["options"].pop("target")
    files["nnbuild.json (without files)"] = json.dumps(record, sort_keys=True).encode()
    return files


def assert_same_sources(bazel_files: dict, other: dict, what: str):
    for rel, content in other.items():
        assert rel in bazel_files, f"{rel}: {what} generated it, Bazel did not"
        assert bazel_files[rel] == content, f"{rel} differs between Bazel and {what}"
    extra = sorted(set(bazel_files) - set(other))      # kernels and helpers the model does not use
    assert all(re.fullmatch(r"hal/\w+\.[ch]|src/nn_\w+\.h", rel) for rel in extra), extra


@needs_bazel
def test_bazel_generates_the_same_sources_as_nnbuild_generate(builds, tmp_path):
    a, _, _ = builds
    host = nnbuild.options.Options(target="host").resolved_target
    for name, model, options in (
            ("classifier", "classifier.onnx", ["--name", "classifier", "--target", host]),
            ("scorer", "scorer.onnx", SCORER_GENERATE)):
        out = tmp_path / name
        proc = subprocess.run([sys.executable, "-m", "nnbuild", "generate",
                               os.path.join(a.workspace, "models", model), "-o", str(out),
                               *options], capture_output=True, text=True, env=a.env,
                              cwd=str(tmp_path))       # not the checkout: -m imports from cwd
        assert proc.returncode == 0, proc.stderr
        assert_same_sources(generated(a.bin(f"{name}_gen")), generated(out), "nnbuild generate")


@needs_bazel
def test_bazel_and_cmake_generate_the_same_sources(builds, tmp_path):
    a, _, _ = builds
    cmake_dir = os.path.join(os.path.dirname(resources.templates_dir()), "cmake")
    if not os.path.isfile(os.path.join(cmake_dir, "nnbuildConfig.cmake")):
        pytest.skip("nnbuild's CMake package (cmake/nnbuildConfig.cmake) is not there")
    project = tmp_path / "cmake-project"
    shutil.copytree(os.path.join(a.workspace, "models"), project / "models")
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(compare LANGUAGES C)\n"
        "find_package(nnbuild CONFIG REQUIRED)\n"
        "nn_add_model(classifier MODEL models/classifier.onnx TARGET host WEIGHTS embed "
        "OPT_LEVEL 2)\n" + SCORER_CMAKE + "\n")
    build = tmp_path / "build"
    for cmd in (["cmake", "-S", str(project), "-B", str(build), "-G", "Ninja",
                 f"-Dnnbuild_ROOT={cmake_dir}", f"-DNNBUILD_PYTHON={sys.executable}"],
                ["cmake", "--build", str(build)]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=a.env,
                              cwd=str(tmp_path))
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("classifier", "scorer"):
        cmake_files = generated(build / f"{name}.nnbuild" / "project")
        bazel_files = generated(a.bin(f"{name}_gen"))
        assert_same_sources(bazel_files, cmake_files, "CMake")
