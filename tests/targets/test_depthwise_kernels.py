"""Depthwise convolution (Conv with one input channel per group) on every target, on edge
shapes, against onnxruntime, and bit-identical at 1 and 3 threads.

The vector path (templates/hal/common/nn_depthwise_driver.h; x86-avx2 and x86-avx512 with 8-
and 16-float vectors, arm64-neon with 4) copies bands of output rows' input, zero-padded and
split into stride phases along w, into a stack buffer, and computes VL outputs of a row per
vector; 2-D 3x3 and 5x5 kernels with equal strides 1 or 2 and
no dilation are unrolled over 4 output rows, everything else takes a generic vector loop, and
rows too wide for the buffer the scalar loop nest. Small 2-D planes whose rows would waste most
of a vector (7-wide rows in 16 lanes) are computed along the flattened plane instead (phase
planes along h and w, a few garbage columns per row computed and dropped). On x86, 1-D and 2-D
problems with one output per channel, output rows narrower than two vectors (strided ones:
also narrower than 16) and at least half a vector of channels take channel blocks instead: VL channels transposed into a buffer of
(row, column, channel) vectors, VL positions of a band computed at once and transposed back
(the "ch_" cases: partial last blocks, batch 2, stride 2 and 3, dilation, 5x5 and 7x7 kernels,
padding wider than the image, several bands with a shorter last one). The cases cover what
that must get right:
rows shorter than one vector (1, 7, 14 wide; the flattened path for 7x7 at stride 1 and 2,
2x2 stride 2, 1-D), tails, rows wider than several vectors, planes
that need several bands (and a last band shorter than the others), strides 1, 2 and 3 and
different along h and w, odd input sizes with stride 2 (the last phase one column short),
asymmetric and zero padding, padding wider than the image, dilation, kernels 1x1, 2x2, 3x3,
5x5 and 7x7, a channel multiplier (several output planes per input channel) with batch 2,
no bias, 1-D and 3-D kernels, rows too wide for the buffer, and problems the pool splits into
ranges of output rows (every channel each; one image, 2-D, the bands) at 3 threads.
"""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from nnbuild.testing import OP_TOLERANCE
from helpers import (best_cpu_seconds, check_at_thread_counts, make_model, random_inputs,
                     target_param)
import test_arm64     # the cross build and qemu run of arm64-neon apps

# name: (input shape [N, C, spatial...], multiplier, kernel, attributes, bias)
CASES = {
    "s1_14": ([1, 19, 14, 14], 1, [3, 3], {"pads": [1, 1, 1, 1]}, True),
    "s1_7": ([1, 20, 7, 7], 1, [3, 3], {"pads": [1, 1, 1, 1]}, True),
    "s1_wide": ([1, 3, 6, 150], 1, [3, 3], {"pads": [1, 1, 1, 1]}, True),
    "s1_bands": ([1, 2, 91, 120], 1, [3, 3], {"pads": [1, 1, 1, 1]}, True),
    "s2_odd": ([1, 7, 15, 35], 1, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]}, True),
    "s2_same_upper": ([1, 5, 16, 33], 1, [3, 3], {"strides": [2, 2], "pads": [0, 0, 1, 1]}, False),
    "s2_14_to_7": ([1, 9, 14, 14], 1, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]}, True),
    "s2_bands": ([1, 2, 150, 113], 1, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]}, True),
    # big enough for several tasks at 3 threads: the bands' tasks take ranges of output rows
    # (as s1_bands), which start mid-band and mid-row-block
    "s2_split_rows": ([1, 6, 101, 90], 1, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]},
                      True),
    "5x5_s1": ([1, 6, 17, 29], 1, [5, 5], {"pads": [2, 2, 2, 2]}, True),
    "5x5_s2": ([1, 4, 21, 40], 1, [5, 5], {"strides": [2, 2], "pads": [2, 1, 2, 3]}, True),
    "7x7": ([1, 4, 12, 12], 1, [7, 7], {"pads": [3, 3, 3, 3]}, True),
    "2x2_s2": ([1, 6, 9, 10], 1, [2, 2], {"strides": [2, 2]}, True),
    "1x1": ([1, 4, 5, 7], 1, [1, 1], {}, True),
    "stride3": ([1, 4, 13, 40], 1, [3, 3], {"strides": [3, 3], "pads": [1, 0, 2, 1]}, True),
    "stride_h2_w1": ([1, 5, 11, 16], 1, [3, 3], {"strides": [2, 1], "pads": [1, 1, 1, 1]}, True),
    "stride_h1_w2": ([1, 5, 9, 23], 1, [3, 3], {"strides": [1, 2], "pads": [1, 0, 1, 2]}, True),
    "dilated": ([1, 5, 12, 19], 1, [3, 3], {"dilations": [2, 3], "pads": [2, 3, 2, 3]}, True),
    "dilated_s2": ([1, 3, 17, 21], 1, [3, 3],
                   {"strides": [2, 2], "dilations": [1, 2], "pads": [1, 2, 0, 2]}, False),
    "pad_wider_than_image": ([1, 3, 1, 2], 1, [3, 3], {"pads": [2, 3, 2, 3]}, True),
    "multiplier_batch2": ([2, 3, 9, 11], 3, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]},
                          True),
    "multiplier_s1": ([1, 4, 10, 18], 2, [3, 3], {"pads": [1, 1, 1, 1]}, False),
    "conv_1d": ([1, 4, 33], 1, [5], {"strides": [2], "pads": [2, 1]}, True),
    "conv_3d": ([1, 3, 5, 7, 9], 1, [3, 3, 3], {"strides": [2, 1, 2], "pads": [1] * 6}, True),
    "too_wide_for_buffer": ([1, 2, 3, 6000], 1, [3, 3], {"pads": [1, 1, 1, 1]}, True),
    # channel blocks (x86: rows narrower than 2 vectors, at least half a vector of channels):
    # 19 and 37 channels leave a partial last block (16 + 3 at 16 lanes, 8 + 8 + 3 at 8)
    "ch_7x7": ([1, 19, 7, 7], 1, [3, 3], {"pads": [1, 1, 1, 1]}, True),
    "ch_14_to_7": ([1, 37, 14, 14], 1, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]}, True),
    "ch_odd_s2_batch2": ([2, 19, 13, 11], 1, [3, 3], {"strides": [2, 2], "pads": [1, 0, 1, 1]},
                         False),
    "ch_5x5_asym": ([1, 16, 9, 12], 1, [5, 5], {"pads": [2, 1, 0, 3]}, True),
    "ch_7x7_kernel": ([1, 9, 8, 5], 1, [7, 7], {"pads": [3, 3, 3, 3]}, True),
    "ch_dilated_s3": ([1, 8, 16, 19], 1, [3, 3],
                      {"strides": [3, 2], "dilations": [2, 3], "pads": [2, 3, 1, 0]}, True),
    "ch_pad_wider": ([1, 8, 2, 3], 1, [3, 3], {"pads": [3, 4, 2, 5]}, True),
    "ch_1d": ([1, 24, 21], 1, [3], {"pads": [1, 1]}, True),
    # strided rows of 16 outputs or more take the bands (s2_bands): 15 here, 91 rows in bands
    "ch_bands_s2": ([1, 17, 181, 29], 1, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]},
                    True),
    "ch_bands_tall": ([1, 8, 301, 13], 1, [3, 3], {"pads": [1, 1, 1, 1]}, True),
}


