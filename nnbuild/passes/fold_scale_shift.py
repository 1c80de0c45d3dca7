"""fold-scale-shift: a Mul, Add or Sub by a per-output-channel constant after a Conv becomes new
weights of that Conv.

    z = Conv(x, W, b) * s   =>  z = Conv(x, W * s[m], b * s[m])
    z = Conv(x, W, b) + d   =>  z = Conv(x, W, b + d[m])       (Sub: b - d[m])

s and d are constants that vary along the output channel axis only (a scalar, [M,1,1],
[1,M,1,1] ...), and they do not widen the Conv's result. Applies when the weights and the bias
(or its absence) are constants and the Mul/Add/Sub is the only reader of the Conv result. A
chain (Conv -> Mul -> Add: a Caffe "Scale" layer after a BatchNormalization, as the model
zoo's Inception-v2 has it) folds node by node in one run. Folding changes the rounding of those
products (one multiply in the weights instead of one per output element): within the
tolerance, as onnxruntime's own Conv-Mul/Add fusions.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from .fold_batchnorm import constant_parameters, has_bias, sole_producer
from .manager import Rule, rewrite_pass


def _per_channel(graph: Graph, name: str, out_shape: tuple):
    """The constant `name` as one value per output channel (a float64 vector of M), when it
    varies along axis 1 of out_shape only; else None."""
    if not graph.is_constant(name):
        return None
    value = np.asarray(graph.constants[name])
    rank = len(out_shape)
    if value.ndim > rank or value.dtype.kind != "f":
        return None
    shape = (1,) * (rank - value.ndim) + value.shape
    channels = out_shape[1]
    if any(n != 1 for axis, n in enumerate(shape) if axis != 1) or shape[1] not in (1, channels):
        return None
    return np.broadcast_to(value.reshape(-1).astype(np.float64), (channels,))


def _conv_and_constant(graph: Graph, node: Node, constant_first: bool):
    """(conv, per-channel vector) when one input of `node` is a sole-reader Conv result with
    constant weights and bias, and the other a per-channel constant that leaves the shape as is
    (the constant may come first where the op commutes)."""
    if len(node.inputs) != 2:
        return None
    orders = [(0, 1), (1, 0)] if constant_first else [(0, 1)]
    for conv_at, constant_at in orders:
        conv = sole_producer(graph, node.inputs[conv_at], "Conv")
        if conv is None or not constant_parameters(graph, conv):
            continue
        out_shape = tuple(graph.type_of(conv.outputs[0]).shape)
        if tuple(graph.type_of(node.outputs[0]).shape) != out_shape:
            continue
        vector = _per_channel(graph, node.inputs[constant_at], out_shape)
        if vector is not None:
            return conv, vector
    return None


def _replace_conv(graph: Graph, conv: Node, node: Node, new_w, new_b) -> list:
    w = np.asarray(graph.constants[conv.inputs[1]])
    w_name = conv.inputs[1]
    if new_w is not None:
        w_name = graph.add_constant(graph.unique_name(conv.inputs[1] + "_scaled"),
                                    new_w.astype(w.dtype))
    b_name = graph.add_constant(graph.unique_name(node.outputs[0] + "_bias"), new_b.astype(w.dtype))
    graph.nodes.remove(conv)
    return [conv.replace(inputs=(conv.inputs[0], w_name, b_name), outputs=(node.outputs[0],),
                         sources=conv.sources + node.sources)]


def _bias(graph: Graph, conv: Node, channels: int):
    if has_bias(conv):
        return np.asarray(graph.constants[conv.inputs[2]], np.float64)
    return np.zeros(channels)


def _scale(graph: Graph, mul: Node):
    # y = Conv(x, W, b); z = y * s  =>  z = Conv(x, W * s, b * s)
    found = _conv_and_constant(graph, mul, constant_first=True)
    if found is None:
        return None
    conv, s = found
    w = np.asarray(graph.constants[conv.inputs[1]], np.float64)
    new_w = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
    return _replace_conv(graph, conv, mul, new_w, _bias(graph, conv, len(s)) * s)


def _shift(sign: float, commutes: bool):
    def rewrite(graph: Graph, node: Node):
        # y = Conv(x, W, b); z = y + d (or y - d)  =>  z = Conv(x, W, b + d (or b - d))
        found = _conv_and_constant(graph, node, constant_first=commutes)
        if found is None:
            return None
        conv, d = found
        return _replace_conv(graph, conv, node, None, _bias(graph, conv, len(d)) + sign * d)
    return rewrite


fold_scale_shift = rewrite_pass(
    "fold-scale-shift", "Mul/Add/Sub by a per-channel constant after a Conv becomes new weights", [
        Rule("Mul", _scale),
        Rule("Add", _shift(1.0, commutes=True)),
        Rule("Sub", _shift(-1.0, commutes=False)),
    ])
