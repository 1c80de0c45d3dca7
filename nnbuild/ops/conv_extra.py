"""Convolution relatives: Col2Im (opset 18), DeformConv (opset 19, 2-D), ConvInteger and
QLinearConv (opset 10; 1-3 spatial dims, u8/i8 operands in any mix, per-tensor or per-channel
weight zero points and scales).

Col2Im sums the columns of image patches back into an image (kernel ``col2im_f32`` in
``hal/<target>/patches.c``). Its image and block shapes are inputs: constant ones give the
output shape at compile time; run-time ones need the model's declared output shape, and the
generated code checks at run time that they give it (and the input's block size and count).
DeformConv samples each kernel tap at its learned offset (bilinear, zero outside the image, as
the ONNX reference's GridSample with align_corners), scales it by the mask and convolves
(kernel ``deform_conv_f32``, scratch: one group's sampled columns).
The integer convolutions sum (x - x_zero) * (w - w_zero) in int32 (``qconv_s32`` in
``hal/<target>/qconv.c``); QLinearConv then adds the int32 bias, scales by
x_scale * w_scale / y_scale in float, rounds half to even, adds y_zero and saturates.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir.graph import TensorType
from .index import block
from .conv import conv_geometry
from .registry import Op, attr_ints, register


def _ints(node, key, default, n):
    values = attr_ints(node, key) or [default] * n
    if len(values) != n:
        raise ValueError(f"{key} has {len(values)} values, {n} expected")
    return values


def col2im_geometry(node, rank):
    """(dilations, strides, pads) of a Col2Im over ``rank`` spatial dims."""
    return (_ints(node, "dilations", 1, rank), _ints(node, "strides", 1, rank),
            _ints(node, "pads", 0, 2 * rank))


def col2im_blocks(image, block_shape, dilations, strides, pads) -> list | None:
    """Block positions along each dim, or None when a block does not fit."""
    rank = len(image)
    out = []
    for d in range(rank):
        room = image[d] + pads[d] + pads[rank + d] - (dilations[d] * (block_shape[d] - 1) + 1)
        if image[d] < 1 or block_shape[d] < 1 or room < 0:
            return None
        out.append(room // strides[d] + 1)
    return out


# --- Col2Im ------------------------------------------------------------------------------------
@register("Col2Im", since=18)
class Col2Im(Op):
    """y[n, c, image] = sum of x[n, c * K + k, l] over the patches (k, l) that cover the pixel"""

    def _geometry(self, ctx, rank):
        try:
            dilations, strides, pads = col2im_geometry(ctx.node, rank)
        except ValueError as e:
            raise ctx.fail(str(e))
        if min(dilations + strides) < 1 or min(pads, default=0) < 0:
            raise ctx.fail("dilations and strides must be positive, pads not negative")
        return dilations, strides, pads

    def infer(self, ctx):
        x, image_t, block_t = ctx.types
        if x.dtype != dtypes.FLOAT32:
            raise ctx.fail(f"element type {x.dtype} is not supported (supported: f32)")
        if x.rank != 3 or image_t.rank != 1 or block_t.rank != 1 or \
                image_t.size != block_t.size or not 1 <= image_t.size <= 8:
            raise ctx.fail(f"input {x}, image_shape {image_t} and block_shape {block_t} must "
                           f"be [N, C * K, L] and two shapes of 1 to 8 dims")
        rank = image_t.size
        geometry = self._geometry(ctx, rank)
        image, block_shape = ctx.known(1), ctx.known(2)
        if image is not None and block_shape is not None:
            k = int(np.prod(block_shape))
            blocks = col2im_blocks([int(v) for v in image], [int(v) for v in block_shape],
                                   *geometry)
            if blocks is None or x.shape[1] % k or int(np.prod(blocks)) != x.shape[2]:
                raise ctx.fail(f"input {x} is no [N, C * {k}, {blocks and int(np.prod(blocks))}]"
                               f" of blocks {list(block_shape)} over image {list(image)}")
            shape = (x.shape[0], x.shape[1] // k) + tuple(int(v) for v in image)
        else:
            shape = ctx.declared(0, 1 if image is None else 2, "image_shape / block_shape")
            if len(shape) != rank + 2 or shape[0] != x.shape[0] or shape[1] < 1 or \
                    x.shape[1] % shape[1] or (image is not None and
                                              tuple(shape[2:]) != tuple(int(v) for v in image)):
                raise ctx.fail(f"the declared shape {list(shape)} is no image of {x}")
        return [TensorType(x.dtype, tuple(shape))]

    def reference(self, node, x, image, block_shape):
        image, block_shape = [int(v) for v in image], [int(v) for v in block_shape]
        rank = len(image)
        dilations, strides, pads = col2im_geometry(node, rank)
        blocks = col2im_blocks(image, block_shape, dilations, strides, pads)
        n, ck, _ = x.shape
        k = int(np.prod(block_shape))
        y = np.zeros((n, ck // k) + tuple(image), x.dtype)
        cols = x.reshape(n, ck // k, k, -1)
        for kk, offset in enumerate(np.ndindex(*block_shape)):
            for ll, at in enumerate(np.ndindex(*blocks)):
                pos = tuple(at[d] * strides[d] - pads[d] + offset[d] * dilations[d]
                            for d in range(rank))
                if all(0 <= p < image[d] for d, p in enumerate(pos)):
                    y[(slice(None), slice(None)) + pos] += cols[:, :, kk, ll]
        return [y]

    def lower(self, node, ctx):
        x, image, block_shape, y = node.inputs[0], node.inputs[1], node.inputs[2], node.outputs[0]
        out = ctx.shape(y)
        rank = len(out) - 2
        dilations, strides, pads = col2im_geometry(node, rank)
        k = ctx.shape(x)[1] // out[1]
        spatial = ctx.table("int64_t", out[2:], "image_shape")

        def c_list(values):
            return "{" + ", ".join(str(v) for v in values) + "}"
        g = ctx.fn("patches", "col2im_plan")
        ctx.emit(block([
            f"nn_col2im g = {{.rank = {rank}, .dilations = {c_list(dilations)}, "
            f".strides = {c_list(strides)}, .pads = {c_list(pads)}}};",
            f"const int64_t positions = {g}(&g, {ctx.ptr(image)}, {ctx.ptr(block_shape)});",
            ctx.check_statement(f"positions == {ctx.shape(x)[2]} && g.block_size == {k} && "
                                f"nn_dims_equal(g.image, {spatial}, {rank})",
                                f"image and block shapes give the declared {list(out)} from "
                                f"{list(ctx.shape(x))}"),
            f"{ctx.fn('patches', 'col2im_f32')}({ctx.ptr(x)}, {ctx.ptr(y)}, "
            f"{out[0] * out[1]}, &g);"]))


# --- DeformConv --------------------------------------------------------------------------------
def _bilinear_zero(plane, h, w):
    height, width = plane.shape
    h0, w0 = int(np.floor(h)), int(np.floor(w))
    th, tw = h - h0, w - w0
    total = 0.0
    for r, wr in ((h0, 1 - th), (h0 + 1, th)):
        for c, wc in ((w0, 1 - tw), (w0 + 1, tw)):
            if 0 <= r < height and 0 <= c < width:
                total += wr * wc * float(plane[r, c])
    return total


@register("DeformConv", since=19)
class DeformConv(Op):
    """y = conv(x sampled at each tap's position + offset, scaled by mask) with w, plus bias"""

    def _geometry(self, node, x, w):
        kernel = attr_ints(node, "kernel_shape") or list(w.shape[2:])
        strides = attr_ints(node, "strides") or [1, 1]
        dilations = attr_ints(node, "dilations") or [1, 1]
        pads = attr_ints(node, "pads") or [0, 0, 0, 0]
        out = [(x.shape[2 + d] + pads[d] + pads[2 + d] - (dilations[d] * (kernel[d] - 1) + 1))
               // strides[d] + 1 for d in range(2)]
        return kernel, strides, dilations, pads, out

    def infer(self, ctx):
        x, w, offset = ctx.types[0], ctx.types[1], ctx.types[2]
        node = ctx.node
        if any(t is not None and t.dtype != dtypes.FLOAT32 for t in ctx.types):
            raise ctx.fail("element types other than f32 are not supported (supported: f32)")
        if x.rank != 4 or w.rank != 4:
            raise ctx.fail(f"input {x} and weights {w} must be 2-D images (N x C x H x W); "
                           f"other ranks are not supported")
        group, og = node.attr("group", 1), node.attr("offset_group", 1)
        kernel, strides, dilations, pads, out = self._geometry(node, x, w)
        if len(kernel) != 2 or len(strides) != 2 or len(dilations) != 2 or len(pads) != 4 or \
                min(strides + dilations + kernel) < 1 or min(pads) < 0 or min(out) < 1:
            raise ctx.fail(f"kernel {kernel}, strides {strides}, dilations {dilations}, pads "
                           f"{pads} do not fit input {x}")
        taps = kernel[0] * kernel[1]
        if group < 1 or og < 1 or x.shape[1] != w.shape[1] * group or w.shape[0] % group or \
                x.shape[1] % og or tuple(w.shape[2:]) != tuple(kernel):
            raise ctx.fail(f"input {x}, weights {w}, group {group} and offset_group {og} "
                           f"do not agree")
        want = (x.shape[0], og * 2 * taps) + tuple(out)
        if offset.shape != want:
            raise ctx.fail(f"offset {offset} must be {list(want)}")
        if ctx.has(3) and ctx.types[3].shape != (w.shape[0],):
            raise ctx.fail(f"bias {ctx.types[3]} must be [{w.shape[0]}]")
        if ctx.has(4) and ctx.types[4].shape != (x.shape[0], og * taps) + tuple(out):
            raise ctx.fail(f"mask {ctx.types[4]} must be {[x.shape[0], og * taps] + out}")
        return [TensorType(x.dtype, (x.shape[0], w.shape[0]) + tuple(out))]

    def reference(self, node, x, w, offset, b=None, mask=None):
        kernel, strides, dilations, pads, out = self._geometry(node, x, w)
        group, og = node.attr("group", 1), node.attr("offset_group", 1)
        n, c = x.shape[:2]
        taps = kernel[0] * kernel[1]
        cg, ocg = c // group, w.shape[0] // group
        offset = offset.reshape(n, og, taps, 2, *out)
        mask = np.ones((n, og, taps) + tuple(out)) if mask is None else \
            mask.reshape(n, og, taps, *out)
        y = np.zeros((n, w.shape[0]) + tuple(out), np.float64)
        for b_i, ci, k, oh, ow in np.ndindex(n, c, taps, *out):
            g = ci // (c // og)
            kh, kw = divmod(k, kernel[1])
            h = oh * strides[0] - pads[0] + kh * dilations[0] + offset[b_i, g, k, 0, oh, ow]
            v = ow * strides[1] - pads[1] + kw * dilations[1] + offset[b_i, g, k, 1, oh, ow]
            s = _bilinear_zero(x[b_i, ci], h, v) * mask[b_i, g, k, oh, ow]
            outs = slice((ci // cg) * ocg, (ci // cg + 1) * ocg)
            y[b_i, outs, oh, ow] += w[outs, ci % cg, kh, kw] * s
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return [y.astype(x.dtype)]

    def scratch_bytes(self, node, graph):
        w, y = graph.types[node.inputs[1]], graph.types[node.outputs[0]]
        return 4 * w.shape[1] * w.shape[2] * w.shape[3] * y.shape[2] * y.shape[3]

    def flops(self, node, graph):
        w, y = graph.types[node.inputs[1]], graph.types[node.outputs[0]]
        return 2 * y.size * w.shape[1] * w.shape[2] * w.shape[3]

    def lower(self, node, ctx):
        x, w, offset = node.inputs[:3]
        b = node.inputs[3] if len(node.inputs) > 3 and node.inputs[3] else ""
        mask = node.inputs[4] if len(node.inputs) > 4 and node.inputs[4] else ""
        y = node.outputs[0]
        xs, ys = ctx.shape(x), ctx.shape(y)
        kernel, strides, dilations, pads, _ = self._geometry(node, ctx.type(x), ctx.type(w))

        def pair(values):
            return "{" + ", ".join(str(v) for v in values) + "}"
        ctx.emit("\n".join([
            "{", "    static const nn_deform_conv geometry = {",
            f"        .batch = {xs[0]}, .channels = {xs[1]}, .height = {xs[2]}, "
            f".width = {xs[3]},",
            f"        .out_channels = {ys[1]}, .out_height = {ys[2]}, .out_width = {ys[3]},",
            f"        .kernel = {pair(kernel)}, .stride = {pair(strides)}, "
            f".dilation = {pair(dilations)}, .pad = {pair(pads[:2])},",
            f"        .group = {node.attr('group', 1)}, "
            f".offset_group = {node.attr('offset_group', 1)}}};",
            f"    {ctx.fn('patches', 'deform_conv_f32')}({ctx.ptr(x)}, {ctx.ptr(w)}, "
            f"{ctx.ptr(offset)}, {ctx.ptr(b) if b else 'NULL'}, "
            f"{ctx.ptr(mask) if mask else 'NULL'}, {ctx.ptr(y)}, {ctx.scratch('float')}, "
            f"&geometry);", "}"]))


# --- ConvInteger / QLinearConv -----------------------------------------------------------------
Q8 = (dtypes.BY_SHORT["u8"], dtypes.BY_SHORT["i8"])


def _int_conv(x, w, xz, wz, node):
    """(x - xz) conv (w - wz) in int64, w's zero point per output channel or one."""
    g = conv_geometry(_fail(node), node, TensorType.of(x), TensorType(dtypes.from_numpy(x.dtype),
                                                                      w.shape))
    xs = x.astype(np.int64) - (0 if xz is None else int(np.asarray(xz).reshape(-1)[0]))
    wz = np.zeros(1, np.int64) if wz is None else np.asarray(wz, np.int64).reshape(-1)
    ws = w.astype(np.int64) - wz.reshape((-1,) + (1,) * (w.ndim - 1))
    pad = [(0, 0), (0, 0)] + list(zip(g.pads_begin, g.pads_end))
    xp = np.pad(xs, pad)
    m, c = g.out_channels // g.groups, g.in_channels // g.groups
    xg = xp.reshape((g.batch, g.groups, c) + xp.shape[2:])
    wg = ws.reshape((g.groups, m, c) + g.kernel)
    y = np.zeros((g.batch, g.groups, m) + g.out_size, np.int64)
    for tap in np.ndindex(*g.kernel):
        window = tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                       for t, d, o, s in zip(tap, g.dilations, g.out_size, g.strides))
        y += np.einsum("ngc...,gmc->ngm...", xg[(Ellipsis,) + window], wg[(Ellipsis,) + tap])
    return y.reshape((g.batch, g.out_channels) + g.out_size)


def _fail(node):
    from ..errors import ModelError

    def fail(message):
        return ModelError(f"node {node.label} ({node.op}): {message}")
    return fail


def _int_conv_infer(ctx, x_i, w_i, xz_i, wz_i):
    x, w = ctx.types[x_i], ctx.types[w_i]
    if x.dtype not in Q8 or w.dtype not in Q8:
        raise ctx.fail(f"element types {x.dtype} / {w.dtype} are not supported (supported: "
                       f"u8, i8)")
    g = conv_geometry(ctx.fail, ctx.node, x, TensorType(x.dtype, w.shape))
    for i, size, what in ((xz_i, 1, "x zero point"), (wz_i, g.out_channels, "w zero point")):
        if ctx.has(i) and ctx.types[i].size not in (1, size):
            raise ctx.fail(f"{what} {ctx.types[i]} must hold 1 or {size} values")
    return g


def _int_conv_emit(ctx, node, x, w, xz, wz, acc) -> list:
    """The lines that fill the int32 ``acc`` with the zero-point-corrected convolution."""
    g = conv_geometry(_fail(node), node, ctx.type(x), TensorType(ctx.type(x).dtype, ctx.shape(w)))
    lead = 3 - g.spatial

    def dims(values, fill):
        return "{" + ", ".join(str(v) for v in (fill,) * lead + tuple(values)) + "}"
    wz_count = ctx.type(wz).size if wz else 1

    def q8(name):
        signed = "true" if ctx.type(name).dtype.short == "i8" else "false"
        return f"(nn_q8){{{ctx.ptr(name)}, {signed}}}"
    return [
        "static const nn_qconv geometry = {",
        f"    .batch = {g.batch}, .in_channels = {g.in_channels}, "
        f".out_channels = {g.out_channels}, .groups = {g.groups},",
        f"    .in = {dims(g.in_size, 1)}, .out = {dims(g.out_size, 1)}, "
        f".kernel = {dims(g.kernel, 1)},",
        f"    .stride = {dims(g.strides, 1)}, .dilation = {dims(g.dilations, 1)}, "
        f".pad = {dims(g.pads_begin, 0)}}};",
        f"const int32_t x_zero = {f'(int32_t){ctx.ptr(xz)}[0]' if xz else '0'};",
        f"int32_t w_zero[{wz_count}];",
        f"for (size_t i = 0; i < {wz_count}; ++i)",
        f"    w_zero[i] = {f'(int32_t){ctx.ptr(wz)}[i]' if wz else '0'};",
        f"{ctx.fn('qconv', 'qconv_s32')}(&geometry, {q8(x)}, x_zero, {q8(w)}, w_zero, "
        f"{1 if wz_count > 1 else 0}, {acc});"]


def _input(node, i):
    return node.inputs[i] if len(node.inputs) > i and node.inputs[i] else ""


@register("ConvInteger", since=10)
class ConvInteger(Op):
    """y (int32) = (x - x_zero_point) conv (w - w_zero_point)"""

    def infer(self, ctx):
        g = _int_conv_infer(ctx, 0, 1, 2, 3)
        return [TensorType(dtypes.INT32, (g.batch, g.out_channels) + g.out_size)]

    def reference(self, node, x, w, xz=None, wz=None):
        return [_int_conv(x, w, xz, wz, node).astype(np.int32)]

    def lower(self, node, ctx):
        lines = _int_conv_emit(ctx, node, node.inputs[0], node.inputs[1], _input(node, 2),
                               _input(node, 3), ctx.ptr(node.outputs[0]))
        ctx.emit(block(lines))


@register("QLinearConv", since=10)
class QLinearConv(Op):
    """y = saturate(round((x - xz) conv (w - wz) + B) * x_scale * w_scale / y_scale) + yz)"""

    def infer(self, ctx):
        g = _int_conv_infer(ctx, 0, 3, 2, 5)
        for i, size, what in ((1, 1, "x_scale"), (4, g.out_channels, "w_scale"),
                              (6, 1, "y_scale")):
            if ctx.types[i].dtype != dtypes.FLOAT32 or ctx.types[i].size not in (1, size):
                raise ctx.fail(f"{what} {ctx.types[i]} must be f32 with 1 or {size} values")
        out = ctx.types[7] if ctx.has(7) else TensorType(Q8[0], ())
        if out.dtype not in Q8 or out.size != 1:
            raise ctx.fail(f"y_zero_point {out} must be one u8 or i8 value")
        if ctx.has(8) and (ctx.types[8].dtype != dtypes.INT32 or
                           ctx.types[8].shape != (g.out_channels,)):
            raise ctx.fail(f"bias {ctx.types[8]} must be i32 [{g.out_channels}]")
        return [TensorType(out.dtype, (g.batch, g.out_channels) + g.out_size)]

    def reference(self, node, x, xs, xz, w, ws, wz, ys, yz=None, b=None):
        acc = _int_conv(x, w, xz, wz, node)
        if b is not None:
            acc = acc + b.astype(np.int64).reshape(1, -1, *(1,) * (x.ndim - 2))
        scale = (np.float32(np.asarray(xs).reshape(-1)[0]) * np.asarray(ws, np.float32)
                 .reshape(-1) / np.float32(np.asarray(ys).reshape(-1)[0])).astype(np.float32)
        scale = scale.reshape(1, -1, *(1,) * (x.ndim - 2))
        out = np.dtype(np.uint8) if yz is None else np.asarray(yz).dtype
        zero = 0 if yz is None else int(np.asarray(yz).reshape(-1)[0])
        y = np.rint(acc.astype(np.float32) * scale) + zero
        info = np.iinfo(out)
        return [np.clip(y, info.min, info.max).astype(out)]

    def scratch_bytes(self, node, graph):
        return 4 * graph.types[node.outputs[0]].size

    def lower(self, node, ctx):
        x, xs, xz, w, ws, wz, ys = node.inputs[:7]
        yz, b, y = _input(node, 7), _input(node, 8), node.outputs[0]
        acc = ctx.scratch("int32_t")
        shape = ctx.shape(y)
        channels, inner = shape[1], int(np.prod(shape[2:], dtype=np.int64))
        ws_step = 1 if ctx.type(ws).size > 1 else 0
        out = ctx.type(y).dtype
        lo, hi = (0, 255) if out.short == "u8" else (-128, 127)
        lines = _int_conv_emit(ctx, node, x, w, xz, wz, acc)
        lines += [f"const int32_t *acc = {acc};", f"{out.ctype} *y = {ctx.ptr(y)};",
                  f"const float y_zero = {f'(float){ctx.ptr(yz)}[0]' if yz else '0.0f'};",
                  f"for (size_t e = 0; e < {ctx.type(y).size}; ++e) {{",
                  f"    const size_t o = e / {inner} % {channels};",
                  f"    const float scale = {ctx.ptr(xs)}[0] * {ctx.ptr(ws)}[o * {ws_step}] / "
                  f"{ctx.ptr(ys)}[0];",
                  f"    const int32_t sum = acc[e]{f' + {ctx.ptr(b)}[o]' if b else ''};",
                  "    const float v = nearbyintf((float)sum * scale) + y_zero;   "
                  "/* half to even */",
                  f"    y[e] = ({out.ctype})(v < {lo}.0f ? {lo}.0f : v > {hi}.0f ? {hi}.0f : v);",
                  "}"]
        ctx.emit(block(lines))
