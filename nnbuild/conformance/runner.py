"""Run conformance cases through the whole pipeline in one batched build.

    prepare   (parallel, --jobs processes) translate -> optimize -> generate each case into
              WORK/cases/<p>/ (p = c0000, c0001, ... its C prefix), test inputs into
              WORK/data/<p>/<set>/input_K.bin; failures are classified here, never built
    build     WORK/CMakeLists.txt adds every generated project unchanged (its own flags, app
              off) and links groups of case libraries into driver programs; one cmake configure
              and one ninja run over all cores. Cases whose sources fail to compile or whose
              symbols break a driver's link are found in the ninja log, classified as build
              errors and left out of the next round
    execute   (parallel) ``driver_N <p> DIR...`` per case: a crash or timeout hits one case only;
              outputs come back as .npy with the dtype and shape of the model's C API
    compare   nnbuild.testing.mismatch with OP_TOLERANCE (integers and bools exactly)

Re-running into the same kept folder with the same selection rebuilds only what changed.
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field

import jinja2
import numpy as np

from .. import __version__, bindings
from ..build.driver import cmake_exe, ninja_exe
from ..build.outdir import publish
from ..errors import BuildError, UsageError
from ..resources import templates_dir
from ..testing import OP_TOLERANCE, mismatch
from . import not_compiled
from .platforms import Platform, platform_for
from .results import (BUILD_ERROR, COMPILER_ERROR, DATA_DEPENDENT, MISMATCH, PASSED, RUNTIME_ERROR,
                      UNSUPPORTED_ATTR, Result, classify_error, one_line)

MARKER = "nnbuild-conformance.txt"      # marks a folder the runner owns (safe to reuse)
CASES_PER_DRIVER = 64
MAX_BUILD_ROUNDS = 6
PREPARE_TIMEOUT = 300                   # seconds to translate + generate one case


@dataclass
class Prepared:
    """A case generated into WORK/cases/<prefix> with its data sets written."""
    index: int
    prefix: str
    sets: int
    frozen: list = field(default_factory=list)   # graph inputs frozen to their test data
    dependent_reason: str = ""                    # why they had to be


@dataclass
class Sweep:
    results: list                                   # Result per case, in case order
    timing: dict = field(default_factory=dict)      # phase -> seconds
    work_dir: str = ""


def case_prefix(index: int) -> str:
    return f"c{index:04d}"


# ----------------------------------------------------------------------------- prepare

def _runtime_inputs(model) -> list:
    inits = {t.name for t in model.graph.initializer}
    return [vi.name for vi in model.graph.input if vi.name not in inits]


def _describe(value) -> str:
    if value is None:
        return "an absent optional"
    if isinstance(value, list):
        return "a sequence"
    return f"{value.dtype}{list(value.shape)}"


def prepare_case(case, prefix: str, work_dir: str, opt_level: int = 2, freeze: bool = False,
                 target: str = "generic"):
    """Generate one case's project for ``target`` and write its inputs; returns Prepared or a
    failed Result. Runs in a worker process; never raises. See ``freeze_inputs`` for ``freeze``."""
    try:
        return _prepare(case, prefix, work_dir, opt_level, freeze, target)
    except Exception as e:   # noqa: BLE001  (any failure belongs to this case only)
        return Result(case.id, case.op, *classify_error(e))


def _generate(model, prefix: str, opt_level: int, case_id: str, shapes: dict | None = None,
              target: str = "generic"):
    from .. import api
    from ..codegen import generate_project
    from ..options import Options
    options = Options.make(shapes=shapes, name=prefix, target=target, opt_level=opt_level)
    graph = api.optimize(api.translate(model, options), options)
    digest = hashlib.sha256(model.SerializeToString()).hexdigest()
    return graph, generate_project(graph, options, case_id, digest)


_NEEDS_VALUE = re.compile(r"'?([\w.:/-]+)'? must be known at compile time")
MAX_FROZEN = 8


def dependent_input(reason: str, inputs: list) -> str | None:
    """The graph input a data-dependent-shape message names, if it names one."""
    m = _NEEDS_VALUE.search(reason)
    return m.group(1) if m and m.group(1) in inputs else None


def freeze_input(model, name: str, value: np.ndarray):
    """A copy of ``model`` where graph input ``name`` is an initializer holding ``value``."""
    import onnx
    from onnx import numpy_helper
    frozen = onnx.ModelProto()
    frozen.CopyFrom(model)
    keep = [vi for vi in frozen.graph.input if vi.name != name]
    del frozen.graph.input[:]
    frozen.graph.input.extend(keep)
    frozen.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    return frozen


def with_frozen(result: Result, frozen: list, dependent_reason: str, freeze: bool) -> Result:
    """The result of a case that ran with inputs frozen to its test data. Unless ``freeze``,
    the case stays a data-dependent-shape failure and the reason says how the frozen variant
    fared (what the op itself does once the shape is known)."""
    names = ", ".join(frozen)
    if freeze:
        return Result(result.id, result.op, result.category,
                      f"{result.reason} ({names} frozen)" if result.reason else "",
                      result.missing_ops, result.max_abs, result.max_rel, frozen=list(frozen))
    where = dependent_reason.split(": ")[0] if ": " in dependent_reason else "the model"
    fared = "passes" if result.passed else f"fails: {result.category}: {result.reason}"
    return Result(result.id, result.op, DATA_DEPENDENT,
                  one_line(f"{where} needs {names} at compile time; with "
                           f"{'it' if len(frozen) == 1 else 'them'} frozen to the test data it "
                           f"{fared}", 400), frozen=list(frozen), frozen_result=result.category)


def _binding(value):
    """What a user binds with --shape for this value of a sequence or optional input."""
    if value is None:
        return bindings.parse("", None)
    if isinstance(value, list):
        if not all(isinstance(e, np.ndarray) and e.dtype != object for e in value):
            raise ValueError("a sequence of non-tensors")
        return (bindings.SEQUENCE, tuple(tuple(int(d) for d in e.shape) for e in value))
    return tuple(int(d) for d in value.shape)


def _symbolic(vi) -> bool:
    """A tensor input whose shape the model leaves open (a symbolic or missing dim)."""
    t = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
    return t is not None and (not t.HasField("shape") or
                              any(not d.HasField("dim_value") for d in t.shape.dim))


def boundary_bindings(model, data: list) -> dict:
    """--shape bindings read from the test data, exactly as a user gives them: sequence and
    optional inputs (lengths, element shapes, presence; every data set must agree, ValueError
    naming the input otherwise) and tensor inputs with symbolic dims (when the sets agree)."""
    names = _runtime_inputs(model)
    out = {}
    open_dims = {vi.name for vi in model.graph.input if _symbolic(vi)}
    for name, kind in bindings.declared_kinds(model.graph)["inputs"]:
        if kind == "tensor" and name not in open_dims:
            continue
        found = {_binding(dict(zip(names, ins)).get(name)) for ins, _ in data}
        if kind == "tensor" and len(found) != 1:
            continue                    # no one binding: translation says what is missing
        if len(found) != 1:
            raise ValueError(f"input {name!r}: the data sets need different bindings "
                             f"({', '.join(sorted(bindings.to_text(b) for b in found))})")
        out[name] = found.pop()
    return out


def flatten_values(names: list, values: list) -> list:
    """[(C API name, array)]: sequences as NAME[k] elements, absent optionals left out (the
    frontend's flattening, nnbuild/frontend/subgraphs.py)."""
    flat = []
    for name, value in zip(names, values):
        if isinstance(value, list):
            flat += [(bindings.element_name(name, k), e) for k, e in enumerate(value)]
        elif value is not None:
            flat.append((name, value))
    return flat


def _prepare(case, prefix: str, work_dir: str, opt_level: int, freeze: bool, target: str):
    names = _runtime_inputs(case.model)
    model, frozen, dependent_reason = case.model, [], ""
    data, shapes = None, {}
    if any(k != "tensor" for _, k in bindings.declared_kinds(model.graph)["inputs"]) or \
            any(_symbolic(vi) for vi in model.graph.input if vi.name in names):
        data = case.load_data()
        try:
            shapes = boundary_bindings(model, data)
        except ValueError as e:
            return Result(case.id, case.op, UNSUPPORTED_ATTR, one_line(str(e)))
    while True:
        try:
            graph, project = _generate(model, prefix, opt_level, case.id, shapes, target)
            break
        except Exception as e:   # noqa: BLE001
            category, reason, missing = classify_error(e)
            if category == DATA_DEPENDENT and len(frozen) < MAX_FROZEN:
                name = dependent_input(reason, names)
                data = case.load_data() if data is None else data
                values = [dict(zip(names, ins)).get(name) for ins, _ in data] if name else []
                if values and all(isinstance(v, np.ndarray) and v.dtype != object and
                                  np.array_equal(v, values[0]) for v in values):
                    dependent_reason = dependent_reason or reason
                    model = freeze_input(model, name, values[0])
                    frozen.append(name)
                    continue
            failed = Result(case.id, case.op, category, reason, missing)
            return with_frozen(failed, frozen, dependent_reason, freeze) if frozen else failed

    data = case.load_data() if data is None else data
    for k, (inputs, outputs) in enumerate(data):
        for what, values in (("input", inputs), ("output", outputs)):
            for i, v in enumerate(values):
                if isinstance(v, list) and all(isinstance(e, np.ndarray) and e.dtype != object
                                               for e in v) or v is None:
                    continue            # a sequence or an absent optional: flattened
                if not isinstance(v, np.ndarray) or v.dtype == object:
                    return Result(case.id, case.op, UNSUPPORTED_ATTR,
                                  f"test data {what} {i} is {_describe(v)} (tensors only)")
        given = dict(flatten_values(names, inputs))
        set_dir = os.path.join(work_dir, "data", prefix, str(k))
        os.makedirs(set_dir, exist_ok=True)
        for i, name in enumerate(graph.inputs):
            want = graph.types[name]
            value = given.get(name)
            if value is None:
                return Result(case.id, case.op, COMPILER_ERROR,
                              f"input {name!r}: the test data has no value for it")
            if value.dtype != np.dtype(want.dtype.numpy) or tuple(value.shape) != want.shape:
                return Result(case.id, case.op, COMPILER_ERROR,
                              f"input {name!r}: test data is {_describe(value)}, the "
                              f"translated model takes {want}")
            with open(os.path.join(set_dir, f"input_{i}.bin"), "wb") as f:
                f.write(np.ascontiguousarray(value).tobytes())
    publish(project, os.path.join(work_dir, "cases", prefix))
    return Prepared(-1, prefix, len(data), frozen, dependent_reason)


class PrepareTimeout(Exception):
    """A case's translation or generation ran past PREPARE_TIMEOUT."""


def _alarm(signum, frame):
    raise PrepareTimeout(f"translate/optimize/generate took over {PREPARE_TIMEOUT}s")


def _prepare_task(task):
    index, case, prefix, work_dir, opt_level, freeze, target = task
    previous = None
    try:                                  # a case that hangs the compiler fails alone
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(PREPARE_TIMEOUT)
    except (AttributeError, ValueError):  # no SIGALRM (Windows), or not the main thread
        pass
    try:
        out = prepare_case(case, prefix, work_dir, opt_level, freeze, target)
    except PrepareTimeout as e:           # fired outside prepare_case's own handler
        out = Result(case.id, case.op, COMPILER_ERROR, str(e))
    finally:
        if previous is not None:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    if isinstance(out, Prepared):
        out.index = index
    return index, out


def _pool(jobs: int):
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    return cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(method))


