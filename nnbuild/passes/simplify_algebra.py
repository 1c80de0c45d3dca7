"""simplify-algebra: operations that change nothing, or two that are one, are rewritten away.

    x * 1, 1 * x, x + 0, 0 + x, x - 0, x / 1        =>  x     (same type as the result)
    Cast(x) to x's own type                          =>  x
    Reshape(x) to x's own shape, Transpose(x, identity perm)   =>  x
    Reshape(Reshape(x)) (or of Flatten, Squeeze, Unsqueeze)  =>  Reshape(x, final shape), or x
    Expand(x) to x's own shape                       =>  x
    Where(constant all true / all false, a, b)       =>  a / b   (same type as the result)
    Transpose(Transpose(x, p), q)                    =>  Transpose(x, p∘q)  (or x when identity)

A value that is a graph output keeps its node (outputs keep their names). A Reshape, Expand or
view whose shape or axes are run-time values keeps its node: its kernel checks that value.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from .manager import Rule, rewrite_pass


def _forward(graph: Graph, node: Node, x: str):
    y = node.outputs[0]
    if y in graph.outputs or graph.types[x] != graph.types[y]:
        return None
    graph.rename_uses(y, x)
    return []


def _all(graph: Graph, name: str, value: float) -> bool:
    array = graph.constants.get(name)
    return array is not None and array.size > 0 and bool(np.all(array == value))


def _neutral(value: float, commutes: bool):
    def rewrite(graph: Graph, node: Node):
        # x op neutral  =>  x    (and neutral op x when the op commutes)
        if len(node.inputs) != 2:
            return None
        a, b = node.inputs
        if _all(graph, b, value):
            return _forward(graph, node, a)
        if commutes and _all(graph, a, value):
            return _forward(graph, node, b)
        return None
    return rewrite


def _same_type_cast(graph: Graph, node: Node):
    # Cast(x) {to = type of x}  =>  x
    return _forward(graph, node, node.inputs[0])


VIEWS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")     # same bytes, another shape


def _static(graph: Graph, node: Node) -> bool:
    """Every input after the data (shape, axes) is a constant: a run-time value there is
    checked by the node's kernel, which must stay to report a wrong one."""
    return all(not i or graph.is_constant(i) for i in node.inputs[1:])


def _reshape(graph: Graph, node: Node):
    # Reshape(x) to x's shape  =>  x;  Reshape(view(x), t)  =>  Reshape(x, final shape), or x
    x, y = node.inputs[0], node.outputs[0]
    if not _static(graph, node):
        return None
    if graph.types[x] == graph.types[y]:
        return _forward(graph, node, x)
    inner = graph.producers().get(x)
    if inner is None or inner.op not in VIEWS or not _static(graph, inner):
        return None
    if graph.types[inner.inputs[0]] == graph.types[y]:
        return _forward(graph, node, inner.inputs[0])
    shape = graph.add_constant(graph.unique_name(f"{y}_shape"),
                               np.array(graph.types[y].shape, np.int64))
    return [node.replace(inputs=(inner.inputs[0], shape), attrs={},
                         sources=inner.sources + node.sources)]


def _expand(graph: Graph, node: Node):
    # Expand(x) to x's own shape  =>  x
    return _forward(graph, node, node.inputs[0]) if _static(graph, node) else None


def _where(graph: Graph, node: Node):
    # Where(all-true constant, a, b)  =>  a;  Where(all-false constant, a, b)  =>  b
    cond = graph.constants.get(node.inputs[0])
    if cond is None or cond.size == 0 or cond.dtype != bool:
        return None
    if np.all(cond):
        return _forward(graph, node, node.inputs[1])
    if not np.any(cond):
        return _forward(graph, node, node.inputs[2])
    return None


def _perm(graph: Graph, node: Node) -> list:
    rank = graph.types[node.inputs[0]].rank
    return [int(p) for p in node.attr("perm", list(range(rank))[::-1])]


def _transpose(graph: Graph, node: Node):
    # Transpose(x, identity)  =>  x;  Transpose(Transpose(x, p), q)  =>  Transpose(x, p∘q)
    x = node.inputs[0]
    perm = _perm(graph, node)
    if perm == sorted(perm):
        return _forward(graph, node, x)
    inner = graph.producers().get(x)
    if inner is None or inner.op != "Transpose":
        return None
    first = _perm(graph, inner)
    combined = [first[p] for p in perm]
    if combined == sorted(combined):
        return _forward(graph, node, inner.inputs[0])
    return [node.replace(inputs=(inner.inputs[0],), attrs={**node.attrs, "perm": combined},
                         sources=inner.sources + node.sources)]


simplify_algebra = rewrite_pass("simplify-algebra", "x*1, x+0, same-type Cast, no-op Expand/Where, "
                               "Reshape/Transpose pairs", [
    Rule("Mul", _neutral(1, commutes=True)),
    Rule("Div", _neutral(1, commutes=False)),
    Rule("Add", _neutral(0, commutes=True)),
    Rule("Sub", _neutral(0, commutes=False)),
    Rule("Cast", _same_type_cast),
    Rule("Reshape", _reshape),
    Rule("Transpose", _transpose),
    Rule("Expand", _expand),
    Rule("Where", _where),
])
