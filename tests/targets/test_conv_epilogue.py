"""A Conv's fused epilogue applied by the conv kernels as they store (nn_conv_epilogue, conv.h).

At -O2 a Conv followed by an Add of a tensor of its output's shape and/or a Relu or a Clip with
constant bounds becomes a FusedConv whose epilogue the kernel applies in its final stores (the
x86 tiles) or in a pass right after the product (other paths, other targets). The result must
be the separate ops' bit for bit (same float operations, same order): each case is compiled at
-O2 and at -O1 (no fusion: Conv, Add, Relu / Clip one after the other) and the outputs compared
with np.array_equal, with NaN, infinities and signed zeros in the residual to pin down the
clamps' semantics (Relu(NaN) = 0, Relu(-0) = +0, Clip passes NaN). The fused results also match
onnxruntime on finite data and are bit-identical at 1 and 3 threads.

The cases reach each path of the x86 kernels: vectors along positions for a 1x1 kernel (k in
one KC block), the GEMM for a longer 1x1, position tiles over a zero-padded copy (unit stride
along w; non-3x3 kernels so the Winograd selection leaves them on the direct kernels), position
tiles at stride 2 (a short k; a long one, summed in spans on AVX-512; a 3-channel 7x7/2 stem
whose output channels go in blocks of rows), channel tiles (stride 3), the implicit-im2col GEMM (rows too short for tiles), and a padded copy too
big for the work buffer, done in bands of output rows.
"""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild.testing import OP_TOLERANCE, assert_close
from helpers import make_model, onnxruntime_outputs, target_param

# name: (input shape [N, C, H, W], out channels, kernel, attributes)
PATHS = {
    "pointwise": ([1, 24, 9, 13], 21, [1, 1], {}),
    "pointwise_gemm": ([1, 300, 6, 9], 19, [1, 1], {}),
    "positions": ([2, 7, 10, 23], 13, [3, 5], {"pads": [1, 2, 1, 2]}),
    "stride2_positions": ([1, 9, 17, 29], 35, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "stride2_k_spans": ([1, 64, 47, 45], 37, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "stem_row_blocks": ([1, 3, 30, 37], 70, [7, 7], {"strides": [2, 2], "pads": [3, 3, 3, 3]}),
    "channels_stride3": ([1, 9, 17, 29], 35, [3, 3], {"strides": [3, 3], "pads": [1, 1, 1, 1]}),
    "im2col_gemm": ([1, 16, 12, 5], 10, [3, 3], {"strides": [2, 2]}),
    "bands": ([1, 160, 44, 40], 9, [3, 5], {"pads": [1, 2, 1, 2]}),
}
# name: epilogue ops after the Conv ("add": + residual, then "relu" / "clip" / "clip_lo")
EPILOGUES = {
    "add_relu": ("add", "relu"),
    "relu": ("relu",),
    "clip6": ("clip",),
    "add_clip_lo": ("add", "clip_lo"),
    "add": ("add",),
}


def out_shape(shape, m, kernel, attrs):
    pads = attrs.get("pads", [0] * 4)
    strides = attrs.get("strides", [1, 1])
    return [shape[0], m] + [(shape[2 + i] + pads[i] + pads[2 + i] - kernel[i]) // strides[i] + 1
                            for i in range(2)]


def epilogue_model(paths=PATHS, epilogues=EPILOGUES):
    """One model: per path, one Conv per epilogue (each with its own weights) on that path's
    input, then its epilogue ops; output <path>_<epilogue>."""
    rng = np.random.default_rng(3)
    nodes, inputs, outputs = [], {}, []
    inits = {"lo": np.float32(0.0), "hi": np.float32(6.0), "lo2": np.float32(-0.25)}
    for path in paths:
        shape, m, kernel, attrs = PATHS[path]
        inputs[f"{path}_x"] = (np.float32, shape)
        for epilogue in epilogues:
            name = f"{path}_{epilogue}"
            c = shape[1]
            inits[f"{name}_w"] = (rng.standard_normal([m, c, *kernel]) /
                                  np.sqrt(c * np.prod(kernel))).astype(np.float32)
            inits[f"{name}_b"] = rng.standard_normal(m).astype(np.float32)
            nodes.append(helper.make_node("Conv", [f"{path}_x", f"{name}_w", f"{name}_b"],
                                          [f"{name}_conv"], kernel_shape=kernel, **attrs))
            last = f"{name}_conv"
            for op in EPILOGUES[epilogue]:
                if op == "add":
                    inputs[f"{name}_r"] = (np.float32, out_shape(shape, m, kernel, attrs))
                    args = [last, f"{name}_r"]
                else:
                    args = {"relu": [last], "clip": [last, "lo", "hi"], "clip_lo": [last, "lo2"]}[op]
                nodes.append(helper.make_node({"add": "Add", "relu": "Relu"}.get(op, "Clip"),
                                              args, [f"{name}_{op}"]))
                last = f"{name}_{op}"
            nodes.append(helper.make_node("Identity", [last], [name]))
            outputs.append(name)
    return make_model(nodes, inputs, outputs, inits)


def feeds_for(model, special: bool):
    rng = np.random.default_rng(11)
    feeds = {}
    for vi in model.graph.input:
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        feeds[vi.name] = rng.standard_normal(dims).astype(np.float32)
        if special and vi.name.endswith("_r"):
            flat = feeds[vi.name].reshape(-1)
            flat[::7] = np.nan
            flat[3::11] = np.inf
            flat[5::13] = -np.inf
            flat[1::5] = -0.0
    return feeds


@target_param()
def test_fused_conv_epilogue_is_the_separate_ops_bit_for_bit(target, tmp_path):
    model = epilogue_model()
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


def test_the_epilogue_is_applied_by_the_conv_kernel(tmp_path):
    """The generated code hands each epilogue to the conv call instead of a loop after it."""
    nnbuild.generate(epilogue_model(["positions"]), str(tmp_path / "p"))
    source = "".join(p.read_text() for p in (tmp_path / "p" / "src").glob("*.c"))
    assert source.count("epilogue in the stores") == len(EPILOGUES)
    assert source.count("&epilogue);") == len(EPILOGUES)
    assert "epilogue on" not in source


def test_an_epilogue_the_kernel_cannot_apply_stays_a_loop(tmp_path):
    """A broadcast residual (one value per channel) is not one the kernels take: the FusedConv
    keeps its epilogue loop, and is still right."""
    rng = np.random.default_rng(5)
    w = (rng.standard_normal([6, 4, 3, 5]) / 7).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 5], pads=[1, 2, 1, 2]),
             helper.make_node("Add", ["c", "r"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    model = make_model(nodes, {"x": (np.float32, [1, 4, 8, 19]), "r": (np.float32, [6, 1, 1])},
                       ["y"], {"w": w})
    nnbuild.generate(model, str(tmp_path / "p"))
    source = "".join(p.read_text() for p in (tmp_path / "p" / "src").glob("*.c"))
    assert "epilogue in the stores" not in source and "epilogue on y" in source
    feeds = feeds_for(model, False)
    got = nnbuild.compile(model, cache_dir=str(tmp_path)).run(feeds)["y"]
    assert_close(got, onnxruntime_outputs(model, feeds)["y"], OP_TOLERANCE, what="broadcast add")
