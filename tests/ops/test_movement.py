"""Data-movement ops match onnxruntime for their attributes, opset forms and element types:
Transpose, Concat, Split, Slice, Gather, GatherElements, Tile, Expand, Pad, DepthToSpace,
SpaceToDepth and Range. The generated C builds without warnings."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from helpers import make_model, random_inputs
from nnbuild.errors import ModelError
from test_shape_ops import check

F32, I64, I32 = np.float32, np.int64, np.int32
ALL_TYPES = [np.float32, np.float16, np.float64, np.int8, np.uint8, np.int32, np.int64, np.bool_]


def test_transpose(cache_dir):
    perms = [None, [0, 2, 1, 3], [3, 1, 0, 2], [1, 2, 3, 0]]     # None: reverse the axes
    nodes = [helper.make_node("Transpose", ["x"], [f"y{k}"], **({"perm": p} if p else {}))
             for k, p in enumerate(perms)]
    check(make_model(nodes, {"x": (F32, [2, 3, 4, 5])}, [f"y{k}" for k in range(len(perms))]),
          cache_dir)


@pytest.mark.parametrize("dtype", ALL_TYPES)
def test_movement_for_every_element_type(dtype, cache_dir):
    """Transpose, Concat, Slice, Gather, Tile, Pad and Split only move bytes, whatever they are."""
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
             helper.make_node("Concat", ["x", "x"], ["c"], axis=1),
             helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["s"]),
             helper.make_node("Gather", ["x", "idx"], ["g"], axis=2),
             helper.make_node("Tile", ["x", "reps"], ["ti"]),
             helper.make_node("Pad", ["x", "pads"], ["p"], mode="edge"),
             helper.make_node("Split", ["x"], ["sa", "sb"], axis=2)]
    inits = {"st": np.array([0, -1], I64), "en": np.array([2, -100], I64),
             "ax": np.array([0, 2], I64), "sp": np.array([1, -2], I64),
             "idx": np.array([[3, -1], [0, 0]], I64), "reps": np.array([1, 2, 2], I64),
             "pads": np.array([0, 1, 2, 1, 0, 1], I64)}
    check(make_model(nodes, {"x": (dtype, [2, 3, 4])}, ["t", "c", "s", "g", "ti", "p", "sa", "sb"],
                     inits), cache_dir)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(axis, cache_dir):
    shapes = {0: ([2, 3, 4], [1, 3, 4]), 1: ([2, 3, 4], [2, 5, 4]),
              -1: ([2, 3, 4], [2, 3, 1])}[axis]
    model = make_model([helper.make_node("Concat", ["a", "b", "k"], ["y"], axis=axis)],
                       {"a": (F32, shapes[0]), "b": (F32, shapes[1])}, ["y"],
                       {"k": np.arange(np.prod(shapes[1]), dtype=F32).reshape(shapes[1])})
    check(model, cache_dir)


def test_concat_with_an_empty_input(cache_dir):
    model = make_model([helper.make_node("Concat", ["a", "e", "a"], ["y"], axis=1)],
                       {"a": (F32, [2, 3]), "e": (F32, [2, 0])}, ["y"])
    check(model, cache_dir)


@pytest.mark.parametrize("opset,form", [(11, "attribute"), (13, "input"), (13, "equal"),
                                        (18, "num_outputs")])
def test_split(opset, form, cache_dir):
    inputs, attrs, inits, outs = ["x"], {"axis": 1}, {}, ["a", "b", "c"]
    if form == "attribute":
        attrs["split"] = [1, 4, 2]
    elif form == "input":
        inputs.append("split")
        inits["split"] = np.array([3, 0, 4], I64)
    elif form == "num_outputs":
        attrs["num_outputs"] = 3            # 7 -> 3, 3, 1
    x_shape = [2, 6, 3] if form == "equal" else [2, 7, 3]
    check(make_model([helper.make_node("Split", inputs, outs, **attrs)], {"x": (F32, x_shape)},
                     outs, inits, opset=opset), cache_dir)


def test_slice_opset9_attributes(cache_dir):
    node = helper.make_node("Slice", ["x"], ["y"], starts=[1, -3], ends=[1000, -1], axes=[0, 2])
    check(make_model([node], {"x": (F32, [3, 4, 5])}, ["y"], opset=9), cache_dir)


SLICES = {   # starts, ends, axes, steps
    "positive steps": ([0, 1], [3, 5], [1, 2], [2, 3]),
    "negative steps": ([-1, 4], [-100, 0], [0, 2], [-1, -2]),
    "clamped": ([-(1 << 62), 2], [1 << 62, 1 << 62], [1, -1], [1, 1]),
    "reverse all": ([-1], [-(1 << 63)], [2], [-1]),
    "no axes, no steps": ([1, 0, 2], [3, 3, 4], None, None),
    "empty": ([2], [1], [0], [1]),
}


def test_slice_opset13_inputs(cache_dir):
    nodes, inits = [], {}
    for k, (starts, ends, axes, steps) in enumerate(SLICES.values()):
        inputs = [f"s{k}", f"e{k}"] + ([f"a{k}", f"t{k}"] if axes is not None else [])
        for name, value in zip(inputs, (starts, ends, axes, steps)):
            inits[name] = np.array(value, I64)
        nodes.append(helper.make_node("Slice", ["x"] + inputs, [f"y{k}"]))
    check(make_model(nodes, {"x": (F32, [3, 4, 5])}, [f"y{k}" for k in range(len(nodes))],
                     inits, opset=13), cache_dir)


def test_gather_with_constant_indices(cache_dir):
    cases = [(0, [2, 0, -1]), (1, [[1, -4], [3, 3]]), (-1, 1), (2, [0, 1, 2, 3])]  # axis, indices
    nodes = [helper.make_node("Gather", ["x", f"i{k}"], [f"y{k}"], axis=axis)
             for k, (axis, _) in enumerate(cases)]
    model = make_model(nodes, {"x": (F32, [3, 4, 4])}, [f"y{k}" for k in range(len(cases))],
                       {f"i{k}": np.array(idx, I64) for k, (_, idx) in enumerate(cases)})
    check(model, cache_dir)


def test_slice_bounds_computed_by_the_graph_at_O0(cache_dir):
    """At -O0 nothing folds: the kernel still reads the bounds Shape -> Gather computed."""
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "last"], ["ends"]),
             helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"]),
             helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect")]
    model = make_model(nodes, {"x": (F32, [2, 6])}, ["y", "p"],
                       {"last": np.array([1], I64), "starts": np.array([2], I64),
                        "axes": np.array([1], I64), "pads": np.array([0, 2, 0, 1], I64)})
    check(model, cache_dir, opt_level=0)


@pytest.mark.parametrize("axis,idx_dtype,idx_shape", [(0, I64, [2, 2]), (1, I32, [5]),
                                                      (2, I64, []), (-1, I32, [3, 1])])
def test_gather_with_runtime_indices(axis, idx_dtype, idx_shape, cache_dir):
    x_shape = [3, 4, 6]
    n = x_shape[axis]
    model = make_model([helper.make_node("Gather", ["x", "i"], ["y"], axis=axis)],
                       {"x": (F32, x_shape), "i": (idx_dtype, idx_shape)}, ["y"])
    feeds = random_inputs(model)
    feeds["i"] = np.random.default_rng(4).integers(-n, n, idx_shape).astype(idx_dtype)
    check(model, cache_dir, feeds)


def test_gather_constant_index_out_of_range_is_an_error():
    model = make_model([helper.make_node("Gather", ["x", "i"], ["y"])], {"x": (F32, [3, 4])},
                       ["y"], {"i": np.array([3], I64)})
    with pytest.raises(ModelError, match="out of range"):
        nnbuild.translate(model)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements(axis, cache_dir):
    x_shape, idx_shape = [3, 4, 5], [2, 4, 3] if axis != 1 else [3, 6, 5]
    model = make_model([helper.make_node("GatherElements", ["x", "i"], ["y"], axis=axis)],
                       {"x": (F32, x_shape), "i": (I64, idx_shape)}, ["y"])
    n = x_shape[axis]
    feeds = random_inputs(model)
    feeds["i"] = np.random.default_rng(5).integers(-n, n, idx_shape).astype(I64)
    check(model, cache_dir, feeds)


def test_tile(cache_dir):
    repeats = [[1, 1, 1], [2, 1, 3], [1, 3, 1], [3, 2, 2]]
    nodes = [helper.make_node("Tile", ["x", f"r{k}"], [f"y{k}"]) for k in range(len(repeats))]
    model = make_model(nodes, {"x": (F32, [2, 3, 5])}, [f"y{k}" for k in range(len(repeats))],
                       {f"r{k}": np.array(r, I64) for k, r in enumerate(repeats)})
    check(model, cache_dir)


def test_expand(cache_dir):
    cases = [([3, 1], [2, 3, 4]), ([1, 5], [5, 1]), ([2, 1, 6], [1]), ([4], [3, 2, 4])]
    nodes = [helper.make_node("Expand", [f"x{k}", f"s{k}"], [f"y{k}"]) for k in range(len(cases))]
    model = make_model(nodes, {f"x{k}": (F32, x) for k, (x, _) in enumerate(cases)},
                       [f"y{k}" for k in range(len(cases))],
                       {f"s{k}": np.array(s, I64) for k, (_, s) in enumerate(cases)})
    check(model, cache_dir)


def test_pad_opset2_attributes(cache_dir):
    """Before opset 11, pads and value are attributes; each mode is one node of the model."""
    modes = ["constant", "reflect", "edge"]
    nodes = [helper.make_node("Pad", ["x"], [f"y_{m}"], mode=m, pads=[0, 1, 2, 0, 2, 1],
                              **({"value": 1.5} if m == "constant" else {})) for m in modes]
    check(make_model(nodes, {"x": (F32, [2, 3, 4])}, [f"y_{m}" for m in modes], opset=2),
          cache_dir)


def test_pad_opset13_inputs(cache_dir):
    """Pads are inputs; negative pads crop."""
    cases = [("constant", [1, 0, 2, 2, 1, 0]), ("constant", [-1, 2, 0, 1, -1, -2]),
             ("reflect", [1, 2, 3, 1, 1, 3]), ("edge", [2, 0, -1, 0, 3, 2])]
    nodes = [helper.make_node("Pad", ["x", f"pads{k}"] + (["v"] if mode == "constant" else []),
                              [f"y{k}"], mode=mode) for k, (mode, _) in enumerate(cases)]
    model = make_model(nodes, {"x": (F32, [3, 4, 5])}, [f"y{k}" for k in range(len(cases))],
                       {**{f"pads{k}": np.array(p, I64) for k, (_, p) in enumerate(cases)},
                        "v": np.array(-2.5, F32)}, opset=13)
    check(model, cache_dir)


def test_pad_runtime_constant_value_and_int_type(cache_dir):
    model = make_model([helper.make_node("Pad", ["x", "pads", "v"], ["y"])],
                       {"x": (I32, [3, 4]), "v": (I32, [])}, ["y"],
                       {"pads": np.array([1, 2, 0, 1], I64)}, opset=13)
    check(model, cache_dir, {"x": np.arange(12, dtype=I32).reshape(3, 4), "v": np.array(7, I32)})


def test_pad_opset19_axes_and_wrap(cache_dir):
    modes = ["constant", "wrap", "reflect"]
    nodes = [helper.make_node("Pad", ["x", "pads", "", "axes"], [f"y_{m}"], mode=m) for m in modes]
    model = make_model(nodes, {"x": (F32, [2, 3, 4])}, [f"y_{m}" for m in modes],
                       {"pads": np.array([2, 1, 1, 2], I64), "axes": np.array([-1, 1], I64)},
                       opset=19)
    check(model, cache_dir)


def test_depth_to_space(cache_dir):
    nodes = [helper.make_node("DepthToSpace", ["x"], [f"y_{m}"], blocksize=2, mode=m)
             for m in ("DCR", "CRD")]
    check(make_model(nodes, {"x": (F32, [2, 8, 3, 4])}, ["y_DCR", "y_CRD"], opset=13), cache_dir)


def test_space_to_depth(cache_dir):
    model = make_model([helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=3)],
                       {"x": (F32, [1, 2, 6, 9])}, ["y"], opset=13)
    check(model, cache_dir)


def test_space_to_depth_crd_mode(cache_dir):
    # opset 28 adds mode; CRD keeps each channel's b*b block offsets together
    model = make_model([helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=2, mode="CRD")],
                       {"x": (F32, [1, 2, 4, 6])}, ["y"], opset=28)
    x = np.arange(48, dtype=F32).reshape(1, 2, 4, 6)
    expected = x.reshape(1, 2, 2, 2, 3, 2).transpose(0, 1, 3, 5, 2, 4).reshape(1, 8, 2, 3)
    y = nnbuild.compile(model, cache_dir=cache_dir).run({"x": x})["y"]
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("opt_level", [0, 2])
def test_range(opt_level, cache_dir):
    nodes = [helper.make_node("Range", ["s", "l", "d"], ["r"]),
             helper.make_node("Range", ["fs", "fl", "fd"], ["f"]),
             helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "one"], ["n"]),
             helper.make_node("Range", ["zero", "n", "one"], ["ar"])]
    model = make_model(nodes, {"x": (F32, [2, 7])}, ["r", "f", "ar"],
                       {"s": np.array(10, I64), "l": np.array(1, I64), "d": np.array(-3, I64),
                        "fs": np.array(0.5, F32), "fl": np.array(3.0, F32),
                        "fd": np.array(0.75, F32), "zero": np.array(0, I64),
                        "one": np.array(1, I64)})
    check(model, cache_dir, opt_level=opt_level)
