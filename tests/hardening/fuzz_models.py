"""Hypothesis strategies that mutate real ONNX models for the frontend fuzz harness.

Seeds: the real-weight networks of tests/models/data and a small "kitchen" model whose ops take
axes, permutations, shapes and several inputs. A mutation is either structured (a model that
parses but is wrong in one way: ranks, missing or duplicate names, cycles, huge dims, negative
or out-of-range axes, attributes of the wrong type, external data pointing outside the model's
folder, element types, opsets) or byte-level (the serialized protobuf flipped, cut, spliced).
"""
from __future__ import annotations

import os

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "models", "data")
SEED_FILES = ["resnet_small", "mobilenet_small", "transformer_small"]

A = onnx.AttributeProto
HUGE = [1 << 31, 1 << 40, (1 << 62), 3_000_000_000, 65536]
EXTERNAL_LOCATIONS = ["../outside.bin", "/etc/passwd", "sub/../../outside.bin", "..",
                      "weights.bin", "missing.bin", "", "a\0b", "./weights.bin",
                      "sub/../weights.bin", "//etc/passwd", "../" * 20 + "etc/passwd"]


def kitchen_model() -> onnx.ModelProto:
    """Small model with axis / perm / shape attributes and shape-carrying inputs."""
    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1], name="transpose"),
        helper.make_node("Softmax", ["t"], ["s"], axis=-1, name="softmax"),
        helper.make_node("Concat", ["s", "t"], ["c"], axis=1, name="concat"),
        helper.make_node("ReduceSum", ["c", "axes"], ["r"], keepdims=1, name="reduce"),
        helper.make_node("Reshape", ["r", "shape"], ["rs"], name="reshape"),
        helper.make_node("Split", ["rs"], ["p0", "p1"], axis=1, num_outputs=2, name="split"),
        helper.make_node("Unsqueeze", ["p0", "uaxes"], ["u"], name="unsqueeze"),
        helper.make_node("Squeeze", ["u", "uaxes"], ["q"], name="squeeze"),
        helper.make_node("Gather", ["q", "idx"], ["g"], axis=0, name="gather"),
        helper.make_node("ConstantOfShape", ["cshape"], ["k"], name="fill",
                         value=numpy_helper.from_array(np.array([1.5], np.float32))),
        helper.make_node("Slice", ["x", "starts", "ends", "saxes"], ["sl"], name="slice"),
        helper.make_node("Add", ["g", "k"], ["y"], name="add"),
        helper.make_node("Flatten", ["sl"], ["z"], axis=1, name="flatten"),
    ]
    inits = {"axes": np.array([2], np.int64), "shape": np.array([2, 6], np.int64),
             "uaxes": np.array([0], np.int64), "idx": np.array([0, 1], np.int64),
             "cshape": np.array([2, 3], np.int64), "starts": np.array([0], np.int64),
             "ends": np.array([2], np.int64), "saxes": np.array([-1], np.int64)}
    graph = helper.make_graph(
        nodes, "kitchen", [helper.make_tensor_value_info("x", f, [2, 3, 3])],
        [helper.make_empty_tensor_value_info("y"), helper.make_empty_tensor_value_info("z")],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def seeds() -> dict:
    out = {name: onnx.load(os.path.join(DATA_DIR, f"{name}.onnx")) for name in SEED_FILES}
    out["kitchen"] = kitchen_model()
    return out


# -- structured mutations: each takes (model, draw) and edits the copy in place ---------------

def _pick(draw, seq):
    return seq[draw(st.integers(0, len(seq) - 1))] if len(seq) else None


def _names(model):
    g = model.graph
    return ([v.name for v in g.input] + [t.name for t in g.initializer]
            + [o for n in g.node for o in n.output])


def wrong_rank(model, draw):
    vi = _pick(draw, list(model.graph.input))
    if vi is None:
        return
    dims = vi.type.tensor_type.shape.dim
    if draw(st.booleans()) and len(dims):
        del dims[-1]
    else:
        dims.add().dim_value = draw(st.integers(0, 4))


def huge_dims(model, draw):
    g = model.graph
    choice = draw(st.integers(0, 2))
    if choice == 0 and len(g.input):
        d = _pick(draw, list(g.input)).type.tensor_type.shape.dim
        if len(d):
            d[draw(st.integers(0, len(d) - 1))].dim_value = _pick(draw, HUGE)
    elif choice == 1 and len(g.initializer):
        t = _pick(draw, list(g.initializer))
        t.dims[:] = [_pick(draw, HUGE)] + list(t.dims[1:])
    else:                       # a ConstantOfShape / Reshape shape tensor of huge values
        ints = [t for t in g.initializer if t.data_type == TensorProto.INT64]
        if ints:
            t = ints[draw(st.integers(0, len(ints) - 1))]
            try:
                arr = numpy_helper.to_array(t).copy().reshape(-1)
            except Exception:           # an earlier mutation broke its dims or data already
                return
            if arr.size:
                arr[draw(st.integers(0, arr.size - 1))] = _pick(draw, HUGE)
                t.CopyFrom(numpy_helper.from_array(arr.reshape(tuple(t.dims)), t.name))


def missing_input(model, draw):
    g = model.graph
    if draw(st.booleans()) and len(g.node):
        n = _pick(draw, list(g.node))
        if len(n.input):
            n.input[draw(st.integers(0, len(n.input) - 1))] = draw(
                st.sampled_from(["", "nowhere", "x y", "\u00e9"]))
    elif len(g.input):
        del g.input[draw(st.integers(0, len(g.input) - 1))]


def cycle(model, draw):
    nodes = list(model.graph.node)
    if len(nodes) >= 1:
        first, last = _pick(draw, nodes), _pick(draw, nodes)
        if len(first.input) and len(last.output):
            first.input[0] = last.output[0]


def duplicate_names(model, draw):
    g = model.graph
    names = _names(model)
    if not names or not len(g.node):
        return
    n = _pick(draw, list(g.node))
    kind = draw(st.integers(0, 2))
    if kind == 0 and len(n.output):
        n.output[0] = _pick(draw, names)
    elif kind == 1 and len(g.input):
        g.input.append(g.input[0])
    elif len(g.initializer):
        g.initializer.append(g.initializer[0])
        g.output.add().name = _pick(draw, names)


def bad_axes(model, draw):
    value = draw(st.sampled_from([-1, -2, -7, 5, 64, -(1 << 40), (1 << 62)]))
    g = model.graph
    with_axes = [(n, a) for n in g.node for a in n.attribute
                 if a.type in (A.INT, A.INTS)]
    if with_axes and draw(st.booleans()):
        n, a = _pick(draw, with_axes)
        if a.type == A.INT:
            a.i = value
        elif len(a.ints):
            a.ints[draw(st.integers(0, len(a.ints) - 1))] = value
        else:
            a.ints.append(value)
    else:
        n = _pick(draw, list(g.node))
        if n is not None:
            n.attribute.append(helper.make_attribute(
                draw(st.sampled_from(["axis", "axes", "perm", "group", "pads", "strides"])),
                value if draw(st.booleans()) else [value, value]))


def wrong_attribute_type(model, draw):
    with_attrs = [n for n in model.graph.node if len(n.attribute)]
    n = _pick(draw, with_attrs)
    if n is None:
        return
    k = draw(st.integers(0, len(n.attribute) - 1))
    name = n.attribute[k].name
    replacement = draw(st.sampled_from([
        helper.make_attribute(name, "text"), helper.make_attribute(name, 1.5),
        helper.make_attribute(name, [1.5, 2.5]), helper.make_attribute(name, ["a", "b"]),
        helper.make_attribute(name, numpy_helper.from_array(np.zeros((2, 2), np.float32))),
        helper.make_attribute(name, 3), helper.make_attribute(name, [], attr_type=A.INTS),
        helper.make_attribute(name, helper.make_graph([], "g", [], [])),
    ]))
    n.attribute[k].CopyFrom(replacement)
    if draw(st.booleans()):
        n.attribute[k].type = draw(st.sampled_from(A.AttributeType.values()))     # a type the payload does not match


def external_data(model, draw):
    g = model.graph
    if not len(g.initializer):
        return
    t = _pick(draw, list(g.initializer))
    t.ClearField("raw_data")
    for field in ("float_data", "int64_data", "int32_data", "double_data"):
        t.ClearField(field)
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value=draw(st.sampled_from(EXTERNAL_LOCATIONS)))
    if draw(st.booleans()):
        t.external_data.add(key="offset", value=draw(st.sampled_from(
            ["0", "-1", "8", "1e3", "x", str(1 << 62)])))
    if draw(st.booleans()):
        t.external_data.add(key="length", value=draw(st.sampled_from(
            ["0", "-5", "4", "zz", str(1 << 62)])))


