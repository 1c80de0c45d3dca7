"""Frontend fuzzing (hypothesis): every mutated ONNX file given to `nnbuild generate` ends in a
generated project (exit 0) or one error line `nnbuild: error: ...` with exit 2. Never an
internal error or a traceback, never a hang (each case has HANG_SECONDS), never a file written
outside -o (the sandbox around the model and the output folder is compared before and after).

Time-boxed: NNBUILD_FUZZ_SECONDS (default 20) of mutated cases in the default suite. Longer:

    NNBUILD_FUZZ_SECONDS=3600 python -m pytest tests/hardening/test_fuzz_frontend.py -q -s

prints the number of cases run and how they ended.
"""
from __future__ import annotations

import collections
import contextlib
import io
import os
import shutil
import signal
import time

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from onnx import TensorProto, helper

from nnbuild import cli
from nnbuild.frontend.onnx_import import MAX_TENSOR_ELEMENTS

from fuzz_models import mutated_model, seeds

BUDGET_SECONDS = float(os.environ.get("NNBUILD_FUZZ_SECONDS", "20"))
HANG_SECONDS = 60
SEEDS = seeds()


class Hang(Exception):
    pass


def _on_alarm(signum, frame):
    raise Hang(f"no result after {HANG_SECONDS} s")


def _snapshot(root: str, skip: str) -> dict:
    """path -> (size, mtime) of everything under root except under ``skip``."""
    found = {}
    for folder, dirs, files in os.walk(root):
        if os.path.abspath(folder) == os.path.abspath(skip):
            dirs[:] = []
            continue
        for name in dirs + files:
            path = os.path.join(folder, name)
            if os.path.abspath(path) == os.path.abspath(skip):
                continue
            st = os.lstat(path)
            found[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return found


def run_generate(sandbox: str, data: bytes, argv_extra=()) -> tuple:
    """`nnbuild generate sandbox/model/m.onnx -o sandbox/out` in process: (exit, stderr)."""
    model_dir, out = os.path.join(sandbox, "model"), os.path.join(sandbox, "out")
    shutil.rmtree(out, ignore_errors=True)
    with open(os.path.join(model_dir, "m.onnx"), "wb") as f:
        f.write(data)
    before = _snapshot(sandbox, out)
    err = io.StringIO()
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(HANG_SECONDS)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main([*argv_extra, "generate", os.path.join(model_dir, "m.onnx"),
                             "-o", out, "--target", "generic"])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    after = _snapshot(sandbox, out)
    assert after == before, f"files outside -o changed: {sorted(set(after) ^ set(before))}"
    return code, err.getvalue()


def _traceback(sandbox: str) -> str:
    """The internal error's traceback (the same case again with --debug)."""
    import traceback
    try:
        run_generate(sandbox, open(os.path.join(sandbox, "model", "m.onnx"), "rb").read(),
                     ["--debug"])
    except Exception:
        return "".join(traceback.format_exc().splitlines(True)[-12:])
    return ""


def assert_clean_outcome(code: int, stderr: str, what: str, sandbox: str) -> str:
    """0 and a project, or 2 and exactly one `nnbuild: error:` line. Returns the outcome."""
    if code == 0:
        return "generated"
    if "internal error" in stderr:
        stderr += _traceback(sandbox)
    lines = stderr.rstrip("\n").split("\n")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("nnbuild: error: "), \
        f"{what}: exit {code}, stderr:\n{stderr}"
    return "refused"


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """tmp/model/ (the model, weights.bin, sub/), tmp/outside.bin, tmp/cwd/ as the working
    folder; -o is tmp/out."""
    (tmp_path / "model" / "sub").mkdir(parents=True)
    (tmp_path / "model" / "weights.bin").write_bytes(np.arange(4096, dtype=np.float32).tobytes())
    (tmp_path / "outside.bin").write_bytes(b"secret" * 1000)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return str(tmp_path)


def test_seeds_generate(sandbox):
    """The unmutated seeds compile: the harness's baseline."""
    for name, model in SEEDS.items():
        code, err = run_generate(sandbox, model.SerializeToString())
        assert code == 0, f"{name}: {err}"


def test_fuzz_mutated_models(sandbox):
    outcomes = collections.Counter()
    start = time.monotonic()

    @settings(max_examples=20, deadline=None, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(mutated_model(SEEDS))
    def one_case(case):
        what, data = case
        code, err = run_generate(sandbox, data)
        outcomes[assert_clean_outcome(code, err, what, sandbox)] += 1

    while time.monotonic() - start < BUDGET_SECONDS:
        one_case()
    total = sum(outcomes.values())
    print(f"\nfrontend fuzz: {total} cases in {time.monotonic() - start:.0f} s: "
          f"{dict(outcomes)}")
    assert total > 0


# -- regressions the fuzzer found, and the stated limits, as plain cases -------------------

def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_empty_tensor_value_info(o)
                                                   for o in outputs], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def test_declared_elements_over_the_limit_are_refused_before_allocation(sandbox):
    """An input, an initializer or a ConstantOfShape output over MAX_TENSOR_ELEMENTS is one
    error line; nothing of that size is allocated (the run stays far below it in memory)."""
    f = TensorProto.FLOAT
    big = [1 << 20, 1 << 20, 4]                    # 2^42 elements, 16 TiB of float
    huge_input = _model([helper.make_node("Relu", ["x"], ["y"])],
                        [helper.make_tensor_value_info("x", f, big)], ["y"])
    huge_init = _model([helper.make_node("Add", ["x", "w"], ["y"])],
                       [helper.make_tensor_value_info("x", f, [1])], ["y"],
                       [onnx.TensorProto(name="w", data_type=f, dims=big, raw_data=b"\0" * 16)])
    shape = onnx.numpy_helper.from_array(np.array(big, np.int64), "s")
    huge_fill = _model([helper.make_node("ConstantOfShape", ["s"], ["y"])], [], ["y"], [shape])
    for model in (huge_input, huge_init, huge_fill):
        code, err = run_generate(sandbox, model.SerializeToString())
        assert code == 2 and "elements" in err and str(MAX_TENSOR_ELEMENTS) in err, err


def _regressions() -> dict:
    """Minimal forms of what the fuzzer found (each crashed with an internal error before)."""
    f = TensorProto.FLOAT
    x = [helper.make_tensor_value_info("x", f, [2, 4])]
    cases = {
        "attribute_of_the_wrong_type": _model(
            [helper.make_node("Transpose", ["x"], ["y"], perm="text")], x, ["y"]),
        "required_input_omitted": _model(
            [helper.make_node("Transpose", [""], ["y"])], x, ["y"]),
        "constant_value_of_the_wrong_type": _model(
            [helper.make_node("Constant", [], ["y"], value="text")], [], ["y"]),
        "attribute_of_a_newer_opset_wrong_type": _model(
            [helper.make_node("Split", ["x"], ["a", "b"], axis=1, num_outputs="text")], x,
            ["a", "b"], opset=13),
        "newline_in_a_node_name": _model(
            [helper.make_node("Frobnicate", ["x"], ["y"], name="a\nb")], x, ["y"]),
    }
    external = _model([helper.make_node("Add", ["x", "w"], ["y"])], x, ["y"],
                      [onnx.TensorProto(name="w", data_type=f, dims=[4])])
    external.graph.initializer[0].data_location = TensorProto.EXTERNAL
    external.graph.initializer[0].external_data.add(key="location", value="a\0b")
    cases["nul_in_an_external_data_location"] = external
    return {k: v.SerializeToString() for k, v in cases.items()}


REGRESSIONS = _regressions()
REGRESSIONS["invalid_utf8_in_an_op_type"] = _model(
    [helper.make_node("Relu", ["x"], ["y"])], [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [2])], ["y"]).SerializeToString().replace(b"Relu", b"R\xfflu")


@pytest.mark.parametrize("case", sorted(REGRESSIONS))
def test_fuzzer_findings_are_one_line_errors(sandbox, case):
    code, err = run_generate(sandbox, REGRESSIONS[case])
    assert assert_clean_outcome(code, err, case, sandbox) == "refused"


def test_batchnorm_parameters_of_different_shapes_are_refused(sandbox):
    """scale (3, 8) beside var (24,) passed inference and crashed the BN-folding pass."""
    f = TensorProto.FLOAT
    p = {"s": np.ones((3, 8), np.float32), "b": np.zeros(24, np.float32),
         "m": np.zeros(24, np.float32), "v": np.ones(24, np.float32)}
    conv_w = onnx.numpy_helper.from_array(np.ones((24, 2, 1, 1), np.float32), "cw")
    model = _model([helper.make_node("Conv", ["x", "cw"], ["c"]),
                    helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"])],
                   [helper.make_tensor_value_info("x", f, [1, 2, 4, 4])], ["y"],
                   [conv_w] + [onnx.numpy_helper.from_array(v, k) for k, v in p.items()])
    code, err = run_generate(sandbox, model.SerializeToString())
    assert assert_clean_outcome(code, err, "bn", sandbox) == "refused" and "shape" in err
