"""recognize-gelu: the erf and tanh spellings of GELU that exporters write become one Gelu."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild.passes.recognize_gelu import recognize_gelu

from rewrite_helpers import assert_rewrites, assert_unchanged

CONSTS = """
      const @sqrt2: f32[] = [1.4142135]
      const @one: f32[] = [1.0]
      const @half: f32[] = [0.5]"""


def test_erf_form_half_last():
    assert_rewrites(recognize_gelu, f"""
    graph g opsets(ai.onnx=17) {{
      input %x: f32[2,8]{CONSTS}
      %d: f32[2,8] = Div(%x, @sqrt2)  # div
      %e: f32[2,8] = Erf(%d)  # erf
      %a: f32[2,8] = Add(%e, @one)  # add
      %m: f32[2,8] = Mul(%x, %a)  # mul
      %y: f32[2,8] = Mul(%m, @half)  # mul_1
      output %y
    }}""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[2,8]
      %y: f32[2,8] = Gelu(%x)  # div, erf, add, mul, mul_1
      output %y
    }""")


def test_erf_form_half_first_operands_swapped():
    assert_rewrites(recognize_gelu, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[2,8]
      const @rsqrt2: f32[] = [0.70710677]
      const @one: f32[] = [1.0]
      const @half: f32[] = [0.5]
      %h: f32[2,8] = Mul(@half, %x)  # half
      %d: f32[2,8] = Mul(%x, @rsqrt2)  # scale
      %e: f32[2,8] = Erf(%d)  # erf
      %a: f32[2,8] = Add(@one, %e)  # add
      %y: f32[2,8] = Mul(%h, %a)  # mul
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[2,8]
      %y: f32[2,8] = Gelu(%x)  # half, scale, erf, add, mul
      output %y
    }""")


TANH = """
    graph g opsets(ai.onnx=17) {
      input %x: f32[2,8]
      const @three: f32[] = [3.0]
      const @k: f32[] = [0.044715]
      const @c: f32[] = [0.7978846]
      const @one: f32[] = [1.0]
      const @half: f32[] = [0.5]
      %p: f32[2,8] = Pow(%x, @three)  # pow
      %t: f32[2,8] = Mul(@k, %p)  # cubic
      %s: f32[2,8] = Add(%x, %t)  # inner
      %u: f32[2,8] = Mul(%s, @c)  # scale
      %v: f32[2,8] = Tanh(%u)  # tanh
      %a: f32[2,8] = Add(%v, @one)  # add
      %m: f32[2,8] = Mul(%x, %a)  # mul
      %y: f32[2,8] = Mul(%m, @half)  # half
      output %y
    }"""


def test_tanh_form():
    assert_rewrites(recognize_gelu, TANH, expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[2,8]
      %y: f32[2,8] = Gelu(%x) {approximate="tanh"}  # pow, cubic, inner, scale, tanh, add, mul, half
      output %y
    }""")


LEFT_ALONE = {
    "another constant": TANH.replace("[0.044715]", "[0.05]"),
    "an intermediate read elsewhere": TANH.replace("output %y", "output %y\n      output %v"),
    "erf of something else": f"""
    graph g opsets(ai.onnx=17) {{
      input %x: f32[2,8]{CONSTS.replace("1.4142135", "2.0")}
      %d: f32[2,8] = Div(%x, @sqrt2)  # div
      %e: f32[2,8] = Erf(%d)  # erf
      %a: f32[2,8] = Add(%e, @one)  # add
      %m: f32[2,8] = Mul(%x, %a)  # mul
      %y: f32[2,8] = Mul(%m, @half)  # mul_1
      output %y
    }}""",
}


@pytest.mark.parametrize("case", LEFT_ALONE)
def test_left_alone(case):
    assert_unchanged(recognize_gelu, LEFT_ALONE[case])


def test_compiled_matmul_bias_gelu_is_one_node_and_matches_onnxruntime(cache_dir):
    from helpers import check_against_onnxruntime, make_model
    rng = np.random.default_rng(6)
    f = np.float32
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="fc"),
             helper.make_node("Add", ["h", "b"], ["z"], name="bias"),
             helper.make_node("Div", ["z", "sqrt2"], ["d"], name="div"),
             helper.make_node("Erf", ["d"], ["e"], name="erf"),
             helper.make_node("Add", ["e", "one"], ["a"], name="add"),
             helper.make_node("Mul", ["z", "a"], ["m"], name="mul"),
             helper.make_node("Mul", ["m", "half"], ["y"], name="mul_1")]
    model = make_model(nodes, {"x": (f, [4, 16])}, ["y"],
                       {"W": rng.standard_normal((16, 32)).astype(f),
                        "b": rng.standard_normal(32).astype(f), "sqrt2": np.array(1.4142135, f),
                        "one": np.array(1, f), "half": np.array(0.5, f)})
    optimized = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    [node] = optimized.nodes
    assert node.op == "FusedMatMul" and node.attrs["epilogue"] == ["Add(acc, $2)", "Gelu(#0)"]
    assert node.sources == ("fc", "bias", "div", "erf", "add", "mul", "mul_1")
    check_against_onnxruntime(model, cache_dir, opt_level=2)
