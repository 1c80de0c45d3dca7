"""hal/nn_vmath.h, the branch-free float math of the generated elementwise loops: each function
compiled as the network's loops compile it (-std=gnu11 -O3: FMA contraction on where the
flags allow it; x86-64 baseline, AVX2+FMA, and AArch64 under qemu), swept over dense
runs of floats plus the specials, against float64 numpy; the ULP bounds are the header's own.
The functions' loops must auto-vectorise at -O3, as the generated project builds (gcc
-fopt-info-vec; GCC 12 at -O2 vectorises only its very cheap loops)."""
from __future__ import annotations

import math
import os
import shutil
import subprocess

import numpy as np
import pytest

from nnbuild.resources import templates_dir
from nnbuild.testing import OP_TOLERANCE

HEADER = os.path.join(templates_dir(), "hal", "common", "nn_vmath.h")
CC = shutil.which("gcc") or shutil.which("cc")
pytestmark = pytest.mark.skipif(CC is None, reason="needs a C compiler")

FUNCTIONS = ("expf", "logf", "log1pf", "tanhf", "erff", "sigmoidf", "softplusf")
DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nn_vmath.h"
#define LOOP(f) static void run_##f(const float *x, float *y, size_t n) { \
    for (size_t i = 0; i < n; ++i) y[i] = nn_##f(x[i]); }
LOOP(expf) LOOP(logf) LOOP(log1pf) LOOP(tanhf) LOOP(erff) LOOP(sigmoidf) LOOP(softplusf)
int main(int argc, char **argv) {   /* driver FUNCTION IN OUT */
    FILE *in = fopen(argv[2], "rb");
    fseek(in, 0, SEEK_END);
    size_t n = (size_t)ftell(in) / 4;
    fseek(in, 0, SEEK_SET);
    float *x = malloc(n * 4), *y = malloc(n * 4);
    if (fread(x, 4, n, in) != n) return 1;
    fclose(in);
#define CASE(f) if (!strcmp(argv[1], #f)) run_##f(x, y, n);
    CASE(expf) CASE(logf) CASE(log1pf) CASE(tanhf) CASE(erff) CASE(sigmoidf) CASE(softplusf)
    FILE *out = fopen(argv[3], "wb");
    fwrite(y, 4, n, out);
    fclose(out);
    (void)argc;
    return 0;
}
"""

# name -> (compiler, flags, runner): x86-64 baseline, AVX2 + FMA (contracted), AArch64 NEON
# (contracted) under qemu-aarch64
FLAG_SETS = {"baseline": (CC, [], []), "avx2_fma": (CC, ["-mavx2", "-mfma"], []),
             "arm64_neon": ("aarch64-linux-gnu-gcc", ["-static"], ["qemu-aarch64"])}


def _cpu_has(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return f" {flag}" in f.read()
    except OSError:
        return False


@pytest.fixture(scope="module", params=sorted(FLAG_SETS))
def driver(request, tmp_path_factory):
    cc, flags, runner = FLAG_SETS[request.param]
    if "-mavx2" in flags and not _cpu_has("avx2"):
        pytest.skip("the CPU has no AVX2")
    missing = [tool for tool in [cc] + runner if not shutil.which(tool)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    folder = tmp_path_factory.mktemp(f"vmath_{request.param}")
    (folder / "driver.c").write_text(DRIVER)
    exe = folder / "driver"
    subprocess.run([cc, "-std=gnu11", "-O3", "-Wall", "-Wextra", "-Werror", *flags,
                    "-I", os.path.dirname(HEADER), str(folder / "driver.c"), "-o", str(exe)],
                   check=True)

    def run(fn: str, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        x.tofile(folder / "in.bin")
        subprocess.run(runner + [str(exe), fn, str(folder / "in.bin"), str(folder / "out.bin")],
                       check=True)
        return np.fromfile(folder / "out.bin", np.float32)
    return run


def every_float(lo: float, hi: float, step: int = 1) -> np.ndarray:
    """Every ``step``-th float in [lo, hi] (by bit pattern, both signs)."""
    def key(v):       # monotone integer order of floats
        b = int(np.float32(v).view(np.int32))
        return b if b >= 0 else -(b & 0x7fffffff)
    k = np.arange(key(lo), key(hi) + 1, step, dtype=np.int64)
    bits = np.where(k >= 0, k, (-k) | 0x80000000).astype(np.uint32)
    return bits.view(np.float32)


SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1.1754942e-38,
                     3.4028235e38, -3.4028235e38], np.float32)


def ulp_error(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|y - ref| in units of the float32 spacing at ref (2^-149 for subnormals)."""
    with np.errstate(all="ignore"):     # inf - inf where both overflow: not compared here
        spacing = np.spacing(np.abs(ref.astype(np.float32))).astype(np.float64)
        spacing = np.maximum(spacing, 2.0 ** -149)
        return np.abs(y.astype(np.float64) - ref) / spacing


