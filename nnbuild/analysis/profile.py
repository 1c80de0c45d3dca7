"""`nnbuild profile`: build the model with per-step timers (compile definition NN_PROFILE; a
normal build has none), run it N times, and report one row per kernel mapped to the ONNX node
names it stands for: time, % of total, GFLOP/s and % of the roofline estimate (when the machine
was calibrated). At several thread counts (``profile_threads``, `--threads 1,2`) one build runs
at each and ``scaling_table`` sets the per-node times side by side with each node's speedup and
the time it loses to imperfect scaling, split into time outside the pool's jobs and time waiting
inside them (counters the pool keeps in profiling builds). Also writes a Chrome-trace JSON
(chrome://tracing, Perfetto; with the last run's tasks per thread) and a self-contained HTML
report (slowest layers, arena timeline).
"""
from __future__ import annotations

import ctypes
import html
import json
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np

from ..fileio import replacing
from ..ir.graph import Graph
from .cost import Machine, node_cost


@dataclass
class Row:
    label: str           # the ONNX node names
    op: str
    seconds: float       # median over the runs
    flops: int
    bytes: int
    roofline_s: float | None
    pooled_s: float = 0.0   # median time inside parallel_for calls that used the pool's workers
    busy_s: float = 0.0     # median time of all threads in those calls' tasks

    @property
    def gflops(self) -> float:
        return self.flops / self.seconds / 1e9 if self.seconds > 0 else 0.0

    @property
    def roofline_pct(self) -> float | None:
        if self.roofline_s is None or self.seconds <= 0:
            return None
        return 100.0 * self.roofline_s / self.seconds

    def alone_s(self) -> float:
        """Time outside pooled parallel_for calls: the calling thread working alone."""
        return max(self.seconds - self.pooled_s, 0.0)

    def wait_s(self, threads: int) -> float:
        """Thread time spent waiting inside pooled calls, over the thread count: what the wall
        time would lose if the tasks had been perfectly balanced and the workers awake."""
        return max(threads * self.pooled_s - self.busy_s, 0.0) / threads


@dataclass
class Profile:
    model: str
    runs: int
    rows: list
    kernel_total_s: float     # sum of the rows
    end_to_end_s: float       # median wall time of one run through the C API
    run_kernels_s: float      # median over the runs of that run's kernel times summed
    machine: Machine | None
    graph: Graph
    plan: object
    threads: int = 1          # the model's thread count during the runs
    timeline: list = None     # the last run: (step, thread or -1 for a step's start, start s,
                              # end s) from its first step's start; see nn_pool.h pool_events

    @property
    def coverage(self) -> float:
        """The rows' sum (per-kernel medians) over the end-to-end latency (median run): 1.0 when
        the rows account for every moment of a run. On a busy machine it drops below
        ``run_coverage``: each kernel's median leaves out its own slow runs."""
        return self.kernel_total_s / self.end_to_end_s if self.end_to_end_s > 0 else 0.0

    @property
    def run_coverage(self) -> float:
        """Median over the runs of that run's summed kernel times, over the median run: what
        the timers miss (the call from Python, copies), free of the noise ``coverage`` sees."""
        return self.run_kernels_s / self.end_to_end_s if self.end_to_end_s > 0 else 0.0


