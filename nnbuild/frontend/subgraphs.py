"""Control flow, sequences and optionals, resolved while the model is translated.

nnbuild compiles static graphs ahead of time, so none of these reaches the IR:

- a *sequence* is a compile-time list of tensor values, an *optional* a compile-time "tensor
  or nothing"; Sequence*/Optional* ops edit those lists (positions must be known at compile
  time), SequenceLength and OptionalHasElement become constants, SequenceAt and
  OptionalGetElement name an existing tensor, ConcatFromSequence/SplitToSequence become
  Concat/Slice nodes, SequenceMap runs its body once per element;
- If with a compile-time condition inlines the taken branch; with a run-time condition both
  branches are inlined and each output is ``Where(cond, then, else)`` (branches have no side
  effects; both outputs must have one static type);
- Loop and Scan are unrolled: the body is inlined once per iteration (at most MAX_ITERATIONS,
  and MAX_UNROLLED_NODES nodes per control node). A Loop whose condition is only known at run
  time needs a static trip count M: every iteration is computed and its state kept only while
  the condition held (``Where(running, new, old)``); its scan outputs would have a
  data-dependent length and are refused.

A body is inlined through a Scope: its inputs are bound to outer values, every value it
defines gets a fresh name, and names it does not define resolve in the enclosing scope (ONNX
outer-scope references), so subgraphs nest to any depth.
"""
from __future__ import annotations

import numpy as np
import onnx

from .. import bindings
from ..errors import ModelError
from ..ir.graph import Node
from ..ops import registry
from ..ops.infer import infer_node
from .functions import expand_graph_functions

MAX_ITERATIONS = 4096          # iterations one Loop/Scan/SequenceMap may unroll to
MAX_UNROLLED_NODES = 100_000   # IR nodes one control node may add


class Seq(list):
    """A sequence value: the IR names of its tensors, in order."""


class Opt:
    """An optional value: the name of what it holds (tensor or sequence), or None."""
    def __init__(self, value):
        self.value = value


class Scope:
    """Maps a (sub)graph's value names to IR names; unknown names resolve in the parent."""
    def __init__(self, parent=None, suffix: str = ""):
        self.parent, self.suffix, self.names = parent, suffix, {}

    def resolve(self, name: str) -> str:
        if not name:
            return ""
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return name                 # the top-level graph's own names


def _all_names(graph, out: set) -> set:
    out.update(vi.name for vi in list(graph.input) + list(graph.output) + list(graph.value_info))
    out.update(t.name for t in graph.initializer)
    for node in graph.node:
        out.update(node.input)
        out.update(node.output)
        for attr in node.attribute:
            for g in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
                _all_names(g, out)
    return out


def _graph_attr(proto, key: str, where: str):
    for attr in proto.attribute:
        if attr.name == key and attr.type == onnx.AttributeProto.GRAPH:
            return attr.g
    raise ModelError(f"{where}: needs the graph attribute {key!r}")


def _attrs(proto) -> dict:
    A = onnx.AttributeProto
    out = {}
    for a in proto.attribute:
        if a.type == A.INT:
            out[a.name] = int(a.i)
        elif a.type == A.INTS:
            out[a.name] = [int(v) for v in a.ints]
    return out


