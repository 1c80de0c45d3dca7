"""select-conv-algorithm: a 3x3 stride-1 float32 Conv runs as Winograd F(2x2) or F(4x4) where
that measured faster (the rule: ``ops.winograd.choose``, its table: docs/winograd.md).

The choice is recorded on the node as the attribute ``winograd`` = m (2 or 4), which the
Conv lowering reads; -O0 and -O1 leave every Conv on the direct kernels.
"""
from __future__ import annotations

from ..ir.graph import Graph, Node
from ..ops import registry, winograd
from .manager import Rule, rewrite_pass


def _select(graph: Graph, node: Node):
    # y = Conv(x, W) {3x3, stride 1}  =>  y = Conv(x, W) {winograd=m}
    if node.attr(winograd.ATTR) or not graph.is_constant(node.inputs[1]):
        return None
    if graph.types[node.outputs[0]].dtype.short != "f32":
        return None
    op = registry.lookup("Conv")
    base = registry.get(node).base(node) if node.op != "Conv" else node
    m = winograd.choose(op.geometry(base, graph))
    if not m:
        return None
    return [node.replace(attrs={**node.attrs, winograd.ATTR: m})]


select_conv_algorithm = rewrite_pass(
    "select-conv-algorithm", "3x3 stride-1 Conv as Winograd F(2x2) / F(4x4) where it is faster",
    [Rule(op, _select) for op in ("Conv", "FusedConv")])
