"""recognize-gelu: the elementwise spellings of GELU become one Gelu op (which fusion can then
make a product's epilogue).

    y = x * (1 + Erf(x / sqrt 2)) * 0.5        =>  y = Gelu(x)
    y = (x * 0.5) * (1 + Erf(x * 1/sqrt 2))     =>  y = Gelu(x)
    y = x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3))) * 0.5   =>  y = Gelu(x) {approximate="tanh"}

Operands of Add and Mul may come in either order; every intermediate must have one reader and
not be a graph output. Constants are matched to 1e-4 relative.
"""
from __future__ import annotations

import math

from ..ir.graph import Graph, Node
from .manager import Rule, rewrite_pass
from .matching import Match, is_scalar


class _Match(Match):
    def scaled(self, node: Node, value: float) -> str | None:
        """x when node is Mul(x, value) or Mul(value, x)."""
        if node.op != "Mul" or len(node.inputs) != 2:
            return None
        a, b = node.inputs
        return a if _is(self.graph, b, value) else b if _is(self.graph, a, value) else None


def _is(graph: Graph, name: str, value: float) -> bool:
    return is_scalar(graph, name, value)


def _tail(m: _Match, inner: Node, x: str) -> Node | None:
    # 0.5 * x * (1 + inner(...)), with the 0.5 applied first or last; returns the last node
    add = m.reader(inner.outputs[0], "Add")
    if add is None or not _is(m.graph, m.other(add, inner.outputs[0]), 1.0):
        return None
    mul = m.reader(add.outputs[0], "Mul")
    if mul is None:
        return None
    o = m.other(mul, add.outputs[0])
    if o == x:
        last = m.reader(mul.outputs[0], "Mul")
        return last if last is not None and m.scaled(last, 0.5) == mul.outputs[0] else None
    half = m.producer(o, "Mul")
    return mul if half is not None and m.scaled(half, 0.5) == x else None


def _replace(graph: Graph, m: _Match, first: Node, last: Node, x: str, attrs: dict):
    if graph.types[x] != graph.types[last.outputs[0]]:
        return None
    return m.replace(first, Node("Gelu", (x,), last.outputs, attrs, m.sources()))


def _erf(graph: Graph, erf: Node):
    # d = x / sqrt2 (or x * 1/sqrt2); e = Erf(d); ... tail  =>  Gelu(x)
    m = _Match(graph)
    arg = m.producers.get(erf.inputs[0])
    if arg is None or m.producer(erf.inputs[0], arg.op) is None:
        return None
    if arg.op == "Div" and _is(graph, arg.inputs[1], math.sqrt(2)):
        x = arg.inputs[0]
    else:
        x = m.scaled(arg, math.sqrt(0.5))
    if x is None:
        return None
    m.nodes.append(erf)
    last = _tail(m, erf, x)
    return None if last is None else _replace(graph, m, erf, last, x, {})


def _tanh(graph: Graph, tanh: Node):
    # t = Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)); ... tail  =>  Gelu(x) {approximate="tanh"}
    m = _Match(graph)
    scale = m.producer(tanh.inputs[0], "Mul")
    s = m.scaled(scale, math.sqrt(2 / math.pi)) if scale is not None else None
    inner = m.producer(s, "Add") if s else None
    if inner is None:
        return None
    for x, cube_term in (inner.inputs, inner.inputs[::-1]):
        term = m.producers.get(cube_term)
        if term is None or term.op != "Mul":
            continue
        cube = m.scaled(term, 0.044715)
        power = m.producers.get(cube) if cube else None
        if power is not None and power.op == "Pow" and power.inputs[0] == x \
                and _is(graph, power.inputs[1], 3.0) \
                and m.producer(cube_term, "Mul") and m.producer(cube, "Pow"):
            m.nodes.append(tanh)
            last = _tail(m, tanh, x)
            return None if last is None else _replace(graph, m, tanh, last, x,
                                                      {"approximate": "tanh"})
    return None


recognize_gelu = rewrite_pass("recognize-gelu", "erf and tanh spellings of GELU become Gelu", [
    Rule("Erf", _erf),
    Rule("Tanh", _tanh),
])
