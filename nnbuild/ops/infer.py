"""Shape and dtype inference over a whole graph, with compile-time values propagated.

Values that are known at compile time (constants, and small results computed from them, such
as Shape -> Gather -> Concat chains feeding a Reshape) are tracked so that every shape is
static after translation. This does not rewrite the graph; folding is a pass.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..ir.graph import Graph, TensorType
from . import registry
from .registry import InferContext

# Results up to this many elements are computed during inference (shape arithmetic is tiny).
KNOWN_VALUE_LIMIT = 1 << 16
# No tensor may hold more elements: a model declaring more is refused before anything of that
# size is allocated (the frontend checks inputs and initializers, inference every node output).
MAX_TENSOR_ELEMENTS = 1 << 31


def check_elements(what: str, shape) -> None:
    """ModelError when ``shape`` (Python ints) holds more than MAX_TENSOR_ELEMENTS elements."""
    n = 1
    for d in shape:
        n *= int(d)
    if n > MAX_TENSOR_ELEMENTS:
        raise ModelError(f"{what}: shape {list(shape)} holds {n} elements, more than the limit "
                         f"of {MAX_TENSOR_ELEMENTS}")


def infer_node(graph: Graph, node, known: dict) -> list:
    """Type the outputs of one node; returns their compile-time values (or Nones)."""
    op = registry.get(node)
    types = [graph.types.get(i) if i else None for i in node.inputs]
    for name, t in zip(node.inputs, types):
        if name and t is None:
            raise ModelError(f"node {node.label} ({node.op}): input {name!r} is not defined")
    ctx = InferContext(graph, node, types, [known.get(i) if i else None for i in node.inputs])
    out_types = op.infer(ctx)
    if len(out_types) < len([o for o in node.outputs if o]):
        raise ctx.fail(f"produces {len(out_types)} outputs, the model uses {len(node.outputs)}")
    for name, t in zip(node.outputs, out_types):
        if name:
            if not t.is_static:
                raise ctx.fail(f"output {name!r} has a data-dependent shape {t}")
            if any(d < 0 for d in t.shape):
                raise ctx.fail(f"output {name!r} gets a negative dimension {t}")
            try:
                check_elements(f"output {name!r}", t.shape)
            except ModelError as e:
                raise ctx.fail(str(e)) from None
            graph.types[name] = t
    values = [None] * len(node.outputs)
    if all(t is None or t.size <= KNOWN_VALUE_LIMIT for t in out_types):
        folded = op.fold(ctx)
        if folded is not None:
            for k, (name, v) in enumerate(zip(node.outputs, folded)):
                if name:
                    v = np.asarray(v)
                    want = graph.types[name]
                    if v.dtype != want.dtype.numpy or tuple(v.shape) != want.shape:
                        raise ctx.fail(f"reference gives {TensorType.of(v)} for {name!r}, "
                                       f"inference says {want}")
                    values[k] = v
    return values


def infer_graph(graph: Graph) -> dict:
    """(Re)type every node output in order. Returns the compile-time known values."""
    known = dict(graph.constants)
    for node in graph.nodes:
        for name, value in zip(node.outputs, infer_node(graph, node, known)):
            if name and value is not None:
                known[name] = value
    return known
