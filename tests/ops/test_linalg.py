"""Gemm and MatMul match onnxruntime: every Gemm attribute and C shape, numpy MatMul semantics
(1-D operands, broadcast batch dims), constant operands (pre-packed at compile time) and
run-time ones, products larger than one cache block, float64; and bad shapes are clear errors."""
import os
import re

import numpy as np
import pytest
from onnx import helper
from onnx import numpy_helper as onnx_numpy_helper

import nnbuild
from nnbuild.errors import ModelError
from nnbuild.ops import linalg
from nnbuild.resources import templates_dir
from nnbuild.testing import assert_close
from helpers import check_against_onnxruntime, check_at_thread_counts, make_model, target_param

F32, F64 = np.float32, np.float64


def weights(shape, seed=7, dtype=F32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# --- Gemm -------------------------------------------------------------------------------------
@pytest.mark.parametrize("constant_b", [False, True], ids=["runtime-B", "constant-B"])
@target_param()
def test_gemm_transposes(constant_b, target, cache_dir):
    """One Gemm per (transA, transB); output y_<transA><transB>."""
    m, k, n = 5, 19, 11
    nodes, inputs, inits = [], {"c": (F32, [n])}, {}
    for ta, tb in [(0, 0), (1, 0), (0, 1), (1, 1)]:
        a, b = f"a{ta}{tb}", f"b{ta}{tb}"
        inputs[a] = (F32, [k, m] if ta else [m, k])
        b_shape = [n, k] if tb else [k, n]
        if constant_b:
            inits[b] = weights(b_shape, seed=ta + 2 * tb)
        else:
            inputs[b] = (F32, b_shape)
        nodes.append(helper.make_node("Gemm", [a, b, "c"], [f"y_{ta}{tb}"], transA=ta, transB=tb))
    check_against_onnxruntime(make_model(nodes, inputs, [n.output[0] for n in nodes], inits),
                              cache_dir, target=target)


C_SHAPES = {"none": None, "scalar": [], "one": [1], "row": [7], "row2d": [1, 7],
            "column": [4, 1], "full": [4, 7]}


@pytest.mark.parametrize("constant", [False, True], ids=["runtime-C", "constant-C"])
def test_gemm_alpha_beta_and_c_broadcasting(constant, cache_dir):
    """One Gemm per shape of C (y_<shape>), alpha and beta not 1."""
    nodes, inputs, inits = [], {"a": (F32, [4, 9])}, {"b": weights([9, 7])}
    for name, shape in C_SHAPES.items():
        ins = ["a", "b"]
        if shape is not None:
            ins.append(f"c_{name}")
            if constant:
                inits[f"c_{name}"] = weights(shape, seed=len(nodes))
            else:
                inputs[f"c_{name}"] = (F32, shape)
        nodes.append(helper.make_node("Gemm", ins, [f"y_{name}"], alpha=0.75, beta=-1.5))
    check_against_onnxruntime(make_model(nodes, inputs, [n.output[0] for n in nodes], inits),
                              cache_dir)


def test_gemm_runtime_operands_and_c(cache_dir):
    """Nothing constant: C of the kernel's row shape is its bias, other shapes are copied in."""
    nodes, inputs = [], {"a": (F32, [3, 8]), "b": (F32, [6, 8]), "r": (F32, [8, 3])}
    for name, shape in {"row": [1, 6], "full": [3, 6], "column": [3, 1]}.items():
        inputs[f"c_{name}"] = (F32, shape)
        nodes.append(helper.make_node("Gemm", ["a", "b", f"c_{name}"], [f"y_{name}"], transB=1))
    nodes.append(helper.make_node("Gemm", ["r", "b"], ["y_wide"], transA=1, transB=1))
    check_against_onnxruntime(make_model(nodes, inputs, [n.output[0] for n in nodes]),
                              cache_dir)


@pytest.mark.parametrize("opset", [7, 11])
def test_gemm_older_opsets(opset, cache_dir):
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], transB=1, beta=0.5)
    model = make_model([node], {"a": (F32, [2, 10])}, ["y"],
                       {"b": weights([4, 10]), "c": weights([4], seed=1)}, opset=opset)
    check_against_onnxruntime(model, cache_dir)


