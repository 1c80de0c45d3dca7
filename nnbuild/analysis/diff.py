"""`nnbuild diff`: run our build and onnxruntime on the same inputs, compare every intermediate
tensor that still exists after optimization, and name the first node whose error exceeds the
tolerance (``nnbuild.testing``).

How: the optimized graph gets every surviving node output that is also a top-level value of the
ONNX file as an extra graph output (a fused node is compared at its output, the value of the last
node it absorbed); that graph is generated and built into a work folder and run in process. A
copy of the ONNX model lists the same names as outputs, and onnxruntime (graph optimizations
off) computes them from the same inputs. Rows follow our node order, so the first bad row is the
first node whose result is wrong: everything before it agrees.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import ModelError, UsageError
from ..ir.graph import Graph
from ..testing import MODEL_TOLERANCE, OP_TOLERANCE, mismatch

TOLERANCES = {"model": MODEL_TOLERANCE, "op": OP_TOLERANCE}


@dataclass(frozen=True)
class Row:
    node: str                  # the ONNX node name(s) our node stands for
    op: str
    tensor: str
    max_abs: float
    max_rel: float
    problem: str | None        # None: within tolerance

    @property
    def verdict(self) -> str:
        return "ok" if self.problem is None else "FAIL"


@dataclass
class DiffResult:
    rows: list
    tolerance: str             # "model" or "op"
    skipped: list              # surviving values onnxruntime cannot name (made by nnbuild)

    @property
    def first_bad(self) -> Row | None:
        return next((r for r in self.rows if r.problem is not None), None)

    @property
    def ok(self) -> bool:
        return self.first_bad is None


def probes(graph: Graph, onnx_values: set) -> list:
    """(node, value) for every node output of ``graph`` that onnxruntime can be asked for."""
    found = []
    for node in graph.nodes:
        for name in node.outputs:
            if name and name in onnx_values and name not in graph.inputs:
                found.append((node, name))
    return found


def errors(actual: np.ndarray, expected: np.ndarray, atol: float) -> tuple:
    """(max |a - e|, max |a - e| / |e| over elements with |e| > atol); NaN where undefined."""
    if actual.shape != expected.shape or actual.size == 0:
        return float("nan"), float("nan")
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    both = np.isfinite(a) & np.isfinite(e)
    if not both.any():
        return float("nan"), float("nan")
    err = np.abs(a - e)[both]
    big = np.abs(e[both]) > atol
    rel = float(np.max(err[big] / np.abs(e[both][big]))) if big.any() else 0.0
    return float(err.max()), rel


def _proto(model) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    path = os.fspath(model)
    if path.endswith(".nnir.json"):
        raise UsageError(f"{path}: diff needs the ONNX file (onnxruntime runs it)")
    from ..frontend import load_model
    return load_model(path)


def _feeds(compiled, given: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in compiled.inputs:
        if spec.name in given:
            feeds[spec.name] = np.asarray(given[spec.name])
        elif spec.dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(spec.shape).astype(spec.dtype)
        elif spec.dtype.kind == "b":
            feeds[spec.name] = rng.integers(0, 2, spec.shape).astype(bool)
        else:
            feeds[spec.name] = rng.integers(0, 10, spec.shape).astype(spec.dtype)
    unknown = sorted(set(given) - set(feeds))
    if unknown:
        raise UsageError(f"--input {unknown[0]}: no such input (inputs: "
                         f"{', '.join(s.name for s in compiled.inputs)})")
    return feeds


def _onnxruntime(proto: onnx.ModelProto, names: list, feeds: dict) -> dict:
    import onnxruntime as ort
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    present = {o.name for o in copy.graph.output}
    copy.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n)
                             for n in names if n not in present)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(copy.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelError(f"onnxruntime cannot load the model: {str(e).splitlines()[0]}") from None
    wanted = {i.name for i in session.get_inputs()}
    return dict(zip(names, session.run(names, {k: v for k, v in feeds.items() if k in wanted})))


def _run_ours(probe: Graph, options, inputs: dict, seed: int, work_dir: str) -> tuple:
    """Build ``probe`` (every value to compare is an output) in ``work_dir``/project and run
    it in process; (the feeds, our outputs)."""
    from ..build.driver import build_project
    from ..codegen.project import generate_project
    from ..runtime import CompiledModel

    project = generate_project(probe, options, "diff", "diff")
    folder = os.path.join(work_dir, "project")
    project.write_into(folder)
    built = build_project(folder, project.prefix, shared=True,
                          extra_args=("-DCMAKE_BUILD_RPATH_USE_ORIGIN=ON",))
    compiled = CompiledModel(built.library, project.prefix, folder)
    feeds = _feeds(compiled, inputs, seed)
    return feeds, compiled.run(feeds)


def diff_model(model, options, inputs: dict | None = None, tolerance: str = "model",
               seed: int = 0, work_dir: str | None = None) -> DiffResult:
    """Compare every surviving intermediate of our -O build of ``model`` (a path or ModelProto)
    with onnxruntime's on ``inputs`` ({name: array}; the rest seeded random)."""
    from .. import api

    if tolerance not in TOLERANCES:
        raise UsageError(f"--tolerance {tolerance}: one of {', '.join(TOLERANCES)}")
    proto = _proto(model)
    graph = api.optimize(api.translate(model, options), options)
    onnx_values = {o for n in proto.graph.node for o in n.output if o}
    onnx_values |= {o.name for o in proto.graph.output}
    found = probes(graph, onnx_values)
    skipped = [o for n in graph.nodes for o in n.outputs if o and o not in onnx_values]
    names = [name for _, name in found]
    probe = graph.copy()
    probe.outputs = list(graph.outputs) + [n for n in names if n not in graph.outputs]
    if work_dir is not None:
        feeds, ours = _run_ours(probe, options, inputs or {}, seed, work_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="nnbuild-diff-") as folder:
            feeds, ours = _run_ours(probe, options, inputs or {}, seed, folder)
    theirs = _onnxruntime(proto, names, feeds)
    table = TOLERANCES[tolerance]
    rows = []
    for node, name in found:
        actual, expected = ours[name], theirs[name]
        atol = table.get(str(expected.dtype), (0.0, 0.0))[1]
        max_abs, max_rel = errors(actual, expected, atol)
        rows.append(Row(node.label, node.op, name, max_abs, max_rel,
                        mismatch(actual, expected, table)))
    return DiffResult(rows, tolerance, skipped)


def report(result: DiffResult) -> str:
    width = min(max([len(r.node) for r in result.rows] + [4]), 48)
    lines = [f"{'node':<{width}} {'op':<18} {'max abs err':>11} {'max rel err':>11}  verdict"
             f"  tensor"]
    for r in result.rows:
        node = r.node if len(r.node) <= width else r.node[:width - 3] + "..."
        lines.append(f"{node:<{width}} {r.op:<18} {r.max_abs:11.3g} {r.max_rel:11.3g}  "
                     f"{r.verdict:<7}  {r.tensor}")
    bad = [r for r in result.rows if r.problem is not None]
    lines.append(f"{len(result.rows)} tensors compared ({result.tolerance} tolerance), "
                 f"{len(bad)} outside it" + (f"; {len(result.skipped)} values made by nnbuild "
                                            f"have no onnxruntime counterpart"
                                            if result.skipped else ""))
    first = result.first_bad
    if first is not None:
        lines.append(f"first node over tolerance: {first.node} ({first.op}), tensor "
                     f"{first.tensor}: {first.problem}")
    return "\n".join(lines) + "\n"
