"""recognize-layernorm: the decomposed LayerNormalization torch exports before opset 17
(ReduceMean, Sub, Pow, ReduceMean, Add eps, Sqrt, Div, Mul gamma, Add beta) becomes one op."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild.passes.recognize_layernorm import recognize_layernorm

from rewrite_helpers import assert_rewrites, assert_unchanged

TORCH = """
    graph g opsets(ai.onnx=18) {
      input %x: f32[2,4,8]
      const @axes: i64[1] = [-1]
      const @two: f32[] = [2.0]
      const @eps: f32[] = [1e-05]
      const @gamma: f32[8] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
      const @beta: f32[8] = splat(0.5)
      %m: f32[2,4,1] = ReduceMean(%x, @axes) {keepdims=1}  # mean
      %d: f32[2,4,8] = Sub(%x, %m)  # sub
      %p: f32[2,4,8] = Pow(%d, @two)  # pow
      %v: f32[2,4,1] = ReduceMean(%p, @axes) {keepdims=1}  # var
      %a: f32[2,4,1] = Add(%v, @eps)  # add_eps
      %s: f32[2,4,1] = Sqrt(%a)  # sqrt
      %n: f32[2,4,8] = Div(%d, %s)  # div
      %g: f32[2,4,8] = Mul(%n, @gamma)  # mul_gamma
      %y: f32[2,4,8] = Add(%g, @beta)  # add_beta
      output %y
    }"""


def test_torch_decomposition_becomes_layernormalization():
    assert_rewrites(recognize_layernorm, TORCH, expected="""
    graph g opsets(ai.onnx=18) {
      input %x: f32[2,4,8]
      const @gamma: f32[8] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
      const @beta: f32[8] = splat(0.5)
      %y: f32[2,4,8] = LayerNormalization(%x, @gamma, @beta) {axis=2, epsilon=9.999999747378752e-06}  # mean, sub, pow, var, add_eps, sqrt, div, mul_gamma, add_beta
      output %y
    }""")


def test_without_scale_and_bias_over_two_axes_with_a_product_square():
    assert_rewrites(recognize_layernorm, """
    graph g opsets(ai.onnx=18) {
      input %x: f32[2,4,8]
      const @axes: i64[2] = [1, 2]
      const @eps: f32[] = [0.001]
      %m: f32[2,1,1] = ReduceMean(%x, @axes) {keepdims=1}  # mean
      %d: f32[2,4,8] = Sub(%x, %m)  # sub
      %p: f32[2,4,8] = Mul(%d, %d)  # square
      %v: f32[2,1,1] = ReduceMean(%p, @axes) {keepdims=1}  # var
      %a: f32[2,1,1] = Add(@eps, %v)  # add_eps
      %s: f32[2,1,1] = Sqrt(%a)  # sqrt
      %y: f32[2,4,8] = Div(%d, %s)  # div
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=18) {
      input %x: f32[2,4,8]
      const @y_scale: f32[4,8] = splat(1.0)
      %y: f32[2,4,8] = LayerNormalization(%x, @y_scale) {axis=1, epsilon=0.0010000000474974513}  # mean, sub, square, var, add_eps, sqrt, div
      output %y
    }""")


def test_reciprocal_and_mul_instead_of_div():
    # tf2onnx-style: n = d * Reciprocal(sqrt(var + eps))
    assert_rewrites(recognize_layernorm, TORCH.replace(
        "%n: f32[2,4,8] = Div(%d, %s)  # div",
        "%r: f32[2,4,1] = Reciprocal(%s)  # reciprocal\n      %n: f32[2,4,8] = Mul(%r, %d)  # mul"),
        expected="""
    graph g opsets(ai.onnx=18) {
      input %x: f32[2,4,8]
      const @gamma: f32[8] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
      const @beta: f32[8] = splat(0.5)
      %y: f32[2,4,8] = LayerNormalization(%x, @gamma, @beta) {axis=2, epsilon=9.999999747378752e-06}  # mean, sub, pow, var, add_eps, sqrt, reciprocal, mul, mul_gamma, add_beta
      output %y
    }""")


LEFT_ALONE = {
    "statistics over a leading axis": TORCH.replace("[-1]", "[1]").replace(
        "f32[2,4,1]", "f32[2,1,8]"),
    "another power": TORCH.replace("@two: f32[] = [2.0]", "@two: f32[] = [3.0]"),
    "the centred value read elsewhere": TORCH.replace("output %y", "output %y\n      output %d"),
    "a variance over other axes": TORCH.replace(
        "const @axes: i64[1] = [-1]",
        "const @axes: i64[1] = [-1]\n      const @ax2: i64[2] = [1, 2]")
        .replace("%v: f32[2,4,1] = ReduceMean(%p, @axes)", "%v: f32[2,1,1] = ReduceMean(%p, @ax2)")
        .replace("%a: f32[2,4,1]", "%a: f32[2,1,1]").replace("%s: f32[2,4,1]", "%s: f32[2,1,1]"),
}


@pytest.mark.parametrize("case", LEFT_ALONE)
def test_left_alone(case):
    assert_unchanged(recognize_layernorm, LEFT_ALONE[case])


def test_compiled_recognized_layernorm_matches_onnxruntime(cache_dir):
    from helpers import check_against_onnxruntime, make_model
    rng = np.random.default_rng(4)
    f = np.float32
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], name="mean", axes=[-1]),
             helper.make_node("Sub", ["x", "m"], ["d"], name="sub"),
             helper.make_node("Pow", ["d", "two"], ["p"], name="pow"),
             helper.make_node("ReduceMean", ["p"], ["v"], name="var", axes=[-1]),
             helper.make_node("Add", ["v", "eps"], ["a"], name="add_eps"),
             helper.make_node("Sqrt", ["a"], ["s"], name="sqrt"),
             helper.make_node("Div", ["d", "s"], ["n"], name="div"),
             helper.make_node("Mul", ["n", "gamma"], ["g"], name="mul_gamma"),
             helper.make_node("Add", ["g", "beta"], ["y"], name="add_beta")]
    model = make_model(nodes, {"x": (f, [3, 5, 16])}, ["y"],
                       {"two": np.array(2, f), "eps": np.array(1e-5, f),
                        "gamma": rng.standard_normal(16).astype(f),
                        "beta": rng.standard_normal(16).astype(f)}, opset=13)
    optimized = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    assert [n.op for n in optimized.nodes] == ["LayerNormalization"]
    check_against_onnxruntime(model, cache_dir, opt_level=2)
