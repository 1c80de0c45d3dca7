"""If, Loop and Scan are resolved while the model is translated (nnbuild/frontend/subgraphs.py):
a compile-time condition inlines its branch, a run-time one computes both and selects, loops
and scans are unrolled. Results match onnxruntime through the built code; subgraphs read
outer-scope values at any depth; what cannot be static is one clear error."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import nnbuild
from helpers import check_against_onnxruntime, make_model
from nnbuild.errors import ModelError

F32, I64 = np.float32, np.int64


def _vi(name, elem=TensorProto.FLOAT, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def _graph(nodes, name, inputs, outputs):
    return helper.make_graph(nodes, name, inputs, outputs)


def _ops(model):
    return {n.op for n in nnbuild.translate(model).nodes}


def _branches(out="y"):
    """then: y = x * w + 1 (outer x and w), else: y = x - w."""
    then = _graph([helper.make_node("Mul", ["x", "w"], ["t0"]),
                   helper.make_node("Add", ["t0", "one"], [out])], "then", [], [_vi(out)])
    other = _graph([helper.make_node("Sub", ["x", "w"], [out])], "else", [], [_vi(out)])
    return then, other


@pytest.mark.parametrize("taken", [True, False])
def test_if_with_compile_time_condition_inlines_the_taken_branch(taken, cache_dir):
    then, other = _branches()
    node = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)
    model = make_model([node], {"x": (F32, [2, 3])}, {"y": (F32, [2, 3])},
                       {"c": np.array(taken), "w": np.full((2, 3), 0.5, F32),
                        "one": np.array(1.0, F32)})
    assert "If" not in _ops(model) and "Where" not in _ops(model)
    check_against_onnxruntime(model, cache_dir)


def test_if_with_run_time_condition_takes_the_branch_the_input_selects(cache_dir):
    then, other = _branches()
    node = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)
    model = make_model([node], {"x": (F32, [2, 3]), "c": (np.bool_, [])}, {"y": (F32, [2, 3])},
                       {"w": np.full((2, 3), 0.5, F32), "one": np.array(1.0, F32)})
    x = np.arange(6, dtype=F32).reshape(2, 3)
    for c in (True, False):
        out = check_against_onnxruntime(model, cache_dir, {"x": x, "c": np.array(c)})
        np.testing.assert_allclose(out["y"], x * 0.5 + 1 if c else x - 0.5)


def test_if_with_run_time_condition_needs_one_type_from_both_branches():
    then = _graph([helper.make_node("Identity", ["x"], ["y"])], "then", [], [_vi("y")])
    other = _graph([helper.make_node("ReduceSum", ["x"], ["y"], keepdims=0)], "else", [],
                   [_vi("y")])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)
    model = make_model([node], {"x": (F32, [2, 3]), "c": (np.bool_, [])}, ["y"])
    with pytest.raises(ModelError, match=r"both branches must give output 'y' one static type"):
        nnbuild.translate(model)


def _loop_body(cond_nodes, cond_out="cond_out"):
    """state s' = s * 0.5 + x[i] (outer x, iteration number i); scan output: s' + i."""
    nodes = [helper.make_node("Gather", ["x", "i"], ["xi"], axis=0),
             helper.make_node("Mul", ["s", "half"], ["s_half"]),
             helper.make_node("Add", ["s_half", "xi"], ["s_next"]),
             helper.make_node("Cast", ["i"], ["i_f"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["s_next", "i_f"], ["scan"])] + cond_nodes
    return _graph(nodes, "body", [_vi("i", TensorProto.INT64, []), _vi("cond", TensorProto.BOOL, []),
                                  _vi("s", shape=[3])],
                  [_vi(cond_out, TensorProto.BOOL, []), _vi("s_next", shape=[3]),
                   _vi("scan", shape=[3])])


def test_loop_with_static_trip_count_unrolls_state_and_scan_outputs(cache_dir):
    body = _loop_body([helper.make_node("Identity", ["cond"], ["cond_out"])])
    node = helper.make_node("Loop", ["M", "", "s0"], ["s_final", "scans"], body=body)
    model = make_model([node], {"x": (F32, [5, 3]), "s0": (F32, [3])},
                       {"s_final": (F32, [3]), "scans": (F32, [4, 3])},
                       {"M": np.array(4, I64), "half": np.array(0.5, F32)}, opset=13)
    assert "Loop" not in _ops(model)
    check_against_onnxruntime(model, cache_dir)


def test_loop_stopped_by_a_compile_time_condition_needs_no_trip_count(cache_dir):
    body = _loop_body([helper.make_node("Less", ["i", "three"], ["cond_out"])])
    node = helper.make_node("Loop", ["", "", "s0"], ["s_final", "scans"], body=body)
    model = make_model([node], {"x": (F32, [5, 3]), "s0": (F32, [3])},
                       {"s_final": (F32, [3]), "scans": (F32, [4, 3])},
                       {"half": np.array(0.5, F32), "three": np.array(3, I64)}, opset=13)
    check_against_onnxruntime(model, cache_dir)


def test_loop_with_run_time_condition_keeps_the_state_of_the_last_iteration_run(cache_dir):
    """The loop stops once the sum of the state passes the input threshold t (data decides)."""
    cond = [helper.make_node("ReduceSum", ["s_next"], ["total"], keepdims=0),
            helper.make_node("Less", ["total", "t"], ["cond_out"])]
    body = _loop_body(cond)
    del body.output[2]                                  # no scan output: its length would vary
    body.node.pop(4)
    node = helper.make_node("Loop", ["M", "c0", "s0"], ["s_final"], body=body)
    model = make_model([node], {"x": (F32, [5, 3]), "s0": (F32, [3]), "t": (F32, []),
                                "c0": (np.bool_, [])}, {"s_final": (F32, [3])},
                       {"M": np.array(5, I64), "half": np.array(0.5, F32)}, opset=13)
    x = np.linspace(0.1, 1.5, 15, dtype=F32).reshape(5, 3)
    stops = set()
    for t, c0 in [(-1.0, True), (1.0, True), (2.0, True), (4.0, True), (100.0, True),
                  (100.0, False)]:
        feeds = {"x": x, "s0": np.zeros(3, F32), "t": np.array(t, F32), "c0": np.array(c0)}
        stops.add(float(check_against_onnxruntime(model, cache_dir, feeds)["s_final"].sum()))
    assert len(stops) == 6                              # 1, 2, 3, 4, 5 and 0 iterations


def test_loop_with_run_time_condition_and_no_trip_count_is_refused():
    body = _loop_body([helper.make_node("Identity", ["cond"], ["cond_out"])])
    node = helper.make_node("Loop", ["", "c0", "s0"], ["s_final", "scans"], body=body)
    model = make_model([node], {"x": (F32, [5, 3]), "s0": (F32, [3]), "c0": (np.bool_, [])},
                       ["s_final", "scans"], {"half": np.array(0.5, F32)}, opset=13)
    with pytest.raises(ModelError, match=r"node .*\(Loop\): .*needs a static trip count M"):
        nnbuild.translate(model)


def test_scan_along_other_axes_and_in_reverse(cache_dir):
    """Two scan inputs read along axis 1, the second backwards; outputs stacked along axis 1,
    the second in reverse. The body's If (compile-time condition from the outer graph) reads
    the outermost value w: outer-scope names resolve through nested subgraphs."""
    inner_then = _graph([helper.make_node("Mul", ["a", "w"], ["aw"])], "t", [], [_vi("aw")])
    inner_else = _graph([helper.make_node("Identity", ["a"], ["aw"])], "e", [], [_vi("aw")])
    body = _graph([helper.make_node("Add", ["acc", "a"], ["a_sum"]),
                   helper.make_node("If", ["flag"], ["a_w"], then_branch=inner_then,
                                    else_branch=inner_else),
                   helper.make_node("Mul", ["a_w", "b"], ["prod"]),
                   helper.make_node("Add", ["a_sum", "prod"], ["acc_next"])],
                  "body", [_vi("acc", shape=[2]), _vi("a", shape=[2]), _vi("b", shape=[2])],
                  [_vi("acc_next", shape=[2]), _vi("prod", shape=[2]), _vi("a_sum", shape=[2])])
    node = helper.make_node("Scan", ["acc0", "A", "B"], ["acc", "P", "S"], body=body,
                            num_scan_inputs=2, scan_input_axes=[1, 1],
                            scan_input_directions=[0, 1], scan_output_axes=[1, -1],
                            scan_output_directions=[0, 1])
    model = make_model([node], {"acc0": (F32, [2]), "A": (F32, [2, 4]), "B": (F32, [2, 4])},
                       {"acc": (F32, [2]), "P": (F32, [2, 4]), "S": (F32, [2, 4])},
                       {"flag": np.array(True), "w": np.array([2.0, -1.0], F32)}, opset=16)
    assert "Scan" not in _ops(model)
    check_against_onnxruntime(model, cache_dir)


def test_ops_without_a_kernel_inside_a_body_are_expanded_to_their_function(cache_dir):
    """MeanVarianceNormalization has no kernel: in a branch, like at the top level, it becomes
    its ONNX function body."""
    then = _graph([helper.make_node("MeanVarianceNormalization", ["x"], ["y"], axes=[0, 2])],
                  "then", [], [_vi("y")])
    other = _graph([helper.make_node("Identity", ["x"], ["y"])], "else", [], [_vi("y")])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)
    model = make_model([node], {"x": (F32, [2, 3, 4])}, {"y": (F32, [2, 3, 4])},
                       {"c": np.array(True)}, opset=18)
    check_against_onnxruntime(model, cache_dir)


@pytest.mark.parametrize("edit, message", [
    (lambda body: body.output.pop(), r"the body takes 3 inputs and gives 1 outputs; the loop carries 1"),
    (lambda body: body.input.pop(), r"the body takes 2 inputs and gives 2 outputs"),
])
def test_a_loop_body_of_the_wrong_arity_is_one_error(edit, message):
    body = _loop_body([helper.make_node("Identity", ["cond"], ["cond_out"])])
    body.output.pop()                                   # state only
    edit(body)
    node = helper.make_node("Loop", ["M", "", "s0"], ["s_final"], body=body)
    model = make_model([node], {"x": (F32, [5, 3]), "s0": (F32, [3])}, ["s_final"],
                       {"M": np.array(2, I64), "half": np.array(0.5, F32)}, opset=13)
    with pytest.raises(ModelError, match=message):
        nnbuild.translate(model)


def test_an_unrolled_loop_is_plain_ir_that_round_trips_and_optimizes():
    """No subgraph reaches the IR: the unrolled copies print, parse back and pass -O2 (with
    its verifier); node sources name the Loop and the body node, values their iteration."""
    from nnbuild.ir import jsonio, text
    body = _loop_body([helper.make_node("Identity", ["cond"], ["cond_out"])])
    node = helper.make_node("Loop", ["M", "", "s0"], ["s_final", "scans"], body=body,
                            name="steps")
    model = make_model([node], {"x": (F32, [5, 3]), "s0": (F32, [3])},
                       {"s_final": (F32, [3]), "scans": (F32, [3, 3])},
                       {"M": np.array(3, I64), "half": np.array(0.5, F32)}, opset=13)
    graph = nnbuild.translate(model)
    printed = text.format_graph(graph)
    assert text.format_graph(text.parse_graph(printed)) == printed
    assert text.format_graph(jsonio.graph_from_json(jsonio.graph_to_json(graph))) == printed
    assert "%s_next.2" in printed and "# steps/Add_2.2" in printed
    nnbuild.optimize(graph, opt_level=2)
