"""NonMaxSuppression (opsets 10-11) and RoiAlign (10-22).

NonMaxSuppression: greedy per batch and class, kernel ``nms_f32`` in ``hal/<target>/detection.c``.

How many boxes survive is only known at run time: the model must declare the output's static
shape [count, 3]; the kernel counts what it keeps and the run fails with ``<P>_ERR_SHAPE``
when that differs from the declared count (never a guessed size).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir.graph import TensorType
from ..codegen.loops import compute_ctype
from .index import block, load, store
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


# --- RoiAlign ----------------------------------------------------------------------------------
def _roi_geometry(roi, scale: float, half_pixel: bool, oh: int, ow: int, ratio: int):
    """(start_y, start_x, bin_h, bin_w, grid_h, grid_w) of one region (x0, y0, x1, y1)."""
    off = 0.5 if half_pixel else 0.0
    x0, y0, x1, y1 = (float(v) * scale - off for v in roi)
    rw, rh = x1 - x0, y1 - y0
    if not half_pixel:
        rw, rh = max(rw, 1.0), max(rh, 1.0)

    def grid(extent, bins):
        if ratio > 0:
            return ratio
        g = np.ceil(extent / bins)
        return int(g) if 0 < g < 1e9 else 0
    return y0, x0, rh / oh, rw / ow, grid(rh, oh), grid(rw, ow)


def _bilinear_taps(y: float, x: float, h: int, w: int):
    """[(flat position, weight)] * 4 of a sample at (y, x); zeros outside [-1, h] x [-1, w]."""
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return [(0, 0.0)] * 4
    y, x = max(y, 0.0), max(x, 0.0)
    yl, xl = int(y), int(x)
    if yl >= h - 1:
        yl = yh = h - 1
        y = float(yl)
    else:
        yh = yl + 1
    if xl >= w - 1:
        xl = xh = w - 1
        x = float(xl)
    else:
        xh = xl + 1
    ly, lx = y - yl, x - xl
    hy, hx = 1.0 - ly, 1.0 - lx
    return [(yl * w + xl, hy * hx), (yl * w + xh, hy * lx), (yh * w + xl, ly * hx),
            (yh * w + xh, ly * lx)]


@register("RoiAlign", since=10)
class RoiAlign(Op):
    """Y [R, C, oh, ow] = X[batch_indices[r]] pooled over region r (x0, y0, x1, y1) * scale:
    each output bin averages (mode avg) or takes the largest (mode max) of grid_h x grid_w
    bilinear samples; ``max`` takes the largest weighted corner of each sample, as the ONNX
    reference does. opset 10's regions are ``output_half_pixel`` (no -0.5 shift)."""

    def canonicalize(self, node, version, graph):
        if version < 16 and "coordinate_transformation_mode" not in node.attrs:
            return [node.replace(attrs={**node.attrs,
                                        "coordinate_transformation_mode": "output_half_pixel"})]
        return [node]

    def _params(self, node, fail):
        mode = node.attr("mode", "avg")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        ctm = node.attr("coordinate_transformation_mode", "half_pixel")
        ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
        if mode not in ("avg", "max"):
            raise fail(f"mode {mode!r} is not avg or max")
        if ctm not in ("half_pixel", "output_half_pixel"):
            raise fail(f"coordinate_transformation_mode {ctm!r} is not half_pixel or "
                       f"output_half_pixel")
        oh, ow = int(node.attr("output_height", 1)), int(node.attr("output_width", 1))
        if oh < 1 or ow < 1:
            raise fail(f"output_height {oh} and output_width {ow} must be positive")
        return (mode, ctm == "half_pixel", oh, ow, int(node.attr("sampling_ratio", 0)),
                float(node.attr("spatial_scale", 1.0)))

    def infer(self, ctx):
        x, rois, idx = ctx.types[0], ctx.types[1], ctx.types[2]
        _, _, oh, ow, _, _ = self._params(ctx.node, ctx.fail)
        if not x.dtype.is_float or rois.dtype != x.dtype or not idx.dtype.is_integer:
            raise ctx.fail(f"X {x}, rois {rois}, batch_indices {idx}: X and rois must share a "
                           f"float type, batch_indices be integers")
        if x.rank != 4 or rois.rank != 2 or rois.shape[1] != 4 or idx.shape != rois.shape[:1]:
            raise ctx.fail(f"X {x}, rois {rois}, batch_indices {idx} must be [N, C, H, W], "
                           f"[R, 4] and [R]")
        if x.size == 0 and rois.shape[0] > 0:
            raise ctx.fail(f"X {x} has no elements to pool")
        return [TensorType(x.dtype, (rois.shape[0], x.shape[1], oh, ow))]

    def reference(self, node, x, rois, batch_indices):
        mode, half, oh, ow, ratio, scale = self._params(node, ValueError)
        n, c, h, w = x.shape
        y = np.zeros((rois.shape[0], c, oh, ow), np.float64)
        planes = x.reshape(n, c, h * w).astype(np.float64)
        for r in range(rois.shape[0]):
            b = int(batch_indices[r])
            if not 0 <= b < n:
                raise ValueError(f"batch index {b} is outside [0, {n})")
            sy, sx, bh, bw, gh, gw = _roi_geometry(rois[r], scale, half, oh, ow, ratio)
            for ph in range(oh):
                for pw in range(ow):
                    values = []
                    for iy in range(gh):
                        for ix in range(gw):
                            taps = _bilinear_taps(sy + ph * bh + (iy + 0.5) * bh / gh,
                                                  sx + pw * bw + (ix + 0.5) * bw / gw, h, w)
                            weighted = np.stack([wt * planes[b, :, pos] for pos, wt in taps])
                            values.append(weighted.sum(0) if mode == "avg" else weighted.max(0))
                    if values:
                        y[r, :, ph, pw] = np.sum(values, 0) / max(gh * gw, 1) if mode == "avg" \
                            else np.max(values, 0)
        return [y.astype(x.dtype)]

    def flops(self, node, graph):
        y = graph.types[node.outputs[0]]
        ratio = max(int(node.attr("sampling_ratio", 0)), 2)
        return 8 * y.size * ratio * ratio

    def lower(self, node, ctx):
        x, rois, idx, out = node.inputs[0], node.inputs[1], node.inputs[2], node.outputs[0]
        mode, half, oh, ow, ratio, scale = self._params(node, ValueError)
        n, c, h, w = ctx.shape(x)
        r_count = ctx.shape(rois)[0]
        dtype = ctx.type(x).dtype
        if r_count * c == 0:
            ctx.emit("/* no regions */")
            return
        ct = dtype.ctype

        def grid(name, extent, bins):
            if ratio > 0:
                return [f"    const size_t {name} = {ratio};"]
            return [f"    const double {name}c = ceil({extent} / {bins}.0);",
                    f"    const size_t {name} = {name}c > 0.0 && {name}c < 1e9 ? (size_t){name}c : 0;"]
        sample = "wt[0] * p[0] + wt[1] * p[1] + wt[2] * p[2] + wt[3] * p[3]"
        if mode == "max":
            sample = "fmax(fmax(wt[0] * p[0], wt[1] * p[1]), fmax(wt[2] * p[2], wt[3] * p[3]))"
        value = load(ctx, dtype, "xb[at]")
        lines = [f"const {ct} *x = {ctx.ptr(x)};", f"const {ct} *rois = {ctx.ptr(rois)};",
                 f"const {ctx.ctype(idx)} *bi = {ctx.ptr(idx)};", f"{ct} *y = {ctx.ptr(out)};",
                 f"for (size_t r = 0; r < {r_count}; ++r)",
                 "    " + ctx.check_statement(f"bi[r] >= 0 && (uint64_t)bi[r] < {n}",
                                              f"batch index within [0, {n})"),
                 f"for (size_t r = 0; r < {r_count}; ++r) {{",
                 f"    const {ct} *roi = rois + r * 4;",
                 f"    const double off = {'0.5' if half else '0.0'}, scale = {scale!r};",
                 f"    const double x0 = (double){load(ctx, dtype, 'roi[0]')} * scale - off;",
                 f"    const double y0 = (double){load(ctx, dtype, 'roi[1]')} * scale - off;",
                 f"    double rw = (double){load(ctx, dtype, 'roi[2]')} * scale - off - x0;",
                 f"    double rh = (double){load(ctx, dtype, 'roi[3]')} * scale - off - y0;"]
        if not half:
            lines += ["    rw = rw > 1.0 ? rw : 1.0;", "    rh = rh > 1.0 ? rh : 1.0;"]
        lines += [f"    const double bh = rh / {oh}.0, bw = rw / {ow}.0;",
                  *grid("gh", "rh", oh), *grid("gw", "rw", ow),
                  "    const size_t count = gh * gw > 0 ? gh * gw : 1;",
                  f"    const {ct} *xb = x + (size_t)bi[r] * {c * h * w};",
                  f"    for (size_t ph = 0; ph < {oh}; ++ph)",
                  f"        for (size_t pw = 0; pw < {ow}; ++pw)",
                  f"            for (size_t ch = 0; ch < {c}; ++ch) {{",
                  f"                const size_t plane = ch * {h * w};",
                  "                double acc = 0.0;",
                  "                for (size_t iy = 0; iy < gh; ++iy)",
                  "                    for (size_t ix = 0; ix < gw; ++ix) {",
                  "                        double sy = y0 + (double)ph * bh + ((double)iy + 0.5) * bh / (double)gh;",
                  "                        double sx = x0 + (double)pw * bw + ((double)ix + 0.5) * bw / (double)gw;",
                  "                        double wt[4] = {0.0, 0.0, 0.0, 0.0}, p[4] = {0.0, 0.0, 0.0, 0.0};",
                  f"                        if (!(sy < -1.0 || sy > {h}.0 || sx < -1.0 || sx > {w}.0)) {{",
                  "                            sy = sy > 0.0 ? sy : 0.0;",
                  "                            sx = sx > 0.0 ? sx : 0.0;",
                  "                            size_t yl = (size_t)sy, xl = (size_t)sx, yh, xh;",
                  f"                            if (yl >= {h - 1}) {{ yl = yh = {h - 1}; sy = (double)yl; }}",
                  "                            else yh = yl + 1;",
                  f"                            if (xl >= {w - 1}) {{ xl = xh = {w - 1}; sx = (double)xl; }}",
                  "                            else xh = xl + 1;",
                  "                            const double ly = sy - (double)yl, lx = sx - (double)xl;",
                  "                            wt[0] = (1.0 - ly) * (1.0 - lx);",
                  "                            wt[1] = (1.0 - ly) * lx;",
                  "                            wt[2] = ly * (1.0 - lx);",
                  "                            wt[3] = ly * lx;",
                  f"                            const size_t at4[4] = {{plane + yl * {w} + xl, "
                  f"plane + yl * {w} + xh, plane + yh * {w} + xl, plane + yh * {w} + xh}};",
                  "                            for (size_t k = 0; k < 4; ++k) {",
                  "                                const size_t at = at4[k];",
                  f"                                p[k] = (double){value};",
                  "                            }",
                  "                        }",
                  f"                        const double v = {sample};"]
        if mode == "max":
            lines += ["                        acc = iy + ix == 0 ? v : fmax(acc, v);"]
        else:
            lines += ["                        acc += v;"]
        lines += ["                    }"]
        result = "acc / (double)count" if mode == "avg" else "acc"
        lines += [f"                y[((r * {c} + ch) * {oh} + ph) * {ow} + pw] = "
                  f"{store(ctx, dtype, f'({compute_ctype(dtype)})({result})')};",
                  "            }", "}"]
        ctx.emit(block(lines))
