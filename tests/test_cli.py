"""The `nnbuild` command, run as a user runs it (`python -m nnbuild ...` in a subprocess).

Exit codes: 0 ok, 1 build or run failure, 2 usage or model error; every error is exactly one
line on stderr, and a failing command writes nothing and overwrites nothing."""
import os
import re
import subprocess
import sys
import time

import numpy as np
import onnx
import pytest
from onnx import helper

from helpers import make_model

F32 = np.float32


def nnbuild(*args, cwd=None, env=None, check=True):
    """Run the CLI; returns the CompletedProcess (stdout/stderr as text)."""
    proc = subprocess.run([sys.executable, "-m", "nnbuild", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True,
                          env=None if env is None else {**os.environ, **env})
    if check:
        assert proc.returncode == 0, f"nnbuild {' '.join(map(str, args))}:\n{proc.stderr}"
    return proc


def assert_one_line_error(proc, code, pattern):
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def snapshot(folder):
    """Every file under folder -> (bytes, mtime), to check nothing was touched."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = (f.read(), os.stat(path).st_mtime_ns)
    return out


def small_model():
    """Two inputs, two outputs, a constant, an Identity and a dead node."""
    nodes = [helper.make_node("Add", ["x", "w"], ["a"], name="add0"),
             helper.make_node("Relu", ["a"], ["r"], name="relu0"),
             helper.make_node("Identity", ["r"], ["i"], name="id0"),
             helper.make_node("Mul", ["i", "y"], ["prod"], name="mul0"),
             helper.make_node("Sigmoid", ["a"], ["gate/out"], name="sig0"),
             helper.make_node("Neg", ["x"], ["unused"], name="dead0")]
    return make_model(nodes, {"x": (F32, [2, 3]), "y": (F32, [3])}, ["prod", "gate/out"],
                      {"w": np.array([0.5, -1.0, 2.0], F32)})


def expected_outputs(x, y):
    a = x + np.array([0.5, -1.0, 2.0], F32)
    return {"prod": np.maximum(a, 0) * y, "gate/out": 1 / (1 + np.exp(-a))}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    onnx.save(small_model(), str(folder / "small.onnx"))
    rng = np.random.default_rng(0)
    np.save(folder / "x.npy", rng.standard_normal((2, 3)).astype(F32))
    np.save(folder / "y.npy", rng.standard_normal(3).astype(F32))
    return folder


@pytest.fixture(scope="module")
def built(workdir):
    """translate -> build from the intermediate file; returns (app, library, stdout)."""
    nnbuild("translate", workdir / "small.onnx", "-o", workdir / "small.nnir.json")
    proc = nnbuild("build", workdir / "small.nnir.json", "-o", workdir / "proj")
    app = re.search(r"^app:\s+(.*)$", proc.stdout, re.M).group(1)
    library = re.search(r"^library:\s+(.*)$", proc.stdout, re.M).group(1)
    return app, library, proc.stdout


# --- translate / generate / build / inspect --------------------------------------------------------
def test_translate_writes_the_intermediate_file(workdir):
    proc = nnbuild("translate", workdir / "small.onnx", "-o", workdir / "t.nnir.json")
    assert proc.stdout.strip() == f"wrote {workdir / 't.nnir.json'} (6 nodes)"
    import nnbuild as nb
    graph = nb.ir.load_json(str(workdir / "t.nnir.json"))
    assert graph.inputs == ["x", "y"] and graph.outputs == ["prod", "gate/out"]


def test_translate_needs_the_intermediate_suffix(workdir):
    proc = nnbuild("translate", workdir / "small.onnx", "-o", workdir / "t.json", check=False)
    assert_one_line_error(proc, 2, "must end in .nnir.json")
    assert not (workdir / "t.json").exists()


def test_generate_accepts_the_intermediate_file(workdir, built):
    proc = nnbuild("generate", workdir / "small.nnir.json", "-o", workdir / "gen")
    assert re.fullmatch(r"wrote \S+gen \(\d+ files, weights \d+ bytes, arena \d+ bytes\)\n",
                        proc.stdout)
    assert (workdir / "gen" / "src" / "small.c").is_file()
    assert (workdir / "gen" / "include" / "small.h").is_file()


def test_build_prints_app_and_library(built):
    app, library, stdout = built
    assert stdout.splitlines()[0].startswith("app:")
    assert os.access(app, os.X_OK) and os.path.basename(app) == "small_app"
    assert os.path.isfile(library) and os.path.basename(library) == "libsmall.a"


def test_inspect_prints_ir_flops_and_arena(workdir):
    out = nnbuild("inspect", workdir / "small.onnx").stdout
    assert out.startswith("graph small opsets(ai.onnx=17) {\n  input %x: f32[2,3]\n")
    assert ('%prod: f32[2,3] = nnbuild::Elementwise(%a, %y) {body=["Relu($0)", "Mul(#0, $1)"]}'
            "  # relu0, mul0") in out                  # Identity removed, Relu and Mul fused
    assert "dead0" not in out.split("}")[0]                          # dead node removed
    header = next(line for line in out.splitlines() if line.startswith("node"))
    assert header.split() == ["node", "op", "output", "params", "MFLOP"]
    assert re.search(r"^add0\s+Add\s+f32\[2,3\]\s+3\s+0\.000$", out, re.M)
    assert re.search(r"^arena: \d+ bytes \(lower bound \d+, naive sum \d+\)$", out, re.M)


def test_inspect_after_a_pass(workdir):
    out = nnbuild("inspect", workdir / "small.onnx", "--after", "remove-identity").stdout
    ir = out.split("\n}\n")[0]
    assert "Identity" not in ir and "# dead0" in ir         # dead-code elimination not yet run
    out = nnbuild("inspect", workdir / "small.onnx", "-O0").stdout
    assert "= Identity(%r)  # id0" in out


def test_inspect_after_an_unknown_pass(workdir):
    proc = nnbuild("inspect", workdir / "small.onnx", "--after", "nope", check=False)
    assert_one_line_error(proc, 2, r"--after nope: no such pass in this pipeline "
                                   r"\(passes: fold-constants, ")


def test_inspect_lists_passes(workdir):
    out = nnbuild("inspect", workdir / "small.onnx", "--passes").stdout
    assert [line.split()[0] for line in out.splitlines()] == [
        "fold-constants", "remove-identity", "simplify-algebra", "sink-transposes",
        "fold-batchnorm", "fold-scale-shift", "fold-constants", "eliminate-common-subexpressions",
        "eliminate-dead-code",
        "recognize-layernorm", "recognize-softmax", "recognize-attention", "recognize-gelu",
        "fuse-epilogue", "fuse-elementwise", "select-conv-algorithm"]


def test_dump_ir_writes_a_file_per_pass(workdir, tmp_path):
    nnbuild("inspect", workdir / "small.onnx", "-O1", "--dump-ir", tmp_path / "ir")
    assert sorted(os.listdir(tmp_path / "ir")) == [
        "000_input.nnir", "001_fold-constants.nnir", "002_remove-identity.nnir",
        "003_eliminate-dead-code.nnir"]


def test_run_builds_through_the_cache_and_summarises(workdir, tmp_path):
    env = {"NNBUILD_CACHE_DIR": str(tmp_path / "cache"), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    out = nnbuild("run", workdir / "small.onnx", "--input", f"x={workdir / 'x.npy'}", env=env).stdout
    assert "input y: random float32[3] (seed 0)" in out
    assert re.search(r"^output prod: float32\[2, 3\]  min \S+ max \S+ mean \S+  argmax \d+$", out, re.M)
    assert re.search(r"^output gate/out: float32\[2, 3\]", out, re.M)
    assert os.listdir(tmp_path / "tmp") == []                    # no temporary left behind
    nnbuild("run", workdir / "small.onnx", "--output-dir", tmp_path / "outs", env=env)
    assert sorted(os.listdir(tmp_path / "outs")) == ["gate_out.npy", "prod.npy"]
    proc = nnbuild("run", workdir / "small.onnx", "--input", f"q={workdir / 'x.npy'}", env=env,
                   check=False)
    assert_one_line_error(proc, 2, r"--input q=\S+: expected NAME=FILE.npy with NAME one of "
                                   r"the inputs: x, y")


# --- the app -----------------------------------------------------------------------------------
def run_app(app, *args):
    return subprocess.run([app, *map(str, args)], capture_output=True, text=True)


def test_app_writes_one_npy_per_output(built, workdir, tmp_path):
    app = built[0]
    proc = run_app(app, "--input", f"x={workdir / 'x.npy'}", "--input", f"y={workdir / 'y.npy'}",
                   "--output-dir", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["gate_out.npy", "prod.npy"]
    expected = expected_outputs(np.load(workdir / "x.npy"), np.load(workdir / "y.npy"))
    np.testing.assert_allclose(np.load(tmp_path / "out" / "prod.npy"), expected["prod"], rtol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "gate_out.npy"), expected["gate/out"],
                               rtol=1e-6)


def test_app_output_files_are_safe_and_distinct(tmp_path):
    """Output names that are not file names (slashes, non-ASCII, 300 characters) or that give the
    same file become distinct files, as nnbuild.codegen.names.app_output_files says."""
    import nnbuild
    from nnbuild.codegen.names import app_output_files
    names = ["a/b", "a_b", "caf\u00e9", "n" * 300, ".hidden"]
    nodes = [helper.make_node("Mul", ["x", f"k{i}"], [n]) for i, n in enumerate(names)]
    model = make_model(nodes, {"x": (np.float32, [2])}, names,
                       {f"k{i}": np.float32(i + 1) for i in range(len(names))})
    result = nnbuild.build(model, str(tmp_path / "proj"))
    np.save(tmp_path / "x.npy", np.array([1, 2], np.float32))
    proc = run_app(result.app, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    files = app_output_files(names)
    assert files[:3] == ["a_b.npy", "a_b_1.npy", "caf__.npy"] and files[4] == "_hidden.npy"
    assert sorted(os.listdir(tmp_path / "o")) == sorted(files)
    for i, f in enumerate(files):
        np.testing.assert_array_equal(np.load(tmp_path / "o" / f), [i + 1, 2 * (i + 1)])


def test_app_bench_prints_median_p90_and_peak_memory(built, workdir):
    proc = run_app(built[0], "--input", f"x={workdir / 'x.npy'}", "--input",
                   f"y={workdir / 'y.npy'}", "--bench", 3)
    assert proc.returncode == 0, proc.stderr
    found = re.fullmatch(r"small: 3 runs, 1 threads: median \d+\.\d{3} ms, p90 \d+\.\d{3} ms, "
                         r"peak RSS (\d+\.\d) MB\n", proc.stdout)
    assert found and 0 < float(found.group(1)) < 100      # a tiny model: a few MB


def test_app_bench_warms_up_untimed_for_the_runs_and_time_asked(built, workdir):
    """--warmup N and --warmup-ms T: untimed runs in the same process before the timed ones,
    at least N of them and for at least T ms (the wall time shows the 300 ms)."""
    start = time.perf_counter()
    proc = run_app(built[0], "--input", f"x={workdir / 'x.npy'}", "--input",
                   f"y={workdir / 'y.npy'}", "--bench", 2, "--warmup", 5, "--warmup-ms", 300)
    assert proc.returncode == 0, proc.stderr
    assert time.perf_counter() - start >= 0.3
    assert re.match(r"small: 2 runs, 1 threads: median ", proc.stdout)


@pytest.mark.parametrize("case, args, message", [
    ("wrong shape", ["--input", "x=x.npy", "--input", "y=x.npy"],
     r"^small_app: error: input y: \S*x\.npy has shape \(2,3\), the model takes \(3\)$"),
    ("wrong dtype", ["--input", "x=x.npy", "--input", "y=y_int.npy"],
     r"^small_app: error: input y: \S*y_int\.npy has dtype <i8, the model takes <f4$"),
    ("missing input", ["--input", "x=x.npy"], r"^small_app: error: missing --input for y$"),
    ("unknown input", ["--input", "z=x.npy"], r"^small_app: error: --input: no model input named in z="),
    ("not a .npy file", ["--input", "x=small.onnx", "--input", "y=y.npy"],
     r"^small_app: error: \S*small\.onnx: not a \.npy file$"),
    ("unknown option", ["--frobnicate", "1"], r"^small_app: error: unknown option --frobnicate$"),
    ("negative warm-up", ["--input", "x=x.npy", "--warmup-ms", "-1"],
     r"^small_app: error: --warmup-ms needs a duration, got -1$"),
])
def test_app_errors_exit_2_with_one_line(built, workdir, case, args, message):
    np.save(workdir / "y_int.npy", np.arange(3))
    args = [re.sub(r"=(\S+\.(npy|onnx))$", lambda m: f"={workdir / m.group(1)}", a) for a in args]
    proc = run_app(built[0], *args)
    assert proc.returncode == 2, case
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert re.search(message, proc.stderr.strip()), proc.stderr


# --- bad input to nnbuild: one line, exit 2, nothing written, nothing clobbered ------------------
def _bad_models(folder):
    data = (folder / "small.onnx").read_bytes()
    (folder / "bad").mkdir(exist_ok=True)
    (folder / "bad" / "truncated.onnx").write_bytes(data[: len(data) // 2])
    (folder / "bad" / "random.onnx").write_bytes(np.random.default_rng(0).bytes(3000))
    (folder / "bad" / "text.onnx").write_text("this is not a model\n")
    (folder / "bad" / "empty.onnx").write_bytes(b"")
    unknown = make_model([helper.make_node("Frobnicate", ["x"], ["a"], name="frob1"),
                          helper.make_node("Warp", ["a"], ["y"], name="warp1")],
                         {"x": (F32, [2])}, ["y"])
    onnx.save(unknown, str(folder / "bad" / "unknown_op.onnx"))
    ext = make_model([helper.make_node("Add", ["x", "w"], ["y"])], {"x": (F32, [4])}, ["y"],
                     {"w": np.ones(4, F32)})
    (folder / "bad" / "ext").mkdir(exist_ok=True)
    onnx.save(ext, str(folder / "bad" / "ext" / "m.onnx"), save_as_external_data=True,
              location="w.bin", size_threshold=0)
    proto = onnx.load(str(folder / "bad" / "ext" / "m.onnx"), load_external_data=False)
    proto.graph.initializer[0].external_data[0].value = "../../small.onnx"
    onnx.save(proto, str(folder / "bad" / "escape.onnx"))
    return {
        "truncated.onnx": r"truncated\.onnx: not a valid ONNX model",
        "random.onnx": r"random\.onnx: not a valid ONNX model",
        "text.onnx": r"text\.onnx: not a valid ONNX model",
        "empty.onnx": r"empty\.onnx: not an ONNX model",
        "unknown_op.onnx": r"unsupported ops: Frobnicate \(opset 17; node frob1\); "
                           r"Warp \(opset 17; node warp1\)",
        "escape.onnx": r"tensor 'w': external data location '\.\./\.\./small\.onnx' leaves "
                       r"the model's folder",
        "missing.onnx": r"missing\.onnx: no such file",
    }


@pytest.mark.parametrize("command", ["generate", "build", "translate"])
def test_bad_models_fail_cleanly(workdir, tmp_path, command):
    cases = _bad_models(workdir)
    for name, pattern in cases.items():
        out = tmp_path / f"out_{name}"
        target = out.with_suffix(".nnir.json") if command == "translate" else out
        before = sorted(os.listdir(tmp_path))
        proc = nnbuild(command, workdir / "bad" / name, "-o", target, check=False)
        assert_one_line_error(proc, 2, r"^nnbuild: error: .*" + pattern)
        assert sorted(os.listdir(tmp_path)) == before, f"{name}: something was written"


def test_bad_model_leaves_an_existing_project_untouched(workdir, tmp_path):
    nnbuild("generate", workdir / "small.onnx", "-o", tmp_path / "proj")
    before = snapshot(tmp_path / "proj")
    for name in _bad_models(workdir):
        proc = nnbuild("generate", workdir / "bad" / name, "-o", tmp_path / "proj", check=False)
        assert proc.returncode == 2
    assert snapshot(tmp_path / "proj") == before
    assert sorted(os.listdir(tmp_path)) == ["proj"]


def test_output_folder_with_unrelated_files_is_refused(workdir, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("precious")
    (folder / "CMakeLists.txt").write_text("project(mine)")
    before = snapshot(folder)
    for command in ("generate", "build"):
        proc = nnbuild(command, workdir / "small.onnx", "-o", folder, check=False)
        assert_one_line_error(proc, 2, r"-o \S+mine: folder holds files that nnbuild did not "
                                       r"write; choose a new or empty folder")
    assert snapshot(folder) == before
    assert sorted(os.listdir(tmp_path)) == ["mine"]


def test_output_path_that_is_a_file_is_refused(workdir, tmp_path):
    (tmp_path / "file").write_text("x")
    proc = nnbuild("generate", workdir / "small.onnx", "-o", tmp_path / "file", check=False)
    assert_one_line_error(proc, 2, "exists and is not a folder")
    assert (tmp_path / "file").read_text() == "x"


def test_generate_into_an_existing_project_replaces_it(workdir, tmp_path):
    proj = tmp_path / "proj"
    nnbuild("generate", workdir / "small.onnx", "-o", proj)
    assert (proj / "weights" / "small_weights.S").is_file()
    (proj / "src" / "mine.c").write_text("/* the user's own file */")
    unchanged = os.stat(proj / "app" / "npy.h").st_mtime_ns
    nnbuild("generate", workdir / "small.onnx", "-o", proj, "--weights", "file")
    assert not (proj / "weights" / "small_weights.S").exists()      # embedded-weights file gone
    assert (proj / "src" / "mine.c").exists()            # not nnbuild's: never removed
    assert '"weights": "file"' in (proj / "nnbuild.json").read_text()
    assert os.stat(proj / "app" / "npy.h").st_mtime_ns == unchanged   # same content: same file
    assert sorted(os.listdir(tmp_path)) == ["proj"]                   # no staging left behind


def test_regenerate_from_inside_the_project_folder(workdir, tmp_path):
    """`-o .` in the project folder updates it in place (the folder itself is never replaced),
    so a shell whose working directory it is stays valid."""
    proj = tmp_path / "proj"
    proj.mkdir()
    inode = os.stat(proj).st_ino
    for options in ([], ["--weights", "file"]):
        nnbuild("build", workdir / "small.onnx", "-o", ".", *options, cwd=proj)
        assert os.stat(proj).st_ino == inode
    assert sorted(os.listdir(proj)) == ["CMakeLists.txt", "app", "build", "hal", "include",
                                        "nnbuild.json", "src", "weights"]
    assert sorted(os.listdir(tmp_path)) == ["proj"]


def test_odd_paths_build(workdir, tmp_path):
    """Spaces and parentheses in folders, a newline in the model's file name (it ends up in
    comments of the generated C and CMake files, where it must not escape)."""
    folder = tmp_path / "my models (v2)"
    folder.mkdir()
    model = folder / "net\nmessage(FATAL_ERROR injected).onnx"
    model.write_bytes((workdir / "small.onnx").read_bytes())
    for weights in ("embed", "file"):
        out = folder / f"out {weights}"
        proc = nnbuild("build", model, "--name", "net", "--weights", weights, "-o", out)
        app = re.search(r"^app:\s+(.*)$", proc.stdout, re.M).group(1)
        subprocess.run([app, "--input", f"x={workdir / 'x.npy'}", "--input",
                        f"y={workdir / 'y.npy'}", "--output-dir", str(out / "o")], check=True)
        assert (out / "o" / "prod.npy").is_file()


def test_model_names_shared_with_nnbuild_headers_build(workdir, tmp_path):
    """The app's npy.h and the kernels' headers (guards NN_<NAME>_H) do not get in the way of
    a model named like them: the project includes its model header by path."""
    for name in ("npy", "nn_hal"):
        proc = nnbuild("build", workdir / "small.onnx", "--name", name, "-o", tmp_path / name)
        app = re.search(r"^app:\s+(.*)$", proc.stdout, re.M).group(1)
        subprocess.run([app, "--input", f"x={workdir / 'x.npy'}", "--input",
                        f"y={workdir / 'y.npy'}", "--output-dir", str(tmp_path / name / "o")],
                       check=True)
        assert (tmp_path / name / "o" / "prod.npy").is_file()


@pytest.mark.parametrize("name, why", [("math", r"include/math\.h would hide <math\.h>"),
                                       ("pthread", r"include/pthread\.h would hide <pthread\.h>"),
                                       ("all", r"CMake reserves the target name 'all'")])
def test_a_name_that_hides_a_system_header_or_a_cmake_target_is_refused(workdir, tmp_path,
                                                                      name, why):
    proc = nnbuild("generate", workdir / "small.onnx", "--name", name, "-o", tmp_path / "p",
                   check=False)
    assert_one_line_error(proc, 2, rf"^nnbuild: error: --name {name}: {why}; choose another")
    assert not (tmp_path / "p").exists()


def test_a_model_file_named_like_a_system_header_gets_a_suffix(workdir, tmp_path):
    model = tmp_path / "time.onnx"
    model.write_bytes((workdir / "small.onnx").read_bytes())
    nnbuild("generate", model, "-o", tmp_path / "p")
    assert (tmp_path / "p" / "include" / "time_model.h").is_file()


# --- a failing C build ---------------------------------------------------------------------------
def test_failed_c_build_exits_1_with_the_first_compiler_error_and_the_log(workdir, tmp_path):
    # CMake takes CFLAGS from the environment; a macro named like an API function breaks
    # exactly the generated code (not CMake's compiler check).
    proc = nnbuild("build", workdir / "small.onnx", "-o", tmp_path / "proj", check=False,
                   env={"CFLAGS": "-Dsmall_run=1"})
    line = assert_one_line_error(proc, 1, r"^nnbuild: error: build failed: .*error: .*"
                                          r"\(full log: (\S+nnbuild-build\.log)\)$")
    log = re.search(r"full log: (\S+)\)$", line).group(1)
    assert os.path.isfile(log) and "small_run" in open(log).read()


def test_failed_configure_names_the_cmake_error(workdir, tmp_path):
    proc = nnbuild("build", workdir / "small.onnx", "-o", tmp_path / "proj", check=False,
                   env={"CC": str(tmp_path / "no-such-compiler")})
    assert_one_line_error(proc, 1, r"^nnbuild: error: CMake configure failed: CMake Error .*"
                                   r"Could not find the compiler .*\(full log: ")


def test_first_error_skips_command_lines_that_mention_werror(tmp_path):
    from nnbuild.build.driver import _first_error
    log = tmp_path / "log"
    log.write_text("$ cmake --build b\n[1/2] Building C object x.o\nFAILED: x.o\n"
                   "/usr/bin/cc -Wall -Werror -c x.c\n"
                   "x.c:3:5: error: unused variable 'k' [-Werror=unused-variable]\n"
                   "cc1: all warnings being treated as errors\n")
    assert _first_error(str(log)) == "x.c:3:5: error: unused variable 'k' [-Werror=unused-variable]"
