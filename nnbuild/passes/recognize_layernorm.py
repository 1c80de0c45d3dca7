"""recognize-layernorm: LayerNormalization spelled out the way exporters before opset 17 (torch)
write it becomes one LayerNormalization op.

    m = ReduceMean(x, axes); d = Sub(x, m); p = Pow(d, 2) (or Mul(d, d));
    v = ReduceMean(p, axes); s = Sqrt(Add(v, eps)); n = Div(d, s) (or Mul(d, Reciprocal(s)));
    g = Mul(n, gamma); y = Add(g, beta)             =>  y = LayerNormalization(x, gamma, beta)
                                                         {axis=first of axes, epsilon=eps}

``axes`` are the trailing axes of x (both reductions the same, dims kept); the scale and bias
steps are optional (ones and no bias then), and when present are constants that broadcast to
the normalized shape. f32 only (LayerNormalization's kernel). d has exactly its two readers,
every other intermediate one, none is a graph output.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node, splat
from .manager import Rule, rewrite_pass
from .matching import Match, is_scalar, scalar


def _square_of(m: Match, d: str) -> Node | None:
    users = m.readers(d)
    for u in users:
        if u.op == "Pow" and u.inputs[0] == d and is_scalar(m.graph, u.inputs[1], 2.0):
            return m.take(u)
        if u.op == "Mul" and u.inputs == (d, d):
            return m.take(u)
    return None


def _divided(m: Match, d: str, s: str) -> Node | None:
    """The node computing d / s: Div(d, s), or Mul(d, Reciprocal(s)) in either order."""
    users = m.readers(s)
    if len(users) != 1:
        return None
    node = users[0]
    if node.op == "Reciprocal":
        m.take(node)
        node = m.reader(node.outputs[0], "Mul")
        r = users[0].outputs[0]
        ok = node is not None and node.inputs in ((d, r), (r, d))
    else:
        ok = node.op == "Div" and node.inputs == (d, s)
    return m.take(node) if ok and node in m.readers(d) else None


def _param(m: Match, node: Node | None, value: str, op: str, normalized: tuple) -> str | None:
    """The constant operand of an ``op`` step after ``value``, reshaped to the normalized rank;
    None when the step is not there or does not qualify."""
    if node is None or node.op != op:
        return None
    graph = m.graph
    name = m.other(node, value)
    array = graph.constants.get(name)
    if array is None or graph.types[node.outputs[0]] != graph.types[value]:
        return None
    extra = array.ndim - len(normalized)
    if extra > 0 and any(d != 1 for d in array.shape[:extra]):
        return None
    array = array.reshape(array.shape[max(extra, 0):])
    try:
        if np.broadcast_shapes(array.shape, normalized) != normalized:
            return None
    except ValueError:
        return None
    m.take(node)
    if array.shape == graph.constants[name].shape:
        return name
    return graph.add_constant(graph.unique_name(f"{name}_ln"), array)


def _layernorm(graph: Graph, mean: Node):
    # m = ReduceMean(x); d = x - m; ... y = d / sqrt(mean(d^2) + eps) * gamma + beta
    #   =>  y = LayerNormalization(x, gamma, beta)
    m = Match(graph)
    x = mean.inputs[0]
    xtype = graph.types[x]
    axes = m.reduced_axes(mean)
    if xtype.dtype.short != "f32" or not axes or axes != tuple(range(axes[0], xtype.rank)):
        return None
    m.take(mean)
    sub = m.reader(mean.outputs[0], "Sub")
    if sub is None or sub.inputs != (x, mean.outputs[0]) or graph.types[sub.outputs[0]] != xtype:
        return None
    d = sub.outputs[0]
    if len(m.readers(d)) != 2:
        return None
    square = _square_of(m, d)
    var = m.reader(square.outputs[0], "ReduceMean") if square is not None else None
    if var is None or m.reduced_axes(var) != axes:
        return None
    add = m.reader(var.outputs[0], "Add")
    if add is None or not is_scalar(graph, m.other(add, var.outputs[0])):
        return None
    eps = scalar(graph, m.other(add, var.outputs[0]))
    sqrt = m.reader(add.outputs[0], "Sqrt")
    div = _divided(m, d, sqrt.outputs[0]) if sqrt is not None else None
    if div is None:
        return None
    normalized = xtype.shape[axes[0]:]
    y = div.outputs[0]
    after = m.readers(y)
    gamma = _param(m, after[0] if len(after) == 1 else None, y, "Mul", normalized)
    if gamma is not None:
        y = m.nodes[-1].outputs[0]
        after = m.readers(y)
    else:
        gamma = graph.add_constant(graph.unique_name(f"{y}_scale"),
                                   splat(1.0, np.float32, normalized))
    beta = _param(m, after[0] if len(after) == 1 else None, y, "Add", normalized)
    inputs = (x, gamma) + ((beta,) if beta is not None else ())
    if beta is not None:
        y = m.nodes[-1].outputs[0]
    ln = Node("LayerNormalization", inputs, (y,), {"axis": axes[0], "epsilon": eps},
              m.sources())
    return m.replace(mean, ln)


recognize_layernorm = rewrite_pass("recognize-layernorm", "ReduceMean/Sub/Pow/ReduceMean/Add/"
                                   "Sqrt/Div (+Mul, Add) becomes LayerNormalization", [
    Rule("ReduceMean", _layernorm),
])
