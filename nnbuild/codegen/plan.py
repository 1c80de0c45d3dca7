"""Static memory planning: every intermediate tensor (and each kernel's scratch) gets an offset
in one arena, from liveness, placed best-fit by size with 64-byte alignment.

Two kinds of values share a buffer with another instead of getting their own:
- *aliases*: the result of a view (Reshape, Flatten, Squeeze, Unsqueeze) or an Identity is the
  same bytes as its input, so it takes the input's buffer and the node emits no copy;
- *in place*: an elementwise op (one C expression per element, ``out[i] = f(x[i], ...)``)
  writes its result over an input of the same type and shape that nobody reads afterwards.
Values are never written after their node runs, so a group of values sharing one buffer is
safe as long as each in-place write happens after every other reader of the group.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.graph import Graph, Node
from ..ops import registry

ALIGN = 64


def align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass(frozen=True)
class Block:
    key: str        # value name (a group's first value), or "scratch:<node index>"
    size: int
    first: int      # node index that writes it
    last: int       # node index of its last reader


@dataclass
class MemoryPlan:
    offsets: dict            # key -> arena offset (every value of a group has the group's)
    arena_bytes: int
    lower_bound: int         # largest total of simultaneously live buffers
    naive_bytes: int         # every value and scratch on its own
    aliases: dict = field(default_factory=dict)    # node index -> (output, input) sharing bytes
    in_place: dict = field(default_factory=dict)   # node index -> (output, input) overwritten

    def scratch_key(self, index: int) -> str:
        return f"scratch:{index}"


def _is_view(node: Node) -> bool:
    from ..ops.shape_ops import View
    return node.op == "Identity" and not node.domain or isinstance(registry.get(node), View)


def _elementwise(node: Node) -> bool:
    from ..ops import elementwise, fused
    op = registry.get(node)
    return node.op in ("Clip",) and not node.domain or isinstance(
        op, (elementwise.Unary, elementwise.Broadcasting, fused.Elementwise)) \
        and node.op != "Identity"


def _squeezed(shape: tuple) -> tuple:
    """The shape without its leading 1s (how broadcasting lines it up)."""
    i = 0
    while i < len(shape) and shape[i] == 1:
        i += 1
    return tuple(shape[i:])


class _Groups:
    """Union-find over value names: the values that share one buffer."""

    def __init__(self):
        self.parent: dict = {}

    def find(self, name: str) -> str:
        while self.parent.get(name, name) != name:
            name = self.parent[name]
        return name

    def join(self, name: str, into: str) -> None:
        self.parent[self.find(name)] = self.find(into)


def _share(graph: Graph, external: set, last_use: dict) -> tuple:
    """(groups, aliases, in_place): which values share their input's buffer."""
    groups, aliases, in_place = _Groups(), {}, {}
    arena = {o for n in graph.nodes for o in n.outputs if o and o not in external}
    for index, node in enumerate(graph.nodes):            # views first: they never write
        x, y = (node.inputs[0] if node.inputs else ""), node.outputs[0] if node.outputs else ""
        if len(node.outputs) == 1 and x in arena and y in arena and _is_view(node):
            groups.join(y, x)
            aliases[index] = (y, x)
    group_last: dict = {}
    for name in arena:
        root = groups.find(name)
        group_last[root] = max(group_last.get(root, -1), last_use.get(name, -1))
    for index, node in enumerate(graph.nodes):
        if len(node.outputs) != 1 or node.outputs[0] not in arena or not _elementwise(node):
            continue
        y = node.outputs[0]
        ytype = graph.types[y]
        for x in node.inputs:
            root = groups.find(x) if x in arena else None
            if root is None or graph.types[x] != ytype or group_last[root] != index:
                continue
            # every operand in x's buffer must be read at the element being written
            if any(i in arena and groups.find(i) == root
                   and _squeezed(graph.types[i].shape) != _squeezed(ytype.shape)
                   for i in node.inputs):
                continue
            y_root = groups.find(y)
            last = max(group_last.pop(root), group_last.pop(y_root))
            groups.join(y, x)
            group_last[groups.find(y)] = last
            in_place[index] = (y, x)
            break
    return groups, aliases, in_place


def _blocks(graph: Graph) -> tuple:
    external = set(graph.inputs) | set(graph.outputs) | set(graph.constants)
    last_use = {}
    for index, node in enumerate(graph.nodes):
        for name in node.inputs:
            if name:
                last_use[name] = index
    groups, aliases, in_place = _share(graph, external, last_use)
    spans: dict = {}                 # group root -> [size, first, last]
    naive, order = 0, []
    scratch_blocks = []
    for index, node in enumerate(graph.nodes):
        for name in node.outputs:
            if name and name not in external:
                size = align(max(graph.types[name].nbytes, 1))
                naive += size
                root = groups.find(name)
                if root not in spans:
                    spans[root] = [size, index, index]
                    order.append(root)
                span = spans[root]
                span[0] = max(span[0], size)
                span[2] = max(span[2], last_use.get(name, index))
        scratch = registry.get(node).scratch_bytes(node, graph)
        if scratch:
            naive += align(scratch)
            scratch_blocks.append(Block(f"scratch:{index}", align(scratch), index, index))
    blocks = [Block(root, *spans[root]) for root in order] + scratch_blocks
    members = {}
    for name in list(groups.parent) + order:
        members.setdefault(groups.find(name), set()).add(name)
    return blocks, members, naive, aliases, in_place


# Orders in which blocks are placed; each is tried and the smallest arena kept (ties: first).
ORDERS = (
    lambda b: (-b.size, b.first, b.key),                         # biggest first
    lambda b: (-b.size * (b.last - b.first + 1), b.first, b.key),  # biggest size x lifetime
    lambda b: (b.first, -b.size, b.key),                         # in order of definition
    lambda b: (-(b.last - b.first), -b.size, b.key),             # longest lived first
)


def _place(blocks: list, order) -> tuple:
    """Best fit: each block into the smallest gap between the blocks it overlaps in time."""
    placed = []                      # (offset, block)
    offsets = {}
    for block in sorted(blocks, key=order):
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
    return max((off + b.size for off, b in placed), default=0), offsets


def plan_memory(graph: Graph) -> MemoryPlan:
    blocks, members, naive, aliases, in_place = _blocks(graph)
    arena, offsets = min((_place(blocks, order) for order in ORDERS), key=lambda r: r[0])
    for root, names in members.items():
        if root in offsets:
            for name in names:
                offsets[name] = offsets[root]
    steps = len(graph.nodes)
    lower = max((sum(b.size for b in blocks if b.first <= t <= b.last) for t in range(steps)),
                default=0)
    return MemoryPlan(offsets, arena, lower, naive, aliases, in_place)
