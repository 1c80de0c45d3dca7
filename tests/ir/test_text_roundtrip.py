"""The text form of the IR parses back into the same graph: `format_graph` then `parse_graph`
gives a structurally equal graph, and printing that again gives the same text."""
import os

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import nnbuild
from nnbuild.errors import ModelError
from nnbuild.ir import Graph, Node, TensorType, format_graph, parse_graph, verify
from nnbuild.ir.graph import is_splat

from graph_compare import assert_same_graph
from helpers import make_model
from sample_graphs import (ODD_NAMES, attribute_cases, constant_cases, feature_graph,
                           odd_name_graph, symbolic_graph)

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")


def roundtrip(graph: Graph) -> Graph:
    text = format_graph(graph)
    back = parse_graph(text)
    assert_same_graph(back, graph)
    assert format_graph(back) == text, "printing the parsed graph changes the text"
    return back


def test_every_feature_roundtrips():
    roundtrip(feature_graph())


def test_text_shows_the_documented_spellings():
    text = format_graph(feature_graph())
    assert 'graph "feature test" opsets(ai.onnx=17, com.microsoft=1) {' in text
    assert "input %gpu_0/data_0: f32[2,3]" in text
    assert 'input %"a b": f32[2,3]' in text
    assert "const @f32_splat: f32[3,4] = splat(0.1)" in text
    assert "const @bool_small: bool[3] = [true, false, true]" in text
    assert 'const @f32_large: f32[5,7] = b64"' in text
    assert "com.microsoft::Attrs(" in text
    assert '= Clip(%0.weight, _, @f32_scalar)  # conv1, "bn 1", "relu \\"1\\""' in text
    assert "%dropped: f32[2,3], _ = Dropout(%clipped) {seed=0}" in text
    assert 'output %"out,1"' in text and "output @i64_splat" in text


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_roundtrip(name):
    roundtrip(odd_name_graph(name))


@pytest.mark.parametrize("name", sorted(constant_cases()))
def test_constants_roundtrip(name):
    array = constant_cases()[name]
    g = Graph(name="c", inputs=[], outputs=[name])
    g.add_constant(name, array)
    back = roundtrip(g)
    assert is_splat(back.constants[name]) == is_splat(array)


def test_one_value_fills_stay_compact():
    g = Graph(name="c", outputs=["big"])
    g.add_constant("big", np.broadcast_to(np.float32(0.0), (1024, 1024)))
    text = format_graph(g)
    assert len(text) < 200                        # not four megabytes of zeros
    back = parse_graph(text)
    assert is_splat(back.constants["big"]) and back.constants["big"].shape == (1024, 1024)


@pytest.mark.parametrize("key", sorted(attribute_cases()))
def test_attribute_kinds_roundtrip(key):
    g = Graph(name="a", inputs=["x"], outputs=["y"])
    g.types["x"] = g.types["y"] = TensorType(nnbuild.dtypes.FLOAT32, (1,))
    g.nodes = [Node("Op", ("x",), ("y",), {key: attribute_cases()[key]})]
    roundtrip(g)


def test_symbolic_dims_roundtrip():
    back = roundtrip(symbolic_graph())
    assert back.types["x"].shape == ("N", "seq len", "3", 4, "inf")


def test_elided_weights_do_not_parse_silently():
    g = Graph(name="c", outputs=["w"])
    g.add_constant("w", np.zeros(100, np.float32) + 1)
    text = format_graph(g, elide_weights=True)
    assert "<400 bytes>" in text
    with pytest.raises(ModelError, match="elided"):
        parse_graph(text)


@pytest.mark.parametrize("text", ["", "graph", "graph g opsets() {", "graph g opsets() { ?? }",
                                  "graph g opsets() { input %x: f99[1] }"])
def test_bad_text_is_a_model_error(text):
    with pytest.raises(ModelError):
        parse_graph(text)


def _small_onnx_model() -> onnx.ModelProto:
    f32 = np.float32
    nodes = [helper.make_node("Constant", [], ["scale"], name="const0", value_float=2.0),
             helper.make_node("Mul", ["gpu_0/data_0", "scale"], ["scaled"], name="mul/0"),
             helper.make_node("Add", ["scaled", "0.bias"], ["biased"], name="add 0"),
             helper.make_node("Clip", ["biased", "", "hi"], ["clipped"], name="clip"),
             helper.make_node("Dropout", ["clipped"], ["dropped"], name="drop"),
             helper.make_node("Sigmoid", ["dropped"], ["prob"], name="sig"),
             helper.make_node("Cast", ["prob"], ["as_f16"], name="cast", to=10),
             helper.make_node("Greater", ["prob", "half"], ["mask"], name="gt")]
    return make_model(nodes, {"gpu_0/data_0": (f32, [2, 20])}, ["as_f16", "mask", "dropped"],
                      {"0.bias": np.linspace(-1, 1, 20).astype(f32),
                       "hi": np.array(0.75, f32), "half": np.array(0.5, f32)})


@pytest.mark.parametrize("opt_level", [0, 1, 2])
def test_translated_onnx_model_roundtrips(opt_level):
    graph = nnbuild.optimize(nnbuild.translate(_small_onnx_model()), opt_level=opt_level)
    verify(graph)
    roundtrip(graph)


@pytest.mark.parametrize("model", ["light_resnet50.onnx", "light_squeezenet.onnx",
                                   "light_shufflenet.onnx"])
def test_light_model_zoo_roundtrips(model):
    try:
        graph = nnbuild.translate(os.path.join(LIGHT, model))
    except ModelError as e:
        if "unsupported ops" in str(e):
            pytest.skip(f"ops not implemented yet: {e}")
        raise
    roundtrip(graph)
    roundtrip(nnbuild.optimize(graph))


def test_floats_print_shortest_and_read_back_exactly():
    every_f16 = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    f32_bits = np.random.default_rng(0).integers(0, 1 << 32, 20000, dtype=np.uint64)
    some_f32 = f32_bits.astype(np.uint32).view(np.float32)
    for array in (every_f16, some_f32):
        g = Graph(name="floats", outputs=["v"])
        g.add_constant("v", array)
        back = parse_graph(format_graph(g)).constants["v"]
        finite = ~np.isnan(array)
        assert np.array_equal(back.view(array.dtype.str.replace("f", "u"))[finite],
                              array.view(array.dtype.str.replace("f", "u"))[finite])
    g = Graph(name="floats", outputs=["v"])
    g.add_constant("v", np.array([0.1, 1e-7, 3.4028235e38], np.float32))
    assert "[0.1, 1e-07, 3.4028235e+38]" in format_graph(g)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_damaged_text_is_always_one_model_error():
    import random
    text, rng = format_graph(feature_graph()), random.Random(0)
    for _ in range(500):
        chars = list(text)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(chars))
            if rng.random() < 0.5:
                del chars[i]
            else:
                chars.insert(i, rng.choice('%@_[](){},=:<>"#\n 0a.-'))
        try:
            parse_graph("".join(chars))
        except ModelError as e:
            assert "\n" not in str(e) and "line" in str(e)
