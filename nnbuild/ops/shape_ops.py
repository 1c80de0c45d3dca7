"""Shape ops: Shape, Size, ConstantOfShape, and the ops that only change how the same bytes are
viewed (Reshape, Flatten, Squeeze, Unsqueeze).

Shapes are static after translation, so Shape and Size are compile-time values (constant
folding turns Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains into constants), and
the view changes lower to one ``memcpy`` for now.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir.graph import TensorType, splat
from .movement import _attr_to_input, fill, keep_splat, store_known
from .registry import InferContext, Op, register


# --- Shape, Size, ConstantOfShape -------------------------------------------------------------
class Known(Op):
    """An op whose outputs follow from input *types* alone: always folded."""
    def values(self, node, shapes: list) -> list:
        raise NotImplementedError

    def fold(self, ctx):
        return self.values(ctx.node, [t.shape for t in ctx.types])

    def infer(self, ctx):
        return [TensorType.of(v) for v in self.fold(ctx)]

    def reference(self, node, *xs):
        return self.values(node, [x.shape for x in xs])

    def lower(self, node, ctx):
        values = self.values(node, [ctx.shape(i) for i in node.inputs])
        for name, value in zip(node.outputs, values):
            store_known(ctx, name, value)

    def flops(self, node, graph):
        return 0


@register("Shape", since=1)
class Shape(Known):
    """y = the dimensions of x as int64 (from opset 15, only dims[start:end])."""
    def values(self, node, shapes):
        dims = shapes[0]
        rank = len(dims)
        start, end = node.attr("start", 0), node.attr("end", rank)
        start, end = (min(max(v + rank if v < 0 else v, 0), rank) for v in (start, end))
        return [np.array(dims[start:end], np.int64)]


@register("Size", since=1)
class Size(Known):
    """y = the number of elements of x, an int64 scalar."""
    def values(self, node, shapes):
        return [np.array(int(np.prod(shapes[0], dtype=np.int64)), np.int64)]


def _fill_value(node) -> np.ndarray:
    value = node.attr("value")
    return np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)


@register("ConstantOfShape", since=9)
class ConstantOfShape(Op):
    """y = a tensor of the given shape filled with ``value`` (default float 0)."""
    def infer(self, ctx):
        if ctx.known(0) is None:          # shape read at run time: the declared one
            shape = list(ctx.declared(0, 0, "shape"))
            if len(shape) != ctx.types[0].size:
                raise ctx.fail(f"the declared output shape {shape} has rank {len(shape)}, "
                               f"shape holds {ctx.types[0].size} values")
        else:
            shape = [int(v) for v in np.asarray(ctx.known(0)).reshape(-1)]
        if any(d < 0 for d in shape):
            raise ctx.fail(f"shape {shape} has a negative dimension")
        value = _fill_value(ctx.node)
        if value.size != 1:
            raise ctx.fail(f"value must hold one element, it holds {value.size}")
        return [TensorType(dtypes.from_numpy(value.dtype), tuple(shape))]

    def reference(self, node, shape):
        value = _fill_value(node)
        return [splat(value[0], value.dtype, [int(d) for d in shape.reshape(-1)])]

    def lower(self, node, ctx):
        y = node.outputs[0]
        if ctx.known(node.inputs[0]) is None:
            out = ctx.shape(y)
            ctx.check(f"nn_dims_equal({ctx.ptr(node.inputs[0])}, "
                      f"{ctx.table('int64_t', out, 'dims')}, {len(out)})",
                      f"run-time shape is the declared {list(out)}")
        fill(ctx, y, _fill_value(node)[0], ctx.type(y).dtype)

    def flops(self, node, graph):
        return 0


# --- view changes -----------------------------------------------------------------------------
class View(Op):
    """y = the bytes of x under a new shape (``dims`` from the shape and compile-time inputs)."""
    def dims(self, node, shape: tuple, args: list, fail) -> tuple:
        raise NotImplementedError

    def infer(self, ctx: InferContext):
        x = ctx.types[0]
        runtime = [i for i in range(1, len(ctx.types)) if ctx.runtime(i)]
        if runtime:                       # read at run time: the declared shape, checked
            shape = ctx.declared(0, runtime[0], self.arg_names[runtime[0] - 1])
        else:
            args = [ctx.known(i) for i in range(1, len(ctx.types))]
            shape = self.dims(ctx.node, x.shape, args, ctx.fail)
        size = int(np.prod(shape, dtype=np.int64))
        if size != x.size:
            raise ctx.fail(f"cannot view {x} ({x.size} elements) as {list(shape)} "
                           f"({size} elements)")
        return [TensorType(x.dtype, tuple(shape))]

    arg_names = ("shape",)

    def reference(self, node, x, *args):
        shape = self.dims(node, x.shape, list(args), ValueError)
        return [keep_splat(x, x.reshape(shape))]

    def lower(self, node, ctx):
        x, y = node.inputs[0], node.outputs[0]
        self.check(node, ctx)
        if ctx.type(y).nbytes:
            ctx.emit(f"memcpy({ctx.ptr(y)}, {ctx.ptr(x)}, {ctx.type(y).nbytes});")

    def runtime_arg(self, node, ctx) -> str | None:
        """The name of the shape-deciding input when it is only known at run time."""
        name = node.inputs[1] if len(node.inputs) > 1 else ""
        return name if name and ctx.known(name) is None else None

    def flops(self, node, graph):
        return 0


@register("Reshape", since=1)
class Reshape(View):
    """y = x with the dimensions ``shape``: 0 copies the input dimension (unless allowzero),
    -1 takes what is left."""
    def canonicalize(self, node, version, graph):
        if version >= 5:
            return [node]
        shape = _attr_to_input(node, graph, "shape", "shape")
        return [node.replace(inputs=(node.inputs[0], shape), attrs={})]

    def dims(self, node, shape, args, fail):
        spec = [int(d) for d in np.asarray(args[0]).reshape(-1)]
        allowzero = int(node.attr("allowzero", 0))
        out = []
        for k, d in enumerate(spec):
            if d == 0 and not allowzero:
                if k >= len(shape):
                    raise fail(f"shape {spec}: 0 at position {k} has no input dimension to copy")
                d = shape[k]
            out.append(d)
        if out.count(-1) > 1 or any(d < -1 for d in out):
            raise fail(f"shape {spec}: at most one -1 and no other negative dimension")
        if -1 in out:
            known_size = int(np.prod([d for d in out if d != -1], dtype=np.int64))
            total = int(np.prod(shape, dtype=np.int64))
            if known_size == 0 or total % known_size:
                raise fail(f"shape {spec}: cannot infer -1 for an input of shape {list(shape)}")
            out[out.index(-1)] = total // known_size
        return tuple(out)

    def check(self, node, ctx):
        spec = self.runtime_arg(node, ctx)
        if spec is None:
            return
        x, y = ctx.shape(node.inputs[0]), ctx.shape(node.outputs[0])
        ctx.check(f"nn_reshape_is({ctx.ptr(spec)}, {len(y)}, {ctx.table('int64_t', x, 'dims')}, "
                  f"{len(x)}, {int(node.attr('allowzero', 0))}, "
                  f"{ctx.table('int64_t', y, 'dims')})",
                  f"run-time shape gives the declared {list(y)}")


@register("Flatten", since=1)
class Flatten(View):
    """y = x as a matrix: dims before ``axis`` make the rows, the rest the columns."""
    def dims(self, node, shape, args, fail):
        rank = len(shape)
        axis = int(node.attr("axis", 1))
        if not -rank <= axis <= rank:
            raise fail(f"axis {axis} out of range for rank {rank}")
        axis = axis + rank if axis < 0 else axis
        return (int(np.prod(shape[:axis], dtype=np.int64)),
                int(np.prod(shape[axis:], dtype=np.int64)))


def _axes(node, args, fail, rank) -> list | None:
    """The ``axes`` input, normalized against ``rank``; None when absent."""
    if not args or args[0] is None:
        return None
    axes = [int(a) for a in np.asarray(args[0]).reshape(-1)]
    if any(not -rank <= a < rank for a in axes):
        raise fail(f"axes {axes} out of range for rank {rank}")
    axes = sorted(a % rank for a in axes)
    if len(set(axes)) != len(axes):
        raise fail(f"axes {axes} repeat an axis")
    return axes


class AxesView(View):
    """Squeeze / Unsqueeze: ``axes`` is an input from opset 13, an attribute before."""
    arg_names = ("axes",)

    def canonicalize(self, node, version, graph):
        if version >= 13 or "axes" not in node.attrs:
            return [node]
        axes = _attr_to_input(node, graph, "axes", "axes")
        return [node.replace(inputs=(node.inputs[0], axes), attrs={})]

    def check(self, node, ctx):
        axes = self.runtime_arg(node, ctx)
        if axes is None:
            return
        x, y = ctx.shape(node.inputs[0]), ctx.shape(node.outputs[0])
        n = ctx.type(axes).size
        dims, want = ctx.table("int64_t", x, "dims"), ctx.table("int64_t", y, "dims")
        if node.op == "Squeeze":     # the axes must have size 1, and dropping them gives y
            ones = sum(1 << a for a, d in enumerate(x) if d != 1)
            ok = (f"nn_axes_mask({ctx.ptr(axes)}, {n}, {len(x)}, &mask) && "
                  f"(mask & 0x{ones:x}u) == 0 && "
                  f"nn_reduced_shape_is({dims}, {len(x)}, mask, 0, {want}, {len(y)})")
        else:
            ok = (f"nn_axes_mask({ctx.ptr(axes)}, {n}, {len(y)}, &mask) && "
                  f"nn_unsqueezed_shape_is({dims}, {len(x)}, mask, {n}, {want})")
        ctx.emit("{\n    uint64_t mask;\n    "
                 + ctx.check_statement(ok, f"run-time axes give the declared {list(y)}")
                 + "\n}")


@register("Squeeze", since=1)
class Squeeze(AxesView):
    """y = x without the size-1 dimensions ``axes`` (all size-1 dimensions by default)."""
    def dims(self, node, shape, args, fail):
        axes = _axes(node, args, fail, len(shape))
        if axes is None:
            return tuple(d for d in shape if d != 1)
        for a in axes:
            if shape[a] != 1:
                raise fail(f"cannot squeeze axis {a} of size {shape[a]}")
        return tuple(d for k, d in enumerate(shape) if k not in axes)


@register("Unsqueeze", since=1)
class Unsqueeze(AxesView):
    """y = x with size-1 dimensions inserted at ``axes`` (positions in the output)."""
    def dims(self, node, shape, args, fail):
        if not args or args[0] is None:
            raise fail("axes is required")
        axes = _axes(node, args, fail, len(shape) + len(np.asarray(args[0]).reshape(-1)))
        out, rest = [], iter(shape)
        for k in range(len(shape) + len(axes)):
            out.append(1 if k in axes else next(rest))
        return tuple(out)
