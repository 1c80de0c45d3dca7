"""Convolutions: Conv and ConvTranspose over 1-D, 2-D and 3-D images (NCHW), with groups,
strides, dilations, pads / auto_pad, optional bias; ConvTranspose also output_padding and
output_shape. Element type: float32 (Conv also float16, through float32).

The geometry (output extents, padding from auto_pad) is worked out once here (``Geometry``);
the kernels in ``hal/<target>/conv.c`` get it as one static ``nn_conv_params``. Conv runs as a
GEMM per image and group with the weights pre-packed at compile time (``linalg.pack_a``) and
the image packed into GEMM panels on the fly (implicit im2col); depthwise convolution is a
direct loop nest. A float16 Conv widens its operands to float32 (constants at compile time),
runs the float32 kernels and rounds the output back once.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..ir.graph import Node, TensorType
from .linalg import gemm_work_floats, pack_a, packed_a_floats, widen_floats, widen_loop
from . import winograd
from .registry import InferContext, Op, attr_ints, register

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
MAX_SPATIAL = 3
# ConvTranspose keeps its column buffer (output channels x kernel x input positions) to about
# this many floats by handling input rows in chunks.
TRANSPOSE_COLUMNS_FLOATS = 1 << 20


@dataclass(frozen=True)
class Geometry:
    """One convolution: sizes per spatial dim, and the padding that is actually applied."""
    batch: int
    in_channels: int
    out_channels: int
    groups: int
    in_size: tuple
    out_size: tuple
    kernel: tuple
    strides: tuple
    dilations: tuple
    pads_begin: tuple
    pads_end: tuple

    @property
    def spatial(self) -> int:
        return len(self.in_size)

    @property
    def kernel_volume(self) -> int:
        return int(np.prod(self.kernel, dtype=np.int64))

    def c_params(self, name: str = "conv") -> str:
        """A ``static const nn_conv_params`` for the kernels (spatial dims padded to three)."""
        def dims(values, fill):
            values = (fill,) * (MAX_SPATIAL - len(values)) + tuple(values)
            return "{" + ", ".join(str(v) for v in values) + "}"
        return (f"static const nn_conv_params {name} = {{\n"
                f"    .batch = {self.batch}, .in_channels = {self.in_channels}, "
                f".out_channels = {self.out_channels}, .groups = {self.groups},\n"
                f"    .in_size = {dims(self.in_size, 1)}, .out_size = {dims(self.out_size, 1)}, "
                f".kernel = {dims(self.kernel, 1)},\n"
                f"    .strides = {dims(self.strides, 1)}, .dilations = {dims(self.dilations, 1)}, "
                f".pads = {dims(self.pads_begin, 0)},\n}};")


def _attrs(fail, node: Node, spatial: int, kernel: tuple) -> tuple:
    """strides, dilations, explicit pads (begin, end) and auto_pad, checked."""
    if not 1 <= spatial <= MAX_SPATIAL:
        raise fail(f"{spatial}-D images are not supported (supported: 1-D, 2-D, 3-D)")
    declared = attr_ints(node, "kernel_shape")
    if declared is not None and tuple(declared) != tuple(kernel):
        raise fail(f"kernel_shape {declared} does not match the weights' {list(kernel)}")
    strides = tuple(attr_ints(node, "strides", [1] * spatial))
    dilations = tuple(attr_ints(node, "dilations", [1] * spatial))
    pads = tuple(attr_ints(node, "pads", [0] * 2 * spatial))
    auto_pad = node.attr("auto_pad", "NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    for key, values, size in (("strides", strides, spatial), ("dilations", dilations, spatial),
                              ("pads", pads, 2 * spatial)):
        if len(values) != size:
            raise fail(f"{key} {list(values)} must have {size} values for a "
                           f"{spatial}-D image")
    if min(strides) < 1 or min(dilations) < 1 or min(pads) < 0:
        raise fail(f"strides {list(strides)} and dilations {list(dilations)} must be >= 1 "
                       f"and pads {list(pads)} >= 0")
    if auto_pad not in AUTO_PADS:
        raise fail(f"auto_pad {auto_pad!r} is not one of {', '.join(AUTO_PADS)}")
    return strides, dilations, pads[:spatial], pads[spatial:], auto_pad


def _channels(fail, x: TensorType, w: TensorType, node: Node) -> int:
    if x.rank < 3 or w.rank != x.rank:
        raise fail(f"X must be [N, C, spatial...] and W of the same rank, got {x} and {w}")
    if x.dtype != w.dtype:
        raise fail(f"X and W element types differ: {x.dtype} and {w.dtype}")
    groups = int(node.attr("group", 1))
    if groups < 1 or x.shape[1] % groups:
        raise fail(f"group {groups} does not divide the {x.shape[1]} input channels")
    return groups


def conv_geometry(fail, node: Node, x: TensorType, w: TensorType) -> Geometry:
    """Conv: X [N, C, in...], W [M, C / group, kernel...] -> Y [N, M, out...]."""
    groups = _channels(fail, x, w, node)
    spatial, kernel = x.rank - 2, tuple(w.shape[2:])
    strides, dilations, begin, end, auto_pad = _attrs(fail, node, spatial, kernel)
    if w.shape[1] * groups != x.shape[1] or w.shape[0] % groups:
        raise fail(f"W {w} does not fit {x.shape[1]} input channels in {groups} groups")
    in_size = tuple(x.shape[2:])
    extent = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilations))
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = tuple(-(-i // s) for i, s in zip(in_size, strides))
        total = [max(0, (o - 1) * s + e - i) for o, s, e, i in zip(out, strides, extent, in_size)]
        small = [t // 2 for t in total]
        big = [t - t // 2 for t in total]
        begin, end = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
    elif auto_pad == "VALID":
        begin = end = (0,) * spatial
    out = tuple((i + b + e - span) // s + 1
                for i, b, e, span, s in zip(in_size, begin, end, extent, strides))
    if min(out) < 1:
        raise fail(f"kernel {list(kernel)} (dilations {list(dilations)}) is larger than the "
                   f"padded image {list(in_size)}")
    return Geometry(x.shape[0], x.shape[1], w.shape[0], groups, in_size, out, kernel, strides,
                    dilations, tuple(begin), tuple(end))


def _check_bias(fail, types: list, channels: int) -> None:
    if len(types) > 2 and types[2] is not None and tuple(types[2].shape) != (channels,):
        raise fail(f"bias {types[2]} must have one value per output channel ({channels})")


def _node_fail(node: Node):
    """ctx.fail outside inference (reference, lowering)."""
    def fail(message):
        return ModelError(f"node {node.label} ({node.op}): {message}")
    return fail


def _bias(ctx, node: Node) -> str:
    return ctx.ptr(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else "NULL"


def _require_f32(ctx, node: Node) -> None:
    dtype = ctx.type(node.outputs[0]).dtype
    if dtype.short != "f32":
        raise _node_fail(node)(f"no kernel for element type {dtype} (supported: f32)")


def _emit_block(ctx, lines: list) -> None:
    """``{ static const nn_conv_params conv = ...; calls; }``"""
    ctx.emit("{\n" + "\n".join("    " + line for text in lines
                                for line in text.split("\n")) + "\n}")


# --- Conv -------------------------------------------------------------------------------------
class _Convolution(Op):
    """What Conv and ConvTranspose share: geometry from the attributes and shapes, and from it
    the output type (the bias, when given, has one value per output channel)."""
    @staticmethod
    def _geometry(fail, node: Node, x: TensorType, w: TensorType) -> Geometry:
        raise NotImplementedError

    def geometry(self, node: Node, graph) -> Geometry:
        x, w = (graph.types[i] for i in node.inputs[:2])
        return self._geometry(_node_fail(node), node, x, w)

    def infer(self, ctx: InferContext) -> list:
        g = self._geometry(ctx.fail, ctx.node, ctx.types[0], ctx.types[1])
        _check_bias(ctx.fail, ctx.types, g.out_channels)
        return [TensorType(ctx.types[0].dtype, (g.batch, g.out_channels) + g.out_size)]


@register("Conv", since=1)
class Conv(_Convolution):
    """Y = conv(X, W) + B: cross-correlation over each group's channels."""
    _geometry = staticmethod(conv_geometry)

    def reference(self, node, x, w, b=None):
        g = conv_geometry(_node_fail(node), node, TensorType.of(x), TensorType.of(w))
        acc = np.float64 if x.dtype != np.float64 else x.dtype
        pad = [(0, 0), (0, 0)] + list(zip(g.pads_begin, g.pads_end))
        xp = np.pad(x.astype(acc), pad)
        m, c = g.out_channels // g.groups, g.in_channels // g.groups
        xg = xp.reshape((g.batch, g.groups, c) + xp.shape[2:])
        wg = w.astype(acc).reshape((g.groups, m, c) + g.kernel)
        y = np.zeros((g.batch, g.groups, m) + g.out_size, acc)
        for tap in itertools.product(*(range(k) for k in g.kernel)):
            window = tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                           for t, d, o, s in zip(tap, g.dilations, g.out_size, g.strides))
            y += np.einsum("ngc...,gmc->ngm...", xg[(Ellipsis,) + window],
                           wg[(Ellipsis,) + tap])
        y = y.reshape((g.batch, g.out_channels) + g.out_size)
        if b is not None:
            y += b.astype(acc).reshape((1, -1) + (1,) * g.spatial)
        return [y.astype(x.dtype)]

    def flops(self, node, graph):
        g = self.geometry(node, graph)
        positions = int(np.prod(g.out_size, dtype=np.int64))
        return 2 * g.batch * g.out_channels * positions * g.in_channels // g.groups \
            * g.kernel_volume

    @staticmethod
    def depthwise(g: Geometry) -> bool:
        return g.in_channels == g.groups

    def _f32_floats(self, node, graph) -> int:
        """Scratch floats of the float32 kernels."""
        g = self.geometry(node, graph)
        if self.depthwise(g):
            return 0
        if self.winograd_tile(node, graph, g):
            return widen_floats(winograd.work_floats(g, self.winograd_tile(node, graph, g)))
        positions = int(np.prod(g.out_size, dtype=np.int64))
        floats = gemm_work_floats(positions)
        if node.inputs[1] not in graph.constants:
            floats += g.groups * self._packed_floats(g)
        return widen_floats(floats)

    @staticmethod
    def winograd_tile(node, graph, g: Geometry) -> int:
        """m of F(m x m, 3 x 3) when the node runs as a Winograd convolution (its ``winograd``
        attribute, set by the -O2 pass select-conv-algorithm), else 0."""
        m = int(node.attr(winograd.ATTR, 0))
        if not m:
            return 0
        if m not in winograd.TILE_SIZES or not winograd.applicable(g) or \
                node.inputs[1] not in graph.constants:
            raise _node_fail(node)(f"winograd={m} needs a 3x3 stride-1 2-D Conv with constant "
                                   f"weights and m in {list(winograd.TILE_SIZES)}")
        return m

    @staticmethod
    def _widened(node, graph) -> list:
        """What a float16 Conv copies to float32 in scratch: the run-time inputs and Y."""
        return [v for v in node.inputs if v and v not in graph.constants] + [node.outputs[0]]

    def scratch_bytes(self, node, graph):
        floats = self._f32_floats(node, graph)
        if graph.types[node.outputs[0]].dtype.short == "f16":
            floats += sum(widen_floats(graph.types[v].size) for v in self._widened(node, graph))
        return 4 * floats

    @staticmethod
    def _packed_floats(g: Geometry) -> int:
        return packed_a_floats(g.out_channels // g.groups,
                               g.in_channels // g.groups * g.kernel_volume)

    def takes_epilogue(self, node, graph) -> bool:
        """Whether ``lower`` can apply a fused epilogue (``nn_conv_epilogue``) in the kernel's
        stores: the float32 kernels of conv.h, depthwise.h and winograd.h."""
        return graph.types[node.outputs[0]].dtype.short == "f32"

    def lower(self, node, ctx, epilogue: str = ""):
        """``epilogue``: a C initializer of ``nn_conv_epilogue`` the kernel applies as it stores
        (only where ``takes_epilogue``)."""
        y = node.outputs[0]
        dtype = ctx.type(y).dtype
        if dtype.short != "f16":
            _require_f32(ctx, node)
            self._conv(node, ctx, {v: ctx.ptr(v) for v in node.inputs if v} | {y: ctx.ptr(y)},
                       epilogue)
            return
        ptrs, offset = {}, self._f32_floats(node, ctx.graph)
        scratch = ctx.scratch("float")
        for v in node.inputs:
            if v in ctx.graph.constants:      # widened at compile time
                ptrs[v] = ctx.weight(f"{v}:f32", np.asarray(ctx.graph.constants[v], np.float32))
        for v in self._widened(node, ctx.graph):
            ptrs[v] = f"({scratch} + {offset})"
            offset += widen_floats(ctx.type(v).size)
        ctx.emit(f"/* {dtype} operands widened to float32; the output rounded back once */")
        for v in self._widened(node, ctx.graph)[:-1]:
            ctx.emit(widen_loop(ctx, dtype, ctx.type(v).size, ctx.ptr(v), ptrs[v], 0))
        self._conv(node, ctx, ptrs)
        ctx.emit(widen_loop(ctx, dtype, ctx.type(y).size, ptrs[y], ctx.ptr(y), 1))

    def _conv(self, node, ctx, ptrs: dict, epilogue: str = "") -> None:
        """The float32 kernels over the tensors at ``ptrs``."""
        x, w = node.inputs[:2]
        y = node.outputs[0]
        g = self.geometry(node, ctx.graph)
        b = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else ""
        bias = ptrs[b] if b else "NULL"
        ctx.fn("gemm", "sgemm")               # conv.c is built on the gemm kernels
        m = self.winograd_tile(node, ctx.graph, g)
        if m:
            _emit_block(ctx, winograd.lower_lines(ctx, g, m, w, ctx.graph.constants[w], ptrs[x],
                                                  bias, ptrs[y], epilogue))
            return
        lines = [g.c_params()]
        if self.depthwise(g):
            ctx.fn("conv", "conv")        # depthwise.h takes conv.h's nn_conv_params
            if epilogue:
                lines.append(f"const nn_conv_epilogue epilogue = {epilogue};")
            lines.append(f"{ctx.fn('depthwise', 'conv_depthwise')}(&conv, {ptrs[x]}, {ptrs[w]}, "
                         f"{bias}, {ptrs[y]}, {'&epilogue' if epilogue else 'NULL'});")
        else:
            scratch = ctx.scratch("float")
            if w in ctx.graph.constants:
                packed, work = ctx.weight(f"{w}:conv-packed-g{g.groups}",
                                          self.pack_weights(ctx.graph.constants[w], g)), scratch
            else:
                packed = scratch
                work = f"{scratch} + {g.groups * self._packed_floats(g)}"
                lines.append(f"{ctx.fn('conv', 'conv_pack_weights')}(&conv, {ptrs[w]}, "
                             f"{packed});")
            if epilogue:
                lines.append(f"const nn_conv_epilogue epilogue = {epilogue};")
            lines.append(f"{ctx.fn('conv', 'conv')}(&conv, {ptrs[x]}, {packed}, "
                         f"{bias}, {ptrs[y]}, {work}, {'&epilogue' if epilogue else 'NULL'});")
        _emit_block(ctx, lines)

    @staticmethod
    def pack_weights(w: np.ndarray, g: Geometry) -> np.ndarray:
        """W [M, C / group, kernel...] as one packed GEMM left operand per group."""
        w = np.asarray(w, np.float32).reshape(g.groups, g.out_channels // g.groups, -1)
        return np.concatenate([pack_a(wg) for wg in w])


# --- ConvTranspose ----------------------------------------------------------------------------
def conv_transpose_geometry(fail, node: Node, x: TensorType, w: TensorType) -> Geometry:
    """ConvTranspose: X [N, C, in...], W [C, M / group, kernel...] -> Y [N, M, out...]."""
    groups = _channels(fail, x, w, node)
    spatial, kernel = x.rank - 2, tuple(w.shape[2:])
    strides, dilations, begin, end, auto_pad = _attrs(fail, node, spatial, kernel)
    if w.shape[0] != x.shape[1]:
        raise fail(f"W {w} must have one row per input channel ({x.shape[1]})")
    in_size = tuple(x.shape[2:])
    extra = tuple(attr_ints(node, "output_padding", [0] * spatial))
    if len(extra) != spatial or any(not 0 <= p < max(s, d) for p, s, d in
                                     zip(extra, strides, dilations)):
        raise fail(f"output_padding {list(extra)} must have {spatial} values, each smaller "
                   f"than its stride or dilation")
    full = tuple((i - 1) * s + e + (k - 1) * d + 1
                 for i, s, e, k, d in zip(in_size, strides, extra, kernel, dilations))
    shape = attr_ints(node, "output_shape")
    if shape is not None:
        if len(shape) != spatial:
            raise fail(f"output_shape {shape} must have {spatial} values")
        # larger than the full output: negative total padding, the extra positions get only
        # the bias (floor division as the spec's reference, so begin may be negative too)
        total = [f - o for f, o in zip(full, shape)]
        begin = tuple(t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total)
        out = tuple(shape)
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = tuple(i * s for i, s in zip(in_size, strides))
        total = [max(0, f - o) for f, o in zip(full, out)]
        begin = tuple(t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total)
    else:
        if auto_pad == "VALID":
            begin = end = (0,) * spatial
        out = tuple(f - b - e for f, b, e in zip(full, begin, end))
    if min(out) < 1:
        raise fail(f"output size {list(out)} is empty (pads {list(begin)} + {list(end)})")
    end = tuple(f - b - o for f, b, o in zip(full, begin, out))
    return Geometry(x.shape[0], x.shape[1], w.shape[1] * groups, groups, in_size, out, kernel,
                    strides, dilations, tuple(begin), end)


@register("ConvTranspose", since=1)
class ConvTranspose(_Convolution):
    """Y = conv_transpose(X, W) + B: each input element scatters W times itself into Y."""
    _geometry = staticmethod(conv_transpose_geometry)

    def reference(self, node, x, w, b=None):
        g = conv_transpose_geometry(_node_fail(node), node, TensorType.of(x), TensorType.of(w))
        acc = np.float64 if x.dtype != np.float64 else x.dtype
        m, c = g.out_channels // g.groups, g.in_channels // g.groups
        lead = tuple(max(0, -b) for b in g.pads_begin)      # output before the first tap
        full = tuple(max(b + o, (i - 1) * s + (k - 1) * d + 1) + a
                     for a, b, o, i, s, k, d in zip(lead, g.pads_begin, g.out_size, g.in_size,
                                                    g.strides, g.kernel, g.dilations))
        y = np.zeros((g.batch, g.groups, m) + full, acc)
        xg = x.astype(acc).reshape((g.batch, g.groups, c) + g.in_size)
        wg = w.astype(acc).reshape((g.groups, c, m) + g.kernel)
        for tap in itertools.product(*(range(k) for k in g.kernel)):
            window = tuple(slice(a + t * d, a + t * d + (i - 1) * s + 1, s)
                           for a, t, d, i, s in zip(lead, tap, g.dilations, g.in_size, g.strides))
            y[(Ellipsis,) + window] += np.einsum("ngc...,gcm->ngm...", xg, wg[(Ellipsis,) + tap])
        crop = tuple(slice(a + b, a + b + o) for a, b, o in zip(lead, g.pads_begin, g.out_size))
        y = y[(Ellipsis,) + crop].reshape((g.batch, g.out_channels) + g.out_size)
        if b is not None:
            y = y + b.astype(acc).reshape((1, -1) + (1,) * g.spatial)
        return [y.astype(x.dtype)]

    def flops(self, node, graph):
        g = self.geometry(node, graph)
        positions = int(np.prod(g.in_size, dtype=np.int64))
        return 2 * g.batch * g.in_channels * positions * g.out_channels // g.groups \
            * g.kernel_volume

    @staticmethod
    def _plan(g: Geometry) -> tuple:
        """(rows of the column buffer, input rows per chunk, packed floats per group)."""
        rows = g.out_channels // g.groups * g.kernel_volume
        width = g.in_size[-1]
        in_rows = int(np.prod(g.in_size[:-1], dtype=np.int64))
        chunk = max(1, min(in_rows, TRANSPOSE_COLUMNS_FLOATS // max(1, rows * width)))
        return rows, chunk, packed_a_floats(rows, g.in_channels // g.groups)

    def scratch_bytes(self, node, graph):
        g = self.geometry(node, graph)
        rows, chunk, packed = self._plan(g)
        width = g.in_size[-1]
        floats = rows * chunk * width + gemm_work_floats(chunk * width)
        if node.inputs[1] not in graph.constants:
            floats += g.groups * packed
        return 4 * floats

    def lower(self, node, ctx):
        x, w = node.inputs[:2]
        y = node.outputs[0]
        _require_f32(ctx, node)
        g = self.geometry(node, ctx.graph)
        rows, chunk, packed_floats = self._plan(g)
        ctx.fn("gemm", "sgemm")               # conv.c is built on the gemm kernels
        lines = [g.c_params()]
        scratch = ctx.scratch("float")
        if w in ctx.graph.constants:
            packed, work = ctx.weight(f"{w}:conv-transpose-packed-g{g.groups}",
                                      self.pack_weights(ctx.graph.constants[w], g)), scratch
        else:
            packed, work = scratch, f"{scratch} + {g.groups * packed_floats}"
            lines.append(f"{ctx.fn('conv', 'conv_transpose_pack_weights')}(&conv, "
                         f"{ctx.ptr(w)}, {packed});")
        lines.append(f"{ctx.fn('conv', 'conv_transpose')}(&conv, {ctx.ptr(x)}, {packed}, "
                     f"{_bias(ctx, node)}, {ctx.ptr(y)}, {chunk}, {work});")
        _emit_block(ctx, lines)

    @staticmethod
    def pack_weights(w: np.ndarray, g: Geometry) -> np.ndarray:
        """W [C, M / group, kernel...]: per group, W_g^T (M / group * kernel x C / group)."""
        c = g.in_channels // g.groups
        w = np.asarray(w, np.float32).reshape(g.groups, c, -1)
        return np.concatenate([pack_a(wg.T) for wg in w])
