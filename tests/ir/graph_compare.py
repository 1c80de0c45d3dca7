"""Structural equality of IR graphs, field by field, for the round-trip tests.

Stricter than comparing printed text: attribute values must keep their Python type (an int
stays an int, a bool a bool), constants their dtype, shape, every bit (NaN matches NaN) and
their compact one-value form.
"""
from __future__ import annotations

import numpy as np

from nnbuild.ir.graph import Graph, is_splat


def _array_bytes(a: np.ndarray) -> bytes:
    a = np.array(a)                       # contiguous copy; splats materialize
    if a.dtype.kind == "f" or a.dtype.name == "bfloat16":
        a[np.isnan(a)] = np.nan           # one NaN bit pattern
    return a.tobytes()


def assert_same_array(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert is_splat(actual) == is_splat(expected), f"{what}: compact one-value form not kept"
    assert _array_bytes(actual) == _array_bytes(expected), f"{what}: values differ"


def assert_same_value(actual, expected, what: str) -> None:
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), f"{what}: {actual!r} is not a tensor"
        assert_same_array(actual, expected, what)
    elif isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)), f"{what}: {actual!r} is not a list"
        assert len(actual) == len(expected), f"{what}: {actual!r} != {expected!r}"
        for k, (a, e) in enumerate(zip(actual, expected)):
            assert_same_value(a, e, f"{what}[{k}]")
    else:
        assert type(actual) is type(expected), \
            f"{what}: {actual!r} ({type(actual).__name__}) != {expected!r} ({type(expected).__name__})"
        if isinstance(expected, float) and np.isnan(expected):
            assert np.isnan(actual), f"{what}: {actual!r} != nan"
        else:
            assert actual == expected, f"{what}: {actual!r} != {expected!r}"


def _defined(graph: Graph) -> list:
    names = list(graph.inputs) + sorted(graph.constants)
    names += [o for n in graph.nodes for o in n.outputs if o]
    return names


def assert_same_graph(actual: Graph, expected: Graph) -> None:
    assert actual.name == expected.name
    assert actual.opsets == expected.opsets
    assert actual.inputs == expected.inputs
    assert actual.outputs == expected.outputs
    assert _defined(actual) == _defined(expected)
    for name in _defined(expected):
        assert actual.types[name] == expected.types[name], f"type of {name!r}"
    assert sorted(actual.constants) == sorted(expected.constants)
    for name, array in expected.constants.items():
        assert_same_array(actual.constants[name], array, f"constant {name!r}")
    assert len(actual.nodes) == len(expected.nodes)
    for k, (a, e) in enumerate(zip(actual.nodes, expected.nodes)):
        where = f"node {k} ({e.op})"
        assert (a.op, a.domain, a.inputs, a.outputs, a.sources) == \
               (e.op, e.domain, e.inputs, e.outputs, e.sources), where
        assert sorted(a.attrs) == sorted(e.attrs), f"{where}: attribute names"
        for key in e.attrs:
            assert_same_value(a.attrs[key], e.attrs[key], f"{where} attribute {key}")