def depthwise_cases_model():
    rng = np.random.default_rng(8)
    nodes, inputs, outputs, inits = [], {}, [], {}
    for name, (shape, multiplier, kernel, attrs, bias) in CASES.items():
        c = shape[1]
        inits[f"{name}_w"] = (rng.standard_normal([c * multiplier, 1, *kernel]) /
                              np.sqrt(np.prod(kernel))).astype(np.float32)
        names = [f"{name}_x", f"{name}_w"]
        if bias:
            inits[f"{name}_b"] = rng.standard_normal(c * multiplier).astype(np.float32)
            names.append(f"{name}_b")
        nodes.append(helper.make_node("Conv", names, [f"{name}_y"], kernel_shape=kernel,
                                      group=c, **attrs))
        inputs[f"{name}_x"] = (np.float32, shape)
        outputs.append(f"{name}_y")
    return make_model(nodes, inputs, outputs, inits)


@target_param()
def test_depthwise_edge_shapes_match_onnxruntime_at_any_thread_count(target, tmp_path):
    check_at_thread_counts(depthwise_cases_model(), str(tmp_path), target)


@target_param(["x86-avx2", "x86-avx512"])
def test_mobilenet_depthwise_is_not_grossly_slow(target, tmp_path):
    """CPU time (not wall time: the machine may be loaded) of one 144-channel 3x3 stride-2
    depthwise conv 56x56 -> 28x28, one thread, best of 5 runs, call overhead included:
    measured about 0.15 ms on these targets; the bound is 0.5 GFLOP/s (4 ms), so only a grossly
    broken kernel trips it (the scalar loop nest takes about 0.4 ms)."""
    rng = np.random.default_rng(9)
    w = (rng.standard_normal([144, 1, 3, 3]) / 3).astype(np.float32)
    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3],
                                         group=144, strides=[2, 2], pads=[1, 1, 1, 1])],
                       {"x": (np.float32, [1, 144, 56, 56])}, ["y"], {"w": w})
    best = best_cpu_seconds(model, str(tmp_path), target)
    flops = 2.0 * 144 * 9 * 28 * 28
    assert best < flops / 0.5e9, f"{target}: one depthwise conv took {best * 1e3:.2f} ms CPU time"


def test_neon_depthwise_edge_shapes_match_onnxruntime_under_qemu(tmp_path):
    """The same cases on arm64-neon (the vector path with 4-float vectors, partial vectors
    through a stack copy, even/odd lanes by vuzp), cross-built and run under qemu at 3 threads
    against onnxruntime and at 1 thread bit-identical."""
    if test_arm64.MISSING:
        pytest.skip(f"cross tools absent: {', '.join(test_arm64.MISSING)}")
    model = depthwise_cases_model()
    test_arm64.check_model(model, random_inputs(model), tmp_path, OP_TOLERANCE)
