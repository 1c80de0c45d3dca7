"""Static memory planning: every intermediate tensor (and each kernel's scratch) gets an offset
in one arena, from liveness, placed best-fit by size with 64-byte alignment."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir.graph import Graph
from ..ops import registry

ALIGN = 64


def align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass(frozen=True)
class Block:
    key: str        # value name, or "scratch:<node index>"
    size: int
    first: int      # node index that writes it
    last: int       # node index of its last reader


@dataclass
class MemoryPlan:
    offsets: dict            # key -> arena offset
    arena_bytes: int
    lower_bound: int         # largest total of simultaneously live blocks
    naive_bytes: int         # every block on its own

    def scratch_key(self, index: int) -> str:
        return f"scratch:{index}"


def _blocks(graph: Graph) -> list:
    external = set(graph.inputs) | set(graph.outputs) | set(graph.constants)
    last_use = {}
    for index, node in enumerate(graph.nodes):
        for name in node.inputs:
            if name:
                last_use[name] = index
    blocks = []
    for index, node in enumerate(graph.nodes):
        for name in node.outputs:
            if name and name not in external:
                size = align(max(graph.types[name].nbytes, 1))
                blocks.append(Block(name, size, index, last_use.get(name, index)))
        scratch = registry.get(node).scratch_bytes(node, graph)
        if scratch:
            blocks.append(Block(f"scratch:{index}", align(scratch), index, index))
    return blocks


def plan_memory(graph: Graph) -> MemoryPlan:
    blocks = _blocks(graph)
    placed = []                      # (offset, block)
    offsets = {}
    for block in sorted(blocks, key=lambda b: (-b.size, b.first, b.key)):
        live = sorted(((off, b) for off, b in placed
                       if b.first <= block.last and block.first <= b.last),
                      key=lambda item: (item[0], item[1].key))
        best, best_gap, cursor = None, None, 0
        for off, other in live:                         # gaps between overlapping blocks
            gap = off - cursor
            if gap >= block.size and (best_gap is None or gap < best_gap):
                best, best_gap = cursor, gap
            cursor = max(cursor, off + other.size)
        offset = best if best is not None else cursor
        placed.append((offset, block))
        offsets[block.key] = offset
    arena = max((off + b.size for off, b in placed), default=0)
    steps = len(graph.nodes)
    lower = max((sum(b.size for b in blocks if b.first <= t <= b.last) for t in range(steps)),
                default=0)
    return MemoryPlan(offsets, arena, lower, sum(b.size for b in blocks))
