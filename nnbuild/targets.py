"""Targets: the hardware interfaces a generated project can be written against.

A target names a C instruction set and the kernel library that implements the hardware
interface for it. Its kernels live in ``templates/hal/<dir>/<family>.{h,c}``; a family that
the target's own folder lacks comes from the next folder in ``search`` (always ending at
``generic``, the portable C11 reference that has every family). The library's C sources are
compiled with ``c_flags`` (GCC and Clang spelling); the app is not, it only calls the library.

``host`` picks the best target for the machine that runs the generator, from the CPU flags
in ``/proc/cpuinfo`` (the kernel reports what the CPU and the OS both support, e.g. AVX-512
state saved by XSAVE); on 64-bit ARM (``aarch64`` Linux, ``arm64`` macOS) it is ``arm64-neon``,
since Advanced SIMD is part of every AArch64 application processor. That is right for native
builds. For a cross build the generator cannot see the machine the code will run on: name the
target with ``--target``, or let the CMake integration choose it from the toolchain
(``CMAKE_SYSTEM_PROCESSOR`` aarch64 or arm64 gives arm64-neon; ``cmake/nnbuild.cmake``).

Lowering asks the active target for the layouts it packs weights into (``active().gemm``):
``generate_project`` makes the resolved target active while it plans and lowers, so
compile-time packing and the kernel headers always agree.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class GemmBlocking:
    """The SGEMM's blocking: an MR x NR register tile, KC-deep packed blocks, MC rows of A and
    NC columns of B per cache block; MC_WIDE rows of A per block where B's block is wide (0:
    MC; the driver's MC_WIDE). The same numbers as NN_GEMM_* in the target's gemm.h."""
    MR: int
    NR: int
    KC: int
    MC: int
    NC: int
    MC_WIDE: int = 0

    def as_dict(self) -> dict:
        sizes = {"MR": self.MR, "NR": self.NR, "KC": self.KC, "MC": self.MC, "NC": self.NC}
        return sizes | ({"MC_WIDE": self.MC_WIDE} if self.MC_WIDE else {})


@dataclass(frozen=True)
class Target:
    name: str
    summary: str
    machines: tuple          # platform.machine() values that can run it; () = any
    cpu_flags: tuple         # /proc/cpuinfo flags it needs
    c_flags: tuple           # options for the library's C sources (GCC / Clang)
    gemm: GemmBlocking
    search: tuple            # hal template folders, most specific first, ending at "generic"

    def runs_on(self, machine: str, flags) -> bool:
        """Whether code for this target runs on a CPU with these /proc/cpuinfo flags."""
        if self.machines and machine not in self.machines:
            return False
        return set(self.cpu_flags) <= set(flags)


X86 = ("x86_64", "AMD64", "amd64")
ARM64 = ("aarch64", "arm64", "ARM64")

GENERIC = Target("generic", "portable C11, no intrinsics (the reference)", (), (), (),
                 GemmBlocking(MR=8, NR=8, KC=256, MC=128, NC=1024), ("generic",))
X86_AVX2 = Target("x86-avx2", "x86-64 with AVX2 and FMA (Haswell, Zen and later)", X86,
                  ("avx", "avx2", "fma"), ("-mavx2", "-mfma"),
                  GemmBlocking(MR=16, NR=6, KC=256, MC=128, NC=1020),
                  ("x86-avx2", "generic"))
X86_AVX512 = Target("x86-avx512", "x86-64 with AVX-512F (Skylake-SP, Ice Lake, Zen4 and later)",
                    X86, ("avx", "avx2", "fma", "avx512f"),
                    ("-mavx2", "-mfma", "-mavx512f"),
                    GemmBlocking(MR=32, NR=12, KC=256, MC=128, NC=1020, MC_WIDE=512),
                    ("x86-avx512", "x86-avx2", "generic"))
# AArch64: NEON (Advanced SIMD) is baseline, so no flags and no CPU feature to require. An
# 8 x 12 register tile: 2 vectors of A rows times 3 vectors of B columns (vfmaq_laneq_f32),
# 24 of the 32 vector registers as accumulators. KC x NR panels of B (12 KiB) stay in a 32 KiB
# L1, an MC x KC block of A (128 KiB) in L2.
ARM64_NEON = Target("arm64-neon", "64-bit ARM with NEON (AArch64: Cortex-A53/A72, Neoverse, "
                    "Apple M)", ARM64, (), (),
                    GemmBlocking(MR=8, NR=12, KC=256, MC=128, NC=1020),
                    ("arm64-neon", "generic"))

TARGETS = {t.name: t for t in (GENERIC, X86_AVX2, X86_AVX512, ARM64_NEON)}
# What ``host`` tries, best first; generic runs everywhere.
HOST_PREFERENCE = ("x86-avx512", "x86-avx2", "arm64-neon", "generic")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset:
    """The CPU feature flags the OS reports (the first processor's ``flags`` line; Linux).
    Empty where there is no such file: then only ``generic`` qualifies."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def best_for(machine: str, flags) -> Target:
    """The best target for a CPU: the first of HOST_PREFERENCE that runs on it."""
    for name in HOST_PREFERENCE:
        if TARGETS[name].runs_on(machine, flags):
            return TARGETS[name]
    return GENERIC


@functools.lru_cache(maxsize=None)
def host() -> Target:
    """The best target for the machine running the generator (detected once per process)."""
    return best_for(platform.machine(), cpu_flags())


def resolve(name: str) -> Target:
    """A target by name; ``host`` is the best one for this machine."""
    return host() if name == "host" else TARGETS[name]


def supported_here() -> list:
    """Names of the targets whose code runs on this machine (tests run these)."""
    machine, flags = platform.machine(), cpu_flags()
    return [t.name for t in TARGETS.values() if t.runs_on(machine, flags)]


def family_source(target: Target, family: str, ext: str, hal_root: str) -> str:
    """The path of ``<family>.<ext>`` for the target: its own, else the first fallback's."""
    for folder in target.search:
        path = os.path.join(hal_root, folder, f"{family}.{ext}")
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"no {family}.{ext} for target {target.name} "
                            f"(searched {', '.join(target.search)})")


# --- the target lowering packs for -------------------------------------------------------------
_ACTIVE = contextvars.ContextVar("nnbuild_target", default=GENERIC)


def active() -> Target:
    """The target being generated for (``generic`` outside ``generate_project``)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def using(target: Target):
    """Make ``target`` the active one for the block (planning and lowering run inside)."""
    token = _ACTIVE.set(target)
    try:
        yield target
    finally:
        _ACTIVE.reset(token)