def prepare_all(cases: list, work_dir: str, jobs: int, opt_level: int, freeze: bool,
                log, target: str = "generic") -> tuple:
    """-> ({index: Prepared}, {index: Result}) over all cases, ``jobs`` processes."""
    tasks = [(i, c, case_prefix(i), work_dir, opt_level, freeze, target)
             for i, c in enumerate(cases)]
    ready, failed = {}, {}
    if jobs <= 1 or len(tasks) <= 1:
        outcomes = map(_prepare_task, tasks)
        pool = None
    else:
        pool = _pool(jobs)
        outcomes = pool.map(_prepare_task, tasks, chunksize=4)
    try:
        for done, (index, out) in enumerate(outcomes, 1):
            (ready if isinstance(out, Prepared) else failed)[index] = out
            if done % 250 == 0:
                log(f"  prepared {done}/{len(tasks)}")
    finally:
        if pool is not None:
            pool.shutdown()
    return ready, failed


# ----------------------------------------------------------------------------- build

def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(templates_dir(), "conformance")),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)


def _write_if_changed(path: str, content: bytes) -> None:
    try:
        with open(path, "rb") as f:
            if f.read() == content:
                return                         # keep the timestamp: no rebuild
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)


def group_drivers(prefixes: list, alone: set, size: int = CASES_PER_DRIVER) -> list:
    """[{name, cases}]: runs of ``size`` cases per driver; cases in ``alone`` get their own."""
    shared = [p for p in prefixes if p not in alone]
    groups = [shared[i:i + size] for i in range(0, len(shared), size)]
    groups += [[p] for p in prefixes if p in alone]
    return [{"name": f"driver_{n:03d}", "cases": g} for n, g in enumerate(groups)]


