"""`nnbuild diff` / nnbuild.diff: every intermediate that survives optimization is compared with
onnxruntime's, in our node order, and the first node over the tolerance is named (exit 1)."""
import os

import numpy as np
import onnx
import pytest
from onnx import helper

import nnbuild
from nnbuild import cli
from nnbuild.ops import registry

from helpers import make_model

F = np.float32


def _model():
    # fc (+bias, relu: one fused node at -O2) -> sin -> scale -> out
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="fc"),
             helper.make_node("Add", ["h", "b"], ["z"], name="bias"),
             helper.make_node("Relu", ["z"], ["r"], name="relu"),
             helper.make_node("Softmax", ["r"], ["s"], name="softmax", axis=-1),
             helper.make_node("Sin", ["s"], ["t"], name="sin"),
             helper.make_node("MatMul", ["t", "W2"], ["y"], name="out")]
    return make_model(nodes, {"x": (F, [4, 8])}, ["y"],
                      {"W": rng.standard_normal((8, 8)).astype(F),
                       "b": rng.standard_normal(8).astype(F),
                       "W2": rng.standard_normal((8, 3)).astype(F)})


@pytest.fixture
def wrong_sin(monkeypatch):
    """A deliberately wrong Sin kernel: sin(x) + 0.01 (for this test's builds only)."""
    sin = registry.lookup("Sin")
    right = sin.c_expr
    monkeypatch.setattr(sin, "c_expr", lambda node, x, dtype: f"({right(node, x, dtype)} + 0.01f)")


def test_a_correct_build_agrees_everywhere(tmp_path, monkeypatch):
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = nnbuild.diff(_model())                  # builds in a temporary folder...
    assert os.listdir(tmp_path) == []                # ...removed afterwards
    assert result.ok and result.first_bad is None
    # fc+bias+relu is one node compared at its output; every surviving value has a row
    assert [(r.node, r.tensor) for r in result.rows] == [
        ("fc+bias+relu", "r"), ("softmax", "s"), ("sin", "t"), ("out", "y")]
    assert all(r.max_abs < 1e-5 for r in result.rows)


def test_the_first_wrong_node_is_named(tmp_path, wrong_sin):
    result = nnbuild.diff(_model(), work_dir=str(tmp_path))
    assert [r.verdict for r in result.rows] == ["ok", "ok", "FAIL", "FAIL"]
    bad = result.first_bad
    assert (bad.node, bad.op, bad.tensor) == ("sin", "Sin", "t")
    assert bad.max_abs == pytest.approx(0.01, rel=1e-3)


def test_the_wrong_node_is_named_inside_a_fused_node_at_O0_too(tmp_path, wrong_sin):
    result = nnbuild.diff(_model(), work_dir=str(tmp_path), opt_level=0)
    assert [r.node for r in result.rows] == ["fc", "bias", "relu", "softmax", "sin", "out"]
    assert result.first_bad.node == "sin"


def test_cli_prints_the_table_and_exits_1_on_the_first_bad_node(tmp_path, wrong_sin, capsys):
    path = tmp_path / "m.onnx"
    onnx.save(_model(), path)
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(F)
    np.save(tmp_path / "x.npy", x)
    rc = cli.main(["diff", str(path), "--input", f"x={tmp_path / 'x.npy'}", "--keep",
                   str(tmp_path / "work")])
    out = capsys.readouterr().out
    assert rc == 1
    assert out.splitlines()[0].split() == ["node", "op", "max", "abs", "err", "max", "rel", "err",
                                          "verdict", "tensor"]
    assert "first node over tolerance: sin (Sin), tensor t:" in out


def test_cli_exits_0_when_everything_agrees(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    onnx.save(_model(), path)
    assert cli.main(["diff", str(path), "-O1", "--keep", str(tmp_path / "work")]) == 0
    out = capsys.readouterr().out                      # -O1 fuses nothing: six rows
    assert "6 tensors compared (model tolerance), 0 outside it" in out


def test_an_unknown_input_is_a_usage_error(tmp_path):
    with pytest.raises(nnbuild.UsageError, match="no such input"):
        nnbuild.diff(_model(), inputs={"nope": np.zeros(3, F)}, work_dir=str(tmp_path))


def test_an_intermediate_file_is_refused_with_one_line(tmp_path, capsys):
    path = tmp_path / "m.nnir.json"
    path.write_text("{}")
    assert cli.main(["diff", str(path)]) == 2
    assert capsys.readouterr().err == (f"nnbuild: error: {path}: diff needs the ONNX file "
                                       f"(onnxruntime runs it)\n")
