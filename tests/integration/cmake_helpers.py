"""What a CMake user does, as functions: configure, build, run (shared by the integration tests)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np

from nnbuild import resources
from nnbuild.build.driver import cmake_exe, ninja_exe

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO, "examples")


def copy_example(name: str, dest) -> str:
    """A private copy of examples/<name> (tests edit its models)."""
    target = os.path.join(str(dest), name)
    shutil.copytree(os.path.join(EXAMPLES, name), target,
                    ignore=shutil.ignore_patterns("build*", "__pycache__"))
    return target


def configure(source: str, build: str, *args: str, check: bool = True,
              generator: str = "Ninja"):
    """cmake -G Ninja with nnbuild_ROOT from `nnbuild --cmake-dir`, as the README says."""
    cmd = [cmake_exe(), "-S", source, "-B", build, "-G", generator,
           f"-Dnnbuild_ROOT={resources.cmake_dir()}", f"-DNNBUILD_PYTHON={sys.executable}", *args]
    if generator == "Ninja":
        cmd.append(f"-DCMAKE_MAKE_PROGRAM={ninja_exe()}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, f"configure failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def build(build_dir: str) -> str:
    """cmake --build; returns the build log (ninja's lines)."""
    proc = subprocess.run([cmake_exe(), "--build", build_dir], capture_output=True, text=True)
    assert proc.returncode == 0, f"build failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def example_outputs(text: str) -> dict:
    """`<model> <output> v v v ...` lines of examples/cmake-app's app -> {model: array}."""
    values = {}
    for line in text.splitlines():
        model, _, *numbers = line.split()
        values[model] = np.array([float(v) for v in numbers], dtype=np.float32)
    return values


def pattern(shape) -> np.ndarray:
    """The example app's input pattern, exact in float32: ((7 * i) % 13 - 6) / 8."""
    i = np.arange(int(np.prod(shape)))
    return (((7 * i) % 13 - 6) / 8).astype(np.float32).reshape(shape)
