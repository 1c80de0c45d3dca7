"""Optimizer steps of domain ai.onnx.preview.training: Adagrad, Adam and Momentum (standard and
Nesterov). Each takes a learning rate R and a step count T (scalars, run-time values) and any
number of tensor groups (X, G, state...), and returns the updated tensors, group by group.

Each group is one loop over its elements, written into the network source; the arithmetic is
in double and stored in the tensors' type (float32 or float64).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..codegen.loops import c_literal
from .registry import Op, register

DOMAIN = "ai.onnx.preview.training"
_F64 = dtypes.BY_SHORT["f64"]


def _d(value: float) -> str:
    """A double C literal."""
    return c_literal(float(value), _F64)


class Optimizer(Op):
    """Inputs R, T, then ``len(state) + 2`` lists of n tensors (X, G, state...); outputs the
    new X and the new state, each as a list of n."""
    state = ()               # names of the per-tensor state inputs after X and G

    def groups(self, node) -> int:
        per = 2 + len(self.state)
        n, rest = divmod(len(node.inputs) - 2, per)
        if rest or n < 1:
            from ..errors import ModelError
            raise ModelError(f"node {node.label} ({node.op}): {len(node.inputs)} inputs; "
                             f"expected R, T and {per} lists of the same length")
        return n

    def infer(self, ctx):
        n = self.groups(ctx.node)
        r, t = ctx.types[0], ctx.types[1]
        if t.dtype != dtypes.INT64 or r.size != 1 or t.size != 1:
            raise ctx.fail(f"R {r} and T {t} must be one-element tensors, T of type i64")
        lists = [ctx.types[2 + k * n: 2 + (k + 1) * n] for k in range(2 + len(self.state))]
        for i in range(n):
            x = lists[0][i]
            if x.dtype not in (dtypes.FLOAT32, _F64):
                raise ctx.fail(f"element type {x.dtype} is not supported (supported: f32, f64)")
            if any(lst[i] != x for lst in lists):
                raise ctx.fail(f"group {i}: {', '.join(str(lst[i]) for lst in lists)} must "
                               f"share one type and shape")
        return [lists[0][i] for i in range(n)] + [lst[i] for lst in lists[2:] for i in range(n)]

    def step(self, node, r, t, x, g, *state) -> tuple:
        """numpy: the new (x, *state) of one group, in float64."""
        raise NotImplementedError

    def reference(self, node, r, t, *tensors):
        n = self.groups(node)
        lists = [tensors[k * n:(k + 1) * n] for k in range(2 + len(self.state))]
        r = float(np.asarray(r).reshape(-1)[0])
        t = int(np.asarray(t).reshape(-1)[0])
        results = [self.step(node, r, t, *(np.asarray(lst[i], np.float64) for lst in lists))
                   for i in range(n)]
        return [results[i][k].astype(lists[0][i].dtype) for k in range(1 + len(self.state))
                for i in range(n)]

    def c_step(self, node) -> tuple:
        """(scalar prelude lines using r and t, element lines reading x, g, state loads and
        assigning the double results ``x_new`` and one per state)."""
        raise NotImplementedError

    def lower(self, node, ctx):
        n = self.groups(node)
        per = 2 + len(self.state)
        prelude, body = self.c_step(node)
        lines = [f"const double r = (double){ctx.ptr(node.inputs[0])}[0];",
                 f"const int64_t t = {ctx.ptr(node.inputs[1])}[0];"] + prelude
        names = ["x", "g"] + list(self.state)
        for i in range(n):
            x = node.inputs[2 + i]
            size, ctype = ctx.type(x).size, ctx.ctype(x)
            if size == 0:
                continue
            group = [f"const {ctype} *{name}_in = {ctx.ptr(node.inputs[2 + k * n + i])};"
                     for k, name in enumerate(names)]
            outs = [node.outputs[k * n + i] if k * n + i < len(node.outputs) else ""
                    for k in range(per - 1)]
            group += [f"{ctype} *{name}_out = {ctx.ptr(o)};"
                      for name, o in zip(["x"] + list(self.state), outs) if o]
            loop = [f"const double {name} = (double){name}_in[i];" for name in names] + body
            loop += [f"{name}_out[i] = ({ctype}){name}_new;"
                     for name, o in zip(["x"] + list(self.state), outs) if o]
            group += [f"for (size_t i = 0; i < {size}; ++i) {{"] + ["    " + s for s in loop] + ["}"]
            lines.append("{\n" + "\n".join("    " + s for s in group) + "\n}")
        ctx.emit("{\n" + "\n".join("    " + s for s in "\n".join(lines).split("\n")) + "\n}")


@register("Adagrad", since=1, domain=DOMAIN)
class Adagrad(Optimizer):
    """g' = norm * x + g; h_new = h + g'^2; x_new = x - r / (1 + t * decay) * g' / (sqrt(h_new)
    + epsilon)"""
    state = ("h",)

    def step(self, node, r, t, x, g, h):
        rate = r / (1 + t * node.attr("decay_factor", 0.0))
        gr = node.attr("norm_coefficient", 0.0) * x + g
        h_new = h + gr * gr
        return x - rate * gr / (np.sqrt(h_new) + node.attr("epsilon", 0.0)), h_new

    def c_step(self, node):
        return ([f"const double rate = r / (1.0 + (double)t * {_d(node.attr('decay_factor', 0.0))});"],
                [f"const double gr = {_d(node.attr('norm_coefficient', 0.0))} * x + g;",
                 "const double h_new = h + gr * gr;",
                 f"const double x_new = x - rate * gr / (sqrt(h_new) + "
                 f"{_d(node.attr('epsilon', 0.0))});"])


@register("Adam", since=1, domain=DOMAIN)
class Adam(Optimizer):
    """g' = norm * x + g; v_new = alpha v + (1 - alpha) g'; h_new = beta h + (1 - beta) g'^2;
    x_new = (1 - norm_post) (x - r' v_new / (sqrt(h_new) + epsilon)), r' bias-corrected when
    t > 0"""
    state = ("v", "h")

    def _attrs(self, node):
        return (node.attr("alpha", 0.9), node.attr("beta", 0.999), node.attr("epsilon", 0.0),
                node.attr("norm_coefficient", 0.0), node.attr("norm_coefficient_post", 0.0))

    def step(self, node, r, t, x, g, v, h):
        alpha, beta, eps, norm, post = self._attrs(node)
        gr = norm * x + g
        v_new = alpha * v + (1 - alpha) * gr
        h_new = beta * h + (1 - beta) * gr * gr
        rate = r * np.sqrt(1 - beta ** t) / (1 - alpha ** t) if t > 0 else r
        return (1 - post) * (x - rate * v_new / (np.sqrt(h_new) + eps)), v_new, h_new

    def c_step(self, node):
        alpha, beta, eps, norm, post = (_d(v) for v in self._attrs(node))
        return ([f"const double rate = t > 0 ? r * sqrt(1.0 - pow({beta}, (double)t)) / "
                 f"(1.0 - pow({alpha}, (double)t)) : r;"],
                [f"const double gr = {norm} * x + g;",
                 f"const double v_new = {alpha} * v + (1.0 - {alpha}) * gr;",
                 f"const double h_new = {beta} * h + (1.0 - {beta}) * gr * gr;",
                 f"const double x_new = (1.0 - {post}) * (x - rate * v_new / (sqrt(h_new) + "
                 f"{eps}));"])


@register("Momentum", since=1, domain=DOMAIN)
class Momentum(Optimizer):
    """g' = norm * x + g; v_new = alpha v + beta' g' (beta' = 1 at t = 0); x_new = x - r v_new
    (standard) or x - r (g' + alpha v_new) (nesterov)"""
    state = ("v",)

    def infer(self, ctx):
        if ctx.node.attr("mode", "standard") not in ("standard", "nesterov"):
            raise ctx.fail(f"mode {ctx.node.attr('mode')!r} is not supported (supported: "
                           f"standard, nesterov)")
        return super().infer(ctx)

    def step(self, node, r, t, x, g, v):
        alpha, beta = node.attr("alpha", 0.0), node.attr("beta", 0.0)
        gr = node.attr("norm_coefficient", 0.0) * x + g
        v_new = alpha * v + (beta if t > 0 else 1.0) * gr
        if node.attr("mode", "standard") == "nesterov":
            return x - r * (gr + alpha * v_new), v_new
        return x - r * v_new, v_new

    def c_step(self, node):
        alpha, beta = _d(node.attr("alpha", 0.0)), _d(node.attr("beta", 0.0))
        step = "gr + " + alpha + " * v_new" if node.attr("mode", "standard") == "nesterov" \
            else "v_new"
        return ([f"const double beta_t = t > 0 ? {beta} : 1.0;"],
                [f"const double gr = {_d(node.attr('norm_coefficient', 0.0))} * x + g;",
                 f"const double v_new = {alpha} * v + beta_t * gr;",
                 f"const double x_new = x - r * ({step});"])