_erf = np.vectorize(math.erf, otypes=[np.float64])
REFERENCE = {
    "expf": np.exp, "logf": np.log, "log1pf": np.log1p, "tanhf": np.tanh, "erff": _erf,
    "sigmoidf": lambda x: 1 / (1 + np.exp(-x)), "softplusf": lambda x: np.logaddexp(0, x),
}
# function: (ranges swept (lo, hi, step), max ULP as the header states)
SWEEPS = {
    "expf": ([(-104.0, 89.0, 2003), (-1.0, 1.0, 2003), (1.0, 1.125, 1), (88.0, 88.8, 1),
              (-104.0, -87.0, 1)], 1),
    "logf": ([(1e-45, 3.4028235e38, 2003), (1.0, 1.125, 1), (0.70, 0.72, 1), (1.40, 1.43, 1),
              (1e-45, 1.2e-38, 9)], 1),
    "log1pf": ([(-1.0, 1e6, 2003), (-0.5, 0.5, 2003), (-1.0, -0.999, 1), (0.1, 0.11, 1)], 3),
    "tanhf": ([(-10.0, 10.0, 2003), (0.6, 0.65, 1), (-1e-3, 1e-3, 2003), (9.0, 10.0, 1)], 2),
    "erff": ([(-4.0, 4.0, 2003), (0.92, 0.96, 1), (3.5, 4.0, 3)], 3),
    "sigmoidf": ([(-88.0, 88.0, 2003), (-1.0, 1.0, 2003), (0.5, 0.6, 1)], 3),
    "softplusf": ([(-1e4, 1e4, 2003), (-1.0, 1.0, 2003), (-0.1, 0.1, 2003), (15.0, 17.0, 1)], 3),
}


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_error_within_stated_ulp(driver, fn):
    ranges, bound = SWEEPS[fn]
    x = np.concatenate([every_float(lo, hi, step) for lo, hi, step in ranges])
    y = driver(fn, x)
    with np.errstate(all="ignore"):
        ref = REFERENCE[fn](x.astype(np.float64))
    with np.errstate(over="ignore"):
        finite = np.isfinite(ref.astype(np.float32))     # where float32 overflows: exactly inf
        assert np.all(y[~finite] == ref[~finite].astype(np.float32)), fn
    if fn == "sigmoidf":
        finite &= np.abs(ref) >= 2.0 ** -126
    err = ulp_error(y[finite], ref[finite])
    worst = int(np.argmax(err))
    assert err[worst] <= bound, (
        f"nn_{fn}({x[finite][worst]!r}) = {y[finite][worst]!r}, float64 {ref[finite][worst]!r}: "
        f"{err[worst]:.2f} ULP > {bound}")
    # well inside the op tolerance of float32
    rtol, atol = OP_TOLERANCE["float32"]
    assert np.all(np.abs(y[finite] - ref[finite]) <= atol + rtol * np.abs(ref[finite]) / 100)


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_specials(driver, fn):
    y = driver(fn, SPECIALS)
    with np.errstate(all="ignore"):
        ref = REFERENCE[fn](SPECIALS.astype(np.float64)).astype(np.float32)
    same = (y == ref) | (np.isnan(y) & np.isnan(ref))
    close = np.isfinite(ref) & (ulp_error(y, ref.astype(np.float64)) <= SWEEPS[fn][1])
    assert np.all(same | close), [(x, a, b) for x, a, b in zip(SPECIALS, y, ref)
                                  if not (a == b or (np.isnan(a) and np.isnan(b)))]
    if fn in ("tanhf", "erff"):      # odd: the sign of zero is kept
        assert np.signbit(y[1]) and not np.signbit(y[0])


@pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc")
@pytest.mark.parametrize("flags", [["-O3"], ["-O3", "-mavx2", "-mfma"]])
def test_loops_vectorise(tmp_path, flags):
    source = tmp_path / "loops.c"
    source.write_text("#include \"nn_vmath.h\"\n" + "".join(
        f"void run_{fn}(const float *restrict x, float *restrict y, long n) "
        f"{{ for (long i = 0; i < n; ++i) y[i] = nn_{fn}(x[i]); }}\n" for fn in FUNCTIONS))
    report = subprocess.run(
        ["gcc", "-std=c11", *flags, "-fopt-info-vec-optimized", "-I", os.path.dirname(HEADER),
         "-c", str(source), "-o", str(tmp_path / "loops.o")],
        check=True, capture_output=True, text=True).stderr
    vectorised = {int(line.split(":")[1]) for line in report.splitlines()
                  if "loop vectorized" in line and line.startswith(str(source))}
    assert vectorised == set(range(2, 2 + len(FUNCTIONS))), report


