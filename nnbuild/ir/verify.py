"""Structural checks on a graph; the pass manager runs them after every pass in tests."""
from __future__ import annotations

from ..errors import ModelError
from .graph import Graph, TensorType


def verify(graph: Graph) -> None:
    """Raise ModelError when the graph breaks an IR invariant."""
    defined = set(graph.inputs) | set(graph.constants)
    for name in graph.inputs:
        _check_typed(graph, name, "input")
    for name, array in graph.constants.items():
        if graph.types.get(name) != TensorType.of(array):
            raise ModelError(f"IR: constant {name} has type {graph.types.get(name)}, "
                             f"data says {TensorType.of(array)}")
    for node in graph.nodes:
        for name in node.inputs:
            if name and name not in defined:
                raise ModelError(f"IR: node {node.label} ({node.op}) reads {name!r} "
                                 f"before it is defined")
        for name in node.outputs:
            if not name:
                continue
            if name in defined:
                raise ModelError(f"IR: {name!r} is defined twice (node {node.label})")
            _check_typed(graph, name, f"output of {node.label}")
            defined.add(name)
    for name in graph.outputs:
        if name not in defined:
            raise ModelError(f"IR: graph output {name!r} is never defined")


def _check_typed(graph: Graph, name: str, what: str) -> None:
    if not isinstance(graph.types.get(name), TensorType):
        raise ModelError(f"IR: {what} {name!r} has no type")
