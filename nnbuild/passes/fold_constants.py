"""fold-constants: a node whose inputs are all known at compile time becomes a constant.

Covers the shape chains exporters emit (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) and
ConstantOfShape fills, which stay compact one-value constants until written to the blob.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph
from ..ops import registry
from ..ops.registry import InferContext
from .manager import Pass


def _fold(graph: Graph) -> Graph:
    graph = graph.copy()
    kept = []
    for node in graph.nodes:
        op = registry.get(node)
        types = [graph.types.get(i) if i else None for i in node.inputs]
        values = [graph.constants.get(i) if i else None for i in node.inputs]
        folded = op.fold(InferContext(graph, node, types, values))
        if folded is None or any(o in graph.inputs for o in node.outputs):
            kept.append(node)
            continue
        for name, value in zip(node.outputs, folded):
            if name:
                graph.add_constant(name, np.asarray(value))
    graph.nodes = kept
    graph.drop_unused_constants()
    return graph


fold_constants = Pass("fold-constants", "nodes whose inputs are all constants become constants",
                      _fold)
