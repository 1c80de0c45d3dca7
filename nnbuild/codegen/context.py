"""What an op's ``lower`` sees: pointers to its tensors, the hardware-interface function names,
named constant tables, and the list of statements it appends to.

Pointer expressions are typed C casts into one of four storages: the caller's inputs and
outputs, the weight blob, and the arena (intermediates and scratch, offsets from the plan).
"""
from __future__ import annotations

import re

import numpy as np

from ..ir.graph import Graph, Node
from .plan import MemoryPlan, align
from .names import c_comment, c_identifier


class WeightBlob:
    """Constants in first-use order, each 64-byte aligned, already in the kernel's layout.

    Lowering asks for a constant with ``reference`` and gets a placeholder; ``resolve`` then
    places, in order of appearance, only what the emitted code really reads (a constant an op
    looked at but replaced by a pre-packed copy takes no space)."""

    _MARK = re.compile("\x01W(\\d+)\x01")

    def __init__(self):
        self.offsets: dict = {}
        self.arrays: list = []       # (offset, array)
        self.size = 0
        self._pending: dict = {}     # key -> (marker number, array)

    def reference(self, key: str, array: np.ndarray) -> str:
        if key not in self._pending:
            self._pending[key] = (len(self._pending), array)
        return f"\x01W{self._pending[key][0]}\x01"

    def resolve(self, text: str) -> str:
        """Replace placeholders by offsets, placing each constant on first appearance."""
        by_number = {n: (key, array) for key, (n, array) in self._pending.items()}

        def place(match):
            key, array = by_number[int(match.group(1))]
            return str(self.add(key, array))
        return self._MARK.sub(place, text)

    def add(self, key: str, array: np.ndarray) -> int:
        if key not in self.offsets:
            self.offsets[key] = self.size
            self.arrays.append((self.size, array))
            self.size = align(self.size + array.nbytes)
        return self.offsets[key]

    def write(self, f) -> None:
        pos = 0
        for offset, array in self.arrays:
            f.write(b"\0" * (offset - pos))
            data = np.ascontiguousarray(array)
            data = data.astype(data.dtype.newbyteorder("<"), copy=False)
            f.write(data.reshape(-1).view(np.uint8).data)
            pos = offset + data.nbytes
        f.write(b"\0" * (self.size - pos))


