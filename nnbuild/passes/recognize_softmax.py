"""recognize-softmax: the elementwise spellings of softmax become one Softmax op.

    e = Exp(x); s = ReduceSum(e, axis a); y = Div(e, s)               =>  Softmax(x) {axis=a}
    m = ReduceMax(x, a); z = Sub(x, m); e = Exp(z); ... y = Div(e, s) =>  Softmax(x) {axis=a}

The reductions keep their dims and run over one axis; the exponential has exactly the two
readers, every other intermediate one, and none is a graph output. Softmax subtracts the maximum
itself, so both forms compute the same function (the first without overflow for large x).
"""
from __future__ import annotations

from ..ir.graph import Graph, Node
from .manager import Rule, rewrite_pass
from .matching import Match


def _one_axis(m: Match, node: Node) -> int | None:
    axes = m.reduced_axes(node)
    return axes[0] if axes is not None and len(axes) == 1 else None


def _softmax(graph: Graph, exp: Node):
    # e = Exp(x); s = ReduceSum(e, a); y = Div(e, s)  =>  y = Softmax(x) {axis=a}
    m = Match(graph)
    e = exp.outputs[0]
    users = m.readers(e)
    if len(users) != 2 or graph.types[e].dtype.short not in ("f32", "f64"):
        return None
    total = next((u for u in users if u.op == "ReduceSum" and u.inputs[0] == e), None)
    div = m.reader(total.outputs[0], "Div") if total is not None else None
    if div is None or div not in users or div.inputs != (e, total.outputs[0]):
        return None
    axis = _one_axis(m, total)
    if axis is None:
        return None
    m.take(exp), m.take(total)
    x = exp.inputs[0]
    sub = m.producer(x, "Sub")                  # the max-subtracted form
    top = m.producer(sub.inputs[1], "ReduceMax") if sub is not None else None
    if top is not None and top.inputs[0] == sub.inputs[0] and _one_axis(m, top) == axis:
        x = sub.inputs[0]
    else:
        m.nodes = [n for n in m.nodes if n is not sub and n is not top]
    softmax = Node("Softmax", (x,), div.outputs, {"axis": axis}, m.sources())
    return m.replace(exp, softmax)


recognize_softmax = rewrite_pass("recognize-softmax", "Exp/ReduceSum/Div (max-subtracted or "
                                 "not) becomes Softmax", [Rule("Exp", _softmax)])
