"""Pooling ops match onnxruntime on random inputs: MaxPool and AveragePool over 1-D, 2-D and
3-D windows with every attribute that changes the window (pads, strides, dilations, ceil_mode,
auto_pad, count_include_pad), MaxPool's Indices output, and the global pools."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild.errors import ModelError
from nnbuild.ir.graph import Node
from nnbuild.ops.pool import window
from helpers import (check_against_onnxruntime, check_at_thread_counts, make_model,
                     target_param)

F32 = np.float32


def pool_model(op, shape, opset=17, outputs=("y",), **attrs):
    node = helper.make_node(op, ["x"], list(outputs), **attrs)
    return make_model([node], {"x": (F32, shape)}, list(outputs), opset=opset)


WINDOWS = {
    "resnet-stem": dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    "2x2-stride-2": dict(kernel_shape=[2, 2], strides=[2, 2]),
    "asymmetric-pads": dict(kernel_shape=[3, 2], strides=[1, 2], pads=[0, 1, 2, 0]),
    "ceil-mode": dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    "ceil-mode-padded": dict(kernel_shape=[2, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
    "dilated": dict(kernel_shape=[2, 3], dilations=[2, 2], pads=[1, 2, 1, 2]),
    "same-upper": dict(kernel_shape=[3, 2], strides=[2, 2], auto_pad="SAME_UPPER"),
    "same-lower": dict(kernel_shape=[2, 3], strides=[2, 1], auto_pad="SAME_LOWER"),
    "valid": dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID"),
}


@pytest.mark.parametrize("name", WINDOWS)
def test_maxpool_2d(name, cache_dir):
    check_against_onnxruntime(pool_model("MaxPool", [2, 3, 9, 11], **WINDOWS[name]), cache_dir)


@pytest.mark.parametrize("name", [n for n in WINDOWS if n != "dilated"])
def test_averagepool_2d(name, cache_dir):
    nodes = [helper.make_node("AveragePool", ["x"], [f"y{c}"], count_include_pad=c,
                              **WINDOWS[name]) for c in (0, 1)]
    model = make_model(nodes, {"x": (F32, [2, 3, 9, 11])}, ["y0", "y1"])
    check_against_onnxruntime(model, cache_dir)


def test_averagepool_dilations_opset19(cache_dir):
    model = pool_model("AveragePool", [1, 2, 10, 9], opset=19, kernel_shape=[2, 3],
                       dilations=[2, 2], pads=[1, 0, 1, 2], count_include_pad=1)
    check_against_onnxruntime(model, cache_dir)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_1d_and_3d_windows(op, cache_dir):
    one = helper.make_node(op, ["a"], ["y1"], kernel_shape=[3], strides=[2], pads=[1, 1])
    three = helper.make_node(op, ["b"], ["y3"], kernel_shape=[2, 3, 2], strides=[1, 2, 2],
                             pads=[0, 1, 1, 1, 1, 0])
    model = make_model([one, three], {"a": (F32, [2, 3, 17]), "b": (F32, [1, 2, 5, 7, 6])},
                       ["y1", "y3"])
    check_against_onnxruntime(model, cache_dir)


@pytest.mark.parametrize("storage_order", [0, 1])
def test_maxpool_indices(storage_order, cache_dir):
    model = pool_model("MaxPool", [2, 3, 8, 7], outputs=("y", "i"), kernel_shape=[3, 3],
                       strides=[2, 2], pads=[1, 1, 1, 1], storage_order=storage_order)
    check_against_onnxruntime(model, cache_dir)


@pytest.mark.parametrize("op,opset,attrs", [
    ("MaxPool", 8, dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("MaxPool", 10, dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    ("AveragePool", 7, dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)),
    ("AveragePool", 11, dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
])
def test_older_opsets(op, opset, attrs, cache_dir):
    check_against_onnxruntime(pool_model(op, [1, 4, 9, 9], opset=opset, **attrs), cache_dir)


def test_global_pools(cache_dir):
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["avg"]),
             helper.make_node("GlobalMaxPool", ["x"], ["max"]),
             helper.make_node("GlobalAveragePool", ["v"], ["avg3d"])]
    model = make_model(nodes, {"x": (F32, [2, 5, 7, 7]), "v": (F32, [1, 3, 4, 5, 6])},
                       ["avg", "max", "avg3d"])
    check_against_onnxruntime(model, cache_dir)


def test_resnet_sized_maxpool(cache_dir):
    model = pool_model("MaxPool", [1, 64, 112, 112], kernel_shape=[3, 3], strides=[2, 2],
                       pads=[1, 1, 1, 1])
    check_against_onnxruntime(model, cache_dir)


def test_window_geometry():
    same = Node("MaxPool", ("x",), ("y",), dict(kernel_shape=[3, 3], strides=[2, 2],
                                                 auto_pad="SAME_LOWER"))
    w = window(same, (8, 7))
    assert w.out == (4, 4) and w.pads_begin == (1, 1) and w.pads_end == (0, 1)
    ceil = Node("MaxPool", ("x",), ("y",), dict(kernel_shape=[2], strides=[2], pads=[1, 1],
                                                 ceil_mode=1))
    assert window(ceil, (4,)).out == (3,)       # the 4th window would start in padding


def test_unsupported_dtype_is_a_clear_error(tmp_path):
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2])   # MaxPool takes f64
    model = make_model([node], {"x": (np.float64, [1, 1, 4, 4])}, ["y"])
    with pytest.raises(ModelError, match="supported: f32"):
        nnbuild.translate(model)


def test_lp_pool(cache_dir):
    nodes = [helper.make_node("LpPool", ["x"], ["p2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              strides=[2, 2]),
             helper.make_node("LpPool", ["x"], ["p3"], kernel_shape=[2, 2], p=3,
                              auto_pad="SAME_UPPER"),
             helper.make_node("LpPool", ["x"], ["p1"], kernel_shape=[2, 2], p=1,
                              dilations=[2, 2])]
    model = make_model(nodes, {"x": (np.float32, [1, 2, 7, 6])}, ["p2", "p3", "p1"], opset=18)
    check_against_onnxruntime(model, cache_dir)


# Rows long enough for vector runs next to border columns; a small plane (11 x 40: pooled through
# a padded copy, one run per tap over the whole plane) and a larger one (30 x 41: one run per tap
# over each row's interior, the border columns on the exact per-output path).
WIDE_WINDOWS = {
    "3x3-stride-1-padded": dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    "3x3-stride-2-padded": dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    "3x3-stride-2-ceil": dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    "2x3-stride-3-asymmetric": dict(kernel_shape=[2, 3], strides=[2, 3], pads=[0, 2, 1, 1]),
    "3x2-stride-4-ceil-padded": dict(kernel_shape=[3, 2], strides=[1, 4], pads=[1, 1, 0, 1],
                                     ceil_mode=1),
    "dilated-2-stride-2": dict(kernel_shape=[3, 3], strides=[2, 2], dilations=[2, 2],
                               pads=[2, 1, 0, 2]),
    "5x4-same-upper": dict(kernel_shape=[5, 4], auto_pad="SAME_UPPER"),
}


@pytest.mark.parametrize("height,width", [(11, 40), (30, 41)])
@pytest.mark.parametrize("name", WIDE_WINDOWS)
def test_wide_rows_interior_and_border(name, height, width, cache_dir):
    attrs = WIDE_WINDOWS[name]
    nodes = [helper.make_node("MaxPool", ["x"], ["max"], **attrs)]
    nodes += [helper.make_node("AveragePool", ["x"], [f"avg{c}"], count_include_pad=c, **attrs)
              for c in (0, 1)]
    model = make_model(nodes, {"x": (F32, [2, 3, height, width])}, ["max", "avg0", "avg1"],
                       opset=19)
    check_against_onnxruntime(model, cache_dir)


def test_maxpool_three_wide_windows_over_several_rows(cache_dir):
    """MaxPool windows 3 wide along w (no dilation) take the taps of up to three rows per pass
    over a run: 3-D windows of 2 x 2 (4 rows: 3, then 1), 3 x 3 (9: three passes) and 2 x 1 (2)
    rows, a 1-D window (1 row), border rows with fewer rows inside, strides 1, 2 and 3 along w;
    the results are window_max's (the same taps in the same order)."""
    nodes = [helper.make_node("MaxPool", ["v"], ["m223"], kernel_shape=[2, 2, 3],
                              strides=[1, 1, 2], pads=[0, 1, 1, 1, 0, 1]),
             helper.make_node("MaxPool", ["v"], ["m333"], kernel_shape=[3, 3, 3],
                              pads=[1, 1, 1, 1, 1, 1]),
             helper.make_node("MaxPool", ["v"], ["m213"], kernel_shape=[2, 1, 3],
                              strides=[1, 2, 3]),
             helper.make_node("MaxPool", ["a"], ["m3"], kernel_shape=[3], strides=[2],
                              pads=[1, 1])]
    model = make_model(nodes, {"v": (F32, [1, 2, 4, 5, 43]), "a": (F32, [2, 3, 61])},
                       ["m223", "m333", "m213", "m3"])
    check_against_onnxruntime(model, cache_dir)


