"""recognize-attention: MatMul -> scale (Div / Mul by a constant, or none) -> optional mask Add
-> Softmax over the last axis -> MatMul becomes one nnbuild::Attention, whose kernel never
writes the score matrix."""
import os

import numpy as np
import onnx
import pytest
from onnx import helper

import nnbuild
from nnbuild.passes.recognize_attention import recognize_attention

from rewrite_helpers import assert_rewrites, assert_unchanged

SDPA = """
    graph g opsets(ai.onnx=17) {
      input %q: f32[2,4,6,8]
      input %kt: f32[2,4,8,5]
      input %v: f32[2,4,5,3]
      input %mask: f32[2,1,1,5]
      const @c: f32[] = [2.828427]
      %s: f32[2,4,6,5] = MatMul(%q, %kt)  # qk
      %t: f32[2,4,6,5] = Div(%s, @c)  # scale
      %u: f32[2,4,6,5] = Add(%mask, %t)  # mask
      %p: f32[2,4,6,5] = Softmax(%u) {axis=-1}  # softmax
      %y: f32[2,4,6,3] = MatMul(%p, %v)  # pv
      output %y
    }"""


def test_scaled_masked_dot_product_becomes_attention():
    assert_rewrites(recognize_attention, SDPA, expected="""
    graph g opsets(ai.onnx=17) {
      input %q: f32[2,4,6,8]
      input %kt: f32[2,4,8,5]
      input %v: f32[2,4,5,3]
      input %mask: f32[2,1,1,5]
      %y: f32[2,4,6,3] = nnbuild::Attention(%q, %kt, %v, %mask) {scale=0.3535533966440824}  # qk, scale, mask, softmax, pv
      output %y
    }""")


def test_multiplied_scale_without_mask():
    assert_rewrites(recognize_attention, """
    graph g opsets(ai.onnx=17) {
      input %q: f32[4,6,8]
      input %kt: f32[4,8,5]
      input %v: f32[4,5,3]
      const @c: f32[] = [0.125]
      %s: f32[4,6,5] = MatMul(%q, %kt)  # qk
      %t: f32[4,6,5] = Mul(@c, %s)  # scale
      %p: f32[4,6,5] = Softmax(%t) {axis=2}  # softmax
      %y: f32[4,6,3] = MatMul(%p, %v)  # pv
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %q: f32[4,6,8]
      input %kt: f32[4,8,5]
      input %v: f32[4,5,3]
      %y: f32[4,6,3] = nnbuild::Attention(%q, %kt, %v) {scale=0.125}  # qk, scale, softmax, pv
      output %y
    }""")


def test_head_split_and_merge_transposes_are_read_and_written_through():
    assert_rewrites(recognize_attention, """
    graph g opsets(ai.onnx=17) {
      input %q: f32[1,6,2,4]
      input %k: f32[1,6,2,4]
      input %v: f32[1,6,2,4]
      %qh: f32[1,2,6,4] = Transpose(%q) {perm=[0, 2, 1, 3]}  # split_q
      %kt: f32[1,2,4,6] = Transpose(%k) {perm=[0, 2, 3, 1]}  # split_k
      %vh: f32[1,2,6,4] = Transpose(%v) {perm=[0, 2, 1, 3]}  # split_v
      %s: f32[1,2,6,6] = MatMul(%qh, %kt)  # qk
      %p: f32[1,2,6,6] = Softmax(%s) {axis=-1}  # softmax
      %o: f32[1,2,6,4] = MatMul(%p, %vh)  # pv
      %y: f32[1,6,2,4] = Transpose(%o) {perm=[0, 2, 1, 3]}  # merge
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %q: f32[1,6,2,4]
      input %k: f32[1,6,2,4]
      input %v: f32[1,6,2,4]
      %y: f32[1,6,2,4] = nnbuild::Attention(%q, %k, %v) {kt_perm=[0, 2, 3, 1], q_perm=[0, 2, 1, 3], scale=1.0, v_perm=[0, 2, 1, 3], y_perm=[0, 2, 1, 3]}  # split_q, split_k, split_v, qk, softmax, pv, merge
      output %y
    }""")


