"""nnbuild::Attention, made by recognize-attention from the scaled dot-product spelled out:

    y = Softmax(MatMul(q, kt) * scale + mask) @ v        (softmax over the last axis)

q [..., Sq, D], kt [..., D, Skv] (K already transposed, as exporters write it), v [..., Skv, Dv],
the leading dims equal; mask (optional) broadcasts to the scores [..., Sq, Skv]. An operand may
be read through a transpose (attribute ``q_perm``, ``kt_perm``, ``v_perm``: the operand is
``Transpose(input, perm)``) and the result written through one (``y_perm``: the output is
``Transpose(y, perm)``), so the head split and merge around attention cost no copies. One
kernel (``hal/attention.c``) computes a row of scores at a time: the [Sq, Skv] score matrix
never reaches the arena. f32 only. Dot products in float, the softmax sum in double, so results
match the unfused graph to rounding, not bit for bit.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir.graph import Node, TensorType
from .fused import DOMAIN
from .normalization import _f32
from .registry import InferContext, Op, register

PERMS = ("q_perm", "kt_perm", "v_perm")


def contiguous(shape: tuple) -> list:
    strides, step = [0] * len(shape), 1
    for k in range(len(shape) - 1, -1, -1):
        strides[k] = step
        step *= shape[k]
    return strides


def walk(extents: tuple, strides: list) -> tuple | None:
    """(outer, head, row, column) element strides of a view with these ``extents`` and
    ``strides`` read as [outer..., head, row, column]; None when one stride cannot walk the
    outer dims in order."""
    pad = max(0, 4 - len(extents))
    extents, strides = (1,) * pad + tuple(extents), [0] * pad + list(strides)
    outer = [(e, s) for e, s in zip(extents[:-3], strides[:-3]) if e != 1]
    if any(s1 != s2 * e2 for (_, s1), (e2, s2) in zip(outer, outer[1:])):
        return None
    return (outer[-1][1] if outer else 0,) + tuple(strides[-3:])


def mask_strides(mask: tuple, scores: tuple) -> tuple | None:
    """The walk of a mask of shape ``mask`` broadcast to ``scores`` (zero strides where it
    broadcasts); None when it does not broadcast or cannot be walked."""
    if len(mask) > len(scores):
        return None
    shape = (1,) * (len(scores) - len(mask)) + tuple(mask)
    if any(m not in (1, s) for m, s in zip(shape, scores)):
        return None
    strides = [0 if m == 1 else s for m, s in zip(shape, contiguous(shape))]
    return walk(scores, strides)


def read_through(shape: tuple, perm) -> tuple:
    """(logical shape, its strides) of Transpose(x, perm) for x of ``shape`` stored densely."""
    strides = contiguous(shape)
    if not perm:
        return tuple(shape), strides
    return tuple(shape[p] for p in perm), [strides[p] for p in perm]


def write_through(logical: tuple, perm) -> tuple:
    """(stored shape, logical strides) of Transpose(y, perm) for y of ``logical`` shape."""
    if not perm:
        return tuple(logical), contiguous(logical)
    stored = tuple(logical[p] for p in perm)
    strides = contiguous(stored)
    inverse = np.argsort(perm)
    return stored, [strides[int(inverse[j])] for j in range(len(logical))]


@register("Attention", since=1, domain=DOMAIN)
class Attention(Op):
    """y = Softmax(q @ kt * scale + mask, last axis) @ v"""
    def _logical(self, node: Node, shapes: list) -> list:
        return [read_through(s, node.attr(p)) for s, p in zip(shapes, PERMS)]

    def infer(self, ctx: InferContext):
        if any(t.dtype.short != "f32" for t in ctx.types if t is not None):
            raise ctx.fail("element type must be f32 (supported: f32)")
        (q, qs), (kt, ks), (v, vs) = self._logical(ctx.node, [t.shape for t in ctx.types[:3]])
        if not (len(q) == len(kt) == len(v) >= 2) or not (q[:-2] == kt[:-2] == v[:-2]):
            raise ctx.fail(f"q {list(q)}, kt {list(kt)}, v {list(v)}: same rank (2 or more) "
                           f"and leading dims")
        if q[-1] != kt[-2] or kt[-1] != v[-2]:
            raise ctx.fail(f"q {list(q)}, kt {list(kt)}, v {list(v)}: q's columns must be kt's "
                           f"rows and kt's columns v's rows")
        scores, out = q[:-1] + kt[-1:], q[:-1] + v[-1:]
        stored, ys = write_through(out, ctx.node.attr("y_perm"))
        if any(walk(e, s) is None for e, s in ((q, qs), (kt, ks), (v, vs), (out, ys))):
            raise ctx.fail("an operand's transpose cannot be walked with one outer stride")
        if ctx.has(3) and mask_strides(ctx.types[3].shape, scores) is None:
            raise ctx.fail(f"mask {ctx.types[3]} does not broadcast to the scores "
                           f"{list(scores)} the kernel can walk")
        return [TensorType(ctx.types[0].dtype, stored)]

    def reference(self, node, q, kt, v, mask=None):
        q, kt, v = (np.transpose(a, node.attr(p)) if node.attr(p) else a
                    for a, p in zip((q, kt, v), PERMS))
        s = np.matmul(q, kt) * np.float32(node.attr("scale", 1.0))
        if mask is not None:
            s = s + mask
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True, dtype=np.float64)
        y = np.matmul(p.astype(np.float32), v).astype(np.float32)
        return [np.transpose(y, node.attr("y_perm")) if node.attr("y_perm") else y]

    def flops(self, node, graph):
        (q, _), (kt, _), (v, _) = self._logical(node, [graph.types[n].shape
                                                       for n in node.inputs[:3]])
        return math.prod(q[:-1]) * kt[-1] * (2 * q[-1] + 2 * v[-1] + 5)

    def scratch_bytes(self, node, graph):
        """A row of scores; and a head's kt with contiguous rows when kt's are strided."""
        kt, strides = read_through(graph.types[node.inputs[1]].shape, node.attr("kt_perm"))
        return 4 * kt[-1] * (1 + (kt[-2] if strides[-1] != 1 else 0))

    def lower(self, node, ctx):
        q, kt, v = node.inputs[:3]
        mask = node.inputs[3] if len(node.inputs) > 3 and node.inputs[3] else ""
        (qe, qs), (ke, ks), (ve, vs) = self._logical(node, [ctx.shape(n) for n in (q, kt, v)])
        scores, out = qe[:-1] + ke[-1:], qe[:-1] + ve[-1:]
        ys = write_through(out, node.attr("y_perm"))[1]
        lead = (1, 1) + tuple(qe[:-2])
        layout = [math.prod(lead[:-1]), lead[-1], qe[-2], ke[-1], qe[-1], ve[-1]]
        layout += walk(qe, qs) + walk(ke, ks) + walk(ve, vs)
        layout += mask_strides(ctx.shape(mask), scores) if mask else (0, 0, 0, 0)
        layout += walk(out, ys)
        ctx.call("attention", "attention_f32", ctx.ptr(q), ctx.ptr(kt), ctx.ptr(v),
                 ctx.ptr(mask) if mask else "NULL", ctx.ptr(node.outputs[0]),
                 ctx.scratch("float"), ctx.table("size_t", layout, "attention_layout"),
                 _f32(node.attr("scale", 1.0)))


def attention_node(inputs: tuple, y: str, scale: float, perms: dict, sources: tuple) -> Node:
    """``inputs``: q, kt, v and the mask or ""; ``perms``: the transposes read or written
    through, by attribute name (identity ones left out)."""
    attrs = {"scale": scale, **{k: list(v) for k, v in perms.items() if v}}
    return Node("Attention", tuple(i for i in inputs if i), (y,), attrs, sources, DOMAIN)
