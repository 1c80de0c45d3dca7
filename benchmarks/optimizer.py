"""What the optimizer buys, on the light model-zoo nets (batch 1, float32, one thread):
latency at -O0 against -O2, and the -O2 memory plan's arena against its lower bound and the
naive sum of every intermediate. A benchmark to read, not a timed test.

    python benchmarks/optimizer.py                        # all nine light nets
    python benchmarks/optimizer.py --models squeezenet,resnet50 --runs 20 --markdown

Each net is generated and built (``--target``, default host) at both levels into ``--work``;
each app then runs ``--warmup`` untimed and ``--runs`` timed inferences (``<p>_app --bench``),
the two levels alternating ``--repeat`` times, and each level's best median is kept (the least
disturbed by other work on the machine). The light nets' weights are one value everywhere:
their speed is real, their outputs are not.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import nnbuild                                          # noqa: E402
from nnbuild.build.driver import build_project         # noqa: E402
from run import ZOO, _light, ours_ms                   # noqa: E402

COLUMNS = ["model", "nodes -O0", "nodes -O2", "-O0 ms", "-O2 ms", "speedup",
           "arena -O2 (MB)", "lower bound (MB)", "naive sum (MB)", "arena / naive"]


def build(name: str, path: str, level: int, target: str, work: str) -> tuple:
    """(app path, generated project) of ``path`` at -O``level``."""
    folder = os.path.join(work, f"{name}-O{level}")
    options = nnbuild.Options.make(opt_level=level, target=target, name=f"{name}_o{level}")
    project = nnbuild.generate(path, folder, options)
    return build_project(folder, project.prefix).app, project


def measure(name: str, args, work: str) -> dict:
    path, feeds = _light(name)
    inputs = []
    for k, (input_name, array) in enumerate(feeds.items()):
        file = os.path.join(work, f"{name}-input{k}.npy")
        np.save(file, array)
        inputs.append((input_name, file))
    built = {level: build(name, path, level, args.target, work) for level in (0, 2)}
    best = {0: float("inf"), 2: float("inf")}
    for _ in range(args.repeat):
        for level, (app, _) in built.items():
            timed = ours_ms(app, inputs, args.runs, args.warmup, args.warmup_ms, 1)
            best[level] = min(best[level], timed["ms"])
    plan = built[2][1].plan
    mb = 1 << 20
    return {"model": name,
            "nodes -O0": len(nnbuild.translate(path).nodes),
            "nodes -O2": len(nnbuild.optimize(nnbuild.translate(path), opt_level=2).nodes),
            "-O0 ms": best[0], "-O2 ms": best[2], "speedup": best[0] / best[2],
            "arena -O2 (MB)": plan.arena_bytes / mb, "lower bound (MB)": plan.lower_bound / mb,
            "naive sum (MB)": plan.naive_bytes / mb,
            "arena / naive": plan.arena_bytes / max(plan.naive_bytes, 1)}


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def markdown(rows: list) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def text(rows: list) -> str:
    widths = [max(len(c), *(len(_cell(r[c])) for r in rows)) for c in COLUMNS]
    lines = ["  ".join(c.rjust(w) for c, w in zip(COLUMNS, widths))]
    lines += ["  ".join(_cell(r[c]).rjust(w) for c, w in zip(COLUMNS, widths)) for r in rows]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ZOO), help="comma-separated light nets")
    parser.add_argument("--target", default="host")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--warmup-ms", type=float, default=200.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--work", default=None, help="build folder (default: a temporary one)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    work = args.work or tempfile.mkdtemp(prefix="nnbuild-optbench-")
    os.makedirs(work, exist_ok=True)
    rows = []
    for name in args.models.split(","):
        if name not in ZOO:
            parser.error(f"--models {name}: one of {', '.join(ZOO)}")
        rows.append(measure(name, args, work))
        print(f"{name}: -O0 {rows[-1]['-O0 ms']:.2f} ms, -O2 {rows[-1]['-O2 ms']:.2f} ms",
              file=sys.stderr, flush=True)
    print(markdown(rows) if args.markdown else text(rows), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
