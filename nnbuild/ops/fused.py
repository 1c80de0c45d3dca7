"""Fused ops, made by the fusion passes (domain ``nnbuild``; never in an ONNX file).

A fused node carries a *body*: the elementwise ops it absorbed, one step per op, in the order
they ran, each spelled like a call in the text IR:

    body=["Mul($0, $1)", "Add(#0, $2)", "Relu(#1)"]
    epilogue=["Add(acc, $3)", "Clip(#0, $4, $5)"]

``$k`` is input k of the fused node, ``#k`` the result of step k, ``acc`` the result of the
matrix product an epilogue follows, ``_`` an omitted optional input; an op's attributes follow
as JSON (``LeakyRelu(#0) {"alpha": 0.1}``). The result is the last step's. Every step computes
on one element, so a body becomes one loop nest (``codegen.loops.broadcast_loop``) whose
statements are the absorbed ops' own C expressions composed through named temporaries:

- ``nnbuild::Elementwise(inputs...) {body}``: a chain of elementwise / broadcasting ops;
- ``nnbuild::FusedConv`` / ``FusedGemm`` / ``FusedMatMul(base inputs..., extra inputs...)
  {the base op's attributes, epilogue}``: the product, then the epilogue applied in place on
  its output right after it is written (bias, activation, residual Add), so the intermediate
  never takes arena space of its own and is read while still in cache.

The results are bit-identical to running the absorbed ops one by one: the same expressions in
the same order, in the same element type.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from ..codegen.loops import broadcast_loop, c_literal, compute_ctype
from ..codegen.names import c_comment
from ..ir.graph import Node
from . import registry
from .elementwise import Broadcasting, Unary, _operand
from .registry import InferContext, Op, register

DOMAIN = "nnbuild"
FUSABLE_DTYPES = ("f32", "f64")
# Broadcasting ops a body may hold (comparisons and logic produce bool and stay unfused).
FUSABLE_NARY = ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu")
MAX_TENSORS = 8        # operands one loop nest reads (codegen.loops.OPERAND_NAMES)

_STEP = re.compile(r"\s*([A-Za-z0-9_]+)\((.*?)\)\s*(\{.*\})?\s*\Z")


@dataclass(frozen=True)
class Step:
    op: str
    args: tuple          # "$k", "#k", "acc" or "_"
    attrs: dict

    @staticmethod
    def parse(text: str) -> "Step":
        match = _STEP.match(text)
        if not match:
            raise ValueError(f"fused body: bad step {text!r}")
        op, args, attrs = match.groups()
        return Step(op, tuple(a.strip() for a in args.split(",") if a.strip()),
                    json.loads(attrs) if attrs else {})

    def text(self) -> str:
        attrs = f" {json.dumps(self.attrs, sort_keys=True)}" if self.attrs else ""
        return f"{self.op}({', '.join(self.args)}){attrs}"

    def node(self) -> Node:
        """The absorbed op as a node (for its reference and C expression)."""
        return Node(self.op, tuple("" if a == "_" else a for a in self.args), ("y",),
                    dict(self.attrs))


def step_text(node: Node, args: list) -> str:
    """The body step for ``node`` reading ``args``."""
    attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in node.attrs.items()}
    return Step(node.op, tuple(args), attrs).text()


def fusable(graph, node: Node) -> bool:
    """Can ``node`` be a body step? One output of the input's float type, an elementwise op,
    Clip only with compile-time bounds."""
    if node.domain or len([o for o in node.outputs if o]) != 1 or not node.outputs[0]:
        return False
    op = registry.lookup(node.op)
    if node.op == "Clip":
        if any(b and not graph.is_constant(b) for b in node.inputs[1:]):
            return False
    elif node.op in ("Identity", "Not") or not (
            isinstance(op, Unary) or (isinstance(op, Broadcasting) and node.op in FUSABLE_NARY)):
        return False
    dtype = graph.types[node.outputs[0]].dtype
    return dtype.short in FUSABLE_DTYPES and all(
        graph.types[i].dtype == dtype for i in node.inputs if i)


# --- evaluation ---------------------------------------------------------------------------------
def run_body(steps: list, inputs: list, acc=None) -> np.ndarray:
    """numpy: the body over the fused node's input arrays (and the product's result ``acc``)."""
    results: list = []

    def value(arg):
        if arg == "acc":
            return acc
        if arg == "_":
            return None
        return results[int(arg[1:])] if arg[0] == "#" else inputs[int(arg[1:])]
    for text in steps:
        step = Step.parse(text)
        out = registry.lookup(step.op).reference(step.node(), *[value(a) for a in step.args])
        results.append(np.asarray(out[0]))
    return results[-1]


def _clip_expr(args: list, dtype) -> str:
    """Clip's bounds as selects (float: nn_vm_select, which keeps the loop vectorisable)."""
    float_ = compute_ctype(dtype) == "float"

    def select(cond, a, b):
        return f"nn_vm_select({cond}, {a}, {b})" if float_ else f"({cond} ? {a} : {b})"
    e = args[0]
    if args[1:2] and args[1] is not None:
        e = select(f"{e} < {args[1]}", args[1], e)
    if args[2:3] and args[2] is not None:
        e = select(f"{e} > {args[2]}", args[2], e)
    return e


