"""fold-batchnorm: an inference BatchNormalization that is the only reader of a Conv or Gemm
with constant weights becomes new weights of that Conv/Gemm:

    s = scale / sqrt(var + eps);  W' = W * s (per output channel);  b' = (b - mean) * s + bias

The values below are chosen so the arithmetic is exact: epsilon = 0, var in {1, 4}, so
s = [2/2, 3/1] = [1, 3] and the shift bias - mean * s = [0.5 - 1, 0 + 3] = [-0.5, 3].
"""
import numpy as np
import pytest
from onnx import helper

from nnbuild.ir import parse_graph
from nnbuild.ops import registry
from nnbuild.passes.fold_batchnorm import fold_batchnorm

from rewrite_helpers import assert_rewrites, assert_unchanged, parse

BN_PARAMS = """
  const @scale: f32[2] = [2.0, 3.0]
  const @bias: f32[2] = [0.5, 0.0]
  const @mean: f32[2] = [1.0, -1.0]
  const @var: f32[2] = [4.0, 1.0]"""


def test_conv_with_bias():
    assert_rewrites(fold_batchnorm, f"""
    graph g opsets(ai.onnx=17) {{
      input %x: f32[1,1,3,3]
      const @W: f32[2,1,1,2] = [1.0, 2.0, 3.0, 4.0]
      const @b: f32[2] = [1.0, 2.0]{BN_PARAMS}
      %y: f32[1,2,3,2] = Conv(%x, @W, @b) {{strides=[1, 1]}}  # conv1
      %z: f32[1,2,3,2] = BatchNormalization(%y, @scale, @bias, @mean, @var) {{epsilon=0.0}}  # bn1
      output %z
    }}""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,1,3,3]
      const @W_bn: f32[2,1,1,2] = [1.0, 2.0, 9.0, 12.0]
      const @z_bias: f32[2] = [0.5, 9.0]
      %z: f32[1,2,3,2] = Conv(%x, @W_bn, @z_bias) {strides=[1, 1]}  # conv1, bn1
      output %z
    }""")


def test_conv_without_bias_gets_one():
    assert_rewrites(fold_batchnorm, f"""
    graph g opsets(ai.onnx=17) {{
      input %x: f32[1,1,3,3]
      const @W: f32[2,1,1,2] = [1.0, 2.0, 3.0, 4.0]{BN_PARAMS}
      %y: f32[1,2,3,2] = Conv(%x, @W)  # conv1
      %z: f32[1,2,3,2] = BatchNormalization(%y, @scale, @bias, @mean, @var) {{epsilon=0.0}}  # bn1
      %r: f32[1,2,3,2] = Relu(%z)  # relu1
      output %r
    }}""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,1,3,3]
      const @W_bn: f32[2,1,1,2] = [1.0, 2.0, 9.0, 12.0]
      const @z_bias: f32[2] = [-0.5, 3.0]
      %z: f32[1,2,3,2] = Conv(%x, @W_bn, @z_bias)  # conv1, bn1
      %r: f32[1,2,3,2] = Relu(%z)  # relu1
      output %r
    }""")


def test_weights_shared_with_another_conv_are_kept_for_it():
    assert_rewrites(fold_batchnorm, f"""
    graph g opsets(ai.onnx=17) {{
      input %x: f32[1,1,3,3]
      const @W: f32[2,1,1,2] = [1.0, 2.0, 3.0, 4.0]
      const @W_bn: f32[1] = [0.0]{BN_PARAMS}
      %y: f32[1,2,3,2] = Conv(%x, @W)  # conv1
      %z: f32[1,2,3,2] = BatchNormalization(%y, @scale, @bias, @mean, @var) {{epsilon=0.0}}  # bn1
      %other: f32[1,2,3,2] = Conv(%x, @W)  # conv2
      %s: f32[1,2,3,2] = Add(%z, %other)  # add
      %t: f32[1] = Neg(@W_bn)  # name clash
      output %s
      output %t
    }}""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,1,3,3]
      const @W: f32[2,1,1,2] = [1.0, 2.0, 3.0, 4.0]
      const @W_bn: f32[1] = [0.0]
      const @W_bn_1: f32[2,1,1,2] = [1.0, 2.0, 9.0, 12.0]
      const @z_bias: f32[2] = [-0.5, 3.0]
      %z: f32[1,2,3,2] = Conv(%x, @W_bn_1, @z_bias)  # conv1, bn1
      %other: f32[1,2,3,2] = Conv(%x, @W)  # conv2
      %s: f32[1,2,3,2] = Add(%z, %other)  # add
      %t: f32[1] = Neg(@W_bn)  # name clash
      output %s
      output %t
    }""")


