"""recognize-softmax: Exp / ReduceSum / Div, with or without the maximum subtracted first,
becomes one Softmax over that axis."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild.passes.recognize_softmax import recognize_softmax

from rewrite_helpers import assert_rewrites, assert_unchanged

PLAIN = """
    graph g opsets(ai.onnx=18) {
      input %x: f32[2,3,5]
      const @axis: i64[1] = [-1]
      %e: f32[2,3,5] = Exp(%x)  # exp
      %s: f32[2,3,1] = ReduceSum(%e, @axis) {keepdims=1}  # sum
      %y: f32[2,3,5] = Div(%e, %s)  # div
      output %y
    }"""

SHIFTED = """
    graph g opsets(ai.onnx=18) {
      input %x: f32[2,3,5]
      const @axis: i64[1] = [1]
      %m: f32[2,1,5] = ReduceMax(%x, @axis) {keepdims=1}  # max
      %z: f32[2,3,5] = Sub(%x, %m)  # sub
      %e: f32[2,3,5] = Exp(%z)  # exp
      %s: f32[2,1,5] = ReduceSum(%e, @axis) {keepdims=1}  # sum
      %y: f32[2,3,5] = Div(%e, %s)  # div
      output %y
    }"""


def test_exp_sum_div_becomes_softmax():
    assert_rewrites(recognize_softmax, PLAIN, expected="""
    graph g opsets(ai.onnx=18) {
      input %x: f32[2,3,5]
      %y: f32[2,3,5] = Softmax(%x) {axis=2}  # exp, sum, div
      output %y
    }""")


def test_max_subtracted_form_becomes_softmax_of_the_input():
    assert_rewrites(recognize_softmax, SHIFTED, expected="""
    graph g opsets(ai.onnx=18) {
      input %x: f32[2,3,5]
      %y: f32[2,3,5] = Softmax(%x) {axis=1}  # max, sub, exp, sum, div
      output %y
    }""")


def test_a_shift_by_something_else_stays_outside():
    # Sub(x, m) where m is the max over another axis: softmax of z, the shift kept
    before = SHIFTED.replace("%m: f32[2,1,5] = ReduceMax(%x, @axis)",
                             "%m: f32[2,1,5] = ReduceMax(%x, @axis0)").replace(
        "const @axis: i64[1] = [1]", "const @axis: i64[1] = [1]\n      const @axis0: i64[1] = [1]")
    before = before.replace("@axis0: i64[1] = [1]", "@axis0: i64[1] = [0]").replace(
        "%m: f32[2,1,5]", "%m: f32[1,3,5]")
    assert_rewrites(recognize_softmax, before, expected="""
    graph g opsets(ai.onnx=18) {
      input %x: f32[2,3,5]
      const @axis0: i64[1] = [0]
      %m: f32[1,3,5] = ReduceMax(%x, @axis0) {keepdims=1}  # max
      %z: f32[2,3,5] = Sub(%x, %m)  # sub
      %y: f32[2,3,5] = Softmax(%z) {axis=1}  # exp, sum, div
      output %y
    }""")


LEFT_ALONE = {
    "a sum over two axes": PLAIN.replace("@axis: i64[1] = [-1]", "@axis: i64[2] = [1, 2]")
                                .replace("%s: f32[2,3,1]", "%s: f32[2,1,1]"),
    "the exponential read elsewhere": PLAIN.replace("output %y", "output %y\n      output %e"),
    "a division by another sum": PLAIN.replace("%y: f32[2,3,5] = Div(%e, %s)",
                                               "%y: f32[2,3,5] = Div(%s, %e)"),
}


@pytest.mark.parametrize("case", LEFT_ALONE)
def test_left_alone(case):
    assert_unchanged(recognize_softmax, LEFT_ALONE[case])


def test_compiled_recognized_softmax_matches_onnxruntime(cache_dir):
    from helpers import check_against_onnxruntime, make_model
    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], name="max", axes=[-1]),
             helper.make_node("Sub", ["x", "m"], ["z"], name="sub"),
             helper.make_node("Exp", ["z"], ["e"], name="exp"),
             helper.make_node("ReduceSum", ["e", "axes"], ["s"], name="sum"),
             helper.make_node("Div", ["e", "s"], ["y"], name="div")]
    model = make_model(nodes, {"x": (np.float32, [3, 7])}, ["y"],
                       {"axes": np.array([-1], np.int64)}, opset=17)
    optimized = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    assert [(n.op, n.sources) for n in optimized.nodes] == [
        ("Softmax", ("max", "sub", "exp", "sum", "div"))]
    check_against_onnxruntime(model, cache_dir, opt_level=2)
