"""nnbuild against onnxruntime, side by side in one run, on batch-1 float32 inference.

    python benchmarks/run.py                       # the default set at 1 and 2 threads
    python benchmarks/run.py --threads 1 --models resnet18,mlp --runs 50 --json out.json

The default set (issue 6): the nine light model-zoo nets shipped with the onnx package
(1x3x224x224, weights that are one value everywhere: their speed is real, their numbers are
not), and five networks with seeded weights built by benchmarks/models.py: ResNet-18,
MobileNetV2 (depthwise; both 1x3x224x224), a BERT-style encoder (4 layers, hidden 256,
sequence 128), an MLP and an LSTM (hidden 256, sequence 64). ``--models`` also takes the
real-weight nets of tests/models/data. The default run ends with a 1024x1024x1024 SGEMM (a
MatMul with constant weights): a kernel probe for the "% of peak" bar, shown in the table but
left out of the geometric means. Every model is built once with ``nnbuild.build`` (target ``--target``, default host)
into ``--work``; a model nnbuild cannot compile is reported as "unsupported" and left out of
the means. Then, per thread count, our app (``<p>_app --bench N --threads T``) and onnxruntime
(CPU provider, all graph optimizations on, ``intra_op_num_threads = T``, the same inputs) each
run in a fresh process, alternating ``--repeat`` times; each side's best median is reported
(the best is the least disturbed by other work on the machine). Both run untimed first, in the
timed process: at least ``--warmup`` runs and ``--warmup-ms`` milliseconds (a process younger
than a few milliseconds may still have its threads on one core: a 0.04 ms MLP at two threads
timed in a fresh process ran at its one-thread speed in half the processes). Outputs are
compared once, within the shared model tolerance. Each side's p90 and peak RSS (the
process's own VmHWM at its end: the app's bench line; the onnxruntime worker is a Python
process, so its figure includes the interpreter and numpy) are reported beside the median, and
the code size of the built library without its weights (the text of its objects, binutils
``size``).

Results go to stdout as a markdown table (with the geometric mean of the ratios per thread
count) and to ``--json`` and ``--markdown`` (default: results.json and results.md in --work).

The FMA peak is measured once per run with a small loop of independent vector FMAs
(benchmarks/fma_peak.c, built with the target's flags); "% peak" is GFLOP/s over T times that.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import models                                           # noqa: E402  (benchmarks/models.py)
import nnbuild                                          # noqa: E402
from nnbuild.errors import BuildError, ModelError       # noqa: E402
from nnbuild.fileio import replacing                    # noqa: E402
from nnbuild import targets                             # noqa: E402
from nnbuild.ops import registry                        # noqa: E402
from nnbuild.testing import MODEL_TOLERANCE, assert_close   # noqa: E402

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
ZOO = ["bvlc_alexnet", "zfnet512", "squeezenet", "shufflenet", "inception_v1", "resnet50",
       "inception_v2", "densenet121", "vgg19"]
REAL = ["resnet_small", "mobilenet_small", "transformer_small"]
REAL_DIR = os.path.join(ROOT, "tests", "models", "data")
VOCAB = 100                                            # transformer_small's token ids


# --- the benchmark set ------------------------------------------------------------------------
def _text(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def cpu_description() -> str:
    """The CPU's model name, with its family / model numbers and cache sizes where Linux tells
    them (a virtual machine's model name may be only the vendor's line: "AMD EPYC")."""
    if not os.path.exists("/proc/cpuinfo"):
        return platform.processor() or platform.machine()
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if not line.strip():
                break                                   # the first processor's fields
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    parts = [f"family {fields['cpu family']} model {fields['model']}"] \
        if "cpu family" in fields and "model" in fields else []
    caches = "/sys/devices/system/cpu/cpu0/cache"
    for index in sorted(os.listdir(caches)) if os.path.isdir(caches) else []:
        try:
            level, kind, size = (_text(os.path.join(caches, index, name))
                                 for name in ("level", "type", "size"))
        except OSError:
            continue
        if kind != "Instruction":
            parts.append(f"L{level}{'d' if kind == 'Data' else ''} {size}")
    name = fields.get("model name", platform.processor())
    return f"{name} ({', '.join(parts)})" if parts else name


def _light(name: str):
    path = os.path.join(LIGHT_DIR, f"light_{name}.onnx")
    graph = onnx.load(path, load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    (vi,) = [v for v in graph.input if v.name not in inits]
    shape = tuple(d.dim_value or 1 for d in vi.type.tensor_type.shape.dim)
    n = int(np.prod(shape))
    return path, {vi.name: (np.arange(n).reshape(shape) / n).astype(np.float32)}


def _seeded(model: onnx.ModelProto, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        t = vi.type.tensor_type
        dtype = helper.tensor_dtype_to_np_dtype(t.elem_type)
        shape = [d.dim_value for d in t.shape.dim]
        feeds[vi.name] = (rng.integers(0, VOCAB, shape).astype(dtype)
                          if np.issubdtype(dtype, np.integer)
                          else rng.standard_normal(shape).astype(dtype))
    return feeds


def _real(name: str):
    path = os.path.join(REAL_DIR, f"{name}.onnx")
    return path, _seeded(onnx.load(path))


def _save(model: onnx.ModelProto, work: str, name: str) -> str:
    path = os.path.join(work, "models", f"{name}.onnx")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(model, path)
    return path


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "bench", [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s)
                         for n, s in inputs],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(v, n) for n, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _built(work: str, name: str):
    """A network of benchmarks/models.py, saved under ``work``, with its seeded inputs."""
    model = models.BUILDERS[name]()
    return _save(model, work, name), models.feeds(model)


def _sgemm(work: str, n: int = 1024):
    rng = np.random.default_rng(2)
    w = rng.uniform(-1, 1, (n, n)).astype(np.float32)
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [("x", [n, n])], ["y"],
                   {"w": w})
    return _save(model, work, f"sgemm_{n}"), {"x": rng.uniform(-1, 1, (n, n)).astype(np.float32)}


KERNELS = ["sgemm_1024"]                # single-kernel probes: in the table, not in the means
DEFAULT = ZOO + ["resnet18", "mobilenet_v2", "bert_encoder", "mlp", "lstm"] + KERNELS


def benchmark_set(work: str) -> dict:
    """name -> a function returning (onnx path, feeds); DEFAULT lists the default run."""
    cases = {name: (lambda n=name: _light(n)) for name in ZOO}
    cases.update({name: (lambda n=name: _built(work, n)) for name in models.BUILDERS})
    cases.update({name: (lambda n=name: _real(n)) for name in REAL})
    cases["sgemm_1024"] = lambda: _sgemm(work)
    return cases


# --- measuring --------------------------------------------------------------------------------
def fma_peak(target, work: str) -> float:
    """GFLOP/s of one core running independent FMAs at the target's vector width."""
    width = {"x86-avx512": 64, "x86-avx2": 32}.get(target.name, 16)
    exe = os.path.join(work, f"fma_peak_{target.name}")
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-ffp-contract=fast",
                    *target.c_flags, f"-DVEC_BYTES={width}",
                    os.path.join(HERE, "fma_peak.c"), "-o", exe], check=True)
    return float(subprocess.run([exe], capture_output=True, text=True,
                                check=True).stdout.split()[0])


