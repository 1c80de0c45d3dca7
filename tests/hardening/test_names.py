"""Names are data, not code: ONNX input, output, value and node names and doc strings of every
awkward kind give a project that compiles (as valid C) and computes what onnxruntime does; the
C API reports each name byte for byte, and the app reads and writes them."""
from __future__ import annotations

import os
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import nnbuild
from helpers import onnxruntime_outputs
from nnbuild.codegen.names import app_output_files
from nnbuild.testing import OP_TOLERANCE, assert_close

KINDS = {
    "comment_terminator": "a*/ int x; /* b */ c//d/*",
    "newlines": "line1\nline2\r\n#define X 1\n",
    "quotes": "say \"hi\" and 'bye' \"",
    "backslashes": "dir\\sub\\ \\n\\\\ ends with \\",
    "non_ascii": "\u00e9t\u00e9 \u65e5\u672c \U0001f642 \u0000".rstrip("\u0000") + "\u00ff",
    "c_keywords": "int",
    "trigraphs": "what??/ ??= ??' ??!",
    "thousands_of_characters": "n" * 3000 + "*/" + "m" * 3000,
}


def named_model(text: str) -> onnx.ModelProto:
    """x, y -> Add -> Relu -> out (and a second output through Mul), every name from ``text``."""
    x, y, w = f"{text}x", f"{text}y", f"{text}w"
    mid, out1, out2 = f"{text}mid", text, f"{text}\"2"
    if text == "int":               # C keywords everywhere a name goes
        x, y, w, mid, out1, out2 = "int", "return", "main", "static", "while", "void"
    nodes = [helper.make_node("Add", [x, w], [mid], name=text, doc_string=text),
             helper.make_node("Relu", [mid], [out1], name=f"{text}relu", doc_string=text),
             helper.make_node("Mul", [mid, y], [out2], name=f"{text}*/mul")]
    graph = helper.make_graph(
        nodes, text, [helper.make_tensor_value_info(x, TensorProto.FLOAT, [2, 3]),
                      helper.make_tensor_value_info(y, TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info(out1, TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info(out2, TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(np.array([0.5, -1.0, 2.0], np.float32), w)], doc_string=text)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              doc_string=text, producer_name=text)
    model.ir_version = 8
    return model


def feeds_for(model):
    rng = np.random.default_rng(1)
    return {vi.name: rng.standard_normal([d.dim_value for d in vi.type.tensor_type.shape.dim])
            .astype(np.float32) for vi in model.graph.input}


@pytest.mark.parametrize("kind", list(KINDS))
def test_names_of_every_kind_compile_and_match_onnxruntime(kind, cache_dir):
    model = named_model(KINDS[kind])
    feeds = feeds_for(model)
    expected = onnxruntime_outputs(model, feeds)
    compiled = nnbuild.compile(model, cache_dir=cache_dir, name="named")
    assert [s.name for s in compiled.inputs] == [vi.name for vi in model.graph.input]
    assert [s.name for s in compiled.outputs] == list(expected)
    actual = compiled.run(feeds)
    for name, value in expected.items():
        assert_close(actual[name], value, OP_TOLERANCE, what=repr(name)[:40])


def test_app_reads_and_writes_awkward_names(tmp_path):
    """The generated app matches `--input NAME=FILE` on names with newlines and quotes and
    writes the outputs under the file names app_output_files states."""
    model = named_model(KINDS["newlines"] + KINDS["quotes"] + KINDS["non_ascii"])
    path = tmp_path / "named.onnx"
    onnx.save(model, str(path))
    result = nnbuild.build(str(path), str(tmp_path / "project"))
    feeds = feeds_for(model)
    args = []
    for i, (name, value) in enumerate(feeds.items()):
        np.save(tmp_path / f"in{i}.npy", value)
        args += ["--input", f"{name}={tmp_path / f'in{i}.npy'}"]
    out = tmp_path / "out"
    proc = subprocess.run([result.app, *args, "--output-dir", str(out)], capture_output=True)
    assert proc.returncode == 0, proc.stderr
    expected = onnxruntime_outputs(model, feeds)
    for (name, value), file in zip(expected.items(), app_output_files(list(expected))):
        assert_close(np.load(os.path.join(out, file)), value, OP_TOLERANCE, what=file)


def kernel_families_model() -> onnx.ModelProto:
    """Conv, depthwise Conv, MaxPool, Gemm and Softmax: five hal families in one project."""
    rng = np.random.default_rng(3)

    def const(name, shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["c1", "w2"], ["c2"], group=4, pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["c2"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "w3"], ["g"], transB=1),
             helper.make_node("Softmax", ["g"], ["y"])]
    graph = helper.make_graph(
        nodes, "families", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [const("w1", [4, 3, 3, 3]), const("w2", [4, 1, 3, 3]), const("w3", [10, 64])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_a_model_may_be_named_like_a_kernel_family(tmp_path):
    """A model named conv, gemm, pool... (the default name of conv.onnx) builds: its source
    includes its own header by path, the kernels' headers come from hal/ first."""
    model = kernel_families_model()
    feeds = feeds_for(model)
    expected = onnxruntime_outputs(model, feeds)
    nnbuild.generate(model, str(tmp_path / "probe"), name="probe")
    families = sorted(f[:-2] for f in os.listdir(tmp_path / "probe" / "hal")
                      if f.endswith(".h") and not f.startswith("nn_"))
    assert {"conv", "depthwise", "gemm", "pool", "norm"} <= set(families)
    for family in families:
        actual = nnbuild.compile(model, cache_dir=str(tmp_path / "cache"), name=family).run(feeds)
        assert_close(actual["y"], expected["y"], OP_TOLERANCE, what=f"model named {family}")