def test_gemm():
    # Y = alpha * A @ B + beta * C with alpha = 2, beta = 0.5: B' = B * alpha * s per column,
    # C' = beta * C * s + shift, alpha = beta = 1
    assert_rewrites(fold_batchnorm, f"""
    graph g opsets(ai.onnx=17) {{
      input %a: f32[2,3]
      const @B: f32[3,2] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
      const @C: f32[2] = [2.0, 4.0]{BN_PARAMS}
      %y: f32[2,2] = Gemm(%a, @B, @C) {{alpha=2.0, beta=0.5}}  # fc
      %z: f32[2,2] = BatchNormalization(%y, @scale, @bias, @mean, @var) {{epsilon=0.0}}  # bn
      output %z
    }}""", expected="""
    graph g opsets(ai.onnx=17) {
      input %a: f32[2,3]
      const @B_bn: f32[3,2] = [2.0, 12.0, 6.0, 24.0, 10.0, 36.0]
      const @z_bias: f32[2] = [0.5, 9.0]
      %z: f32[2,2] = Gemm(%a, @B_bn, @z_bias) {alpha=1.0, beta=1.0}  # fc, bn
      output %z
    }""")


def test_gemm_transposed_b_without_c():
    assert_rewrites(fold_batchnorm, f"""
    graph g opsets(ai.onnx=17) {{
      input %a: f32[2,3]
      const @B: f32[2,3] = [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]{BN_PARAMS}
      %y: f32[2,2] = Gemm(%a, @B) {{transB=1}}  # fc
      %z: f32[2,2] = BatchNormalization(%y, @scale, @bias, @mean, @var) {{epsilon=0.0}}  # bn
      output %z
    }}""", expected="""
    graph g opsets(ai.onnx=17) {
      input %a: f32[2,3]
      const @B_bn: f32[2,3] = [1.0, 3.0, 5.0, 6.0, 12.0, 18.0]
      const @z_bias: f32[2] = [-0.5, 3.0]
      %z: f32[2,2] = Gemm(%a, @B_bn, @z_bias) {alpha=1.0, beta=1.0, transB=1}  # fc, bn
      output %z
    }""")


def conv_bn(conv="Conv(%x, @W)", bn_inputs="@scale, @bias, @mean, @var", bn_outputs="%z: f32[1,2,3,2]",
            attrs="epsilon=0.0", inputs="", more="", outputs="") -> str:
    """Conv -> BN, with one thing changed per test below."""
    return f"""
    graph g opsets(ai.onnx=17) {{
      input %x: f32[1,1,3,3]{inputs}
      const @W: f32[2,1,1,2] = [1.0, 2.0, 3.0, 4.0]{BN_PARAMS}
      %y: f32[1,2,3,2] = {conv}  # conv1
      {bn_outputs} = BatchNormalization(%y, {bn_inputs}) {{{attrs}}}  # bn1{more}
      output %z{outputs}
    }}"""


LEFT_ALONE = {
    "conv result read by another node too":
        conv_bn(more="\n  %r: f32[1,2,3,2] = Relu(%y)  # relu", outputs="\n  output %r"),
    "conv result is a graph output": conv_bn(outputs="\n  output %y"),
    "statistics known only at run time":
        conv_bn(inputs="\n  input %m: f32[2]", bn_inputs="@scale, @bias, %m, @var",
                outputs="\n  output @mean"),
    "training mode": conv_bn(attrs="epsilon=0.0, training_mode=1"),
    "running statistics are outputs":
        conv_bn(bn_outputs="%z: f32[1,2,3,2], %rm: f32[2], %rv: f32[2]",
                outputs="\n  output %rm"),
    "weights known only at run time":
        conv_bn(inputs="\n  input %w: f32[2,1,1,2]", conv="Conv(%x, %w)",
                outputs="\n  output @W"),
}


@pytest.mark.parametrize("case", LEFT_ALONE)
def test_left_alone(case):
    assert_unchanged(fold_batchnorm, LEFT_ALONE[case])


def test_the_unchanged_cases_do_fold_without_their_one_difference():
    assert [n.op for n in fold_batchnorm.run(parse(conv_bn())).nodes] == ["Conv"]


def test_gemm_with_per_row_bias_is_left_alone():
    assert_unchanged(fold_batchnorm, f"""
    graph g opsets(ai.onnx=17) {{
      input %a: f32[2,3]
      const @B: f32[3,2] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
      const @C: f32[2,1] = [1.0, 2.0]{BN_PARAMS}
      %y: f32[2,2] = Gemm(%a, @B, @C)  # fc
      %z: f32[2,2] = BatchNormalization(%y, @scale, @bias, @mean, @var)  # bn
      output %z
    }}""")


def test_batchnorm_after_other_ops_is_left_alone():
    assert_unchanged(fold_batchnorm, f"""
    graph g opsets(ai.onnx=17) {{
      input %x: f32[1,2,3,3]{BN_PARAMS}
      %y: f32[1,2,3,3] = Relu(%x)  # relu
      %z: f32[1,2,3,3] = BatchNormalization(%y, @scale, @bias, @mean, @var)  # bn
      output %z
    }}""")