def body_expr(steps: list, dtype, value_of) -> tuple:
    """(statements, expression): one ``const <type> tK = ...;`` per step but the last, whose
    expression is the element's value. ``value_of(arg)`` gives the C text of ``$k`` / ``acc``."""
    ctype = compute_ctype(dtype)
    statements, names = [], []
    expr = ""
    for k, text in enumerate(steps):
        step = Step.parse(text)
        args = [None if a == "_" else names[int(a[1:])] if a[0] == "#" else value_of(a)
                for a in step.args]
        op = registry.lookup(step.op)
        if step.op == "Clip":
            expr = _clip_expr(args, dtype)
        elif isinstance(op, Unary):
            expr = op.c_expr(step.node(), args[0], dtype)
        else:
            expr = op.c_expr(step.node(), [a for a in args if a is not None], dtype)
        if k < len(steps) - 1:
            names.append(f"t{k}")
            statements.append(f"const {ctype} t{k} = {expr};")
    return statements, expr


def _loads(node: Node, ctx, names: list) -> list:
    return [_operand(ctx, n) for n in names]


# --- nnbuild::Elementwise -----------------------------------------------------------------------
@register("Elementwise", since=1, domain=DOMAIN)
class Elementwise(Op):
    """y = body(inputs...): a chain of elementwise ops as one loop nest."""
    def infer(self, ctx: InferContext) -> list:
        from ..codegen.loops import broadcast_shape
        from ..ir.graph import TensorType
        shapes = [t.shape for t in ctx.types if t is not None]
        return [TensorType(ctx.types[0].dtype, broadcast_shape(shapes, ctx.node))]

    def reference(self, node, *inputs):
        out = run_body(node.attr("body"), list(inputs))
        return [np.broadcast_to(out, np.broadcast_shapes(*[i.shape for i in inputs]))
                .astype(inputs[0].dtype)]

    def flops(self, node, graph):
        return len(node.attr("body")) * graph.types[node.outputs[0]].size

    def lower(self, node, ctx):
        dtype = ctx.type(node.outputs[0]).dtype
        steps = node.attr("body")
        broadcast_loop(ctx, node.outputs[0], _loads(node, ctx, list(node.inputs)),
                       lambda v: body_expr(steps, dtype, lambda a: v[int(a[1:])]))


