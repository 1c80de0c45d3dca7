"""The ONNX frontend: what it accepts, what it turns into constants, and the one-line errors it
gives for models it cannot translate."""
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import nnbuild
from nnbuild.errors import ModelError, UsageError
from nnbuild.frontend.onnx_import import NEWEST_OPSET
from nnbuild.ir import format_graph

from helpers import make_model

F32 = np.float32


def relu_model(shape=(2, 3), opset=17):
    return make_model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                      {"x": (F32, list(shape))}, ["y"], opset=opset)


# --- external data ------------------------------------------------------------------------------
def save_with_external_data(model, folder, location="weights.bin"):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "model.onnx")
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
              location=location, size_threshold=0)
    return path


def external_model():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 8)).astype(F32)
    b = rng.standard_normal(8).astype(F32)
    nodes = [helper.make_node("Mul", ["x", "w"], ["m"], name="mul"),
             helper.make_node("Add", ["m", "b"], ["y"], name="add")]
    return make_model(nodes, {"x": (F32, [8, 8])}, ["y"], {"w": w, "b": b}), w, b


def test_external_data_compiles_and_matches(tmp_path, cache_dir):
    model, w, b = external_model()
    path = save_with_external_data(model, str(tmp_path / "m"))
    assert sorted(os.listdir(tmp_path / "m")) == ["model.onnx", "weights.bin"]
    graph = nnbuild.translate(path)
    np.testing.assert_array_equal(graph.constants["w"], w)
    compiled = nnbuild.compile(path, cache_dir=cache_dir)
    x = np.random.default_rng(1).standard_normal((8, 8)).astype(F32)
    np.testing.assert_allclose(compiled.run({"x": x})["y"], x * w + b, rtol=1e-6)


def test_external_data_is_part_of_the_model_hash(tmp_path):
    from nnbuild import api
    model, w, b = external_model()
    path = save_with_external_data(model, str(tmp_path / "m"))
    before = api._source(path)[2]
    data = (tmp_path / "m" / "weights.bin").read_bytes()
    (tmp_path / "m" / "weights.bin").write_bytes(data[:-4] + b"\0\0\0\0")
    assert api._source(path)[2] != before          # new weights: new cache entry, new build


@pytest.mark.parametrize("location", ["../outside.bin", "sub/../../outside.bin", "/etc/hostname",
                                      "link.bin"])
