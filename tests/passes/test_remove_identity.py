"""remove-identity: Identity, and Dropout at inference, pass their input through: their
readers read the input instead. Kept where the result is a graph output (the C API writes
it), and a Dropout whose mask is read or that runs in training mode."""
from nnbuild.passes.remove_identity import remove_identity

from rewrite_helpers import assert_rewrites, assert_unchanged


def test_identity_between_nodes_goes():
    assert_rewrites(remove_identity, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[3]
      %a: f32[3] = Relu(%x)  # relu
      %i: f32[3] = Identity(%a)  # id
      %y: f32[3] = Sigmoid(%i)  # sig
      %z: f32[3] = Add(%i, %a)  # add
      output %y
      output %z
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[3]
      %a: f32[3] = Relu(%x)  # relu
      %y: f32[3] = Sigmoid(%a)  # sig
      %z: f32[3] = Add(%a, %a)  # add
      output %y
      output %z
    }""")


def test_chains_of_identities_of_inputs_and_constants_go():
    assert_rewrites(remove_identity, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[3]
      const @c: f32[3] = [1.0, 2.0, 3.0]
      %i1: f32[3] = Identity(%x)  # id1
      %i2: f32[3] = Identity(%i1)  # id2
      %ic: f32[3] = Identity(@c)  # idc
      %y: f32[3] = Mul(%i2, %ic)  # mul
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[3]
      const @c: f32[3] = [1.0, 2.0, 3.0]
      %y: f32[3] = Mul(%x, @c)  # mul
      output %y
    }""")


def test_identity_that_is_a_graph_output_stays():
    assert_unchanged(remove_identity, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[3]
      %a: f32[3] = Relu(%x)  # relu
      %y: f32[3] = Identity(%a)  # id
      %z: f32[3] = Identity(%x)  # passthrough
      output %y
      output %z
    }""")


def test_inference_dropout_goes():
    assert_rewrites(remove_identity, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[3]
      const @ratio: f32[] = [0.5]
      const @training: bool[] = [false]
      %d1: f32[3], _ = Dropout(%x)  # drop1
      %d2: f32[3], %unused_mask: bool[3] = Dropout(%d1, @ratio, @training)  # drop2
      %y: f32[3] = Relu(%d2)  # relu
      output %y
    }""", expected="""
    graph g opsets(ai.onnx=17) {
      input %x: f32[3]
      %y: f32[3] = Relu(%x)  # relu
      output %y
    }""")


def test_dropout_whose_mask_is_read_stays():
    assert_unchanged(remove_identity, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[3]
      %d: f32[3], %mask: bool[3] = Dropout(%x)  # drop
      %y: f32[3] = Relu(%d)  # relu
      output %y
      output %mask
    }""")


def test_training_dropout_stays():
    assert_unchanged(remove_identity, """
    graph g opsets(ai.onnx=17) {
      input %x: f32[3]
      input %training: bool[]
      const @ratio: f32[] = [0.5]
      const @on: bool[] = [true]
      %d1: f32[3] = Dropout(%x, @ratio, @on)  # training mode
      %d2: f32[3] = Dropout(%d1, @ratio, %training)  # known at run time only
      %y: f32[3] = Relu(%d2)  # relu
      output %y
    }""")
