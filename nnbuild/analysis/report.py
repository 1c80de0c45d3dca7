"""What `nnbuild inspect` prints: the text IR, then a table of nodes with their FLOPs and the
parameters they read, then totals and the arena size against its bounds."""
from __future__ import annotations

from ..codegen.plan import plan_memory
from ..ir.graph import Graph
from ..ir.text import format_graph
from ..ops import registry


def node_flops(graph: Graph, node) -> int:
    return int(registry.get(node).flops(node, graph))


def inspect_report(graph: Graph) -> str:
    lines = [format_graph(graph, elide_weights=True), ""]
    rows = [("node", "op", "output", "params", "MFLOP")]
    total_flops = 0
    for node in graph.nodes:
        params = sum(graph.types[i].size for i in node.inputs if i and graph.is_constant(i))
        flops = node_flops(graph, node)
        total_flops += flops
        out = str(graph.types[node.outputs[0]]) if node.outputs and node.outputs[0] else "-"
        rows.append((node.label, node.op, out, str(params), f"{flops / 1e6:.3f}"))
    widths = [min(max(len(r[i]) for r in rows), 40) for i in range(5)]
    for r in rows:
        lines.append("  ".join(c[:40].ljust(w) if i < 3 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    params = sum(a.size for a in graph.constants.values())
    param_bytes = sum(a.size * a.dtype.itemsize for a in graph.constants.values())
    plan = plan_memory(graph)
    lines += ["",
              f"nodes: {len(graph.nodes)}",
              f"params: {params} ({param_bytes / 1e6:.2f} MB)",
              f"compute: {total_flops / 1e9:.4f} GFLOP",
              f"arena: {plan.arena_bytes} bytes (lower bound {plan.lower_bound}, "
              f"naive sum {plan.naive_bytes})", ""]
    return "\n".join(lines)
