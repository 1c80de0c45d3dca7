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

from helpers import target_param

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


# --- Concat in place ------------------------------------------------------------------------------
def concat_graph(body: str, inputs: str = "input %x: f32[1,2,4,4]") -> str:
    return f"graph g opsets(ai.onnx=17) {{\n{inputs}\n{body}\n}}"


def simulate(graph, plan, feeds: dict) -> dict:
    """Run ``graph`` with numpy references, every arena value read from and written to one
    byte array at its planned offset: views write nothing, a Concat writes only the inputs it
    copies, each node's scratch is filled with garbage. The outputs equal a plain evaluation
    only if no value is overwritten while it is still needed."""
    from nnbuild.ops import registry
    arena = np.zeros(plan.arena_bytes + 64, np.uint8)
    outside = dict(graph.constants) | {k: np.asarray(v) for k, v in feeds.items()}

    def read(name):
        if name in outside:
            return outside[name]
        t = graph.types[name]
        at = plan.offsets[name]
        return arena[at:at + t.nbytes].view(t.dtype.numpy).reshape(t.shape).copy()

    def write(name, value, skip=()):
        if name in graph.outputs:
            outside[name] = value
            return
        data = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
        at = plan.offsets[name]
        keep = [(a, arena[at + a:at + b].copy()) for a, b in skip]
        arena[at:at + data.size] = data
        for a, saved in keep:                 # the bytes the producers wrote stay
            arena[at + a:at + a + saved.size] = saved

    for index, node in enumerate(graph.nodes):
        if plan.scratch_key(index) in plan.offsets:
            at = plan.offsets[plan.scratch_key(index)]
            arena[at:at + registry.get(node).scratch_bytes(node, graph)] = 0xFF
        results = registry.get(node).reference(node, *[read(i) if i else None
                                                       for i in node.inputs])
        if index in plan.aliases and node.outputs[0] not in graph.outputs:
            continue
        skip = [(off, off + graph.types[node.inputs[k]].nbytes)
                for k, off in plan.slices.get(index, {}).items()]
        for name, value in zip(node.outputs, results):
            if name:
                write(name, np.asarray(value, graph.types[name].dtype.numpy), skip)
    return {name: outside[name] for name in graph.outputs}


def check_plan(text: str, seed: int = 0, every: bool = True):
    """The plan of ``text`` (``every``: every Concat allowed its slices, else the planner's
    choice), after checking that running through its arena gives the outputs of a plain
    evaluation."""
    from nnbuild.ops import registry
    graph = parse_graph(text)
    plan = plan_memory(graph, set(range(len(graph.nodes))) if every else None)
    rng = np.random.default_rng(seed)
    feeds = {n: rng.standard_normal(graph.types[n].shape).astype(np.float32)
             for n in graph.inputs}
    values = dict(graph.constants) | feeds
    for node in graph.nodes:
        for name, v in zip(node.outputs, registry.get(node).reference(
                node, *[values[i] if i else None for i in node.inputs])):
            values[name] = np.asarray(v)
            assert values[name].shape == graph.types[name].shape, name
    got = simulate(graph, plan, feeds)
    for name in graph.outputs:
        np.testing.assert_array_equal(got[name], values[name], err_msg=name)
    return graph, plan


FIRE = """
  %s: f32[1,2,4,4] = Exp(%x)  # squeeze
  %a: f32[1,2,4,4] = Neg(%s)  # left
  %b: f32[1,6,4,4] = Concat(%s, %a, %s) {axis=-3}  # mixed
  %c: f32[1,2,4,4] = Sigmoid(%x)  # right
  %y: f32[1,8,4,4] = Concat(%s, %a, %c, %s) {axis=1}  # fire
  %z: f32[1,8,4,4] = Relu(%y)  # relu
  %w: f32[1,14,4,4] = Concat(%b, %z) {axis=1}  # both
  %o: f32[1,14,4,4] = Exp(%w)  # out
  output %o"""


