"""fuse-epilogue: Conv / Gemm / MatMul and the elementwise ops after it become one node.

The ops that read the product's result one element at a time (a bias Add, an activation:
Relu, Clip/Relu6, Sigmoid, HardSwish, LeakyRelu, ...; a residual Add) become the product's
*epilogue*, applied in place on its output right after it is written (``ops.fused``). Applies
while the current value has one reader, is not a graph output, and the reader keeps its type.
"""
from __future__ import annotations

from ..ir.graph import Graph, Node
from ..ops.fused import DOMAIN, FUSABLE_DTYPES, FUSED_PRODUCTS
from .fusion import Chain, grow, replace_chain, sources
from .manager import Rule, rewrite_pass


def _fuse(graph: Graph, node: Node):
    # y = Conv(x, W, b); z = Add(y, r); o = Relu(z)  =>  o = FusedConv(x, W, b, r) {epilogue}
    y = node.outputs[0]
    if graph.types[y].dtype.short not in FUSABLE_DTYPES:
        return None
    n = FUSED_PRODUCTS[node.op]
    base = list(node.inputs) + [""] * (n - len(node.inputs))
    chain = Chain(inputs=base)
    out = grow(graph, chain, y, "acc", reserved=1)     # the loop also reads the product
    if not chain.steps:
        return None
    fused = Node(f"Fused{node.op}", tuple(chain.inputs), (out,),
                 {**node.attrs, "epilogue": chain.steps}, sources(node, chain), DOMAIN)
    return replace_chain(graph, node, chain, fused)


fuse_epilogue = rewrite_pass("fuse-epilogue", "Conv/Gemm/MatMul + bias/activation/residual as one kernel", [
    Rule(op, _fuse) for op in FUSED_PRODUCTS
])
