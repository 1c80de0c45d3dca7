"""Generated code under the sanitizers and valgrind, and the C API contract from C.

For each real-weight network of tests/models/data (host target):
- built with -fsanitize=address,undefined (no recovery): tests/hardening/harness.c (NULL
  pointers -> error codes, repeated runs and two threads with their own workspaces give
  bit-identical outputs) and the generated app on a .npy input run with zero reports, and the
  app's outputs match onnxruntime;
- built plainly, the harness with malloc/calloc/realloc interposed counts zero heap
  allocations during <p>_run / <p>_run_ws, also with 3 threads;
- valgrind --error-exitcode=1 --leak-check=full on the app: zero errors, zero leaks (generic target: valgrind lacks AVX-512).

Also: the harness's two threads under ThreadSanitizer (transformer_small).

The default tier builds the three networks (about 100 s on two cores); --runslow adds
the full-size benchmark networks of benchmarks/models.py (ResNet-18, the BERT-style encoder, the
LSTM) under ASan+UBSan and valgrind, valgrind on the other small networks, and 93 conformance node cases spanning dtypes (every 8th case
of many op families, batched) under ASan+UBSan.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest

import nnbuild
from nnbuild.build.driver import cmake_exe, ninja_exe
from nnbuild.testing import MODEL_TOLERANCE, assert_close

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), "models", "data")
NETWORKS = ["resnet_small", "mobilenet_small", "transformer_small"]
BENCHMARK_NETWORKS = ["resnet18", "bert_encoder", "lstm"]       # --runslow
SANITIZE = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=23",
                 "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=24"}
REPORT_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                  "SUMMARY: UndefinedBehaviorSanitizer")


def _compiler() -> str | None:
    """clang, else gcc: whichever links a sanitized hello world here."""
    for cc in ("clang", "gcc"):
        exe = shutil.which(cc)
        if not exe:
            continue
        proc = subprocess.run([exe, *SANITIZE.split(), "-x", "c", "-", "-o", os.devnull],
                              input="int main(void){return 0;}", capture_output=True, text=True)
        if proc.returncode == 0:
            return exe
    return None


CC = _compiler()
needs_sanitizers = pytest.mark.skipif(CC is None, reason="no C compiler links -fsanitize=address,undefined "
                                      "(apt-get install clang libclang-rt-14-dev)")


def build_with_harness(project: str, prefix: str, build: str, flags: str = "",
                       count_malloc: bool = False, cc: str | None = None) -> str:
    """The project plus tests/hardening/harness.c in one CMake build; returns the build dir."""
    wrapper = os.path.join(build + "-src")
    os.makedirs(wrapper, exist_ok=True)
    shutil.copy(os.path.join(HERE, "harness.c"), os.path.join(wrapper, "harness.c"))
    defs = f"NN_P={prefix}" + (" COUNT_MALLOC" if count_malloc else "")
    with open(os.path.join(wrapper, "CMakeLists.txt"), "w") as f:
        f.write("cmake_minimum_required(VERSION 3.16)\nproject(harness LANGUAGES C ASM)\n"
                "find_package(Threads REQUIRED)\n"
                f"add_subdirectory({project.replace(os.sep, '/')} model)\n"
                "add_executable(harness harness.c)\n"
                f"target_compile_definitions(harness PRIVATE {defs})\n"
                f"target_link_libraries(harness PRIVATE {prefix} Threads::Threads)\n")
    cmd = [cmake_exe(), "-S", wrapper, "-B", build, "-G", "Ninja",
           f"-DCMAKE_MAKE_PROGRAM={ninja_exe()}", "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
           f"-DCMAKE_C_FLAGS={flags}", f"-DCMAKE_EXE_LINKER_FLAGS={flags}"]
    if cc:
        cmd.append(f"-DCMAKE_C_COMPILER={cc}")
    for step in (cmd, [cmake_exe(), "--build", build]):
        proc = subprocess.run(step, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return build


def run_clean(cmd: list, what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **SANITIZER_ENV})
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0 and not any(m in text for m in REPORT_MARKERS), \
        f"{what}: exit {proc.returncode}\n{text[-4000:]}"
    return proc


def seeded_inputs(model: onnx.ModelProto) -> dict:
    rng = np.random.default_rng(0)
    feeds = {}
    for vi in model.graph.input:
        t = vi.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)
        shape = [d.dim_value for d in t.shape.dim]
        feeds[vi.name] = (rng.integers(0, 100, shape).astype(dtype)
                          if np.issubdtype(dtype, np.integer)
                          else rng.standard_normal(shape).astype(dtype))
    return feeds


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """network -> (project dir, prefix, model path)."""
    root = tmp_path_factory.mktemp("sanitize")
    out = {}
    for net in NETWORKS:
        path = os.path.join(DATA, f"{net}.onnx")
        nnbuild.generate(path, str(root / net), name=net)
        out[net] = (str(root / net), net, path)
    return out


def app_args(tmp_path, path: str) -> tuple:
    """(--input args, feeds) with the inputs written as .npy files."""
    model = onnx.load(path)
    feeds = seeded_inputs(model)
    args = []
    for i, (name, value) in enumerate(feeds.items()):
        np.save(tmp_path / f"in{i}.npy", value)
        args += ["--input", f"{name}={tmp_path / f'in{i}.npy'}"]
    return args, feeds, model


@needs_sanitizers
@pytest.mark.parametrize("net", NETWORKS)
def test_asan_ubsan_clean(projects, net, tmp_path):
    check_asan_ubsan_clean(*projects[net], tmp_path)


def benchmark_model(net: str, folder) -> str:
    """benchmarks/models.py's seeded network ``net`` saved as folder/net.onnx."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "benchmarks"))
    import models                                  # noqa: E402  (benchmarks/models.py)
    path = os.path.join(str(folder), f"{net}.onnx")
    onnx.save(models.BUILDERS[net](), path)
    return path


