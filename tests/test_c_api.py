"""The C API contract (include/<p>.h): two generated models with different --name prefixes
link into one program through CMake add_subdirectory, every function behaves as documented
(NULL handling, error codes, workspace, threads, weights loaded from a file), and the
generated project builds warning-free with -Wall -Wextra -Werror under gcc and clang."""
import os
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import nnbuild
from nnbuild.build.driver import cmake_exe, ninja_exe

from helpers import make_model

F32 = np.float32
HERE = os.path.dirname(os.path.abspath(__file__))


def alpha_model():
    nodes = [helper.make_node("Add", ["x", "w"], ["a"], name="add0"),
             helper.make_node("Relu", ["a"], ["r"], name="relu0"),
             helper.make_node("Mul", ["r", "y"], ["prod"], name="mul0"),
             helper.make_node("Sigmoid", ["a"], ["gate/out"], name="sig0")]
    return make_model(nodes, {"x": (F32, [2, 3]), "y": (F32, [3])}, ["prod", "gate/out"],
                      {"w": np.array([0.5, -1.0, 2.0], F32)})


BETA_W = np.linspace(-1, 1, 8).astype(F32)
BETA_B = np.arange(8, dtype=F32) * 0.1


def beta_model():
    nodes = [helper.make_node("Mul", ["x", "w"], ["m"], name="mul"),
             helper.make_node("Add", ["m", "b"], ["s"], name="add"),
             helper.make_node("Tanh", ["s"], ["y"], name="tanh")]
    return make_model(nodes, {"x": (F32, [8])}, ["y"], {"w": BETA_W, "b": BETA_B})


