"""nnbuild::Attention, made by recognize-attention from the scaled dot-product spelled out:

    y = Softmax(MatMul(q, kt) * scale + mask) @ v        (softmax over the last axis)

q [..., Sq, D], kt [..., D, Skv] (K already transposed, as exporters write it), v [..., Skv, Dv],
the leading dims equal; mask (optional) broadcasts to the scores [..., Sq, Skv]. One kernel
(``hal/attention.c``) computes a row of scores at a time: the [Sq, Skv] score matrix never
reaches the arena. f32 only. Dot products in float, the softmax sum in double, so results match
the unfused graph to rounding, not bit for bit.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir.graph import Node, TensorType
from .fused import DOMAIN
from .normalization import _f32
from .registry import InferContext, Op, register


def mask_strides(mask: tuple, scores: tuple) -> tuple | None:
    """Element strides (outer, head, row, column) of a mask of shape ``mask`` broadcast to
    ``scores`` [outer..., heads, Sq, Skv] (a zero stride broadcasts); None when it does not
    broadcast, or its outer dims neither all broadcast nor all match (one stride cannot walk
    them)."""
    rank = len(scores)
    if len(mask) > rank:
        return None
    shape = (1,) * (rank - len(mask)) + tuple(mask)
    if any(m not in (1, s) for m, s in zip(shape, scores)):
        return None
    strides, step = [0] * rank, 1
    for k in range(rank - 1, -1, -1):
        strides[k] = 0 if shape[k] == 1 else step
        step *= shape[k]
    outer = shape[:-3]
    if all(m == 1 for m in outer):
        outer_stride = 0
    elif outer == tuple(scores[:-3]):
        outer_stride = math.prod(shape[-3:])
    else:
        return None
    head = strides[-3] if rank > 2 else 0
    return outer_stride, head, strides[-2], strides[-1]


@register("Attention", since=1, domain=DOMAIN)
class Attention(Op):
    """y = Softmax(q @ kt * scale + mask, last axis) @ v"""
    def _shapes(self, ctx: InferContext) -> tuple:
        q, kt, v = ctx.types[:3]
        if any(t.dtype.short != "f32" for t in ctx.types if t is not None):
            raise ctx.fail("element type must be f32 (supported: f32)")
        if not (q.rank == kt.rank == v.rank >= 2) or not (
                q.shape[:-2] == kt.shape[:-2] == v.shape[:-2]):
            raise ctx.fail(f"q {q}, kt {kt}, v {v}: same rank (2 or more) and leading dims")
        if q.shape[-1] != kt.shape[-2] or kt.shape[-1] != v.shape[-2]:
            raise ctx.fail(f"q {q}, kt {kt}, v {v}: q's columns must be kt's rows and kt's "
                           f"columns v's rows")
        return q, kt, v

    def infer(self, ctx):
        q, kt, v = self._shapes(ctx)
        if ctx.has(3):
            scores = q.shape[:-1] + kt.shape[-1:]
            if mask_strides(ctx.types[3].shape, scores) is None:
                raise ctx.fail(f"mask {ctx.types[3]} does not broadcast to the scores "
                               f"{list(scores)} the kernel can walk")
        return [TensorType(q.dtype, q.shape[:-1] + v.shape[-1:])]

    def reference(self, node, q, kt, v, mask=None):
        s = np.matmul(q, kt) * np.float32(node.attr("scale", 1.0))
        if mask is not None:
            s = s + mask
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True, dtype=np.float64)
        return [np.matmul(p.astype(np.float32), v).astype(np.float32)]

    def flops(self, node, graph):
        q, kt, v = (graph.types[n].shape for n in node.inputs[:3])
        rows = math.prod(q[:-1])
        return rows * kt[-1] * (2 * q[-1] + 2 * v[-1] + 5)

    def scratch_bytes(self, node, graph):
        return 4 * graph.types[node.inputs[1]].shape[-1]

    def lower(self, node, ctx):
        q, kt, v = node.inputs[:3]
        mask = node.inputs[3] if len(node.inputs) > 3 and node.inputs[3] else ""
        qs, ks, vs = ctx.shape(q), ctx.shape(kt), ctx.shape(v)
        lead = tuple(qs[:-2])
        outer, heads = math.prod(lead[:-1]), (lead[-1] if lead else 1)
        scores = tuple(qs[:-1]) + (ks[-1],)
        strides = mask_strides(ctx.shape(mask), scores) if mask else (0, 0, 0, 0)
        ctx.call("attention", "attention_f32", ctx.ptr(q), ctx.ptr(kt), ctx.ptr(v),
                 ctx.ptr(mask) if mask else "NULL", ctx.ptr(node.outputs[0]),
                 ctx.scratch("float"), outer, heads, qs[-2], ks[-1], qs[-1], vs[-1],
                 _f32(node.attr("scale", 1.0)), *strides)


def attention_node(q: str, kt: str, v: str, mask: str, y: str, scale: float,
                   sources: tuple) -> Node:
    return Node("Attention", (q, kt, v) + ((mask,) if mask else ()), (y,), {"scale": scale},
                sources, DOMAIN)
