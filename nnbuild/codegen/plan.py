"""Static memory planning: every intermediate tensor (and each kernel's scratch) gets an offset
in one arena, from liveness, placed best-fit by size with 64-byte alignment.

Three kinds of values share a buffer with another instead of getting their own:
- *aliases*: the result of a view (Reshape, Flatten, Squeeze, Unsqueeze) or an Identity is the
  same bytes as its input, so it takes the input's buffer and the node emits no copy;
- *concat slices*: when every axis before a Concat's axis has extent 1 (batch-1 NCHW channel
  concats), each input is one contiguous run of the output; an input produced in the arena
  then lives at its slice of the output's buffer, its producer writes the concatenated tensor
  directly and the Concat copies nothing for it. Slices start at multiples of 64 bytes (kernels
  may assume the arena's alignment); a value takes at most one slice (a second Concat reading it,
  or the same value twice in one Concat, copies); a Concat's output may itself be a slice of a
  later Concat (nested concats, DenseNet's blocks);
- *in place*: an elementwise op (one C expression per element, ``out[i] = f(x[i], ...)``)
  writes its result over an input of the same type and shape that nobody reads afterwards.
A group of values sharing one buffer gets one block; each value sits at a fixed byte offset in
it (0 except for slices). Values are never written after their node runs, so a group is safe
as long as each in-place write happens after every other reader of the group, and values at
different offsets of a group never overlap (slices are disjoint; an output and its inputs'
slices are the same bytes by construction).
"""
from __future__ import annotations

import math
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
    slices: dict = field(default_factory=dict)     # Concat's index -> {input position: byte
                                                   # offset in the output} written in place

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
    """Weighted union-find over value names: the values that share one buffer, each at a byte
    offset from its group's root (``find``); ``extent`` is the bytes a group spans."""

    def __init__(self, sizes: dict):
        self.parent: dict = {}           # name -> (parent name, offset from the parent)
        self.extent: dict = {name: (0, size) for name, size in sizes.items()}   # root -> span

    def find(self, name: str) -> tuple:
        """(root, byte offset of ``name`` from the root)."""
        offset = 0
        while name in self.parent:
            name, step = self.parent[name]
            offset += step
        return name, offset

    def root(self, name: str) -> str:
        return self.find(name)[0]

    def join(self, name: str, into: str, delta: int = 0) -> None:
        """Put ``name``'s group into ``into``'s, ``name`` at ``delta`` bytes after ``into``."""
        (a, a_off), (b, b_off) = self.find(name), self.find(into)
        if a == b:
            return
        rel = b_off + delta - a_off                       # a's root from b's root
        self.parent[a] = (b, rel)
        (alo, ahi), (blo, bhi) = self.extent.pop(a), self.extent[b]
        self.extent[b] = (min(blo, alo + rel), max(bhi, ahi + rel))


def _concat_slices(graph: Graph, node: Node, arena: set) -> dict:
    """{input position: byte offset} of the inputs that may live in the Concat's output, by
    shape: the output in the arena, every axis before the concat axis of extent 1, the input
    in the arena, not empty, starting at a multiple of 64 bytes."""
    y = node.outputs[0] if len(node.outputs) == 1 else ""
    if node.op != "Concat" or node.domain or y not in arena:
        return {}
    shape = graph.types[y].shape
    axis = node.attr("axis", 0)
    axis = axis + len(shape) if axis < 0 else axis
    if not 0 <= axis < len(shape) or math.prod(shape[:axis]) != 1:
        return {}
    row = math.prod(shape[axis + 1:]) * graph.types[y].dtype.itemsize
    out, start = {}, 0
    for k, x in enumerate(node.inputs):
        if not x:
            continue
        extent = graph.types[x].shape[axis]
        if x in arena and graph.types[x].nbytes and start * row % ALIGN == 0:
            out[k] = start * row
        start += extent
    return out


