"""Pass tests are a *before* and an *expected* graph in the text IR.

``assert_rewrites(pass_, before, expected)`` parses both (each must verify), runs the pass on
*before*, verifies the result and compares it with *expected* in the canonical text form
(constants sorted by name, attributes by key), so the comparison is structural.
"""
from __future__ import annotations

import difflib

from nnbuild.ir import Graph, format_graph, parse_graph, verify


def parse(text: str) -> Graph:
    graph = parse_graph(text)
    verify(graph)
    return graph


def assert_rewrites(pass_, before: str, expected: str) -> Graph:
    source = parse(before)
    source_text = format_graph(source)
    result = pass_.run(source)
    verify(result)
    assert format_graph(source) == source_text, f"{pass_.name} modified its input graph"
    want, got = format_graph(parse(expected)), format_graph(result)
    if got != want:
        diff = "\n".join(difflib.unified_diff(want.splitlines(), got.splitlines(),
                                              "expected", "actual", lineterm=""))
        raise AssertionError(f"{pass_.name} gave a different graph:\n{diff}")
    return result


def assert_unchanged(pass_, before: str) -> Graph:
    return assert_rewrites(pass_, before, before)