class ControlFlow:
    """Translates the nodes of a model (and of its subgraphs) into ``graph``; the ops listed
    in HANDLERS are resolved here, every other node goes to ``translate_node``."""

    def __init__(self, graph, model_graph, opset_of, where: str, translate_node, check_node):
        self.graph, self.opset_of, self.where = graph, opset_of, where
        self.translate_node, self.check_node = translate_node, check_node
        self.taken = _all_names(model_graph, set(graph.types) | set(graph.constants))
        self.structs: dict = {}       # IR name -> Seq | Opt
        self.known: dict = {}
        self.typed = 0                # graph.nodes[:typed] have been inferred
        self.root = Scope()
        self.bodies: dict = {}        # id(GraphProto) -> (it, with function ops expanded)

    # --- values --------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.taken:
            name, i = f"{base}_{i}", i + 1
        self.taken.add(name)
        return name

    def define(self, scope: Scope, name: str) -> str:
        """The IR name a (sub)graph's value ``name`` gets; top-level names are kept."""
        if scope is self.root:
            return name
        ir = self.fresh(f"{name}{scope.suffix}")
        scope.names[name] = ir
        return ir

    def sync(self) -> None:
        """Type the IR nodes added since the last call (their compile-time values too)."""
        self.known.update(self.graph.constants)
        nodes = self.graph.nodes
        while self.typed < len(nodes):
            node = nodes[self.typed]
            try:
                values = infer_node(self.graph, node, self.known)
            except ModelError as e:
                raise ModelError(f"{self.where}: {e}") from None
            for name, value in zip(node.outputs, values):
                if name and value is not None:
                    self.known[name] = value
            self.typed += 1
            self.known.update(self.graph.constants)

    def value(self, name: str):
        """The compile-time value of IR tensor ``name``, or None."""
        self.sync()
        return self.known.get(name, self.graph.constants.get(name))

    def type(self, name: str):
        self.sync()
        if name not in self.graph.types:
            raise ModelError(f"{self.where}: {name!r} is read but never defined")
        return self.graph.types[name]

    def constant(self, base: str, array) -> str:
        return self.graph.add_constant(self.fresh(base), np.asarray(array))

    def emit(self, op: str, inputs, output: str, label: str, **attrs) -> str:
        self.graph.nodes.append(Node(op, tuple(inputs), (output,), attrs, (label,)))
        return output

    def tensor(self, name: str, where: str, what: str = "input") -> str:
        if name in self.structs:
            raise ModelError(f"{where}: {what} {name!r} is a sequence or optional, "
                             f"a tensor is expected")
        return name

    def bind(self, scope: Scope, name: str, value: str, label: str) -> None:
        """Make the (sub)graph's ``name`` stand for IR value ``value`` (a tensor is copied by
        an Identity node so that every graph output is some node's output)."""
        if not name:
            return
        if value in self.structs:
            scope.names[name] = value
            return
        if scope is self.root and name == value:
            return
        self.emit("Identity", [value], self.define(scope, name), label)

    def bind_struct(self, scope: Scope, name: str, struct) -> None:
        if name:
            ir = self.fresh(f"{name}{scope.suffix}")
            self.structs[ir] = struct
            scope.names[name] = ir

    # --- the model's boundary (docs/architecture.md, "Sequences and optionals at the C API")
    def graph_input(self, vi, shapes: dict, tensor_type) -> None:
        """Graph input ``vi``: a tensor is one IR input; a sequence is flattened into its bound
        number of element inputs ``NAME[k]``; an optional is its bound value's inputs when
        present, nothing when absent. ``tensor_type(value_info, shapes)`` types one tensor."""
        binding = shapes.get(vi.name)
        kind = vi.type.WhichOneof("value")
        if kind == "tensor_type":
            if binding is not None and bindings.kind(binding) != "tensor":
                raise ModelError(f"{self.where}: input {vi.name!r} is a tensor, not a sequence "
                                 f"or optional; bind its dims (--shape {vi.name}=DxD...), not "
                                 f"{bindings.to_text(binding)}")
            self._tensor_input(vi.name, vi.type.tensor_type, shapes, tensor_type)
        elif kind == "sequence_type":
            self.root.names[vi.name] = self._sequence_input(vi.name, vi.type.sequence_type,
                                                             binding, tensor_type)
        elif kind == "optional_type":
            held = vi.type.optional_type.elem_type
            if binding is None:
                seq = held.WhichOneof("value") == "sequence_type"
                raise ModelError(f"{self.where}: input {vi.name!r} is optional; bind whether it "
                                 f"is present with --shape {vi.name}="
                                 f"{'[DxD,...]' if seq else 'DxD...'} (present) or --shape "
                                 f"{vi.name}=none (absent)")
            if bindings.kind(binding) == bindings.NONE:
                value = None
            elif held.WhichOneof("value") == "sequence_type":
                value = self._sequence_input(vi.name, held.sequence_type, binding, tensor_type)
            elif held.WhichOneof("value") == "tensor_type":
                self._tensor_input(vi.name, held.tensor_type, shapes, tensor_type)
                value = vi.name
            else:
                raise ModelError(f"{self.where}: input {vi.name!r} is an optional of neither a "
                                 f"tensor nor a sequence")
            ir = self.fresh(f"{vi.name}.optional")
            self.structs[ir] = Opt(value)
            self.root.names[vi.name] = ir
        else:
            raise ModelError(f"{self.where}: input {vi.name!r} is not a tensor, sequence or "
                             f"optional")

    def _tensor_input(self, name: str, tensor_proto, shapes: dict, tensor_type) -> None:
        vi = onnx.ValueInfoProto()
        vi.name = name
        vi.type.tensor_type.CopyFrom(tensor_proto)
        self.graph.types[name] = tensor_type(vi, shapes)
        self.graph.inputs.append(name)

    def _sequence_input(self, name: str, seq_proto, binding, tensor_type) -> str:
        """Sequence input ``name`` flattened into element inputs; returns its struct's name."""
        if binding is None or bindings.kind(binding) != bindings.SEQUENCE:
            given = "" if binding is None else f", not {name}={bindings.to_text(binding)}"
            raise ModelError(f"{self.where}: input {name!r} is a sequence; bind its length and "
                             f"element shapes with --shape {name}=[DxD,...] (e.g. "
                             f"{name}=[3*2x4], [] when empty){given}")
        if seq_proto.elem_type.WhichOneof("value") != "tensor_type":
            raise ModelError(f"{self.where}: input {name!r} is a sequence of non-tensors")
        elements = Seq()
        for k, dims in enumerate(binding[1]):
            element = self._boundary_name(name, bindings.element_name(name, k))
            self._tensor_input(element, seq_proto.elem_type.tensor_type, {element: dims},
                               tensor_type)
            elements.append(element)
        ir = self.fresh(f"{name}.sequence")
        self.structs[ir] = elements
        return ir

    def _boundary_name(self, name: str, derived: str) -> str:
        if derived in self.taken:
            raise ModelError(f"{self.where}: {name!r} is flattened into {derived!r} at the C "
                             f"API, a name the model already uses")
        self.taken.add(derived)
        return derived

    def graph_outputs(self, value_infos) -> list:
        """The C API's outputs: each graph output flattened (a sequence into ``NAME[k]``, an
        absent optional into nothing, a present one into what it holds)."""
        out = []
        for vi in value_infos:
            out += self._flatten_output(vi.name, self.root.resolve(vi.name))
        return out

    def _flatten_output(self, name: str, ir: str) -> list:
        struct = self.structs.get(ir)
        if isinstance(struct, Seq):
            names = []
            for k, element in enumerate(struct):
                derived = bindings.element_name(name, k)
                if element != derived:
                    self.emit("Identity", [element], self._boundary_name(name, derived),
                              f"output {name}")
                names.append(derived)
            return names
        if isinstance(struct, Opt):
            if struct.value is None:
                return []
            inner = self.structs.get(struct.value)
            if inner is not None or struct.value == name:
                return self._flatten_output(name, struct.value)
            return [self.emit("Identity", [struct.value], name, f"output {name}")]
        return [ir]

    # --- nodes ---------------------------------------------------------------------------
    def translate(self, proto, label: str, scope: Scope | None = None) -> None:
        scope = scope or self.root
        where = f"{self.where}: node {label} ({proto.op_type})"
        inputs = [scope.resolve(i) for i in proto.input]
        handler = HANDLERS.get(proto.op_type) if proto.domain in ("", "ai.onnx") else None
        if proto.op_type == "Identity" and inputs and inputs[0] in self.structs:
            handler = _identity
        if handler is not None:
            self.check_node(proto, self.opset_of(""), where)
            handler(self, proto, inputs, scope, label, where)
            return
        if scope is not self.root:       # a body node: read and write IR names
            renamed = onnx.NodeProto()
            renamed.CopyFrom(proto)
            del renamed.input[:]
            renamed.input.extend(self.tensor(i, where) for i in inputs)
            outputs = [self.define(scope, o) if o else "" for o in proto.output]
            del renamed.output[:]
            renamed.output.extend(outputs)
            proto = renamed
        else:
            for i in inputs:
                self.tensor(i, where)
        self.translate_node(self.graph, proto, label, self.opset_of, self.where)

    def inline(self, body, args: list, parent: Scope, suffix: str, label: str,
               where: str) -> list:
        """Translate subgraph ``body`` with its inputs bound to IR values ``args``; returns the
        IR names (or struct names) of its outputs."""
        if len(args) != len(body.input):
            raise ModelError(f"{where}: the body {body.name!r} takes {len(body.input)} inputs, "
                             f"the op passes {len(args)}")
        body = self.expanded(body)
        scope = Scope(parent, suffix)
        for vi, arg in zip(body.input, args):
            scope.names[vi.name] = arg
        for init in body.initializer:
            try:
                array = np.array(onnx.numpy_helper.to_array(init))
            except Exception as e:            # noqa: BLE001 - any undecodable tensor
                raise ModelError(f"{where}: cannot decode tensor {init.name!r} of body "
                                 f"{body.name!r}: {e}") from None
            scope.names[init.name] = self.constant(f"{init.name}{suffix}", array)
        for k, proto in enumerate(body.node):
            self.translate(proto, f"{label}/{proto.name or f'{proto.op_type}_{k}'}{suffix}",
                           scope)
        return [scope.resolve(vi.name) for vi in body.output]

    def expanded(self, body):
        """``body`` with ops that lack a kernel replaced by their ONNX function bodies."""
        if id(body) not in self.bodies:
            def supported(op, domain):
                return registry.lookup(op, "" if domain == "ai.onnx" else domain) is not None
            domains = {n.domain for n in body.node} | {""}
            self.bodies[id(body)] = (body, expand_graph_functions(
                body, {d: self.opset_of(d) for d in domains if d != "ai.onnx"}, supported))
        return self.bodies[id(body)][1]

    def check_budget(self, start: int, where: str) -> None:
        if len(self.graph.nodes) - start > MAX_UNROLLED_NODES:
            raise ModelError(f"{where}: unrolling adds more than {MAX_UNROLLED_NODES} nodes")

    def scalar(self, name: str, label: str) -> str:
        """``name`` (one element) reshaped to rank 0."""
        if self.type(name).rank == 0:
            return name
        shape = self.constant(f"{name}_scalar_shape", np.zeros(0, np.int64))
        return self.emit("Reshape", [name, shape], self.fresh(f"{name}_scalar"), label)