def test_gemm_opset6_broadcast_attribute(cache_dir):
    """Before opset 7 broadcasting C was opt-in (broadcast=1); onnxruntime no longer runs it,
    so this compares with numpy."""
    b, c = weights([4, 10]), weights([4], seed=1)
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], transB=1, beta=0.5, broadcast=1)
    model = make_model([node], {"a": (F32, [2, 10])}, ["y"], {"b": b, "c": c}, opset=6)
    a = weights([2, 10], seed=5)
    actual = nnbuild.compile(model, cache_dir=cache_dir).run({"a": a})["y"]
    assert_close(actual, a @ b.T + np.float32(0.5) * c)


@target_param()
def test_gemm_matrix_vector_fully_connected(target, cache_dir):
    """Batch 1 through a layer: one column of the transposed product (the column kernel)."""
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)
    model = make_model([node], {"x": (F32, [1, 300])}, ["y"],
                       {"w": weights([70, 300]), "b": weights([70], seed=2)})
    check_against_onnxruntime(model, cache_dir, target=target)


@target_param()
def test_products_of_one_or_two_columns_run_as_matrix_vector_products(target, cache_dir,
                                                                      tmp_path):
    """A layer at batch 1 or 2 (its transposed product has 1 or 2 columns) runs as GEMVs on
    the packed weights, bias and alpha applied after; batch 3 stays on the SGEMM. Depth past
    one KC block and rows past a whole panel; weights constant or not; a MatMul row vector.
    The same bytes at 1 and 3 threads."""
    k = linalg.KC + 37
    nodes, inputs, inits = [], {"w_runtime": (F32, [45, k])}, {"w": weights([45, k])}
    for batch in (1, 2, 3):
        inputs[f"x{batch}"] = (F32, [batch, k])
        inits[f"b{batch}"] = weights([45], seed=batch)
        nodes.append(helper.make_node("Gemm", [f"x{batch}", "w", f"b{batch}"], [f"y{batch}"],
                                      transB=1, alpha=0.5))
    nodes.append(helper.make_node("Gemm", ["w_runtime", "column"], ["y_runtime"]))
    inputs["column"] = (F32, [k, 1])
    inits["m"] = weights([k, 9], seed=5)
    nodes.append(helper.make_node("MatMul", ["x1", "m"], ["y_matmul"]))
    model = make_model(nodes, inputs, [n.output[0] for n in nodes], inits)
    check_at_thread_counts(model, cache_dir, target)
    nnbuild.generate(model, str(tmp_path), target=target, name="net")
    source = open(tmp_path / "src" / "net.c").read()
    calls = re.findall(r"net_(sgemv_packed|sgemm)\((\d+), (\d+), (\d+),", source)
    # sgemv_packed(m, k, n, ...) for y1, y2, y_runtime and y_matmul; sgemm(m, n, k, ...) for y3
    assert sorted(calls) == sorted([("sgemv_packed", "45", str(k), "1"),
                                    ("sgemv_packed", "45", str(k), "2"),
                                    ("sgemv_packed", "45", str(k), "1"),
                                    ("sgemv_packed", "9", str(k), "1"),
                                    ("sgemm", "45", "3", str(k))])


@target_param()
def test_gemm_larger_than_one_cache_block(target, cache_dir):
    """M > MC, K > KC and N > NC: every blocking loop runs more than once, with edges."""
    m, k, n = linalg.GEMM_BLOCKING["MC"] + 3, linalg.KC + 21, linalg.NC + 13
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"])
    model = make_model([node], {"a": (F32, [m, k]), "b": (F32, [k, n]), "c": (F32, [m, 1])},
                       ["y"])
    rng = np.random.default_rng(5)
    feeds = {"a": rng.uniform(-1, 1, (m, k)).astype(F32),
             "b": rng.uniform(-1, 1, (k, n)).astype(F32),
             "c": rng.uniform(-1, 1, (m, 1)).astype(F32)}
    check_against_onnxruntime(model, cache_dir, feeds, target=target)


def test_gemm_float64(cache_dir):
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], transA=1, alpha=2.0, beta=0.5)
    model = make_model([node], {"a": (F64, [6, 4]), "c": (F64, [4, 5])}, ["y"],
                       {"b": weights([6, 5], dtype=F64)})
    check_against_onnxruntime(model, cache_dir)