class LoweringContext:
    def __init__(self, graph: Graph, plan: MemoryPlan, prefix: str, hal_families: set):
        self.graph, self.plan, self.prefix = graph, plan, prefix
        self.weights = WeightBlob()
        self.tables: dict = {}           # C text of a static table -> its name
        self.table_decls: list = []      # static tables and task functions, before the run
        self.families = hal_families    # hal sources this model uses
        self.helpers: set = set()        # src/nn_<name>.h headers the network source needs
        self.steps: list = []            # (comment, [statements])
        self._functions: list = []       # where table_decls holds a task function (``parallel``)
        self._function_names: set = set()
        self._lines: list = []
        self.node: Node | None = None
        self.node_index = -1
        self._known = None               # compile-time values, computed on first use
        self.input_index = {n: i for i, n in enumerate(graph.inputs)}
        self.output_index = {}
        for i, n in enumerate(graph.outputs):
            self.output_index.setdefault(n, i)

    # --- tensors -------------------------------------------------------------------------------
    def type(self, name: str):
        return self.graph.types[name]

    def shape(self, name: str) -> tuple:
        return self.graph.types[name].shape

    def ctype(self, name: str) -> str:
        return self.graph.types[name].dtype.ctype

    def value(self, name: str) -> np.ndarray:
        """The compile-time value of ``name``: a constant, or a value computed from constants
        that no pass folded (shape arithmetic at -O0). A ModelError when only known at run time."""
        if name in self.graph.constants:
            return self.graph.constants[name]
        if self._known is None:
            from ..ops.infer import infer_graph
            self._known = infer_graph(self.graph.copy())
        if name not in self._known:
            from ..errors import ModelError
            raise ModelError(f"node {self.node.label} ({self.node.op}): {name!r} must be known "
                             f"at compile time")
        return self._known[name]

    def known(self, name: str):
        """The compile-time value of ``name``, or None when it only exists at run time (a
        tensor without elements is known: empty)."""
        if name in self.graph.constants:
            return self.graph.constants[name]
        if self.type(name).size == 0:
            return np.zeros(self.shape(name), self.type(name).dtype.numpy)
        if self._known is None:
            from ..ops.infer import infer_graph
            self._known = infer_graph(self.graph.copy())
        return self._known.get(name)

    # --- values that only exist at run time ----------------------------------------------------
    def check(self, condition: str, what: str) -> None:
        """Emit a run-time check of a value the compiler could not know (reduction axes, a
        Reshape shape... read from a tensor): when the C ``condition`` is false, ``<p>_run``
        returns ``<P>_ERR_SHAPE`` ("a run-time shape value disagrees with the shape the model
        declares"). ``what`` says in a comment what is checked. The helpers of
        ``src/nn_check.h`` (``nn_axes_mask``...) are available to the condition."""
        self.emit(self.check_statement(condition, what))

    def check_statement(self, condition: str, what: str) -> str:
        """The statement ``check`` emits, for a block the op writes itself."""
        self.helper("check")
        return f"if (!({condition})) {self.shape_error}   /* {c_comment(what)} */"

    @property
    def shape_error(self) -> str:
        """The statement that ends the run with ``<P>_ERR_SHAPE``."""
        return f"return {self.prefix.upper()}_ERR_SHAPE;"

    def ptr(self, name: str) -> str:
        """A typed C pointer expression to the tensor ``name``."""
        ctype = self.ctype(name)
        if name in self.graph.constants:     # also a graph output that folded to a constant
            offset = self.weights.reference(name, self.graph.constants[name])
            return f"((const {ctype} *)(weights + {offset}))"
        if name in self.output_index and name not in self.input_index:
            return f"(({ctype} *)outputs[{self.output_index[name]}])"
        if name in self.input_index:
            return f"((const {ctype} *)inputs[{self.input_index[name]}])"
        return f"(({ctype} *)(arena + {self.plan.offsets[name]}))"

    def weight(self, key: str, array: np.ndarray) -> str:
        """A pointer to data computed at compile time (e.g. a pre-packed copy of a constant)."""
        from .. import dtypes
        ctype = dtypes.from_numpy(array.dtype).ctype
        return f"((const {ctype} *)(weights + {self.weights.reference(key, array)}))"

    def scratch(self, ctype: str = "float") -> str:
        """The scratch buffer this node asked for in ``scratch_bytes``."""
        return f"(({ctype} *)(arena + {self.plan.offsets[self.plan.scratch_key(self.node_index)]}))"

    # --- hardware interface --------------------------------------------------------------------
    def fn(self, family: str, name: str) -> str:
        """The prefixed name of hal function ``name`` from ``hal/<family>.c``."""
        self.families.add(family)
        return f"{self.prefix}_{name}"

    def call(self, family: str, name: str, *args) -> None:
        self.emit(f"{self.fn(family, name)}({', '.join(str(a) for a in args)});")

    def helper(self, name: str) -> None:
        """Include ``templates/project/nn_<name>.h`` (static inline helpers) in the network."""
        self.helpers.add(name)

    def emit(self, statement: str) -> None:
        self._lines.append(statement)

    STORAGES = {"inputs": "const void *const *inputs", "outputs": "void *const *outputs",
                "weights": "const unsigned char *weights", "arena": "unsigned char *arena"}

    def parallel(self, lines: list, tasks: int, what: str) -> None:
        """Run ``lines`` (C statements reading the index ``task``) for every task in
        [0, ``tasks``) over the thread pool: they become a static task function of the network
        source, named after the node and placed with the tables before the run function, and
        the step calls ``<p>_parallel_for`` with it. The statements reach the tensors as
        everywhere else (``ptr``): the function gets the run's ``inputs``, ``outputs``,
        ``weights`` and ``arena`` in a ``<p>_storage``. Tasks must write disjoint elements."""
        storage = f"{self.prefix}_storage"
        if not self._function_names:
            self.table_decls.append(
                "\n/* What a task function of a loop split over the thread pool (below) reads: "
                "the run's\n * buffers. */\n"
                "typedef struct {\n" + "".join(f"    {d};\n" for d in self.STORAGES.values()) +
                f"}} {storage};")
        name = f"{self.prefix}_{c_identifier(self.node.label)[:40]}_task"
        base, n = name, 1
        while name in self._function_names:
            n += 1
            name = f"{base}{n}"
        self._function_names.add(name)
        text = "\n".join(lines)
        used = [k for k in self.STORAGES if re.search(rf"\b{k}\b", text)]
        body = [f"{self.STORAGES[k]} = (({storage} const *)storage)->{k};" for k in used]
        body = (body or ["(void)storage;"]) + ["(void)scratch;"] + lines
        self._functions.append(len(self.table_decls))
        self.table_decls.append("\n".join(
            ["", f"/* {c_comment(f'{self.node.label} ({self.node.op}): {what}')} */",
             f"static void {name}(const void *storage, int task, void *scratch)", "{"] +
            ["    " + line.replace("\n", "\n    ") for line in body] + ["}"]))
        self.emit("{\n"
                  f"    const {storage} storage = {{inputs, outputs, weights, arena}};\n"
                  f"    {self.prefix}_parallel_for({tasks}, {name}, &storage, NULL, 0);\n"
                  "}")

    def table(self, ctype: str, values, hint: str = "table") -> str:
        """A ``static const`` array in the network source; identical tables are shared."""
        integral = ctype not in ("float", "double")          # int64_t, size_t, uint8_t...
        body = ", ".join(str(int(v)) if integral else repr(float(v)) for v in values) or "0"
        key = (ctype, body)
        if key not in self.tables:
            name = f"{hint}_{len(self.tables)}"
            self.tables[key] = name
            self.table_decls.append(f"static const {ctype} {name}[] = {{{body}}};")
        return self.tables[key]

    # --- driver --------------------------------------------------------------------------------
    def lower_node(self, index: int, node: Node, lower) -> None:
        self.node, self.node_index, self._lines = node, index, []
        if index in self.plan.aliases:      # a view of an arena value: the same bytes, no copy
            out, source = self.plan.aliases[index]
            self.emit(f"/* {c_comment(out)} = {c_comment(source)} viewed as "
                      f"{self.type(out)}: no copy */")
            from ..ops import registry
            registry.get(node).check(node, self)    # a view still checks run-time values
        else:
            lower(node, self)
        ins = ", ".join(str(self.type(i)) for i in node.inputs if i)
        outs = ", ".join(str(self.type(o)) for o in node.outputs if o)
        comment = c_comment(f"{node.label} ({node.op})  {ins} -> {outs}")
        self.steps.append((comment, self._lines))

    def finish(self) -> None:
        """Place the weights the emitted code reads, in order, and write in their offsets."""
        self.steps = [(comment, [self.weights.resolve(s) for s in lines])
                      for comment, lines in self.steps]
        for i in self._functions:
            self.table_decls[i] = self.weights.resolve(self.table_decls[i])
