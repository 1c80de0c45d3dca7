"""One registry of ops. Each op is a class registered explicitly with its ONNX name and the
opset range it accepts; it declares shape/dtype inference, a numpy reference (used by constant
folding and tests), and its lowering to hardware-interface calls. Adding an op touches one place.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError
from ..ir.graph import Graph, Node, TensorType

_REGISTRY: dict = {}     # (domain, op) -> Op instance


def register(op: str, since: int = 1, domain: str = ""):
    """Class decorator: ``@register("Relu", since=6)``; ``since`` is the oldest opset accepted."""
    def wrap(cls):
        key = (domain, op)
        if key in _REGISTRY:
            raise RuntimeError(f"op {op} registered twice")
        instance = cls()
        instance.op_type, instance.since, instance.domain = op, since, domain
        _REGISTRY[key] = instance
        return cls
    return wrap


def lookup(op: str, domain: str = "") -> "Op | None":
    return _REGISTRY.get((domain, op))


def get(node: Node) -> "Op":
    op = lookup(node.op, node.domain)
    if op is None:
        raise ModelError(f"node {node.label}: no op {node.op!r} in the registry")
    return op


def supported_ops() -> list:
    return sorted(f"{d}::{o}" if d else o for d, o in _REGISTRY)


@dataclass
class InferContext:
    """What inference sees of a node: input types and, where known at compile time, values."""
    graph: Graph
    node: Node
    types: list                    # TensorType or None (omitted optional input)
    values: list                   # np.ndarray or None

    def has(self, i: int) -> bool:
        return i < len(self.types) and self.types[i] is not None

    def value(self, i: int, what: str = "input") -> np.ndarray:
        """The compile-time value of input i; a clear error when it is only known at run time."""
        if i >= len(self.values) or self.values[i] is None:
            raise ModelError(f"node {self.node.label} ({self.node.op}): {what} "
                             f"{self.node.inputs[i] if i < len(self.node.inputs) else i} "
                             f"must be known at compile time (data-dependent shapes are "
                             f"not supported)")
        return self.values[i]

    def known(self, i: int):
        """The compile-time value of input i, or None (absent, or only known at run time).
        An input without elements is known whatever it is fed: an empty array."""
        if i < len(self.values) and self.values[i] is not None:
            return self.values[i]
        if self.has(i) and self.types[i].size == 0:
            return np.zeros(self.types[i].shape, self.types[i].dtype.numpy)
        return None

    def runtime(self, i: int) -> bool:
        """Input i is present and its value only exists at run time."""
        return self.has(i) and self.known(i) is None

    def declared(self, k: int, needs: int, what: str) -> tuple:
        """The static shape the model declares for output k, whose shape depends on the
        run-time value of input ``needs`` (``what``: its role, e.g. "axes"). Declarations are
        the types already in ``graph.types`` for the output's name: the frontend seeds them
        from the ONNX graph's outputs and value_info (only fully static ones), and every
        inference keeps them there, so re-inference after passes and the IR round trip see
        them too. The kernel must then read the value at run time and check that it yields
        this shape (``LoweringContext.check``). Without a declaration: the data-dependent
        shape error, never a guess."""
        name = self.node.outputs[k] if k < len(self.node.outputs) else ""
        t = self.graph.types.get(name) if name else None
        if t is None or not t.is_static:
            raise ModelError(f"node {self.node.label} ({self.node.op}): {what} "
                             f"{self.node.inputs[needs]!r} must be known at compile time, or "
                             f"the model must declare a static shape for output {name!r} "
                             f"(data-dependent shapes are not supported)")
        return tuple(int(d) for d in t.shape)

    def fail(self, message: str) -> ModelError:
        return ModelError(f"node {self.node.label} ({self.node.op}): {message}")


class Op:
    """Base class. Subclasses override what they need; docstring = one-line semantics."""
    op_type = ""
    since = 1
    domain = ""

    def canonicalize(self, node: Node, version: int, graph: Graph) -> list:
        """Rewrite an older opset form into the newest one (attributes that became inputs...).
        Returns the nodes that replace ``node``; may add constants to ``graph``."""
        return [node]

    def infer(self, ctx: InferContext) -> list:
        """Output TensorTypes from input types (and known input values)."""
        raise NotImplementedError(self.op_type)

    def reference(self, node: Node, *inputs: np.ndarray) -> list:
        """numpy semantics of the op: returns the list of outputs."""
        raise NotImplementedError(self.op_type)

    def fold(self, ctx: InferContext) -> list | None:
        """Values of the outputs when they are known at compile time, else None.
        By default: every present input is known and the op has a reference."""
        present = [i for i, t in enumerate(ctx.types) if t is not None]
        if any(ctx.values[i] is None for i in present):
            return None
        args = [ctx.values[i] if ctx.types[i] is not None else None for i in range(len(ctx.types))]
        try:
            return self.reference(ctx.node, *args)
        except NotImplementedError:
            return None

    def flops(self, node: Node, graph: Graph) -> int:
        """Floating-point operations of one run (default: one per output element)."""
        return sum(graph.types[o].size for o in node.outputs if o)

    def scratch_bytes(self, node: Node, graph: Graph) -> int:
        """Temporary workspace the kernel needs while it runs (planned into the arena)."""
        return 0

    def lower(self, node: Node, ctx) -> None:
        """Emit the hardware-interface calls for this node through the codegen context."""
        raise NotImplementedError(f"{self.op_type} has no kernel")

    def check(self, node: Node, ctx) -> None:
        """Emit the run-time checks of input values that decide the output's declared shape
        (``ctx.check``). A view whose bytes are shared (no ``lower``) still gets them; ops
        that lower call it themselves."""


def same_as_input(ctx: InferContext, i: int = 0) -> list:
    return [ctx.types[i]]


def attr_ints(node: Node, key: str, default=None) -> list | None:
    value = node.attrs.get(key, default)
    return None if value is None else [int(v) for v in value]


def normalize_axis(axis: int, rank: int, node: Node) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ModelError(f"node {node.label} ({node.op}): axis {axis} out of range for rank {rank}")
    return axis + rank if axis < 0 else axis
