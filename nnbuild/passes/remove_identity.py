"""remove-identity: Identity and inference-mode Dropout pass their input through."""
from __future__ import annotations

from ..ir.graph import Graph, Node
from .manager import Rule, rewrite_pass


def _forward(graph: Graph, node: Node):
    # y = Identity(x)  =>  readers of y read x    (kept when y is a graph output)
    x, y = node.inputs[0], node.outputs[0]
    if y in graph.outputs:
        return None
    graph.rename_uses(y, x)
    return []


def _forward_dropout(graph: Graph, node: Node):
    # y, mask = Dropout(x)  =>  readers of y read x    (when mask is unused and not training)
    if len(node.outputs) > 1 and node.outputs[1] and node.outputs[1] in graph.used_names():
        return None
    if len(node.inputs) > 2 and node.inputs[2]:
        training = graph.constants.get(node.inputs[2])
        if training is None or bool(training.reshape(-1)[0]):
            return None
    return _forward(graph, node)


remove_identity = rewrite_pass("remove-identity", "Identity and Dropout pass their input through", [
    Rule("Identity", _forward),
    Rule("Dropout", _forward_dropout),
])