# --- If / Loop / Scan -------------------------------------------------------------------------
def _one(value, where: str, what: str):
    """The single element of a compile-time tensor."""
    if value.size != 1:
        raise ModelError(f"{where}: {what} must hold one element, it has shape {list(value.shape)}")
    return value.reshape(-1)[0]


def _known_bool(flow, name: str, where: str, what: str):
    value = flow.value(name)
    if value is None:
        return None
    return bool(_one(value, where, what))


def _if(flow, proto, inputs, scope, label, where):
    cond = flow.tensor(inputs[0], where)
    taken = _known_bool(flow, cond, where, "the condition")
    branches = {"then": _graph_attr(proto, "then_branch", where),
                "else": _graph_attr(proto, "else_branch", where)}
    for key, branch in branches.items():
        if len(branch.output) != len(proto.output):
            raise ModelError(f"{where}: the {key} branch gives {len(branch.output)} outputs, "
                             f"the node has {len(proto.output)}")
    if taken is not None:
        key = "then" if taken else "else"
        results = flow.inline(branches[key], [], scope, f".{key}", label, where)
        for name, value in zip(proto.output, results):
            flow.bind(scope, name, value, label)
        return
    then = flow.inline(branches["then"], [], scope, ".then", label, where)
    other = flow.inline(branches["else"], [], scope, ".else", label, where)
    flag = flow.scalar(cond, label)
    for name, a, b in zip(proto.output, then, other):
        if name and (a in flow.structs or b in flow.structs):
            flow.bind_struct(scope, name, _select_struct(flow, flag, name, a, b, label, where))
        elif name:
            _check_same_type(flow, name, a, b, where)
            flow.emit("Where", [flag, a, b], flow.define(scope, name), label)


