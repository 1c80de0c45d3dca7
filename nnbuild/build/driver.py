"""Configure and build a generated project with the cmake and ninja that pip installed."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

from ..errors import BuildError
from .outdir import BUILD_DIR


@dataclass(frozen=True)
class BuildResult:
    project_dir: str
    build_dir: str
    app: str
    library: str


def _tool(module: str, attr: str, exe: str) -> str:
    try:
        mod = __import__(module)
        path = os.path.join(getattr(mod, attr), exe)
        if os.path.exists(path) or os.path.exists(path + ".exe"):
            return path
    except ImportError:
        pass
    found = shutil.which(exe)
    if not found:
        raise BuildError(f"{exe} not found: pip install {module}")
    return found


def cmake_exe() -> str:
    return _tool("cmake", "CMAKE_BIN_DIR", "cmake")


def ninja_exe() -> str:
    return _tool("ninja", "BIN_DIR", "ninja")


def _run_logged(cmd: list, log_path: str, what: str) -> None:
    with open(log_path, "a") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed: {_first_error(log_path)} (full log: {log_path})")


_ERROR_LINE = re.compile(r"\berror:|^CMake Error|undefined reference", re.IGNORECASE)


def _first_error(log_path: str) -> str:
    """The first diagnostic in the log: a compiler, assembler or linker error, or a CMake
    error with the line that explains it; not a command line that merely says -Werror."""
    with open(log_path, errors="replace") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("$ ") or not _ERROR_LINE.search(line):
            continue
        text = line.strip()
        if text.endswith(":"):           # "CMake Error at ... (message):" + its explanation
            detail = next((n.strip() for n in lines[i + 1:i + 4] if n.strip()), "")
            text = f"{text} {detail}".strip()
        return text
    for line in lines:
        if "error" in line.lower() and not line.startswith("$ "):
            return line.strip()
    return lines[-1].strip() if lines else "no output"


def build_project(project_dir: str, prefix: str, shared: bool = False,
                  extra_args: tuple = ()) -> BuildResult:
    """cmake -G Ninja + cmake --build; returns where the app and library are."""
    project_dir = os.path.abspath(project_dir)
    build_dir = os.path.join(project_dir, BUILD_DIR)
    os.makedirs(build_dir, exist_ok=True)
    log = os.path.join(build_dir, "nnbuild-build.log")
    open(log, "w").close()
    cmake = cmake_exe()
    _run_logged([cmake, "-S", project_dir, "-B", build_dir, "-G", "Ninja",
                 f"-DCMAKE_MAKE_PROGRAM={ninja_exe()}", "-DCMAKE_BUILD_TYPE=Release",
                 f"-DBUILD_SHARED_LIBS={'ON' if shared else 'OFF'}", *extra_args],
                log, "CMake configure")
    _run_logged([cmake, "--build", build_dir], log, "build")
    return artifact_paths(project_dir, prefix, shared)


def artifact_paths(project_dir: str, prefix: str, shared: bool) -> BuildResult:
    """Where a build of the project at ``project_dir`` puts the app and the library."""
    build_dir = os.path.join(os.path.abspath(project_dir), BUILD_DIR)
    exe = ".exe" if sys.platform == "win32" else ""
    if shared:
        lib = {"darwin": f"lib{prefix}.dylib", "win32": f"{prefix}.dll"}.get(
            sys.platform, f"lib{prefix}.so")
    else:
        lib = f"{prefix}.lib" if sys.platform == "win32" else f"lib{prefix}.a"
    return BuildResult(project_dir, build_dir, os.path.join(build_dir, f"{prefix}_app{exe}"),
                       os.path.join(build_dir, lib))
