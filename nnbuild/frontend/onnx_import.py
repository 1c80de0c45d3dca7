"""ONNX -> IR: load (with external data kept inside the model's folder), bind symbolic input
dims, turn initializers and Constant nodes into constants, canonicalize each node to the newest
opset form, then type every value. Unsupported ops are all reported in one error first.
"""
from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import numpy_helper

from .. import bindings, dtypes
from ..errors import ModelError
from ..ir.graph import Graph, Node, TensorType
from ..ir.verify import verify
from ..ops import registry
from .functions import expand_functions
from .subgraphs import ControlFlow
from ..ops.infer import MAX_TENSOR_ELEMENTS, check_elements, infer_graph  # noqa: F401

NEWEST_OPSET = onnx.defs.onnx_opset_version()
OLDEST_OPSET = 7


def load_model(path: str) -> onnx.ModelProto:
    """Read an ONNX file; any problem is one ModelError naming the file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ModelError(f"{path}: cannot read: {e.strerror}") from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError and friends
        raise ModelError(f"{path}: not a valid ONNX model ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else 'truncated or corrupt'})") from None
    if model.ir_version <= 0 or not model.HasField("graph") or not model.opset_import:
        raise ModelError(f"{path}: not an ONNX model (no ir_version, graph or opset_import)")
    _load_external_data(model, os.path.dirname(os.path.abspath(path)), path)
    return model


def _load_external_data(model: onnx.ModelProto, folder: str, path: str) -> None:
    for tensor in _all_tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        if not location or "\0" in location:
            raise ModelError(f"{path}: tensor {tensor.name!r}: bad external data location "
                             f"{location!r}")
        target = os.path.realpath(os.path.join(folder, location))
        if os.path.isabs(location) or os.path.commonpath([target, os.path.realpath(folder)]) \
                != os.path.realpath(folder):
            raise ModelError(f"{path}: tensor {tensor.name!r}: external data location "
                             f"{location!r} leaves the model's folder")
        _dtype(tensor.data_type, f"{path}: tensor {tensor.name!r}")
        _check_dims(tensor.dims, f"{path}: tensor {tensor.name!r}")
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else None
        except ValueError:
            raise ModelError(f"{path}: tensor {tensor.name!r}: external data offset/length "
                             f"are not integers") from None
        if offset < 0 or (length is not None and length < 0):
            raise ModelError(f"{path}: tensor {tensor.name!r}: negative external data "
                             f"offset or length")
        expected = _stored_bytes(tensor)
        try:
            with open(target, "rb") as f:
                f.seek(offset)
                raw = f.read(min(expected, length) if length is not None else expected)
        except (OSError, OverflowError) as e:
            raise ModelError(f"{path}: tensor {tensor.name!r}: cannot read external data "
                             f"{location!r}: {getattr(e, 'strerror', None) or e}") from None
        if len(raw) < expected:
            raise ModelError(f"{path}: tensor {tensor.name!r}: external data {location!r} "
                             f"holds {len(raw)} bytes, needs {expected}")
        tensor.raw_data = raw[:expected]
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]


def _check_dims(dims, what: str) -> None:
    """Declared dims: none negative, at most MAX_TENSOR_ELEMENTS elements (before any
    allocation of that size)."""
    if any(d < 0 for d in dims):
        raise ModelError(f"{what}: negative dimension in {list(dims)}")
    check_elements(what, dims)


def _stored_bytes(tensor) -> int:
    """Bytes of the tensor's data as ONNX stores it: int4 / uint4 / float4 pack two elements
    per byte, int2 / uint2 four (the last byte padded)."""
    bits = dtypes.bits(dtypes.from_code(tensor.data_type))
    return (int(np.prod(tensor.dims, dtype=np.int64)) * bits + 7) // 8


def _all_tensors(graph):
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t
            elif attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_tensors(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _all_tensors(g)


def _to_array(tensor, where: str) -> np.ndarray:
    _dtype(tensor.data_type, f"{where}: tensor {tensor.name!r}")
    _check_dims(tensor.dims, f"{where}: tensor {tensor.name!r}")
    try:
        return np.array(numpy_helper.to_array(tensor))
    except Exception as e:
        raise ModelError(f"{where}: cannot decode tensor {tensor.name!r}: {e}") from None


def _attribute(attr, where: str):
    kind = attr.type
    A = onnx.AttributeProto
    if kind == A.INT:
        return int(attr.i)
    if kind == A.FLOAT:
        return float(attr.f)
    if kind == A.STRING:
        return attr.s.decode("utf-8", "replace")
    if kind == A.INTS:
        return [int(v) for v in attr.ints]
    if kind == A.FLOATS:
        return [float(v) for v in attr.floats]
    if kind == A.STRINGS:
        return [s.decode("utf-8", "replace") for s in attr.strings]
    if kind == A.TENSOR:
        return _to_array(attr.t, where)
    raise ModelError(f"{where}: attribute {attr.name!r} of type "
                     f"{A.AttributeType.Name(kind)} is not supported")


def _check_against_schema(proto, version: int, where: str) -> None:
    """What the op's ONNX schema states, checked before any op sees the node: the number of
    inputs and outputs, required inputs present (not ""), and each declared attribute of the
    declared type (an INT where INTS is expected is taken by no op)."""
    try:
        schema = onnx.defs.get_schema(proto.op_type, version, _domain(proto.domain))
    except Exception:              # no schema (nnbuild's own domain, or too old): nothing to check
        return
    if not schema.min_input <= len(proto.input) <= schema.max_input:
        raise ModelError(f"{where}: has {len(proto.input)} inputs, the op takes "
                         f"{schema.min_input}..{schema.max_input}")
    if not schema.min_output <= len(proto.output) <= schema.max_output:
        raise ModelError(f"{where}: has {len(proto.output)} outputs, the op gives "
                         f"{schema.min_output}..{schema.max_output}")
    single = onnx.defs.OpSchema.FormalParameterOption.Single
    for i, (formal, name) in enumerate(zip(schema.inputs, proto.input)):
        if formal.option == single and not name:
            raise ModelError(f"{where}: required input {i} ({formal.name}) is missing")
    A = onnx.AttributeProto
    try:                           # the ops read the newest form's attributes too
        newest = onnx.defs.get_schema(proto.op_type, _domain(proto.domain)).attributes
    except Exception:
        newest = {}
    for attr in proto.attribute:
        declared = schema.attributes.get(attr.name) or newest.get(attr.name)
        if declared is None or int(declared.type) in (A.UNDEFINED, attr.type):
            continue
        kind = A.AttributeType.Name(attr.type) if attr.type in A.AttributeType.values() \
            else str(attr.type)
        raise ModelError(f"{where}: attribute {attr.name!r} is {kind}, the op expects "
                         f"{A.AttributeType.Name(int(declared.type))}")


def _constant_node_value(node, where: str) -> np.ndarray:
    attr = node.attribute[0] if len(node.attribute) == 1 else None
    if attr is None:
        raise ModelError(f"{where}: Constant needs exactly one value attribute")
    value = _attribute(attr, where)
    return {
        "value": lambda: value,
        "value_float": lambda: np.array(value, np.float32),
        "value_floats": lambda: np.array(value, np.float32),
        "value_int": lambda: np.array(value, np.int64),
        "value_ints": lambda: np.array(value, np.int64),
    }.get(attr.name, lambda: (_ for _ in ()).throw(
        ModelError(f"{where}: Constant attribute {attr.name!r} is not supported")))()


def _parse_shapes(shapes) -> dict:
    """name -> canonical binding (dims, a sequence's element dims, or absent: nnbuild.bindings)."""
    out = {}
    for name, value in (shapes or {}).items():
        try:
            out[name] = bindings.parse(name, value)
        except bindings.BindingError as e:
            raise ModelError(str(e)) from None
    return out


def _dtype(code: int, what: str):
    """The DType of an ONNX element type code; a ModelError saying what has it otherwise."""
    try:
        return dtypes.from_code(code)
    except ModelError as e:
        name = onnx.TensorProto.DataType.Name(code) if code in \
            onnx.TensorProto.DataType.values() else str(code)
        raise ModelError(f"{what}: {str(e).replace(f'type {code} ', f'type {name} ')}") from None


def _input_type(value_info, shapes: dict, where: str) -> TensorType:
    ttype = value_info.type
    if not ttype.HasField("tensor_type"):
        raise ModelError(f"{where}: input {value_info.name!r} is not a tensor")
    dtype = _dtype(ttype.tensor_type.elem_type, f"{where}: input {value_info.name!r}")
    if value_info.name in shapes:
        return _bound_type(value_info, dtype, shapes[value_info.name], where)
    if not ttype.tensor_type.HasField("shape"):
        raise ModelError(f"{where}: input {value_info.name!r} has no shape; bind it with "
                         f"--shape {value_info.name}=DxDx...")
    dims = []
    for d in ttype.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            shown = [dd.dim_param or (str(dd.dim_value) if dd.HasField("dim_value") else "?")
                     for dd in ttype.tensor_type.shape.dim]
            raise ModelError(f"{where}: input {value_info.name!r} has symbolic shape "
                             f"[{','.join(shown)}]; bind it with --shape "
                             f"{value_info.name}={'x'.join(s if s.isdigit() else 'N' for s in shown)}")
    return TensorType(dtype, tuple(dims))


def _bound_type(value_info, dtype, dims: tuple, where: str) -> TensorType:
    """The input's type with the shape --shape gave; it must agree with the model's static dims."""
    name, ttype = value_info.name, value_info.type.tensor_type
    if ttype.HasField("shape"):
        model_dims = [d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim]
        shown = ",".join(str(d) if d is not None else (dd.dim_param or "?")
                         for d, dd in zip(model_dims, ttype.shape.dim))
        given = "x".join(str(d) for d in dims)
        if len(model_dims) != len(dims):
            raise ModelError(f"{where}: --shape {name}={given} has rank {len(dims)}, input "
                             f"{name!r} has shape [{shown}] (rank {len(model_dims)})")
        for axis, (m, d) in enumerate(zip(model_dims, dims)):
            if m is not None and m != d:
                raise ModelError(f"{where}: --shape {name}={given} contradicts input {name!r} "
                                 f"of shape [{shown}] (dim {axis} is {m})")
    return TensorType(dtype, tuple(dims))


def _check_names_are_text(model, where: str) -> None:
    """protobuf hands string fields holding invalid UTF-8 over as bytes: refuse them here,
    before anything treats a name as text."""
    g = model.graph
    texts = [o.domain for o in model.opset_import]
    texts += [v.name for v in list(g.input) + list(g.output) + list(g.value_info)]
    texts += [t.name for t in g.initializer]
    for n in g.node:
        texts += [n.op_type, n.domain, n.name, *n.input, *n.output]
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if bad is not None:
        raise ModelError(f"{where}: a name is not valid UTF-8: {bad!r}")


def _domain(domain: str) -> str:
    """ONNX allows "ai.onnx" as another spelling of the default domain ""."""
    return "" if domain == "ai.onnx" else domain


def translate(model, shapes=None, name: str = "model", where: str = "model") -> Graph:
    """ModelProto (or path) -> typed IR Graph with static shapes."""
    if isinstance(model, (str, os.PathLike)):
        where = str(model)
        model = load_model(where)
    shapes = _parse_shapes(shapes)
    _check_names_are_text(model, where)
    model = expand_functions(model, lambda op, domain: registry.lookup(op, _domain(domain)))
    g = model.graph
    opsets = {(o.domain if o.domain != "ai.onnx" else ""): int(o.version) for o in model.opset_import}
    version = opsets.get("", NEWEST_OPSET)
    if version > NEWEST_OPSET:
        raise ModelError(f"{where}: opset {version} is newer than the installed onnx knows "
                         f"({NEWEST_OPSET})")
    unknown = [(n.op_type, n.name, opsets.get(_domain(n.domain), version), n.domain)
               for n in g.node if n.op_type != "Constant"
               and registry.lookup(n.op_type, _domain(n.domain)) is None]
    if unknown:
        raise ModelError(f"{where}: unsupported ops: {_group_by_op(unknown)} "
                         f"(`nnbuild ops` lists the {len(registry.supported_ops())} supported)")
    too_old = [(n.op_type, n.name) for n in g.node
               if n.op_type != "Constant" and opsets.get(_domain(n.domain), version)
               < registry.lookup(n.op_type, _domain(n.domain)).since]
    if too_old:
        raise ModelError(f"{where}: opset {version} is older than supported for "
                         + "; ".join(f"{op} (node {nm or '<unnamed>'})" for op, nm in too_old))

    graph = Graph(name=name, opsets=opsets)
    for init in g.initializer:
        graph.add_constant(init.name, _to_array(init, where))
    runtime_inputs = [vi for vi in g.input if vi.name not in graph.constants]
    stray = sorted(set(shapes) - {vi.name for vi in runtime_inputs})
    if stray:                     # before the inputs' own errors: a misspelt --shape name
        raise ModelError(f"{where}: --shape names {', '.join(stray)}, not inputs of the model "
                         f"(inputs: {', '.join(vi.name for vi in runtime_inputs)})")
    def opset_of(domain):
        return opsets.get(_domain(domain), version)
    flow = ControlFlow(graph, g, opset_of, where, _translate_node, _check_against_schema)
    for vi in runtime_inputs:     # sequences and optionals are flattened (subgraphs.py)
        flow.graph_input(vi, shapes, lambda info, bound: _input_type(info, bound, where))

    defined = set(graph.inputs) | set(graph.constants) | {vi.name for vi in runtime_inputs}
    for index, proto in enumerate(_topological(g.node, defined, where)):
        flow.translate(proto, proto.name or f"{proto.op_type}_{index}")
    graph.outputs = flow.graph_outputs(g.output)
    for out in graph.outputs:
        if out not in graph.constants and out not in graph.inputs and \
                not any(out in n.outputs for n in graph.nodes):
            raise ModelError(f"{where}: graph output {out!r} is never produced")
    _seed_declared_types(graph, list(g.output) + list(g.value_info))
    try:
        infer_graph(graph)
        verify(graph)             # e.g. two nodes writing one name
    except ModelError as e:
        raise ModelError(f"{where}: {e}") from None
    return graph


def _seed_declared_types(graph: Graph, value_infos) -> None:
    """Put the static types the model declares for node outputs (graph outputs, value_info)
    into ``graph.types`` before inference. Inference computes every type it can and replaces
    these; an op whose output shape depends on a value only known at run time (reduction axes
    or a Reshape shape fed by a graph input) takes the declared shape instead and checks it
    at run time (``InferContext.declared``). Only declarations with every dim a fixed number
    count; others are ignored."""
    produced = {o for n in graph.nodes for o in n.outputs if o}
    for vi in value_infos:
        t = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if vi.name not in produced or t is None or not t.HasField("shape") \
                or not all(d.HasField("dim_value") and d.dim_value >= 0 for d in t.shape.dim):
            continue
        try:
            dtype = dtypes.from_code(t.elem_type)
        except ModelError:        # an element type nnbuild lacks: inference reports it
            continue
        graph.types[vi.name] = TensorType(dtype, tuple(int(d.dim_value) for d in t.shape.dim))
    # A declaration also holds for the input of an op whose output always has its input's
    # shape (unary elementwise ops, Cast): ReduceSum -> Sqrt -> declared output. Only the
    # shape counts (inference gives the dtype).
    from ..ops.elementwise import Cast, Unary
    for node in reversed(graph.nodes):
        x, y = (node.inputs[0] if node.inputs else ""), node.outputs[0]
        if x in produced and x not in graph.types and y in graph.types \
                and isinstance(registry.get(node), (Unary, Cast)):
            graph.types[x] = graph.types[y]


def _translate_node(graph: Graph, proto, label: str, opset_of, where: str) -> None:
    """One ONNX node -> IR nodes in its newest opset form (a Constant -> a constant)."""
    node_where = f"{where}: node {label} ({proto.op_type})"
    _check_against_schema(proto, opset_of(proto.domain), node_where)
    if proto.op_type == "Constant" and _domain(proto.domain) == "":
        graph.add_constant(proto.output[0], _constant_node_value(proto, node_where))
        return
    attrs = {a.name: _attribute(a, node_where) for a in proto.attribute}
    node = Node(proto.op_type, tuple(proto.input), tuple(proto.output), attrs, (label,),
                _domain(proto.domain))
    op = registry.get(node)
    graph.nodes.extend(op.canonicalize(node, opset_of(node.domain), graph))


def _group_by_op(unknown: list, shown: int = 3) -> str:
    """'Foo (opset 9; nodes a, b, c and 12 more); Bar (opset 9; node d)' in first-seen order."""
    groups: dict = {}
    for op, name, version, domain in unknown:
        groups.setdefault((domain, op, version), []).append(name or "<unnamed>")
    parts = []
    for (domain, op, version), names in groups.items():
        listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more"
                                             if len(names) > shown else "")
        parts.append(f"{domain + '::' if domain else ''}{op} (opset {version}; "
                     f"node{'s' if len(names) > 1 else ''} {listed})")
    return "; ".join(parts)


def _topological(nodes, defined: set, where: str) -> list:
    """The nodes in an order where every input is defined first (ONNX requires it; some
    exporters get it wrong, so sort rather than trust)."""
    defined = set(defined) | {""}
    pending, ordered = list(nodes), []
    while pending:
        rest = []
        for n in pending:
            if all(i in defined for i in n.input):
                ordered.append(n)
                defined.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            n = rest[0]
            missing = [i for i in n.input if i not in defined]
            raise ModelError(f"{where}: node {n.name or n.op_type} ({n.op_type}) reads "
                             f"{missing[0]!r}, which nothing defines (or a cycle)")
        pending = rest
    return ordered