def element_types(model, draw):
    code = draw(st.integers(-1, 30))
    g = model.graph
    if draw(st.booleans()) and len(g.input):
        _pick(draw, list(g.input)).type.tensor_type.elem_type = code
    elif len(g.initializer):
        _pick(draw, list(g.initializer)).data_type = max(code, 0)


def opsets(model, draw):
    del model.opset_import[:]
    for _ in range(draw(st.integers(0, 2))):
        model.opset_import.add(domain=draw(st.sampled_from(["", "ai.onnx", "com.x"])),
                               version=draw(st.integers(-3, 40)))
    if draw(st.booleans()):
        model.ir_version = draw(st.integers(-1, 12))


def drop_node_or_attribute(model, draw):
    g = model.graph
    n = _pick(draw, list(g.node))
    if n is None:
        return
    if draw(st.booleans()) and len(n.attribute):
        del n.attribute[draw(st.integers(0, len(n.attribute) - 1))]
    elif draw(st.booleans()):
        g.node.remove(n)
    else:
        del n.input[:]


def wrong_value_shape(model, draw):
    """An initializer whose declared dims disagree with its data."""
    g = model.graph
    if len(g.initializer):
        t = _pick(draw, list(g.initializer))
        t.dims[:] = draw(st.lists(st.integers(-2, 9), max_size=5))


