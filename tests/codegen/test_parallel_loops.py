"""The loops the code generator writes itself (elementwise bodies, fused epilogues, copies,
reductions) run over the thread pool once they are big enough.

- A loop nest with at least ``loops.PARALLEL_MIN_WORK`` of work (elements times statements per
  element) becomes a static task function named after its node, and its step calls
  ``<p>_parallel_for``; smaller loops stay inline in ``<p>_run_ws``.
- Tiles depend on the shapes only: the outputs are bit-identical at 1 and 3 threads (C API and
  app), and match onnxruntime, on every target this CPU runs. The shapes make every split
  show: a flat loop with a tail, a split of the first and of an inner dimension, element and
  row (memcpy) copies, one memcpy cut into pieces, a fill, reductions.
- Generation stays deterministic: the same model gives byte-identical files.
"""
from __future__ import annotations

import os
import re

import numpy as np
import onnx
from onnx import TensorProto, helper

import nnbuild
from nnbuild.codegen import loops
from helpers import check_at_thread_counts, make_model, random_inputs, target_param

F32 = np.float32
X = [1, 64, 57, 59]                  # 215232 elements: split over the first dimension


def big_model() -> onnx.ModelProto:
    rng = np.random.default_rng(7)
    inits = {"bias": rng.standard_normal((64, 1, 1)).astype(F32),
             "v": rng.standard_normal((1, 5, 1)).astype(F32),
             "pair": rng.standard_normal((1, 2, 1)).astype(F32),
             "pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64),
             "pad_value": np.array(0.5, F32),
             "starts": np.array([1, 2], np.int64), "ends": np.array([56, 59], np.int64),
             "axes": np.array([2, 3], np.int64)}
    n = helper.make_node
    nodes = [
        # an elementwise chain with a per-channel operand: dims (64, 3363)
        n("Add", ["x", "bias"], ["t0"], name="add bias"),
        n("Relu", ["t0"], ["t1"], name="relu"),
        n("Sigmoid", ["t1"], ["t2"], name="sigmoid"),
        n("Mul", ["t2", "x"], ["chain"], name="gate"),
        # flat, 70001 elements: tiles of 16 elements' multiples and a shorter last one
        n("Tanh", ["z"], ["flat"], name="tanh"),
        # dims (3, 5, 40000): tasks take i0 and i1 and part of i2
        n("Mul", ["u", "v"], ["inner"], name="outer product"),
        # dims (17, 2, 10000): 17 x 2 would pass 32 tasks, so one task per i0
        n("Add", ["w", "pair"], ["planes"], name="add pair"),
        n("Transpose", ["x"], ["transposed"], perm=[0, 2, 3, 1], name="to nhwc"),
        n("Concat", ["x", "x2"], ["rows"], axis=3, name="concat rows"),
        n("Concat", ["z", "z"], ["runs"], axis=0, name="concat runs"),
        n("Slice", ["x", "starts", "ends", "axes"], ["sliced"], name="slice"),
        n("Pad", ["x", "pads", "pad_value"], ["padded"], mode="constant", name="pad"),
        n("Cast", ["x"], ["half"], to=TensorProto.FLOAT16, name="to half"),
        n("Greater", ["x", "bias"], ["positive"], name="greater"),
        n("Where", ["positive", "x", "chain"], ["selected"], name="where"),
        # a reduction: each task computes whole outputs (rows of 59 over 64 x 57)
        n("ReduceMean", ["x"], ["mean"], axes=[3], keepdims=0, name="mean"),
        n("ReduceMax", ["x"], ["largest"], axes=[1], keepdims=1, name="max over channels"),
    ]
    outputs = ["chain", "flat", "inner", "planes", "transposed", "rows", "runs", "sliced", "padded",
               "half", "selected", "mean", "largest"]
    return make_model(nodes, {"x": (F32, X), "x2": (F32, [1, 64, 57, 30]),
                              "z": (F32, [70001]), "u": (F32, [3, 1, 40000]),
                              "w": (F32, [17, 2, 10000])},
                      outputs, inits)


