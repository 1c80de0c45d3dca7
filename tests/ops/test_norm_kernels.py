"""The float32 normalization kernels (hal/generic/norm.c) on shapes that reach their edges,
for every target this CPU runs: BatchNormalization (planes split), LRN (window sums per
BLOCK of 256 positions, a short last block, windows clipped at the first and last channels),
LayerNormalization (16-lane partial sums with a tail, a large common offset that a one-pass
variance would cancel away), Softmax along the last axis (lanes) and along a middle axis
(columns side by side, more than one BLOCK), LogSoftmax, with -inf and widely spread inputs.

Each shape is large enough that the kernel splits its rows / planes over the thread pool at
3 threads (nn_task_count, with each kernel's per-element cost); the outputs at 1 and 3
threads must be the same bytes, and match onnxruntime within OP_TOLERANCE."""
import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild.testing import OP_TOLERANCE, assert_close
from helpers import make_model, onnxruntime_outputs, target_param

F32 = np.float32


def check_threads_and_onnxruntime(model, feeds, target, cache_dir):
    compiled = nnbuild.compile(model, cache_dir=cache_dir, target=target)
    expected = onnxruntime_outputs(model, feeds)
    compiled.set_num_threads(1)
    one = compiled.run(feeds)
    compiled.set_num_threads(3)
    three = compiled.run(feeds)
    for name, want in expected.items():
        assert one[name].tobytes() == three[name].tobytes(), f"{name}: 3 threads vs 1 differ"
        assert_close(one[name], want, OP_TOLERANCE, what=f"{target} output {name}")


@target_param()
def test_batchnorm_planes_and_threads(target, cache_dir):
    # 2 x 37 planes of 61 x 59 (not a multiple of any vector width)
    rng = np.random.default_rng(10)
    params = {k: rng.standard_normal(37).astype(F32) for k in ("s", "b", "m")}
    params["v"] = (np.abs(rng.standard_normal(37)) + 0.1).astype(F32)
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)
    model = make_model([node], {"x": (F32, [2, 37, 61, 59])}, ["y"], params, opset=15)
    feeds = {"x": rng.standard_normal((2, 37, 61, 59)).astype(F32)}
    check_threads_and_onnxruntime(model, feeds, target, cache_dir)


@target_param()
def test_lrn_blocks_windows_and_threads(target, cache_dir):
    # [3, 24, 23, 29]: 667 positions per plane = two full blocks and a tail of 155;
    # [2, 7, 15, 20] with a window of 3 and a large bias; inputs up to ~40 in size
    nodes = [helper.make_node("LRN", ["x"], ["y"], size=5),
             helper.make_node("LRN", ["v"], ["w"], size=3, alpha=0.002, beta=0.6, bias=2.0)]
    model = make_model(nodes, {"x": (F32, [3, 24, 23, 29]), "v": (F32, [2, 7, 15, 20])},
                       ["y", "w"])
    rng = np.random.default_rng(11)
    feeds = {"x": (rng.standard_normal((3, 24, 23, 29)) * 10).astype(F32),
             "v": (rng.standard_normal((2, 7, 15, 20)) * 40).astype(F32)}
    check_threads_and_onnxruntime(model, feeds, target, cache_dir)


@target_param()
def test_layer_normalization_rows_lanes_and_threads(target, cache_dir):
    # rows of 211 (13 lanes-wide steps and a tail of 3), 1015 of them; the second node
    # normalises rows of 203 * 211 and also returns Mean and InvStdDev; values sit at 1000
    # with spread 1, so the variance only survives a two-pass (x - mean) computation
    shape = [5, 203, 211]
    rng = np.random.default_rng(12)
    params = {"s1": rng.standard_normal(shape[-1:]).astype(F32),
              "b1": rng.standard_normal(shape[-1:]).astype(F32),
              "s2": rng.standard_normal(shape[-2:]).astype(F32)}
    nodes = [helper.make_node("LayerNormalization", ["x", "s1", "b1"], ["y"], epsilon=1e-3),
             helper.make_node("LayerNormalization", ["x", "s2"], ["z", "mean", "inv"], axis=-2)]
    model = make_model(nodes, {"x": (F32, shape)}, ["y", "z", "mean", "inv"], params)
    feeds = {"x": (rng.standard_normal(shape) + 1000).astype(F32)}
    check_threads_and_onnxruntime(model, feeds, target, cache_dir)


@target_param()
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_lines_columns_and_threads(op, target, cache_dir):
    # axis 1 of [12, 37, 333]: 333 columns side by side (a block of 256 and one of 77);
    # the last axis of [97, 1001]: 62 lane-wide steps and a tail of 9. Spread 30, and some
    # -inf entries (masked positions) that must come out as 0 (Softmax) / -inf (LogSoftmax)
    nodes = [helper.make_node(op, ["x"], ["y"], axis=1),
             helper.make_node(op, ["v"], ["w"], axis=-1)]
    model = make_model(nodes, {"x": (F32, [12, 37, 333]), "v": (F32, [97, 1001])}, ["y", "w"],
                       opset=13)
    rng = np.random.default_rng(13)
    feeds = {"x": (rng.standard_normal((12, 37, 333)) * 30).astype(F32),
             "v": (rng.standard_normal((97, 1001)) * 30).astype(F32)}
    for x in feeds.values():
        x.reshape(-1)[rng.choice(x.size, x.size // 50, replace=False)] = -np.inf
    check_threads_and_onnxruntime(model, feeds, target, cache_dir)
