"""The pass manager runs a pipeline (one plain list per -O level), dumps the text IR after
every pass as NNN_<pass>.nnir, verifies the graph after every pass when asked (tests always
ask), records timings, and stops after a named pass."""
import os

import numpy as np
import onnx
import pytest
from onnx import helper

import nnbuild
from nnbuild.errors import ModelError, UsageError
from nnbuild.ir import format_graph, parse_graph, verify
from nnbuild.passes import ALL_PASSES, PIPELINES, Pass, PassManager, pipeline

from helpers import make_model
from rewrite_helpers import parse

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")

BEFORE = """
graph g opsets(ai.onnx=17) {
  input %x: f32[4]
  const @a: f32[4] = [1.0, 2.0, 3.0, 4.0]
  const @b: f32[4] = splat(0.5)
  %s: f32[4] = Mul(@a, @b)  # fold me
  %i: f32[4] = Identity(%x)  # remove me
  %y: f32[4] = Add(%i, %s)  # add
  %dead: f32[4] = Relu(%x)  # dead
  output %y
}"""


def test_pipelines_are_plain_lists_per_level():
    assert [p.name for p in pipeline(0)] == []
    assert [p.name for p in pipeline(1)] == ["fold-constants", "remove-identity",
                                             "eliminate-dead-code"]
    assert [p.name for p in pipeline(2)] == ["fold-constants", "remove-identity",
                                             "simplify-algebra", "sink-transposes",
                                             "fold-batchnorm", "fold-scale-shift",
                                             "fold-constants",
                                             "eliminate-common-subexpressions",
                                             "eliminate-dead-code", "recognize-layernorm",
                                             "recognize-softmax", "recognize-attention",
                                             "recognize-gelu", "fuse-epilogue",
                                             "fuse-elementwise", "select-conv-algorithm"]
    with pytest.raises(UsageError, match="-O3"):
        pipeline(3)


def test_every_pass_has_a_name_a_purpose_and_a_test_file():
    here = os.path.dirname(__file__)
    for name, p in ALL_PASSES.items():
        assert p.name == name and p.purpose and "\n" not in p.purpose
        test_file = os.path.join(here, f"test_{name.replace('-', '_')}.py")
        assert os.path.isfile(test_file), f"pass {name} has no {os.path.basename(test_file)}"


def test_dump_ir_writes_one_file_per_pass_in_order(tmp_path):
    manager = PassManager(pipeline(2), dump_dir=str(tmp_path / "dump"), verify_each=True)
    result = manager.run(parse(BEFORE))
    files = sorted(os.listdir(tmp_path / "dump"))
    assert files == ["000_input.nnir", "001_fold-constants.nnir", "002_remove-identity.nnir",
                     "003_simplify-algebra.nnir", "004_sink-transposes.nnir",
                     "005_fold-batchnorm.nnir", "006_fold-scale-shift.nnir",
                     "007_fold-constants.nnir", "008_eliminate-common-subexpressions.nnir",
                     "009_eliminate-dead-code.nnir", "010_recognize-layernorm.nnir",
                     "011_recognize-softmax.nnir", "012_recognize-attention.nnir",
                     "013_recognize-gelu.nnir", "014_fuse-epilogue.nnir",
                     "015_fuse-elementwise.nnir", "016_select-conv-algorithm.nnir"]
    # each file is the graph after that pass, and parses back
    graph = parse(BEFORE)
    assert (tmp_path / "dump" / files[0]).read_text() == format_graph(graph)
    for name, p in zip(files[1:], pipeline(2)):
        graph = p.run(graph)
        text = (tmp_path / "dump" / name).read_text()
        assert text == format_graph(graph), name
        assert format_graph(parse_graph(text)) == text
    assert format_graph(result) == format_graph(graph)
    assert "Identity" not in format_graph(result) and "dead" not in format_graph(result)