@target_param(["generic", "x86-avx2", "x86-avx512"])
def test_pools_split_over_threads_are_bit_identical(target, tmp_path):
    """Enough planes for several tasks at 3 threads: the same bytes as at 1 thread, and onnxruntime's
    values, for the windowed pools (interior and border) and both global pools."""
    nodes = [helper.make_node("MaxPool", ["x"], ["max"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("AveragePool", ["x"], ["avg"], kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1], count_include_pad=1),
             helper.make_node("MaxPool", ["x"], ["max2"], kernel_shape=[3, 3], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["g"], ["gavg"]),
             helper.make_node("GlobalMaxPool", ["g"], ["gmax"])]
    model = make_model(nodes, {"x": (F32, [2, 32, 56, 57]), "g": (F32, [2, 64, 80, 81])},
                       ["max", "avg", "max2", "gavg", "gmax"])
    check_at_thread_counts(model, str(tmp_path), target)


def test_window_over_the_whole_plane(cache_dir):
    """A window as large as the input with one output per plane (the end of ResNet and
    Inception) takes the global pools' path."""
    nodes = [helper.make_node("AveragePool", ["x"], ["avg"], kernel_shape=[7, 7]),
             helper.make_node("MaxPool", ["x"], ["max"], kernel_shape=[7, 7]),
             helper.make_node("AveragePool", ["v"], ["avg1d"], kernel_shape=[37],
                              count_include_pad=1),
             helper.make_node("MaxPool", ["v"], ["max1d"], kernel_shape=[37])]
    model = make_model(nodes, {"x": (F32, [2, 40, 7, 7]), "v": (F32, [1, 5, 37])},
                       ["avg", "max", "avg1d", "max1d"])
    check_against_onnxruntime(model, cache_dir)


# 2-D MaxPool windows with border columns (pads, ceil mode), strides 1 and 2 along w, 1 to 5
# taps along w (dilated too) and 1 to 4 along h: x86-avx512 computes them in vector rows.
VECTOR_ROW_WINDOWS = {
    "3x3-s2-pad1": dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    "3x3-s2-ceil": dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
    "2x5-s1-pads": dict(kernel_shape=[2, 5], pads=[0, 2, 1, 3]),
    "4x2-s12-dilated": dict(kernel_shape=[4, 2], strides=[1, 2], dilations=[1, 3],
                            pads=[1, 1, 2, 1]),
    "1x3-s1-dilated": dict(kernel_shape=[1, 3], dilations=[1, 2], pads=[0, 2, 0, 2]),
    "3x4-s2-ceil-padded": dict(kernel_shape=[3, 4], strides=[2, 2], pads=[1, 3, 0, 3],
                               ceil_mode=1),
}


def test_maxpool_vector_rows_are_the_scalar_windows(tmp_path):
    """Every vector-row window, over rows of 61 and 37 (outputs of several vectors and a
    tail; planes too large for the small-plane copy) with many ties of +0.0 and -0.0:
    onnxruntime's values, the same bytes at 1 and 3 threads, and the same bytes on every
    target (the first maximum in window order, as the generic target's window by window
    loops)."""
    names = list(VECTOR_ROW_WINDOWS)
    nodes = [helper.make_node("MaxPool", [src], [f"{name}-{src}"], **VECTOR_ROW_WINDOWS[name])
             for name in names for src in ("x", "v")]
    outputs = [node.output[0] for node in nodes]
    model = make_model(nodes, {"x": (F32, [1, 3, 21, 61]), "v": (F32, [1, 2, 33, 37])}, outputs)
    rng = np.random.default_rng(5)
    feeds = {}
    for name, shape in (("x", (1, 3, 21, 61)), ("v", (1, 2, 33, 37))):
        value = rng.integers(-3, 2, size=shape).astype(F32) * F32(0.5)
        value[rng.random(shape) < 0.3] = F32(-0.0)
        feeds[name] = value
    results = {target: check_at_thread_counts(model, str(tmp_path / target), target, feeds=feeds)
               for target in ("generic", "x86-avx2", "x86-avx512")
               if target in nnbuild.targets.supported_here()}
    for target, got in results.items():
        for name in outputs:
            assert got[name].tobytes() == results["generic"][name].tobytes(), (target, name)


# 2-D windows that x86 computes in padded planes (a plane of up to 4096 floats with its
# padding: each row reduced along w in one run, then the rows along h) or, larger, in vector
# rows (AveragePool too): Inception's 3x3/1 pad 1 averages and its 3x3/2 maxima, odd sizes
# (row tails), a dilated and an asymmetric window, and one plane too large for the copy.
PLANE_WINDOWS = {
    "3x3-s1-pad1": dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    "3x3-s2-end-pad": dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1]),
    "2x5-s21-pads": dict(kernel_shape=[2, 5], strides=[2, 1], pads=[1, 2, 0, 3]),
    "3x2-dilated": dict(kernel_shape=[3, 2], dilations=[2, 3], pads=[2, 1, 1, 1]),
}


@target_param(["generic", "x86-avx2", "x86-avx512"])
def test_pools_over_padded_planes_and_vector_rows(target, tmp_path):
    """onnxruntime's values and the same bytes at 1 and 3 threads, on 7x7, 14x14 and 13x29
    planes (several planes per task) and a 67x70 one (vector rows), MaxPool and both counts
    of AveragePool."""
    nodes, outputs = [], []
    for name, attrs in PLANE_WINDOWS.items():
        for src in ("a", "b", "c", "d"):
            nodes.append(helper.make_node("MaxPool", [src], [f"max-{name}-{src}"], **attrs))
            nodes += [helper.make_node("AveragePool", [src], [f"avg{c}-{name}-{src}"],
                                       count_include_pad=c, **attrs) for c in (0, 1)]
    outputs = [node.output[0] for node in nodes]
    model = make_model(nodes, {"a": (F32, [1, 40, 7, 7]), "b": (F32, [1, 24, 14, 14]),
                               "c": (F32, [2, 5, 13, 29]), "d": (F32, [1, 2, 67, 70])},
                       outputs, opset=19)
    check_at_thread_counts(model, str(tmp_path), target)
