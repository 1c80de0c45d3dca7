"""eliminate-dead-code: drop nodes none of whose outputs reach a graph output."""
from __future__ import annotations

from ..ir.graph import Graph
from .manager import Pass


def _eliminate(graph: Graph) -> Graph:
    graph = graph.copy()
    live = set(graph.outputs)
    kept = []
    for node in reversed(graph.nodes):
        if any(o in live for o in node.outputs if o):
            kept.append(node)
            live.update(i for i in node.inputs if i)
    graph.nodes = kept[::-1]
    graph.drop_unused_constants()
    return graph


eliminate_dead_code = Pass("eliminate-dead-code", "drop nodes whose results are never used",
                           _eliminate)