def test_gemm_of_constants_folds_with_the_reference(cache_dir):
    nodes = [helper.make_node("Gemm", ["a", "b", "c"], ["g"], transA=1, alpha=0.5, beta=2.0),
             helper.make_node("Add", ["x", "g"], ["y"])]
    model = make_model(nodes, {"x": (F32, [3, 4])}, ["y"],
                       {"a": weights([5, 3]), "b": weights([5, 4], seed=2),
                        "c": weights([4], seed=4)})
    check_against_onnxruntime(model, cache_dir)


# --- MatMul -----------------------------------------------------------------------------------
MATMUL_SHAPES = {
    "dot": ([7], [7]),                          # a scalar
    "vector_matrix": ([7], [7, 5]),
    "matrix_vector": ([6, 7], [7]),
    "matrix": ([6, 7], [7, 5]),
    "batched_a": ([2, 6, 7], [7, 5]),
    "batched_b": ([6, 7], [3, 7, 5]),
    "broadcast": ([2, 1, 6, 7], [3, 7, 5]),     # batch dims broadcast both ways
    "broadcast_rows": ([3, 1, 4, 7], [2, 7, 9]),
    "batched_vector": ([2, 3, 1, 7], [7]),
}


@target_param()
def test_matmul_numpy_semantics(target, cache_dir):
    """One MatMul per case of MATMUL_SHAPES, output y_<case>; nothing constant."""
    nodes, inputs = [], {}
    for name, (a_shape, b_shape) in MATMUL_SHAPES.items():
        inputs[f"a_{name}"], inputs[f"b_{name}"] = (F32, a_shape), (F32, b_shape)
        nodes.append(helper.make_node("MatMul", [f"a_{name}", f"b_{name}"], [f"y_{name}"]))
    check_against_onnxruntime(make_model(nodes, inputs, [n.output[0] for n in nodes]), cache_dir,
                              target=target)


MATMUL_CONSTANT = {
    "flat": ([2, 5, 30], [30, 9], "b"),          # every batch's rows in one product, B^T packed
    "row": ([1, 30], [30, 9], "b"),
    "vector": ([30], [30, 9], "b"),
    "flat_b_batch_of_one": ([2, 5, 30], [1, 30, 9], "b"),
    "const_a": ([5, 30], [2, 30, 9], "a"),      # A packed once, one product per batch of B
    "const_a_batched": ([2, 5, 30], [2, 30, 9], "a"),  # packed at run time per batch
}


@target_param()
def test_matmul_constant_operand(target, cache_dir):
    """One MatMul per case of MATMUL_CONSTANT (output y_<case>), one operand constant."""
    nodes, inputs, inits = [], {}, {}
    for name, (a_shape, b_shape, constant) in MATMUL_CONSTANT.items():
        for operand, shape in (("a", a_shape), ("b", b_shape)):
            if operand == constant:
                inits[f"{operand}_{name}"] = weights(shape, seed=len(nodes))
            else:
                inputs[f"{operand}_{name}"] = (F32, shape)
        nodes.append(helper.make_node("MatMul", [f"a_{name}", f"b_{name}"], [f"y_{name}"]))
    check_against_onnxruntime(make_model(nodes, inputs, [n.output[0] for n in nodes], inits),
                              cache_dir, target=target)


def test_matmul_float64_batched(cache_dir):
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])],
                       {"a": (F64, [2, 3, 4]), "b": (F64, [4, 5])}, ["y"])
    check_against_onnxruntime(model, cache_dir)


