"""Convolution relatives: Col2Im (opset 18).

Col2Im sums the columns of image patches back into an image (kernel ``col2im_f32`` in
``hal/<target>/patches.c``). Its image and block shapes are inputs: constant ones give the
output shape at compile time; run-time ones need the model's declared output shape, and the
generated code checks at run time that they give it (and the input's block size and count).
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