def test_dump_ir_option_of_the_api(tmp_path):
    nnbuild.optimize(parse(BEFORE), opt_level=1, dump_ir=str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["000_input.nnir", "001_fold-constants.nnir",
                                            "002_remove-identity.nnir",
                                            "003_eliminate-dead-code.nnir"]


def test_stop_after_a_named_pass(tmp_path):
    manager = PassManager(pipeline(2), dump_dir=str(tmp_path), stop_after="remove-identity")
    result = manager.run(parse(BEFORE))
    expected = pipeline(2)[1].run(pipeline(2)[0].run(parse(BEFORE)))
    assert format_graph(result) == format_graph(expected)
    assert "%dead" in format_graph(result)                  # dead-code elimination did not run
    assert sorted(os.listdir(tmp_path)) == ["000_input.nnir", "001_fold-constants.nnir",
                                            "002_remove-identity.nnir"]
    assert [name for name, _ in manager.timings] == ["fold-constants", "remove-identity"]


def test_stop_after_a_pass_that_runs_twice_stops_at_its_first_run():
    manager = PassManager(pipeline(2), stop_after="fold-constants")
    manager.run(parse(BEFORE))
    assert [name for name, _ in manager.timings] == ["fold-constants"]


def test_stop_after_an_unknown_pass_lists_the_pipeline():
    with pytest.raises(UsageError, match="fold-bn: no such pass .*fold-batchnorm"):
        PassManager(pipeline(2), stop_after="fold-bn").run(parse(BEFORE))
    with pytest.raises(UsageError, match="passes: none"):
        PassManager(pipeline(0), stop_after="fold-constants").run(parse(BEFORE))


def test_timings_name_every_pass_that_ran():
    manager = PassManager(pipeline(1))
    manager.run(parse(BEFORE))
    assert [name for name, _ in manager.timings] == [p.name for p in pipeline(1)]
    assert all(seconds >= 0 for _, seconds in manager.timings)


def test_verify_each_catches_a_pass_that_breaks_the_graph():
    def drop_first_node(graph):
        graph = graph.copy()
        graph.nodes = graph.nodes[1:]
        return graph
    broken = Pass("drop-first", "a buggy pass", drop_first_node)
    PassManager([broken]).run(parse(BEFORE))                    # unnoticed without verify
    with pytest.raises(ModelError, match="reads 's' before it is defined"):
        PassManager([broken], verify_each=True).run(parse(BEFORE))


def _small_model():
    f32 = np.float32
    nodes = [helper.make_node("Constant", [], ["k"], name="k", value_float=3.0),
             helper.make_node("Mul", ["k", "w"], ["kw"], name="fold"),
             helper.make_node("Add", ["x", "kw"], ["a"], name="add"),
             helper.make_node("Identity", ["a"], ["i"], name="id"),
             helper.make_node("Dropout", ["i"], ["d"], name="drop"),
             helper.make_node("Relu", ["d"], ["r"], name="relu"),
             helper.make_node("Sigmoid", ["a"], ["unused"], name="dead"),
             helper.make_node("Clip", ["r", "lo", "hi"], ["y"], name="clip")]
    return make_model(nodes, {"x": (f32, [2, 8])}, ["y"],
                      {"w": np.arange(8, dtype=f32), "lo": np.array(0.5, f32),
                       "hi": np.array(6.0, f32)})


@pytest.mark.parametrize("level", sorted(PIPELINES))
def test_translated_model_verifies_after_every_pass(level):
    graph = nnbuild.translate(_small_model())
    verify(graph)
    result = nnbuild.optimize(graph, opt_level=level, verify_each=True)
    ops = [n.op for n in result.nodes]
    assert ops == {0: ["Mul", "Add", "Identity", "Dropout", "Relu", "Sigmoid", "Clip"],
                   1: ["Add", "Relu", "Clip"], 2: ["Elementwise"]}[level]


@pytest.mark.parametrize("model", ["light_resnet50.onnx", "light_shufflenet.onnx",
                                   "light_inception_v2.onnx"])
def test_model_zoo_verifies_after_every_pass(model):
    try:
        graph = nnbuild.translate(os.path.join(LIGHT, model))
    except ModelError as e:
        if "unsupported ops" in str(e):
            pytest.skip(f"ops not implemented yet: {e}")
        raise
    result = nnbuild.optimize(graph, opt_level=2, verify_each=True)
    ops = [n.op for n in result.nodes]
    assert "BatchNormalization" not in ops and "ConstantOfShape" not in ops
