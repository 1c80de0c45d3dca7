"""Conv and ConvTranspose match onnxruntime: 1-D, 2-D and 3-D images, groups (depthwise
too), strides, dilations, explicit and automatic padding, bias or none, weights constant
(pre-packed at compile time) or given at run time, batches, products larger than one GEMM
block; ConvTranspose also output_padding and output_shape. Bad attributes are clear errors."""
import numpy as np
import pytest
import onnx
from onnx import helper
from onnx import numpy_helper as onnx_numpy_helper

import nnbuild
from nnbuild.errors import ModelError
from nnbuild.ops import conv, linalg
from nnbuild.testing import assert_close
from helpers import (check_against_onnxruntime, make_model, onnxruntime_outputs, random_inputs,
                     target_param)

F32 = np.float32


def conv_model(op, cases: dict, bias=True, constant=True):
    """One Conv / ConvTranspose per case {name: (x_shape, w_shape, attrs)}, reading x_<name>
    and writing y_<name>; W and B are initializers, or graph inputs when not ``constant``."""
    rng = np.random.default_rng(11)
    nodes, inputs, params = [], {}, {}
    for name, (x_shape, w_shape, attrs) in cases.items():
        out_channels = w_shape[0] if op == "Conv" else w_shape[1] * attrs.get("group", 1)
        values = {f"w_{name}": rng.standard_normal(w_shape).astype(F32)}
        if bias:
            values[f"b_{name}"] = rng.standard_normal(out_channels).astype(F32)
        inputs[f"x_{name}"] = (F32, x_shape)
        if constant:
            params.update(values)
        else:
            inputs.update({n: (F32, list(v.shape)) for n, v in values.items()})
        nodes.append(helper.make_node(op, [f"x_{name}", *values], [f"y_{name}"], **attrs))
    return make_model(nodes, inputs, [n.output[0] for n in nodes], params)


def pick(table: dict, *names) -> dict:
    return {name: table[name] for name in names}


# --- Conv -------------------------------------------------------------------------------------
CONV_2D = {
    "plain": ([1, 3, 10, 11], [4, 3, 3, 3], {}),
    "pads": ([1, 3, 10, 11], [4, 3, 3, 3], dict(pads=[1, 1, 1, 1])),
    "asymmetric_pads": ([1, 3, 10, 11], [4, 3, 3, 2], dict(pads=[2, 0, 1, 3])),
    "kernel_shape": ([1, 3, 9, 9], [4, 3, 2, 3], dict(kernel_shape=[2, 3])),
    "same_upper": ([1, 3, 9, 10], [4, 3, 4, 3], dict(auto_pad="SAME_UPPER", strides=[2, 2])),
    "same_lower": ([1, 3, 9, 10], [4, 3, 4, 3], dict(auto_pad="SAME_LOWER", strides=[2, 2])),
    "valid": ([1, 3, 9, 10], [4, 3, 3, 3], dict(auto_pad="VALID", strides=[2, 1])),
    "strides": ([1, 3, 11, 12], [5, 3, 3, 3], dict(strides=[2, 3], pads=[1, 1, 1, 1])),
    "dilations": ([1, 3, 12, 12], [5, 3, 3, 3], dict(dilations=[2, 3], pads=[2, 1, 2, 1])),
    "groups": ([1, 6, 9, 9], [9, 2, 3, 3], dict(group=3, pads=[1, 1, 1, 1])),
    "batch": ([3, 4, 7, 6], [6, 2, 3, 3], dict(group=2, pads=[1, 1, 1, 1])),
    "depthwise": ([1, 5, 9, 10], [5, 1, 3, 3], dict(group=5, pads=[1, 1, 1, 1])),
    "depthwise_strided": ([1, 4, 11, 10], [4, 1, 3, 3],
                          dict(group=4, strides=[2, 2], dilations=[1, 2], pads=[1, 2, 0, 2])),
    "depthwise_multiplier": ([2, 3, 8, 8], [6, 1, 3, 3], dict(group=3, auto_pad="SAME_UPPER")),
    "pointwise": ([1, 7, 6, 5], [9, 7, 1, 1], {}),
    "pointwise_strided": ([1, 7, 6, 5], [9, 7, 1, 1], dict(strides=[2, 2])),
    "pointwise_padded": ([1, 7, 6, 5], [9, 7, 1, 1], dict(pads=[1, 0, 0, 1])),
}
CONV_2D_GROUPS = {
    "padding": ["plain", "pads", "asymmetric_pads", "kernel_shape"],
    "auto_pad": ["same_upper", "same_lower", "valid"],
    "strides_dilations": ["strides", "dilations"],
    "groups_batch": ["groups", "batch"],
    "depthwise": ["depthwise", "depthwise_strided", "depthwise_multiplier"],
    "pointwise": ["pointwise", "pointwise_strided", "pointwise_padded"],
}


