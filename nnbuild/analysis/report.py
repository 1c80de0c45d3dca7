"""What `nnbuild inspect` prints: the text IR, then a table of nodes with their FLOPs and the
parameters they read, then totals, the arena size against its bounds, how many values share
memory, and what the fusion passes made."""
from __future__ import annotations

from collections import Counter

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
              f"naive sum {plan.naive_bytes})",
              f"memory sharing: {len(plan.aliases)} views without a copy, "
              f"{len(plan.in_place)} elementwise ops in place, "
              f"{sum(map(len, plan.slices.values()))} concat inputs written in place "
              f"(in {len(plan.slices)} concats)"]
    fused = Counter(n.op for n in graph.nodes if n.domain == "nnbuild")
    if fused:
        absorbed = sum(len(n.sources) for n in graph.nodes if n.domain == "nnbuild")
        lines.append(f"fused: {sum(fused.values())} nodes stand for {absorbed} ONNX nodes ("
                     + ", ".join(f"{op} {k}" for op, k in sorted(fused.items())) + ")")
    lines.append("")
    return "\n".join(lines)