@needs_sanitizers
@pytest.mark.slow
@pytest.mark.parametrize("net", BENCHMARK_NETWORKS)
def test_benchmark_networks_asan_ubsan_clean(net, tmp_path):
    """The full-size benchmark networks: ResNet-18, the BERT-style encoder, the LSTM."""
    path = benchmark_model(net, tmp_path)
    nnbuild.generate(path, str(tmp_path / net), name=net)
    check_asan_ubsan_clean(str(tmp_path / net), net, path, tmp_path)


def check_asan_ubsan_clean(project: str, prefix: str, path: str, tmp_path) -> None:
    build = build_with_harness(project, prefix, str(tmp_path / "build"), SANITIZE, cc=CC)
    run_clean([os.path.join(build, "harness")], f"{prefix} harness under ASan+UBSan")
    args, feeds, model = app_args(tmp_path, path)
    out_dir = tmp_path / "outputs"
    run_clean([os.path.join(build, "model", f"{prefix}_app"), *args, "--output-dir",
               str(out_dir)], f"{prefix} app under ASan+UBSan")
    from helpers import onnxruntime_outputs
    expected = onnxruntime_outputs(model, feeds)
    for name, value in expected.items():
        assert_close(np.load(out_dir / f"{name}.npy"), value, MODEL_TOLERANCE, what=name)


def _links_tsan() -> bool:
    proc = subprocess.run([CC or "cc", "-fsanitize=thread", "-x", "c", "-", "-o", os.devnull],
                          input="int main(void){return 0;}", capture_output=True, text=True)
    return proc.returncode == 0


@pytest.mark.skipif(CC is None or not _links_tsan(), reason="no ThreadSanitizer runtime")
def test_two_threads_thread_sanitizer_clean(projects, tmp_path):
    """The harness's two threads with their own workspaces, under -fsanitize=thread."""
    project, prefix, _ = projects["transformer_small"]
    build = build_with_harness(project, prefix, str(tmp_path / "build"),
                               "-fsanitize=thread -g", cc=CC)
    proc = subprocess.run([os.path.join(build, "harness")], capture_output=True, text=True,
                          env={**os.environ, "TSAN_OPTIONS": "halt_on_error=1:exitcode=25"})
    assert proc.returncode == 0 and "WARNING: ThreadSanitizer" not in proc.stderr, \
        proc.stdout + proc.stderr[-4000:]


