"""Sequences and optionals at the model's boundary (docs/architecture.md, "Sequences and
optionals at the C API"): a sequence crosses the C API as one tensor per element, named
``NAME[k]``; an optional as what it holds, or nothing when absent. What the model leaves open
(a sequence input's length and element shapes, an optional input's presence) is bound at
compile time with ``--shape`` (``s=[2x3,3*2x3]``, ``s=[]``, ``o=none``), like a symbolic dim.
The Python runtime takes and returns lists and None."""
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import nnbuild
from helpers import onnxruntime_outputs
from nnbuild import bindings
from nnbuild.errors import ModelError, UsageError
from nnbuild.testing import OP_TOLERANCE, assert_close

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, opset=18):
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _insert_model():
    """out = s with x appended and ys = s with 1 added to every element (SequenceMap)."""
    body = helper.make_graph([helper.make_node("Add", ["e", "one"], ["r"])], "body",
                             [helper.make_tensor_value_info("e", F, None)],
                             [helper.make_tensor_value_info("r", F, None)],
                             [onnx.numpy_helper.from_array(np.float32(1), "one")])
    nodes = [helper.make_node("SequenceInsert", ["s", "x"], ["out"]),
             helper.make_node("SequenceMap", ["s"], ["ys"], body=body)]
    return _model(nodes, [helper.make_tensor_sequence_value_info("s", F, None),
                          helper.make_tensor_value_info("x", F, [2, 3])],
                  [helper.make_tensor_sequence_value_info("out", F, None),
                   helper.make_tensor_sequence_value_info("ys", F, None)])


def _assert_lists_close(actual, expected):
    assert len(actual) == len(expected)
    for k, (a, e) in enumerate(zip(actual, expected)):
        assert_close(a, e, OP_TOLERANCE, what=f"element {k}")


def test_a_sequence_input_and_outputs_match_onnxruntime(cache_dir):
    rng = np.random.default_rng(0)
    s = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(3)]
    x = rng.standard_normal((2, 3)).astype(np.float32)
    model = _insert_model()
    m = nnbuild.compile(model, cache_dir=cache_dir, shapes={"s": "[3*2x3]"})
    assert [i.name for i in m.inputs] == ["s[0]", "s[1]", "s[2]", "x"]
    assert [o.name for o in m.outputs] == [f"out[{k}]" for k in range(4)] + \
        [f"ys[{k}]" for k in range(3)]
    actual = m.run({"s": s, "x": x})
    expected = onnxruntime_outputs(model, {"s": s, "x": x})
    assert list(actual) == ["out", "ys"]
    for name in expected:
        _assert_lists_close(actual[name], expected[name])


def test_element_shapes_may_differ_and_a_sequence_may_be_empty(cache_dir):
    model = _insert_model()
    s = [np.ones((2, 3), np.float32), np.zeros((1, 3), np.float32)]
    x = np.full((2, 3), 5, np.float32)
    m = nnbuild.compile(model, cache_dir=cache_dir, shapes={"s": [(2, 3), (1, 3)]})
    out = m.run({"s": s, "x": x})
    _assert_lists_close(out["out"], s + [x])
    _assert_lists_close(out["ys"], [e + 1 for e in s])
    empty = nnbuild.compile(model, cache_dir=cache_dir, shapes={"s": "[]"})
    assert [i.name for i in empty.inputs] == ["x"]
    out = empty.run({"s": [], "x": x})
    _assert_lists_close(out["out"], [x])
    assert out["ys"] == []


def _optional_model():
    """has = OptionalHasElement(o); got = o passed through (an optional output)."""
    opt = helper.make_tensor_type_proto(F, [2, 3])
    nodes = [helper.make_node("OptionalHasElement", ["o"], ["has"]),
             helper.make_node("Identity", ["o"], ["got"])]
    return _model(nodes, [helper.make_value_info("o", helper.make_optional_type_proto(opt))],
                  [helper.make_tensor_value_info("has", TensorProto.BOOL, []),
                   helper.make_value_info("got", helper.make_optional_type_proto(opt))])


def test_an_optional_input_is_bound_present_or_absent(cache_dir):
    model = _optional_model()
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    present = nnbuild.compile(model, cache_dir=cache_dir, shapes={"o": "2x3"})
    assert [o.name for o in present.outputs] == ["has", "got"]
    out = present.run({"o": x})
    assert out["has"] and np.array_equal(out["got"], x)
    absent = nnbuild.compile(model, cache_dir=cache_dir, shapes={"o": "none"})
    assert absent.inputs == [] and [o.name for o in absent.outputs] == ["has"]
    out = absent.run({"o": None})
    assert not out["has"] and out["got"] is None
    with pytest.raises(UsageError, match="input 'o' was compiled absent"):
        absent.run({"o": x})


