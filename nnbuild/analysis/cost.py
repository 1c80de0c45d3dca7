"""The cost model: per node FLOPs, bytes moved, arithmetic intensity and a roofline estimate.

Bytes moved are what the node reads (every input once, weights included) plus what it writes;
the roofline time on a machine of peak ``flops_per_s`` and memory bandwidth ``bytes_per_s`` is
max(FLOPs / peak, bytes / bandwidth): a kernel cannot beat either limit.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir.graph import Graph, Node
from ..ops import registry


@dataclass(frozen=True)
class Machine:
    """What the roofline needs, as `nnbuild calibrate` measured it."""
    name: str
    flops_per_s: float       # peak float32 FLOP/s reached by the SGEMM kernel, one thread
    bytes_per_s: float       # memory bandwidth of a streaming elementwise loop

    @property
    def ridge(self) -> float:
        """FLOP per byte at which a kernel stops being bandwidth-bound."""
        return self.flops_per_s / self.bytes_per_s


@dataclass(frozen=True)
class Cost:
    flops: int
    bytes: int

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else 0.0

    def roofline_s(self, machine: Machine) -> float:
        return max(self.flops / machine.flops_per_s, self.bytes / machine.bytes_per_s)


def node_cost(graph: Graph, node: Node) -> Cost:
    read = sum(graph.types[i].nbytes for i in dict.fromkeys(node.inputs) if i)
    written = sum(graph.types[o].nbytes for o in node.outputs if o)
    return Cost(int(registry.get(node).flops(node, graph)), read + written)


def graph_costs(graph: Graph) -> list:
    return [node_cost(graph, node) for node in graph.nodes]
