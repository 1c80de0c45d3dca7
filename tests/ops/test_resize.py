"""Resize and Upsample match onnxruntime: nearest (every rounding mode, any rank, any element
type), linear and cubic (NCHW), each coordinate transformation, scales or sizes, opsets 10 to
19, and Upsample 7 / 9. The generated C builds without warnings."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from helpers import make_model
from nnbuild.errors import ModelError
from nnbuild.ops import registry
from nnbuild.testing import assert_close
from test_shape_ops import check

F32, I64 = np.float32, np.int64
EMPTY = np.zeros(0, F32)


def resize_model(x_shape, opset=13, dtype=F32, variants=None, **one):
    """Resize(x, roi, scales, sizes) once per variant (outputs y0, y1, ...); a variant is a
    dict of scales / sizes / roi (constant inputs, "" where omitted) and attributes."""
    nodes, inits = [], {}
    for k, variant in enumerate(variants or [one]):
        attrs, inputs = dict(variant), ["x"]
        for name in ("roi", "scales", "sizes"):
            value = attrs.pop(name, None)
            inputs.append("" if value is None else f"{name}{k}")
            if value is not None:
                inits[f"{name}{k}"] = np.asarray(value, I64 if name == "sizes" else F32)
        while inputs[-1] == "":
            inputs.pop()
        nodes.append(helper.make_node("Resize", inputs, [f"y{k}"], **attrs))
    return make_model(nodes, {"x": (dtype, x_shape)}, [f"y{k}" for k in range(len(nodes))],
                      inits, opset=opset)


@pytest.mark.parametrize("coord", ["half_pixel", "asymmetric", "align_corners",
                                   "pytorch_half_pixel", "tf_half_pixel_for_nn"])
def test_nearest_modes(coord, cache_dir):
    """Every rounding mode, upscaling one axis and downscaling another."""
    variants = [dict(scales=[1, 1, 1.5, 0.6], mode="nearest", nearest_mode=m,
                     coordinate_transformation_mode=coord)
                for m in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")]
    check(resize_model([1, 2, 4, 5], variants=variants), cache_dir)


@pytest.mark.parametrize("coord", ["half_pixel", "asymmetric", "align_corners",
                                   "pytorch_half_pixel"])
def test_linear(coord, cache_dir):
    variants = [dict(scales=s, mode="linear", coordinate_transformation_mode=coord)
                for s in ([1, 1, 2, 2], [1, 1, 0.5, 0.75], [1, 1, 1.7, 2.3])]
    model = resize_model([2, 3, 4, 6], variants=variants)
    if coord != "align_corners":
        check(model, cache_dir)
        return
    # the spec's length_resized is scale * length_original (6 * 0.75 = 4.5, not the 4 output
    # elements): the onnx reference and the official cases use it, onnxruntime does not
    from onnx.reference import ReferenceEvaluator
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 6)).astype(F32)
    expected = ReferenceEvaluator(model).run(None, {"x": x})
    actual = nnbuild.compile(model, cache_dir=cache_dir).run({"x": x})
    for k, want in enumerate(expected):
        assert_close(actual[f"y{k}"], want, what=f"y{k}")


@pytest.mark.parametrize("x_shape,scales", [([4, 6], [1.5, 0.5]),
                                            ([1, 2, 3, 4, 2], [1, 1, 2, 0.5, 1.5])])
def test_linear_2d_and_trilinear(x_shape, scales, cache_dir):
    check(resize_model(x_shape, scales=scales, mode="linear"), cache_dir)


def test_runtime_scales_are_a_clear_error():
    model = make_model([helper.make_node("Resize", ["x", "", "s"], ["y"])],
                       {"x": (F32, [1, 1, 2, 2]), "s": (F32, [4])}, ["y"], opset=13)
    with pytest.raises(ModelError, match="scales .s. must be known at compile time, or the model "
                                         "must declare a static shape for output .y."):
        nnbuild.translate(model)


@pytest.mark.parametrize("coord", ["half_pixel", "align_corners", "asymmetric"])
def test_cubic(coord, cache_dir):
    variants = [dict(scales=[1, 1, 1.6, 0.5], mode="cubic", cubic_coeff_a=a, exclude_outside=e,
                     coordinate_transformation_mode=coord) for e, a in ((0, -0.75), (1, -0.5))]
    check(resize_model([1, 2, 5, 6], variants=variants), cache_dir)


def test_sizes_input(cache_dir):
    variants = [dict(sizes=[1, 3, 12, 3], mode=m) for m in ("nearest", "linear", "cubic")]
    check(resize_model([1, 3, 7, 5], variants=variants), cache_dir)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_tf_crop_and_resize_extrapolates(mode, cache_dir):
    model = resize_model([1, 1, 6, 6], opset=13, sizes=[1, 1, 5, 4],
                         roi=[0, 0, -0.2, 0.3, 1, 1, 0.9, 1.4], mode=mode,
                         coordinate_transformation_mode="tf_crop_and_resize",
                         extrapolation_value=-7.0)
    check(model, cache_dir)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_opset10_resize(mode, cache_dir):
    model = make_model([helper.make_node("Resize", ["x", "s"], ["y"], mode=mode)],
                       {"x": (F32, [1, 2, 4, 4])}, ["y"],
                       {"s": np.array([1, 1, 2, 0.5], F32)}, opset=10)
    check(model, cache_dir)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_opset11_with_empty_roi_and_scales(mode, cache_dir):
    model = make_model([helper.make_node("Resize", ["x", "roi", "scales", "sizes"], ["y"],
                                         mode=mode)],
                       {"x": (F32, [1, 2, 3, 4])}, ["y"],
                       {"roi": EMPTY, "scales": EMPTY, "sizes": np.array([1, 2, 6, 6], I64)},
                       opset=11)
    check(model, cache_dir)


@pytest.mark.parametrize("policy", ["stretch", "not_larger", "not_smaller"])
def test_opset18_axes_and_aspect_ratio(policy, cache_dir):
    model = resize_model([1, 2, 4, 6], opset=18, sizes=[7, 7], axes=[2, 3], mode="linear",
                         keep_aspect_ratio_policy=policy)
    check(model, cache_dir)


def test_opset19_half_pixel_symmetric(cache_dir):
    model = resize_model([1, 1, 5, 7], opset=19, scales=[1, 1, 1.5, 0.7], mode="linear",
                         coordinate_transformation_mode="half_pixel_symmetric")
    check(model, cache_dir)


def check_against_reference(model, cache_dir, x):
    """For what onnxruntime does not implement: compare with the op's numpy reference."""
    graph = nnbuild.translate(model)
    node = graph.nodes[0]
    args = [graph.constants.get(i) if i else None for i in node.inputs[1:]]
    expected = registry.get(node).reference(node, x, *args)[0]
    actual = nnbuild.compile(model, cache_dir=cache_dir).run({"x": x})["y0"]
    assert_close(actual, expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int32, np.float16])