@pytest.mark.parametrize("group", CONV_2D_GROUPS)
@target_param()
def test_conv_2d(group, target, cache_dir):
    cases = pick(CONV_2D, *CONV_2D_GROUPS[group])
    check_against_onnxruntime(conv_model("Conv", cases), cache_dir, target=target)


@target_param()
def test_conv_weights_given_at_run_time(target, cache_dir):
    """W and B as graph inputs: packed into scratch at run time (or read as is, depthwise)."""
    cases = pick(CONV_2D, "plain", "strides", "groups", "depthwise", "pointwise")
    check_against_onnxruntime(conv_model("Conv", cases, constant=False), cache_dir, target=target)


def test_conv_without_bias(cache_dir):
    cases = pick(CONV_2D, "pads", "depthwise", "pointwise")
    check_against_onnxruntime(conv_model("Conv", cases, bias=False), cache_dir)


CONV_1D_3D = {
    "1d": {"1d": ([2, 3, 17], [5, 3, 4], dict(strides=[2], dilations=[2], pads=[3, 1])),
           "1d_same_lower": ([1, 4, 9], [6, 2, 3], dict(group=2, auto_pad="SAME_LOWER")),
           "1d_depthwise": ([1, 4, 9], [4, 1, 5], dict(group=4, pads=[2, 2]))},
    "3d": {"3d": ([1, 3, 5, 6, 7], [4, 3, 3, 2, 3],
                  dict(pads=[1, 0, 1, 1, 1, 0], strides=[1, 2, 1])),
           "3d_depthwise": ([1, 2, 4, 5, 6], [2, 1, 2, 3, 3],
                            dict(group=2, auto_pad="SAME_UPPER"))},
}


@pytest.mark.parametrize("rank", CONV_1D_3D)
@target_param()
def test_conv_1d_and_3d(rank, target, cache_dir):
    check_against_onnxruntime(conv_model("Conv", CONV_1D_3D[rank]), cache_dir, target=target)


@target_param()
def test_conv_larger_than_one_gemm_block(target, cache_dir):
    """More output channels than MC, K = 33 * 9 > KC and 35 * 33 > NC output positions."""
    out_channels = linalg.GEMM_BLOCKING["MC"] + 5
    model = conv_model("Conv", {"big": ([1, 33, 35, 33], [out_channels, 33, 3, 3],
                                        dict(pads=[1, 1, 1, 1]))})
    feeds = {"x_big": np.random.default_rng(2).uniform(-1, 1, (1, 33, 35, 33)).astype(F32)}
    check_against_onnxruntime(model, cache_dir, feeds, target=target)


@pytest.mark.parametrize("constant", [True, False], ids=["constant-W", "runtime-W"])
def test_conv_float16_is_the_float32_conv_rounded_once(constant, cache_dir):
    """A float16 Conv equals onnxruntime's float32 Conv of the same (widened) values, rounded
    once to float16: GEMM, depthwise and pointwise cases, weights constant or run-time."""
    cases = pick(CONV_2D, "pads", "groups", "depthwise_strided", "pointwise_strided")
    reference = conv_model("Conv", cases, constant=constant)
    half = onnx.ModelProto()
    half.CopyFrom(reference)
    for vi in list(half.graph.input) + list(half.graph.output):
        vi.type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    for init in half.graph.initializer:
        init.CopyFrom(onnx_numpy_helper.from_array(
            onnx_numpy_helper.to_array(init).astype(np.float16), init.name))
        for i in reference.graph.initializer:
            if i.name == init.name:    # the float32 model sees exactly the float16 values
                i.CopyFrom(onnx_numpy_helper.from_array(
                    onnx_numpy_helper.to_array(init).astype(F32), i.name))
    feeds = {n: v.astype(np.float16) for n, v in random_inputs(reference).items()}
    expected = onnxruntime_outputs(reference, {n: v.astype(F32) for n, v in feeds.items()})
    actual = nnbuild.compile(half, cache_dir=cache_dir).run(feeds)
    for name, value in expected.items():
        assert_close(actual[name], value.astype(np.float16), what=name)