def write_super_project(work_dir: str, prefixes: list, drivers: list) -> None:
    env = _environment()
    _write_if_changed(os.path.join(work_dir, "CMakeLists.txt"), env.get_template(
        "CMakeLists.txt.j2").render(version=__version__, cases=prefixes, drivers=drivers).encode())
    drivers_dir = os.path.join(work_dir, "drivers")
    for header in ("nn_case.h",):
        with open(os.path.join(templates_dir(), "conformance", header), "rb") as f:
            _write_if_changed(os.path.join(drivers_dir, header), f.read())
    with open(os.path.join(templates_dir(), "project", "npy.h"), "rb") as f:
        _write_if_changed(os.path.join(drivers_dir, "npy.h"), f.read())
    for d in drivers:
        _write_if_changed(os.path.join(drivers_dir, f"{d['name']}.c"), env.get_template(
            "driver.c.j2").render(version=__version__, name=d["name"], cases=d["cases"]).encode())


_FAILED = re.compile(r"^FAILED: (?:\[code=\d+\] )?(\S+)", re.M)
_PROGRESS = re.compile(r"^\[\d+/\d+\] |^ninja: ", re.M)
_CASE_PATH = re.compile(r"(?:^|[/\s])cases/(c\d{4,})/")
_DRIVER = re.compile(r"\b(driver_\d{3,})\b")
_CASE_SYMBOL = re.compile(r"\b(c\d{4,})_\w+")
_DIAGNOSTIC = re.compile(r"\berror\b|undefined reference|multiple definition|CMake Error",
                         re.IGNORECASE)