def _half_reference(a, b, dtype):
    """A product of half-precision operands computed in float32 and rounded once."""
    return np.matmul(a.astype(F32), b.astype(F32)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("case", ["matrix", "broadcast", "batched_vector", "flat", "const_a"])
def test_matmul_half_precision_widens_to_float32(dtype, case, cache_dir):
    """f16 / bf16 operands (run-time or constant, pre-packed) give the float32 product rounded
    once to the element type."""
    import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy)
    np_dtype = np.dtype(dtype)
    if case in MATMUL_SHAPES:
        (a_shape, b_shape), constant = MATMUL_SHAPES[case], ""
    else:
        a_shape, b_shape, constant = MATMUL_CONSTANT[case]
    a = weights(a_shape, seed=1).astype(np_dtype)
    b = weights(b_shape, seed=2).astype(np_dtype)
    code = helper.np_dtype_to_tensor_dtype(np_dtype)
    inputs = [helper.make_tensor_value_info(n, code, list(v.shape))
              for n, v in (("a", a), ("b", b)) if n != constant]
    inits = [onnx_numpy_helper.from_array(v, n) for n, v in (("a", a), ("b", b)) if n == constant]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"])], "half", inputs,
                              [helper.make_empty_tensor_value_info("y")], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    y = compiled.run({n: v for n, v in (("a", a), ("b", b)) if n != constant})["y"]
    assert_close(y, _half_reference(a, b, np_dtype))


# --- Einsum and Det ---------------------------------------------------------------------------
EINSUM = {
    "matmul": ("ij,jk->ik", [[4, 5], [5, 3]]),
    "batch_matmul": ("bij,bjk->bik", [[2, 4, 5], [2, 5, 3]]),
    "transpose": ("ij->ji", [[4, 5]]),
    "sum_all": ("ij->", [[4, 5]]),
    "row_sums": ("ij->i", [[4, 5]]),
    "diagonal": ("ii->i", [[5, 5]]),
    "trace": ("ii", [[5, 5]]),
    "batch_diagonal": ("...ii->...i", [[2, 3, 4, 4]]),
    "implicit": ("ij,jk", [[4, 5], [5, 3]]),
    "outer": ("i,j->ij", [[4], [3]]),
    "three": ("ij,jk,kl->il", [[2, 3], [3, 4], [4, 5]]),
    "ellipsis_broadcast": ("...ij,...jk->...ik", [[2, 1, 3, 4], [1, 3, 4, 2]]),
    "bilinear": ("bn,anm,bm->ba", [[2, 3], [4, 3, 5], [2, 5]]),
}


def test_einsum_equations(cache_dir):
    """One Einsum per case of EINSUM (output y_<case>)."""
    nodes, inputs = [], {}
    for name, (equation, shapes) in EINSUM.items():
        names = [f"x{k}_{name}" for k in range(len(shapes))]
        inputs.update({n: (F32, s) for n, s in zip(names, shapes)})
        nodes.append(helper.make_node("Einsum", names, [f"y_{name}"], equation=equation))
    check_against_onnxruntime(make_model(nodes, inputs, [n.output[0] for n in nodes]),
                              cache_dir)


def test_einsum_bfloat16_accumulates_in_float(cache_dir):
    import ml_dtypes
    x = np.random.default_rng(3).standard_normal((3, 4, 5)).astype(ml_dtypes.bfloat16)
    w = np.random.default_rng(4).standard_normal((5, 2)).astype(ml_dtypes.bfloat16)
    code = helper.np_dtype_to_tensor_dtype(x.dtype)
    graph = helper.make_graph(
        [helper.make_node("Einsum", ["x", "w"], ["y"], equation="bij,jk->bki")], "e",
        [helper.make_tensor_value_info("x", code, [3, 4, 5])],
        [helper.make_empty_tensor_value_info("y")], [onnx_numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    y = nnbuild.compile(model, cache_dir=cache_dir).run({"x": x})["y"]
    expected = np.einsum("bij,jk->bki", x.astype(F32), w.astype(F32)).astype(x.dtype)
    assert_close(y, expected)


def test_det_of_batches_of_matrices(cache_dir):
    """Det of [2, 3, M, M] (with a singular and a row-swapping matrix) and of one matrix."""
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 4)).astype(F32)
    x[0, 1, 3] = x[0, 1, 0]                              # singular
    x[1, 2, 0, 0] = 0.0                                  # needs a pivot
    model = make_model([helper.make_node("Det", ["x"], ["y"]),
                        helper.make_node("Det", ["m"], ["z"])],
                       {"x": (F32, [2, 3, 4, 4]), "m": (F32, [3, 3])}, ["y", "z"])
    feeds = {"x": x, "m": np.random.default_rng(6).standard_normal((3, 3)).astype(F32)}
    check_against_onnxruntime(model, cache_dir, feeds=feeds)


