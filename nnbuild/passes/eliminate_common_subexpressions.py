"""eliminate-common-subexpressions: a node that repeats an earlier one (same op, inputs and
attributes) is dropped and its readers read the earlier results; equal small constants become
one constant first, so repeats that read copies of a constant are found too."""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph
from ..ir.text import _attr
from .manager import Pass

SMALL = 4096        # constants up to this many elements are compared by value


def _merge_constants(graph: Graph) -> dict:
    """name -> the first constant (in name order) with the same type and bytes."""
    seen, same = {}, {}
    for name in sorted(graph.constants):
        array = graph.constants[name]
        if array.size > SMALL or name in graph.outputs:
            continue
        key = (str(graph.types[name]), np.ascontiguousarray(array).tobytes())
        if key in seen:
            same[name] = seen[key]
        else:
            seen[key] = name
    return same


def _eliminate(graph: Graph) -> Graph:
    graph = graph.copy()
    rename = _merge_constants(graph)
    seen, kept = {}, []
    for node in graph.nodes:
        node = node.replace(inputs=tuple(rename.get(i, i) for i in node.inputs))
        key = (node.domain, node.op, node.inputs,
               tuple((k, _attr(node.attrs[k])) for k in sorted(node.attrs)))
        first = seen.get(key)
        if first is not None and not any(o in graph.outputs for o in node.outputs if o):
            # y2 = f(x) after y1 = f(x)  =>  readers of y2 read y1
            rename.update({o: f for o, f in zip(node.outputs, first.outputs) if o})
            continue
        seen.setdefault(key, node)
        kept.append(node)
    graph.nodes = kept
    graph.drop_unused_constants()
    return graph


eliminate_common_subexpressions = Pass(
    "eliminate-common-subexpressions", "repeated nodes and equal constants computed once",
    _eliminate)
