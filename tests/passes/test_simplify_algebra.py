"""simplify-algebra: x*1, x+0, x-0, x/1, same-type Cast, no-op Reshape / Transpose vanish;
Reshape of Reshape and Transpose of Transpose become one."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild.passes.simplify_algebra import simplify_algebra

from rewrite_helpers import assert_rewrites, assert_unchanged


def test_neutral_elements_vanish():
    assert_rewrites(simplify_algebra, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[2,3]
      const @one: f32[] = [1.0]
      const @zeros: f32[3] = splat(0.0)
      %a: f32[2,3] = Mul(@one, %x)  # mul1
      %b: f32[2,3] = Add(%a, @zeros)  # add0
      %c: f32[2,3] = Sub(%b, @zeros)  # sub0
      %d: f32[2,3] = Div(%c, @one)  # div1
      %e: f32[2,3] = Cast(%d) {to=1}  # cast
      %y: f32[2,3] = Relu(%e)  # relu
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[2,3]
      %y: f32[2,3] = Relu(%x)  # relu
      output %y
    }""")


def test_reshape_of_reshape_and_transpose_of_transpose():
    assert_rewrites(simplify_algebra, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[2,3,4]
      const @s1: i64[2] = [6, 4]
      const @s2: i64[3] = [4, 3, -1]
      %a: f32[6,4] = Reshape(%x, @s1)  # r1
      %b: f32[4,3,2] = Reshape(%a, @s2)  # r2
      %c: f32[3,2,4] = Transpose(%b) {perm=[1, 2, 0]}  # t1
      %d: f32[4,2,3] = Transpose(%c) {perm=[2, 1, 0]}  # t2
      %e: f32[2,4,3] = Transpose(%d) {perm=[1, 0, 2]}  # t3
      output %e
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[2,3,4]
      const @b_shape: i64[3] = [4, 3, 2]
      %a: f32[6,4] = Reshape(%x, @s1)  # r1
      %b: f32[4,3,2] = Reshape(%x, @b_shape)  # r1, r2
      %c: f32[3,2,4] = Transpose(%b) {perm=[1, 2, 0]}  # t1
      %d: f32[4,2,3] = Transpose(%b) {perm=[0, 2, 1]}  # t1, t2
      %e: f32[2,4,3] = Transpose(%b) {perm=[2, 0, 1]}  # t1, t2, t3
      output %e
    }""".replace("const @b_shape", "const @s1: i64[2] = [6, 4]\n      const @b_shape"))


def test_transposes_that_cancel_vanish():
    assert_rewrites(simplify_algebra, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[2,3,4]
      %a: f32[4,2,3] = Transpose(%x) {perm=[2, 0, 1]}  # nchw_to_x
      %b: f32[2,3,4] = Transpose(%a) {perm=[1, 2, 0]}  # back
      %c: f32[2,3,4] = Transpose(%b) {perm=[0, 1, 2]}  # identity
      %y: f32[2,3,4] = Neg(%c)  # neg
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[2,3,4]
      %a: f32[4,2,3] = Transpose(%x) {perm=[2, 0, 1]}  # nchw_to_x
      %y: f32[2,3,4] = Neg(%x)  # neg
      output %y
    }""")


def test_no_op_expand_constant_where_and_views_that_come_back_vanish():
    # as ONNX's Attention body writes them: K unsqueezed, expanded to its own shape, reshaped back
    assert_rewrites(simplify_algebra, """
    graph g opsets(ai.onnx=17) {
      input %k: f32[2,6,8]
      input %x: f32[2,6,8]
      const @axis: i64[1] = [1]
      const @shape5: i64[4] = [2, 1, 6, 8]
      const @shape3: i64[3] = [2, 6, 8]
      const @none: bool[6,1] = splat(false)
      const @zero: f32[1] = [0.0]
      %u: f32[2,1,6,8] = Unsqueeze(%k, @axis)  # unsqueeze
      %e: f32[2,1,6,8] = Expand(%u, @shape5)  # expand
      %r: f32[2,6,8] = Reshape(%e, @shape3)  # reshape
      %w: f32[2,6,8] = Where(@none, @zero, %x)  # where
      %y: f32[2,6,8] = Add(%r, %w)  # add
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %k: f32[2,6,8]
      input %x: f32[2,6,8]
      const @axis: i64[1] = [1]
      %u: f32[2,1,6,8] = Unsqueeze(%k, @axis)  # unsqueeze
      %y: f32[2,6,8] = Add(%k, %x)  # add
      output %y
    }""")


LEFT_ALONE = {
    "multiplying by a value other than one": """
      input %x: f32[3]
      const @two: f32[] = [2.0]
      %y: f32[3] = Mul(%x, @two)  # mul""",
    "a neutral constant that broadcasts the result bigger": """
      input %x: f32[3]
      const @ones: f32[2,3] = splat(1.0)
      %y: f32[2,3] = Mul(%x, @ones)  # mul""",
    "one divided by x": """
      input %x: f32[3]
      const @one: f32[] = [1.0]
      %y: f32[3] = Div(@one, %x)  # div""",
    "a cast that converts": """
      input %x: f32[3]
      %y: i64[3] = Cast(%x) {to=7}  # cast""",
    "a where that picks both": """
      input %a: f32[2]
      input %b: f32[2]
      const @some: bool[2] = [true, false]
      %y: f32[2] = Where(@some, %a, %b)  # where""",
    "a reshape to a run-time shape": """
      input %x: f32[2,3]
      input %shape: i64[2]
      %y: f32[2,3] = Reshape(%x, %shape)  # reshape""",
    "an expand to a run-time shape": """
      input %x: f32[2,3]
      input %shape: i64[2]
      %y: f32[2,3] = Expand(%x, %shape)  # expand""",
    "a graph output": """
      input %x: f32[3]
      const @zero: f32[] = [0.0]
      %y: f32[3] = Add(%x, @zero)  # add""",
}


@pytest.mark.parametrize("case", LEFT_ALONE)
def test_left_alone(case):
    assert_unchanged(simplify_algebra,
                     "graph g opsets(ai.onnx=17) {" + LEFT_ALONE[case] + "\n  output %y\n}")


def test_compiled_simplified_model_matches_onnxruntime(cache_dir):
    from helpers import check_against_onnxruntime, make_model
    nodes = [helper.make_node("Mul", ["x", "one"], ["a"], name="mul1"),
             helper.make_node("Reshape", ["a", "s1"], ["b"], name="r1"),
             helper.make_node("Reshape", ["b", "s2"], ["c"], name="r2"),
             helper.make_node("Transpose", ["c"], ["d"], name="t1", perm=[2, 0, 1]),
             helper.make_node("Transpose", ["d"], ["e"], name="t2", perm=[0, 2, 1]),
             helper.make_node("Cast", ["e"], ["f"], name="cast", to=1),
             helper.make_node("Relu", ["f"], ["y"], name="relu")]
    model = make_model(nodes, {"x": (np.float32, [2, 3, 4])}, ["y"],
                       {"one": np.ones(4, np.float32), "s1": np.array([6, 4], np.int64),
                        "s2": np.array([3, 4, 2], np.int64)})
    optimized = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    # (sink-transposes then moves the one Transpose below the Relu)
    assert [n.op for n in optimized.nodes] == ["Reshape", "Relu", "Transpose"]
    check_against_onnxruntime(model, cache_dir, opt_level=2)