@pytest.mark.parametrize("equation,shapes,message", [
    ("ij,jk->ik", [[2, 3], [4, 5]], "'j' is 3 and 4"),
    ("ij->ik", [[2, 3]], "names one no operand has"),
    ("ijk->i", [[2, 3]], "does not fit an operand of rank 2"),
    ("ij,jk", [[2, 3]], "names 2 operands, 1 given"),
])
def test_bad_einsum_equations_are_model_errors(equation, shapes, message):
    names = [f"x{k}" for k in range(len(shapes))]
    model = make_model([helper.make_node("Einsum", names, ["y"], equation=equation)],
                       {n: (F32, s) for n, s in zip(names, shapes)}, ["y"])
    with pytest.raises(ModelError, match=message):
        nnbuild.translate(model)


# --- errors and contracts ---------------------------------------------------------------------
@pytest.mark.parametrize("node,inputs,message", [
    (helper.make_node("MatMul", ["a", "b"], ["y"]), {"a": [3, 4], "b": [5, 6]},
     "inner dimensions differ"),
    (helper.make_node("MatMul", ["a", "b"], ["y"]), {"a": [2, 3, 4], "b": [3, 4, 6]},
     "do not broadcast"),
    (helper.make_node("Gemm", ["a", "b"], ["y"], transB=1), {"a": [3, 4], "b": [4, 5]},
     "inner dimensions differ"),
    (helper.make_node("Gemm", ["a", "b", "c"], ["y"]), {"a": [3, 4], "b": [4, 5], "c": [2, 5]},
     "does not broadcast"),
    (helper.make_node("Gemm", ["a", "b"], ["y"]), {"a": [2, 3, 4], "b": [4, 5]},
     "must be matrices"),
])
def test_bad_shapes_are_model_errors(node, inputs, message):
    model = make_model([node], {n: (F32, s) for n, s in inputs.items()}, ["y"])
    with pytest.raises(ModelError, match=message):
        nnbuild.translate(model)


def test_integer_matmul_has_no_kernel(tmp_path):
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])],
                       {"a": (np.int32, [2, 3]), "b": (np.int32, [3, 2])}, ["y"])
    with pytest.raises(ModelError, match=r"no kernel for element type i32 \(supported: f32, f64\)"):
        nnbuild.generate(model, str(tmp_path / "out"))


def test_flops_count_multiply_adds_twice():
    model = make_model([helper.make_node("Gemm", ["a", "b"], ["g"], transB=1),
                        helper.make_node("MatMul", ["g", "c"], ["y"])],
                       {"a": (F32, [3, 4]), "b": (F32, [5, 4]), "c": (F32, [2, 5, 6])}, ["y"])
    graph = nnbuild.translate(model)
    from nnbuild.ops import registry
    assert [registry.get(n).flops(n, graph) for n in graph.nodes] == [2 * 3 * 5 * 4,
                                                                      2 * 2 * 3 * 6 * 5]


def test_blocking_matches_the_kernel_header():
    with open(os.path.join(templates_dir(), "hal", "generic", "gemm.h")) as f:
        header = dict(re.findall(r"#define NN_GEMM_(\w+) (\d+)", f.read()))
    assert {k: int(v) for k, v in header.items()} == linalg.GEMM_BLOCKING


def test_pack_a_layout_is_the_documented_one():
    """Element (i, p) of A at (p // KC) * KC * Mp + (i // MR) * MR * kc + (p % KC) * MR + i % MR."""
    m, k = 11, linalg.KC + 5
    a = np.arange(m * k, dtype=F32).reshape(m, k)
    packed = linalg.pack_a(a)
    mr, kc_full = linalg.MR, linalg.KC
    mp = -(-m // mr) * mr
    assert packed.size == linalg.packed_a_floats(m, k) == mp * k
    for i, p in [(0, 0), (10, 3), (8, kc_full + 4), (3, kc_full - 1)]:
        kc = min(kc_full, k - p // kc_full * kc_full)
        at = p // kc_full * kc_full * mp + i // mr * mr * kc + p % kc_full * mr + i % mr
        assert packed[at] == a[i, p]
    assert np.count_nonzero(packed) == a.size - 1         # a[0, 0] is 0; the padding rows too
