"""fuse-elementwise: a chain of elementwise / broadcasting ops becomes one loop nest.

Starting from an elementwise op, its sole reader joins while it is elementwise too and keeps
the value's type (``passes.fusion.grow``); the chain becomes ``nnbuild::Elementwise`` whose
body composes the ops' C expressions (``ops.fused``). A single op is left as it is.
"""
from __future__ import annotations

from ..ir.graph import Graph, Node
from ..ops.fused import DOMAIN, MAX_TENSORS, fusable, step_text
from ..ops import elementwise
from ..ops import registry
from .fusion import Chain, grow, replace_chain, sources
from .manager import Rule, rewrite_pass


def _fuse(graph: Graph, node: Node):
    # t = Mul(x, s); u = Add(t, b); y = Relu(u)  =>  y = Elementwise(x, s, b) {body}
    if not fusable(graph, node):
        return None
    chain = Chain(inputs=[])
    args = [chain.arg(graph, i) for i in node.inputs]
    if chain.tensors(graph) > MAX_TENSORS:
        return None
    chain.steps.append(step_text(node, args))
    chain.absorbed.append(node)
    out = grow(graph, chain, node.outputs[0], "#0")
    if len(chain.steps) < 2:
        return None
    fused = Node("Elementwise", tuple(chain.inputs), (out,), {"body": chain.steps},
                 sources(Node("", (), ()), chain), DOMAIN)
    return replace_chain(graph, node, chain, fused)


_OPS = [op for op in registry.supported_ops() if "::" not in op and (op == "Clip" or isinstance(
    registry.lookup(op), (elementwise.Unary, elementwise.Broadcasting)))]

fuse_elementwise = rewrite_pass("fuse-elementwise", "chains of elementwise ops as one loop nest", [
    Rule(op, _fuse) for op in _OPS
])
