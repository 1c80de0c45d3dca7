"""MaxUnpool (opsets 9-22): the inverse of MaxPool with Indices.

The indices are flat positions in the *inferred* output, [N, C, (in - 1) * stride - pads +
kernel ...]; each value is written at that position's coordinates and the rest is zero. An
``output_shape`` input larger than the inferred shape pads each dim at its end (the ONNX
reference's reading, which the official cases expect). A constant output_shape gives the shape;
a run-time one needs the model's declared output shape and is checked against it when the model
runs. An index outside the inferred output ends the run with ``<P>_ERR_SHAPE``. A loop nest in
the network source.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir.graph import TensorType
from .index import block
from .registry import Op, attr_ints, register


def inferred_shape(node, x_shape) -> tuple:
    rank = len(x_shape) - 2
    kernel = attr_ints(node, "kernel_shape") or []
    strides = attr_ints(node, "strides") or [1] * rank
    pads = attr_ints(node, "pads") or [0] * (2 * rank)
    if len(kernel) != rank or len(strides) != rank or len(pads) != 2 * rank:
        raise ValueError(f"kernel_shape {kernel}, strides {strides} and pads {pads} must "
                         f"have {rank}, {rank} and {2 * rank} values")
    return tuple(x_shape[:2]) + tuple((x_shape[2 + d] - 1) * strides[d] - pads[d] -
                                      pads[rank + d] + kernel[d] for d in range(rank))


@register("MaxUnpool", since=9)
class MaxUnpool(Op):
    """y = zeros; y[coordinates of I[e] in the inferred shape] = x[e]"""

    def infer(self, ctx):
        x, i = ctx.types[0], ctx.types[1]
        if i.shape != x.shape or i.dtype != dtypes.INT64 or x.rank < 3:
            raise ctx.fail(f"input {x} and indices {i} must be [N, C, spatial...], i64 indices "
                           f"of the same shape")
        try:
            inferred = inferred_shape(ctx.node, x.shape)
        except ValueError as e:
            raise ctx.fail(str(e))
        if min(inferred) < 1:
            raise ctx.fail(f"the inferred output {list(inferred)} is empty")
        if not ctx.has(2):
            return [TensorType(x.dtype, inferred)]
        shape = ctx.known(2)
        shape = tuple(int(v) for v in shape) if shape is not None else \
            ctx.declared(0, 2, "output_shape")
        if len(shape) != x.rank or any(s < d for s, d in zip(shape, inferred)) or \
                tuple(shape[:2]) != x.shape[:2]:
            raise ctx.fail(f"output shape {list(shape)} must hold the inferred "
                           f"{list(inferred)}")
        return [TensorType(x.dtype, shape)]

    def reference(self, node, x, indices, output_shape=None):
        inferred = inferred_shape(node, x.shape)
        y = np.zeros(inferred, x.dtype).reshape(-1)
        y[indices.reshape(-1)] = x.reshape(-1)
        y = y.reshape(inferred)
        if output_shape is not None:
            y = np.pad(y, [(0, int(s) - d) for s, d in zip(output_shape, inferred)])
        return [y]

    def lower(self, node, ctx):
        x, indices, y = node.inputs[0], node.inputs[1], node.outputs[0]
        out = ctx.shape(y)
        inferred = inferred_shape(node, ctx.shape(x))
        total = int(np.prod(inferred))
        lines = []
        if len(node.inputs) > 2 and node.inputs[2] and ctx.known(node.inputs[2]) is None:
            lines.append(ctx.check_statement(
                f"nn_dims_equal({ctx.ptr(node.inputs[2])}, "
                f"{ctx.table('int64_t', out, 'unpool_shape')}, {len(out)})",
                f"run-time output_shape is the declared {list(out)}"))
        ct = ctx.ctype(y)
        lines += [f"const {ct} *x = {ctx.ptr(x)};", f"const int64_t *at = {ctx.ptr(indices)};",
                  f"{ct} *y = {ctx.ptr(y)};",
                  f"memset(y, 0, {ctx.type(y).size} * sizeof(*y));",
                  f"for (size_t e = 0; e < {ctx.type(x).size}; ++e) {{",
                  f"    if (at[e] < 0 || at[e] >= {total}) {ctx.shape_error}   "
                  f"/* an index outside the inferred output */",
                  "    size_t rest = (size_t)at[e], to = 0, stride = 1;"]
        if tuple(out) == tuple(inferred):
            lines[-1] = "    const size_t to = (size_t)at[e];"
        else:     # the coordinates in the inferred shape, placed in the (larger) output
            for d in reversed(range(len(out))):
                lines += [f"    to += rest % {inferred[d]} * stride;",
                          f"    rest /= {inferred[d]};", f"    stride *= {out[d]};"]
            lines.append("    (void)rest;")
        lines += ["    y[to] = x[e];", "}"]
        ctx.emit(block(lines))