def _check_same_type(flow, name: str, a: str, b: str, where: str) -> None:
    if flow.type(a) != flow.type(b):
        raise ModelError(f"{where}: with a run-time condition both branches must give "
                         f"output {name!r} one static type; then gives {flow.type(a)}, "
                         f"else {flow.type(b)}")


def _select_struct(flow, flag: str, name: str, a: str, b: str, label, where):
    """The sequence or optional a run-time condition chooses between ``a`` and ``b``: both
    must have one compile-time structure (a sequence's length, an optional's presence), then
    each tensor in it is ``Where(flag, then, else)``."""
    sa, sb = flow.structs.get(a), flow.structs.get(b)
    if isinstance(sa, Seq) and isinstance(sb, Seq) and len(sa) == len(sb):
        out = Seq()
        for k, (x, y) in enumerate(zip(sa, sb)):
            _check_same_type(flow, f"{name}[{k}]", x, y, where)
            out.append(x if x == y else
                       flow.emit("Where", [flag, x, y], flow.fresh(f"{name}_{k}"), label))
        return out
    if isinstance(sa, Opt) and isinstance(sb, Opt) and (sa.value is None) == (sb.value is None):
        if sa.value is None:
            return Opt(None)
        x, y = sa.value, sb.value
        if x in flow.structs or y in flow.structs:
            inner = flow.fresh(f"{name}_value")
            flow.structs[inner] = _select_struct(flow, flag, name, x, y, label, where)
            return Opt(inner)
        _check_same_type(flow, name, x, y, where)
        return Opt(flow.emit("Where", [flag, x, y], flow.fresh(f"{name}_value"), label))
    def shape(s):
        return (f"a sequence of {len(s)}" if isinstance(s, Seq) else
                "an empty optional" if isinstance(s, Opt) and s.value is None else
                "a present optional" if isinstance(s, Opt) else "a tensor")
    raise ModelError(f"{where}: output {name!r} is chosen by a run-time condition, so both "
                     f"branches must give it one compile-time structure; then gives "
                     f"{shape(sa)}, else {shape(sb)}")


