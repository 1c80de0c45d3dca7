"""The SGEMM's other entry points (hal/common/nn_gemm.h), built natively for every target this
CPU runs (the target's gemm.c with a small C driver), for products across the edges of the
register tile, of KC-deep blocks and of NC-wide column blocks, for both C layouts and every
init (zero, bias, accumulate), at 1 and 3 threads:

- NN_FN(sgemm_packed), B packed beforehand for the whole product (as a caller keeps
  transformed weights; packed here in Python from the layout nn_gemm.h documents), gives
  exactly the bytes of NN_FN(sgemm) on the same operands, which packs B block by block itself;
- NN_FN(sgemm_epilogue), the residual and clamps applied as C is stored, gives exactly the
  bytes of NN_FN(sgemm) followed by the documented epilogue as a separate pass;
and both match numpy in float64."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess

import numpy as np
import pytest

from nnbuild import resources, targets
from nnbuild.ops import linalg
from nnbuild.testing import OP_TOLERANCE, assert_close
from helpers import target_param

HAL = os.path.join(resources.templates_dir(), "hal")
F32 = np.float32

DRIVER = r"""
#include <stdint.h>
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

/* The epilogue of nn_gemm.h as a separate pass over C. */
static void epilogue_pass(const nn_gemm_epilogue *e, int m, int n, float *c, ptrdiff_t rsc,
                          ptrdiff_t csc)
{
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
            float v = c[i * rsc + j * csc];
            if (e->residual)
                v = v + e->residual[i * rsc + j * csc];
            if (e->clamp & NN_GEMM_RELU)
                v = v > 0.0f ? v : 0.0f;
            if (e->clamp & NN_GEMM_MIN)
                v = v < e->lo ? e->lo : v;
            if (e->clamp & NN_GEMM_MAX)
                v = v > e->hi ? e->hi : v;
            c[i * rsc + j * csc] = v;
        }
}

/* Per case: C from sgemm (B strided), from sgemm_packed (B packed beforehand), from sgemm and
 * the epilogue as a pass, from sgemm_epilogue. */
