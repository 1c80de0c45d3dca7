"""The arm64-neon target, cross-built with Debian's gcc-aarch64-linux-gnu and run under
qemu-aarch64 (Debian's qemu-user; .ci/run installs both, the tests skip without them):

- the NEON SGEMM gives exactly the product (integer-valued data, so every sum is exact in
  float32) on one thread and on several, for sizes that are not multiples of its 8 x 12 tile, its KC-deep blocks or its NC
  and MC cache blocks, for every layout of B and C and every init (zero, bias, accumulate), and
  its run-time packing of A is the compile-time one (linalg.pack_a);
- the convolution kernels (direct tiles, 1x1, strided, grouped, depthwise) and the other SGEMM
  users (MatMul of run-time operands, Gemm, ConvTranspose) match onnxruntime;
- the NEON GEMV (a recurrent layer's per-step product) gives exactly the product;
- whole networks built for arm64-neon (resnet_small, transformer_small, the benchmark set's
  BERT-style encoder and LSTM, and with --runslow its ResNet-18) match onnxruntime and the x86
  build within MODEL_TOLERANCE;
- apps give bit-identical outputs on 1 and 3 threads;
- everything compiles warning-free (-Wall -Wextra -Werror) with aarch64-linux-gnu-gcc, and a
  cross build through the toolchain file picks arm64-neon for `TARGET host`."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper

import nnbuild
from nnbuild import resources, targets
from nnbuild.build.driver import cmake_exe, ninja_exe
from nnbuild.codegen.names import app_output_files
from nnbuild.ops import linalg
from nnbuild.testing import MODEL_TOLERANCE, OP_TOLERANCE, assert_close
from helpers import make_model, onnxruntime_outputs

SYSROOT = "/usr/aarch64-linux-gnu"
CC = "aarch64-linux-gnu-gcc"
MISSING = [tool for tool in (CC, "qemu-aarch64") if not shutil.which(tool)]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"cross tools absent: {', '.join(MISSING)} (Debian: apt-get install "
                          f"gcc-aarch64-linux-gnu qemu-user; .ci/run installs them)")

NEON = targets.TARGETS["arm64-neon"]
HAL = os.path.join(resources.templates_dir(), "hal")
TOOLCHAIN = os.path.join(resources.cmake_dir(), "toolchains", "aarch64-linux-gnu.cmake")
TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(TESTS, "models", "data")
BENCHMARKS = os.path.join(os.path.dirname(TESTS), "benchmarks")      # models.py: the set
F32 = np.float32
QEMU_TIMEOUT_S = 600


def qemu(*cmd: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(["qemu-aarch64", "-L", SYSROOT, *cmd], capture_output=True, text=True,
                          timeout=QEMU_TIMEOUT_S)
    assert proc.returncode == 0, f"{cmd[0]} exited with {proc.returncode}: {proc.stderr.strip()}"
    return proc


# --- choosing the target ---------------------------------------------------------------------
def test_host_on_64_bit_arm_is_arm64_neon():
    assert targets.best_for("aarch64", {"fp", "asimd"}).name == "arm64-neon"   # Linux
    assert targets.best_for("arm64", set()).name == "arm64-neon"               # macOS
    assert not NEON.runs_on("x86_64", {"avx2", "fma", "avx512f"})
    assert NEON.c_flags == ()            # NEON is baseline AArch64: no instruction-set flags


# --- the SGEMM micro-kernel, edge cases --------------------------------------------------------
GEMM_DRIVER = r"""
/* Reads cases from argv[1], writes results to argv[2], on argv[3] threads. A case: int32 m, n, k, c_layout,
 * b_layout, init; float alpha; A packed by nnbuild; A row-major; B (k x n, row-major or its
 * transpose); bias (m); C's initial value (m x n). Writes int32 (C's sgemm_pack_a == A packed)
 * then C (m x n, row-major). */
#include <stdio.h>
#include <stdlib.h>
#include "gemm.h"
#include "nn_pool.h"

