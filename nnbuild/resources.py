"""Where the data files shipped with nnbuild live (templates; in a wheel, inside the package)."""
from __future__ import annotations

import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def _data_dir(name: str, probe: str) -> str:
    """``nnbuild/<name>`` when installed from a wheel, ``<name>/`` in a checkout."""
    for candidate in (os.path.join(_HERE, name), os.path.join(_HERE, "..", name)):
        if os.path.exists(os.path.join(candidate, probe)):
            return os.path.normpath(candidate)
    raise RuntimeError(f"nnbuild's {name}/ folder not found; is the installation complete?")


def templates_dir() -> str:
    """The jinja2 templates of the generated project and the hardware-interface sources."""
    return _data_dir("templates", "project")


def cmake_dir() -> str:
    """The CMake package (nnbuildConfig.cmake): what `nnbuild --cmake-dir` prints."""
    return _data_dir("cmake", "nnbuildConfig.cmake")


def bazel_dir() -> str:
    """The Bazel repository (WORKSPACE + bazel/defs.bzl): what `nnbuild --bazel-dir` prints."""
    return _data_dir("bazel", "WORKSPACE")