def test_conv_of_constants_folds_with_the_reference(cache_dir):
    """A Conv whose image is constant too is computed at compile time by the numpy reference."""
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("Conv", ["c", "w", "b"], ["k"], group=2, strides=[2, 1],
                              pads=[1, 0, 0, 1], dilations=[1, 2]),
             helper.make_node("ConvTranspose", ["c", "wt"], ["t"], strides=[2, 2],
                              output_padding=[1, 0], pads=[0, 1, 1, 0]),
             helper.make_node("Add", ["x", "k"], ["y"]),
             helper.make_node("Add", ["xt", "t"], ["z"])]
    params = {"c": rng.standard_normal((1, 4, 6, 7)).astype(F32),
              "w": rng.standard_normal((6, 2, 3, 2)).astype(F32),
              "b": rng.standard_normal(6).astype(F32),
              "wt": rng.standard_normal((4, 3, 3, 3)).astype(F32)}
    model = make_model(nodes, {"x": (F32, [1, 6, 3, 6]), "xt": (F32, [1, 3, 13, 14])},
                       ["y", "z"], params)
    check_against_onnxruntime(model, cache_dir)


# --- ConvTranspose ----------------------------------------------------------------------------
CONV_TRANSPOSE = {
    "strides_pads": {
        "plain": ([1, 3, 5, 6], [3, 4, 3, 3], {}),
        "strides": ([1, 3, 5, 5], [3, 4, 3, 3], dict(strides=[2, 3])),
        "pads": ([1, 3, 5, 5], [3, 4, 3, 3], dict(strides=[2, 2], pads=[1, 0, 2, 1])),
        "output_padding": ([1, 3, 5, 5], [3, 4, 3, 3], dict(strides=[3, 2], output_padding=[2, 1])),
    },
    "dilations_groups": {
        "dilations": ([1, 3, 5, 5], [3, 4, 2, 3], dict(dilations=[2, 3], strides=[2, 1])),
        "groups": ([2, 4, 5, 6], [4, 3, 3, 2], dict(group=2, strides=[2, 3], pads=[1, 0, 0, 1],
                                                    output_padding=[1, 1], dilations=[1, 2])),
    },
    "output_shape": {
        "output_shape": ([1, 3, 5, 5], [3, 4, 3, 3], dict(strides=[2, 2], output_shape=[10, 9])),
        "output_shape_same_upper": ([1, 3, 5, 5], [3, 4, 3, 3],
                                    dict(strides=[2, 2], output_shape=[10, 10],
                                         auto_pad="SAME_UPPER")),
    },
    "auto_pad": {
        "same_upper": ([1, 3, 5, 5], [3, 4, 4, 4], dict(strides=[2, 2], auto_pad="SAME_UPPER")),
        "same_lower": ([1, 3, 5, 5], [3, 4, 4, 4], dict(strides=[2, 2], auto_pad="SAME_LOWER")),
        "valid": ([1, 3, 5, 5], [3, 4, 3, 3], dict(strides=[2, 2], auto_pad="VALID")),
    },
    "1d_3d": {
        "1d": ([2, 3, 7], [3, 2, 4], dict(strides=[3], pads=[1, 2], output_padding=[1])),
        "3d": ([1, 2, 3, 4, 3], [2, 3, 2, 3, 2], dict(strides=[2, 1, 2])),
    },
}


@pytest.mark.parametrize("group", CONV_TRANSPOSE)
@target_param()
def test_conv_transpose(group, target, cache_dir):
    check_against_onnxruntime(conv_model("ConvTranspose", CONV_TRANSPOSE[group]), cache_dir,
                              target=target)