def _stack(flow, values: list, axis: int, out: str, label, where) -> str:
    """IR value ``out`` = ``values`` (one type) stacked along a new ``axis``."""
    if not values:
        raise ModelError(f"{where}: a scan output would be empty (zero iterations)")
    rank = flow.type(values[0]).rank + 1
    if not -rank <= axis < rank:
        raise ModelError(f"{where}: scan output axis {axis} out of range for rank {rank}")
    axes = flow.constant(f"{out}_axes", np.array([axis % rank], np.int64))
    parts = [flow.emit("Unsqueeze", [v, axes], flow.fresh(f"{out}_part"), label) for v in values]
    return flow.emit("Concat", parts, out, label, axis=axis % rank)


def _loop(flow, proto, inputs, scope, label, where):
    body = _graph_attr(proto, "body", where)
    trip_name, cond_name, state = inputs[0], inputs[1], list(inputs[2:])
    n_state = len(state)
    trip = None
    if trip_name:
        value = flow.value(flow.tensor(trip_name, where))
        if value is None:
            raise ModelError(f"{where}: trip count M {trip_name!r} must be known at compile "
                             f"time (data-dependent shapes are not supported)")
        trip = int(_one(value, where, "the trip count M"))
    running = None                   # run-time "still iterating" flag, None: statically yes
    going = True
    if cond_name:
        known = _known_bool(flow, flow.tensor(cond_name, where), where, "the condition")
        if known is None:
            running = flow.scalar(cond_name, label)
        going = known is not False
    if trip is None and running is not None:
        raise ModelError(f"{where}: a Loop whose condition is only known at run time needs a "
                         f"static trip count M")
    if running is not None and any(v in flow.structs for v in state):
        raise ModelError(f"{where}: condition {cond_name!r} must be known at compile time "
                         f"(a sequence or optional loop state has a compile-time length)")
    n_scan = len(body.output) - 1 - n_state
    if n_scan < 0 or len(body.input) != 2 + n_state:
        raise ModelError(f"{where}: the body takes {len(body.input)} inputs and gives "
                         f"{len(body.output)} outputs; the loop carries {n_state} values")
    if running is not None and n_scan:
        raise ModelError(f"{where}: condition {cond_name!r} must be known at compile time "
                         f"(the loop's scan outputs would have a data-dependent length)")
    scans = [[] for _ in range(n_scan)]
    start, i = len(flow.graph.nodes), 0
    while going and (trip is None or i < trip):
        if i >= MAX_ITERATIONS or (running is not None and trip > MAX_ITERATIONS):
            raise ModelError(f"{where}: the loop runs more than {MAX_ITERATIONS} iterations "
                             f"(nnbuild unrolls loops)")
        shape = [1] if _declared_rank(body.input[0]) == 1 else []
        it = flow.constant(f"{label}_iter{i}", np.full(shape, i, np.int64))
        cond_in = running or flow.constant(f"{label}_cond{i}", np.ones(
            [1] if _declared_rank(body.input[1]) == 1 else [], np.bool_))
        outs = flow.inline(body, [it, cond_in] + state, scope, f".{i}", label, where)
        cond_out, new_state, scan_values = outs[0], outs[1:1 + n_state], outs[1 + n_state:]
        if running is not None:
            new_state = [_keep_if(flow, running, new, old, label, where)
                         for new, old in zip(new_state, state)]
        for k, v in enumerate(scan_values):
            scans[k].append(flow.tensor(v, where, "scan output"))
        state = new_state
        known = _known_bool(flow, cond_out, where, "the body's condition output")
        if running is None and known is None:
            if trip is None:
                raise ModelError(f"{where}: a Loop whose condition is only known at run time "
                                 f"needs a static trip count M")
            if n_scan:
                raise ModelError(f"{where}: the body's condition output must be known at "
                                 f"compile time (the loop's scan outputs would have a "
                                 f"data-dependent length)")
            running = flow.scalar(cond_out, label)
        elif running is not None and known is not True:
            flag = flow.scalar(cond_out, label)
            running = flow.emit("And", [running, flag], flow.fresh(f"{label}_running"), label)
        going = known is not False
        i += 1
        flow.check_budget(start, where)
    outputs = list(proto.output)
    for name, value in zip(outputs[:n_state], state):
        flow.bind(scope, name, value, label)
    for name, values in zip(outputs[n_state:], scans):
        if name:
            _stack(flow, values, 0, flow.define(scope, name), label, where)


def _declared_rank(value_info) -> int | None:
    t = value_info.type
    if t.HasField("tensor_type") and t.tensor_type.HasField("shape"):
        return len(t.tensor_type.shape.dim)
    return None


