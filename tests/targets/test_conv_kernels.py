"""Convolution kernel paths of every target, on edge shapes, against onnxruntime.

The x86 kernels (templates/hal/x86-avx2/conv.c, also built for x86-avx512) pick a path by
shape: a 1x1 stride-1 kernel with a reduction up to 640 long (over one or more KC blocks) on at
least 64 positions goes vectors-along-positions (straight NCHW stores, the image read in place,
masked loads at its end), others the GEMM over the image; other kernels direct tiles (along
positions or output channels) from a zero-padded copy, or the GEMM over implicit im2col when
the image is small, rows are short or the copy does not fit the work buffer. One model holds a Conv per case below, each on its own input; every case must
match onnxruntime within the op tolerance, on every target this CPU runs, and be bit-identical
at 1 and 3 threads.

The cases cover what the tiles must get right: channels that are not a multiple of the
vector width or of the register tile, positions that leave a partial vector at the end of a
row or of the image, more positions than one segment, too few to fill a vector, rows wider
than one tile, reductions longer than one KC block (K > 256), strides 2 and 3, dilation,
asymmetric padding, groups, no bias, batch 2, 1-D and 3-D kernels, and rows too short for
direct tiles. With unit stride along h a direct tile runs on across output rows (and through
the padding columns between them, which it must not store): 7- and 14-wide rows, strides that
differ along h and w, dilation, and 3-D depth slices check that walk. At a stride the copy
keeps each phase the taps read as its own plane (so tiles read consecutive floats at any
stride): strides 2, 3 and 4, a 4x4/4 patch kernel (every phase, no shift) and a dilated
kernel whose taps skip phases check that layout. Position tiles sum a long k (over 256 on
AVX-512, images or bands of 256 positions or more) in spans, over groups of rows, the partial sums kept
between spans: a strided 3x3 with k = 576 (four spans) and a 1x1 with k = 290 (two), both with
more output channels than one group of rows and a partial last group. With at most 4 input channels
(the stems) the output channels go in blocks of 32 rows (70 channels: 32 + 32 + 6). Images whose padded copy
is bigger than the work buffer are copied and computed in bands of output rows (2-D with
position tiles and with channel tiles, 3-D). A strided kernel with 256 or more output channels
on a small output (64 to 400 positions) takes the GEMM over implicit im2col instead (260
channels: 8 register tiles and a partial one). 3x3 stride-1 cases may run as Winograd at -O2
(select-conv-algorithm); the non-3x3 and strided cases stay on the direct kernels.

A hang detector closes the file: one ResNet-sized 3x3 convolution per x86 target must not be
grossly slow (a miscompiled or misconfigured micro-kernel once ran such a conv 20,000x slower).
"""
from __future__ import annotations

import numpy as np
from onnx import helper

from helpers import best_cpu_seconds, check_at_thread_counts, make_model, target_param

