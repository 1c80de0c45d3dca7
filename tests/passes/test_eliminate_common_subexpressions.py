"""eliminate-common-subexpressions: a node that repeats an earlier one is computed once;
equal small constants are one constant."""
import numpy as np
from onnx import helper

import nnbuild
from nnbuild.passes.eliminate_common_subexpressions import eliminate_common_subexpressions

from rewrite_helpers import assert_rewrites, assert_unchanged


def test_repeated_node_is_computed_once():
    assert_rewrites(eliminate_common_subexpressions, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      %a: f32[4] = Sigmoid(%x)  # sig1
      %b: f32[4] = Sigmoid(%x)  # sig2
      %y: f32[4] = Mul(%a, %b)  # mul
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      %a: f32[4] = Sigmoid(%x)  # sig1
      %y: f32[4] = Mul(%a, %a)  # mul
      output %y
    }""")


def test_copies_of_a_constant_make_repeats_visible():
    assert_rewrites(eliminate_common_subexpressions, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      const @s1: i64[2] = [2, 2]
      const @s2: i64[2] = [2, 2]
      %a: f32[2,2] = Reshape(%x, @s1)  # r1
      %b: f32[2,2] = Reshape(%x, @s2)  # r2
      %y: f32[2,2] = Add(%a, %b)  # add
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      const @s1: i64[2] = [2, 2]
      %a: f32[2,2] = Reshape(%x, @s1)  # r1
      %y: f32[2,2] = Add(%a, %a)  # add
      output %y
    }""")


def test_different_attributes_or_graph_outputs_are_kept():
    assert_unchanged(eliminate_common_subexpressions, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      %a: f32[4] = LeakyRelu(%x) {alpha=0.1}  # l1
      %b: f32[4] = LeakyRelu(%x) {alpha=0.2}  # l2
      %c: f32[4] = LeakyRelu(%x) {alpha=0.1}  # l3
      %y: f32[4] = Add(%a, %b)  # add
      output %y
      output %c
    }""")


def test_compiled_model_matches_onnxruntime(cache_dir):
    from helpers import check_against_onnxruntime, make_model
    nodes = [helper.make_node("Exp", ["x"], ["a"], name="e1"),
             helper.make_node("Exp", ["x"], ["b"], name="e2"),
             helper.make_node("Sub", ["a", "b"], ["y"], name="sub"),
             helper.make_node("Add", ["a", "b"], ["z"], name="add")]
    model = make_model(nodes, {"x": (np.float32, [3, 4])}, ["y", "z"])
    check_against_onnxruntime(model, cache_dir, opt_level=2)