def _keep_if(flow, running, new, old, label, where) -> str:
    if new in flow.structs or old in flow.structs:
        raise ModelError(f"{where}: a sequence or optional loop state under a run-time "
                         f"condition is not supported")
    if flow.type(new) != flow.type(old):
        raise ModelError(f"{where}: under a run-time condition the loop state must keep its "
                         f"type; {flow.type(old)} becomes {flow.type(new)}")
    return flow.emit("Where", [running, new, old], flow.fresh(f"{new}_kept"), label)


def _scan(flow, proto, inputs, scope, label, where):
    body = _graph_attr(proto, "body", where)
    attrs = _attrs(proto)
    if flow.opset_of("") < 9:
        return _scan8(flow, proto, body, attrs, inputs, scope, label, where)
    n_in = attrs.get("num_scan_inputs")
    if n_in is None or not 0 < n_in <= len(inputs):
        raise ModelError(f"{where}: num_scan_inputs must be between 1 and {len(inputs)}")
    n_state = len(inputs) - n_in
    state = [flow.tensor(i, where) for i in inputs[:n_state]]
    xs = [flow.tensor(i, where) for i in inputs[n_state:]]
    n_out = len(body.output) - n_state
    if n_out < 0:
        raise ModelError(f"{where}: the body gives {len(body.output)} outputs, fewer than the "
                         f"{n_state} state values")
    out_axes = attrs.get("scan_output_axes", [0] * n_out)
    out_dirs = attrs.get("scan_output_directions", [0] * n_out)
    if len(out_axes) != n_out or len(out_dirs) != n_out:
        raise ModelError(f"{where}: scan_output_axes/directions do not match the {n_out} "
                         f"scan outputs")
    state, scans = _scan_steps(flow, body, state, xs, attrs.get("scan_input_axes", [0] * n_in),
                               attrs.get("scan_input_directions", [0] * n_in), scope, label,
                               where)
    outputs = list(proto.output)
    for name, value in zip(outputs[:n_state], state):
        flow.bind(scope, name, value, label)
    for name, values, axis, reverse in zip(outputs[n_state:], scans, out_axes, out_dirs):
        if name:
            _stack(flow, values[::-1] if reverse else values, axis,
                   flow.define(scope, name), label, where)


def _scan_steps(flow, body, state: list, xs: list, in_axes, in_dirs, scope, label, where):
    """Unroll the body over slices of ``xs``; returns the final state and, per scan output,
    the list of its per-iteration values (in iteration order)."""
    if len(in_axes) != len(xs) or len(in_dirs) != len(xs):
        raise ModelError(f"{where}: scan input axes/directions do not match the {len(xs)} "
                         f"scan inputs")
    lengths, axes = set(), []
    for x, axis in zip(xs, in_axes):
        t = flow.type(x)
        if not -t.rank <= axis < t.rank:
            raise ModelError(f"{where}: scan input axis {axis} out of range for {x!r} {t}")
        axes.append(axis % t.rank)
        lengths.add(t.shape[axis % t.rank])
    if len(lengths) != 1:
        raise ModelError(f"{where}: scan inputs have different lengths {sorted(lengths)}")
    steps = lengths.pop()
    if steps > MAX_ITERATIONS:
        raise ModelError(f"{where}: the scan runs {steps} iterations, more than the "
                         f"{MAX_ITERATIONS} nnbuild unrolls")
    n_state = len(state)
    scans = [[] for _ in range(len(body.output) - n_state)]
    start = len(flow.graph.nodes)
    for t in range(steps):
        slices = []
        for x, axis, reverse in zip(xs, axes, in_dirs):
            index = flow.constant(f"{label}_t{t}", np.array(steps - 1 - t if reverse else t,
                                                            np.int64))
            slices.append(flow.emit("Gather", [x, index], flow.fresh(f"{x}_t{t}"), label,
                                    axis=axis))
        outs = flow.inline(body, state + slices, scope, f".{t}", label, where)
        state = [flow.tensor(v, where, "state") for v in outs[:n_state]]
        for k, v in enumerate(outs[n_state:]):
            scans[k].append(flow.tensor(v, where, "scan output"))
        flow.check_budget(start, where)
    return state, scans


