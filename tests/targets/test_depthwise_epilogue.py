"""A depthwise Conv's fused epilogue (nn_conv_epilogue, conv.h) applied by the depthwise
kernels (depthwise.h) as they store: at -O2 a depthwise Conv followed by an Add of a tensor of
its output's shape and/or a Relu or a Clip with constant bounds (MobileNetV2's ReLU6) becomes a
FusedConv whose epilogue the kernel applies to each output it has just computed, instead of a
separate pass over the output. The result must be the separate ops' bit for bit (-O1: Conv, Add,
Relu / Clip one after the other), with NaN, infinities and signed zeros in the residual; it
also matches onnxruntime on finite data and is bit-identical at 1 and 3 threads.

The cases reach each path of nn_depthwise_driver.h: channel blocks (x86: VL channels per vector,
the epilogue on the vectors transposed back, a partial last block), bands of rows (wide rows; a
channel multiplier), the flattened small plane (few channels) and the scalar loop nest (rows
too wide for the buffer; every plane on the generic target).
"""
from __future__ import annotations

import numpy as np
from onnx import helper

import nnbuild
from nnbuild.testing import OP_TOLERANCE, assert_close
from helpers import make_model, onnxruntime_outputs, target_param
from test_conv_epilogue import EPILOGUES, feeds_for, out_shape

# name: (input shape [N, C, H, W], multiplier, kernel, attributes)
PATHS = {
    "channels": ([1, 19, 9, 13], 1, [3, 3], {"pads": [1, 1, 1, 1]}),
    "channels_s2": ([2, 11, 14, 14], 1, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "bands": ([1, 3, 6, 70], 1, [3, 3], {"pads": [1, 1, 1, 1]}),
    "bands_multiplier": ([1, 2, 5, 40], 2, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "flat": ([1, 3, 7, 7], 1, [3, 3], {"pads": [1, 1, 1, 1]}),
    "scalar": ([1, 2, 2, 5000], 1, [3, 3], {"pads": [1, 1, 1, 1]}),
}


def depthwise_epilogue_model(paths=PATHS):
    """Per path, one depthwise Conv per epilogue of test_conv_epilogue (each with its own
    weights) on that path's input, then its epilogue ops; output <path>_<epilogue>."""
    rng = np.random.default_rng(4)
    nodes, inputs, outputs = [], {}, []
    inits = {"lo": np.float32(0.0), "hi": np.float32(6.0), "lo2": np.float32(-0.25)}
    for path in paths:
        shape, multiplier, kernel, attrs = PATHS[path]
        c, m = shape[1], shape[1] * multiplier
        inputs[f"{path}_x"] = (np.float32, shape)
        for epilogue, ops in EPILOGUES.items():
            name = f"{path}_{epilogue}"
            inits[f"{name}_w"] = (rng.standard_normal([m, 1, *kernel]) /
                                  np.sqrt(np.prod(kernel))).astype(np.float32)
            inits[f"{name}_b"] = rng.standard_normal(m).astype(np.float32)
            nodes.append(helper.make_node("Conv", [f"{path}_x", f"{name}_w", f"{name}_b"],
                                          [f"{name}_conv"], kernel_shape=kernel, group=c,
                                          **attrs))
            last = f"{name}_conv"
            for op in ops:
                if op == "add":
                    inputs[f"{name}_r"] = (np.float32, out_shape(shape, m, kernel, attrs))
                    args = [last, f"{name}_r"]
                else:
                    args = {"relu": [last], "clip": [last, "lo", "hi"],
                            "clip_lo": [last, "lo2"]}[op]
                nodes.append(helper.make_node({"add": "Add", "relu": "Relu"}.get(op, "Clip"),
                                              args, [f"{name}_{op}"]))
                last = f"{name}_{op}"
            nodes.append(helper.make_node("Identity", [last], [name]))
            outputs.append(name)
    return make_model(nodes, inputs, outputs, inits)


@target_param(["x86-avx2", "x86-avx512"])
def test_fused_depthwise_epilogue_is_the_separate_ops_bit_for_bit(target, tmp_path):
    """On x86, which has every path (the generic target's is the scalar loop nest's)."""
    model = depthwise_epilogue_model()
    fused = nnbuild.compile(model, cache_dir=str(tmp_path), target=target)
    separate = nnbuild.compile(model, cache_dir=str(tmp_path), target=target, opt_level=1)
    for special in (False, True):
        feeds = feeds_for(model, special)
        results = {}
        for threads in (1, 3):
            fused.set_num_threads(threads)
            results[threads] = fused.run(feeds)
        want = separate.run(feeds)
        expected = None if special else onnxruntime_outputs(model, feeds)
        for name in want:
            what = f"{target} {name}{' special' if special else ''}"
            np.testing.assert_array_equal(results[1][name], want[name],
                                          err_msg=f"{what}: fused != separate")
            np.testing.assert_array_equal(results[3][name], results[1][name],
                                          err_msg=f"{what}: 3 threads differ from 1")
            if expected is not None:
                assert_close(results[1][name], expected[name], OP_TOLERANCE, what=what)


def test_the_depthwise_kernel_applies_the_epilogue(tmp_path):
    """The generated code hands each epilogue to the depthwise call instead of a loop after it."""
    nnbuild.generate(depthwise_epilogue_model(["channels"]), str(tmp_path / "p"))
    source = "".join(p.read_text() for p in (tmp_path / "p" / "src").glob("*.c"))
    assert source.count("conv_depthwise(") == len(EPILOGUES)
    assert source.count("&epilogue);") == len(EPILOGUES)
    assert "epilogue on" not in source