def test_onnx_attention_body_scaling_q_and_k_before_the_product():
    # what the frontend's expansion of ONNX Attention (opset 23) leaves after -O2's earlier passes
    assert_rewrites(recognize_attention, """
    graph g opsets(ai.onnx=23) {
      input %q: f32[2,3,4,8]
      input %k: f32[2,3,6,8]
      input %v: f32[2,3,6,8]
      const @s: f32[1] = [0.59460354]
      const @bias: f32[4,6] = splat(0.0)
      %qs: f32[2,3,4,8] = Mul(%q, @s)  # scale_q
      %ks: f32[2,3,6,8] = Mul(%k, @s)  # scale_k
      %kt: f32[2,3,8,6] = Transpose(%ks) {perm=[0, 1, 3, 2]}  # transpose_k
      %w: f32[2,3,4,6] = MatMul(%qs, %kt)  # qk
      %b: f32[2,3,4,6] = Add(%w, @bias)  # add_bias
      %p: f32[2,3,4,6] = Softmax(%b) {axis=-1}  # softmax
      %y: f32[2,3,4,8] = MatMul(%p, %v)  # pv
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=23) {
      input %q: f32[2,3,4,8]
      input %k: f32[2,3,6,8]
      input %v: f32[2,3,6,8]
      const @bias: f32[4,6] = splat(0.0)
      %y: f32[2,3,4,8] = nnbuild::Attention(%q, %k, %v, @bias) {kt_perm=[0, 1, 3, 2], scale=0.353553368012399}  # scale_q, scale_k, transpose_k, qk, add_bias, softmax, pv
      output %y
    }""")


LEFT_ALONE = {
    "softmax over another axis": SDPA.replace("{axis=-1}", "{axis=2}"),
    "the probabilities read elsewhere": SDPA.replace("output %y", "output %y\n      output %p"),
    "probabilities on the right of the product": SDPA.replace(
        "%y: f32[2,4,6,3] = MatMul(%p, %v)", "%y: f32[2,4,6,3] = MatMul(%v2, %p)").replace(
        "input %mask", "input %v2: f32[2,4,6,6]\n      input %mask").replace(
        "%y: f32[2,4,6,3]", "%y: f32[2,4,6,5]"),
    "a scale per column": SDPA.replace("const @c: f32[] = [2.828427]",
                                       "const @c: f32[5] = [1.0, 2.0, 3.0, 4.0, 5.0]"),
}


@pytest.mark.parametrize("case", LEFT_ALONE)
def test_left_alone(case):
    assert_unchanged(recognize_attention, LEFT_ALONE[case])


def test_compiled_attention_through_transposes_matches_onnxruntime(cache_dir):
    from helpers import check_against_onnxruntime, make_model
    f = np.float32
    nodes = [helper.make_node("Transpose", ["q"], ["qh"], name="split_q", perm=[0, 2, 1, 3]),
             helper.make_node("Transpose", ["k"], ["kh"], name="split_k", perm=[0, 2, 1, 3]),
             helper.make_node("Transpose", ["kh"], ["kt"], name="k_t", perm=[0, 1, 3, 2]),
             helper.make_node("Transpose", ["v"], ["vh"], name="split_v", perm=[0, 2, 1, 3]),
             helper.make_node("MatMul", ["qh", "kt"], ["s"], name="qk"),
             helper.make_node("Div", ["s", "c"], ["t"], name="scale"),
             helper.make_node("Softmax", ["t"], ["p"], name="softmax", axis=-1),
             helper.make_node("MatMul", ["p", "vh"], ["o"], name="pv"),
             helper.make_node("Transpose", ["o"], ["y"], name="merge", perm=[0, 2, 1, 3])]
    model = make_model(nodes, {n: (f, [2, 7, 3, 5]) for n in ("q", "k", "v")}, ["y"],
                       {"c": np.array(5 ** 0.5, f)})
    optimized = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    [node] = optimized.nodes
    assert node.op == "Attention" and node.attrs["kt_perm"] == [0, 2, 3, 1]   # Transposes merged
    check_against_onnxruntime(model, cache_dir, opt_level=2)