def test_nearest_any_rank_and_type(dtype, cache_dir):
    """Nearest only moves elements: a 5-D tensor resized on every axis, whatever its type."""
    model = resize_model([2, 3, 2, 3, 4], scales=[1.5, 1, 2, 0.7, 1.25], mode="nearest",
                         nearest_mode="floor", dtype=dtype)
    check(model, cache_dir)


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.float64])
def test_nearest_types_onnxruntime_lacks(dtype, cache_dir):
    model = resize_model([2, 3, 4], scales=[1, 2, 0.75], mode="nearest", dtype=dtype)
    x = np.random.default_rng(0).integers(0, 2 if dtype == np.bool_ else 100, (2, 3, 4))
    check_against_reference(model, cache_dir, x.astype(dtype))


def test_linear_of_an_integer_tensor_is_a_clear_error():
    model = resize_model([1, 1, 2, 2], scales=[1, 1, 2, 2], mode="linear", dtype=np.int32)
    with pytest.raises(ModelError, match="linear Resize supports f32 and f64"):
        nnbuild.translate(model)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_f64_interpolation_matches_the_reference(mode, cache_dir):
    model = resize_model([1, 2, 3, 4], scales=[1, 1, 2, 1.5], mode=mode, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 4))
    check_against_reference(model, cache_dir, x)


@pytest.mark.parametrize("opset", [7, 9])
def test_upsample(opset, cache_dir):
    """Opset 7 takes scales as an attribute, opset 9 as an input."""
    modes = ["nearest", "linear"]
    if opset == 7:
        nodes = [helper.make_node("Upsample", ["x"], [f"y_{m}"], mode=m,
                                  scales=[1.0, 1.0, 2.0, 3.0]) for m in modes]
        inits = {}
    else:
        nodes = [helper.make_node("Upsample", ["x", "s"], [f"y_{m}"], mode=m) for m in modes]
        inits = {"s": np.array([1, 1, 2.5, 1.5], F32)}
    check(make_model(nodes, {"x": (F32, [1, 2, 3, 4])}, [f"y_{m}" for m in modes], inits,
                     opset=opset), cache_dir)