def model_flops(path: str, target: str) -> int:
    graph = nnbuild.optimize(nnbuild.translate(path), nnbuild.Options(target=target))
    return sum(int(registry.get(n).flops(n, graph) or 0) for n in graph.nodes)


def ours_ms(app: str, inputs: list, runs: int, warmup: int, warmup_ms: float,
            threads: int) -> dict:
    """Median and p90 latency (ms) and peak RSS (MB) of the app, one fresh process."""
    args = [app]
    for name, file in inputs:
        args += ["--input", f"{name}={file}"]
    out = subprocess.run(args + ["--bench", str(runs), "--warmup", str(warmup), "--warmup-ms",
                                 str(warmup_ms), "--threads", str(threads)],
                         capture_output=True, text=True, check=True).stdout
    found = re.search(r"median ([0-9.]+) ms, p90 ([0-9.]+) ms, peak RSS ([-0-9.]+) MB", out)
    return dict(ms=float(found.group(1)), p90=float(found.group(2)), rss_mb=float(found.group(3)))


ORT_WORKER = r"""
import sys, time, numpy as np, onnxruntime as ort
path, runs, warmup, warmup_ms, threads = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                          float(sys.argv[4]), int(sys.argv[5]))
feeds = {n: np.load(f) for n, f in zip(sys.argv[6::2], sys.argv[7::2])}
o = ort.SessionOptions()
o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
o.intra_op_num_threads, o.inter_op_num_threads = threads, 1
o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
warm, until = 0, time.perf_counter() + warmup_ms * 1e-3
while warm < warmup or time.perf_counter() < until:
    s.run(None, feeds)
    warm += 1
ms = []
for _ in range(runs):
    t = time.perf_counter(); s.run(None, feeds); ms.append((time.perf_counter() - t) * 1e3)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
print(float(np.median(ms)), float(np.percentile(ms, 90, method="nearest")),
      int(hwm[0].split()[1]) / 1024.0 if hwm else -1.0)
"""


