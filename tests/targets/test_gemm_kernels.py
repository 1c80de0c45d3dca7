"""The SGEMM kernels (hal/x86-avx2/gemm.c for x86-avx2 and x86-avx512, generic/gemm.c, the
shared hal/common/nn_gemm_driver.h) at the edges of their blocking, on every target this CPU
runs: register tiles of MR x NR (32 x 12 on x86-avx512, 16 x 6 on x86-avx2, 8 x 8 generic)
and KC = 256 deep blocks, so m, n and k of 1, a tile minus or plus one, and a block plus one.

One model holds many independent products, each reaching the kernels through a different
lowering: MatMul with constant weights (computed transposed: B is the input read column-wise,
the packing of a transposed matrix), MatMul of two run-time operands (packed A at run time;
B read row-wise, C by rows or transposed), Gemm with transB (B's columns contiguous) and a
batched MatMul; products of one column (a matrix-vector product) or a few, which split over
threads by rows. Every output must match numpy in float64 within the shared op tolerance, and
be bit-identical at 1 and 3 threads (tiles split over threads only at tile boundaries).
"""
from __future__ import annotations

import numpy as np
from onnx import helper

import nnbuild
from nnbuild.testing import OP_TOLERANCE, assert_close
from helpers import make_model, target_param

# (rows of the input, k, outputs): MatMul(x, w) with w constant, i.e. sgemm m = outputs,
# n = rows. Sizes around MR in {8, 16, 32}, NR in {6, 8, 12}, KC = 256.
CONSTANT_WEIGHTS = [(1, 1, 1), (1, 300, 33), (5, 7, 31), (13, 257, 17), (11, 513, 65),
                    (7, 4, 9), (25, 256, 15), (300, 300, 1), (1100, 70, 40), (130, 515, 97),
                    (1, 784, 1024), (5, 600, 200),
                    (49, 1100, 300),   # few columns, many rows: rows split, B packed per task
                    (300, 70, 600),    # a wide B (> 24 panels): taller blocks of A's rows
                    (361, 90, 40)]     # columns split, the last panel's 1 column folded
# (m, k, n): MatMul(a, b), both run-time inputs.
RUNTIME = [(1, 5, 1), (33, 257, 13), (17, 3, 300), (200, 130, 7), (9, 600, 45), (300, 500, 3)]
# (m, k, n): Gemm(a, b, transB=1) + c, both run-time, c constant per column.
TRANSPOSED_B = [(31, 259, 23), (3, 17, 64), (128, 96, 200)]
# (batch, m, k, n): a batched MatMul of run-time operands.
BATCHED = [(3, 5, 40, 12), (2, 33, 70, 7)]


def gemm_model(seed: int = 0):
    rng = np.random.default_rng(seed)
    nodes, inputs, inits, reference = [], {}, {}, {}

    def value(shape, k=1):             # sums of k products of order 1 (as in a layer)
        return (rng.standard_normal(shape) / np.sqrt(k)).astype(np.float32)
    feeds = {}
    for i, (rows, k, outs) in enumerate(CONSTANT_WEIGHTS):
        x, w = value((rows, k), k), value((k, outs))
        feeds[f"x{i}"], inits[f"w{i}"] = x, w
        inputs[f"x{i}"] = (np.float32, [rows, k])
        nodes.append(helper.make_node("MatMul", [f"x{i}", f"w{i}"], [f"y{i}"]))
        reference[f"y{i}"] = x.astype(np.float64) @ w.astype(np.float64)
    for i, (m, k, n) in enumerate(RUNTIME):
        a, b = value((m, k), k), value((k, n))
        feeds[f"a{i}"], feeds[f"b{i}"] = a, b
        inputs[f"a{i}"], inputs[f"b{i}"] = (np.float32, [m, k]), (np.float32, [k, n])
        nodes.append(helper.make_node("MatMul", [f"a{i}", f"b{i}"], [f"r{i}"]))
        reference[f"r{i}"] = a.astype(np.float64) @ b.astype(np.float64)
    for i, (m, k, n) in enumerate(TRANSPOSED_B):
        a, bt, c = value((m, k), k), value((n, k)), value((n,))
        feeds[f"ta{i}"], feeds[f"tb{i}"], inits[f"tc{i}"] = a, bt, c
        inputs[f"ta{i}"], inputs[f"tb{i}"] = (np.float32, [m, k]), (np.float32, [n, k])
        nodes.append(helper.make_node("Gemm", [f"ta{i}", f"tb{i}", f"tc{i}"], [f"t{i}"],
                                      transB=1))
        reference[f"t{i}"] = a.astype(np.float64) @ bt.astype(np.float64).T + c
    for i, (batch, m, k, n) in enumerate(BATCHED):
        a, b = value((batch, m, k), k), value((batch, k, n))
        feeds[f"ba{i}"], feeds[f"bb{i}"] = a, b
        inputs[f"ba{i}"], inputs[f"bb{i}"] = (np.float32, [batch, m, k]), \
            (np.float32, [batch, k, n])
        nodes.append(helper.make_node("MatMul", [f"ba{i}", f"bb{i}"], [f"bm{i}"]))
        reference[f"bm{i}"] = a.astype(np.float64) @ b.astype(np.float64)
    model = make_model(nodes, inputs, list(reference), inits)
    return model, feeds, reference


@target_param()
def test_products_at_the_blocking_edges_match_numpy_at_any_thread_count(target, tmp_path):
    model, feeds, reference = gemm_model()
    compiled = nnbuild.compile(model, cache_dir=str(tmp_path), target=target)
    compiled.set_num_threads(1)
    one = compiled.run(feeds)
    compiled.set_num_threads(3)
    three = compiled.run(feeds)
    for name, expected in reference.items():
        assert_close(one[name], expected.astype(np.float32), OP_TOLERANCE,
                     what=f"{target} {name}")
        assert one[name].tobytes() == three[name].tobytes(), \
            f"{target} {name}: 3 threads differ from 1"