# name: (input shape [N, C, spatial...], out channels, kernel, attributes, bias)
CASES = {
    "pointwise_tail": ([1, 19, 5, 7], 21, [1, 1], {}, True),
    "pointwise_long_k": ([1, 300, 6, 9], 10, [1, 1], {}, True),
    "pointwise_wide": ([1, 8, 13, 17], 40, [1, 1], {}, False),
    "pointwise_k256": ([1, 256, 9, 9], 13, [1, 1], {}, True),
    "pointwise_k300_positions": ([1, 300, 9, 11], 19, [1, 1], {}, True),
    "pointwise_tiny": ([1, 16, 1, 5], 70, [1, 1], {}, True),
    "pointwise_stride2": ([1, 12, 11, 11], 9, [1, 1], {"strides": [2, 2]}, True),
    "same_3x3_tail": ([1, 5, 9, 13], 37, [3, 3], {"pads": [1, 1, 1, 1]}, True),
    "wide_rows": ([1, 3, 6, 70], 8, [3, 3], {"pads": [1, 1, 1, 1]}, True),
    "stride2_odd": ([1, 7, 15, 35], 33, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]}, True),
    "stem_7x7_s2": ([1, 3, 40, 42], 16, [7, 7], {"strides": [2, 2], "pads": [3, 3, 3, 3]}, True),
    "stem_row_blocks": ([1, 3, 30, 37], 70, [7, 7], {"strides": [2, 2], "pads": [3, 3, 3, 3]},
                        True),
    "dilated_5x5": ([1, 4, 20, 24], 6, [5, 5], {"dilations": [2, 2], "pads": [3, 2, 4, 1]}, True),
    "stride3_asym": ([1, 6, 19, 50], 11, [2, 4], {"strides": [3, 3], "pads": [0, 2, 1, 0]}, False),
    "long_k_3x3": ([1, 40, 8, 19], 35, [3, 3], {"pads": [1, 1, 1, 1]}, True),
    "groups": ([1, 12, 10, 22], 18, [3, 3], {"group": 2, "pads": [1, 1, 1, 1]}, True),
    "short_rows": ([1, 16, 12, 5], 24, [3, 3], {"pads": [1, 1, 1, 1]}, True),
    "conv_1d": ([1, 6, 45], 10, [5], {"strides": [2], "pads": [2, 1]}, True),
    "conv_3d": ([1, 3, 4, 6, 20], 7, [2, 3, 3], {"pads": [0, 1, 1, 1, 0, 1]}, True),
    "batch2": ([2, 5, 7, 18], 9, [3, 3], {"pads": [1, 1, 1, 1]}, True),
    "rows_7_wide": ([1, 40, 7, 7], 48, [3, 3], {"pads": [1, 1, 1, 1]}, True),
    "rows_14_long_k": ([1, 30, 14, 14], 20, [3, 3], {"pads": [1, 1, 1, 1]}, False),
    "stride_h2_w1": ([1, 6, 11, 16], 10, [3, 3], {"strides": [2, 1], "pads": [1, 1, 1, 1]}, True),
    "stride_h1_w2": ([1, 6, 9, 23], 10, [3, 3], {"strides": [1, 2], "pads": [1, 0, 1, 2]}, True),
    "dilated_rows": ([1, 5, 10, 8], 9, [3, 3], {"dilations": [2, 3], "pads": [2, 3, 2, 3]}, True),
    "conv_3d_slices": ([1, 4, 5, 7, 9], 12, [3, 3, 3],
                       {"strides": [2, 1, 1], "pads": [1, 1, 1, 1, 1, 1]}, True),
    "bands_stride2": ([1, 100, 61, 47], 20, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]},
                      True),
    "bands_positions": ([1, 160, 44, 40], 9, [3, 5], {"pads": [1, 2, 1, 2]}, True),
    "bands_3d": ([1, 90, 5, 24, 40], 6, [3, 3, 3], {"pads": [1, 1, 1, 1, 1, 1]}, False),
    "rows_7_positions": ([1, 24, 7, 7], 40, [5, 5], {"pads": [2, 2, 2, 2]}, True),
    "stride2_positions_rows": ([1, 5, 23, 70], 12, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]},
                               True),
    "stride2_long_k": ([1, 30, 13, 40], 17, [3, 3], {"strides": [2, 2], "pads": [0, 1, 1, 0]}, True),
    "stride2_channels_k720": ([1, 80, 17, 19], 40, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]},
                              True),
    "phases_sparse": ([1, 5, 30, 41], 7, [3, 3],
                      {"strides": [4, 3], "dilations": [3, 2], "pads": [2, 1, 0, 3]}, True),
    "patches_4x4_s4": ([1, 3, 32, 48], 16, [4, 4], {"strides": [4, 4]}, True),
    "stride2_k_spans": ([1, 64, 47, 45], 37, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]},
                        True),
    "pointwise_k_spans": ([1, 290, 23, 24], 45, [1, 1], {}, False),
    "stride2_many_channels": ([1, 20, 23, 21], 260, [3, 3], {"strides": [2, 2],
                                                            "pads": [1, 1, 1, 1]}, True),
}


def conv_cases_model():
    rng = np.random.default_rng(6)
    nodes, inputs, outputs, inits = [], {}, [], {}
    for name, (shape, m, kernel, attrs, bias) in CASES.items():
        c = shape[1] // attrs.get("group", 1)
        inits[f"{name}_w"] = (rng.standard_normal([m, c, *kernel]) /
                              np.sqrt(c * np.prod(kernel))).astype(np.float32)
        names = [f"{name}_x", f"{name}_w"]
        if bias:
            inits[f"{name}_b"] = rng.standard_normal(m).astype(np.float32)
            names.append(f"{name}_b")
        nodes.append(helper.make_node("Conv", names, [f"{name}_y"], kernel_shape=kernel, **attrs))
        inputs[f"{name}_x"] = (np.float32, shape)
        outputs.append(f"{name}_y")
    return make_model(nodes, inputs, outputs, inits)


@target_param()
def test_conv_edge_shapes_match_onnxruntime_at_any_thread_count(target, tmp_path):
    check_at_thread_counts(conv_cases_model(), str(tmp_path), target)


@target_param(["x86-avx2", "x86-avx512"])
def test_resnet_3x3_conv_is_not_grossly_slow(target, tmp_path):
    """CPU time (not wall time: the machine may be loaded) of one 64->64 3x3 conv on 56x56, one
    thread, best of 5 runs: measured 2-3 ms on these targets (100 and 80 GFLOP/s); the bound is
    2 GFLOP/s, 40-50x slower, so only a broken kernel trips it."""
    rng = np.random.default_rng(7)
    w = (rng.standard_normal([64, 64, 3, 3]) / 24).astype(np.float32)
    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3],
                                         pads=[1, 1, 1, 1])],
                       {"x": (np.float32, [1, 64, 56, 56])}, ["y"], {"w": w})
    best = best_cpu_seconds(model, str(tmp_path), target)
    flops = 2.0 * 64 * 64 * 9 * 56 * 56
    assert best < flops / 2e9, f"{target}: one 3x3 conv took {best * 1e3:.1f} ms CPU time"
