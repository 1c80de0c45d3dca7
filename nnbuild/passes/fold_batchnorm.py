"""fold-batchnorm: inference BatchNormalization after a Conv or Gemm becomes new weights.

With s = scale / sqrt(var + eps):  W' = W * s (per output channel),  b' = (b - mean) * s + bias.
Applies when the Conv/Gemm weights and all BN parameters are constants and the BN is the only
reader of the Conv/Gemm result.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from .manager import Rule, rewrite_pass


def _bn_params(graph: Graph, bn: Node):
    if len(bn.outputs) > 1 and any(bn.outputs[1:]) or bn.attr("training_mode", 0):
        return None
    names = bn.inputs[1:5]
    if len(names) < 4 or not all(graph.is_constant(n) for n in names):
        return None
    scale, bias, mean, var = (np.asarray(graph.constants[n], np.float64) for n in names)
    s = scale / np.sqrt(var + float(bn.attr("epsilon", 1e-5)))
    return s, bias - mean * s


def sole_producer(graph: Graph, x: str, op: str):
    """The `op` node that makes value x, when x is read by one node only and is not a graph
    output; else None."""
    producer = graph.producers().get(x)
    if producer is None or producer.op != op or x in graph.outputs:
        return None
    if len(graph.consumers().get(x, [])) != 1:
        return None
    return producer


def has_bias(node: Node) -> bool:
    """Whether a Conv/Gemm-shaped node has its third (bias) input."""
    return bool(len(node.inputs) > 2 and node.inputs[2])


def constant_parameters(graph: Graph, node: Node) -> bool:
    """Whether a Conv/Gemm-shaped node's weights are a constant and its bias is a constant or
    absent: what folding a per-channel affine map into them needs."""
    return graph.is_constant(node.inputs[1]) and (not has_bias(node)
                                                  or graph.is_constant(node.inputs[2]))


def _foldable(graph: Graph, bn: Node, op: str):
    """(producer, whether it has a bias, (s, shift)) when ``bn`` folds into its sole ``op`` producer: constant
    weights, constant or absent bias, constant BN parameters; else None."""
    producer = sole_producer(graph, bn.inputs[0], op)
    params = _bn_params(graph, bn)
    if producer is None or params is None or not constant_parameters(graph, producer):
        return None
    return producer, has_bias(producer), params


def _into_conv(graph: Graph, bn: Node):
    # y = Conv(x, W, b); z = BN(y, scale, bias, mean, var)  =>  z = Conv(x, W*s, (b-mean)*s+bias)
    found = _foldable(graph, bn, "Conv")
    if found is None:
        return None
    conv, biased, (s, shift) = found
    w = np.asarray(graph.constants[conv.inputs[1]])
    b = np.asarray(graph.constants[conv.inputs[2]], np.float64) if biased else 0.0
    new_w = (w * s.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
    new_b = (b * s + shift).astype(w.dtype)
    w_name = graph.add_constant(graph.unique_name(conv.inputs[1] + "_bn"), new_w)
    b_name = graph.add_constant(graph.unique_name(bn.outputs[0] + "_bias"), new_b)
    graph.nodes.remove(conv)
    return [conv.replace(inputs=(conv.inputs[0], w_name, b_name), outputs=(bn.outputs[0],),
                         sources=conv.sources + bn.sources)]


def _into_gemm(graph: Graph, bn: Node):
    # y = Gemm(a, B, c); z = BN(y, ...)  =>  z = Gemm(a, B*s, (beta*c-mean)*s+bias), beta=1
    found = _foldable(graph, bn, "Gemm")
    if found is None:
        return None
    gemm, has_c, (s, shift) = found
    b = np.asarray(graph.constants[gemm.inputs[1]])
    n = graph.types[bn.outputs[0]].shape[1]
    alpha, beta = float(gemm.attr("alpha", 1.0)), float(gemm.attr("beta", 1.0))
    col_scale = s * alpha
    new_b = (b * (col_scale[:, None] if gemm.attr("transB", 0) else col_scale[None, :]))
    c = np.broadcast_to(np.asarray(graph.constants[gemm.inputs[2]], np.float64) * beta,
                        graph.types[gemm.outputs[0]].shape) if has_c else np.zeros((1, n))
    if has_c and not np.all(c == c[:1]):
        return None           # a per-row bias cannot become a per-channel one
    new_c = (c[0] * s + shift).astype(b.dtype)
    b_name = graph.add_constant(graph.unique_name(gemm.inputs[1] + "_bn"), new_b.astype(b.dtype))
    c_name = graph.add_constant(graph.unique_name(bn.outputs[0] + "_bias"), new_c)
    attrs = dict(gemm.attrs, alpha=1.0, beta=1.0)
    graph.nodes.remove(gemm)
    return [gemm.replace(inputs=(gemm.inputs[0], b_name, c_name), outputs=(bn.outputs[0],),
                         attrs=attrs, sources=gemm.sources + bn.sources)]


fold_batchnorm = rewrite_pass("fold-batchnorm", "BatchNormalization after Conv/Gemm becomes new weights", [
    Rule("BatchNormalization", _into_conv),
    Rule("BatchNormalization", _into_gemm),
])