def _scan8(flow, proto, body, attrs, inputs, scope, label, where):
    """Scan before opset 9: every input has a leading batch axis, scanned along axis 1; the
    body runs per batch entry. Sequence lengths shorter than the scan axis are refused."""
    n_in = attrs.get("num_scan_inputs")
    lens, rest = (inputs[0] if inputs else ""), inputs[1:]
    if n_in is None or not 0 < n_in <= len(rest):
        raise ModelError(f"{where}: num_scan_inputs must be between 1 and {len(rest)}")
    n_state = len(rest) - n_in
    values = [flow.tensor(i, where) for i in rest]
    batch = flow.type(values[0]).shape[0] if flow.type(values[0]).rank else 0
    steps = flow.type(values[n_state]).shape[1] if flow.type(values[n_state]).rank > 1 else 0
    if lens:
        known = flow.value(lens)
        if known is None or not np.all(known == steps):
            raise ModelError(f"{where}: sequence_lens must be known at compile time and equal "
                             f"the scan length {steps} (shorter sequences are not supported)")
    finals, scans = [[] for _ in range(n_state)], [[] for _ in range(len(body.output) - n_state)]
    for b in range(batch):
        index = flow.constant(f"{label}_b{b}", np.array(b, np.int64))
        rows = [flow.emit("Gather", [v, index], flow.fresh(f"{v}_b{b}"), label, axis=0)
                for v in values]
        state, per_step = _scan_steps(flow, body, rows[:n_state], rows[n_state:], [0] * n_in,
                                      attrs.get("directions", [0] * n_in), scope, label, where)
        for k, v in enumerate(state):
            finals[k].append(v)
        for k, steps_k in enumerate(per_step):
            scans[k].append(_stack(flow, steps_k, 0, flow.fresh(f"{label}_scan{k}_b{b}"),
                                   label, where))
    for name, parts in list(zip(proto.output, finals)) + list(zip(proto.output[n_state:], scans)):
        if name:
            _stack(flow, parts, 0, flow.define(scope, name), label, where)


# --- sequences and optionals ------------------------------------------------------------------
def _seq(flow, name: str, where: str) -> Seq:
    value = flow.structs.get(name)
    if not isinstance(value, Seq):
        raise ModelError(f"{where}: input {name!r} is not a sequence")
    return value


def _position(flow, name: str, length: int, where: str, default: int, insert=False) -> int:
    if not name:
        return default
    value = flow.value(name)
    if value is None:
        raise ModelError(f"{where}: position {name!r} must be known at compile time "
                         f"(sequences are compile-time lists)")
    pos = int(_one(value, where, "the position"))
    limit = length + 1 if insert else length
    if not -length <= pos < limit:
        raise ModelError(f"{where}: position {pos} out of range for a sequence of {length}")
    return pos + length if pos < 0 else pos


def _sequence_empty(flow, proto, inputs, scope, label, where):
    flow.bind_struct(scope, proto.output[0], Seq())


def _sequence_construct(flow, proto, inputs, scope, label, where):
    flow.bind_struct(scope, proto.output[0], Seq(flow.tensor(i, where) for i in inputs))


def _sequence_insert(flow, proto, inputs, scope, label, where):
    seq = _seq(flow, inputs[0], where)
    pos = _position(flow, inputs[2] if len(inputs) > 2 else "", len(seq), where, len(seq), True)
    flow.bind_struct(scope, proto.output[0],
                     Seq(seq[:pos] + [flow.tensor(inputs[1], where)] + seq[pos:]))


def _sequence_erase(flow, proto, inputs, scope, label, where):
    seq = _seq(flow, inputs[0], where)
    pos = _position(flow, inputs[1] if len(inputs) > 1 else "", len(seq), where, len(seq) - 1)
    if not seq:
        raise ModelError(f"{where}: cannot erase from an empty sequence")
    flow.bind_struct(scope, proto.output[0], Seq(seq[:pos] + seq[pos + 1:]))


def _sequence_at(flow, proto, inputs, scope, label, where):
    seq = _seq(flow, inputs[0], where)
    pos = _position(flow, inputs[1], len(seq), where, 0)
    flow.bind(scope, proto.output[0], seq[pos], label)


def _sequence_length(flow, proto, inputs, scope, label, where):
    count = flow.constant(f"{proto.output[0]}_length", np.array(len(_seq(flow, inputs[0], where)),
                                                               np.int64))
    flow.bind(scope, proto.output[0], count, label)


def _concat_from_sequence(flow, proto, inputs, scope, label, where):
    seq = _seq(flow, inputs[0], where)
    attrs = _attrs(proto)
    if not seq:
        raise ModelError(f"{where}: cannot concatenate an empty sequence")
    if attrs.get("new_axis", 0):
        _stack(flow, list(seq), attrs.get("axis", 0), flow.define(scope, proto.output[0]),
               label, where)
    else:
        flow.emit("Concat", list(seq), flow.define(scope, proto.output[0]), label,
                  axis=attrs.get("axis", 0))