@pytest.mark.skipif(not shutil.which("clang"), reason="needs clang")
def test_loops_vectorise_with_clang(tmp_path):
    source = tmp_path / "loops.c"
    source.write_text("#include \"nn_vmath.h\"\n" + "".join(
        f"void run_{fn}(const float *restrict x, float *restrict y, long n) "
        f"{{ for (long i = 0; i < n; ++i) y[i] = nn_{fn}(x[i]); }}\n" for fn in FUNCTIONS))
    report = subprocess.run(
        ["clang", "-std=gnu11", "-O3", "-Wall", "-Wextra", "-Werror", "-Rpass=loop-vectorize",
         "-I", os.path.dirname(HEADER), "-c", str(source), "-o", str(tmp_path / "loops.o")],
        check=True, capture_output=True, text=True).stderr
    vectorised = {int(line.split(":")[1]) for line in report.splitlines()
                  if "vectorized loop" in line}
    assert vectorised == set(range(2, 2 + len(FUNCTIONS))), report


# --- the generated network's loops ---------------------------------------------------------------
def _node(op: str, **attrs):
    from onnx import helper
    return helper.make_node(op, ["x"], ["y"], **attrs)


NETWORK_OPS = {         # op -> (node attributes, opset)
    "Exp": ({}, 17), "Log": ({}, 17), "Erf": ({}, 17), "Tanh": ({}, 17), "Sigmoid": ({}, 17),
    "Softplus": ({}, 17), "Relu": ({}, 17), "LeakyRelu": ({}, 17), "Elu": ({}, 17),
    "Selu": ({}, 17), "Celu": ({}, 17), "HardSigmoid": ({}, 17), "HardSwish": ({}, 17),
    "Mish": ({}, 18), "Gelu": ({}, 20), "Gelu_tanh": ({"approximate": "tanh"}, 20),
}


@pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc")
@pytest.mark.parametrize("op", sorted(NETWORK_OPS))
def test_generated_float_loop_vectorises(tmp_path, op):
    """The network source's loop for a float32 activation calls no libm function and GCC
    vectorises it at -O3 (baseline x86-64 / generic target)."""
    import nnbuild
    from tests.helpers import make_model
    attrs, opset = NETWORK_OPS[op]
    model = make_model([_node(op.split("_")[0], **attrs)], {"x": (np.float32, [64, 256])},
                       {"y": (np.float32, [64, 256])}, opset=opset)
    out = tmp_path / "proj"
    project = nnbuild.generate(model, str(out), target="generic")
    source = project.files["src/model.c"].decode()
    loops = [k + 1 for k, line in enumerate(source.splitlines()) if "for (size_t i0" in line]
    assert len(loops) == 1, source
    body = source.splitlines()[loops[0]]
    for libm in ("expf(", "erff(", "tanhf(", "logf(", "log1pf(", "fminf(", "fmaxf("):
        assert f" {libm}" not in body and f"({libm}" not in body, body
    report = subprocess.run(
        ["gcc", "-std=gnu11", "-O3", "-fopt-info-vec-optimized", "-I", str(out / "hal"),
         "-I", str(out / "include"), "-I", str(out / "src"), "-c", str(out / "src" / "model.c"),
         "-o", str(tmp_path / "model.o")], check=True, capture_output=True, text=True).stderr
    assert f"model.c:{loops[0]}:" in report and "loop vectorized" in report, (body, report)


WIDE_OPS = [("Exp", {}), ("Log", {}), ("Erf", {}), ("Tanh", {}), ("Sigmoid", {}),
            ("Softplus", {}), ("Elu", {}), ("Selu", {}), ("Celu", {}), ("LeakyRelu", {}),
            ("HardSigmoid", {}), ("HardSwish", {}), ("Mish", {}), ("Gelu", {}),
            ("Gelu", {"approximate": "tanh"})]


@pytest.mark.parametrize("target", ["generic", "host"])
def test_activations_over_a_wide_range_match_onnxruntime(cache_dir, target):
    """Every float32 activation through nn_vmath.h over -100..100 (dense near 0), the
    overflow/underflow edges of exp, +-inf and NaN, against onnxruntime."""
    from onnx import helper
    from tests.helpers import check_against_onnxruntime, make_model
    nodes = [helper.make_node(op, ["x"], [f"y{k}"], **attrs)
             for k, (op, attrs) in enumerate(WIDE_OPS)]
    x = np.concatenate([np.linspace(-100, 100, 2001), np.linspace(-2, 2, 801),
                        [88.7, 88.8, -87.5, -103.9, -104.5, np.inf, -np.inf, np.nan, 0.0, -0.0,
                         1e-30, -1e-30, 1e-42]]).astype(np.float32)
    model = make_model(nodes, {"x": (np.float32, [x.size])}, [f"y{k}" for k in range(len(nodes))],
                       opset=20)
    check_against_onnxruntime(model, cache_dir, {"x": x}, target=target)
