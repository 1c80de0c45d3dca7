"""The JSON form of the IR (the intermediate file `nnbuild translate` writes) reads back into
the same graph: `graph_to_json` -> JSON text -> `graph_from_json` is structurally the identity,
and `save_json` / `load_json` do the same through a file."""
import json
import os

import numpy as np
import onnx
import pytest
from onnx import helper

import nnbuild
from nnbuild.errors import ModelError
from nnbuild.ir import (Graph, Node, TensorType, format_graph, graph_from_json, graph_to_json,
                        load_json, save_json, verify)
from nnbuild.ir.graph import is_splat

from graph_compare import assert_same_graph
from helpers import make_model
from sample_graphs import (ODD_NAMES, attribute_cases, constant_cases, feature_graph,
                           odd_name_graph, symbolic_graph)

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def roundtrip(graph: Graph) -> Graph:
    doc = graph_to_json(graph)
    text = json.dumps(doc, allow_nan=False)                # standard JSON: no NaN, Infinity
    back = graph_from_json(json.loads(text))
    assert_same_graph(back, graph)
    assert json.dumps(graph_to_json(back), allow_nan=False) == text
    return back


def test_every_feature_roundtrips():
    roundtrip(feature_graph())


def test_file_roundtrip(tmp_path):
    path = str(tmp_path / "m.nnir.json")
    save_json(feature_graph(), path)
    assert_same_graph(load_json(path), feature_graph())
    assert os.listdir(tmp_path) == ["m.nnir.json"]          # no temporary left behind


def test_document_is_plain_json_with_format_and_version():
    doc = json.loads(json.dumps(graph_to_json(feature_graph())))
    assert doc["format"] == "nnir" and doc["version"] == 1
    assert doc["constants"]["f32_splat"] == {"dtype": "f32", "shape": [3, 4],
                                             "splat": pytest.approx(0.1)}
    assert set(doc["constants"]["f32_large"]) == {"dtype", "shape", "data"}
    node = doc["nodes"][2]
    assert node["inputs"] == ["0.weight", "", "f32_scalar"]
    assert node["sources"] == ["conv1", "bn 1", 'relu "1"']


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_roundtrip(name):
    roundtrip(odd_name_graph(name))


@pytest.mark.parametrize("name", sorted(constant_cases()))
def test_constants_roundtrip(name):
    g = Graph(name="c", outputs=[name])
    g.add_constant(name, constant_cases()[name])
    back = roundtrip(g)
    assert is_splat(back.constants[name]) == is_splat(constant_cases()[name])


def test_one_value_fills_stay_compact():
    g = Graph(name="c", outputs=["big"])
    g.add_constant("big", np.broadcast_to(np.float32(0.0), (1024, 1024)))
    text = json.dumps(graph_to_json(g))
    assert len(text) < 400
    assert is_splat(graph_from_json(json.loads(text)).constants["big"])


@pytest.mark.parametrize("key", sorted(attribute_cases()))
def test_attribute_kinds_roundtrip(key):
    g = Graph(name="a", inputs=["x"], outputs=["y"])
    g.types["x"] = g.types["y"] = TensorType(nnbuild.dtypes.FLOAT32, (1,))
    g.nodes = [Node("Op", ("x",), ("y",), {key: attribute_cases()[key]})]
    roundtrip(g)


def test_symbolic_dims_roundtrip():
    roundtrip(symbolic_graph())


def test_json_and_text_forms_agree():
    g = feature_graph()
    assert format_graph(graph_from_json(graph_to_json(g))) == format_graph(g)


@pytest.mark.parametrize("content, message", [
    ("not json at all", "cannot read intermediate file"),
    ('{"format": "onnx"}', 'not an nnbuild intermediate file'),
    ('{"format": "nnir", "version": 99}', "version 99"),
    ('{"format": "nnir", "version": 1}', "malformed"),
    ('{"format": "nnir", "version": 1, "name": "g", "inputs": [], "outputs": [], "opsets": {},'
     ' "types": {"x": {"dtype": "f99", "shape": [1]}}, "constants": {}, "nodes": []}', "malformed"),
    ('{"format": "nnir", "version": 1, "name": "g", "inputs": [], "outputs": [], "opsets": {},'
     ' "types": {}, "constants": {"c": {"dtype": "f32", "shape": [4], "data": "AAAA"}},'
     ' "nodes": []}', "malformed"),
])
def test_bad_files_are_one_model_error(tmp_path, content, message):
    path = tmp_path / "bad.nnir.json"
    path.write_text(content)
    with pytest.raises(ModelError, match=message):
        load_json(str(path))


def test_translated_onnx_model_roundtrips(tmp_path):
    f32 = np.float32
    nodes = [helper.make_node("Mul", ["gpu_0/data_0", "w"], ["scaled"], name="mul/0"),
             helper.make_node("Relu", ["scaled"], ["r"], name="relu 0"),
             helper.make_node("Dropout", ["r"], ["d", "mask"], name="drop"),
             helper.make_node("Cast", ["d"], ["out"], name="cast", to=10)]
    model = make_model(nodes, {"gpu_0/data_0": (f32, [3, 20])}, ["out", "mask"],
                       {"w": np.linspace(-1, 1, 20).astype(f32)})
    graph = nnbuild.translate(model)
    verify(graph)
    roundtrip(graph)
    roundtrip(nnbuild.optimize(graph))


@pytest.mark.parametrize("model", ["light_resnet50.onnx", "light_squeezenet.onnx"])
def test_light_model_zoo_roundtrips(model):
    try:
        graph = nnbuild.translate(os.path.join(LIGHT, model))
    except ModelError as e:
        if "unsupported ops" in str(e):
            pytest.skip(f"ops not implemented yet: {e}")
        raise
    roundtrip(graph)
    roundtrip(nnbuild.optimize(graph))