def _feeds(model, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in model.inputs:
        if spec.dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(spec.shape).astype(spec.dtype)
        elif spec.dtype.kind == "b":
            feeds[spec.name] = rng.integers(0, 2, spec.shape).astype(bool)
        else:
            feeds[spec.name] = rng.integers(0, 10, spec.shape).astype(spec.dtype)
    return feeds


def profile_model(model_path: str, options, runs: int = 20, work_dir: str | None = None,
                  machine: Machine | None = None, threads: int = 1) -> Profile:
    """Per-node times of `runs` runs at `threads` threads (after one warm-up run)."""
    return profile_threads(model_path, options, (threads,), runs, work_dir, machine)[0]


def profile_threads(model_path: str, options, counts, runs: int = 20,
                    work_dir: str | None = None, machine: Machine | None = None) -> list:
    """One profiling build, run `runs` times at each thread count of `counts` in turn: one
    Profile per count, in that order."""
    import tempfile

    from .. import api
    from ..build.driver import build_project
    from ..codegen.project import generate_project
    from ..runtime import CompiledModel

    if work_dir is None:                       # a build of our own: removed afterwards
        with tempfile.TemporaryDirectory(prefix="nnbuild-profile-") as temporary:
            return profile_threads(model_path, options, counts, runs, temporary, machine)
    graph = api.optimize(api.translate(model_path, options), options)
    project = generate_project(graph, options, os.path.basename(model_path), "profile")
    folder = os.path.join(work_dir, "project")
    project.write_into(folder)
    result = build_project(folder, project.prefix, shared=True,
                           extra_args=("-DCMAKE_C_FLAGS=-DNN_PROFILE",
                                       "-DCMAKE_BUILD_RPATH_USE_ORIGIN=ON"))
    model = CompiledModel(result.library, project.prefix, folder)
    read = getattr(model._lib, f"{project.prefix}_profile")
    read.argtypes, read.restype = [ctypes.POINTER(ctypes.c_double), ctypes.c_int], ctypes.c_int
    pool = getattr(model._lib, f"{project.prefix}_profile_pool")
    pool.argtypes = [ctypes.POINTER(ctypes.c_double)] * 2 + [ctypes.c_int]
    pool.restype = ctypes.c_int
    events = getattr(model._lib, f"{project.prefix}_pool_events")
    events.argtypes, events.restype = [ctypes.POINTER(ctypes.c_double), ctypes.c_int], ctypes.c_int
    feeds = _feeds(model)
    profiles = []
    for threads in counts:
        model.set_num_threads(threads)
        profiles.append(_measure(model, (read, pool, events), feeds, runs, machine, graph,
                                 project.plan, model_path, threads))
    model.set_num_threads(1)                   # the workers end before the library unloads
    return profiles


_EVENTS = 65536                                      # NN_POOL_PROFILE_EVENTS


def _measure(model, readers, feeds, runs, machine, graph, plan, model_path,
             threads) -> Profile:
    read, pool, events = readers
    steps = read(None, 0)
    buffer, pooled, busy = ((ctypes.c_double * max(steps, 1))() for _ in range(3))
    timeline = (ctypes.c_double * (4 * _EVENTS))()
    model.run(feeds)                                 # warm up, then clear the counters
    read(buffer, steps)
    pool(pooled, busy, steps)
    events(timeline, _EVENTS)
    wall, per_run, per_run_pool = [], [], []
    for _ in range(runs):
        start = time.perf_counter()
        model.run(feeds)
        wall.append(time.perf_counter() - start)
        read(buffer, steps)
        pool(pooled, busy, steps)
        recorded = min(events(timeline, _EVENTS), _EVENTS)
        per_run.append(list(buffer[:steps]))
        per_run_pool.append([list(pooled[:steps]), list(busy[:steps])])
    per_run = np.array(per_run).reshape(runs, steps) * 1e-9
    times = np.median(per_run, axis=0)
    pooled_s, busy_s = np.median(np.array(per_run_pool).reshape(runs, 2, steps) * 1e-9, axis=0)
    rows = []
    for i in range(steps):
        seconds = float(times[i])
        if i < len(graph.nodes):
            node = graph.nodes[i]
            cost = node_cost(graph, node)
            rows.append(Row(node.label, node.op, seconds, cost.flops, cost.bytes,
                            cost.roofline_s(machine) if machine else None,
                            float(pooled_s[i]), float(busy_s[i])))
        else:
            rows.append(Row("(graph outputs copied into place)", "copy", seconds, 0, 0, None,
                            float(pooled_s[i]), float(busy_s[i])))
    last = np.array(timeline[:4 * recorded]).reshape(recorded, 4)
    origin = last[0, 2] if recorded else 0.0
    return Profile(model_path, runs, rows, sum(r.seconds for r in rows),
                   statistics.median(wall), float(np.median(per_run.sum(axis=1))), machine,
                   graph, plan, threads,
                   [(int(step), int(thread), (start - origin) * 1e-9, (end - origin) * 1e-9)
                    for step, thread, start, end in last])


# --- reports -----------------------------------------------------------------------------------
def table(p: Profile, top: int | None = None) -> str:
    rows = sorted(p.rows, key=lambda r: -r.seconds)[:top] if top else p.rows
    total = p.kernel_total_s or 1.0
    lines = [f"{'node':<48} {'op':<14} {'ms':>9} {'%':>6} {'GFLOP/s':>9} {'% roof':>7}"]
    for r in rows:
        roof = f"{r.roofline_pct:7.1f}" if r.roofline_pct is not None else "      -"
        label = r.label if len(r.label) <= 48 else r.label[:45] + "..."
        lines.append(f"{label:<48} {r.op:<14} {r.seconds * 1e3:9.4f} "
                     f"{100 * r.seconds / total:6.2f} {r.gflops:9.3f} {roof}")
    lines.append(f"kernels: {p.kernel_total_s * 1e3:.4f} ms per run (sum of rows, medians of "
                 f"{p.runs} runs); end to end: {p.end_to_end_s * 1e3:.4f} ms (median, C API "
                 f"called from Python)")
    lines.append(f"kernels / end to end: the rows sum to {100 * p.coverage:.1f}% of it; each "
                 f"run's kernels take {100 * p.run_coverage:.1f}% of the run (medians)")
    if p.machine is None:
        lines.append("roofline: not calibrated on this machine (run `nnbuild calibrate`)")
    return "\n".join(lines) + "\n"


def scaling_table(profiles: list, top: int | None = None) -> str:
    """Per-node ms at each thread count side by side (first count = base), each later count's
    speedup over the base and its loss: ms at that count minus base ms x base / count, the time
    it runs beyond perfect scaling. Then, at the last count, two parts of that loss: `alone`, the
    ms outside pooled parallel_for calls (the calling thread working by itself: an unsplit
    kernel, serial code), and `wait`, the thread time spent waiting inside pooled calls over the
    thread count (tasks of unequal length, a worker waking). What they leave of the loss is work
    that got slower or was repeated with more threads. Sorted by the last count's loss, or in
    node order without `top`."""
    base, last = profiles[0], profiles[-1]
    lost = lambda k: last.rows[k].seconds - base.rows[k].seconds * base.threads / last.threads
    order = sorted(range(len(base.rows)), key=lambda k: -lost(k))[:top] if top \
        else range(len(base.rows))
    head = f"{'node':<40} {'op':<14}" + "".join(f" {f'ms@{p.threads}':>9}" for p in profiles)
    head += "".join(f" {f'x@{p.threads}':>6} {f'lost@{p.threads}':>8}" for p in profiles[1:])
    head += f" {f'alone@{last.threads}':>9} {f'wait@{last.threads}':>8}"
    lines = [head]
    speedup = lambda a, b: f"{a / b:6.2f}" if b > 0 else "     -"
    for k in order:
        r = base.rows[k]
        label = r.label if len(r.label) <= 40 else r.label[:37] + "..."
        line = f"{label:<40} {r.op:<14}" + "".join(f" {p.rows[k].seconds * 1e3:9.4f}"
                                                    for p in profiles)
        for p in profiles[1:]:
            excess = p.rows[k].seconds - r.seconds * base.threads / p.threads
            line += f" {speedup(r.seconds, p.rows[k].seconds)} {excess * 1e3:8.4f}"
        tail = last.rows[k]
        line += f" {tail.alone_s() * 1e3:9.4f} {tail.wait_s(last.threads) * 1e3:8.4f}"
        lines.append(line)
    for what, attr in (("kernels", "kernel_total_s"), ("end to end", "end_to_end_s")):
        values = [getattr(p, attr) for p in profiles]
        lines.append(f"{what}: " + ", ".join(f"{v * 1e3:.4f} ms at {p.threads}"
                                             for v, p in zip(values, profiles))
                     + "".join(f"; x{values[0] / v:.2f} at {p.threads}"
                               for v, p in zip(values[1:], profiles[1:]) if v > 0))
    alone = sum(r.alone_s() for r in last.rows)
    wait = sum(r.wait_s(last.threads) for r in last.rows)
    lines.append(f"at {last.threads}: {alone * 1e3:.4f} ms alone (outside pooled calls), "
                 f"{wait * 1e3:.4f} ms waiting inside them (thread time / {last.threads})")
    lines.append(f"(medians of {base.runs} runs per thread count; lost@N: ms@N minus ms@"
                 f"{base.threads} x {base.threads}/N; alone and wait: see scaling_table)")
    return "\n".join(lines) + "\n"


def chrome_trace(p: Profile) -> dict:
    """One median run as consecutive complete events (microseconds), process 1; the last run's
    timeline as process 2: its steps on thread 0, each thread's tasks on threads 1, 2...
    (named after their step's nodes)."""
    events, ts = [], 0.0
    for r in p.rows:
        dur = r.seconds * 1e6
        events.append({"name": r.label, "cat": r.op, "ph": "X", "ts": round(ts, 3),
                       "dur": round(dur, 3), "pid": 1, "tid": 1,
                       "args": {"op": r.op, "flops": r.flops, "bytes": r.bytes}})
        ts += dur
    marks = sorted((start, step) for step, thread, start, _ in p.timeline or () if thread < 0)
    for (start, step), (end, _) in zip(marks, marks[1:]):
        if step < len(p.rows):
            events.append({"name": p.rows[step].label, "cat": p.rows[step].op, "ph": "X",
                           "ts": round(start * 1e6, 3), "dur": round((end - start) * 1e6, 3),
                           "pid": 2, "tid": 0})
    for step, thread, start, end in p.timeline or ():
        if thread >= 0 and step < len(p.rows):
            events.append({"name": p.rows[step].label, "cat": "task", "ph": "X",
                           "ts": round(start * 1e6, 3), "dur": round((end - start) * 1e6, 3),
                           "pid": 2, "tid": thread + 1})
    events += [{"name": "process_name", "ph": "M", "pid": 1,
                "args": {"name": "per node, median of the runs"}},
               {"name": "process_name", "ph": "M", "pid": 2,
                "args": {"name": f"last run at {p.threads} threads: steps, tasks per thread"}}]
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"model": os.path.basename(p.model), "runs": p.runs}}


