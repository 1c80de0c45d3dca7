"""fuse-elementwise: a chain of elementwise / broadcasting ops of one type becomes one
nnbuild::Elementwise node whose body composes the ops; it keeps every absorbed ONNX name."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild.ops import registry
from nnbuild.passes.fuse_elementwise import fuse_elementwise

from rewrite_helpers import assert_rewrites, assert_unchanged, parse


def test_scale_shift_relu():
    assert_rewrites(fuse_elementwise, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,2,3]
      const @s: f32[2,1] = [2.0, 3.0]
      const @t: f32[] = [0.5]
      %a: f32[1,2,3] = Mul(%x, @s)  # scale
      %b: f32[1,2,3] = Add(%a, @t)  # shift
      %y: f32[1,2,3] = Relu(%b)  # relu
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,2,3]
      const @s: f32[2,1] = [2.0, 3.0]
      const @t: f32[] = [0.5]
      %y: f32[1,2,3] = nnbuild::Elementwise(%x, @s, @t) {body=["Mul($0, $1)", "Add(#0, $2)", "Relu(#1)"]}  # scale, shift, relu
      output %y
    }""")


def test_an_input_read_twice_is_one_operand():
    # swish: x * sigmoid(x)
    assert_rewrites(fuse_elementwise, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      %s: f32[4] = Sigmoid(%x)  # sig
      %y: f32[4] = Mul(%x, %s)  # mul
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      %y: f32[4] = nnbuild::Elementwise(%x) {body=["Sigmoid($0)", "Mul($0, #0)"]}  # sig, mul
      output %y
    }""")


def test_chain_stops_at_a_value_read_twice():
    assert_rewrites(fuse_elementwise, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      %a: f32[4] = Neg(%x)  # neg
      %b: f32[4] = Exp(%a)  # exp
      %c: f32[4] = Relu(%b)  # relu
      %d: f32[4] = Abs(%b)  # abs
      %y: f32[4] = Add(%c, %d)  # add
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      %b: f32[4] = nnbuild::Elementwise(%x) {body=["Neg($0)", "Exp(#0)"]}  # neg, exp
      %d: f32[4] = Abs(%b)  # abs
      %y: f32[4] = nnbuild::Elementwise(%b, %d) {body=["Relu($0)", "Add(#0, $1)"]}  # relu, add
      output %y
    }""")


LEFT_ALONE = {
    "a single op": """
      input %x: f32[4]
      %y: f32[4] = Relu(%x)  # relu
      output %y""",
    "a broadcast that grows the value (per-channel work stays per channel)": """
      input %x: f32[2,1]
      input %z: f32[2,5]
      %s: f32[2,1] = Sigmoid(%x)  # sig
      %y: f32[2,5] = Mul(%z, %s)  # mul
      output %y""",
    "integers": """
      input %x: i64[4]
      %a: i64[4] = Neg(%x)  # neg
      %y: i64[4] = Abs(%a)  # abs
      output %y""",
    "comparison": """
      input %x: f32[4]
      %a: f32[4] = Neg(%x)  # neg
      %y: bool[4] = Less(%a, %x)  # less
      output %y""",
    "an intermediate that is a graph output": """
      input %x: f32[4]
      %a: f32[4] = Neg(%x)  # neg
      %y: f32[4] = Exp(%a)  # exp
      output %y
      output %a""",
}


@pytest.mark.parametrize("case", LEFT_ALONE)
def test_left_alone(case):
    assert_unchanged(fuse_elementwise, "graph g opsets(ai.onnx=17) {" + LEFT_ALONE[case] + "\n}")


def test_fused_reference_is_the_chain_of_references():
    graph = parse("""
    graph g opsets(ai.onnx=17) {
      input %x: f32[2,3]
      const @s: f32[3] = [1.0, 2.0, 3.0]
      %a: f32[2,3] = Sub(%x, @s)  # sub
      %b: f32[2,3] = LeakyRelu(%a) {alpha=0.5}  # leaky
      %y: f32[2,3] = Div(%b, @s)  # div
      output %y
    }""")
    [node] = fuse_elementwise.run(graph).nodes
    x = np.arange(-3, 3, dtype=np.float32).reshape(2, 3)
    s = graph.constants["s"]
    a = x - s
    [got] = registry.get(node).reference(node, x, s)
    np.testing.assert_array_equal(got, np.where(a >= 0, a, 0.5 * a) / s)


def test_compiled_chains_match_onnxruntime(cache_dir):
    from helpers import check_against_onnxruntime, make_model
    rng = np.random.default_rng(5)
    nodes = [helper.make_node("Mul", ["x", "s"], ["a"], name="scale"),
             helper.make_node("Add", ["a", "t"], ["b"], name="shift"),
             helper.make_node("HardSwish", ["b"], ["c"], name="hswish"),
             helper.make_node("Clip", ["c", "lo", ""], ["d"], name="clip"),
             helper.make_node("Sigmoid", ["d"], ["e"], name="sig"),
             helper.make_node("Mul", ["d", "e"], ["y"], name="swish"),
             helper.make_node("Exp", ["x"], ["u"], name="exp"),
             helper.make_node("Neg", ["u"], ["v"], name="neg")]
    model = make_model(nodes, {"x": (np.float32, [2, 3, 4, 5])}, ["y", "v"],
                       {"s": rng.standard_normal((3, 1, 1)).astype(np.float32),
                        "t": np.array(0.25, np.float32), "lo": np.array(-0.1, np.float32)})
    optimized = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    assert [(n.op, n.sources) for n in optimized.nodes] == [
        ("Elementwise", ("scale", "shift", "hswish", "clip")),     # d is read twice
        ("Elementwise", ("sig", "swish")),
        ("Elementwise", ("exp", "neg"))]
    check_against_onnxruntime(model, cache_dir, opt_level=2)
