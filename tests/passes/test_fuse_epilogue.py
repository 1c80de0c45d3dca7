"""fuse-epilogue: the elementwise ops after a Conv / Gemm / MatMul (bias Add, activation,
residual Add) become the product's epilogue, one node that keeps every absorbed ONNX name."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild.ir import parse_graph
from nnbuild.passes.fuse_epilogue import fuse_epilogue

from rewrite_helpers import assert_rewrites, assert_unchanged, parse


def test_conv_relu():
    assert_rewrites(fuse_epilogue, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,1,3,3]
      const @W: f32[2,1,1,1] = [1.0, -1.0]
      %y: f32[1,2,3,3] = Conv(%x, @W)  # conv1
      %r: f32[1,2,3,3] = Relu(%y)  # relu1
      output %r
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,1,3,3]
      const @W: f32[2,1,1,1] = [1.0, -1.0]
      %r: f32[1,2,3,3] = nnbuild::FusedConv(%x, @W, _) {epilogue=["Relu(acc)"]}  # conv1, relu1
      output %r
    }""")


def test_residual_add_then_relu_is_placed_after_the_residual():
    # the shortcut is computed after conv2 in graph order: the fused node goes where the Relu was
    assert_rewrites(fuse_epilogue, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,2,3,3]
      const @W: f32[2,2,1,1] = [1.0, 0.0, 0.0, 1.0]
      const @b: f32[2] = [0.5, -0.5]
      %y: f32[1,2,3,3] = Conv(%x, @W, @b)  # conv2
      %s: f32[1,2,3,3] = Neg(%x)  # shortcut
      %z: f32[1,2,3,3] = Add(%s, %y)  # add
      %r: f32[1,2,3,3] = Relu(%z)  # relu
      output %r
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,2,3,3]
      const @W: f32[2,2,1,1] = [1.0, 0.0, 0.0, 1.0]
      const @b: f32[2] = [0.5, -0.5]
      %s: f32[1,2,3,3] = Neg(%x)  # shortcut
      %r: f32[1,2,3,3] = nnbuild::FusedConv(%x, @W, @b, %s) {epilogue=["Add($3, acc)", "Relu(#0)"]}  # conv2, add, relu
      output %r
    }""")


def test_matmul_bias_and_clip():
    assert_rewrites(fuse_epilogue, """
    graph g opsets(ai.onnx=17) {
      input %a: f32[2,3]
      const @B: f32[3,2] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
      const @c: f32[2] = [1.0, -1.0]
      const @lo: f32[] = [0.0]
      const @hi: f32[] = [6.0]
      %y: f32[2,2] = MatMul(%a, @B)  # fc
      %z: f32[2,2] = Add(%y, @c)  # bias
      %r: f32[2,2] = Clip(%z, @lo, @hi)  # relu6
      output %r
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %a: f32[2,3]
      const @B: f32[3,2] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
      const @c: f32[2] = [1.0, -1.0]
      const @lo: f32[] = [0.0]
      const @hi: f32[] = [6.0]
      %r: f32[2,2] = nnbuild::FusedMatMul(%a, @B, @c, @lo, @hi) {epilogue=["Add(acc, $2)", "Clip(#0, $3, $4)"]}  # fc, bias, relu6
      output %r
    }""")


def test_gemm_leaky_relu_keeps_its_attributes():
    assert_rewrites(fuse_epilogue, """
    graph g opsets(ai.onnx=17) {
      input %a: f32[2,3]
      const @B: f32[2,3] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
      %y: f32[2,2] = Gemm(%a, @B) {transB=1}  # fc
      %r: f32[2,2] = LeakyRelu(%y) {alpha=0.25}  # act
      output %r
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %a: f32[2,3]
      const @B: f32[2,3] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
      %r: f32[2,2] = nnbuild::FusedGemm(%a, @B, _) {epilogue=["LeakyRelu(acc) {\\"alpha\\": 0.25}"], transB=1}  # fc, act
      output %r
    }""")


def body(extra="", out="%r", more=""):
    return f"""
    graph g opsets(ai.onnx=17) {{
      input %a: f32[2,3]
      const @B: f32[3,2] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
      %y: f32[2,2] = MatMul(%a, @B)  # fc{extra}
      %r: f32[2,2] = Relu(%y)  # relu{more}
      output {out}
    }}"""


LEFT_ALONE = {
    "product read twice": body(more="\n  %s: f32[2,2] = Neg(%y)  # neg", out="%r\n  output %s"),
    "product is a graph output": body(out="%r\n  output %y"),
}


@pytest.mark.parametrize("case", LEFT_ALONE)
def test_left_alone(case):
    assert_unchanged(fuse_epilogue, LEFT_ALONE[case])


def test_a_broadcast_that_grows_the_value_stops_the_epilogue():
    assert_unchanged(fuse_epilogue, """
    graph g opsets(ai.onnx=17) {
      input %a: f32[2,3]
      input %big: f32[4,2,2]
      const @B: f32[3,2] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
      %y: f32[2,2] = MatMul(%a, @B)  # fc
      %r: f32[4,2,2] = Add(%y, %big)  # add
      output %r
    }""")


def test_fused_reference_is_the_chain_of_references():
    graph = parse(body(more="\n  %s: f32[2,2] = Sigmoid(%r)  # sig", out="%s"))
    fused = fuse_epilogue.run(graph)
    [node] = fused.nodes
    assert node.attrs["epilogue"] == ["Relu(acc)", "Sigmoid(#0)"]
    a = np.array([[1, -2, 3], [-4, 5, -6]], np.float32)
    from nnbuild.ops import registry
    [got] = registry.get(node).reference(node, a, fused.constants["B"])
    want = 1 / (1 + np.exp(-np.maximum(a @ graph.constants["B"], 0)))
    np.testing.assert_allclose(got, want, rtol=1e-6)


ACTIVATIONS = [("Relu", {}), ("Sigmoid", {}), ("HardSwish", {}), ("LeakyRelu", {"alpha": 0.1}),
               ("Tanh", {})]


@pytest.mark.parametrize("op,attrs", ACTIVATIONS, ids=[a for a, _ in ACTIVATIONS])
def test_compiled_conv_bias_activation_residual_matches_onnxruntime(op, attrs, cache_dir):
    from helpers import check_against_onnxruntime, make_model
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["x", "W", "b"], ["y"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["y", "x"], ["z"], name="residual"),
             helper.make_node(op, ["z"], ["r"], name="act", **attrs)]
    model = make_model(nodes, {"x": (np.float32, [1, 4, 6, 6])}, ["r"],
                       {"W": rng.standard_normal((4, 4, 3, 3)).astype(np.float32),
                        "b": rng.standard_normal(4).astype(np.float32)})
    optimized = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    assert [(n.op, n.sources) for n in optimized.nodes] == [
        ("FusedConv", ("conv", "residual", "act"))]
    check_against_onnxruntime(model, cache_dir, opt_level=2)


def test_compiled_matmul_and_gemm_epilogues_match_onnxruntime(cache_dir):
    from helpers import check_against_onnxruntime, make_model
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"], name="mm"),
             helper.make_node("Add", ["y", "c"], ["z"], name="bias"),
             helper.make_node("Clip", ["z", "lo", "hi"], ["r"], name="relu6"),
             helper.make_node("Reshape", ["r", "shape"], ["r2"], name="flatten"),
             helper.make_node("Gemm", ["r2", "W2", "c2"], ["g"], name="fc", transB=1),
             helper.make_node("Sigmoid", ["g"], ["s"], name="sig")]
    model = make_model(nodes, {"x": (np.float32, [3, 5, 8])}, ["s"],
                       {"W": rng.standard_normal((8, 6)).astype(np.float32),
                        "c": rng.standard_normal(6).astype(np.float32),
                        "lo": np.array(0, np.float32), "hi": np.array(0.5, np.float32),
                        "shape": np.array([15, 6], np.int64),
                        "W2": rng.standard_normal((4, 6)).astype(np.float32),
                        "c2": rng.standard_normal(4).astype(np.float32)})
    optimized = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    assert [n.op for n in optimized.nodes] == ["FusedMatMul", "Reshape", "FusedGemm"]
    check_against_onnxruntime(model, cache_dir, opt_level=2)