# --- products with an epilogue ------------------------------------------------------------------
class WithEpilogue(Op):
    """y = epilogue(base(inputs[:n]), inputs[n:]): a product and the elementwise ops after it."""
    base_op = ""
    base_inputs = 0

    def base(self, node: Node) -> Node:
        inputs = list(node.inputs[:self.base_inputs])
        while inputs and not inputs[-1]:
            inputs.pop()
        attrs = {k: v for k, v in node.attrs.items() if k != "epilogue"}
        return Node(self.base_op, tuple(inputs), node.outputs, attrs, node.sources)

    def infer(self, ctx: InferContext) -> list:
        base = self.base(ctx.node)
        n = len(base.inputs)
        sub = InferContext(ctx.graph, base, ctx.types[:n], ctx.values[:n])
        return registry.lookup(self.base_op).infer(sub)

    def reference(self, node, *inputs):
        base = self.base(node)
        acc = registry.lookup(self.base_op).reference(base, *inputs[:len(base.inputs)])[0]
        out = run_body(node.attr("epilogue"), list(inputs), acc)
        return [np.asarray(out).astype(acc.dtype)]

    def flops(self, node, graph):
        base = registry.lookup(self.base_op).flops(self.base(node), graph)
        return base + len(node.attr("epilogue")) * graph.types[node.outputs[0]].size

    def scratch_bytes(self, node, graph):
        return registry.lookup(self.base_op).scratch_bytes(self.base(node), graph)

    def lower(self, node, ctx):
        y = node.outputs[0]
        steps = node.attr("epilogue")
        in_stores = conv_epilogue(node, self.base(node), ctx) if self.base_op == "Conv" else ""
        if in_stores:
            ctx.emit(f"/* {c_comment(f'epilogue in the stores of {y}: ' + '; '.join(steps))} */")
            registry.lookup(self.base_op).lower(self.base(node), ctx, epilogue=in_stores)
            return
        registry.lookup(self.base_op).lower(self.base(node), ctx)
        read = sorted({int(a[1:]) for s in steps for a in Step.parse(s).args if a[0] == "$"})
        dtype = ctx.type(y).dtype
        ctx.emit(f"/* {c_comment(f'epilogue on {y}, in place: ' + '; '.join(steps))} */")

        def value_of(v):
            return lambda a: v[0] if a == "acc" else v[1 + read.index(int(a[1:]))]
        broadcast_loop(ctx, y, [y] + _loads(node, ctx, [node.inputs[k] for k in read]),
                       lambda v: body_expr(steps, dtype, value_of(v)))


def conv_epilogue(node: Node, base: Node, ctx) -> str:
    """FusedConv: the ``nn_conv_epilogue`` initializer (hal conv.h) when the epilogue is one the
    conv kernels apply as they store, else "": an optional ``Add(acc, $k)`` of a float32
    tensor of the output's shape, then an optional ``Relu`` or ``Clip`` with constant bounds
    (at least one step). The kernels compute the same float operations in the same order."""
    if not registry.lookup("Conv").takes_epilogue(base, ctx.graph):
        return ""
    steps = [Step.parse(t) for t in node.attr("epilogue")]
    y = ctx.type(node.outputs[0])
    residual, flags, bounds, last = "NULL", [], ["0.0f", "0.0f"], "acc"
    if steps and steps[0].op == "Add" and len(steps[0].args) == 2 and "acc" in steps[0].args:
        other = [a for a in steps[0].args if a != "acc"]
        if len(other) != 1 or other[0][0] != "$":
            return ""
        name = node.inputs[int(other[0][1:])]
        if ctx.type(name).dtype != y.dtype or tuple(ctx.type(name).shape) != tuple(y.shape):
            return ""
        residual, last, steps = ctx.ptr(name), "#0", steps[1:]
    if steps and steps[0].args[:1] == (last,) and not steps[0].attrs:
        step = steps[0]
        if step.op == "Relu" and len(step.args) == 1:
            flags.append("NN_CONV_RELU")
        elif step.op == "Clip":
            for i, (flag, arg) in enumerate(zip(("NN_CONV_MIN", "NN_CONV_MAX"), step.args[1:])):
                if arg == "_":
                    continue
                value = ctx.graph.constants.get(node.inputs[int(arg[1:])]) if arg[0] == "$" \
                    else None
                if value is None or value.size != 1:
                    return ""
                flags.append(flag)
                bounds[i] = c_literal(value.reshape(-1)[0], y.dtype)
        else:
            return ""
        steps = steps[1:]
    if steps or (residual == "NULL" and not flags):
        return ""
    return f"{{{residual}, {' | '.join(flags) or '0'}, {bounds[0]}, {bounds[1]}}}"


def _with_epilogue(op: str, base_inputs: int):
    @register(f"Fused{op}", since=1, domain=DOMAIN)
    class _Op(WithEpilogue):
        __doc__ = f"y = epilogue({op}(inputs[:{base_inputs}]), inputs[{base_inputs}:])"
    _Op.base_op, _Op.base_inputs = op, base_inputs
    _Op.__name__ = f"Fused{op}"
    return _Op


FUSED_PRODUCTS = {"Conv": 3, "Gemm": 3, "MatMul": 2}
for _op, _n in FUSED_PRODUCTS.items():
    _with_epilogue(_op, _n)