static void *read_n(FILE *f, size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p || fread(p, 1, bytes, f) != bytes) { fprintf(stderr, "short input\n"); exit(2); }
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 4 || NN_FN(pool_set_threads)(atoi(argv[3])) != 0) return 2;
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (!in || !out) return 2;
    int32_t count;
    if (fread(&count, 4, 1, in) != 1) return 2;
    for (int32_t t = 0; t < count; ++t) {
        int32_t h[6];
        float alpha;
        if (fread(h, 4, 6, in) != 6 || fread(&alpha, 4, 1, in) != 1) return 2;
        const int m = h[0], n = h[1], k = h[2], c_layout = h[3], b_layout = h[4], init = h[5];
        const size_t packed_n = NN_GEMM_PACKED_A_FLOATS(m, k);
        float *packed = read_n(in, 4 * packed_n), *a = read_n(in, 4 * (size_t)m * k);
        float *b = read_n(in, 4 * (size_t)k * n), *bias = read_n(in, 4 * (size_t)m);
        float *c0 = read_n(in, 4 * (size_t)m * n);
        float *mine = malloc(4 * packed_n + 4);
        NN_FN(sgemm_pack_a)(m, k, a, k, 1, mine);
        const int32_t same = memcmp(mine, packed, 4 * packed_n) == 0;
        /* C row-major, column-major, or strided both ways (neither direction contiguous) */
        const ptrdiff_t rsc = c_layout == 0 ? n : c_layout == 1 ? 1 : 2 * n + 1;
        const ptrdiff_t csc = c_layout == 0 ? 1 : c_layout == 1 ? m : 2;
        float *c = calloc((size_t)m * (2 * n + 1) + 1, 4);
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j)
                c[i * rsc + j * csc] = c0[(size_t)i * n + j];
        const ptrdiff_t rsb = b_layout == 0 ? n : 1, csb = b_layout == 0 ? 1 : k;
        float *work = malloc(4 * NN_GEMM_WORK_FLOATS(n) + 4);
        NN_FN(sgemm)(m, n, k, alpha, packed, b, rsb, csb, init == 1 ? bias : NULL, init == 2,
                     c, rsc, csc, work);
        fwrite(&same, 4, 1, out);
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j)
                fwrite(&c[i * rsc + j * csc], 4, 1, out);
        free(packed); free(a); free(b); free(bias); free(c0); free(mine); free(c); free(work);
    }
    return fclose(out) != 0;
}
"""

CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]


def cross_compile(folder, sources, program: str) -> str:
    proc = subprocess.run([CC, *CFLAGS, "-I", str(folder), *map(str, sources), "-o", program,
                           "-lm", "-pthread"], capture_output=True, text=True)
    assert proc.returncode == 0, f"{CC} failed:\n{proc.stderr}"
    return program


@pytest.fixture(scope="module")
def gemm_program(tmp_path_factory):
    """The arm64-neon gemm.c with a test driver, cross-compiled warning-free."""
    folder = tmp_path_factory.mktemp("neon-gemm")
    for name, source in (("nn_hal.h", os.path.join(HAL, "common", "nn_hal.h")),
                         ("nn_pool.h", os.path.join(HAL, "common", "nn_pool.h")),
                         ("nn_pool.c", os.path.join(HAL, "common", "nn_pool.c")),
                         ("nn_gemm.h", os.path.join(HAL, "common", "nn_gemm.h")),
                         ("nn_gemm_driver.h", os.path.join(HAL, "common", "nn_gemm_driver.h")),
                         ("gemm.h", targets.family_source(NEON, "gemm", "h", HAL)),
                         ("gemm.c", targets.family_source(NEON, "gemm", "c", HAL))):
        shutil.copy(source, folder / name)
    (folder / "nn_config.h").write_text("#define NN_PREFIX neontest\n")
    (folder / "driver.c").write_text(GEMM_DRIVER)
    return cross_compile(folder, [folder / "gemm.c", folder / "nn_pool.c", folder / "driver.c"],
                         str(folder / "gemm_check"))


def gemm_cases():
    """(m, n, k, c_layout, b_layout, init, alpha): every remainder of the 8 x 12 tile, k across
    a KC block edge, n across an NC block, m across an MC block; on several threads, products
    split by columns and (A over 2^17 floats) by rows."""
    b = NEON.gemm
    cases = []
    for i, (m, n, k) in enumerate([
            (1, 1, 1), (3, 1, 7), (8, 1, 9), (13, 1, 300),                 # matrix-vector
            (1, 12, 5), (4, 12, 5), (5, 13, 3), (8, 12, 4), (9, 24, 17),
            (7, 2, 11), (6, 5, 8), (16, 8, 2), (3, 4, 6), (2, 3, 1), (12, 7, 13),
            (17, 25, 257), (8, 12, b.KC), (11, 23, b.KC + 1), (24, 36, 2 * b.KC + 3),
            (9, b.NC + 5, 3), (b.MC + 5, 14, 6), (b.MC + 9, b.NC + 13, b.KC + 2),
            (403, 14, 200), (521, 30, 301)]):         # large A: rows split, B packed once
        for c_layout in range(3):
            cases.append((m, n, k, c_layout, (i + c_layout) % 2, (i + c_layout) % 3,
                          (1.0, 0.5, -2.0)[(i // 3 + c_layout) % 3]))
    return cases


@pytest.mark.parametrize("threads", [1, 3])
def test_neon_sgemm_is_exact_at_every_edge_of_its_blocking(gemm_program, threads, tmp_path):
    rng = np.random.default_rng(11)
    blob, expected = [struct.pack("<i", 0)], []
    for m, n, k, c_layout, b_layout, init, alpha in gemm_cases():
        a = rng.integers(-4, 5, (m, k)).astype(F32)         # sums of small integers: exact
        b = rng.integers(-4, 5, (k, n)).astype(F32)
        bias = rng.integers(-9, 10, m).astype(F32)
        c0 = rng.integers(-9, 10, (m, n)).astype(F32)
        with targets.using(NEON):
            packed = linalg.pack_a(a)
        blob += [struct.pack("<6if", m, n, k, c_layout, b_layout, init, alpha), packed.tobytes(),
                 a.tobytes(), (b if b_layout == 0 else np.ascontiguousarray(b.T)).tobytes(),
                 bias.tobytes(), c0.tobytes()]
        start = c0 if init == 2 else bias[:, None] if init == 1 else 0
        expected.append((m, n, k, c_layout, (start + alpha * (a.astype(np.float64) @ b))
                         .astype(F32)))
    blob[0] = struct.pack("<i", len(expected))
    (tmp_path / "cases.bin").write_bytes(b"".join(blob))
    qemu(gemm_program, str(tmp_path / "cases.bin"), str(tmp_path / "out.bin"), str(threads))
    result = (tmp_path / "out.bin").read_bytes()
    at = 0
    for m, n, k, c_layout, want in expected:
        what = f"m={m} n={n} k={k} C layout {c_layout}"
        assert struct.unpack_from("<i", result, at)[0] == 1, f"{what}: sgemm_pack_a != pack_a"
        got = np.frombuffer(result, F32, m * n, at + 4).reshape(m, n)
        at += 4 + 4 * m * n
        assert np.array_equal(got, want), \
            f"{what}: {int((got != want).sum())} wrong elements, first at " \
            f"{np.argwhere(got != want)[0].tolist()}"
    assert at == len(result)


@pytest.mark.parametrize("compiler", [
    [CC],
    pytest.param(["clang", "--target=aarch64-linux-gnu"], marks=pytest.mark.skipif(
        not shutil.which("clang"), reason="clang absent")),
], ids=["gcc", "clang"])
def test_every_kernel_family_compiles_warning_free_for_aarch64(compiler, tmp_path):
    """A project with every family and helper (--fixed-files): the arm64-neon kernels and the
    generic ones it falls back to, with -Wall -Wextra -Werror at -O3."""
    project = tmp_path / "project"
    nnbuild.generate(write_conv_model(tmp_path), str(project), target="arm64-neon",
                     fixed_files=True)
    sources = sorted((project / "hal").glob("*.c")) + sorted((project / "src").glob("*.c"))
    assert {"gemm.c", "conv.c", "nn_pool.c"} <= {f.name for f in sources}
    for source in sources + [project / "app" / "main.c"]:
        proc = subprocess.run([*compiler, "-std=c11", "-O3", "-Wall", "-Wextra", "-Werror",
                               "-I", str(project / "hal"), "-I", str(project / "include"),
                               "-I", str(project / "src"), "-c", str(source), "-o", os.devnull],
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{source.name}:\n{proc.stderr}"


GEMV_DRIVER = r"""
/* Reads cases from argv[1], writes y to argv[2], on argv[3] threads. A case: int32 m, k, n;
 * A packed by nnbuild; x (n columns of k, column j at x + j * (k + 1)). Writes y (n columns
 * of m, column j at y + j * (m + 2)), all of it. */