def _share(graph: Graph, external: set, last_use: dict, concats) -> tuple:
    """(groups, aliases, slices, in_place): which values share another's buffer, and where."""
    aliases, slices, in_place = {}, {}, {}
    arena = {o for n in graph.nodes for o in n.outputs if o and o not in external}
    groups = _Groups({name: align(max(graph.types[name].nbytes, 1)) for name in arena})
    for index, node in enumerate(graph.nodes):            # views first: they never write
        x, y = (node.inputs[0] if node.inputs else ""), node.outputs[0] if node.outputs else ""
        if len(node.outputs) == 1 and x in arena and y in arena and _is_view(node):
            groups.join(y, x)
            aliases[index] = (y, x)
    for index, node in enumerate(graph.nodes):            # then Concat inputs into their slices
        if concats is not None and index not in concats:
            continue
        placed = {}
        for k, delta in _concat_slices(graph, node, arena).items():
            x, y = node.inputs[k], node.outputs[0]
            # the input's group must be its bytes alone: not already a slice (of this Concat or
            # another one) and no other slices in it
            if groups.root(x) != groups.root(y) and _alone(groups, x, graph):
                groups.join(x, y, delta)
                placed[k] = delta
        if placed:
            slices[index] = placed
    written = {o: i for i, n in enumerate(graph.nodes) for o in n.outputs if o}
    group_last: dict = {}
    for name in arena:
        root = groups.root(name)
        group_last[root] = max(group_last.get(root, -1), last_use.get(name, -1), written[name])
    for index, node in enumerate(graph.nodes):
        if len(node.outputs) != 1 or node.outputs[0] not in arena or not _elementwise(node):
            continue
        y = node.outputs[0]
        ytype = graph.types[y]
        for x in node.inputs:
            root = groups.root(x) if x in arena else None
            if root is None or graph.types[x] != ytype or group_last[root] != index:
                continue
            # every operand in x's buffer must be read at the element being written
            where = groups.find(x)[1]
            if any(i in arena and groups.root(i) == root
                   and (_squeezed(graph.types[i].shape) != _squeezed(ytype.shape)
                        or groups.find(i)[1] != where)
                   for i in node.inputs):
                continue
            # one of the two groups must fit inside the other at the shared bytes
            y_root = groups.root(y)
            if y_root == root or not (_alone(groups, x, graph) or _alone(groups, y, graph)):
                continue
            last = max(group_last.pop(root), group_last.pop(y_root))
            if _alone(groups, x, graph):
                groups.join(x, y)
            else:
                groups.join(y, x)
            group_last[groups.root(y)] = last
            in_place[index] = (y, x)
            break
    return groups, aliases, slices, in_place


def _alone(groups: _Groups, name: str, graph: Graph) -> bool:
    """Whether ``name``'s group spans just ``name``'s bytes (it and views of it)."""
    root, offset = groups.find(name)
    lo, hi = groups.extent[root]
    return lo == offset and hi == offset + align(max(graph.types[name].nbytes, 1))


def _blocks(graph: Graph, concats) -> tuple:
    external = set(graph.inputs) | set(graph.outputs) | set(graph.constants)
    last_use = {}
    for index, node in enumerate(graph.nodes):
        for name in node.inputs:
            if name:
                last_use[name] = index
    groups, aliases, slices, in_place = _share(graph, external, last_use, concats)
    spans: dict = {}                 # group root -> [first, last]
    naive, order = 0, []
    scratch_blocks = []
    for index, node in enumerate(graph.nodes):
        for name in node.outputs:
            if name and name not in external:
                naive += align(max(graph.types[name].nbytes, 1))
                root = groups.root(name)
                if root not in spans:
                    spans[root] = [index, index]
                    order.append(root)
                span = spans[root]
                span[0] = min(span[0], index)
                span[1] = max(span[1], last_use.get(name, index))
        scratch = registry.get(node).scratch_bytes(node, graph)
        if scratch:
            naive += align(scratch)
            scratch_blocks.append(Block(f"scratch:{index}", align(scratch), index, index))
    blocks = [Block(root, groups.extent[root][1] - groups.extent[root][0], *spans[root])
              for root in order] + scratch_blocks
    members = {}                     # root -> {name: byte offset in the block}
    for root in order:
        members[root] = {}
    for name in sorted(groups.extent.keys() | groups.parent.keys()):
        root, offset = groups.find(name)
        members[root][name] = offset - groups.extent[root][0]
    return blocks, members, naive, aliases, slices, in_place


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


# Concat slices lengthen the output's block (it starts when its first input is made), which can
# cost arena; they are kept while the arena stays within this factor of the plan without them.
SLICE_GROWTH = 1.05
SLICE_TRIALS = 32        # at most this many extra plans when choosing (batches of Concats)


def plan_memory(graph: Graph, concats=None) -> MemoryPlan:
    """The plan of ``graph``. ``concats``: the indices of the Concat nodes whose inputs may take
    their slices of the output; None chooses: all of them when the arena stays within
    SLICE_GROWTH of the arena without any, else one at a time in node order (in SLICE_TRIALS
    consecutive batches when there are more), each kept when the arena still does."""
    if concats is not None:
        return _plan(graph, concats)
    every = _plan(graph, None)
    if not every.slices:
        return every
    best = _plan(graph, set())
    limit = best.arena_bytes * SLICE_GROWTH
    if every.arena_bytes <= limit:
        return every
    chosen = set()
    for batch in _batches(sorted(every.slices), SLICE_TRIALS):
        trial = _plan(graph, chosen | set(batch))
        if trial.arena_bytes <= limit:
            chosen |= set(batch)
            best = trial
    return best


def _batches(items: list, count: int) -> list:
    """``items`` in at most ``count`` consecutive runs of near-equal length."""
    n = min(count, len(items))
    return [items[len(items) * k // n:len(items) * (k + 1) // n] for k in range(n)]


def _plan(graph: Graph, concats) -> MemoryPlan:
    blocks, members, naive, aliases, slices, in_place = _blocks(graph, concats)
    arena, offsets = min((_place(blocks, order) for order in ORDERS), key=lambda r: r[0])
    for root, names in members.items():
        start = offsets[root]
        for name, offset in names.items():
            offsets[name] = start + offset
    steps = len(graph.nodes)
    lower = max((sum(b.size for b in blocks if b.first <= t <= b.last) for t in range(steps)),
                default=0)
    return MemoryPlan(offsets, arena, lower, naive, aliases, in_place, slices)