@pytest.mark.parametrize("net", NETWORKS)
def test_no_heap_allocation_on_the_inference_path(projects, net, tmp_path):
    project, prefix, _ = projects[net]
    build = build_with_harness(project, prefix, str(tmp_path / "build"), count_malloc=True)
    proc = subprocess.run([os.path.join(build, "harness")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "allocations during 8 runs (2 with 3 threads): 0" in proc.stdout, proc.stdout


needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None, reason="no valgrind")


def valgrind_app(net, tmp_path, path: str | None = None, harness: bool = True):
    """valgrind does not decode AVX-512: the project is built for the generic target. The
    app runs once; the harness (NULL checks, 8 runs, threads) only where ``harness``."""
    target = "generic"
    prefix, project = net, str(tmp_path / "project")
    path = path or os.path.join(DATA, f"{net}.onnx")
    nnbuild.generate(path, project, name=net, target=target)
    build = build_with_harness(project, prefix, str(tmp_path / "build"), "-g")
    args, _, _ = app_args(tmp_path, path)
    cmd = ["valgrind", "--error-exitcode=1", "--leak-check=full", "--errors-for-leak-kinds=all",
           "--show-leak-kinds=all", "-q", os.path.join(build, "model", f"{prefix}_app"), *args,
           "--output-dir", str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and "==" not in proc.stderr, proc.stderr[-4000:]
    if not harness:
        return
    proc = subprocess.run(["valgrind", "--error-exitcode=1", "--leak-check=full",
                           "--errors-for-leak-kinds=all", "-q", os.path.join(build, "harness")],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and "==" not in proc.stderr, proc.stderr[-4000:]


@needs_valgrind
def test_valgrind_clean(tmp_path):
    valgrind_app("transformer_small", tmp_path)


@needs_valgrind
@pytest.mark.slow
@pytest.mark.parametrize("net", ["resnet_small", "mobilenet_small"])
def test_valgrind_clean_every_network(net, tmp_path):
    valgrind_app(net, tmp_path)


@needs_valgrind
@pytest.mark.slow
@pytest.mark.parametrize("net", BENCHMARK_NETWORKS)
def test_valgrind_clean_benchmark_networks(net, tmp_path):
    """The app once (the harness's repeated runs take too long under valgrind at this size)."""
    valgrind_app(net, tmp_path, benchmark_model(net, tmp_path), harness=False)


CONFORMANCE_OPS = re.compile(
    r"node/test_(add|sub|mul|div|cast_|where|equal|greater|less|and|or|xor|not|max|min|clip|"
    r"gather|concat|transpose|matmul|gemm|conv|maxpool|averagepool|softmax|reduce_sum|argmax|"
    r"cumsum|bitshift|mod|pow|erf|flatten|slice|split|tile|expand|pad|resize|bitwise|isnan|"
    r"sign|trilu|einsum|instancenorm|layer_normalization|batchnorm|lrn|depthtospace|onehot|"
    r"range|topk|scatter|hardmax|lstm|gru|rnn|quantizelinear|dequantizelinear|qlinear)")


@needs_sanitizers
@pytest.mark.slow
def test_conformance_cases_under_sanitizers(tmp_path, monkeypatch):
    """Every 8th node case of many op families (float, double, float16, int8..int64, uint8..,
    bool, string-free), batched and built with ASan+UBSan: no case fails with a report."""
    from nnbuild.conformance.cases import _node_cases
    from nnbuild.conformance.runner import run
    cases = [c for c in _node_cases() if CONFORMANCE_OPS.search(c.id)][::8]
    for var in ("CFLAGS", "LDFLAGS"):
        monkeypatch.setenv(var, SANITIZE)
    monkeypatch.setenv("CC", CC)
    for var, value in SANITIZER_ENV.items():
        monkeypatch.setenv(var, value)
    sweep = run(cases, str(tmp_path / "batch"), jobs=os.cpu_count(), log=lambda *a: None)
    reports = [r for r in sweep.results if any(s in r.reason for s in (
        "exit code 23", "exit code 24", "Sanitizer", "runtime error:"))]
    passed = sum(r.passed for r in sweep.results)
    print(f"\nconformance under ASan+UBSan: {len(cases)} cases, {passed} passed, "
          f"{len(reports)} sanitizer reports ({sweep.timing['total_s']:.0f} s)")
    assert not reports, "\n".join(f"{r.id}: {r.reason}" for r in reports)