def test_compiled_attention_with_mask_matches_onnxruntime(cache_dir):
    from helpers import check_against_onnxruntime, make_model
    f = np.float32
    causal = np.triu(np.full((6, 6), -1e4, f), 1)
    nodes = [helper.make_node("MatMul", ["q", "kt"], ["s"], name="qk"),
             helper.make_node("Mul", ["s", "c"], ["t"], name="scale"),
             helper.make_node("Add", ["t", "mask"], ["u"], name="mask"),
             helper.make_node("Softmax", ["u"], ["p"], name="softmax", axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["y"], name="pv")]
    model = make_model(nodes, {"q": (f, [2, 3, 6, 8]), "kt": (f, [2, 3, 8, 6]),
                               "v": (f, [2, 3, 6, 4])}, ["y"],
                       {"c": np.array(8 ** -0.5, f), "mask": causal})
    optimized = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    assert [(n.op, n.sources) for n in optimized.nodes] == [
        ("Attention", ("qk", "scale", "mask", "softmax", "pv"))]
    check_against_onnxruntime(model, cache_dir, opt_level=2)


def test_transformer_small_attention_is_recognized_and_matches_onnxruntime(cache_dir):
    from helpers import check_against_onnxruntime
    path = os.path.join(os.path.dirname(__file__), "..", "models", "data", "transformer_small.onnx")
    model = onnx.load(path)
    optimized = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    attention = [n for n in optimized.nodes if n.op == "Attention"]
    # the head split (Transpose of q, k, v) and merge (Transpose_3) are read / written through
    names = ("Transpose", "Transpose_1", "Transpose_2", "MatMul", "Div", "Softmax", "MatMul_1",
             "Transpose_3")
    assert [n.sources for n in attention] == [
        tuple(f"/layers/layers.{k}/attn/{name}" for name in names) for k in (0, 1)]
    assert attention[0].attrs == {"scale": 0.25, "q_perm": [0, 2, 1, 3], "kt_perm": [0, 2, 3, 1],
                                  "v_perm": [0, 2, 1, 3], "y_perm": [0, 2, 1, 3]}
    assert not any(n.op in ("Softmax", "Transpose") for n in optimized.nodes)
    feeds = {"tokens": np.random.default_rng(0).integers(0, 100, (1, 16)).astype(np.int64)}
    check_against_onnxruntime(model, cache_dir, feeds=feeds, opt_level=2)


@pytest.mark.parametrize("mask, scores, strides", [
    ((1, 1, 6, 6), (2, 4, 6, 6), (0, 0, 6, 1)),       # causal, shared by every batch and head
    ((2, 1, 1, 6), (2, 4, 6, 6), (6, 0, 0, 1)),       # padding, per batch
    ((2, 4, 6, 6), (2, 4, 6, 6), (144, 36, 6, 1)),    # full
    ((6,), (6, 6), (0, 0, 0, 1)),
    ((3, 6), (4, 6, 6), None),                        # does not broadcast
    ((2, 1, 1, 1, 6), (2, 3, 4, 6, 6), None),         # outer dims half broadcast
    ((2, 3, 1, 1, 6), (2, 3, 4, 6, 6), (6, 0, 0, 1)),    # outer dims flattened
])
def test_mask_strides(mask, scores, strides):
    from nnbuild.ops.fused_attention import mask_strides
    assert mask_strides(mask, scores) == strides


def test_attention_is_bit_identical_at_every_thread_count(cache_dir):
    from helpers import make_model, onnxruntime_outputs, random_inputs
    from nnbuild.testing import assert_close
    f = np.float32
    nodes = [helper.make_node("MatMul", ["q", "kt"], ["s"], name="qk"),
             helper.make_node("Mul", ["s", "c"], ["t"], name="scale"),
             helper.make_node("Softmax", ["t"], ["p"], name="softmax", axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["y"], name="pv")]
    model = make_model(nodes, {"q": (f, [2, 4, 64, 32]), "kt": (f, [2, 4, 32, 64]),
                               "v": (f, [2, 4, 64, 32])}, ["y"], {"c": np.array(32 ** -0.5, f)})
    compiled = nnbuild.compile(model, cache_dir=cache_dir, opt_level=2)
    feeds = random_inputs(model)
    one = compiled.run(feeds)["y"]
    assert_close(one, onnxruntime_outputs(model, feeds)["y"])
    for threads in (2, 3):
        compiled.set_num_threads(threads)
        assert np.array_equal(compiled.run(feeds)["y"], one)


def test_inspect_shows_the_attention_of_transformer_small(capsys):
    from nnbuild import cli
    path = os.path.join(os.path.dirname(__file__), "..", "models", "data", "transformer_small.onnx")
    assert cli.main(["inspect", path]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "nnbuild::Attention(" in line]
    assert len(lines) == 2 and all("/attn/Softmax" in line for line in lines)
