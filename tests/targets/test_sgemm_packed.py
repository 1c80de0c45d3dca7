"""NN_FN(sgemm_packed) (hal/common/nn_gemm.h): the SGEMM with B packed beforehand for the whole
product, as a caller keeps transformed weights. Built natively for every target this CPU runs
(the target's gemm.c with a small C driver), it must give exactly the bytes of NN_FN(sgemm)
on the same operands (B strided), which packs B block by block itself, for products across
the edges of the register tile, of KC-deep blocks and of NC-wide column blocks, for every C
layout and init (zero, bias, accumulate), at 1 and 3 threads; and match numpy in float64.
B is packed here in Python, from the layout nn_gemm.h documents."""
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

/* Per case: C from sgemm (B strided), then C from sgemm_packed (B packed beforehand). */
int main(int argc, char **argv)
{
    if (argc != 4 || NN_FN(pool_set_threads)(atoi(argv[3])) != 0) return 2;
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (!in || !out) return 2;
    int32_t count;
    if (fread(&count, 4, 1, in) != 1) return 2;
    for (int32_t t = 0; t < count; ++t) {
        int32_t h[5];
        float alpha;
        if (fread(h, 4, 5, in) != 5 || fread(&alpha, 4, 1, in) != 1) return 2;
        const int m = h[0], n = h[1], k = h[2], c_layout = h[3], init = h[4];
        float *a = read_n(in, 4 * NN_GEMM_PACKED_A_FLOATS(m, k));
        float *b = read_n(in, 4 * (size_t)k * n);
        float *bp = read_n(in, 4 * NN_GEMM_PACKED_B_FLOATS(k, n));
        float *bias = read_n(in, 4 * (size_t)m), *c0 = read_n(in, 4 * (size_t)m * n);
        const ptrdiff_t rsc = c_layout == 0 ? n : 1, csc = c_layout == 0 ? 1 : m;
        float *work = malloc(4 * NN_GEMM_WORK_FLOATS(n) + 4);
        for (int way = 0; way < 2; ++way) {
            float *c = malloc(4 * (size_t)m * n + 4);
            for (int i = 0; i < m; ++i)
                for (int j = 0; j < n; ++j)
                    c[i * rsc + j * csc] = c0[(size_t)i * n + j];
            if (way == 0)
                NN_FN(sgemm)(m, n, k, alpha, a, b, n, 1, init == 1 ? bias : NULL, init == 2,
                             c, rsc, csc, work);
            else
                NN_FN(sgemm_packed)(m, n, k, alpha, a, bp, init == 1 ? bias : NULL, init == 2,
                                    c, rsc, csc);
            for (int i = 0; i < m; ++i)
                for (int j = 0; j < n; ++j)
                    fwrite(&c[i * rsc + j * csc], 4, 1, out);
            free(c);
        }
        free(a); free(b); free(bp); free(bias); free(c0); free(work);
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
    """(m, n, k, c_layout, init, alpha) across the tile, KC and NC edges of blocking b."""
    shapes = [(1, 1, 1), (b.MR + 1, b.NR - 1, 5), (b.MR, 2 * b.NR + 1, b.KC + 1),
              (3 * b.MR - 1, 7, 2 * b.KC + 3), (b.MC + 5, b.NR + 2, 17), (9, b.NC + 5, 3),
              (300, 40, 300), (70, 1, 260)]
    return [(m, n, k, i % 2, i % 3, (1.0, 0.5, -2.0)[i % 3]) for i, (m, n, k) in enumerate(shapes)]


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
def test_sgemm_packed_gives_the_bytes_of_sgemm(target, threads, programs, tmp_path):
    blocking = targets.resolve(target).gemm
    rng = np.random.default_rng(5)
    blob, expected = [b""], []
    for m, n, k, c_layout, init, alpha in cases(blocking):
        a = (rng.standard_normal((m, k)) / np.sqrt(k)).astype(F32)   # sums of order 1
        b = rng.standard_normal((k, n)).astype(F32)
        bias = rng.standard_normal(m).astype(F32)
        c0 = rng.standard_normal((m, n)).astype(F32)
        with targets.using(targets.resolve(target)):
            packed_a = linalg.pack_a(a)
        blob += [struct.pack("<5if", m, n, k, c_layout, init, alpha), packed_a.tobytes(),
                 b.tobytes(), pack_b(b, blocking).tobytes(), bias.tobytes(), c0.tobytes()]
        start = c0 if init == 2 else bias[:, None] if init == 1 else 0
        expected.append((m, n, k, start + alpha * (a.astype(np.float64) @ b)))
    blob[0] = struct.pack("<i", len(expected))
    (tmp_path / "cases.bin").write_bytes(b"".join(blob))
    subprocess.run([programs(target), str(tmp_path / "cases.bin"), str(tmp_path / "out.bin"),
                    str(threads)], check=True)
    result, at = (tmp_path / "out.bin").read_bytes(), 0
    for m, n, k, want in expected:
        strided = np.frombuffer(result, F32, m * n, at).reshape(m, n)
        packed = np.frombuffer(result, F32, m * n, at + 4 * m * n).reshape(m, n)
        at += 8 * m * n
        what = f"{target} m={m} n={n} k={k}"
        assert packed.tobytes() == strided.tobytes(), f"{what}: sgemm_packed != sgemm"
        assert_close(packed, want.astype(F32), OP_TOLERANCE, what=what)
    assert at == len(result)