def _first_diagnostic(lines: list) -> str:
    for line in lines:
        if _DIAGNOSTIC.search(line):
            return one_line(line)
    return one_line(next((ln for ln in reversed(lines) if ln.strip()), "no output"))


def parse_build_log(text: str, drivers: list) -> tuple:
    """Ninja/CMake output -> ({prefix: reason} of cases to leave out, [driver names that
    failed to link without naming a case])."""
    bad, unknown = {}, []
    members = {d["name"]: d["cases"] for d in drivers}
    for m in _FAILED.finditer(text):
        target = m.group(1)
        rest = text[m.end():]
        end = _PROGRESS.search(rest)
        block = rest[:end.start() if end else len(rest)].splitlines()[1:]
        output = block[1:]                      # block[0] is the command line
        case = _CASE_PATH.search(" " + target)
        driver = _DRIVER.search(target)
        if case:
            bad.setdefault(case.group(1), _first_diagnostic(output))
        elif driver:                            # a link: blame the libraries, else symbols
            group = members.get(driver.group(1), [])
            text = "\n".join(output)
            culprits = [p for p in dict.fromkeys(_CASE_PATH.findall(text)) if p in group] or \
                [p for p in dict.fromkeys(_CASE_SYMBOL.findall(text)) if p in group]
            for p in culprits:
                lines = [ln for ln in output if p in ln]
                bad.setdefault(p, "link: " + _first_diagnostic(lines or output))
            if not culprits:
                unknown.append(driver.group(1))
    for m in re.finditer(r"^CMake Error at (?:.*/)?cases/(c\d{4,})/(.*)$", text, re.M):
        bad.setdefault(m.group(1), one_line("CMake Error at " + m.group(2)))
    return bad, unknown