def _split_to_sequence(flow, proto, inputs, scope, label, where):
    x = flow.tensor(inputs[0], where)
    t = flow.type(x)
    attrs = _attrs(proto)
    axis = attrs.get("axis", 0)
    if not -t.rank <= axis < t.rank:
        raise ModelError(f"{where}: axis {axis} out of range for rank {t.rank}")
    axis %= t.rank
    dim = t.shape[axis]
    split_name = inputs[1] if len(inputs) > 1 else ""
    if split_name:
        split = flow.value(split_name)
        if split is None:
            raise ModelError(f"{where}: split {split_name!r} must be known at compile time "
                             f"(data-dependent shapes are not supported)")
        if split.ndim == 0:
            size = int(split)
            if size <= 0:
                raise ModelError(f"{where}: split size {size} must be positive")
            sizes = [min(size, dim - s) for s in range(0, dim, size)]
        else:
            sizes = [int(s) for s in split]
            if sum(sizes) != dim or any(s < 0 for s in sizes):
                raise ModelError(f"{where}: split {sizes} does not add up to dimension {dim}")
    else:
        sizes = [1] * dim
    squeeze = not split_name and attrs.get("keepdims", 1) == 0
    name = proto.output[0] + scope.suffix
    axes = flow.constant(f"{name}_axes", np.array([axis], np.int64))
    parts, begin = Seq(), 0
    for k, size in enumerate(sizes):
        if squeeze:
            index = flow.constant(f"{name}_at{k}", np.array(begin, np.int64))
            parts.append(flow.emit("Gather", [x, index], flow.fresh(f"{name}_{k}"), label,
                                   axis=axis))
        else:
            lo = flow.constant(f"{name}_start{k}", np.array([begin], np.int64))
            hi = flow.constant(f"{name}_end{k}", np.array([begin + size], np.int64))
            parts.append(flow.emit("Slice", [x, lo, hi, axes], flow.fresh(f"{name}_{k}"), label))
        begin += size
    flow.bind_struct(scope, proto.output[0], parts)


def _sequence_map(flow, proto, inputs, scope, label, where):
    body = _graph_attr(proto, "body", where)
    first = _seq(flow, inputs[0], where)
    others = []
    for name in inputs[1:]:
        if isinstance(flow.structs.get(name), Seq):
            if len(flow.structs[name]) != len(first):
                raise ModelError(f"{where}: sequences of different lengths")
        others.append(name)
    if len(first) > MAX_ITERATIONS:
        raise ModelError(f"{where}: more than {MAX_ITERATIONS} elements to map")
    results = [Seq() for _ in proto.output]
    for i in range(len(first)):
        args = [first[i]] + [flow.structs[n][i] if isinstance(flow.structs.get(n), Seq) else n
                             for n in others]
        outs = flow.inline(body, args, scope, f".{i}", label, where)
        for k, v in enumerate(outs):
            results[k].append(flow.tensor(v, where, "body output"))
    for name, seq in zip(proto.output, results):
        flow.bind_struct(scope, name, seq)


def _optional(flow, proto, inputs, scope, label, where):
    flow.bind_struct(scope, proto.output[0], Opt(inputs[0] if inputs and inputs[0] else None))


def _optional_has_element(flow, proto, inputs, scope, label, where):
    name = inputs[0] if inputs else ""
    struct = flow.structs.get(name)
    has = bool(name) and not (isinstance(struct, Opt) and struct.value is None)
    flow.bind(scope, proto.output[0], flow.constant(f"{proto.output[0]}_value", np.array(has)),
              label)


def _optional_get_element(flow, proto, inputs, scope, label, where):
    name = inputs[0]
    struct = flow.structs.get(name)
    if isinstance(struct, Opt):
        if struct.value is None:
            raise ModelError(f"{where}: the optional {name!r} is empty")
        name = struct.value
    flow.bind(scope, proto.output[0], name, label)


def _identity(flow, proto, inputs, scope, label, where):
    flow.bind(scope, proto.output[0], inputs[0], label)


HANDLERS = {
    "If": _if, "Loop": _loop, "Scan": _scan,
    "SequenceEmpty": _sequence_empty, "SequenceConstruct": _sequence_construct,
    "SequenceInsert": _sequence_insert, "SequenceErase": _sequence_erase,
    "SequenceAt": _sequence_at, "SequenceLength": _sequence_length,
    "ConcatFromSequence": _concat_from_sequence, "SplitToSequence": _split_to_sequence,
    "SequenceMap": _sequence_map,
    "Optional": _optional, "OptionalHasElement": _optional_has_element,
    "OptionalGetElement": _optional_get_element,
}