#include <stdio.h>
#include <stdlib.h>
#include "gemm.h"
#include "gemv.h"
#include "nn_pool.h"

int main(int argc, char **argv)
{
    if (argc != 4 || NN_FN(pool_set_threads)(atoi(argv[3])) != 0) return 2;
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    int32_t count, h[3];
    if (!in || !out || fread(&count, 4, 1, in) != 1) return 2;
    for (int32_t t = 0; t < count; ++t) {
        if (fread(h, 4, 3, in) != 3) return 2;
        const int m = h[0], k = h[1], n = h[2];
        const size_t na = NN_GEMM_PACKED_A_FLOATS(m, k), nx = (size_t)n * (k + 1);
        const size_t ny = (size_t)n * (m + 2);
        float *a = malloc(4 * na), *x = malloc(4 * nx), *y = malloc(4 * ny);
        if (fread(a, 4, na, in) != na || fread(x, 4, nx, in) != nx) return 2;
        for (size_t i = 0; i < ny; ++i)
            y[i] = -1.0f;                       /* what sgemv must leave alone stays -1 */
        NN_FN(sgemv_packed)(m, k, n, a, x, k + 1, y, m + 2);
        fwrite(y, 4, ny, out);
        free(a); free(x); free(y);
    }
    return fclose(out) != 0;
}
"""


@pytest.fixture(scope="module")
def gemv_program(tmp_path_factory):
    """The arm64-neon gemv.c with a test driver, cross-compiled warning-free."""
    folder = tmp_path_factory.mktemp("neon-gemv")
    for name in ("nn_hal.h", "nn_pool.h", "nn_pool.c", "nn_gemm.h", "nn_gemv_driver.h"):
        shutil.copy(os.path.join(HAL, "common", name), folder / name)
    for family, ext in (("gemm", "h"), ("gemv", "h"), ("gemv", "c")):
        shutil.copy(targets.family_source(NEON, family, ext, HAL), folder / f"{family}.{ext}")
    (folder / "nn_config.h").write_text("#define NN_PREFIX neontest\n")
    (folder / "driver.c").write_text(GEMV_DRIVER)
    return cross_compile(folder, [folder / "gemv.c", folder / "nn_pool.c", folder / "driver.c"],
                         str(folder / "gemv_check"))


@pytest.mark.parametrize("threads", [1, 3])
def test_neon_gemv_is_exact_for_every_panel_and_block_remainder(gemv_program, threads, tmp_path):
    """y = A x per column, A packed as for the SGEMM: rows not a multiple of the 8-row panel,
    k not a multiple of the 4-step unroll or of a KC block, strided x and y."""
    assert targets.family_source(NEON, "gemv", "c", HAL).endswith("arm64-neon/gemv.c")
    rng = np.random.default_rng(12)
    kc = NEON.gemm.KC
    cases = [(1, 1, 1), (7, 3, 2), (8, 4, 1), (9, 5, 3), (17, kc, 1), (30, kc + 1, 2),
             (130, 2 * kc + 7, 3), (1030, 601, 2)]                  # the last: split on 3 threads
    blob, expected = [struct.pack("<i", len(cases))], []
    for m, k, n in cases:
        a = rng.integers(-4, 5, (m, k)).astype(F32)
        x = rng.integers(-4, 5, (n, k + 1)).astype(F32)       # column j: x[j, :k]
        with targets.using(NEON):
            blob += [struct.pack("<3i", m, k, n), linalg.pack_a(a).tobytes(), x.tobytes()]
        y = np.full((n, m + 2), -1.0, F32)
        y[:, :m] = (x[:, :k].astype(np.float64) @ a.T.astype(np.float64)).astype(F32)
        expected.append(((m, k, n), y))
    (tmp_path / "cases.bin").write_bytes(b"".join(blob))
    qemu(gemv_program, str(tmp_path / "cases.bin"), str(tmp_path / "out.bin"), str(threads))
    result, at = (tmp_path / "out.bin").read_bytes(), 0
    for (m, k, n), want in expected:
        got = np.frombuffer(result, F32, want.size, at).reshape(want.shape)
        at += 4 * want.size
        assert np.array_equal(got, want), f"m={m} k={k} n={n}: {int((got != want).sum())} wrong"
    assert at == len(result)


# --- generated projects, cross-built ---------------------------------------------------------
def cross_build(model, folder, **options) -> str:
    """nnbuild generate --target arm64-neon (and `options`, e.g. opt_level), then CMake with the
    aarch64 toolchain file and -Werror: returns the app."""
    project = os.path.join(str(folder), "project")
    generated = nnbuild.generate(model, project, target="arm64-neon", **options)
    build = os.path.join(project, "build")
    configure = [cmake_exe(), "-S", project, "-B", build, "-G", "Ninja",
                 f"-DCMAKE_MAKE_PROGRAM={ninja_exe()}", f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN}",
                 "-DCMAKE_C_FLAGS=-Werror"]
    for cmd in (configure, [cmake_exe(), "--build", build]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd[:2])} failed:\n{proc.stdout}\n{proc.stderr}"
    app = os.path.join(build, f"{generated.prefix}_app")
    with open(app, "rb") as f:
        assert f.read(20)[18] == 183                 # ELF e_machine EM_AARCH64
    return app


def run_under_qemu(app: str, feeds: dict, output_names: list, work, threads: int) -> dict:
    out_dir = os.path.join(str(work), f"outputs-{threads}")
    cmd = [app, "--output-dir", out_dir, "--threads", str(threads)]
    for i, (name, array) in enumerate(feeds.items()):
        path = os.path.join(str(work), f"input{i}.npy")
        np.save(path, array)
        cmd += ["--input", f"{name}={path}"]
    qemu(*cmd)
    return {name: np.load(os.path.join(out_dir, f))
            for name, f in zip(output_names, app_output_files(list(output_names)))}


def check_model(model: onnx.ModelProto, feeds: dict, folder, tolerance: dict) -> dict:
    """The arm64-neon app under qemu on 3 threads against onnxruntime, and on 1 thread
    bit-identical to that; returns its outputs."""
    expected = onnxruntime_outputs(model, feeds)
    app = cross_build(model, folder)
    actual = run_under_qemu(app, feeds, list(expected), folder, threads=3)
    for name in expected:
        assert_close(actual[name], expected[name], tolerance, what=f"arm64-neon output {name}")
    single = run_under_qemu(app, feeds, list(expected), folder, threads=1)
    for name in expected:
        assert np.array_equal(single[name], actual[name]), f"{name}: 1 thread != 3 threads"
    return actual


def test_neon_depthwise_epilogue_is_the_separate_ops_bit_for_bit(tmp_path):
    """The depthwise kernels apply a fused Add / Relu / Clip as they store, with NEON selects
    for maxps / minps: the separate ops' bits (-O1), NaN, infinities and signed zeros in the
    residual included, on every path the target has (bands, the flattened plane, scalar)."""
    from test_conv_epilogue import feeds_for
    from test_depthwise_epilogue import depthwise_epilogue_model
    model = depthwise_epilogue_model()
    fused = cross_build(model, tmp_path / "fused")
    separate = cross_build(model, tmp_path / "separate", opt_level=1)
    names = [o.name for o in model.graph.output]
    for special in (False, True):
        feeds = feeds_for(model, special)
        got = run_under_qemu(fused, feeds, names, tmp_path / "fused", threads=3)
        want = run_under_qemu(separate, feeds, names, tmp_path / "separate", threads=1)
        for name in names:
            np.testing.assert_array_equal(got[name], want[name],
                                          err_msg=f"{name}{' special' if special else ''}")


def conv_model(c, m, size, kernel, group=1, stride=1, pad=0, dilation=1, relu=False, seed=0):
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c" if relu else "y"], group=group,
                              strides=[stride] * 2, pads=[pad] * 4, dilations=[dilation] * 2)]
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    inits = {"w": (rng.standard_normal((m, c // group, kernel, kernel)) /
                   np.sqrt(c // group * kernel * kernel)).astype(F32),
             "b": rng.standard_normal(m).astype(F32)}
    return make_model(nodes, {"x": (F32, [1, c, size[0], size[1]])}, ["y"], inits)


def write_conv_model(folder) -> str:
    path = os.path.join(str(folder), "m.onnx")
    onnx.save(conv_model(c=3, m=8, size=(6, 6), kernel=3), path)
    return path


CONVS = {   # name: conv_model arguments; each reaches a different path of conv.c
    "3x3-direct": dict(c=5, m=19, size=(9, 14), kernel=3, pad=1, relu=True),
    "3x3-stride2": dict(c=6, m=10, size=(11, 13), kernel=3, stride=2, pad=1),
    "5x5-dilated": dict(c=3, m=9, size=(12, 12), kernel=5, pad=2, dilation=2),
    "1x1-pointwise": dict(c=13, m=21, size=(5, 7), kernel=1),
    "grouped": dict(c=8, m=12, size=(7, 9), kernel=3, group=4, pad=1),
    "depthwise": dict(c=7, m=7, size=(10, 15), kernel=3, group=7, pad=1),
    "depthwise-stride2": dict(c=4, m=8, size=(9, 11), kernel=3, group=4, stride=2, pad=1),
    "narrow-rows": dict(c=4, m=6, size=(12, 3), kernel=3, pad=1),   # im2col packing
}


@pytest.mark.parametrize("name", list(CONVS))
def test_neon_conv_matches_onnxruntime(name, tmp_path):
    model = conv_model(**CONVS[name])
    x = np.random.default_rng(1).standard_normal(
        [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]).astype(F32)
    check_model(model, {"x": x}, tmp_path, OP_TOLERANCE)


def products_model():
    """The other users of the NEON SGEMM: MatMul of two run-time operands (A packed at run time),
    Gemm with transA, alpha, beta and a C row, and a strided ConvTranspose (GEMM + col2im)."""
    rng = np.random.default_rng(5)
    nodes = [helper.make_node("MatMul", ["a", "b"], ["ab"]),                      # 2x13x17
             helper.make_node("Reshape", ["ab", "shape"], ["flat"]),              # 26x17
             helper.make_node("Gemm", ["w", "flat", "c"], ["g"], transA=1, alpha=0.5, beta=2.0),
             helper.make_node("ConvTranspose", ["img", "wt", "bt"], ["t"], strides=[2, 2],
                              pads=[1, 1, 0, 0], output_padding=[1, 1])]
    inits = {"shape": np.array([26, 17], np.int64),
             "w": rng.standard_normal((26, 9)).astype(F32),          # transA: 9 x 26
             "c": rng.standard_normal((1, 17)).astype(F32),
             "wt": (0.3 * rng.standard_normal((6, 5, 3, 3))).astype(F32),
             "bt": rng.standard_normal(5).astype(F32)}
    return make_model(nodes, {"a": (F32, [2, 13, 11]), "b": (F32, [2, 11, 17]),
                              "img": (F32, [1, 6, 5, 7])}, ["g", "t"], inits)


def test_neon_matmul_gemm_and_conv_transpose_match_onnxruntime(tmp_path):
    model = products_model()
    rng = np.random.default_rng(6)
    feeds = {"a": rng.standard_normal((2, 13, 11)).astype(F32),
             "b": rng.standard_normal((2, 11, 17)).astype(F32),
             "img": rng.standard_normal((1, 6, 5, 7)).astype(F32)}
    check_model(model, feeds, tmp_path, OP_TOLERANCE)


def test_neon_attention_layouts_match_onnxruntime(tmp_path):
    """The x86 kernel's layout cases (tests/targets/test_attention_kernels.py) and two whose
    tails fall on the NEON kernel's 4-wide steps: a depth that is not a multiple of 4 with each
    key contiguous along it, and key and value counts past 16-wide blocks."""
    import test_attention_kernels as cases
    rng = np.random.default_rng(11)
    shapes = dict(cases.CASES, heads_depth_tail4=(1, 2, 6, 7, 21, 10, "heads", None),
                  plain_blocks_of_16=(1, 1, 4, 37, 5, 19, "plain", (1, 1, 4, 37)))
    nodes, inputs, inits = [], {}, {}
    for name, case in shapes.items():
        n, i, w = cases._case(name, *case, rng)
        nodes += n
        inputs.update(i)
        inits.update(w)
    model = make_model(nodes, inputs, [f"{name}_y" for name in shapes], inits)
    feeds = {k: v * 2 for k, v in cases.random_inputs(model).items()}   # peaked rows too
    app = check_model(model, feeds, tmp_path, OP_TOLERANCE)
    assert len(app) == len(shapes)
    with open(os.path.join(str(tmp_path), "project", "hal", "attention.c"), "rb") as f:
        assert f.read() == open(targets.family_source(NEON, "attention", "c", HAL), "rb").read()


def test_neon_lstm_cell_activations_over_their_range(tmp_path):
    """The NEON LSTM cell's sigmoid and tanh (vector exp, an odd polynomial below 0.625) against
    float64 numpy, as tests/ops/test_recurrent.py checks the x86 one: with W four identity
    blocks and no R or bias, one step gives c = sig(x) tanh(x) and h = sig(x) tanh(c) for every
    x swept from -100 to 100, through tiny magnitudes and across the polynomial's edge; 203
    units leave a 3-unit tail."""
    hidden, batch = 203, 3
    sweep = np.concatenate([np.linspace(-100, 100, 301), np.geomspace(1e-8, 20, 77),
                            -np.geomspace(1e-8, 20, 77), np.linspace(0.6, 0.65, 21),
                            -np.linspace(0.6, 0.65, 21), [0.0, -0.0, 88.5, -88.5, -87.0]])
    x = np.resize(sweep, batch * hidden).reshape(1, batch, hidden).astype(F32)
    eye = np.eye(hidden, dtype=F32)
    inits = {"W": np.concatenate([eye] * 4)[None], "R": np.zeros([1, 4 * hidden, hidden], F32)}
    node = helper.make_node("LSTM", ["X", "W", "R"], ["", "Y_h", "Y_c"], hidden_size=hidden)
    model = make_model([node], {"X": (F32, [1, batch, hidden])}, ["Y_h", "Y_c"], inits, opset=14)
    app = cross_build(model, tmp_path)
    with open(os.path.join(str(tmp_path), "project", "hal", "recurrent.c"), "rb") as f:
        assert f.read() == open(targets.family_source(NEON, "recurrent", "c", HAL), "rb").read()
    out = run_under_qemu(app, {"X": x}, ["Y_h", "Y_c"], tmp_path, threads=1)
    v = x.astype(np.float64)[0]
    sig = 1 / (1 + np.exp(-v))
    c = sig * np.tanh(v)
    assert_close(out["Y_c"][0], c.astype(F32), what="c")
    assert_close(out["Y_h"][0], (sig * np.tanh(c)).astype(F32), what="h")
    assert np.abs(out["Y_c"][0] - c).max() < 1e-6


def seeded_inputs(model: onnx.ModelProto, vocab: int = 100) -> dict:
    """Standard-normal floats; integer inputs are token ids in [0, vocab)."""
    rng = np.random.default_rng(0)
    feeds = {}
    for vi in model.graph.input:
        t = vi.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)
        shape = [d.dim_value for d in t.shape.dim]
        feeds[vi.name] = (rng.integers(0, vocab, shape).astype(dtype)
                          if np.issubdtype(dtype, np.integer)
                          else rng.standard_normal(shape).astype(dtype))
    return feeds


@pytest.mark.parametrize("network", ["resnet_small", "transformer_small"])
def test_network_under_qemu_matches_onnxruntime_and_the_x86_build(network, tmp_path, cache_dir):
    model = onnx.load(os.path.join(MODELS, f"{network}.onnx"))
    feeds = seeded_inputs(model)
    arm = check_model(model, feeds, tmp_path, MODEL_TOLERANCE)
    native = nnbuild.compile(model, cache_dir=cache_dir).run(feeds)     # this machine's target
    for name in native:
        assert_close(arm[name], native[name], MODEL_TOLERANCE, what=f"arm64-neon vs host {name}")


@pytest.mark.parametrize("network", [
    "bert_encoder",                                       # about 30 s (qemu: 7 s a run)
    "lstm",                                               # the GEMV and LSTM cell kernels
    pytest.param("resnet18", marks=pytest.mark.slow),     # 70-90 s (qemu: 20 s a run)
])
def test_benchmark_network_under_qemu_matches_onnxruntime_and_the_x86_build(network, tmp_path,
                                                                          cache_dir):
    """The issue's cross-build check: ResNet-18 and the BERT-style encoder of the benchmark
    set (benchmarks/models.py) built for arm64-neon; and its LSTM (the per-step GEMV)."""
    spec = importlib.util.spec_from_file_location("benchmark_models",
                                                  os.path.join(BENCHMARKS, "models.py"))
    benchmark_models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark_models)
    model = benchmark_models.BUILDERS[network]()
    feeds = benchmark_models.feeds(model)
    arm = check_model(model, feeds, tmp_path, MODEL_TOLERANCE)
    native = nnbuild.compile(model, cache_dir=cache_dir).run(feeds)
    for name in native:
        assert_close(arm[name], native[name], MODEL_TOLERANCE, what=f"arm64-neon vs host {name}")


# --- the CMake integration: `TARGET host` in a cross build --------------------------------------
def test_cross_build_with_the_toolchain_file_picks_arm64_neon(tmp_path):
    """examples/cmake-app's models, `nn_add_model(... TARGET host)` by default, configured
    with the aarch64 toolchain file, are generated for arm64-neon (its kernels in the build)."""
    source = tmp_path / "app"
    source.mkdir()
    write_conv_model(source)
    (source / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(crosscheck C ASM)\n"
        "find_package(nnbuild CONFIG REQUIRED)\nnn_add_model(net MODEL m.onnx)\n"
        "nn_add_model_executable(net)\n")
    build = tmp_path / "build"
    configure = [cmake_exe(), "-S", str(source), "-B", str(build), "-G", "Ninja",
                 f"-DCMAKE_MAKE_PROGRAM={ninja_exe()}", f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN}",
                 f"-Dnnbuild_ROOT={resources.cmake_dir()}", f"-DNNBUILD_PYTHON={sys.executable}"]
    for cmd in (configure, [cmake_exe(), "--build", str(build)]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd[:2])} failed:\n{proc.stdout}\n{proc.stderr}"
    project = build / "net.nnbuild" / "project"
    assert json.loads((project / "nnbuild.json").read_text())["target"] == "arm64-neon"
    assert (project / "hal" / "gemm.c").read_bytes() == \
        open(targets.family_source(NEON, "gemm", "c", HAL), "rb").read()
    x = np.random.default_rng(2).standard_normal((1, 3, 6, 6)).astype(F32)
    np.save(tmp_path / "x.npy", x)
    qemu(str(build / "net_app"), "--input", f"x={tmp_path / 'x.npy'}", "--output-dir",
         str(tmp_path / "out"))
    model = onnx.load(str(source / "m.onnx"))
    assert_close(np.load(tmp_path / "out" / "y.npy"), onnxruntime_outputs(model, {"x": x})["y"])