def ort_ms(path: str, inputs: list, runs: int, warmup: int, warmup_ms: float,
           threads: int) -> dict:
    """Median and p90 latency (ms) and peak RSS (MB) of onnxruntime, one fresh process."""
    args = [sys.executable, "-c", ORT_WORKER, path, str(runs), str(warmup), str(warmup_ms),
            str(threads)]
    for name, file in inputs:
        args += [name, file]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    median, p90, rss = (float(v) for v in out.split())
    return dict(ms=median, p90=p90, rss_mb=rss)


def code_kb(build_dir: str) -> float:
    """Code size of the built library without its weights: the text of every object in the
    static library but the weights' (binutils ``size``), in KB; nan where it cannot tell."""
    libs = [os.path.join(root, f) for root, _, files in os.walk(build_dir) for f in files
            if f.startswith("lib") and f.endswith(".a")]
    if not libs:
        return float("nan")
    try:
        out = subprocess.run(["size", libs[0]], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return float("nan")
    text = 0
    for line in out.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0].isdigit() and "_weights" not in line:
            text += int(fields[0])
    return text / 1024.0


def outputs_match(app: str, path: str, inputs: list, feeds: dict, work: str) -> str:
    import onnxruntime as ort
    from nnbuild.codegen.names import app_output_files
    with tempfile.TemporaryDirectory(dir=work) as out_dir:
        args = [app, "--output-dir", out_dir]
        for name, file in inputs:
            args += ["--input", f"{name}={file}"]
        subprocess.run(args, capture_output=True, check=True)
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        try:
            for name, value, file in zip(names, session.run(names, feeds),
                                         app_output_files(names)):
                assert_close(np.load(os.path.join(out_dir, file)), value, MODEL_TOLERANCE,
                             what=name)
        except AssertionError as e:
            return f"MISMATCH {str(e)[:60]}"
    return "ok"


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def markdown(rows: list, threads: list) -> str:
    """The results table; an unsupported model is one row with no numbers. Latencies are
    "median (p90)"; the geometric mean is over the network rows (not the SGEMM kernel)."""
    lines = ["| model | threads | GFLOP | onnxruntime ms (p90) | nnbuild ms (p90) | ratio | "
             "GFLOP/s | % peak | peak RSS MB ORT / ours | code KB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "ratio" not in r:
            lines.append(f"| {r['model']} | {r['threads']} | {r['check']} | | | | | | | |")
            continue
        note = "" if r["check"] == "ok" else f" ({r['check']})"
        lines.append(f"| {r['model']}{note} | {r['threads']} | {r['gflop']:.3f} | "
                     f"{r['ort_ms']:.3f} ({r['ort_p90']:.3f}) | "
                     f"{r['ours_ms']:.3f} ({r['ours_p90']:.3f}) | {r['ratio']:.2f} | "
                     f"{r['gflops']:.1f} | {r['peak_pct']:.1f} | "
                     f"{r['ort_rss_mb']:.0f} / {r['ours_rss_mb']:.0f} | {r['code_kb']:.0f} |")
    for t in threads:
        ratios = [r["ratio"] for r in rows if r["threads"] == t and "ratio" in r
                  and r["model"] not in KERNELS]
        worst = max(ratios, default=float("nan"))
        lines.append(f"| **geometric mean** ({len(ratios)} networks; worst {worst:.2f}) | {t} "
                     f"| | | | **{geomean(ratios):.2f}** | | | | |")
    return "\n".join(lines) + "\n"


# --- main -------------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    p.add_argument("--models", default="", help="comma-separated models (default: the "
                   "default set; 'all' adds the tests' real-weight nets and sgemm_1024)")
    p.add_argument("--skip", default="", help="comma-separated models to leave out")
    p.add_argument("--target", default="host", help="nnbuild target (default: host)")
    p.add_argument("--runs", type=int, default=30, help="timed runs per measurement")
    p.add_argument("--warmup", type=int, default=3,
                   help="untimed runs before the timed ones, in the same process (default 3)")
    p.add_argument("--warmup-ms", type=float, default=200.0,
                   help="and untimed runs for at least this long (default 200)")
    p.add_argument("--repeat", type=int, default=2, help="alternating measurements per side")
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "nnbuild-bench"),
                   help="builds and inputs go here (kept for the next run)")
    p.add_argument("--json", help="write the results here (default: WORK/results.json)")
    p.add_argument("--markdown", help="write the table here (default: WORK/results.md)")
    args = p.parse_args(argv)

    threads = [int(t) for t in args.threads.split(",")]
    target = targets.resolve(args.target)
    os.makedirs(args.work, exist_ok=True)
    cases = benchmark_set(args.work)
    chosen = (list(cases) if args.models == "all" else
              args.models.split(",") if args.models else DEFAULT)
    names = [n for n in chosen if n not in args.skip.split(",")]
    unknown = [n for n in names if n not in cases]
    if unknown:
        p.error(f"unknown models {unknown} (known: {', '.join(cases)})")
    started = time.strftime("%Y-%m-%dT%H:%M", time.gmtime())
    peak = fma_peak(target, args.work)
    cpu = cpu_description()
    print(f"# {time.strftime('%Y-%m-%d')}  {cpu}  target {target.name}  "
          f"FMA peak {peak:.1f} GFLOP/s per core  onnxruntime "
          f"{__import__('onnxruntime').__version__}  load {os.getloadavg()[0]:.1f}", flush=True)

    rows = []
    for name in names:
        path, feeds = cases[name]()
        build_dir = os.path.join(args.work, "build", name)
        t0 = time.perf_counter()
        try:
            result = nnbuild.build(path, build_dir, target=args.target)
        except (ModelError, BuildError) as e:
            status = "unsupported" if isinstance(e, ModelError) else "build failed"
            print(f"{name:18s} {status}: {str(e).splitlines()[0][:200]}", file=sys.stderr,
                  flush=True)
            rows += [dict(model=name, threads=t, check=status) for t in threads]
            continue
        build_s = time.perf_counter() - t0
        inputs = []
        for i, (input_name, value) in enumerate(feeds.items()):
            file = os.path.join(args.work, "build", f"{name}_input{i}.npy")
            np.save(file, value)
            inputs.append((input_name, file))
        flops = model_flops(path, args.target)
        check = outputs_match(result.app, path, inputs, feeds, args.work)
        size_kb = code_kb(os.path.join(build_dir, "build"))
        for t in threads:
            ours, ort = [], []
            for _ in range(args.repeat):
                ours.append(ours_ms(result.app, inputs, args.runs, args.warmup,
                                    args.warmup_ms, t))
                ort.append(ort_ms(path, inputs, args.runs, args.warmup, args.warmup_ms, t))
            best_ours = min(ours, key=lambda m: m["ms"])
            best_ort = min(ort, key=lambda m: m["ms"])
            row = dict(model=name, threads=t, gflop=flops / 1e9, ours_ms=best_ours["ms"],
                       ours_p90=best_ours["p90"], ours_rss_mb=max(m["rss_mb"] for m in ours),
                       ort_ms=best_ort["ms"], ort_p90=best_ort["p90"],
                       ort_rss_mb=max(m["rss_mb"] for m in ort), code_kb=size_kb,
                       build_s=build_s, check=check)
            row["ratio"] = row["ours_ms"] / row["ort_ms"]
            row["gflops"] = flops / row["ours_ms"] / 1e6
            row["peak_pct"] = 100 * row["gflops"] / (peak * t)
            rows.append(row)
            print(f"{name:18s} T={t} {row['gflop']:8.3f} GFLOP  ours {row['ours_ms']:9.3f} ms  "
                  f"ORT {row['ort_ms']:9.3f} ms  ratio {row['ratio']:5.2f}  "
                  f"{row['gflops']:7.1f} GFLOP/s  {row['peak_pct']:5.1f}% peak  {check}",
                  file=sys.stderr, flush=True)

    table = markdown(rows, threads)
    print()
    print(table, end="")
    json_path = args.json or os.path.join(args.work, "results.json")
    md_path = args.markdown or os.path.join(args.work, "results.md")
    with replacing(json_path) as f:
        json.dump({"date": time.strftime("%Y-%m-%d"), "started_utc": started,
                   "cpu": cpu, "target": target.name,
                   "fma_peak_gflops_per_core": peak, "load": os.getloadavg()[0],
                   "onnxruntime": __import__("onnxruntime").__version__, "rows": rows},
                  f, indent=2)
    with replacing(md_path) as f:
        f.write(table)
    print(f"\nwrote {json_path} and {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