def _arena_spans(graph: Graph, plan) -> list:
    first, last = {}, {}
    for i, node in enumerate(graph.nodes):
        for name in node.inputs:
            if name in first:
                last[name] = i
        for name in node.outputs:
            if name and name in plan.offsets:
                first[name], last[name] = i, i
    return [(name, first[name], last[name], plan.offsets[name], graph.types[name].nbytes)
            for name in first]


def html_report(p: Profile) -> str:
    esc = html.escape
    slow = sorted(p.rows, key=lambda r: -r.seconds)[:20]
    longest = max((r.seconds for r in slow), default=0) or 1.0
    bars = []
    for k, r in enumerate(slow):
        w = 600 * r.seconds / longest
        bars.append(f'<rect x="300" y="{k * 22}" width="{w:.1f}" height="18" fill="#4a7"/>'
                    f'<text x="295" y="{k * 22 + 14}" text-anchor="end">{esc(r.label[:40])}</text>'
                    f'<text x="{305 + w:.1f}" y="{k * 22 + 14}">{r.seconds * 1e3:.3f} ms</text>')
    spans = _arena_spans(p.graph, p.plan)
    steps = max(len(p.graph.nodes), 1)
    arena = max(p.plan.arena_bytes, 1)
    rects = [f'<rect x="{900 * a / steps:.1f}" y="{300 * off / arena:.1f}" '
             f'width="{max(900 * (b - a + 1) / steps, 1):.1f}" '
             f'height="{max(300 * size / arena, 1):.1f}" fill="#58c" stroke="#fff">'
             f'<title>{esc(name)}: {size} bytes at {off}, nodes {a}..{b}</title></rect>'
             for name, a, b, off, size in spans]
    rows = "".join(
        f"<tr><td>{esc(r.label)}</td><td>{esc(r.op)}</td><td>{r.seconds * 1e3:.4f}</td>"
        f"<td>{100 * r.seconds / (p.kernel_total_s or 1):.2f}</td><td>{r.gflops:.3f}</td>"
        f"<td>{'' if r.roofline_pct is None else f'{r.roofline_pct:.1f}'}</td></tr>"
        for r in p.rows)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>nnbuild profile: {esc(os.path.basename(p.model))}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:2px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}} svg text{{font-size:12px}}</style></head><body>
<h1>{esc(os.path.basename(p.model))}</h1>
<p>{p.runs} runs; kernels {p.kernel_total_s * 1e3:.4f} ms per run, end to end
{p.end_to_end_s * 1e3:.4f} ms ({100 * p.coverage:.1f}% of it in the kernels); arena {p.plan.arena_bytes} bytes (lower bound
{p.plan.lower_bound}, naive sum {p.plan.naive_bytes}).</p>
<h2>Slowest layers</h2>
<svg width="1000" height="{22 * len(slow)}">{"".join(bars)}</svg>
<h2>Arena timeline</h2><p>x: node index, y: arena offset; hover for the tensor.</p>
<svg width="900" height="300" style="border:1px solid #ccc">{"".join(rects)}</svg>
<h2>Every kernel</h2>
<table><tr><th>node</th><th>op</th><th>ms</th><th>%</th><th>GFLOP/s</th><th>% roofline</th></tr>
{rows}</table></body></html>
"""


def write_reports(p: Profile, trace_path: str, html_path: str) -> None:
    with replacing(trace_path) as f:
        json.dump(chrome_trace(p), f, indent=1)
        f.write("\n")
    with replacing(html_path) as f:
        f.write(html_report(p))
