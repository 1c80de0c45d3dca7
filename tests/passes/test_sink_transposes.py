"""sink-transposes: a Transpose moves below the elementwise ops reading it (constants are laid
out to match), meets the next Transpose and cancels."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild.passes.sink_transposes import sink_transposes

from rewrite_helpers import assert_rewrites, assert_unchanged

NHWC_ROUND_TRIP = """
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,3,4,5]
      const @bias: f32[3] = [1.0, 2.0, 3.0]
      const @two: f32[] = [2.0]
      %t: f32[1,4,5,3] = Transpose(%x) {perm=[0, 2, 3, 1]}  # to_nhwc
      %r: f32[1,4,5,3] = Relu(%t)  # relu
      %b: f32[1,4,5,3] = Add(%r, @bias)  # bias
      %m: f32[1,4,5,3] = Mul(@two, %b)  # scale
      %u: f32[1,3,4,5] = Transpose(%m) {perm=[0, 3, 1, 2]}  # to_nchw
      %y: f32[1,3,4,5] = Neg(%u)  # neg
      output %y
    }"""


def test_transposes_around_elementwise_ops_cancel():
    assert_rewrites(sink_transposes, NHWC_ROUND_TRIP, expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,3,4,5]
      const @bias_sunk: f32[1,3,1,1] = [1.0, 2.0, 3.0]
      const @two: f32[] = [2.0]
      %r_sunk: f32[1,3,4,5] = Relu(%x)  # relu
      %b_sunk: f32[1,3,4,5] = Add(%r_sunk, @bias_sunk)  # bias
      %m_sunk: f32[1,3,4,5] = Mul(@two, %b_sunk)  # scale
      %y: f32[1,3,4,5] = Neg(%m_sunk)  # neg
      output %y
    }""")


def test_two_operands_with_the_same_transpose_sink_as_one():
    assert_rewrites(sink_transposes, """
    graph g opsets(ai.onnx=17) {
      input %a: f32[2,3]
      input %b: f32[2,3]
      %ta: f32[3,2] = Transpose(%a) {perm=[1, 0]}  # ta
      %tb: f32[3,2] = Transpose(%b) {perm=[1, 0]}  # tb
      %s: f32[3,2] = Add(%ta, %tb)  # add
      %y: f32[3,2] = Sigmoid(%s)  # sigmoid
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %a: f32[2,3]
      input %b: f32[2,3]
      %s_sunk: f32[2,3] = Add(%a, %b)  # add
      %y_sunk: f32[2,3] = Sigmoid(%s_sunk)  # sigmoid
      %y: f32[3,2] = Transpose(%y_sunk) {perm=[1, 0]}  # ta, tb
      output %y
    }""")


LEFT_ALONE = {
    "a transpose read elsewhere": """
      input %a: f32[2,3]
      %t: f32[3,2] = Transpose(%a) {perm=[1, 0]}  # t
      %y: f32[3,2] = Relu(%t)  # relu
      %z: f32[3,2] = Neg(%t)  # neg
      output %y
      output %z""",
    "the other operand in the transposed layout": """
      input %a: f32[2,3]
      input %b: f32[3,2]
      %t: f32[3,2] = Transpose(%a) {perm=[1, 0]}  # t
      %y: f32[3,2] = Add(%t, %b)  # add""",
    "an op that broadcasts the transposed value bigger": """
      input %a: f32[2,3]
      input %b: f32[4,3,2]
      %t: f32[3,2] = Transpose(%a) {perm=[1, 0]}  # t
      %y: f32[4,3,2] = Add(%t, %b)  # add""",
    "two different transposes": """
      input %a: f32[2,2,2]
      input %b: f32[2,2,2]
      %ta: f32[2,2,2] = Transpose(%a) {perm=[1, 0, 2]}  # ta
      %tb: f32[2,2,2] = Transpose(%b) {perm=[0, 2, 1]}  # tb
      %y: f32[2,2,2] = Add(%ta, %tb)  # add""",
}


@pytest.mark.parametrize("case", LEFT_ALONE)
def test_left_alone(case):
    text = LEFT_ALONE[case]
    if "output" not in text:
        text += "\n      output %y"
    assert_unchanged(sink_transposes, "graph g opsets(ai.onnx=17) {" + text + "\n}")


def test_compiled_sunk_transposes_match_onnxruntime(cache_dir):
    from helpers import check_against_onnxruntime, make_model
    f = np.float32
    nodes = [helper.make_node("Transpose", ["x"], ["t"], name="to_nhwc", perm=[0, 2, 3, 1]),
             helper.make_node("Relu", ["t"], ["r"], name="relu"),
             helper.make_node("Add", ["r", "bias"], ["b"], name="bias"),
             helper.make_node("Transpose", ["b"], ["u"], name="to_nchw", perm=[0, 3, 1, 2]),
             helper.make_node("Neg", ["u"], ["y"], name="neg")]
    model = make_model(nodes, {"x": (f, [2, 3, 4, 5])}, ["y"],
                       {"bias": np.array([1, -2, 3], f)})
    optimized = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    assert not any(n.op == "Transpose" for n in optimized.nodes)
    check_against_onnxruntime(model, cache_dir, opt_level=2)