def test_a_run_time_condition_selects_sequences_element_by_element(cache_dir):
    def branch(tag, values):
        return helper.make_graph([helper.make_node("SequenceConstruct", values, [f"{tag}_s"])],
                                 tag, [], [helper.make_tensor_sequence_value_info(f"{tag}_s", F,
                                                                                  None)])
    nodes = [helper.make_node("If", ["c"], ["res"], then_branch=branch("then", ["a", "b"]),
                              else_branch=branch("else", ["b", "a"]))]
    model = _model(nodes, [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                           helper.make_tensor_value_info("a", F, [4]),
                           helper.make_tensor_value_info("b", F, [4])],
                   [helper.make_tensor_sequence_value_info("res", F, None)])
    m = nnbuild.compile(model, cache_dir=cache_dir)
    a, b = np.arange(4, dtype=np.float32), -np.arange(4, dtype=np.float32)
    for c in (True, False):
        feeds = {"c": np.array(c), "a": a, "b": b}
        _assert_lists_close(m.run(feeds)["res"], onnxruntime_outputs(model, feeds)["res"])


def test_missing_and_wrong_bindings_are_one_line_naming_the_binding():
    model = _insert_model()
    with pytest.raises(ModelError, match=r"input 's' is a sequence; bind its length and element "
                                         r"shapes with --shape s=\[DxD,...\]"):
        nnbuild.translate(model)
    with pytest.raises(ModelError, match=r"input 's' is a sequence.*, not s=2x3$"):
        nnbuild.translate(model, shapes={"s": "2x3"})
    with pytest.raises(ModelError, match=r"input 'x' is a tensor, not a sequence or optional"):
        nnbuild.translate(model, shapes={"s": "[]", "x": "[2x3]"})
    with pytest.raises(ModelError, match=r"--shape s\[1\]=1x4 contradicts|input 's\[1\]'"):
        nnbuild.translate(_with_element_shape(model), shapes={"s": "[2x3,1x4]"})
    with pytest.raises(ModelError, match=r"input 'o' is optional; bind whether it is present "
                                         r"with --shape o=DxD\.\.\. \(present\) or --shape "
                                         r"o=none \(absent\)"):
        nnbuild.translate(_optional_model())
    with pytest.raises(UsageError, match=r"--shape s=\[2\*a\]: expected dims like"):
        nnbuild.Options.make(shapes={"s": "[2*a]"})


def _with_element_shape(model):
    """The same model with its sequence input declaring elements of shape [2, 3]."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    seq = helper.make_tensor_sequence_value_info("s", F, [2, 3])
    m.graph.input[0].CopyFrom(seq)
    return m


def test_the_runtime_checks_a_sequence_length(cache_dir):
    m = nnbuild.compile(_insert_model(), cache_dir=cache_dir, shapes={"s": "[3*2x3]"})
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(UsageError, match=r"input 's' was compiled as a sequence of 3 tensors, "
                                         r"got a list of 2"):
        m.run({"s": [x, x], "x": x})


def test_bindings_round_trip_through_their_text_form():
    for text, canonical in [("1x3", (1, 3)), ("[2x4,2*1x4]", ("sequence", ((2, 4), (1, 4),
                                                                          (1, 4)))),
                            ("[]", ("sequence", ())), ("none", ("none",)), ("scalar", ())]:
        assert bindings.parse("v", text) == canonical
        assert bindings.parse("v", bindings.to_text(canonical)) == canonical
        assert bindings.parse("v", canonical) == canonical
    assert bindings.parse("v", None) == ("none",)
    assert bindings.parse("v", [(2, 4), "3x4"]) == ("sequence", ((2, 4), (3, 4)))


def test_cli_and_app_name_each_element(tmp_path):
    path = str(tmp_path / "seq.onnx")
    onnx.save(_insert_model(), path)
    cli = [sys.executable, "-m", "nnbuild"]
    bad = subprocess.run(cli + ["generate", path, "-o", str(tmp_path / "g")],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "--shape s=[DxD,...]" in bad.stderr
    out = tmp_path / "out"
    subprocess.run(cli + ["build", path, "-o", str(out), "--shape", "s=[2*2x3]",
                          "--target", "generic"], check=True, capture_output=True)
    rng = np.random.default_rng(1)
    s = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(2)]
    x = rng.standard_normal((2, 3)).astype(np.float32)
    args = []
    for name, value in [("s[0]", s[0]), ("s[1]", s[1]), ("x", x)]:
        file = tmp_path / f"{name}.npy"
        np.save(file, value)
        args += ["--input", f"{name}={file}"]
    app = out / "build" / "seq_app"
    subprocess.run([str(app), *args, "--output-dir", str(tmp_path / "y")], check=True,
                   capture_output=True)
    produced = sorted(os.listdir(tmp_path / "y"))
    assert produced == sorted([f"out_{k}_.npy" for k in range(3)] +
                              [f"ys_{k}_.npy" for k in range(2)])
    for k, want in enumerate(s + [x]):
        assert_close(np.load(tmp_path / "y" / f"out_{k}_.npy"), want, OP_TOLERANCE)
