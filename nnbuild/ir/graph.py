"""Graph, Node and TensorType.

A graph owns: typed values (every name that flows between nodes), constants (numpy arrays;
a constant filled with one value is a zero-stride ``np.broadcast_to`` view, so it stays
compact until written out), nodes in topological order, and the list of graph inputs and
outputs. Nodes keep the ONNX node names they came from in ``sources``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import dtypes
from ..dtypes import DType


@dataclass(frozen=True)
class TensorType:
    dtype: DType
    shape: tuple          # ints, or strings for symbolic dims

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        return f"{self.dtype.short}[{','.join(str(d) for d in self.shape)}]"

    @staticmethod
    def of(array: np.ndarray) -> "TensorType":
        return TensorType(dtypes.from_numpy(array.dtype), tuple(int(d) for d in array.shape))


@dataclass(frozen=True)
class Node:
    op: str
    inputs: tuple          # value names; "" marks an omitted optional input
    outputs: tuple
    attrs: dict = field(default_factory=dict, hash=False, compare=True)
    sources: tuple = ()    # ONNX node names this node stands for (more than one after fusion)
    domain: str = ""

    def replace(self, **changes: Any) -> "Node":
        return dataclasses.replace(self, **changes)

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    @property
    def label(self) -> str:
        """How messages name this node: its ONNX name(s), else its op and first output."""
        if self.sources and any(self.sources):
            return "+".join(s for s in self.sources if s)
        return f"{self.op} -> {self.outputs[0] if self.outputs else '?'}"


def is_splat(array: np.ndarray) -> bool:
    """True for a constant held compactly as one repeated value."""
    return array.ndim > 0 and array.size > 1 and all(s == 0 for s in array.strides)


def splat(value, dtype, shape) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=dtype), tuple(shape))


@dataclass
class Graph:
    name: str = "model"
    inputs: list = field(default_factory=list)       # names of runtime inputs
    outputs: list = field(default_factory=list)      # names of graph outputs
    nodes: list = field(default_factory=list)        # topological order
    types: dict = field(default_factory=dict)        # value name -> TensorType
    constants: dict = field(default_factory=dict)    # value name -> np.ndarray
    opsets: dict = field(default_factory=dict)       # domain -> version

    # --- queries -----------------------------------------------------------------------------
    def type_of(self, name: str) -> TensorType:
        return self.types[name]

    def is_constant(self, name: str) -> bool:
        return name in self.constants

    def producers(self) -> dict:
        return {out: node for node in self.nodes for out in node.outputs if out}

    def consumers(self) -> dict:
        users: dict = {}
        for node in self.nodes:
            for name in node.inputs:
                if name:
                    users.setdefault(name, []).append(node)
        return users

    def used_names(self) -> set:
        names = set(self.outputs)
        for node in self.nodes:
            names.update(n for n in node.inputs if n)
        return names

    def unique_name(self, base: str) -> str:
        name, i = base, 1
        while name in self.types or name in self.constants:
            name = f"{base}_{i}"
            i += 1
        return name

    # --- edits -------------------------------------------------------------------------------
    def add_constant(self, name: str, array: np.ndarray) -> str:
        self.constants[name] = array
        self.types[name] = TensorType.of(array)
        return name

    def copy(self) -> "Graph":
        return Graph(self.name, list(self.inputs), list(self.outputs), list(self.nodes),
                     dict(self.types), dict(self.constants), dict(self.opsets))

    def drop_unused_constants(self) -> None:
        used = self.used_names()
        for name in [c for c in self.constants if c not in used]:
            del self.constants[name]
        live = used | set(self.inputs) | set(self.constants)
        live.update(o for node in self.nodes for o in node.outputs if o)
        for name in [t for t in self.types if t not in live]:
            del self.types[name]

    def rename_uses(self, old: str, new: str) -> None:
        """Every reader of ``old`` reads ``new`` instead (graph outputs keep their names)."""
        self.nodes = [n.replace(inputs=tuple(new if i == old else i for i in n.inputs))
                      if old in n.inputs else n for n in self.nodes]