def _run_logged(cmd: list, log_path: str) -> tuple:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace")
    with open(log_path, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n" + proc.stdout)
    return proc.returncode, proc.stdout


CONFIGURED = "configured-for.txt"     # in a kept batch: the toolchain its build folder uses


def _configuration(build_dir: str, toolchain: str | None) -> list:
    """CMake's configure options for ``toolchain`` (None: the host's compiler); a build
    folder configured for another one is removed first (a kept batch re-run for a new target)."""
    wanted = toolchain or "native"
    stamp = os.path.join(os.path.dirname(build_dir), CONFIGURED)
    try:
        with open(stamp) as f:
            same = f.read().strip() == wanted
    except OSError:
        same = False
    if not same:
        shutil.rmtree(build_dir, ignore_errors=True)
        with open(stamp, "w") as f:
            f.write(wanted + "\n")
    return [f"-DCMAKE_TOOLCHAIN_FILE={toolchain}"] if toolchain else []


def build_all(work_dir: str, prefixes: list, jobs: int, log, toolchain: str | None = None) -> tuple:
    """Build every case in one super-project (cross-built through ``toolchain``, a CMake
    toolchain file, when given). -> ({prefix: driver path}, {prefix: reason})."""
    build_dir = os.path.join(work_dir, "build")
    log_path = os.path.join(work_dir, "build.log")
    open(log_path, "w").close()
    configure = _configuration(build_dir, toolchain)
    bad, alone = {}, set()
    for round_ in range(1, MAX_BUILD_ROUNDS + 1):
        live = [p for p in prefixes if p not in bad]
        if not live:
            return {}, bad
        drivers = group_drivers(live, alone)
        write_super_project(work_dir, live, drivers)
        start = time.monotonic()
        if not os.path.isfile(os.path.join(build_dir, "build.ninja")):
            rc, out = _run_logged([cmake_exe(), "-S", work_dir, "-B", build_dir, "-G", "Ninja",
                                   f"-DCMAKE_MAKE_PROGRAM={ninja_exe()}",
                                   "-DCMAKE_BUILD_TYPE=Release", *configure], log_path)
            if rc != 0:
                found, _ = parse_build_log(out, drivers)
                if not found:
                    raise BuildError(f"conformance: CMake configure failed: "
                                     f"{_first_diagnostic(out.splitlines())} (log: {log_path})")
                bad.update(found)
                shutil.rmtree(build_dir, ignore_errors=True)
                continue
        rc, out = _run_logged([ninja_exe(), "-C", build_dir, "-k", "0", "-j", str(jobs)],
                              log_path)
        log(f"  build round {round_}: {len(live)} cases, {len(drivers)} drivers, "
            f"{time.monotonic() - start:.0f}s" + ("" if rc == 0 else ", failures"))
        if rc == 0:
            paths = {p: os.path.join(build_dir, d["name"]) for d in drivers for p in d["cases"]}
            return paths, bad
        found, unknown = parse_build_log(out, drivers)
        progress = bool(found)
        bad.update(found)
        for name in unknown:                    # a link failure naming no case: isolate them
            group = next(d["cases"] for d in drivers if d["name"] == name)
            if len(group) == 1:
                bad.setdefault(group[0], "link: " + _first_diagnostic(out.splitlines()))
                progress = True
            elif not alone.issuperset(group):
                alone.update(group)
                progress = True
        if not progress:
            raise BuildError(f"conformance: the batched build failed and no case could be "
                             f"blamed: {_first_diagnostic(out.splitlines())} (log: {log_path})")
    raise BuildError(f"conformance: the build still fails after {MAX_BUILD_ROUNDS} rounds "
                     f"(log: {log_path})")


# ----------------------------------------------------------------------------- execute

def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


def execute_case(driver: str, prefix: str, set_dirs: list, timeout: float,
                 emulator: tuple = ()) -> str | None:
    """Run one case over its data-set folders (under ``emulator``, a command prefix, when
    given); None when the driver succeeded, else why not."""
    for d in set_dirs:
        for name in os.listdir(d):
            if name.startswith("output_"):
                os.remove(os.path.join(d, name))
    try:
        proc = subprocess.run([*emulator, driver, prefix, *set_dirs], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout, text=True,
                              errors="replace")
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f}s"
    if proc.returncode == 0:
        return None
    last = one_line("\n".join(reversed(proc.stdout.strip().splitlines()))) if proc.stdout.strip() \
        else ""
    if proc.returncode < 0:
        return f"crashed ({_signal_name(-proc.returncode)})" + (f": {last}" if last else "")
    return f"exit code {proc.returncode}" + (f": {last}" if last else "")


