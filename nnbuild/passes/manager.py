"""Passes and the pass manager.

A pass is a named function from graph to graph with a one-line purpose. The manager runs a
list of them, can dump the text IR after each (``NNN_<pass>.nnir``), time each, verify the graph
after each, and stop after a named pass. A rewrite pass is a table of rules: each rule names
the op it starts from and a function that returns the replacement nodes, or None to leave
the node alone.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

from ..errors import UsageError
from ..fileio import replacing
from ..ir.graph import Graph, Node
from ..ir.text import format_graph
from ..ir.verify import verify


@dataclass(frozen=True)
class Pass:
    name: str
    purpose: str
    run: Callable[[Graph], Graph]


@dataclass(frozen=True)
class Rule:
    op: str
    rewrite: Callable[[Graph, Node], "list | None"]    # returns replacement nodes or None


def rewrite_pass(name: str, purpose: str, rules: list) -> Pass:
    """A pass that offers every node to the rules for its op, once, in graph order."""
    by_op: dict = {}
    for rule in rules:
        by_op.setdefault(rule.op, []).append(rule)

    def run(graph: Graph) -> Graph:
        graph = graph.copy()
        i = 0
        while i < len(graph.nodes):       # rules may rename uses or drop earlier nodes
            node = graph.nodes[i]
            for rule in by_op.get(node.op, ()):
                replacement = rule.rewrite(graph, node)
                if replacement is not None:
                    i = next(k for k, n in enumerate(graph.nodes) if n is node)
                    graph.nodes[i:i + 1] = replacement
                    i += len(replacement)
                    break
            else:
                i += 1
        graph.drop_unused_constants()
        return graph
    return Pass(name, purpose, run)


@dataclass
class PassManager:
    passes: list
    dump_dir: str | None = None
    verify_each: bool = False
    stop_after: str | None = None
    timings: list = field(default_factory=list)     # (pass name, seconds)

    def run(self, graph: Graph) -> Graph:
        names = [p.name for p in self.passes]
        if self.stop_after and self.stop_after not in names:
            raise UsageError(f"--after {self.stop_after}: no such pass in this pipeline "
                             f"(passes: {', '.join(names) or 'none'})")
        if self.dump_dir:
            os.makedirs(self.dump_dir, exist_ok=True)
            self._dump(0, "input", graph)
        for index, p in enumerate(self.passes, start=1):
            start = time.perf_counter()
            graph = p.run(graph)
            self.timings.append((p.name, time.perf_counter() - start))
            if self.verify_each:
                verify(graph)
            if self.dump_dir:
                self._dump(index, p.name, graph)
            if p.name == self.stop_after:
                break
        return graph

    def _dump(self, index: int, name: str, graph: Graph) -> None:
        path = os.path.join(self.dump_dir, f"{index:03d}_{name}.nnir")
        with replacing(path) as f:
            f.write(format_graph(graph, elide_weights=True))
