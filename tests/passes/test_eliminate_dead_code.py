"""eliminate-dead-code: nodes none of whose outputs reach a graph output are dropped, with the
constants only they read. Graph inputs stay (they are the C API), used or not."""
from nnbuild.passes.eliminate_dead_code import eliminate_dead_code

from rewrite_helpers import assert_rewrites, assert_unchanged


def test_unused_chain_and_its_constants_are_dropped():
    assert_rewrites(eliminate_dead_code, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      const @w: f32[4] = [1.0, 2.0, 3.0, 4.0]
      const @only_dead: f32[4] = splat(2.0)
      %y: f32[4] = Mul(%x, @w)  # live
      %d1: f32[4] = Add(%x, @only_dead)  # dead1
      %d2: f32[4] = Relu(%d1)  # dead2
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      const @w: f32[4] = [1.0, 2.0, 3.0, 4.0]
      %y: f32[4] = Mul(%x, @w)  # live
      output %y
    }""")


def test_node_with_one_used_output_stays_whole():
    assert_unchanged(eliminate_dead_code, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      %y: f32[4], %mask: bool[4] = Dropout(%x)  # drop
      output %mask
    }""")


def test_unused_inputs_stay_inputs():
    assert_rewrites(eliminate_dead_code, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      input %unused: f32[4]
      %d: f32[4] = Relu(%unused)  # dead
      %y: f32[4] = Relu(%x)  # live
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      input %unused: f32[4]
      %y: f32[4] = Relu(%x)  # live
      output %y
    }""")


def test_constant_and_input_outputs_need_no_nodes():
    assert_rewrites(eliminate_dead_code, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[2]
      const @c: i64[2] = [1, 2]
      %d: f32[2] = Relu(%x)  # dead
      output @c
      output %x
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[2]
      const @c: i64[2] = [1, 2]
      output @c
      output %x
    }""")


def test_live_graph_is_unchanged():
    assert_unchanged(eliminate_dead_code, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      %a: f32[4] = Relu(%x)  # a
      %b: f32[4] = Sigmoid(%a)  # b
      %c: f32[4] = Add(%a, %b)  # c
      output %c
      output %a
    }""")