def test_concat_inputs_are_written_in_place_at_their_slices():
    graph, plan = check_plan(concat_graph("""
  %a: f32[1,2,4,4] = Exp(%x)  # exp
  %b: f32[1,1,4,4] = Sigmoid(%q)  # sig
  %c: f32[1,2,4,4] = Neg(%x)  # neg
  %y: f32[1,5,4,4] = Concat(%a, %b, %c) {axis=1}  # cat
  %z: f32[1,5,4,4] = Relu(%y)  # relu
  %w: f32[1,5,4,4] = Exp(%z)  # out
  output %w""", "input %x: f32[1,2,4,4]\ninput %q: f32[1,1,4,4]"))
    assert plan.slices == {3: {0: 0, 1: 128, 2: 192}}    # 4x4 floats per channel: 64 bytes
    y = plan.offsets["y"]
    assert (plan.offsets["a"], plan.offsets["b"], plan.offsets["c"]) == (y, y + 128, y + 192)
    assert plan.in_place == {4: ("z", "y")}             # and Relu overwrites the whole of it
    assert plan.arena_bytes == 5 * 64


def test_the_in_place_concat_emits_no_copy():
    from nnbuild.codegen.project import generate_project
    from nnbuild.options import Options
    graph = parse_graph(concat_graph("""
  %a: f32[1,2,4,4] = Exp(%x)  # exp
  %c: f32[1,2,4,4] = Neg(%x)  # neg
  %y: f32[1,6,4,4] = Concat(%a, %x, %c) {axis=1}  # cat
  %w: f32[1,6,4,4] = Exp(%y)  # out
  output %w"""))
    source = generate_project(graph, Options(), "g.nnir", "0" * 64).files["src/g.c"].decode()
    step = source.split("cat (Concat)")[1].split("out (Exp)")[0]
    assert "input 0: a was written in place at byte 0 of y: no copy" in step
    assert "input 2: c was written in place at byte 256 of y: no copy" in step
    assert step.count("memcpy") == 1 and "inputs[0]" in step     # the graph input is copied


@pytest.mark.parametrize("why, text", [
    ("a leading axis is not 1: the inputs are not contiguous runs", concat_graph("""
  %a: f32[2,2,4,4] = Exp(%x)  # exp
  %c: f32[2,2,4,4] = Neg(%x)  # neg
  %y: f32[2,4,4,4] = Concat(%a, %c) {axis=1}  # cat
  %w: f32[2,4,4,4] = Exp(%y)  # out
  output %w""", "input %x: f32[2,2,4,4]")),
    ("the concat is a graph output", concat_graph("""
  %a: f32[1,2,4,4] = Exp(%x)  # exp
  %c: f32[1,2,4,4] = Neg(%x)  # neg
  %y: f32[1,4,4,4] = Concat(%a, %c) {axis=1}  # cat
  output %y""")),
    ("graph inputs and outputs are never in the arena", concat_graph("""
  %a: f32[1,2,4,4] = Exp(%x)  # exp
  %y: f32[1,4,4,4] = Concat(%x, %a) {axis=1}  # cat
  %w: f32[1,4,4,4] = Exp(%y)  # out
  output %w
  output %a""")),
])
def test_concat_copies_when(why, text):
    graph, plan = check_plan(text)
    assert plan.slices == {}, why


def test_concat_on_axis_zero_is_in_place_at_any_batch():
    graph, plan = check_plan(concat_graph("""
  %a: f32[2,2,4,4] = Exp(%x)  # exp
  %c: f32[2,2,4,4] = Neg(%x)  # neg
  %y: f32[4,2,4,4] = Concat(%a, %c) {axis=0}  # cat
  %w: f32[4,2,4,4] = Exp(%y)  # out
  output %w""", "input %x: f32[2,2,4,4]"))
    assert plan.slices == {2: {0: 0, 1: 256}}


def test_a_slice_must_start_at_a_multiple_of_64_bytes():
    graph, plan = check_plan(concat_graph("""
  %a: f32[1,1,1,3] = Exp(%x)  # exp
  %c: f32[1,2,1,3] = Neg(%d)  # neg
  %e: f32[1,16,1,3] = Sigmoid(%f)  # sig
  %y: f32[1,19,1,3] = Concat(%a, %c, %e) {axis=1}  # cat: byte offsets 0, 12, 36
  %w: f32[1,19,1,3] = Exp(%y)  # out
  output %w""", "input %x: f32[1,1,1,3]\ninput %d: f32[1,2,1,3]\ninput %f: f32[1,16,1,3]"))
    assert plan.slices == {3: {0: 0}}


