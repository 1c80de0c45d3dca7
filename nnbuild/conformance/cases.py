"""The official ONNX conformance cases, enumerated and loaded the same way from every source.

Sources (all shipped inside the installed ``onnx`` package):
- ``node``: ``onnx.backend.test.case.node.collect_testcases()``, one model per op variant,
  inputs and expected outputs computed in memory (about 1,900 cases);
- ``pytorch-converted`` and ``pytorch-operator``: folders under ``onnx/backend/test/data``,
  each ``model.onnx`` + ``test_data_set_N/{input,output}_K.pb``.

A case is identified as ``<source>/<name>``, e.g. ``node/test_abs``; ``--filter`` searches that.
Its ``op`` is the op under test (see ``op_under_test``).
"""
from __future__ import annotations

import glob
import os
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

SOURCES = ("node", "pytorch-converted", "pytorch-operator")
_EXPANDED = re.compile(r"_expanded(_ver\d+)?$")
# Ops that only reshape or carry values around: a multi-op case is named after its other ops.
_PLUMBING = {"Constant", "Identity", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Flatten"}


@dataclass
class Case:
    source: str                     # one of SOURCES
    name: str                       # e.g. test_abs
    op: str                         # the op under test
    model: onnx.ModelProto
    data_sets: list | None = None   # [(inputs, outputs)]; None: read from ``folder`` on demand
    folder: str | None = None
    expanded: bool = field(default=False)   # a function op tested through its expansion

    @property
    def id(self) -> str:
        return f"{self.source}/{self.name}"

    def load_data(self) -> list:
        """[(inputs, expected outputs)], each a list of numpy arrays (or sequences/None,
        which the runner reports as unsupported)."""
        if self.data_sets is None:
            self.data_sets = _read_data_sets(self.folder)
        return [([to_value(v) for v in ins], [to_value(v) for v in outs])
                for ins, outs in self.data_sets]


def to_value(v):
    """A data-set entry as a numpy array where it is a tensor; sequences and None stay."""
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, (np.ndarray, np.generic)):
        return np.asarray(v)
    if isinstance(v, (list, tuple)):
        return [to_value(x) for x in v]
    return v


def _read_proto(path: str):
    with open(path, "rb") as f:
        data = f.read()
    tensor = onnx.TensorProto()
    tensor.ParseFromString(data)
    return tensor


def _read_data_sets(folder: str) -> list:
    sets = []
    for ds in sorted(glob.glob(os.path.join(folder, "test_data_set_*")),
                     key=lambda p: int(p.rsplit("_", 1)[1])):
        def files(kind):
            paths = glob.glob(os.path.join(ds, f"{kind}_*.pb"))
            return [_read_proto(p) for p in sorted(paths, key=lambda p: int(p[:-3].rsplit("_", 1)[1]))]
        sets.append((files("input"), files("output")))
    return sets


def data_root() -> str:
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")


def _schema_names() -> dict:
    """lower-case name without underscores -> op name, for every op onnx knows."""
    return {s.name.lower().replace("_", ""): s.name for s in onnx.defs.get_all_schemas_with_history()}


def op_under_test(name: str, model: onnx.ModelProto, schemas: dict | None = None) -> str:
    """A one-op model names its op; otherwise the longest op name that starts the case name
    (``test_reduce_sum_keepdims`` -> ReduceSum); otherwise the model's non-plumbing ops."""
    ops = list(dict.fromkeys(n.op_type for n in model.graph.node))
    real = [o for o in ops if o != "Constant"]
    if len(real) == 1 and not _EXPANDED.search(name):
        return real[0]
    schemas = _schema_names() if schemas is None else schemas
    key = re.sub(r"^test_(ai_onnx_ml_)?", "", name).lower().replace("_", "")
    best = max((k for k in schemas if key.startswith(k)), key=len, default=None)
    if best is not None:
        return schemas[best]
    core = [o for o in real if o not in _PLUMBING] or real or ops
    return "+".join(core) if core else "(empty)"


def _node_cases() -> list:
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings():          # the generators overflow casts on purpose
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            tests = collect_testcases()
    schemas = _schema_names()
    cases = {}
    for t in tests:
        cases[t.name] = Case("node", t.name, op_under_test(t.name, t.model, schemas), t.model,
                             data_sets=list(t.data_sets))
    for case in cases.values():              # an expansion tests the op of its plain twin
        if _EXPANDED.search(case.name):
            case.expanded = True
            twin = cases.get(_EXPANDED.sub("", case.name))
            if twin is not None:
                case.op = twin.op
    return [cases[n] for n in sorted(cases)]


def _folder_cases(source: str) -> list:
    root = os.path.join(data_root(), source)
    if not os.path.isdir(root):
        return []
    schemas = _schema_names()
    cases = []
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        path = os.path.join(folder, "model.onnx")
        if not os.path.isfile(path):
            continue
        model = onnx.load(path)
        cases.append(Case(source, name, _folder_op(name, model, schemas), model, folder=folder))
    return cases


def _folder_op(name: str, model: onnx.ModelProto, schemas: dict) -> str:
    """PyTorch module/operator tests are named after torch, not ONNX: use the model's ops."""
    ops = list(dict.fromkeys(n.op_type for n in model.graph.node if n.op_type != "Constant"))
    core = [o for o in ops if o not in _PLUMBING] or ops
    return "+".join(core) if core else "(empty)"


def collect(source: str = "all", pattern: str | None = None) -> list:
    """The cases of ``source`` (a name in SOURCES or "all") whose id matches ``pattern``
    (a regular expression searched in ``<source>/<name>``), sorted by id."""
    if source != "all" and source not in SOURCES:
        raise ValueError(f"unknown source {source!r} (sources: {', '.join(SOURCES)}, all)")
    chosen = SOURCES if source == "all" else (source,)
    regex = re.compile(pattern) if pattern else None
    cases = []
    for s in chosen:
        found = _node_cases() if s == "node" else _folder_cases(s)
        cases += [c for c in found if regex is None or regex.search(c.id)]
    return sorted(cases, key=lambda c: c.id)
