"""The `nnbuild` command line. Exit codes: 0 ok, 1 build or run failure, 2 usage/model error."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from . import __version__, api
from .codegen.names import app_output_files
from .errors import NNBuildError, UsageError
from .options import TARGETS, WEIGHT_MODES, Options


def _add_model_options(p: argparse.ArgumentParser, target: str = "host",
                       target_note: str = "") -> None:
    p.add_argument("model", help="ONNX model file, or an intermediate file (.nnir.json)")
    p.add_argument("--name", help="C prefix of every generated symbol (default: from the file name)")
    p.add_argument("--target", default=target, choices=TARGETS,
                   help=f"hardware interface (default: {target}{target_note})")
    p.add_argument("-O", dest="opt_level", type=int, default=2, choices=(0, 1, 2),
                   help="optimization level (default: 2)")
    p.add_argument("--shape", action="append", default=[], metavar="NAME=DxDx..",
                   help="bind a symbolic input shape, e.g. data=1x3x224x224; a sequence "
                   "input's length and element shapes, e.g. seq=[2x4,3*2x4] ([] empty); an "
                   "optional input's presence: opt=DxD.. or opt=none (repeatable)")
    p.add_argument("--weights", default="embed", choices=WEIGHT_MODES,
                   help="embed the weights in the library (default) or load a file at run time")
    p.add_argument("--dump-ir", metavar="DIR", help="write the text IR after every pass into DIR")


def _options(args) -> Options:
    shapes = {}
    for spec in args.shape:
        name, sep, dims = spec.rpartition("=")
        if not sep or not name:
            raise UsageError(f"--shape {spec}: expected NAME=DxDx..., e.g. data=1x3x224x224")
        shapes[name] = dims
    return Options.make(shapes=shapes, name=args.name, target=args.target,
                        opt_level=args.opt_level, weights=args.weights, dump_ir=args.dump_ir)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnbuild", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"nnbuild {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    parser.add_argument("--cmake-dir", action="store_true",
                        help="print the folder of nnbuild's CMake package (for nnbuild_ROOT)")
    parser.add_argument("--bazel-dir", action="store_true",
                        help="print the root of nnbuild's Bazel repository")
    sub = parser.add_subparsers(dest="command")

    p = sub.add_parser("ops", help="list the supported ops")
    p.set_defaults(func=cmd_ops)

    p = sub.add_parser("translate", help="ONNX -> intermediate file (.nnir.json)")
    _add_model_options(p)
    p.add_argument("-o", "--output", required=True, help="the .nnir.json file to write")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("generate", help="write the complete CMake project (no build)")
    _add_model_options(p)
    p.add_argument("-o", "--output", required=True, help="project folder (new, empty, or ours)")
    p.add_argument("--fixed-files", action="store_true",
                   help="also write every HAL family and helper header of the target, so the "
                   "file list depends only on the options (for Bazel's declared outputs)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("build", help="generate + configure + build; prints app and library paths")
    _add_model_options(p)
    p.add_argument("-o", "--output", required=True, help="project folder (new, empty, or ours)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("package", help="write a scikit-build-core project: the model as a "
                       "pip-installable Python extension")
    _add_model_options(p, "generic", ": the wheel runs on any CPU of its kind; host or an x86 "
                       "/ arm64 target is several times faster where that CPU runs it")
    p.add_argument("-o", "--output", required=True, help="package folder (new, empty, or ours)")
    p.set_defaults(func=cmd_package)

    p = sub.add_parser("run", help="build through the cache, run the app, summarise the outputs")
    _add_model_options(p)
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                   help="an input (repeatable); inputs not given are seeded random data")
    p.add_argument("--output-dir", help="keep the output .npy files here")
    p.add_argument("--bench", type=int, metavar="N", help="also time N runs")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("inspect", help="text IR, params, FLOPs per node, arena size")
    _add_model_options(p)
    p.add_argument("--after", metavar="PASS", help="stop after this pass of the pipeline")
    p.add_argument("--passes", action="store_true", help="list the passes of the pipeline")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("profile", help="build with per-kernel timers, run N times, time per node")
    _add_model_options(p)
    p.add_argument("--runs", type=int, default=20, help="timed runs (default 20)")
    p.add_argument("--top", type=int, default=None, help="print only the N slowest kernels")
    p.add_argument("--threads", default="1", metavar="N[,N..]",
                   help="thread count (default 1); several, e.g. 1,2: per-node times side by "
                   "side with each node's speedup (reports: the last count)")
    p.add_argument("--trace", default=None, help="Chrome-trace JSON (default <name>.trace.json)")
    p.add_argument("--html", default=None, help="HTML report (default <name>.profile.html)")
    p.add_argument("--keep", default=None, help="folder for the profiling project and build")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("diff", help="compare every surviving intermediate with onnxruntime; "
                       "name the first node over the tolerance (exit 1)")
    _add_model_options(p)
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy",
                   help="an input (repeatable); inputs not given are seeded random data")
    p.add_argument("--tolerance", default="model", choices=("model", "op"),
                   help="nnbuild.testing's MODEL_TOLERANCE (default) or OP_TOLERANCE")
    p.add_argument("--keep", default=None, help="folder for the diff project and build")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("calibrate", help="measure peak FLOP/s and memory bandwidth for the "
                       "roofline; stored per machine")
    p.add_argument("--runs", type=int, default=5, help="timed runs per probe (default 5)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("conformance", help="run the ONNX conformance cases in one batched build")
    p.add_argument("--source", default="all",
                   choices=("node", "pytorch-converted", "pytorch-operator", "all"))
    p.add_argument("--filter", metavar="REGEX", help="only cases whose <source>/<name> matches")
    p.add_argument("--jobs", type=int, help="parallel jobs (default: all cores)")
    p.add_argument("--keep", metavar="DIR", help="build the batch in DIR and keep it "
                   "(DIR/cases/<prefix>: each case's project; DIR/cases.txt: prefix -> case)")
    p.add_argument("--json", metavar="FILE", help="write every result as JSON")
    p.add_argument("--table", metavar="FILE", help="write the Markdown table, e.g. "
                   "docs/conformance.md")
    p.add_argument("-O", dest="opt_level", type=int, default=2, choices=(0, 1, 2))
    p.add_argument("--target", default="generic", choices=TARGETS,
                   help="hardware interface the cases are generated for (default: generic, "
                   "the reference; host or a named target checks that target's kernels; it "
                   "must run on this machine, or arm64-neon cross-built and run under "
                   "qemu-aarch64)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per case run")
    p.add_argument("--freeze-inputs", action="store_true", help="count a case whose shapes "
                   "depend on a graph input by its result with that input frozen to the test "
                   "data (default: a data-dependent-shape failure, the frozen result noted)")
    p.set_defaults(func=cmd_conformance)
    return parser


def cmd_translate(args) -> int:
    from .ir import save_json
    graph = api.translate(args.model, _options(args))
    if not args.output.endswith(api.INTERMEDIATE_SUFFIX):
        raise UsageError(f"-o {args.output}: the intermediate file must end in "
                         f"{api.INTERMEDIATE_SUFFIX}")
    save_json(graph, args.output)
    print(f"wrote {args.output} ({len(graph.nodes)} nodes)")
    return 0


def cmd_generate(args) -> int:
    project = api.generate(args.model, args.output, _options(args), fixed_files=args.fixed_files)
    print(f"wrote {args.output} ({len(project.files)} files, weights {project.weights_bytes} "
          f"bytes, arena {project.plan.arena_bytes} bytes)")
    return 0


def cmd_package(args) -> int:
    from .package import package
    project = package(args.model, args.output, _options(args))
    name, folder = project.prefix, args.output
    if not os.path.isabs(folder) and not folder.startswith("."):
        folder = os.path.join(".", folder)         # pip reads a bare name as a PyPI project
    print(f"wrote {args.output} (Python package {name}, {len(project.files)} files); "
          f"pip install {folder}, then: import {name}; {name}.run(x)")
    return 0


def cmd_build(args) -> int:
    result = api.build(args.model, args.output, _options(args))
    print(f"app:     {result.app}")
    print(f"library: {result.library}")
    return 0


def cmd_run(args) -> int:
    import numpy as np
    options = _options(args)
    result, prefix = api.cached(args.model, options)
    from .runtime import CompiledModel
    model = CompiledModel(result.library, prefix)
    given = dict(_split_input(spec, [s.name for s in model.inputs]) for spec in args.input)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="nnbuild-run-") as tmp:
        out_dir = args.output_dir or os.path.join(tmp, "outputs")
        os.makedirs(out_dir, exist_ok=True)
        cmd = [result.app, "--output-dir", out_dir, "--threads", str(args.threads)]
        for spec in model.inputs:
            path = given.get(spec.name)
            if path is None:
                path = os.path.join(tmp, f"input{len(cmd)}.npy")
                np.save(path, _random_input(rng, spec))
                print(f"input {spec.name}: random {spec.dtype}{list(spec.shape)} (seed 0)")
            cmd += ["--input", f"{spec.name}={path}"]
        if args.bench:
            cmd += ["--bench", str(args.bench)]
        proc = subprocess.run(cmd)
        if proc.returncode != 0:
            return proc.returncode
        files = app_output_files([spec.name for spec in model.outputs])
        for spec, file in zip(model.outputs, files):
            print(_summary(spec.name, np.load(os.path.join(out_dir, file))))
    if args.output_dir:
        print(f"outputs in {out_dir}")
    return 0


def _split_input(spec: str, names: list) -> tuple:
    """NAME=FILE (the longest input name that ``spec`` starts with, then '='), or FILE alone
    for a one-input model; the same rule as the generated app."""
    matches = [n for n in names if spec.startswith(n + "=")]
    if matches:
        name = max(matches, key=len)
        return name, spec[len(name) + 1:]
    if len(names) == 1:
        return names[0], spec
    raise UsageError(f"--input {spec}: expected NAME=FILE.npy with NAME one of the inputs: "
                     f"{', '.join(names)}")


def _random_input(rng, spec):
    if spec.dtype.kind == "f":
        return rng.standard_normal(spec.shape).astype(spec.dtype)
    if spec.dtype.kind == "b":
        return rng.integers(0, 2, spec.shape).astype(bool)
    return rng.integers(0, 10, spec.shape).astype(spec.dtype)


def _summary(name: str, array) -> str:
    import numpy as np
    flat = array.reshape(-1)
    text = f"output {name}: {array.dtype}{list(array.shape)}"
    if flat.size and array.dtype.kind in "fiub":
        values = flat.astype(np.float64)
        text += (f"  min {values.min():.6g} max {values.max():.6g} mean {values.mean():.6g}"
                 f"  argmax {int(values.argmax())}")
    return text


def cmd_inspect(args) -> int:
    from .analysis.report import inspect_report
    from .passes import pipeline
    options = _options(args)
    if args.passes:
        for p in pipeline(options.opt_level):
            print(f"{p.name:24s} {p.purpose}")
        return 0
    graph = api.translate(args.model, options)
    graph = api.optimize(graph, options, stop_after=args.after)
    print(inspect_report(graph), end="")
    return 0


def cmd_profile(args) -> int:
    from .analysis.machine import load_machine
    from .analysis.profile import profile_threads, scaling_table, table, write_reports
    options = _options(args)
    try:
        counts = [int(n) for n in args.threads.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise UsageError(f"--threads {args.threads}: expected thread counts >= 1, e.g. 1 or 1,2")
    profiles = profile_threads(args.model, options, counts, runs=max(args.runs, 1),
                               work_dir=args.keep, machine=load_machine())
    result = profiles[-1]
    stem = os.path.splitext(os.path.basename(args.model))[0]
    trace, report = args.trace or f"{stem}.trace.json", args.html or f"{stem}.profile.html"
    write_reports(result, trace, report)
    print(table(result, args.top) if len(profiles) == 1 else scaling_table(profiles, args.top),
          end="")
    print(f"trace: {trace}\nreport: {report}")
    return 0


def cmd_diff(args) -> int:
    """Exit 0 when every compared tensor is within the tolerance, 1 when some is not."""
    import numpy as np
    if args.model.endswith(api.INTERMEDIATE_SUFFIX):
        raise UsageError(f"{args.model}: diff needs the ONNX file (onnxruntime runs it)")
    names = _onnx_input_names(args.model)
    inputs = {}
    for spec in args.input:
        name, path = _split_input(spec, names)
        try:
            inputs[name] = np.load(path)
        except (OSError, ValueError) as e:
            raise UsageError(f"--input {spec}: cannot read {path}: {e}") from None
    result = api.diff(args.model, _options(args), inputs=inputs, tolerance=args.tolerance,
                      work_dir=args.keep)
    from .analysis.diff import report
    print(report(result), end="")
    return 0 if result.ok else 1


def _onnx_input_names(path: str) -> list:
    from .frontend import load_model
    graph = load_model(path).graph
    inits = {i.name for i in graph.initializer}
    return [i.name for i in graph.input if i.name not in inits]


def cmd_calibrate(args) -> int:
    from .analysis.machine import calibrate, machine_file
    machine = calibrate(runs=max(args.runs, 1))
    print(f"{machine.name}: peak {machine.flops_per_s / 1e9:.2f} GFLOP/s (SGEMM, one thread), "
          f"bandwidth {machine.bytes_per_s / 1e9:.2f} GB/s; ridge {machine.ridge:.2f} FLOP/byte")
    print(f"stored in {machine_file()}")
    return 0


def cmd_conformance(args) -> int:
    """Exit 0 when every selected case passes, 1 when some fail."""
    from .conformance import command
    return command(source=args.source, pattern=args.filter, jobs=args.jobs, keep=args.keep,
                   json_path=args.json, table_path=args.table, opt_level=args.opt_level,
                   timeout=args.timeout, freeze=args.freeze_inputs, target=args.target)


def cmd_ops(args) -> int:
    from .ops import registry
    for op in registry.supported_ops():
        domain, _, name = op.rpartition("::")
        print(f"{op:28s} since opset {registry.lookup(name, domain).since}")
    return 0


def _one_line(text: str) -> str:
    """Model names are data: control characters (newlines...) in a message are escaped."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.cmake_dir or args.bazel_dir:
            from . import resources
            print(resources.cmake_dir() if args.cmake_dir else resources.bazel_dir())
            return 0
        if args.command is None:
            parser.error("a command is required")
        return args.func(args)
    except NNBuildError as e:
        print(f"nnbuild: error: {_one_line(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:          # output piped into head & co.
        sys.stderr.close()
        return 0
    except Exception as e:  # an nnbuild bug: one line unless --debug
        if args.debug:
            raise
        print(f"nnbuild: internal error: {type(e).__name__}: {_one_line(str(e))} "
              f"(rerun with --debug)",
              file=sys.stderr)
        return 1