def test_a_value_takes_one_slice_only():
    # s twice in one concat and in two concats: its first place wins, the others copy; a
    # concat output (b) is itself a slice of a later concat (w), and z, written in place over y,
    # takes y's slice of w with it
    graph, plan = check_plan(concat_graph(FIRE))
    assert plan.slices == {2: {0: 0, 1: 128}, 4: {2: 256}, 6: {0: 0, 1: 384}}
    w = plan.offsets["w"]
    assert plan.offsets["b"] == plan.offsets["s"] == w
    assert plan.offsets["a"] == w + 128
    assert plan.offsets["y"] == plan.offsets["z"] == w + 384
    assert plan.offsets["c"] == w + 384 + 256
    assert plan.in_place[5] == ("z", "y")


def test_views_and_in_place_results_carry_their_source_into_the_slice():
    graph, plan = check_plan(concat_graph("""
  const @shape: i64[4] = [1, 2, 4, 4]
  %e: f32[1,32] = Exp(%v)  # exp
  %r: f32[1,2,4,4] = Reshape(%e, @shape)  # view
  %s: f32[1,2,4,4] = Exp(%x)  # exp2
  %t: f32[1,2,4,4] = Relu(%s)  # relu
  %y: f32[1,4,4,4] = Concat(%t, %r) {axis=1}  # cat
  %w: f32[1,4,4,4] = Exp(%y)  # out
  output %w""", "input %x: f32[1,2,4,4]\ninput %v: f32[1,32]"))
    y = plan.offsets["y"]
    assert plan.offsets["s"] == plan.offsets["t"] == y
    assert plan.offsets["e"] == plan.offsets["r"] == y + 128
    assert plan.slices == {4: {0: 0, 1: 128}} and plan.in_place == {3: ("t", "s")}
    assert plan.aliases == {1: ("r", "e")}


LATE_READ = concat_graph("""
  %a: f32[1,2,4,4] = Exp(%x)  # exp
  %c: f32[1,2,4,4] = Neg(%x)  # neg
  %y: f32[1,4,4,4] = Concat(%a, %c) {axis=1}  # cat
  %z: f32[1,4,4,4] = Neg(%y)  # may not overwrite y: a is read later
  %e: f32[1,2,4,4] = Add(%a, %x)  # reads a after the concat
  %w: f32[1,4,4,4] = Concat(%e, %e) {axis=1}  # e twice
  %o: f32[1,4,4,4] = Add(%w, %z)  # out
  output %o""")


def test_an_input_read_after_the_concat_keeps_its_slice_alive():
    graph, plan = check_plan(LATE_READ)
    assert plan.slices == {2: {0: 0, 1: 128}, 5: {0: 0}}
    # e may not overwrite a either: both are slices of bigger buffers (y, w) that would overlap
    assert plan.in_place == {}


def test_slices_that_would_grow_the_arena_by_more_than_five_percent_are_left_out():
    # cat's slices keep a (and so all of y) alive until Add reads it, beside z: without them
    # z overwrites y and the arena is 640 bytes, with them 768
    graph, plan = check_plan(LATE_READ, every=False)
    assert plan_memory(graph, set()).arena_bytes == plan.arena_bytes == 640
    assert plan_memory(graph, {2, 5}).arena_bytes == 768
    assert plan.slices == {5: {0: 0}} and plan.in_place[3] == ("z", "y")


def test_the_plan_with_concat_slices_is_deterministic():
    import subprocess
    import sys
    code = ("from nnbuild.ir import parse_graph; from nnbuild.codegen.plan import plan_memory; "
            f"print(plan_memory(parse_graph({concat_graph(FIRE)!r})))")
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONHASHSEED=str(seed)), check=True).stdout
            for seed in (1, 2, 3)}
    assert len(runs) == 1


