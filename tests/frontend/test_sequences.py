"""Sequences and optionals are compile-time lists while the model is translated
(nnbuild/frontend/subgraphs.py): their lengths and positions are static, so every Sequence*
and Optional* op becomes plain tensor nodes (or none). Results match onnxruntime through the
built code; a sequence at the C API is flattened into its elements."""
import numpy as np
import pytest
from onnx import TensorProto, helper

import nnbuild
from helpers import check_against_onnxruntime, make_model
from nnbuild.errors import ModelError

F32, I64 = np.float32, np.int64


def test_sequence_ops_edit_a_compile_time_list(cache_dir):
    """x [3,4] split into [1,2] rows; insert y in front, drop the last, count, pick, join."""
    nodes = [helper.make_node("SplitToSequence", ["x", "split"], ["parts"], axis=0),
             helper.make_node("SequenceInsert", ["parts", "y", "zero"], ["with_y"]),
             helper.make_node("SequenceLength", ["with_y"], ["n3"]),
             helper.make_node("SequenceErase", ["with_y"], ["short"]),          # the last
             helper.make_node("SequenceAt", ["short", "minus_one"], ["picked"]),
             helper.make_node("ConcatFromSequence", ["short"], ["joined"], axis=0),
             helper.make_node("SequenceConstruct", ["x", "x"], ["pair"]),
             helper.make_node("ConcatFromSequence", ["pair"], ["stacked"], axis=-1, new_axis=1),
             helper.make_node("SequenceEmpty", [], ["empty"], dtype=TensorProto.FLOAT),
             helper.make_node("SequenceInsert", ["empty", "y"], ["one"]),
             helper.make_node("SequenceLength", ["one"], ["n1"]),
             helper.make_node("SplitToSequence", ["x"], ["cols"], axis=1, keepdims=0),
             helper.make_node("SequenceAt", ["cols", "two"], ["col2"]),
             helper.make_node("SplitToSequence", ["x", "three"], ["chunks"], axis=1),
             helper.make_node("SequenceAt", ["chunks", "minus_one"], ["last_chunk"])]
    model = make_model(nodes, {"x": (F32, [3, 4]), "y": (F32, [1, 4])},
                       ["n3", "picked", "joined", "stacked", "n1", "col2", "last_chunk"],
                       {"split": np.array([1, 2], I64), "zero": np.array(0, I64),
                        "minus_one": np.array(-1, I64), "two": np.array(2, I64),
                        "three": np.array(3, I64)}, opset=17)
    assert not {n.op for n in nnbuild.translate(model).nodes} & {
        "SequenceInsert", "SequenceAt", "SplitToSequence", "ConcatFromSequence"}
    out = check_against_onnxruntime(model, cache_dir)
    assert out["n3"] == 3 and out["n1"] == 1 and out["last_chunk"].shape == (3, 1)


def test_sequence_map_runs_its_body_per_element(cache_dir):
    """Each row of x plus the outer tensor b times the element's index-free scale s."""
    body = helper.make_graph(
        [helper.make_node("Mul", ["row", "s"], ["scaled"]),
         helper.make_node("Add", ["scaled", "b"], ["out"]),
         helper.make_node("Shape", ["row"], ["shape"])], "body",
        [helper.make_tensor_value_info("row", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("shape", TensorProto.INT64, None)])
    nodes = [helper.make_node("SplitToSequence", ["x"], ["rows"], axis=0),
             helper.make_node("SequenceMap", ["rows", "s"], ["mapped", "shapes"], body=body),
             helper.make_node("ConcatFromSequence", ["mapped"], ["y"], axis=0),
             helper.make_node("ConcatFromSequence", ["shapes"], ["dims"], axis=0)]
    model = make_model(nodes, {"x": (F32, [3, 4]), "s": (F32, [])}, ["y", "dims"],
                       {"b": np.arange(4, dtype=F32)}, opset=17)
    check_against_onnxruntime(model, cache_dir)


def test_optionals_are_known_to_hold_a_value_or_not(cache_dir):
    opt_type = helper.make_tensor_type_proto(TensorProto.FLOAT, [2])     # the element's type
    nodes = [helper.make_node("Optional", ["x"], ["full"]),
             helper.make_node("Optional", [], ["none"], type=opt_type),
             helper.make_node("OptionalHasElement", ["full"], ["has_full"]),
             helper.make_node("OptionalHasElement", ["none"], ["has_none"]),
             helper.make_node("OptionalHasElement", ["x"], ["has_tensor"]),
             helper.make_node("OptionalGetElement", ["full"], ["got"]),
             helper.make_node("Identity", ["full"], ["full_copy"]),
             helper.make_node("OptionalGetElement", ["full_copy"], ["got_again"]),
             helper.make_node("Neg", ["got_again"], ["y"])]
    model = make_model(nodes, {"x": (F32, [2])},
                       ["has_full", "has_none", "has_tensor", "got", "y"], opset=18)
    out = check_against_onnxruntime(model, cache_dir)
    assert out["has_full"] and not out["has_none"] and out["has_tensor"]


def test_a_sequence_output_is_flattened_into_its_elements():
    """tests/frontend/test_sequence_io.py covers the boundary in full."""
    nodes = [helper.make_node("SequenceConstruct", ["x", "x"], ["pair"])]
    model = make_model(nodes, {"x": (F32, [2])}, ["pair"], opset=17)
    assert nnbuild.translate(model).outputs == ["pair[0]", "pair[1]"]


def test_a_run_time_position_is_refused():
    nodes = [helper.make_node("SequenceConstruct", ["x", "x"], ["pair"]),
             helper.make_node("SequenceAt", ["pair", "i"], ["y"])]
    model = make_model(nodes, {"x": (F32, [2]), "i": (I64, [])}, ["y"], opset=17)
    with pytest.raises(ModelError, match=r"node .* \(SequenceAt\): position 'i' must be known "
                                         r"at compile time"):
        nnbuild.translate(model)


def test_getting_the_element_of_an_empty_optional_is_refused():
    opt_type = helper.make_tensor_type_proto(TensorProto.FLOAT, [2])     # the element's type
    nodes = [helper.make_node("Optional", [], ["none"], type=opt_type),
             helper.make_node("OptionalGetElement", ["none"], ["y"])]
    model = make_model(nodes, {"x": (F32, [2])}, ["y"], opset=18)
    with pytest.raises(ModelError, match=r"the optional '.*' is empty"):
        nnbuild.translate(model)