# --- numerically: the folded graph computes what Conv + BN computed -------------------------
def conv2d(x, w, b, strides, pads, group):
    """numpy reference: NCHW convolution with symmetric pads and groups."""
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (x.shape[2] - kh) // strides[0] + 1
    ow = (x.shape[3] - kw) // strides[1] + 1
    out = np.zeros((n, m, oh, ow), np.float64)
    mg = m // group
    for g in range(group):
        xs = x[:, g * cg:(g + 1) * cg]
        ws = w[g * mg:(g + 1) * mg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i:i + strides[0] * oh:strides[0], j:j + strides[1] * ow:strides[1]]
                out[:, g * mg:(g + 1) * mg] += np.einsum("nchw,mc->nmhw", patch, ws[:, :, i, j])
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


def batchnorm(y, scale, bias, mean, var, eps):
    shape = (1, -1) + (1,) * (y.ndim - 2)
    return ((y - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
            * scale.reshape(shape) + bias.reshape(shape))


def _random_bn(rng, channels, name="bn"):
    return dict(scale=rng.standard_normal(channels).astype(np.float32),
                bias=rng.standard_normal(channels).astype(np.float32),
                mean=rng.standard_normal(channels).astype(np.float32),
                var=(rng.random(channels) + 0.1).astype(np.float32))


def _graph_with(constants: dict, body: str, inputs: str):
    graph = parse_graph("graph g opsets(ai.onnx=17) {\n" + inputs + "\n" + body + "\n}")
    for name, array in constants.items():
        graph.add_constant(name, array)
    return graph


@pytest.mark.parametrize("with_bias", [True, False])
def test_folded_conv_computes_the_same(with_bias):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    bn = _random_bn(rng, 6)
    conv = dict(strides=[2, 2], pads=[1, 0, 1, 0], group=2)
    constants = dict(W=w, **bn, **({"b": b} if with_bias else {}))
    graph = _graph_with(constants, f"""
      %y: f32[2,6,5,4] = Conv(%x, @W{", @b" if with_bias else ""}) {{group=2, pads=[1, 0, 1, 0], strides=[2, 2]}}  # conv
      %z: f32[2,6,5,4] = BatchNormalization(%y, @scale, @bias, @mean, @var) {{epsilon=0.001}}  # bn
      output %z""", "input %x: f32[2,4,9,9]")
    folded = fold_batchnorm.run(graph)
    [node] = folded.nodes
    assert node.op == "Conv" and node.sources == ("conv", "bn")
    new_w, new_b = (folded.constants[i] for i in node.inputs[1:])
    assert new_w.dtype == np.float32 and new_b.dtype == np.float32
    expected = batchnorm(conv2d(x, w, b if with_bias else None, **conv), **bn, eps=0.001)
    actual = conv2d(x, new_w, new_b, **conv)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("trans_b", [0, 1])
def test_folded_gemm_computes_the_same(trans_b):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal((4, 5) if trans_b else (5, 4)).astype(np.float32)
    c = rng.standard_normal(4).astype(np.float32)
    bn = _random_bn(rng, 4)
    graph = _graph_with(dict(B=b, C=c, **bn), f"""
      %y: f32[3,4] = Gemm(%a, @B, @C) {{alpha=0.5, beta=2.0, transB={trans_b}}}  # fc
      %z: f32[3,4] = BatchNormalization(%y, @scale, @bias, @mean, @var)  # bn
      output %z""", "input %a: f32[3,5]")
    folded = fold_batchnorm.run(graph)
    [node] = folded.nodes
    assert node.attrs["alpha"] == 1.0 and node.attrs["beta"] == 1.0
    new_b, new_c = (folded.constants[i].astype(np.float64) for i in node.inputs[1:])
    bb = b.T if trans_b else b
    expected = batchnorm(0.5 * a @ bb + 2.0 * c, **bn, eps=1e-5)
    actual = a @ (new_b.T if trans_b else new_b) + new_c
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(registry.lookup("Conv") is None or registry.lookup("BatchNormalization") is None,
                    reason="Conv / BatchNormalization not registered yet")
def test_compiled_conv_batchnorm_matches_onnxruntime(cache_dir):
    from helpers import check_against_onnxruntime, make_model
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("Conv", ["x", "W", "b"], ["y"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["y", "s", "t", "m", "v"], ["z"], name="bn"),
             helper.make_node("Relu", ["z"], ["r"], name="relu")]
    model = make_model(nodes, {"x": (np.float32, [1, 3, 8, 8])}, ["r"],
                       {"W": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
                        "b": rng.standard_normal(4).astype(np.float32),
                        **{k: v for k, v in zip("stmv", _random_bn(rng, 4).values())}})
    import nnbuild
    optimized = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    [fused] = optimized.nodes           # -O2 then fuses the Relu as the convolution's epilogue
    assert fused.op == "FusedConv" and fused.sources == ("conv", "bn", "relu")
    for level in (0, 2):
        check_against_onnxruntime(model, cache_dir, opt_level=level)
