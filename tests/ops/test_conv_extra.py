"""Convolution relatives match onnxruntime. Col2Im: constant image/block shapes give the output
shape; run-time ones need the declared output shape and are checked when the model runs."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from helpers import check_against_onnxruntime, make_model, random_inputs
from nnbuild.testing import assert_close

F32 = np.float32
I64 = np.int64


def _col2im(x_shape, image, block, declared=None, constant=True, **attrs):
    node = helper.make_node("Col2Im", ["x", "image", "block"], ["y"], **attrs)
    inits = {"image": np.array(image, I64), "block": np.array(block, I64)} if constant else {}
    inputs = {"x": (F32, x_shape)}
    if not constant:
        inputs.update(image=(I64, [len(image)]), block=(I64, [len(block)]))
    outputs = {"y": (F32, declared)} if declared else ["y"]
    return make_model([node], inputs, outputs, inits, opset=18)


COL2IM_CASES = [   # x shape, image, block, attributes
    ([1, 5, 5], [5, 5], [1, 5], {}),
    ([2, 12, 16], [5, 5], [2, 2], {"strides": [1, 1]}),
    ([1, 18, 9], [6, 6], [3, 3], {"strides": [2, 2], "pads": [1, 0, 0, 1]}),
    ([1, 8, 4], [6, 6], [2, 2], {"dilations": [2, 3], "strides": [2, 2]}),
    ([1, 10, 12], [3, 4, 5], [1, 1, 5], {}),
    ([1, 8, 18], [3, 4, 5], [1, 2, 4], {"strides": [1, 1, 2], "pads": [0, 0, 1, 0, 0, 0]}),
]


@pytest.mark.parametrize("x_shape,image,block,attrs", COL2IM_CASES)
def test_col2im_with_constant_shapes(cache_dir, x_shape, image, block, attrs):
    check_against_onnxruntime(_col2im(x_shape, image, block, **attrs), cache_dir)


def test_col2im_1d_matches_the_onnx_reference(cache_dir):
    # onnxruntime's 1-D Col2Im disagrees with the ONNX reference evaluator and the spec
    from onnx.reference import ReferenceEvaluator
    model = _col2im([2, 6, 7], [9], [3], dilations=[2], pads=[1, 1])
    feeds = random_inputs(model)
    expected = ReferenceEvaluator(model).run(None, feeds)[0]
    assert_close(nnbuild.compile(model, cache_dir=cache_dir).run(feeds)["y"], expected)


@pytest.mark.parametrize("x_shape,image,block,attrs", COL2IM_CASES[1:4])
def test_col2im_with_run_time_shapes_and_a_declared_output(cache_dir, x_shape, image, block,
                                                           attrs):
    c = x_shape[1] // int(np.prod(block))
    model = _col2im(x_shape, image, block, [x_shape[0], c] + image, constant=False, **attrs)
    feeds = {"x": np.random.default_rng(1).standard_normal(x_shape).astype(F32),
             "image": np.array(image, I64), "block": np.array(block, I64)}
    check_against_onnxruntime(model, cache_dir, feeds)


def test_col2im_run_time_shapes_that_disagree_are_a_shape_error(cache_dir):
    model = _col2im([2, 12, 16], [5, 5], [2, 2], [2, 3, 5, 5], constant=False)
    compiled = nnbuild.compile(model, cache_dir=cache_dir)
    x = np.ones([2, 12, 16], F32)
    for image, block in (([5, 6], [2, 2]), ([5, 5], [1, 4]), ([5, 5], [0, 2])):
        with pytest.raises(Exception, match="shape"):
            compiled.run({"x": x, "image": np.array(image, I64), "block": np.array(block, I64)})


def test_col2im_without_declaration_is_a_data_dependent_shape():
    with pytest.raises(nnbuild.ModelError, match="declare a static shape"):
        nnbuild.translate(_col2im([1, 4, 16], [5, 5], [2, 2], constant=False))


def test_col2im_blocks_that_do_not_tile_the_input_are_refused():
    with pytest.raises(nnbuild.ModelError, match="Col2Im"):
        nnbuild.translate(_col2im([1, 4, 15], [5, 5], [2, 2]))


def _deform_model(x, w, out, bias=False, mask=False, **attrs):
    """DeformConv of x [N, C, H, W] by w [O, C / group, kh, kw] to spatial `out`."""
    og = attrs.get("offset_group", 1)
    taps = w[2] * w[3]
    names = ["x", "w", "offset"] + (["b"] if bias else [""] if mask else []) + \
        (["mask"] if mask else [])
    node = helper.make_node("DeformConv", names, ["y"], **attrs)
    inputs = {"x": (F32, x), "w": (F32, w), "offset": (F32, [x[0], og * 2 * taps] + out)}
    if bias:
        inputs["b"] = (F32, [w[0]])
    if mask:
        inputs["mask"] = (F32, [x[0], og * taps] + out)
    return make_model([node], inputs, ["y"], opset=19)


DEFORM_CASES = [   # x, w, output spatial, bias, mask, attributes
    ([1, 1, 5, 5], [1, 1, 3, 3], [3, 3], False, False, {}),
    ([2, 4, 6, 7], [6, 2, 2, 3], [4, 3], True, True,
     {"group": 2, "offset_group": 2, "strides": [2, 2], "pads": [1, 0, 1, 1]}),
    ([1, 4, 7, 7], [2, 4, 3, 3], [3, 3], False, True,
     {"offset_group": 4, "dilations": [2, 2], "kernel_shape": [3, 3]}),
]


@pytest.mark.parametrize("x,w,out,bias,mask,attrs", DEFORM_CASES)
def test_deform_conv_matches_onnxruntime_and_the_onnx_reference(cache_dir, x, w, out, bias,
                                                                mask, attrs):
    from onnx.reference import ReferenceEvaluator
    model = _deform_model(x, w, out, bias, mask, **attrs)
    feeds = random_inputs(model, seed=4)
    feeds["offset"] = feeds["offset"] * 1.5        # taps land between pixels and outside
    ours = check_against_onnxruntime(model, cache_dir, feeds)["y"]
    assert_close(ours, ReferenceEvaluator(model).run(None, feeds)[0])


def test_deform_conv_with_zero_offsets_is_a_convolution(cache_dir):
    model = _deform_model([1, 3, 6, 6], [4, 3, 3, 3], [6, 6], pads=[1, 1, 1, 1])
    feeds = random_inputs(model)
    feeds["offset"] = np.zeros_like(feeds["offset"])
    conv = make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
                      {"x": (F32, [1, 3, 6, 6]), "w": (F32, [4, 3, 3, 3])}, ["y"])
    expected = nnbuild.compile(conv, cache_dir=cache_dir).run({"x": feeds["x"], "w": feeds["w"]})
    assert_close(nnbuild.compile(model, cache_dir=cache_dir).run(feeds)["y"], expected["y"])


def test_deform_conv_offset_of_the_wrong_shape_is_refused():
    with pytest.raises(nnbuild.ModelError, match="offset"):
        nnbuild.translate(_deform_model([1, 1, 5, 5], [1, 1, 3, 3], [2, 2]))


U8, I8, I32 = np.uint8, np.int8, np.int32


def _q8(dtype, shape, rng):
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, shape).astype(dtype)


@pytest.mark.parametrize("x_type,w_type", [(U8, U8), (U8, I8), (I8, I8)])
@pytest.mark.parametrize("x,w,attrs", [
    ([1, 2, 7, 7], [3, 2, 3, 3], {"pads": [1, 1, 1, 1]}),
    ([2, 4, 9], [6, 2, 3], {"group": 2, "strides": [2], "dilations": [2], "pads": [2, 1]}),
    ([1, 2, 4, 5, 5], [2, 2, 2, 3, 3], {"auto_pad": "SAME_UPPER"}),
])
def test_conv_integer_with_per_channel_zero_points_is_a_conv_of_shifted_operands(cache_dir, x_type, w_type, x, w,
                                                             attrs):
    from onnx.reference import ReferenceEvaluator
    rng = np.random.default_rng(7)
    node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], **attrs)
    inits = {"wz": _q8(w_type, [w[0]], rng)}
    model = make_model([node], {"x": (x_type, x), "w": (w_type, w), "xz": (x_type, [])}, ["y"],
                       inits, opset=10)
    feeds = {"x": _q8(x_type, x, rng), "w": _q8(w_type, w, rng),
             "xz": np.array(_q8(x_type, [], rng), x_type)}
    ours = nnbuild.compile(model, cache_dir=cache_dir).run(feeds)["y"]
    # the same as a float64 Conv of the operands less their zero points (ONNX reference)
    conv = make_model([helper.make_node("Conv", ["x", "w"], ["y"], **attrs)],
                      {"x": (np.float64, x), "w": (np.float64, w)}, ["y"])
    wz = inits["wz"].astype(np.float64).reshape([-1] + [1] * (len(w) - 1))
    expected = ReferenceEvaluator(conv).run(None, {
        "x": feeds["x"].astype(np.float64) - float(feeds["xz"]),
        "w": feeds["w"].astype(np.float64) - wz})[0]
    np.testing.assert_array_equal(ours, expected.astype(np.int32))


def test_conv_integer_matches_onnxruntime(cache_dir):
    # onnxruntime's ConvInteger takes u8 with one weight zero point only
    rng = np.random.default_rng(5)
    node = helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], pads=[1, 2, 0, 1],
                            strides=[2, 1])
    model = make_model([node], {"x": (U8, [2, 3, 8, 7]), "w": (U8, [4, 3, 3, 2]),
                                "xz": (U8, []), "wz": (U8, [])}, ["y"], opset=10)
    feeds = {"x": _q8(U8, [2, 3, 8, 7], rng), "w": _q8(U8, [4, 3, 3, 2], rng),
             "xz": np.array(131, U8), "wz": np.array(117, U8)}
    check_against_onnxruntime(model, cache_dir, feeds)


@pytest.mark.parametrize("x_type,w_type", [(U8, U8), (U8, I8), (I8, I8)])
@pytest.mark.parametrize("per_channel", [False, True])
def test_qlinear_conv_matches_onnxruntime(cache_dir, x_type, w_type, per_channel):
    rng = np.random.default_rng(11)
    x, w = [1, 4, 6, 6], [6, 2, 3, 3]
    n = w[0] if per_channel else 1
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
                            ["y"], group=2, pads=[1, 0, 1, 2], strides=[1, 2])
    inits = {"w": _q8(w_type, w, rng), "ws": rng.uniform(0.01, 0.05, [n]).astype(F32),
             "wz": (np.zeros([n], w_type) if w_type == I8 else _q8(w_type, [n], rng)),
             "b": rng.integers(-500, 500, [w[0]]).astype(I32)}
    model = make_model([node], {"x": (x_type, x), "xs": (F32, []), "xz": (x_type, []),
                                "ys": (F32, []), "yz": (x_type, [])}, ["y"], inits, opset=10)
    feeds = {"x": _q8(x_type, x, rng), "xs": np.array(0.05, F32),
             "xz": np.array(_q8(x_type, [], rng), x_type), "ys": np.array(0.3, F32),
             "yz": np.array(_q8(x_type, [], rng), x_type)}
    check_against_onnxruntime(model, cache_dir, feeds)


def test_conv_integer_refuses_float_operands():
    node = helper.make_node("ConvInteger", ["x", "w"], ["y"])
    model = make_model([node], {"x": (F32, [1, 1, 3, 3]), "w": (F32, [1, 1, 2, 2])}, ["y"],
                       opset=10)
    with pytest.raises(nnbuild.ModelError, match="supported: u8, i8"):
        nnbuild.translate(model)