def test_external_data_outside_the_model_folder_is_an_error(tmp_path, location):
    model, _, _ = external_model()
    folder = tmp_path / "m"
    path = save_with_external_data(model, str(folder))
    (tmp_path / "outside.bin").write_bytes((folder / "weights.bin").read_bytes())
    os.symlink(str(tmp_path / "outside.bin"), str(folder / "link.bin"))
    proto = onnx.load(path, load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(proto, path)
    with pytest.raises(ModelError, match=f"tensor '[wb]': external data location "
                                         f"'{location}' leaves the model's folder"):
        nnbuild.translate(path)


def test_missing_or_short_external_data_is_an_error(tmp_path):
    model, _, _ = external_model()
    path = save_with_external_data(model, str(tmp_path / "m"))
    data_file = tmp_path / "m" / "weights.bin"
    data_file.write_bytes(data_file.read_bytes()[:100])
    with pytest.raises(ModelError, match="external data 'weights.bin' holds .* bytes, needs"):
        nnbuild.translate(path)
    data_file.unlink()
    with pytest.raises(ModelError, match="cannot read external data 'weights.bin'"):
        nnbuild.translate(path)


# --- constants -----------------------------------------------------------------------------------
def test_initializers_listed_as_graph_inputs_are_constants():
    model = make_model([helper.make_node("Add", ["x", "w"], ["y"])],
                       {"x": (F32, [3]), "w": (F32, [3])}, ["y"], {"w": np.ones(3, F32)})
    assert [i.name for i in model.graph.input] == ["x", "w"]
    graph = nnbuild.translate(model)
    assert graph.inputs == ["x"]
    assert list(graph.constants) == ["w"]


def test_constant_nodes_become_constants_of_every_spelling():
    nodes = [helper.make_node("Constant", [], ["t"], value=numpy_helper.from_array(
                 np.array([[1, 2]], np.int32))),
             helper.make_node("Constant", [], ["f"], value_float=2.5),
             helper.make_node("Constant", [], ["fs"], value_floats=[1.0, 2.0]),
             helper.make_node("Constant", [], ["i"], value_int=3),
             helper.make_node("Constant", [], ["is"], value_ints=[3, 4]),
             helper.make_node("Mul", ["x", "f"], ["y"], name="mul")]
    graph = nnbuild.translate(make_model(nodes, {"x": (F32, [2])}, ["y", "t", "fs", "i", "is"]))
    assert [n.op for n in graph.nodes] == ["Mul"]
    c = graph.constants
    assert c["t"].dtype == np.int32 and c["t"].tolist() == [[1, 2]]
    assert c["f"].dtype == np.float32 and c["f"].shape == () and c["f"] == 2.5
    assert c["fs"].dtype == np.float32 and c["fs"].tolist() == [1.0, 2.0]
    assert c["i"].dtype == np.int64 and c["i"].shape == () and c["i"] == 3
    assert c["is"].dtype == np.int64 and c["is"].tolist() == [3, 4]


def test_unsupported_constant_forms_are_errors():
    model = make_model([helper.make_node("Constant", [], ["s"], name="c", value_string="hi"),
                        helper.make_node("Relu", ["x"], ["y"])], {"x": (F32, [2])}, ["y"])
    with pytest.raises(ModelError, match="node c \\(Constant\\): Constant attribute "
                                         "'value_string' is not supported"):
        nnbuild.translate(model)


# --- shapes --------------------------------------------------------------------------------------
def test_symbolic_input_dims_name_the_input_and_the_binding():
    model = make_model([helper.make_node("Relu", ["data"], ["y"])],
                       {"data": (F32, ["batch", 3, 224])}, ["y"])
    with pytest.raises(ModelError, match=r"input 'data' has symbolic shape \[batch,3,224\]; "
                                         r"bind it with --shape data=Nx3x224"):
        nnbuild.translate(model)
    graph = nnbuild.translate(model, shapes={"data": "2x3x224"})
    assert graph.types["data"].shape == (2, 3, 224) and graph.types["y"].shape == (2, 3, 224)
    assert nnbuild.translate(model, shapes={"data": (1, 3, 224)}).types["y"].shape == (1, 3, 224)


@pytest.mark.parametrize("shapes, message", [
    ({"other": "1x3x224"}, "--shape names other, not inputs of the model \\(inputs: data\\)"),
    ({"data": "2x4x224"}, "--shape data=2x4x224 contradicts input 'data' of shape "
                          "\\[batch,3,224\\] \\(dim 1 is 3\\)"),
    ({"data": "2x3"}, "--shape data=2x3 has rank 2, input 'data' has shape \\[batch,3,224\\]"),
])
def test_bad_shape_bindings_are_errors(shapes, message):
    model = make_model([helper.make_node("Relu", ["data"], ["y"])],
                       {"data": (F32, ["batch", 3, 224])}, ["y"])
    with pytest.raises(ModelError, match=message):
        nnbuild.translate(model, shapes=shapes)


def test_malformed_shape_binding_is_a_usage_error():
    with pytest.raises(UsageError, match="--shape x=2xN: expected dims like"):
        nnbuild.translate(relu_model(), shapes={"x": "2xN"})


def test_input_without_shape_is_an_error():
    model = relu_model()
    model.graph.input[0].type.tensor_type.ClearField("shape")
    with pytest.raises(ModelError, match="input 'x' has no shape; bind it with --shape x="):
        nnbuild.translate(model)
    assert nnbuild.translate(model, shapes={"x": "4"}).types["y"].shape == (4,)


def test_unsupported_element_type_names_the_input():
    model = relu_model()
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.STRING
    with pytest.raises(ModelError, match="input 'x': unsupported tensor element type STRING "
                                         "\\(supported: f32, "):
        nnbuild.translate(model)


# --- ops and opsets ------------------------------------------------------------------------------
def test_all_unsupported_ops_are_reported_in_one_error():
    nodes = [helper.make_node("FancyOp", ["x"], ["a"], name="fancy_1"),
             helper.make_node("Relu", ["a"], ["b"], name="relu"),
             helper.make_node("Warp", ["b"], ["y"], name="warp/2", domain="com.example")]
    model = make_model(nodes, {"x": (F32, [2])}, ["y"])
    model.opset_import.append(helper.make_opsetid("com.example", 3))
    with pytest.raises(ModelError) as info:
        nnbuild.translate(model)
    message = str(info.value)
    assert "\n" not in message
    assert "unsupported ops: FancyOp (opset 17; node fancy_1); " \
           "com.example::Warp (opset 3; node warp/2)" in message


def test_unsupported_ops_are_grouped_by_op():
    nodes = [helper.make_node("FancyOp", ["x"], ["a1"], name="f1")]
    nodes += [helper.make_node("FancyOp", [f"a{i}"], [f"a{i + 1}"], name=f"f{i + 1}")
              for i in range(1, 5)]
    nodes.append(helper.make_node("Identity", ["a5"], ["y"]))
    with pytest.raises(ModelError) as info:
        nnbuild.translate(make_model(nodes, {"x": (F32, [2])}, ["y"]))
    assert "FancyOp (opset 17; nodes f1, f2, f3 and 2 more)" in str(info.value)


def test_ai_onnx_is_the_default_domain():
    model = relu_model()
    model.graph.node[0].domain = "ai.onnx"
    model.opset_import[0].domain = "ai.onnx"
    graph = nnbuild.translate(model)
    assert graph.nodes[0].domain == "" and graph.opsets == {"": 17}


def test_opset_newer_than_onnx_knows_is_an_error():
    with pytest.raises(ModelError, match=f"opset {NEWEST_OPSET + 1} is newer than the "
                                         f"installed onnx knows \\({NEWEST_OPSET}\\)"):
        nnbuild.translate(relu_model(opset=NEWEST_OPSET + 1))


def test_opset_older_than_an_op_supports_is_an_error():
    with pytest.raises(ModelError, match="opset 5 is older than supported for Relu \\(node relu\\)"):
        nnbuild.translate(relu_model(opset=5))


# --- graph structure -----------------------------------------------------------------------------
def test_nodes_out_of_order_are_sorted_and_keep_their_names():
    nodes = [helper.make_node("Relu", ["a"], ["y"], name="second"),
             helper.make_node("Neg", ["x"], ["a"], name="first"), helper.make_node("Neg", ["y"], ["z"])]
    graph = nnbuild.translate(make_model(nodes, {"x": (F32, [3])}, ["z"]))
    assert [(n.op, n.sources) for n in graph.nodes] == [("Neg", ("first",)), ("Relu", ("second",)),
                                                        ("Neg", ("Neg_2",))]


@pytest.mark.parametrize("nodes, outputs, message", [
    ([helper.make_node("Relu", ["nope"], ["y"], name="r")], ["y"],
     "node r \\(Relu\\) reads 'nope', which nothing defines"),
    ([helper.make_node("Relu", ["b"], ["a"], name="n1"), helper.make_node("Neg", ["a"], ["b"])],
     ["a"], "node n1 \\(Relu\\) reads 'b', which nothing defines \\(or a cycle\\)"),
    ([helper.make_node("Relu", ["x"], ["y"])], ["y", "zz"], "graph output 'zz' is never produced"),
    ([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["y"], name="neg")],
     ["y"], "'y' is defined twice \\(node neg\\)"),
    ([helper.make_node("Relu", ["x"], ["y"], name="r", body=helper.make_graph([], "g", [], []))],
     ["y"], "node r \\(Relu\\): attribute 'body' of type GRAPH is not supported"),
])
def test_malformed_graphs_are_one_line_errors(nodes, outputs, message):
    with pytest.raises(ModelError, match=message) as info:
        nnbuild.translate(make_model(nodes, {"x": (F32, [3])}, outputs))
    assert "\n" not in str(info.value)


def test_errors_name_the_model_file(tmp_path):
    path = str(tmp_path / "net.onnx")
    onnx.save(relu_model(opset=NEWEST_OPSET + 1), path)
    with pytest.raises(ModelError, match="^net.onnx: opset"):
        nnbuild.translate(path)


def test_translated_graph_types_every_value_statically():
    graph = nnbuild.translate(make_model(
        [helper.make_node("Add", ["x", "w"], ["a"], name="add"),
         helper.make_node("Cast", ["a"], ["y"], name="cast", to=TensorProto.INT64)],
        {"x": (F32, [2, 3])}, ["y"], {"w": np.ones(3, F32)}))
    assert format_graph(graph) == (
        "graph model opsets(ai.onnx=17) {\n"
        "  input %x: f32[2,3]\n"
        "  const @w: f32[3] = [1.0, 1.0, 1.0]\n"
        "  %a: f32[2,3] = Add(%x, @w)  # add\n"
        "  %y: i64[2,3] = Cast(%a) {to=7}  # cast\n"
        "  output %y\n"
        "}\n")
