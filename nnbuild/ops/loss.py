"""Losses: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Scores are [N, C, d1, ...] (viewed as [N, C, D]), targets [N, d1, ...] with class indices.
Each target picks w = weight[t] (1 without weights; 0 where t == ignore_index) and the loss
-w * x[n, t, d]; ``reduction`` is none (per element), sum, or mean (sum / sum of w). Sums are
in double; SoftmaxCrossEntropyLoss first takes log_softmax over C into a double scratch buffer
(also its optional second output).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..ir.graph import TensorType
from .index import block, load, store
from .registry import Op, register

REDUCTIONS = ("none", "sum", "mean")


def _reduction(node) -> str:
    value = node.attr("reduction", "mean")
    return value.decode() if isinstance(value, bytes) else value


def nll_reference(x, target, weight, reduction: str, ignore_index):
    """numpy semantics, in double."""
    n, c = x.shape[:2]
    x3 = x.reshape(n, c, -1).astype(np.float64)
    t = target.reshape(n, -1).astype(np.int64)
    ignored = (t == ignore_index) if ignore_index is not None else np.zeros(t.shape, bool)
    safe = np.where(ignored, 0, t)
    w = np.ones(t.shape) if weight is None else weight.astype(np.float64)[safe]
    w = np.where(ignored, 0.0, w)
    picked = np.take_along_axis(x3, safe[:, None, :], axis=1)[:, 0, :]
    loss = -picked * w
    if reduction == "none":
        return loss.reshape(target.shape).astype(x.dtype)
    if reduction == "sum":
        return np.array(loss.sum(), x.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.array(loss.sum() / w.sum(), x.dtype)


class Loss(Op):
    def check(self, ctx):
        reduction = _reduction(ctx.node)
        if reduction not in REDUCTIONS:
            raise ctx.fail(f"reduction {reduction!r}; supported: {', '.join(REDUCTIONS)}")
        x, t = ctx.types[0], ctx.types[1]
        if x.rank < 2 or t.shape != (x.shape[0],) + x.shape[2:]:
            raise ctx.fail(f"scores {x} and targets {t} do not match ([N, C, ...] and [N, ...])")
        if not x.dtype.is_float:
            raise ctx.fail(f"element type {x.dtype}; supported: f16, bf16, f32, f64")
        return x, t

    def loss_type(self, ctx) -> TensorType:
        x, t = self.check(ctx)
        shape = t.shape if _reduction(ctx.node) == "none" else ()
        return TensorType(x.dtype, shape)

    def nll_c(self, ctx, node, logp: str, logp_is_double: bool) -> list:
        """C lines: the loss output from log-probabilities at ``logp`` ([N, C, D])."""
        x = ctx.type(node.inputs[0])
        n, c = x.shape[:2]
        d = int(np.prod(x.shape[2:], dtype=np.int64))
        target, y = node.inputs[1], node.outputs[0]
        weight = node.inputs[2] if len(node.inputs) > 2 else ""
        dtype, reduction = x.dtype, _reduction(node)
        ignore = node.attr("ignore_index")
        pick = f"{logp}[(i * {c} + (size_t)t) * {d} + j]"
        if not logp_is_double:
            pick = f"(double){load(ctx, dtype, pick)}"
        w = f"(double){load(ctx, ctx.type(weight).dtype, f'{ctx.ptr(weight)}[t]')}" \
            if weight else "1.0"
        skip = f"t == {ignore}" if ignore is not None else "0"
        lines = [f"const {ctx.ctype(target)} *target = {ctx.ptr(target)};",
                 f"{dtype.ctype} *y = {ctx.ptr(y)};",
                 "double total = 0, weights = 0;",
                 f"for (size_t i = 0; i < {n}; ++i)",
                 f"    for (size_t j = 0; j < {d}; ++j) {{",
                 f"        const int64_t t = (int64_t)target[i * {d} + j];",
                 f"        const double w = {skip} ? 0.0 : {w};",
                 f"        const double loss = w == 0.0 ? 0.0 : -w * {pick};"]
        if reduction == "none":
            lines.append(f"        y[i * {d} + j] = {store(ctx, dtype, f'({dtype_compute(dtype)})loss')};")
        lines += ["        total += loss;", "        weights += w;", "    }"]
        if reduction == "sum":
            lines.append(f"y[0] = {store(ctx, dtype, f'({dtype_compute(dtype)})total')};")
        elif reduction == "mean":
            lines.append(f"y[0] = {store(ctx, dtype, f'({dtype_compute(dtype)})(total / weights)')};")
        if reduction == "none":
            lines += ["(void)total;", "(void)weights;"]
        elif reduction == "sum":
            lines.append("(void)weights;")
        return lines


def dtype_compute(dtype) -> str:
    return "double" if dtype.short == "f64" else "float"


@register("NegativeLogLikelihoodLoss", since=12)
class NegativeLogLikelihoodLoss(Loss):
    """loss = -weight[t] * x[n, t, d], reduced by ``reduction``"""
    def infer(self, ctx):
        return [self.loss_type(ctx)]

    def reference(self, node, x, target, weight=None):
        return [nll_reference(x, target, weight, _reduction(node), node.attr("ignore_index"))]

    def lower(self, node, ctx):
        ctx.emit(block(self.nll_c(ctx, node, ctx.ptr(node.inputs[0]), False)))


@register("SoftmaxCrossEntropyLoss", since=12)
class SoftmaxCrossEntropyLoss(Loss):
    """loss = NegativeLogLikelihoodLoss(log_softmax(scores, axis=1), labels, weights);
    the optional second output is the log_softmax"""
    def infer(self, ctx):
        x = ctx.types[0]
        return [self.loss_type(ctx), x]

    def reference(self, node, x, target, weight=None):
        wide = x.astype(np.float64)
        top = wide.max(axis=1, keepdims=True)
        logp = wide - top - np.log(np.exp(wide - top).sum(axis=1, keepdims=True))
        loss = nll_reference(logp, target, weight, _reduction(node), node.attr("ignore_index"))
        return [loss.astype(x.dtype), logp.astype(x.dtype)]

    def scratch_bytes(self, node, graph):
        return graph.types[node.inputs[0]].size * 8

    def lower(self, node, ctx):
        xname = node.inputs[0]
        x = ctx.type(xname)
        n, c = x.shape[:2]
        d = int(np.prod(x.shape[2:], dtype=np.int64))
        dtype = x.dtype
        logp = ctx.scratch("double")
        at = f"(i * {c} + k) * {d} + j"
        lines = [f"const {dtype.ctype} *x = {ctx.ptr(xname)};",
                 f"double *logp = {logp};",
                 f"for (size_t i = 0; i < {n}; ++i)",
                 f"    for (size_t j = 0; j < {d}; ++j) {{",
                 "        double top = -INFINITY, sum = 0;",
                 f"        for (size_t k = 0; k < {c}; ++k) {{",
                 f"            const double v = (double){load(ctx, dtype, f'x[{at}]')};",
                 "            top = v > top ? v : top;",
                 "        }",
                 f"        for (size_t k = 0; k < {c}; ++k)",
                 f"            sum += exp((double){load(ctx, dtype, f'x[{at}]')} - top);",
                 "        const double shift = top + log(sum);",
                 f"        for (size_t k = 0; k < {c}; ++k)",
                 f"            logp[{at}] = (double){load(ctx, dtype, f'x[{at}]')} - shift;",
                 "    }"]
        if len(node.outputs) > 1 and node.outputs[1]:
            out = ctx.ptr(node.outputs[1])
            value = store(ctx, dtype, f"({dtype_compute(dtype)})logp[e]")
            lines += [f"for (size_t e = 0; e < {x.size}; ++e)",
                      f"    {out}[e] = {value};"]
        ctx.emit(block(lines))
        ctx.emit(block(self.nll_c(ctx, node, "logp_in", True)).replace(
            "{\n", f"{{\n    const double *logp_in = {logp};\n", 1))