def cmake_build(source, build, *flags, env=None):
    """Configure and build with the cmake and ninja nnbuild uses; returns the log."""
    log = []
    for cmd in ([cmake_exe(), "-S", str(source), "-B", str(build), "-G", "Ninja",
                 f"-DCMAKE_MAKE_PROGRAM={ninja_exe()}", *flags],
                [cmake_exe(), "--build", str(build)]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        log.append(proc.stdout + proc.stderr)
        assert proc.returncode == 0, "\n".join(log)
    return "\n".join(log)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("c_api")
    onnx.save(alpha_model(), str(root / "alpha_src.onnx"))
    onnx.save(beta_model(), str(root / "beta_src.onnx"))
    nnbuild.generate(str(root / "alpha_src.onnx"), str(root / "alpha"), name="alpha")
    nnbuild.generate(str(root / "beta_src.onnx"), str(root / "beta"), name="beta",
                     weights="file")
    c_program(root / "app", "two_models", root, ["alpha", "beta"], apps_off=["alpha"])
    return root


def c_program(folder, name, models_root, models, apps_off=()):
    """Builds tests/c_api/<name>.c in `folder` (CMake, folder/build/<name>) against the generated
    projects models_root/<prefix> for each prefix in `models`, through add_subdirectory; the
    apps of those in `apps_off` are not built."""
    folder.mkdir()
    shutil.copy(os.path.join(HERE, "c_api", f"{name}.c"), folder / "main.c")
    (folder / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\n"
        f"project({name} LANGUAGES C)\n"
        + "".join(f"set({prefix.upper()}_BUILD_APP OFF CACHE BOOL \"\")\n" for prefix in apps_off)
        + "".join(f"add_subdirectory({(models_root / prefix).as_posix()} {prefix})\n"
                  for prefix in models)
        + f"add_executable({name} main.c)\n"
        f"target_link_libraries({name} PRIVATE {' '.join(models)})\n")
    cmake_build(folder, folder / "build")


def test_two_models_in_one_program(two_models):
    exe = two_models / "app" / "build" / "two_models"
    blob = two_models / "beta" / "weights" / "beta.bin"
    proc = subprocess.run([str(exe), str(blob)], capture_output=True, text=True)
    assert proc.returncode == 0 and "FAIL" not in proc.stdout, proc.stdout + proc.stderr
    values = {line.split()[0]: np.array(line.split()[1:], np.float64)
              for line in proc.stdout.splitlines() if line.startswith(("alpha.", "beta."))}
    x = ((np.arange(6) - 3) * 0.75).astype(F32).reshape(2, 3)
    y = (1.5 - np.arange(3)).astype(F32)
    a = x + np.array([0.5, -1.0, 2.0], F32)
    np.testing.assert_allclose(values["alpha.prod"], (np.maximum(a, 0) * y).ravel(), rtol=1e-6)
    np.testing.assert_allclose(values["alpha.gate"], (1 / (1 + np.exp(-a))).ravel(), rtol=1e-6)
    bx = (np.arange(8) * 0.5 - 2).astype(F32)
    np.testing.assert_allclose(values["beta.y"], np.tanh(bx * BETA_W + BETA_B), rtol=1e-6)


def test_every_symbol_carries_the_prefix(two_models):
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm not installed")
    for prefix in ("alpha", "beta"):
        lib = two_models / "app" / "build" / prefix / f"lib{prefix}.a"
        out = subprocess.run([nm, "--defined-only", "-g", str(lib)], capture_output=True,
                             text=True, check=True).stdout
        symbols = [line.split()[-1] for line in out.splitlines() if len(line.split()) == 3]
        assert symbols and all(s.startswith(prefix + "_") for s in symbols), symbols


def test_weights_file_mode_app(two_models, tmp_path):
    """The app of a --weights file build loads weights/<p>.bin by default, or --weights FILE."""
    build = two_models / "beta_app_build"
    cmake_build(two_models / "beta", build)
    app = str(build / "beta_app")
    x = (np.arange(8) * 0.5 - 2).astype(F32)
    np.save(tmp_path / "x.npy", x)
    expected = np.tanh(x * BETA_W + BETA_B)
    moved = tmp_path / "elsewhere.bin"
    shutil.copy(two_models / "beta" / "weights" / "beta.bin", moved)
    for extra in ([], ["--weights", str(moved)]):
        out = tmp_path / f"out{len(extra)}"
        proc = subprocess.run([app, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir",
                               str(out), *extra], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        np.testing.assert_allclose(np.load(out / "y.npy"), expected, rtol=1e-6)
    (tmp_path / "short.bin").write_bytes(b"\0" * 4)
    for bad in ("short.bin", "missing.bin"):
        proc = subprocess.run([app, "--input", f"x={tmp_path / 'x.npy'}", "--weights",
                               str(tmp_path / bad)], capture_output=True, text=True)
        assert proc.returncode == 2
        assert proc.stderr.strip().endswith(f"{bad}: weight blob has the wrong size or cannot "
                                            f"be read"), proc.stderr
        assert len(proc.stderr.splitlines()) == 1


def big_model():
    """A 64-channel 128x128 image through two 3x3 convs (the 4 MiB between them lives in the
    workspace) and a 1024-vector through a 1024x1024 MatMul (4 MiB of weights)."""
    rng = np.random.default_rng(2)
    conv = (rng.standard_normal([64, 64, 3, 3]) * 0.05).astype(F32)
    nodes = [helper.make_node("Conv", ["x", "k1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "k2"], ["image_out"], pads=[1, 1, 1, 1]),
             helper.make_node("MatMul", ["v", "w"], ["vector_out"])]
    return make_model(nodes, {"x": (F32, [1, 64, 128, 128]), "v": (F32, [1, 1024])},
                      ["image_out", "vector_out"],
                      {"k1": conv, "k2": conv[::-1].copy(),
                       "w": rng.standard_normal([1024, 1024]).astype(F32)})


def test_big_workspace_and_weights_are_on_huge_pages(tmp_path):
    """On Linux with transparent huge pages (policy always or madvise) the static workspace and
    a loaded weight blob of 2 MiB or more are advised for them: each adds at least one 2 MiB
    page to the process's AnonHugePages (the harness itself advises nothing)."""
    policy = "/sys/kernel/mm/transparent_hugepage/enabled"
    if not os.path.exists(policy) or "[never]" in open(policy).read():
        pytest.skip("no transparent huge pages on this system")
    onnx.save(big_model(), str(tmp_path / "big.onnx"))
    nnbuild.generate(str(tmp_path / "big.onnx"), str(tmp_path / "big"), name="big",
                     weights="file")
    c_program(tmp_path / "app", "huge_pages", tmp_path, ["big"], apps_off=["big"])
    proc = subprocess.run([str(tmp_path / "app" / "build" / "huge_pages"),
                           str(tmp_path / "big" / "weights" / "big.bin")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    before, loaded, ran, workspace, weights = map(int, proc.stdout.split())
    assert before >= 0, "no AnonHugePages in /proc/self/smaps_rollup"
    assert workspace >= 4 << 20 and weights >= 4 << 20, (workspace, weights)
    assert loaded - before >= 2048, proc.stdout
    assert ran - loaded >= 2048, proc.stdout


def werror_model():
    """Several element types and the code paths around them: casts, bool results, an int64
    chain, an output that is an input, one that is a constant, one written twice."""
    nodes = [helper.make_node("Cast", ["x"], ["h"], name="to_f16", to=TensorProto.FLOAT16),
             helper.make_node("Greater", ["x", "zero"], ["pos"], name="gt"),
             helper.make_node("Where", ["pos", "x", "zero"], ["relu"], name="where"),
             helper.make_node("Cast", ["x"], ["i"], name="to_i64", to=TensorProto.INT64),
             helper.make_node("Mul", ["i", "k"], ["ik"], name="imul"),
             helper.make_node("Clip", ["relu", "zero", "six"], ["c"], name="clip"),
             helper.make_node("Cast", ["c"], ["d"], name="to_f64", to=TensorProto.DOUBLE),
             helper.make_node("Sqrt", ["d"], ["sq"], name="sqrt")]
    return make_model(nodes, {"x": (F32, [4, 5])}, ["h", "pos", "ik", "sq", "x", "k", "c"],
                      {"zero": np.array(0, F32), "six": np.array(6, F32),
                       "k": np.arange(5, dtype=np.int64)})


def edge_shapes_model():
    """A scalar input and an empty (0-element) input and outputs."""
    nodes = [helper.make_node("Relu", ["s"], ["s_relu"], name="scalar"),
             helper.make_node("Add", ["e", "e"], ["e_sum"], name="empty"),
             helper.make_node("Identity", ["e"], ["e_copy"], name="empty_copy")]
    return make_model(nodes, {"s": (F32, []), "e": (F32, [0, 3])}, ["s_relu", "e_sum", "e_copy"])


def constants_only_model():
    """No runtime inputs at all: every output comes from the weights."""
    nodes = [helper.make_node("Relu", ["c"], ["y"], name="relu")]
    return make_model(nodes, {}, ["y", "c"], {"c": np.array([-1.0, 2.0], F32)})


STRICT_MODELS = {"dtypes": (werror_model, "embed"), "dtypes, weights file": (werror_model, "file"),
                 "edge shapes": (edge_shapes_model, "embed"),
                 "constants only": (constants_only_model, "file")}


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
@pytest.mark.parametrize("case", STRICT_MODELS)
def test_generated_project_builds_with_werror(tmp_path, compiler, case):
    path = shutil.which(compiler)
    if path is None:
        pytest.skip(f"{compiler} not installed")
    make, weights = STRICT_MODELS[case]
    onnx.save(make(), str(tmp_path / "strict.onnx"))
    nnbuild.generate(str(tmp_path / "strict.onnx"), str(tmp_path / "proj"), weights=weights,
                     opt_level=0)
    log = cmake_build(tmp_path / "proj", tmp_path / "build", f"-DCMAKE_C_COMPILER={path}",
                      "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror")
    assert "warning" not in log.lower(), log
    assert os.access(tmp_path / "build" / "strict_app", os.X_OK)


def test_scalar_empty_and_input_free_models_run(tmp_path):
    onnx.save(edge_shapes_model(), str(tmp_path / "edge.onnx"))
    app = nnbuild.build(str(tmp_path / "edge.onnx"), str(tmp_path / "edge")).app
    np.save(tmp_path / "s.npy", np.array(-2.5, F32))
    np.save(tmp_path / "e.npy", np.zeros((0, 3), F32))
    subprocess.run([app, "--input", f"s={tmp_path / 's.npy'}", "--input",
                    f"e={tmp_path / 'e.npy'}", "--output-dir", str(tmp_path / "out")], check=True)
    assert np.load(tmp_path / "out" / "s_relu.npy").shape == ()
    assert np.load(tmp_path / "out" / "s_relu.npy") == 0.0
    assert np.load(tmp_path / "out" / "e_sum.npy").shape == (0, 3)
    onnx.save(constants_only_model(), str(tmp_path / "consts.onnx"))
    app = nnbuild.build(str(tmp_path / "consts.onnx"), str(tmp_path / "consts")).app
    subprocess.run([app, "--output-dir", str(tmp_path / "out2")], check=True)
    assert np.load(tmp_path / "out2" / "y.npy").tolist() == [0.0, 2.0]
    assert np.load(tmp_path / "out2" / "c.npy").tolist() == [-1.0, 2.0]


def test_half_precision_values_compute_in_float_and_round_to_nearest_even(cache_dir):
    """f16 / bf16 buffers hold uint16_t bits; the generated code converts them to float and
    back (rounding to nearest even), exactly as numpy does through float32."""
    import ml_dtypes
    rng = np.random.default_rng(0)
    every_f16 = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    tiny = (rng.standard_normal(4096) * 3e-3).astype(np.float16)      # products are subnormal
    big = (rng.standard_normal(4096) * 300).astype(np.float16)        # products overflow
    nodes = [helper.make_node("Neg", ["every"], ["neg"]),
             helper.make_node("Mul", ["tiny", "tiny2"], ["tiny_prod"]),
             helper.make_node("Mul", ["big", "big2"], ["big_prod"]),
             helper.make_node("Div", ["big", "tiny"], ["quot"]),
             helper.make_node("Add", ["bf", "bf2"], ["bf_sum"])]
    bf = rng.standard_normal(4096).astype(ml_dtypes.bfloat16)
    feeds = {"every": every_f16, "tiny": tiny, "tiny2": tiny[::-1].copy(), "big": big,
             "big2": big[::-1].copy(), "bf": bf, "bf2": bf[::-1].copy()}
    inputs = {n: (a.dtype, a.shape) for n, a in feeds.items() if n not in ("bf", "bf2")}
    model = make_model(nodes, inputs, ["neg", "tiny_prod", "big_prod", "quot", "bf_sum"])
    for name in ("bf", "bf2"):
        model.graph.input.append(helper.make_tensor_value_info(name, TensorProto.BFLOAT16, [4096]))
    out = nnbuild.compile(model, cache_dir=cache_dir).run(feeds)
    f32 = lambda a: a.astype(np.float32)
    with np.errstate(all="ignore"):
        expected = {"neg": -every_f16,
                    "tiny_prod": (f32(tiny) * f32(feeds["tiny2"])).astype(np.float16),
                    "big_prod": (f32(big) * f32(feeds["big2"])).astype(np.float16),
                    "quot": (f32(big) / f32(tiny)).astype(np.float16),
                    "bf_sum": (f32(bf) + f32(feeds["bf2"])).astype(ml_dtypes.bfloat16)}
    for name, want in expected.items():
        got = out[name]
        same = (got.view(np.uint16) == want.view(np.uint16)) | (np.isnan(f32(got)) & np.isnan(f32(want)))
        assert same.all(), f"{name}: {np.flatnonzero(~same)[:5]} differ"
