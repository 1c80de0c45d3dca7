"""NonMaxSuppression (opsets 10-11): greedy per batch and class, kernel ``nms_f32`` in
``hal/<target>/detection.c``.

How many boxes survive is only known at run time: the model must declare the output's static
shape [count, 3]; the kernel counts what it keeps and the run fails with ``<P>_ERR_SHAPE``
when that differs from the declared count (never a guessed size).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir.graph import TensorType
from .registry import Op, register


def _iou_suppresses(a, b, center: bool, threshold: float) -> bool:
    def corners(box):
        if center:
            return (box[0] - box[2] / 2, box[0] + box[2] / 2, box[1] - box[3] / 2,
                    box[1] + box[3] / 2)
        return (min(box[1], box[3]), max(box[1], box[3]), min(box[0], box[2]),
                max(box[0], box[2]))
    ax0, ax1, ay0, ay1 = corners(a)
    bx0, bx1, by0, by1 = corners(b)
    x0, x1, y0, y1 = max(ax0, bx0), min(ax1, bx1), max(ay0, by0), min(ay1, by1)
    if x1 <= x0 or y1 <= y0:
        return False
    inter = (x1 - x0) * (y1 - y0)
    area_a, area_b = (ax1 - ax0) * (ay1 - ay0), (bx1 - bx0) * (by1 - by0)
    union = area_a + area_b - inter
    if inter <= 0 or area_a <= 0 or area_b <= 0 or union <= 0:
        return False
    return inter / union > threshold


def _scalar(value, default):
    return default if value is None or np.asarray(value).size == 0 else \
        np.asarray(value).reshape(-1)[0]


@register("NonMaxSuppression", since=10)
class NonMaxSuppression(Op):
    """selected [count, 3] = (batch, class, box) kept by greedy IoU suppression, by class in
    descending score order"""

    def infer(self, ctx):
        boxes, scores = ctx.types[0], ctx.types[1]
        if boxes.dtype != dtypes.FLOAT32 or scores.dtype != dtypes.FLOAT32:
            raise ctx.fail(f"element types {boxes.dtype} / {scores.dtype} are not supported "
                           f"(supported: f32)")
        if boxes.rank != 3 or boxes.shape[2] != 4 or scores.rank != 3 or \
                scores.shape[0] != boxes.shape[0] or scores.shape[2] != boxes.shape[1]:
            raise ctx.fail(f"boxes {boxes} and scores {scores} must be [B, N, 4] and [B, C, N]")
        for i, what in ((2, "max_output_boxes_per_class"), (3, "iou_threshold"),
                        (4, "score_threshold")):
            if ctx.has(i) and ctx.types[i].size > 1:
                raise ctx.fail(f"{what} {ctx.types[i]} must hold one value")
        if ctx.node.attr("center_point_box", 0) not in (0, 1):
            raise ctx.fail("center_point_box must be 0 or 1")
        if all(ctx.has(i) and ctx.known(i) is not None or not ctx.has(i) for i in (0, 1, 2, 3, 4)):
            count = self.reference(ctx.node, *[ctx.known(i) for i in range(len(ctx.types))])[0]
            return [TensorType(dtypes.INT64, count.shape)]
        shape = ctx.declared(0, 1, "the number of boxes kept, which depends on")
        if len(shape) != 2 or shape[1] != 3:
            raise ctx.fail(f"the declared output shape {list(shape)} must be [count, 3]")
        return [TensorType(dtypes.INT64, shape)]

    def reference(self, node, boxes, scores, max_out=None, iou=None, score_threshold=None):
        max_out = max(int(_scalar(max_out, 0)), 0)
        iou = float(_scalar(iou, 0.0))
        center = bool(node.attr("center_point_box", 0))
        has_threshold = score_threshold is not None and np.asarray(score_threshold).size
        threshold = float(_scalar(score_threshold, 0.0))
        out = []
        for b in range(boxes.shape[0]):
            for c in range(scores.shape[1]):
                s = scores[b, c]
                candidates = [i for i in range(len(s)) if not has_threshold or s[i] > threshold]
                candidates.sort(key=lambda i: -s[i])       # stable: lower index first
                kept = []
                for i in candidates:
                    if len(kept) >= max_out:
                        break
                    if not any(_iou_suppresses(boxes[b, i], boxes[b, k], center, iou)
                               for k in kept):
                        kept.append(i)
                        out.append((b, c, i))
        return [np.array(out, np.int64).reshape(-1, 3)]

    def scratch_bytes(self, node, graph):
        return 2 * 8 * graph.types[node.inputs[0]].shape[1]

    def lower(self, node, ctx):
        boxes, scores = node.inputs[0], node.inputs[1]
        inputs = list(node.inputs) + [""] * (5 - len(node.inputs))
        out = node.outputs[0]
        batches, n, _ = ctx.shape(boxes)
        classes = ctx.shape(scores)[1]
        capacity = ctx.shape(out)[0]

        def scalar(i, ctype, default):
            return f"(({ctype}){ctx.ptr(inputs[i])}[0])" if inputs[i] and \
                ctx.type(inputs[i]).size else default
        has_threshold = bool(inputs[4]) and ctx.type(inputs[4]).size > 0
        order = ctx.scratch("size_t")
        kept = f"({order} + {n})"
        call = (f"{ctx.fn('detection', 'nms_f32')}({ctx.ptr(boxes)}, {ctx.ptr(scores)}, "
                f"{batches}, {classes}, {n}, {scalar(2, 'int64_t', '0')}, "
                f"{scalar(3, 'float', '0.0f')}, {'true' if has_threshold else 'false'}, "
                f"{scalar(4, 'float', '0.0f')}, "
                f"{'true' if node.attr('center_point_box', 0) else 'false'}, {order}, {kept}, "
                f"{ctx.ptr(out)}, {capacity})")
        ctx.emit("{\n    const int64_t kept_boxes = " + call + ";\n    " +
                 ctx.check_statement(f"kept_boxes == {capacity}",
                                     f"boxes kept match the declared [{capacity}, 3]") + "\n}")
