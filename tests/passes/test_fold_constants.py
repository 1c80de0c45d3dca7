"""fold-constants: a node whose inputs are all known at compile time becomes a constant; its
readers read the constant, constants nobody reads any more are dropped."""
from nnbuild.passes.fold_constants import fold_constants

from rewrite_helpers import assert_rewrites, assert_unchanged


def test_node_of_constants_becomes_a_constant():
    assert_rewrites(fold_constants, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[2]
      const @a: f32[2] = [1.0, 2.0]
      const @b: f32[2] = [3.0, 4.0]
      %s: f32[2] = Add(@a, @b)  # add
      %y: f32[2] = Mul(%x, %s)  # mul
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[2]
      const @s: f32[2] = [4.0, 6.0]
      %y: f32[2] = Mul(%x, @s)  # mul
      output %y
    }""")


def test_chains_fold_in_one_run():
    # (a + b) clipped to 3.5, then cast: every step folds, the intermediates disappear
    assert_rewrites(fold_constants, """
    graph g opsets(ai.onnx=17) {
      input %x: i64[2]
      const @a: f32[2] = [1.0, 2.0]
      const @b: f32[2] = [3.0, 1.0]
      const @hi: f32[] = [3.5]
      %s: f32[2] = Add(@a, @b)  # add
      %c: f32[2] = Clip(%s, _, @hi)  # clip
      %t: i64[2] = Cast(%c) {to=7}  # cast
      %y: i64[2] = Add(%x, %t)  # use
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: i64[2]
      const @t: i64[2] = splat(3)
      %y: i64[2] = Add(%x, @t)  # use
      output %y
    }""")


def test_folded_graph_output_is_output_as_constant():
    assert_rewrites(fold_constants, """
    graph g opsets(ai.onnx=17) {
      const @a: f32[3] = [-1.0, 0.0, 2.0]
      %r: f32[3] = Relu(@a)  # relu
      %n: bool[3] = Not(%b)  # not
      const @b: bool[3] = [true, false, true]
      output %r
      output %n
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      const @n: bool[3] = [false, true, false]
      const @r: f32[3] = [0.0, 0.0, 2.0]
      output @r
      output @n
    }""")


def test_every_output_of_a_multi_output_node_folds():
    assert_rewrites(fold_constants, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[2]
      const @a: f32[2] = [1.0, 2.0]
      %d: f32[2], %mask: bool[2] = Dropout(@a)  # drop
      %y: f32[2] = Add(%x, %d)  # add
      output %y
      output %mask
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[2]
      const @d: f32[2] = [1.0, 2.0]
      const @mask: bool[2] = splat(true)
      %y: f32[2] = Add(%x, @d)  # add
      output %y
      output @mask
    }""")


def test_nodes_reading_runtime_values_stay():
    assert_unchanged(fold_constants, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[2]
      const @a: f32[2] = [1.0, 2.0]
      %s: f32[2] = Add(%x, @a)  # add
      %r: f32[2] = Relu(%s)  # relu
      output %r
    }""")


def test_results_holding_one_value_become_compact_fills():
    assert_rewrites(fold_constants, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[64,64]
      const @ones: f32[64,64] = splat(1.0)
      %neg: f32[64,64] = Neg(@ones)  # neg
      %y: f32[64,64] = Mul(%x, %neg)  # mul
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[64,64]
      const @neg: f32[64,64] = splat(-1.0)
      %y: f32[64,64] = Mul(%x, @neg)  # mul
      output %y
    }""")