def _as_expected(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The driver writes bfloat16 as raw 2-byte records ('<V2') and the narrow types (float8,
    float4, int4, int2; one byte per element, numpy's layout) as '<V1': view them as the
    expected dtype. Inputs go to the driver as their raw bytes, which is the C API's layout."""
    if actual.dtype.kind == "V" and expected.dtype.itemsize == actual.dtype.itemsize:
        return actual.view(expected.dtype)
    return actual


def error_stats(actual: np.ndarray, expected: np.ndarray) -> tuple:
    """(max abs error, max relative error) over elements that are finite in both."""
    if actual.shape != expected.shape or actual.size == 0 or \
            actual.dtype.kind not in "fiub" or expected.dtype.kind not in "fiub":
        return None, None
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    ok = np.isfinite(a) & np.isfinite(e)
    if not ok.any():
        return None, None
    err = np.abs(a[ok] - e[ok])
    scale = np.abs(e[ok])
    rel = err[scale > 0] / scale[scale > 0]             # relative error where it is defined
    return float(err.max()), float(rel.max()) if rel.size else None


_ORDERED_BITS = {np.dtype(np.float16): np.int16, np.dtype(np.float32): np.int32,
                 np.dtype(np.float64): np.int64}


def ulp_distance(actual: np.ndarray, expected: np.ndarray) -> int | None:
    """Largest distance in units in the last place of ``expected``'s IEEE type (float16/32/64)
    over the elements that are finite in both; None for other types."""
    bits = _ORDERED_BITS.get(expected.dtype)
    if bits is None or actual.shape != expected.shape or actual.size == 0:
        return None
    a, e = np.asarray(actual, expected.dtype), expected
    ok = np.isfinite(a) & np.isfinite(e)
    if not ok.any():
        return None

    def ordered(x):                  # sign-magnitude bits -> integers in the floats' order
        i = x.view(bits).astype(np.int64)
        magnitude = i & np.int64(np.iinfo(bits).max)
        return np.where(i < 0, -magnitude, magnitude)
    return int(np.abs(ordered(a[ok]) - ordered(e[ok])).max())


def compare_case(case, prefix: str, set_dirs: list) -> Result:
    """Compare the driver's outputs with the case's expected outputs."""
    problems, worst_abs, worst_rel, worst_ulp = [], None, None, None
    out_names = [o.name for o in case.model.graph.output]
    for k, (d, (_, expected)) in enumerate(zip(set_dirs, case.load_data())):
        out_names += [str(j) for j in range(len(out_names), len(expected))]
        flat = flatten_values(out_names, expected)      # sequences element by element
        if os.path.isfile(os.path.join(d, f"output_{len(flat)}.npy")):
            problems.append(f"more outputs than the {len(flat)} tensors expected")
        for j, (name, want) in enumerate(flat):
            path = os.path.join(d, f"output_{j}.npy")
            if not os.path.isfile(path):
                problems.append(f"output {name}: not produced")
                continue
            got = _as_expected(np.load(path, allow_pickle=False), want)
            with np.errstate(invalid="ignore", over="ignore"):     # inf - inf is judged below
                problem = mismatch(got, want, OP_TOLERANCE)
            if problem is None:
                continue
            where = f" (data set {k})" if len(set_dirs) > 1 else ""
            problems.append(f"output {name}{where}: {problem}")
            a, r = error_stats(got, want)
            worst_abs = a if worst_abs is None or (a is not None and a > worst_abs) else worst_abs
            worst_rel = r if worst_rel is None or (r is not None and r > worst_rel) else worst_rel
            u = ulp_distance(got, want)
            worst_ulp = u if worst_ulp is None or (u is not None and u > worst_ulp) else worst_ulp
    if not problems:
        return Result(case.id, case.op, PASSED)
    reason = problems[0]
    stats = ([f"max abs {worst_abs:.3g}"] if worst_abs is not None else []) + \
        ([f"max rel {worst_rel:.3g}"] if worst_rel is not None else []) + \
        ([f"max {worst_ulp} ULP"] if worst_ulp is not None else [])
    if stats:
        reason = f"{', '.join(stats)}; {reason}"
    return Result(case.id, case.op, MISMATCH, one_line(reason), max_abs=worst_abs,
                  max_rel=worst_rel, max_ulp=worst_ulp)


def _execute_and_compare(case, prepared: Prepared, driver: str, work_dir: str,
                         timeout: float, where: Platform) -> Result:
    set_dirs = [os.path.join(work_dir, "data", prepared.prefix, str(k))
                for k in range(prepared.sets)]
    problem = execute_case(driver, prepared.prefix, set_dirs, timeout, where.emulator)
    if problem is not None:
        return Result(case.id, case.op, RUNTIME_ERROR, problem)
    try:
        return compare_case(case, prepared.prefix, set_dirs)
    except Exception as e:   # noqa: BLE001  (an unreadable output is this case's failure)
        return Result(case.id, case.op, RUNTIME_ERROR,
                      f"cannot read the outputs: {type(e).__name__}: {one_line(str(e))}")


# ----------------------------------------------------------------------------- all of it

def check_work_dir(folder: str) -> None:
    """A --keep folder must be new, empty, or one this runner wrote before."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"--keep {folder}: exists and is not a folder")
    if os.path.isdir(folder) and os.listdir(folder) and \
            not os.path.isfile(os.path.join(folder, MARKER)):
        raise UsageError(f"--keep {folder}: folder holds files the conformance runner did not "
                         f"write; choose a new or empty folder")


def run(cases: list, work_dir: str, jobs: int | None = None, opt_level: int = 2,
        timeout: float = 60.0, freeze: bool = False, log=print, target: str = "generic") -> Sweep:
    """Every case through translate -> optimize -> generate -> one batched build -> run ->
    compare. ``work_dir`` holds the batch (see the module docstring). Every case is generated
    for ``target`` (``host``: this machine's best), built and run where platforms.platform_for
    says: natively, or cross-built and run under an emulator (arm64-neon under qemu).

    A case whose translation needs the value of a graph input (a Reshape shape, Resize
    scales, reduction axes fed as inputs) is also tried with that input frozen to its test
    data. By default it still counts as a data-dependent-shape failure, the reason telling
    how the frozen variant fared; with ``freeze`` the frozen variant's result counts."""
    jobs = jobs or os.cpu_count() or 1
    where = platform_for(target)
    target = where.target
    check_work_dir(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    with open(os.path.join(work_dir, MARKER), "w") as f:
        f.write("nnbuild conformance batch: cases/<prefix> are the generated projects, "
                "cases.txt maps prefixes to case ids, build.log is the build output.\n")
    with open(os.path.join(work_dir, "cases.txt"), "w") as f:
        f.writelines(f"{case_prefix(i)} {c.id}\n" for i, c in enumerate(cases))
    timing, start = {}, time.monotonic()

    log(f"conformance: {len(cases)} cases, target {where.describe()}, {jobs} jobs, batch folder "
        f"{work_dir}")
    ready, results = prepare_all(cases, work_dir, jobs, opt_level, freeze, log, target)
    timing["prepare_s"] = time.monotonic() - start
    log(f"  prepare: {len(ready)} to build, {len(results)} classified without a build "
        f"({timing['prepare_s']:.0f}s)")

    t = time.monotonic()
    prefixes = [ready[i].prefix for i in sorted(ready)]
    drivers, bad = build_all(work_dir, prefixes, jobs, log, where.toolchain) if prefixes \
        else ({}, {})
    timing["build_s"] = time.monotonic() - t
    for i in sorted(ready):
        reason = bad.get(ready[i].prefix)
        if reason is not None:
            results[i] = Result(cases[i].id, cases[i].op, BUILD_ERROR, reason)
    log(f"  build: {len(drivers)} built, {len(bad)} build errors ({timing['build_s']:.0f}s)")

    t = time.monotonic()
    todo = [i for i in sorted(ready) if ready[i].prefix in drivers]
    with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_execute_and_compare, cases[i], ready[i],
                               drivers[ready[i].prefix], work_dir, timeout, where): i
                   for i in todo}
        for future in cf.as_completed(futures):
            results[futures[future]] = future.result()
    for i in ready:
        if ready[i].frozen:
            results[i] = with_frozen(results[i], ready[i].frozen, ready[i].dependent_reason,
                                     freeze)
    for i, result in results.items():
        known = not_compiled.reason_for(result.id)
        if known and not result.passed:     # still a failure, with the reason it is out of reach
            result.reason = f"not compiled: {known}"
    timing["run_s"] = time.monotonic() - t
    timing["total_s"] = time.monotonic() - start
    log(f"  run: {len(todo)} cases ({timing['run_s']:.0f}s); total {timing['total_s']:.0f}s")
    return Sweep([results[i] for i in range(len(cases))], timing, work_dir)
