"""What the fusion passes share: growing a chain of elementwise ops forward from a value.

A chain absorbs the sole reader of the current value while that reader is an elementwise op
(``ops.fused.fusable``) producing a value of the same type (so nothing is recomputed per
element of a broadcast) and the current value is not a graph output. The other inputs of each
absorbed op become inputs of the fused node.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.graph import Graph, Node
from ..ops.fused import MAX_TENSORS, fusable, step_text


@dataclass
class Chain:
    inputs: list                                  # the fused node's inputs, in order
    steps: list = field(default_factory=list)
    absorbed: list = field(default_factory=list)  # the nodes, in graph order

    used: set = field(default_factory=set)        # inputs the steps read

    def arg(self, graph: Graph, name: str) -> str:
        if not name:
            return "_"
        if name not in self.inputs:
            self.inputs.append(name)
        self.used.add(name)
        return f"${self.inputs.index(name)}"

    def tensors(self, graph: Graph) -> int:
        """Operands the loop nest reads from memory (one-element constants become literals)."""
        return len({n for n in self.used if not (
            graph.is_constant(n) and graph.types[n].size == 1)})


def grow(graph: Graph, chain: Chain, value: str, value_arg: str, reserved: int = 0) -> str:
    """Absorb readers of ``value`` (spelled ``value_arg`` in the first absorbed step) into
    ``chain`` as far as they go; returns the last value the chain computes."""
    consumers = graph.consumers()
    vtype = graph.types[value]
    while value not in graph.outputs:
        users = consumers.get(value, [])
        if len(users) != 1:
            break
        user = users[0]
        if not fusable(graph, user) or graph.types[user.outputs[0]] != vtype \
                or user.inputs.count(value) != 1:
            break
        saved = list(chain.inputs), set(chain.used)
        args = [value_arg if i == value else chain.arg(graph, i) for i in user.inputs]
        if chain.tensors(graph) + reserved > MAX_TENSORS:
            chain.inputs[:], chain.used = saved
            break
        chain.steps.append(step_text(user, args))
        chain.absorbed.append(user)
        value, value_arg = user.outputs[0], f"#{len(chain.steps) - 1}"
    return value


def replace_chain(graph: Graph, first: Node, chain: Chain, fused: Node) -> list:
    """Put ``fused`` where the chain's last node was (every input is defined by then), drop the
    other absorbed nodes; returns what replaces ``first`` in the rewrite (nothing)."""
    last = chain.absorbed[-1]
    dropped = {id(n) for n in chain.absorbed[:-1] if n is not first}   # the rewrite drops first
    graph.nodes[:] = [fused if n is last else n for n in graph.nodes if id(n) not in dropped]
    return []


def sources(first: Node, chain: Chain) -> tuple:
    return first.sources + tuple(s for n in chain.absorbed for s in n.sources)