def fire_and_dense_model():
    """A SqueezeNet fire module (two expand convs into one Concat), then DenseNet-like concats:
    a pooled map with a conv of it, and that concat with a conv of itself (nested; its second
    slice would start at 2000 bytes, not a multiple of 64: copied)."""
    from helpers import make_model
    rng = np.random.default_rng(1)

    def w(*shape):
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)
    conv = lambda x, wt, y, **a: helper.make_node("Conv", [x, wt], [y], name=y, **a)  # noqa
    relu = lambda x, y: helper.make_node("Relu", [x], [y], name=y)                      # noqa
    nodes = [conv("x", "ws", "s0"), relu("s0", "s"),
             conv("s", "w1", "e10"), relu("e10", "e1"),
             conv("s", "w3", "e30", pads=[1, 1, 1, 1]), relu("e30", "e3"),
             helper.make_node("Concat", ["e1", "e3"], ["y"], name="fire", axis=1),
             helper.make_node("MaxPool", ["y"], ["p"], name="pool", kernel_shape=[2, 2],
                              strides=[2, 2]),
             conv("p", "wd", "d", pads=[1, 1, 1, 1]),
             helper.make_node("Concat", ["p", "d"], ["z"], name="dense1", axis=1),
             conv("z", "wz", "dz"),
             helper.make_node("Concat", ["z", "dz"], ["z2"], name="dense2", axis=1),
             helper.make_node("Sigmoid", ["z2"], ["out"], name="out")]
    return make_model(nodes, {"x": (np.float32, [1, 8, 10, 10])}, ["out"],
                      {"ws": w(4, 8, 1, 1), "w1": w(8, 4, 1, 1), "w3": w(8, 4, 3, 3),
                       "wd": w(4, 16, 3, 3), "wz": w(5, 20, 1, 1)})


@target_param(["generic", "x86-avx2"])
def test_compiled_concats_in_place_match_onnxruntime_at_any_thread_count(target, cache_dir):
    from helpers import check_at_thread_counts
    from nnbuild import targets
    model = fire_and_dense_model()
    graph = nnbuild.optimize(nnbuild.translate(model), opt_level=2)
    with targets.using(targets.resolve(target)):
        plan = plan_memory(graph)
    cats = {graph.nodes[i].label: v for i, v in plan.slices.items()}
    assert cats == {"fire": {0: 0, 1: 3200}, "dense1": {0: 0, 1: 1600}, "dense2": {0: 0}}
    check_at_thread_counts(model, cache_dir, target)


def test_inspect_reports_the_concat_inputs_written_in_place():
    from nnbuild.analysis.report import inspect_report
    graph = parse_graph(concat_graph("""
  %a: f32[1,2,4,4] = Exp(%x)  # exp
  %c: f32[1,2,4,4] = Neg(%x)  # neg
  %y: f32[1,6,4,4] = Concat(%a, %c, %x) {axis=1}  # cat
  %w: f32[1,6,4,4] = Exp(%y)  # out
  output %w"""))
    assert "2 concat inputs written in place (in 1 concats)" in inspect_report(graph)


def random_concat_graph(seed: int) -> str:
    """A random graph of [1, c, 2, 4] tensors (32 bytes a channel: half the slice offsets are
    not 64-byte aligned): elementwise ops (some in place), views, Softmax (never in place),
    channel Concats of earlier values (repeats, nesting), a few graph outputs."""
    rng = np.random.default_rng(seed)
    lines, values = [], [("x", 2)]
    for k in range(14):
        name, kind = f"v{k}", rng.integers(6)
        if kind == 0:
            a, b = (values[i] for i in rng.integers(len(values), size=2))
            parts = [a, b] + ([values[rng.integers(len(values))]] if rng.integers(2) else [])
            c = sum(p[1] for p in parts)
            lines.append(f"%{name}: f32[1,{c},2,4] = Concat("
                         + ", ".join(f"%{p[0]}" for p in parts) + ") {axis=1}")
        else:
            src, c = values[rng.integers(len(values))]
            if kind == 1:
                lines.append(f"%{name}: f32[1,{c},2,4] = Identity(%{src})")
            elif kind == 2:
                lines.append(f"%{name}: f32[1,{c},2,4] = Softmax(%{src}) {{axis=-1}}")
            elif kind == 3:
                same = [v for v in values if v[1] == c]
                other = same[rng.integers(len(same))][0]
                lines.append(f"%{name}: f32[1,{c},2,4] = Add(%{src}, %{other})")
            else:
                op = ["Tanh", "Neg", "Sigmoid"][rng.integers(3)]
                lines.append(f"%{name}: f32[1,{c},2,4] = {op}(%{src})")
        values.append((name, c))
    outputs = {values[-1][0]} | {values[i][0] for i in rng.integers(1, len(values), size=2)}
    lines += [f"output %{o}" for o in sorted(outputs)]
    return concat_graph("\n".join(f"  {line}  # n{i}" if not line.startswith("output") else
                                  f"  {line}" for i, line in enumerate(lines)),
                        "input %x: f32[1,2,2,4]")


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_run_correctly_through_the_planned_arena(seed):
    text = random_concat_graph(seed)
    check_plan(text)                                 # every Concat allowed its slices
    check_plan(text, every=False)                    # the planner's choice
