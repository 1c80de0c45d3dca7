"""recognize-attention: scaled dot-product attention spelled out becomes one nnbuild::Attention
(``ops.fused_attention``), whose kernel never writes the score matrix to memory.

    s = MatMul(q, kt); t = Div(s, c) (or Mul(s, c), Mul(c, s), or no scaling);
    u = Add(t, mask) (optional, either order); p = Softmax(u) {last axis}; y = MatMul(p, v)
        =>  y = nnbuild::Attention(q, kt, v[, mask]) {scale = 1/c or c}

    Transpose(q', p) as q (kt, v alike); Transpose(y, p) as the only reader of y
        =>  Attention(q', ...) {q_perm=p}; Attention(...) {y_perm=p} writes that Transpose's value
    Mul(q', c) as q or Mul(k', c) under kt's Transpose (ONNX Attention's own body scales both)
        =>  Attention(q', ...) {scale *= c}

q, kt and v have the same rank and leading dims (no broadcasting inside the MatMuls), f32; c
is a one-element constant; the mask broadcasts to the scores (``mask_strides``). Every
intermediate has one reader and is not a graph output; a Transpose is absorbed when it is the
operand's only reader (the result's only reader) and the kernel can walk it with strides.
"""
from __future__ import annotations

from ..ir.graph import Graph, Node
from ..ops.fused_attention import attention_node, mask_strides, read_through, walk, write_through
from .manager import Rule, rewrite_pass
from .matching import Match, is_scalar, scalar
from .simplify_algebra import _perm


def _scale(m: Match, value: str) -> tuple:
    """(the unscaled value, scale) for Div/Mul by a constant producing ``value``."""
    node = m.producers.get(value)
    if node is None or node.op not in ("Div", "Mul") or len(m.readers(value)) != 1:
        return value, 1.0
    a, b = node.inputs
    if node.op == "Div" and is_scalar(m.graph, b) and scalar(m.graph, b) != 0:
        return m.take(node).inputs[0], 1.0 / scalar(m.graph, b)
    if node.op == "Mul" and (is_scalar(m.graph, a) or is_scalar(m.graph, b)):
        c, x = (a, b) if is_scalar(m.graph, a) else (b, a)
        m.take(node)
        return x, scalar(m.graph, c)
    return value, 1.0


def _operand(m: Match, name: str, scaled: bool) -> tuple:
    """(stored input, perm or None, factor): peels the head split's Transpose (when the kernel
    can walk it) and, for q and kt, a Mul by a one-element constant, in either order."""
    perm, factor = None, 1.0
    for _ in range(2):
        node = m.producers.get(name)
        if node is None or len(m.readers(name)) != 1:
            break
        if node.op == "Transpose" and perm is None and walk(*read_through(
                m.graph.types[node.inputs[0]].shape, _perm(m.graph, node))):
            perm, name = _perm(m.graph, m.take(node)), node.inputs[0]
        elif node.op == "Mul" and scaled and factor == 1.0 and any(
                is_scalar(m.graph, i) for i in node.inputs):
            c, x = node.inputs if is_scalar(m.graph, node.inputs[0]) else node.inputs[::-1]
            if m.graph.types[x] != m.graph.types[name]:
                break
            factor, name = scalar(m.graph, c), x
            m.take(node)
        else:
            break
    return name, perm, factor


def _attention(graph: Graph, softmax: Node):
    # p = Softmax(MatMul(q, kt) * scale + mask); y = MatMul(p, v)  =>  Attention(q, kt, v, mask)
    m = Match(graph)
    rank = graph.types[softmax.inputs[0]].rank
    if int(softmax.attr("axis", -1)) not in (-1, rank - 1):
        return None
    m.take(softmax)
    out = m.reader(softmax.outputs[0], "MatMul")
    if out is None or out.inputs[0] != softmax.outputs[0]:
        return None
    value, mask = softmax.inputs[0], ""
    add = m.producers.get(value)
    if add is not None and add.op == "Add" and len(m.readers(value)) == 1:
        for x, other in (add.inputs, add.inputs[::-1]):
            inner = m.producers.get(x)
            if inner is not None and inner.op in ("MatMul", "Div", "Mul") \
                    and graph.types[x] == graph.types[value]:
                value, mask = x, other
                m.take(add)
                break
    value, scale = _scale(m, value)
    scores = m.producer(value, "MatMul")
    if scores is None:
        return None
    q, kt = scores.inputs
    v = out.inputs[1]
    types = [graph.types[n] for n in (q, kt, v, softmax.inputs[0], out.outputs[0])]
    if any(t.dtype.short != "f32" for t in types) or not (
            types[0].rank == types[1].rank == types[2].rank == rank) \
            or not (types[0].shape[:-2] == types[1].shape[:-2] == types[2].shape[:-2]):
        return None
    if mask and (graph.types[mask].dtype.short != "f32"
                 or mask_strides(graph.types[mask].shape, types[3].shape) is None):
        return None
    perms, inputs = {}, []
    for name, attr in ((q, "q_perm"), (kt, "kt_perm"), (v, "v_perm")):
        name, perms[attr], factor = _operand(m, name, scaled=attr != "v_perm")
        scale *= factor
        inputs.append(name)
    y = out.outputs[0]
    after = m.readers(y)                         # write through the head merge's Transpose
    if len(after) == 1 and after[0].op == "Transpose" and walk(graph.types[y].shape, write_through(
            graph.types[y].shape, _perm(graph, after[0]))[1]) is not None:
        perms["y_perm"], y = _perm(graph, m.take(after[0])), after[0].outputs[0]
    fused = attention_node(tuple(inputs) + (mask,), y, scale, perms, m.sources())
    return m.replace(softmax, fused)


recognize_attention = rewrite_pass("recognize-attention", "MatMul/scale/mask/Softmax/MatMul "
                                   "becomes nnbuild::Attention", [Rule("Softmax", _attention)])
