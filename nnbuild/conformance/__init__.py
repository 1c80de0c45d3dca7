"""The ONNX conformance runner: the official node tests and the pytorch-converted /
pytorch-operator cases of the installed onnx package, through the whole pipeline in one
batched build, classified and tabulated (docs/conformance.md).

    from nnbuild import conformance
    results = conformance.run_conformance(source="node", pattern="relu", jobs=4).results

Modules: ``cases`` (enumerate and load), ``runner`` (prepare, batched build, run, compare),
``results`` (categories, classification), ``report`` (JSON and Markdown).
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile

from ..errors import UsageError
from .cases import SOURCES, Case, collect
from .platforms import platform_for
from .results import CATEGORIES, Result
from .runner import Sweep, run

__all__ = ["SOURCES", "CATEGORIES", "Case", "Result", "Sweep", "collect", "run",
           "run_conformance", "settings", "command"]


def settings(source: str, pattern: str | None, opt_level: int, command: str,
             freeze: bool = False, target: str = "generic") -> dict:
    """What a sweep ran with, as recorded in its JSON and Markdown."""
    import onnx
    from .. import __version__
    return {"command": command, "source": source, "filter": pattern, "opt_level": opt_level,
            "freeze_inputs": freeze,
            "target": target, "nnbuild_version": __version__, "onnx_version": onnx.__version__,
            "onnx_opset": onnx.defs.onnx_opset_version()}


def run_conformance(source: str = "all", pattern: str | None = None, jobs: int | None = None,
                    keep: str | None = None, opt_level: int = 2, timeout: float = 60.0,
                    freeze: bool = False, log=None, target: str = "generic") -> Sweep:
    """Collect the cases, run them in one batch (in ``keep`` if given, else a temporary
    folder that is removed afterwards) and return the Sweep. ``target``: the hardware
    interface every case is generated for (``host``: this machine's best); it must run here,
    or be emulated (arm64-neon under qemu-aarch64; ``platforms``)."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    try:
        cases = collect(source, pattern)
    except re.error as e:
        raise UsageError(f"--filter {pattern}: not a regular expression ({e})") from None
    if not cases:
        raise UsageError(f"no conformance case of source {source!r} matches "
                         f"{pattern!r}" if pattern else f"no conformance cases in {source!r}")
    work = os.path.abspath(keep) if keep else tempfile.mkdtemp(prefix="nnbuild-conformance-")
    try:
        return run(cases, work, jobs=jobs, opt_level=opt_level, timeout=timeout, freeze=freeze,
                   log=log, target=target)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def command(source: str = "all", pattern: str | None = None, jobs: int | None = None,
            keep: str | None = None, json_path: str | None = None, table_path: str | None = None,
            opt_level: int = 2, timeout: float = 60.0, freeze: bool = False,
            target: str = "generic") -> int:
    """``nnbuild conformance``: run, write the JSON / Markdown asked for, print a summary.
    Exit code 0 when every selected case passes, else 1."""
    from . import report
    target = platform_for(target).target      # host resolved; refused before minutes of work
    if keep:
        from .runner import check_work_dir
        check_work_dir(os.path.abspath(keep))      # before minutes of work
    sweep = run_conformance(source, pattern, jobs, keep, opt_level, timeout, freeze,
                            target=target)
    words = ["nnbuild conformance"]
    if source != "all":
        words.append(f"--source {source}")
    if pattern:
        words.append(f"--filter '{pattern}'")
    if target != "generic":
        words.append(f"--target {target}")
    if opt_level != 2:
        words.append(f"-O{opt_level}")
    if freeze:
        words.append("--freeze-inputs")
    if table_path:
        words.append(f"--table {table_path}")
    info = settings(source, pattern, opt_level, " ".join(words), freeze, target)
    if json_path:
        report.write_json(json_path, sweep.results, info, sweep.timing)
    if table_path:
        report.write_markdown(table_path, sweep.results, info)
    print(report.summary(sweep.results, sweep.timing))
    if keep and len(sweep.results) == 1:
        print(f"project kept in {os.path.join(os.path.abspath(keep), 'cases', 'c0000')}")
    elif keep:
        print(f"batch kept in {os.path.abspath(keep)} (cases.txt maps prefixes to cases)")
    return 0 if all(r.passed for r in sweep.results) else 1
