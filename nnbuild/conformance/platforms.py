"""Where a sweep's cases are built and run: natively, or cross-built and run under an emulator.

A target whose code this machine runs (``targets.supported_here``) is built with the host's
compiler and its drivers run directly. ``arm64-neon`` on another machine is cross-built with
Debian's gcc-aarch64-linux-gnu through nnbuild's toolchain file and run under qemu-aarch64
(qemu-user), the way tests/targets/test_arm64.py runs it: the conformance cases then check the
NEON kernels too. Anything else is a usage error that says what would make it possible.
"""
from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass

from .. import resources, targets
from ..errors import UsageError

AARCH64_SYSROOT = "/usr/aarch64-linux-gnu"


@dataclass(frozen=True)
class Platform:
    target: str                   # the concrete target name (never "host")
    toolchain: str | None = None  # CMake toolchain file of a cross build
    emulator: tuple = ()          # command prefix that runs a driver built for it

    @property
    def emulated(self) -> bool:
        return bool(self.emulator)

    def describe(self) -> str:
        return self.target + (f" (cross-built, run under {self.emulator[0]})"
                              if self.emulated else "")


def platform_for(name: str) -> Platform:
    """The platform a sweep for target ``name`` (``host``: this machine's best) runs on."""
    if name != "host" and name not in targets.TARGETS:
        raise UsageError(f"--target {name}: unknown target (known: host, "
                         f"{', '.join(targets.TARGETS)})")
    chosen = targets.resolve(name)
    if chosen.runs_on(platform.machine(), targets.cpu_flags()):
        return Platform(chosen.name)
    if chosen.name == "arm64-neon":
        missing = [tool for tool in ("aarch64-linux-gnu-gcc", "qemu-aarch64")
                   if not shutil.which(tool)]
        if not missing and os.path.isdir(AARCH64_SYSROOT):
            return Platform(chosen.name,
                            os.path.join(resources.cmake_dir(), "toolchains",
                                         "aarch64-linux-gnu.cmake"),
                            ("qemu-aarch64", "-L", AARCH64_SYSROOT))
        raise UsageError(f"--target {name}: its code cannot run on this machine and there is "
                         f"no emulated build ({', '.join(missing) or AARCH64_SYSROOT} missing; "
                         f"Debian: apt-get install gcc-aarch64-linux-gnu qemu-user)")
    raise UsageError(f"--target {name}: its code cannot run on this machine (the cases run "
                     f"here; this machine runs {', '.join(targets.supported_here())})")
