"""fold-constants: a node whose inputs are all known at compile time becomes a constant.

Covers the shape chains exporters emit (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) and
ConstantOfShape fills, which stay compact one-value constants until written to the blob.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, splat
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
                graph.add_constant(name, _compact(np.asarray(value)))
    graph.nodes = kept
    graph.drop_unused_constants()
    return graph


def _compact(value: np.ndarray) -> np.ndarray:
    """A result holding one value everywhere becomes a one-value fill (Neg of a fill, a
    ConstantOfShape computed by its reference...), so it stays compact in the graph."""
    if value.ndim and value.size > 1 and np.all(value == value.reshape(-1)[0]):
        return splat(value.reshape(-1)[0], value.dtype, value.shape)
    return value


fold_constants = Pass("fold-constants", "nodes whose inputs are all constants become constants",
                      _fold)