def small_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Add", ["x", "x"], ["t"]), helper.make_node("Relu", ["t"], ["y"])]
    return make_model(nodes, {"x": (F32, [4, 1000])}, ["y"])


def source(model, folder, **options) -> str:
    project = nnbuild.generate(model, str(folder), **options)
    with open(os.path.join(str(folder), "src", f"{project.prefix}.c")) as f:
        return f.read()


def test_big_loops_become_task_functions_run_by_the_pool(tmp_path):
    text = source(big_model(), tmp_path / "big", name="big")
    tasks = re.findall(r"^static void (big_\w+_task)\(const void \*storage, int task, "
                       r"void \*scratch\)$", text, re.M)
    for node in ("add_bias", "tanh", "outer_product", "add_pair", "to_nhwc", "concat_rows",
                 "concat_runs", "slice", "pad", "to_half", "where", "mean", "max_over_channels"):
        assert any(t.startswith(f"big_{node}") for t in tasks), f"no task function for {node}"
    for t in tasks:                             # each one is called from the run function
        assert re.search(rf"big_parallel_for\(\d+, {t}, &storage, NULL, 0\);", text), t
    assert len(set(tasks)) == len(tasks)
    assert text.index("static void big_") < text.index("int big_run_ws(")
    # a cut memcpy copies (end - begin) elements from begin
    assert "(end - begin) * sizeof(*y));" in text


def test_small_loops_stay_inline(tmp_path):
    assert 2 * 4000 < loops.PARALLEL_MIN_WORK         # Add and Relu over 4000 elements
    text = source(small_model(), tmp_path / "small", name="small")
    assert "parallel_for(" not in text and "_task(" not in text     # no call, no task function
    assert "for (size_t i0 = 0; i0 < 4000; ++i0)" in text


def test_generation_is_deterministic(tmp_path):
    first = source(big_model(), tmp_path / "a", name="big")
    assert source(big_model(), tmp_path / "b", name="big") == first


@target_param(["x86-avx512", "x86-avx2", "generic"])
def test_split_loops_match_onnxruntime_bit_identically_at_every_thread_count(target, tmp_path):
    check_at_thread_counts(big_model(), str(tmp_path), target)


def test_app_gives_the_same_bytes_at_1_and_3_threads(tmp_path):
    from targets.test_threads import assert_identical, run_app
    model = big_model()
    path = str(tmp_path / "big.onnx")
    onnx.save(model, path)
    feeds = random_inputs(model)
    names = [o.name for o in model.graph.output]
    result = nnbuild.build(path, str(tmp_path / "project"), name="big")
    one = run_app(result.app, feeds, names, tmp_path, 1)
    assert_identical(run_app(result.app, feeds, names, tmp_path, 3), one, "app at 3 threads")


def test_split_cast_to_float8_is_exact_at_every_thread_count(tmp_path):
    """Cast to a narrow type has its own loop (nn_narrow.h's conversions)."""
    import ml_dtypes
    node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT8E4M3FN, name="to f8")
    graph = helper.make_graph(
        [node], "f8", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [70001])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT8E4M3FN, [70001])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    assert "f8_to_f8_task" in source(model, tmp_path / "src", name="f8")
    x = (np.random.default_rng(1).standard_normal(70001) * 50).astype(F32)
    compiled = nnbuild.compile(model, cache_dir=str(tmp_path / "cache"), name="f8")
    got = {}
    for threads in (1, 3):
        compiled.set_num_threads(threads)
        got[threads] = compiled.run({"x": x})["y"]
    assert got[3].tobytes() == got[1].tobytes()
    want = x.astype(ml_dtypes.float8_e4m3fn)
    assert got[1].view(np.uint8).tolist() == want.view(np.uint8).tolist()
