"""Convolution relatives: Col2Im (opset 18), DeformConv (opset 19, 2-D).

Col2Im sums the columns of image patches back into an image (kernel ``col2im_f32`` in
``hal/<target>/patches.c``). Its image and block shapes are inputs: constant ones give the
output shape at compile time; run-time ones need the model's declared output shape, and the
generated code checks at run time that they give it (and the input's block size and count).
DeformConv samples each kernel tap at its learned offset (bilinear, zero outside the image, as
the ONNX reference's GridSample with align_corners), scales it by the mask and convolves
(kernel ``deform_conv_f32``, scratch: one group's sampled columns).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir.graph import TensorType
from .index import block
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
