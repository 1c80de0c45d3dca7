"""select-conv-algorithm: a 3x3 stride-1 float32 Conv (or FusedConv) with constant weights gets
``winograd=2`` where ops.winograd.choose measured F(2x2) faster (docs/winograd.md); other
convolutions, and nodes that already carry a choice, are left alone."""
from nnbuild.passes.select_conv_algorithm import select_conv_algorithm

from rewrite_helpers import assert_rewrites, assert_unchanged


def test_resnet_stage_conv_and_its_fused_twin():
    assert_rewrites(select_conv_algorithm, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,128,28,28]
      const @W: f32[128,128,3,3] = splat(0.01)
      %y: f32[1,128,28,28] = Conv(%x, @W) {pads=[1, 1, 1, 1]}  # conv1
      %z: f32[1,128,28,28] = nnbuild::FusedConv(%y, @W, _, %x) {epilogue=["Add(acc, $3)", "Relu(#0)"], pads=[1, 1, 1, 1]}  # conv2, add, relu
      output %z
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,128,28,28]
      const @W: f32[128,128,3,3] = splat(0.01)
      %y: f32[1,128,28,28] = Conv(%x, @W) {pads=[1, 1, 1, 1], winograd=2}  # conv1
      %z: f32[1,128,28,28] = nnbuild::FusedConv(%y, @W, _, %x) {epilogue=["Add(acc, $3)", "Relu(#0)"], pads=[1, 1, 1, 1], winograd=2}  # conv2, add, relu
      output %z
    }""")


def test_strided_small_runtime_weights_and_chosen_nodes_stay():
    assert_unchanged(select_conv_algorithm, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[1,64,56,56]
      input %w: f32[64,64,3,3]
      const @W: f32[64,64,3,3] = splat(0.01)
      const @S: f32[16,64,3,3] = splat(0.01)
      %a: f32[1,64,28,28] = Conv(%x, @W) {pads=[1, 1, 1, 1], strides=[2, 2]}  # strided
      %b: f32[1,64,56,56] = Conv(%x, %w) {pads=[1, 1, 1, 1]}  # runtime weights
      %c: f32[1,16,56,56] = Conv(%x, @S) {pads=[1, 1, 1, 1]}  # 16 outputs: direct is faster
      %d: f32[1,64,56,56] = Conv(%x, @W) {pads=[1, 1, 1, 1], winograd=4}  # chosen by hand
      output %a
      output %b
      output %c
      output %d
    }""")
