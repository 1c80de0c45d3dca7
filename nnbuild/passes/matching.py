"""What the recognition passes share: walking a pattern through a graph and replacing the
nodes it matched by one node.

A ``Match`` collects the nodes of a candidate pattern. ``reader`` / ``producer`` step to the
sole reader or the producer of a value when that value has exactly the readers the pattern
names and is not a graph output (an intermediate read elsewhere must keep its node).
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ..ops import registry


def is_scalar(graph: Graph, name: str, value: float | None = None, rtol: float = 1e-4) -> bool:
    """``name`` is a one-element float constant (equal to ``value`` to ``rtol`` when given)."""
    array = graph.constants.get(name)
    if array is None or array.size != 1 or array.dtype.kind != "f":
        return False
    return value is None or bool(np.isclose(float(array.reshape(-1)[0]), value, rtol=rtol, atol=0))


def scalar(graph: Graph, name: str) -> float:
    return float(graph.constants[name].reshape(-1)[0])


class Match:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.producers = graph.producers()
        self.consumers = graph.consumers()
        self.nodes: list = []

    def readers(self, name: str) -> list:
        """The nodes reading ``name``, each once; [] for a graph output (its node must stay)."""
        if name in self.graph.outputs:
            return []
        users = self.consumers.get(name, [])
        return [u for k, u in enumerate(users) if not any(u is v for v in users[:k])]

    def take(self, node: Node | None) -> Node | None:
        if node is not None and node not in self.nodes:
            self.nodes.append(node)
        return node

    def reader(self, name: str, op: str) -> Node | None:
        """The one node reading ``name``, when it is ``op``."""
        users = self.readers(name)
        return self.take(users[0]) if len(users) == 1 and users[0].op == op else None

    def producer(self, name: str, op: str, readers: int = 1) -> Node | None:
        """The ``op`` node producing ``name``, when ``name`` has ``readers`` readers."""
        node = self.producers.get(name)
        if node is None or node.op != op or len(self.readers(name)) != readers:
            return None
        return self.take(node)

    def other(self, node: Node, name: str) -> str:
        """The operand of a two-input ``node`` that is not ``name``."""
        a, b = node.inputs
        return b if a == name else a

    def reduced_axes(self, node: Node, keepdims: bool = True) -> tuple | None:
        """The sorted axes a Reduce* node reduces (None when they are not constant or the
        kept-dims setting differs)."""
        if bool(node.attr("keepdims", 1)) != keepdims:
            return None
        axes = node.inputs[1] if len(node.inputs) > 1 and node.inputs[1] else ""
        if axes and axes not in self.graph.constants:
            return None
        rank = self.graph.types[node.inputs[0]].rank
        return registry.lookup(node.op).reduced_axes(node, rank, self.graph.constants.get(axes))

    def replace(self, first: Node, new: Node) -> list:
        """Put ``new`` where the last matched node was, drop the others; the rewrite returns
        the result (nothing) in place of ``first``."""
        graph = self.graph
        order = {id(n): k for k, n in enumerate(graph.nodes)}
        last = max(self.nodes, key=lambda n: order[id(n)])
        dropped = {id(n) for n in self.nodes if n is not first and n is not last}
        graph.nodes[:] = [new if n is last else n for n in graph.nodes if id(n) not in dropped]
        return []

    def sources(self) -> tuple:
        order = {id(n): k for k, n in enumerate(self.graph.nodes)}
        return tuple(s for n in sorted(self.nodes, key=lambda n: order[id(n)]) for s in n.sources)