int main(int argc, char **argv)
{
    if (argc != 4 || NN_FN(pool_set_threads)(atoi(argv[3])) != 0) return 2;
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (!in || !out) return 2;
    int32_t count;
    if (fread(&count, 4, 1, in) != 1) return 2;
    for (int32_t t = 0; t < count; ++t) {
        int32_t h[7];
        float f[3];
        if (fread(h, 4, 7, in) != 7 || fread(f, 4, 3, in) != 3) return 2;
        const int m = h[0], n = h[1], k = h[2], c_layout = h[3], init = h[4];
        const float alpha = f[0];
        float *a = read_n(in, 4 * NN_GEMM_PACKED_A_FLOATS(m, k));
        float *b = read_n(in, 4 * (size_t)k * n);
        float *bp = read_n(in, 4 * NN_GEMM_PACKED_B_FLOATS(k, n));
        float *bias = read_n(in, 4 * (size_t)m), *c0 = read_n(in, 4 * (size_t)m * n);
        float *r0 = read_n(in, 4 * (size_t)m * n);
        const ptrdiff_t rsc = c_layout == 0 ? n : 1, csc = c_layout == 0 ? 1 : m;
        float *res = malloc(4 * (size_t)m * n + 4);
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j)
                res[i * rsc + j * csc] = r0[(size_t)i * n + j];
        const nn_gemm_epilogue e = {h[5] ? res : NULL, h[6], f[1], f[2]};
        float *work = malloc(4 * NN_GEMM_WORK_FLOATS(n) + 4);
        for (int way = 0; way < 4; ++way) {
            float *c = malloc(4 * (size_t)m * n + 4);
            for (int i = 0; i < m; ++i)
                for (int j = 0; j < n; ++j)
                    c[i * rsc + j * csc] = c0[(size_t)i * n + j];
            if (way == 0 || way == 2)
                NN_FN(sgemm)(m, n, k, alpha, a, b, n, 1, init == 1 ? bias : NULL, init == 2,
                             c, rsc, csc, work);
            else if (way == 1)
                NN_FN(sgemm_packed)(m, n, k, alpha, a, bp, init == 1 ? bias : NULL, init == 2,
                                    c, rsc, csc);
            else
                NN_FN(sgemm_epilogue)(m, n, k, alpha, a, b, n, 1, init == 1 ? bias : NULL,
                                      init == 2, c, rsc, csc, work, &e);
            if (way == 2)
                epilogue_pass(&e, m, n, c, rsc, csc);
            for (int i = 0; i < m; ++i)
                for (int j = 0; j < n; ++j)
                    fwrite(&c[i * rsc + j * csc], 4, 1, out);
            free(c);
        }
        free(a); free(b); free(bp); free(bias); free(c0); free(r0); free(res); free(work);
    }
    return fclose(out) != 0;
}
"""


def pack_b(b: np.ndarray, blocking) -> np.ndarray:
    """B (k x n) in sgemm_packed's layout: per KC block, NR-column panels stored k-major."""
    k, n = b.shape
    nr, kc_max = blocking.NR, blocking.KC
    np_ = -(-n // nr) * nr
    wide = np.zeros((k, np_), F32)
    wide[:, :n] = b
    blocks = []
    for pc in range(0, k, kc_max):
        kc = min(kc_max, k - pc)
        blocks.append(wide[pc:pc + kc].reshape(kc, np_ // nr, nr).transpose(1, 0, 2).ravel())
    return np.concatenate(blocks) if blocks else np.zeros(0, F32)


def cases(b):
    """(m, n, k, c_layout, init, alpha, residual, clamp, lo, hi) across the tile, KC and NC
    edges of blocking b; both C layouts for each shape, epilogues of every kind."""
    shapes = [(1, 1, 1), (b.MR + 1, b.NR - 1, 5), (b.MR, 2 * b.NR + 1, b.KC + 1),
              (3 * b.MR - 1, 7, 2 * b.KC + 3), (b.MC + 5, b.NR + 2, 17), (9, b.NC + 5, 3),
              (300, 40, 300), (70, 1, 260), (5, 3, 0)]
    epilogues = [(1, 1, 0.0, 0.0), (0, 1, 0.0, 0.0), (1, 0, 0.0, 0.0), (0, 6, -0.25, 0.5),
                 (1, 7, -0.5, 0.25), (0, 0, 0.0, 0.0)]
    return [(m, n, k, layout, i % 3, (1.0, 0.5, -2.0)[i % 3], *epilogues[(2 * i + layout) % 6])
            for i, (m, n, k) in enumerate(shapes) for layout in (0, 1)]


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    built = {}

    def build(name):
        if name not in built:
            target = targets.resolve(name)
            folder = tmp_path_factory.mktemp(f"sgemm-packed-{name}")
            for family in ("nn_hal.h", "nn_pool.h", "nn_pool.c", "nn_gemm.h",
                           "nn_gemm_driver.h", "nn_x86_vec.h"):
                shutil.copy(os.path.join(HAL, "common", family), folder / family)
            shutil.copy(targets.family_source(target, "gemm", "h", HAL), folder / "gemm.h")
            shutil.copy(targets.family_source(target, "gemm", "c", HAL), folder / "gemm.c")
            (folder / "nn_config.h").write_text("#define NN_PREFIX packedtest\n")
            (folder / "driver.c").write_text(DRIVER)
            exe = str(folder / "check")
            proc = subprocess.run(
                [os.environ.get("CC", "cc"), "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror",
                 *target.c_flags, "-I", str(folder), str(folder / "gemm.c"),
                 str(folder / "nn_pool.c"), str(folder / "driver.c"), "-o", exe, "-lm",
                 "-pthread"], capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
            built[name] = exe
        return built[name]
    return build


@target_param(["generic", "x86-avx2", "x86-avx512"])
@pytest.mark.parametrize("threads", [1, 3])
def test_packed_b_and_fused_epilogue_give_the_bytes_of_plain_sgemm(target, threads, programs,
                                                                    tmp_path):
    blocking = targets.resolve(target).gemm
    rng = np.random.default_rng(5)
    blob, expected = [b""], []
    for m, n, k, c_layout, init, alpha, residual, clamp, lo, hi in cases(blocking):
        a = (rng.standard_normal((m, k)) / np.sqrt(max(k, 1))).astype(F32)  # sums of order 1
        b = rng.standard_normal((k, n)).astype(F32)
        bias = rng.standard_normal(m).astype(F32)
        c0 = rng.standard_normal((m, n)).astype(F32)
        r0 = rng.standard_normal((m, n)).astype(F32)
        with targets.using(targets.resolve(target)):
            packed_a = linalg.pack_a(a)
        blob += [struct.pack("<7i3f", m, n, k, c_layout, init, residual, clamp, alpha, lo, hi),
                 packed_a.tobytes(), b.tobytes(), pack_b(b, blocking).tobytes(),
                 bias.tobytes(), c0.tobytes(), r0.tobytes()]
        start = c0 if init == 2 else bias[:, None] if init == 1 else 0
        plain = (start + alpha * (a.astype(np.float64) @ b)).astype(F32)
        fused = plain + r0 if residual else plain
        fused = np.maximum(fused, 0) if clamp & 1 else fused
        fused = np.maximum(fused, F32(lo)) if clamp & 2 else fused
        fused = np.minimum(fused, F32(hi)) if clamp & 4 else fused
        expected.append((m, n, k, plain, fused))
    blob[0] = struct.pack("<i", len(expected))
    (tmp_path / "cases.bin").write_bytes(b"".join(blob))
    subprocess.run([programs(target), str(tmp_path / "cases.bin"), str(tmp_path / "out.bin"),
                    str(threads)], check=True)
    result, at = (tmp_path / "out.bin").read_bytes(), 0
    for m, n, k, plain, fused in expected:
        strided, packed, passed, epilogue = (
            np.frombuffer(result, F32, m * n, at + 4 * m * n * w).reshape(m, n) for w in range(4))
        at += 16 * m * n
        what = f"{target} m={m} n={n} k={k}"
        assert packed.tobytes() == strided.tobytes(), f"{what}: sgemm_packed != sgemm"
        assert epilogue.tobytes() == passed.tobytes(), \
            f"{what}: sgemm_epilogue != sgemm + epilogue pass"
        assert_close(packed, plain, OP_TOLERANCE, what=what)
        assert_close(epilogue, fused, OP_TOLERANCE, what=what + " with epilogue")
    assert at == len(result)
