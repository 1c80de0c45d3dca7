"""sink-transposes: a Transpose moves below the elementwise ops that read it, so that it meets
the next Transpose and the two become one, or nothing.

    y = f(Transpose(a, p))                      =>  y = Transpose(f(a), p)     (f elementwise)
    y = g(Transpose(a, p), Transpose(b, p))     =>  y = Transpose(g(a, b), p)
    y = g(Transpose(a, p), @c)                  =>  y = Transpose(g(a, @c'), p)   (c' = c laid
                                                    out for a: padded to a's rank, transposed by
                                                    p's inverse; one-value constants as they are)
    Transpose(Transpose(x, p), q)               =>  Transpose(x, p∘q)   (or x when identity)

A Transpose moves only when the elementwise op is its sole reader and it is not a graph output,
and when the op does not broadcast it to a bigger shape; so the op count never grows. Chains
sink in one pass (the nodes are offered in order); a Transpose left without readers is dropped.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node, TensorType
from ..ops import elementwise, registry
from .eliminate_dead_code import eliminate_dead_code
from .manager import Pass, Rule, rewrite_pass
from .simplify_algebra import _perm, _transpose


def _elementwise(op: str) -> bool:
    kind = registry.lookup(op)
    return isinstance(kind, (elementwise.Unary, elementwise.Broadcasting))


def _laid_out(array: np.ndarray, inverse: list) -> np.ndarray | None:
    if array.size == 1:
        return array
    if array.ndim > len(inverse):
        return None
    padded = array.reshape((1,) * (len(inverse) - array.ndim) + array.shape)
    return np.transpose(padded, inverse)


def _sink(graph: Graph, node: Node):
    # y = f(Transpose(a, p), ...)  =>  m = f(a, ...); y = Transpose(m, p)
    if len(node.outputs) != 1 or node.domain or not _elementwise(node.op):
        return None
    producers, consumers = graph.producers(), graph.consumers()
    y = node.outputs[0]
    moved, perm = [], None
    for name in node.inputs:
        t = producers.get(name) if name else None
        if t is None or t.op != "Transpose" or name in graph.outputs \
                or any(u is not node for u in consumers.get(name, [])):
            continue
        if perm is not None and _perm(graph, t) != perm:
            return None
        perm = _perm(graph, t)
        if graph.types[name].shape != graph.types[y].shape:
            return None                          # the op broadcasts it bigger
        moved.append(t)
    if perm is None:
        return None
    inverse = [int(k) for k in np.argsort(perm)]
    inputs = []
    for name in node.inputs:
        t = next((m for m in moved if m.outputs[0] == name), None)
        if t is not None:
            inputs.append(t.inputs[0])
        elif not name:
            inputs.append(name)
        elif name in graph.constants:
            array = _laid_out(graph.constants[name], inverse)
            if array is None:
                return None
            inputs.append(name if array is graph.constants[name] else None)
            if inputs[-1] is None:
                inputs[-1] = graph.add_constant(graph.unique_name(f"{name}_sunk"), array)
        else:
            return None                          # a value in the transposed layout
    out_type = graph.types[y]
    middle = graph.unique_name(f"{y}_sunk")
    graph.types[middle] = TensorType(out_type.dtype, tuple(out_type.shape[k] for k in inverse))
    dropped = {id(t) for t in moved}
    graph.nodes[:] = [n for n in graph.nodes if id(n) not in dropped]
    return [node.replace(inputs=tuple(inputs), outputs=(middle,)),
            Node("Transpose", (middle,), (y,), {"perm": perm},
                 tuple(s for t in moved for s in t.sources))]


_OPS = [op for op in registry.supported_ops() if "::" not in op and _elementwise(op)]

_sink_and_cancel = rewrite_pass("sink-transposes", "", [Rule(op, _sink) for op in _OPS] + [
    Rule("Transpose", _transpose),
])

# a sunk Transpose that cancelled against the next one is left without readers: dropped
sink_transposes = Pass("sink-transposes", "Transposes move below elementwise ops and cancel",
                       lambda graph: eliminate_dead_code.run(_sink_and_cancel.run(graph)))
