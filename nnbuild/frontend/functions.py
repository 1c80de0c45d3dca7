"""Ops nnbuild has no kernel for, but whose ONNX schema defines them as a function of other
ops (Attention, GroupNormalization, MeanVarianceNormalization, ...), are replaced by that
function body before translation, as onnx's own ``*_expanded`` test models are built.

A schema function may depend on the node's input types (a "context-dependent" function):
those come from onnx shape inference over the model. Bodies can use further function ops;
expansion repeats until none is left (or nothing more can be expanded).
"""
from __future__ import annotations

import onnx
from onnx import FunctionProto, TypeProto
from onnx.backend.test.case.node import function_expand_helper

MAX_ROUNDS = 8


def _schema(node, version: int):
    try:
        return onnx.defs.get_schema(node.op_type, version, domain=node.domain)
    except onnx.defs.SchemaError:
        return None


def _body(schema, node, version: int, types: dict) -> FunctionProto | None:
    """The schema's function for ``version`` (the newest defined at or below it), or None."""
    plain = [v for v in schema.function_opset_versions if v <= version]
    dependent = [v for v in schema.context_dependent_function_opset_versions if v <= version]
    best = max(plain + dependent, default=None)
    if best is None:
        return None
    proto = FunctionProto()
    if best in dependent:
        if any(i and i not in types for i in node.input):
            return None           # its input types are not known
        input_types = [(types[i] if i else TypeProto()).SerializeToString() for i in node.input]
        proto.ParseFromString(schema.get_context_dependent_function_with_opset_version(
            best, node.SerializeToString(), input_types))
    else:
        proto.ParseFromString(schema.get_function_with_opset_version(best))
    return proto


def _types(model) -> dict:
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:             # noqa: BLE001 - inference is best effort here
        inferred = model
    g = inferred.graph
    types = {vi.name: vi.type for vi in list(g.input) + list(g.value_info) + list(g.output)}
    for init in g.initializer:
        t = TypeProto()
        t.tensor_type.elem_type = init.data_type
        for d in init.dims:
            t.tensor_type.shape.dim.add().dim_value = d
        types[init.name] = t
    return types


def expand_functions(model: onnx.ModelProto, supported) -> onnx.ModelProto:
    """``model`` with every top-level node whose op ``supported(op, domain)`` rejects replaced
    by its schema's function body; the model itself is not modified."""
    opsets = {(o.domain if o.domain != "ai.onnx" else ""): o.version for o in model.opset_import}
    for round_ in range(MAX_ROUNDS):
        todo = {k for k, n in enumerate(model.graph.node)
                if n.op_type != "Constant" and not supported(n.op_type, n.domain)
                and _schema(n, opsets.get(n.domain, opsets.get("", 1))) is not None}
        if not todo:
            return model
        types = _types(model)
        nodes, changed = [], False
        for index, node in enumerate(model.graph.node):
            version = opsets.get(node.domain, opsets.get("", 1))
            schema = _schema(node, version) if index in todo else None
            body = _body(schema, node, version, types) if schema is not None else None
            if body is None:
                nodes.append(node)
                continue
            full = onnx.NodeProto()
            full.CopyFrom(node)
            given = {a.name for a in node.attribute}
            for name, attr in schema.attributes.items():     # defaults the body refers to
                if name not in given and attr.default_value.name:
                    full.attribute.append(attr.default_value)
            prefix = f"{node.name or node.op_type}_{round_}_{index}_fn_"
            nodes.extend(function_expand_helper(full, body, prefix))
            for o in body.opset_import:
                opsets.setdefault(o.domain, o.version)
            changed = True
        if not changed:
            return model
        expanded = onnx.ModelProto()
        expanded.CopyFrom(model)
        del expanded.graph.node[:]
        expanded.graph.node.extend(nodes)
        known = {o.domain for o in expanded.opset_import}
        for domain, version in opsets.items():
            if domain not in known and domain != "ai.onnx":
                expanded.opset_import.add(domain=domain, version=version)
        model = expanded
    return model


def expand_graph_functions(graph: onnx.GraphProto, opsets: dict, supported) -> onnx.GraphProto:
    """``graph`` (a subgraph: If branch, Loop/Scan body) with its function ops expanded like a
    model's top level; ``opsets`` maps domain -> version. Values it reads from enclosing
    scopes have no type here, so context-dependent functions over them stay unexpanded."""
    if all(supported(n.op_type, n.domain) or n.op_type == "Constant" for n in graph.node):
        return graph
    model = onnx.helper.make_model(graph, opset_imports=[
        onnx.helper.make_opsetid(d, v) for d, v in sorted(opsets.items())])
    return expand_functions(model, supported).graph
