"""Static memory planning (codegen.plan): one arena, offsets from liveness; views share their
input's bytes (no copy), elementwise ops overwrite an input nobody reads afterwards; the
arena of the light model-zoo nets is within 10% of the lower bound."""
import glob
import os

import numpy as np
import onnx
import pytest
from onnx import helper

import nnbuild
from nnbuild.codegen.plan import plan_memory
from nnbuild.ir import parse_graph

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")

CHAIN = """
graph g opsets(ai.onnx=17) {
  input %x: f32[2,8]
  const @shape: i64[1] = [16]
  %a: f32[2,8] = Exp(%x)  # exp
  %b: f32[16] = Reshape(%a, @shape)  # view
  %c: f32[16] = Neg(%b)  # neg
  %d: f32[16] = Sigmoid(%c)  # sig
  %y: f32[16] = Add(%d, %c)  # add
  output %y
}"""


def test_a_view_shares_its_input_and_elementwise_ops_overwrite_dead_inputs():
    plan = plan_memory(parse_graph(CHAIN))
    assert plan.aliases == {1: ("b", "a")}
    assert plan.in_place == {2: ("c", "b")}       # Sigmoid's input c is read again by Add
    assert plan.offsets["a"] == plan.offsets["b"] == plan.offsets["c"]
    assert plan.offsets["d"] != plan.offsets["c"]
    assert plan.arena_bytes == plan.lower_bound == 128
    assert plan.naive_bytes == 4 * 64


def test_the_view_emits_no_copy(tmp_path):
    from nnbuild.codegen.project import generate_project
    from nnbuild.options import Options
    project = generate_project(parse_graph(CHAIN), Options(), "g.nnir", "0" * 64)
    source = project.files["src/g.c"].decode()
    assert "memcpy" not in source.split("_run_ws")[1]
    assert "b = a viewed as f32[16]: no copy" in source


def test_graph_inputs_and_outputs_are_never_shared():
    plan = plan_memory(parse_graph("""
    graph g opsets(ai.onnx=17) {
      input %x: f32[4]
      %a: f32[4] = Neg(%x)  # neg
      %y: f32[4] = Exp(%a)  # exp
      output %y
    }"""))
    assert plan.in_place == {} and plan.aliases == {} and plan.arena_bytes == 64


def test_broadcast_operand_in_the_same_buffer_blocks_in_place():
    plan = plan_memory(parse_graph("""
    graph g opsets(ai.onnx=17) {
      input %x: f32[4,4]
      const @s: i64[2] = [16, 1]
      %a: f32[4,4] = Exp(%x)  # exp
      %b: f32[16,1] = Reshape(%a, @s)  # view
      %c: f32[16,16] = Add(%b, %a)  # add: b broadcast across a row, a down a column
      %y: f32[16,16] = Neg(%c)  # neg
      output %y
    }"""))
    assert 2 not in plan.in_place


def test_compiled_views_and_in_place_ops_match_onnxruntime(cache_dir):
    from helpers import check_against_onnxruntime, make_model
    nodes = [helper.make_node("Exp", ["x"], ["a"], name="exp"),
             helper.make_node("Flatten", ["a"], ["b"], name="flat", axis=1),
             helper.make_node("Neg", ["b"], ["c"], name="neg"),
             helper.make_node("Sigmoid", ["c"], ["d"], name="sig"),
             helper.make_node("Add", ["d", "c"], ["e"], name="add"),
             helper.make_node("Unsqueeze", ["e", "axes"], ["f"], name="unsq"),
             helper.make_node("Squeeze", ["f", "axes"], ["g"], name="sq"),
             helper.make_node("Mul", ["g", "g"], ["y"], name="square")]
    model = make_model(nodes, {"x": (np.float32, [2, 3, 4])}, ["y"],
                       {"axes": np.array([0], np.int64)})
    graph = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    plan = plan_memory(graph)
    assert plan.aliases and plan.in_place
    for level in (0, 1, 2):
        check_against_onnxruntime(model, cache_dir, opt_level=level)


@pytest.mark.parametrize("net", ["squeezenet", "shufflenet", "bvlc_alexnet"])
def test_light_model_zoo_arena_within_ten_percent_of_the_lower_bound(net):
    path = os.path.join(LIGHT, f"light_{net}.onnx")
    if not os.path.exists(path):
        pytest.skip(f"{path} is not in this onnx package")
    plan = plan_memory(nnbuild.optimize(nnbuild.translate(path), opt_level=2))
    assert plan.lower_bound <= plan.arena_bytes <= 1.1 * plan.lower_bound
    assert plan.arena_bytes < plan.naive_bytes / 3
