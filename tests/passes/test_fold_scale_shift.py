"""fold-scale-shift: a Mul, Add or Sub by a constant that varies along the output channels only,
reading a Conv result nobody else reads, becomes new weights of that Conv:

    Conv(x, W, b) * s  =>  Conv(x, W * s[m], b * s[m])
    Conv(x, W, b) + d  =>  Conv(x, W, b + d[m]);   Conv(x, W, b) - d  =>  Conv(x, W, b - d[m])

(Inception-v2 exports every BatchNormalization as BN -> Mul -> Add by [C,1,1] constants.)
The values below are powers of two and small integers, so the arithmetic is exact.
"""
import numpy as np
import pytest
from onnx import helper

from nnbuild.passes.fold_scale_shift import fold_scale_shift

from helpers import check_against_onnxruntime, make_model
from rewrite_helpers import assert_rewrites, assert_unchanged, parse

CONV = """
      input %x: f32[1,1,3,3]
      const @W: f32[2,1,1,2] = [1.0, 2.0, 3.0, 4.0]
      const @b: f32[2] = [1.0, 2.0]"""


def test_a_scale_then_a_shift_fold_into_the_conv():
    assert_rewrites(fold_scale_shift, f"""
    graph g opsets(ai.onnx=17) {{{CONV}
      const @s: f32[2,1,1] = [2.0, 0.5]
      const @d: f32[1,2,1,1] = [-1.0, 3.0]
      %y: f32[1,2,3,2] = Conv(%x, @W, @b)  # conv
      %z: f32[1,2,3,2] = Mul(%y, @s)  # scale
      %u: f32[1,2,3,2] = Add(%z, @d)  # shift
      %r: f32[1,2,3,2] = Relu(%u)  # relu
      output %r
    }}""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,1,3,3]
      const @W_scaled: f32[2,1,1,2] = [2.0, 4.0, 1.5, 2.0]
      const @u_bias: f32[2] = [1.0, 4.0]
      %u: f32[1,2,3,2] = Conv(%x, @W_scaled, @u_bias)  # conv, scale, shift
      %r: f32[1,2,3,2] = Relu(%u)  # relu
      output %r
    }""")


def test_a_scalar_first_and_a_subtraction_on_a_conv_without_bias():
    assert_rewrites(fold_scale_shift, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,1,3,3]
      const @W: f32[2,1,1,2] = [1.0, 2.0, 3.0, 4.0]
      const @s: f32[] = [4.0]
      const @d: f32[2,1,1] = [1.0, -2.0]
      %y: f32[1,2,3,2] = Conv(%x, @W)  # conv
      %z: f32[1,2,3,2] = Mul(@s, %y)  # scale
      %u: f32[1,2,3,2] = Sub(%z, @d)  # shift
      output %u
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,1,3,3]
      const @W_scaled: f32[2,1,1,2] = [4.0, 8.0, 12.0, 16.0]
      const @u_bias: f32[2] = [-1.0, 2.0]
      %u: f32[1,2,3,2] = Conv(%x, @W_scaled, @u_bias)  # conv, scale, shift
      output %u
    }""")


def conv_then(op: str = "Mul(%y, @c)", constant: str = "const @c: f32[2,1,1] = [2.0, 4.0]",
              more: str = "", outputs: str = "") -> str:
    """Conv -> one op by a constant, with one thing changed per case below."""
    return f"""
    graph g opsets(ai.onnx=17) {{{CONV}
      {constant}
      %y: f32[1,2,3,2] = Conv(%x, @W, @b)  # conv
      %z: f32[1,2,3,2] = {op}  # op{more}
      output %z{outputs}
    }}"""


LEFT_ALONE = {
    "constant varies along the width":
        conv_then(constant="const @c: f32[1,1,1,2] = [2.0, 4.0]"),
    "constant varies along the batch and widens the result":
        conv_then(constant="const @c: f32[2,1,1,1] = [2.0, 4.0]",
                  op="Mul(%y, @c)").replace("%z: f32[1,2,3,2]", "%z: f32[2,2,3,2]"),
    "conv result read by another node too":
        conv_then(more="\n      %r: f32[1,2,3,2] = Relu(%y)  # relu", outputs="\n      output %r"),
    "conv result is a graph output": conv_then(outputs="\n      output %y"),
    "operand known only at run time":
        conv_then(constant="input %c: f32[2,1,1]"),
    "constant subtracts the conv": conv_then(op="Sub(@c, %y)"),
    "division": conv_then(op="Div(%y, @c)"),
}


@pytest.mark.parametrize("case", LEFT_ALONE)
def test_left_alone(case):
    assert_unchanged(fold_scale_shift, LEFT_ALONE[case])


def test_the_unchanged_cases_do_fold_without_their_one_difference():
    assert [n.op for n in fold_scale_shift.run(parse(conv_then())).nodes] == ["Conv"]


def test_a_folded_network_matches_onnxruntime(cache_dir):
    """Conv -> BatchNormalization -> Mul -> Add -> Relu, as Inception-v2 has it 69 times, on
    grouped strided convs: one FusedConv with a Relu epilogue, the same outputs."""
    rng = np.random.default_rng(3)
    c, m = 4, 6
    weights = {"w": rng.standard_normal((m, c // 2, 3, 3)).astype(np.float32),
               "b": rng.standard_normal(m).astype(np.float32),
               "scale": rng.standard_normal(m).astype(np.float32),
               "shift": rng.standard_normal(m).astype(np.float32),
               "mean": rng.standard_normal(m).astype(np.float32),
               "var": (rng.random(m) + 0.5).astype(np.float32),
               "s": rng.standard_normal((m, 1, 1)).astype(np.float32),
               "d": rng.standard_normal((1, m, 1, 1)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], group=2, strides=[2, 1],
                              pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["y", "scale", "shift", "mean", "var"], ["n"]),
             helper.make_node("Mul", ["n", "s"], ["p"]),
             helper.make_node("Add", ["d", "p"], ["q"]),
             helper.make_node("Relu", ["q"], ["r"])]
    model = make_model(nodes, {"x": (np.float32, (1, c, 9, 8))}, ["r"], weights)
    import nnbuild
    optimized = nnbuild.optimize(nnbuild.translate(model))
    assert [(n.op, n.attrs.get("epilogue")) for n in optimized.nodes] == \
        [("FusedConv", ["Relu(acc)"])]
    check_against_onnxruntime(model, cache_dir)