STRUCTURED = [wrong_rank, huge_dims, missing_input, cycle, duplicate_names, bad_axes,
              wrong_attribute_type, external_data, element_types, opsets,
              drop_node_or_attribute, wrong_value_shape]


class Case(tuple):
    """(description, serialized bytes); printed short when hypothesis reports it."""
    def __repr__(self):
        return f"Case({self[0]!r}, <{len(self[1])} bytes>)"


@st.composite
def mutated_model(draw, seed_models: dict):
    """(description, serialized bytes) of one mutated seed."""
    name = draw(st.sampled_from(sorted(seed_models)))
    model = onnx.ModelProto()
    model.CopyFrom(seed_models[name])
    applied = []
    for _ in range(draw(st.integers(1, 3))):
        mutate = draw(st.sampled_from(STRUCTURED))
        mutate(model, draw)
        applied.append(mutate.__name__)
    data = model.SerializeToString()
    if draw(st.integers(0, 3)) == 0:                    # byte level, on top
        data, how = _mutate_bytes(data, draw)
        applied.append(how)
    return Case((f"{name}: {', '.join(applied)}", data))


def _mutate_bytes(data: bytes, draw):
    buf = bytearray(data)
    kind = draw(st.sampled_from(["flip", "truncate", "splice", "insert", "zero"]))
    n = len(buf)
    if not n:
        return bytes(buf), kind
    if kind == "flip":
        for _ in range(draw(st.integers(1, 16))):
            buf[draw(st.integers(0, n - 1))] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        buf = buf[:draw(st.integers(0, n))]
    elif kind == "splice":
        a, b = sorted((draw(st.integers(0, n)), draw(st.integers(0, n))))
        at = draw(st.integers(0, n))
        buf[at:at] = buf[a:b][:4096]
    elif kind == "insert":
        at = draw(st.integers(0, n))
        buf[at:at] = draw(st.binary(min_size=1, max_size=32))
    else:
        a, k = draw(st.integers(0, n - 1)), draw(st.integers(1, 64))
        buf[a:a + k] = bytes(len(buf[a:a + k]))
    return bytes(buf), kind