def test_conv_transpose_weights_given_at_run_time_without_bias(cache_dir):
    cases = CONV_TRANSPOSE["dilations_groups"]
    check_against_onnxruntime(conv_model("ConvTranspose", cases, bias=False, constant=False),
                              cache_dir)


def test_conv_transpose_in_chunks_of_input_rows(cache_dir, monkeypatch):
    """A column buffer too small for the whole image: input rows are taken a few at a time."""
    monkeypatch.setattr(conv, "TRANSPOSE_COLUMNS_FLOATS", 4 * 9 * 7 * 3)
    model = conv_model("ConvTranspose", {"chunked": ([1, 5, 11, 7], [5, 4, 3, 3],
                                                     dict(strides=[2, 2], pads=[1, 1, 1, 1]))})
    check_against_onnxruntime(model, cache_dir)


# --- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("op,x_shape,w_shape,attrs,message", [
    ("Conv", [1, 4, 5, 5], [2, 3, 3, 3], dict(group=2), "does not fit 4 input channels"),
    ("Conv", [1, 6, 5, 5], [2, 3, 3, 3], dict(group=4), "group 4 does not divide"),
    ("Conv", [1, 3, 5, 5], [2, 3, 3, 3], dict(kernel_shape=[3, 2]), "kernel_shape"),
    ("Conv", [1, 3, 5, 5], [2, 3, 3, 3], dict(pads=[1, 1]), "pads .* must have 4 values"),
    ("Conv", [1, 3, 5, 5], [2, 3, 3, 3], dict(auto_pad="SAME"), "auto_pad 'SAME' is not one of"),
    ("Conv", [1, 3, 2, 5], [2, 3, 3, 3], {}, "larger than the padded image"),
    ("Conv", [1, 3, 2, 2, 2, 2], [2, 3, 1, 1, 1, 1], {}, r"4-D images are not supported"),
    ("Conv", [1, 3, 5, 5], [2, 3, 3], {}, "same rank"),
    ("ConvTranspose", [1, 3, 5, 5], [3, 2, 3, 3], dict(output_padding=[2, 0]),
     "output_padding"),
    ("ConvTranspose", [1, 3, 5, 5], [4, 2, 3, 3], {}, "one row per input channel"),
])
def test_bad_attributes_are_model_errors(op, x_shape, w_shape, attrs, message):
    model = conv_model(op, {"bad": (x_shape, w_shape, attrs)}, bias=False, constant=False)
    with pytest.raises(ModelError, match=message):
        nnbuild.translate(model)


def test_bias_of_the_wrong_size_is_a_model_error():
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"])
    model = make_model([node], {"x": (F32, [1, 3, 5, 5]), "w": (F32, [4, 3, 3, 3]),
                                "b": (F32, [3])}, ["y"])
    with pytest.raises(ModelError, match=r"one value per output channel \(4\)"):
        nnbuild.translate(model)


def test_flops_count_multiply_adds_twice():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], group=2, strides=[2, 2]),
             helper.make_node("ConvTranspose", ["c", "wt"], ["y"], group=2)]
    model = make_model(nodes, {"x": (F32, [1, 4, 9, 9]), "w": (F32, [6, 2, 3, 3]),
                               "wt": (F32, [6, 1, 2, 2])}, ["y"])
    graph = nnbuild.translate(model)
    from nnbuild.ops import registry
    assert [registry.get(n).flops(n, graph) for n in graph.nodes] == [
        2 * 6 * 4 * 4 * 2 * 3 * 3,       # 6 outputs x 4x4 positions x (2 channels x 3x3 taps)
        2 * 6 * 4 * 4 * 1 * 2 * 2]       # 6 inputs x 4x4 positions x (1 output channel x 2x2)


def test_conv_transpose_output_shape_larger_than_full(cache_dir):
    # the spec's total padding goes negative: the extra end row / column hold only the bias
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], strides=[3, 2],
                            output_shape=[10, 8])
    model = make_model([node], {"x": (np.float32, [1, 1, 3, 3]), "w": (np.float32, [1, 2, 3, 3]),
                                "b": (np.float32, [2])}, ["y"])
    check_against_onnxruntime(model, cache_dir)
