"""Targets: `host` picks the best one the CPU runs, `--target` forces one, a family the target
lacks comes from its fallback (ending at generic), each target's GEMM blocking is the one its
kernel header states, every target declares the same gemm interface, the generic project is
the portable one (no instruction-set flags), and results do not depend on the thread count."""
import json
import os
import re

import numpy as np
import pytest
from onnx import helper

import nnbuild
from nnbuild import targets
from nnbuild.errors import UsageError
from nnbuild.ops import linalg
from nnbuild.options import Options
from nnbuild.resources import templates_dir
from helpers import make_model, target_param

F32 = np.float32
HAL = os.path.join(templates_dir(), "hal")
AVX2_FLAGS = {"sse2", "avx", "avx2", "fma"}


# --- choosing a target ------------------------------------------------------------------------
@pytest.mark.parametrize("machine,flags,best", [
    ("x86_64", {"sse2", "sse4_2"}, "generic"),
    ("x86_64", AVX2_FLAGS - {"fma"}, "generic"),
    ("x86_64", AVX2_FLAGS, "x86-avx2"),                           # Haswell, Zen 1-3
    ("x86_64", AVX2_FLAGS | {"avx512f", "avx512bw"}, "x86-avx512"),   # Skylake-SP, Zen 4
    ("aarch64", {"fp", "asimd"}, "arm64-neon"),                   # NEON is baseline AArch64
    ("aarch64", AVX2_FLAGS | {"avx512f"}, "arm64-neon"),          # flags of another machine
])
def test_host_is_the_best_target_the_cpu_runs(machine, flags, best):
    assert targets.best_for(machine, flags).name == best


def test_cpu_flags_come_from_proc_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 fma\n\n"
                       "processor\t: 1\nflags\t\t: fpu sse2 avx2 fma\n")
    assert targets.cpu_flags(str(cpuinfo)) == {"fpu", "sse2", "avx2", "fma"}
    assert targets.cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_host_resolves_and_every_target_can_be_forced():
    assert Options().resolved_target == targets.host().name
    for name in targets.TARGETS:
        assert Options(target=name).resolved_target == name
    with pytest.raises(UsageError, match="x86-avx2"):      # the message lists the targets
        Options(target="x86-sse")


# --- what each target provides ----------------------------------------------------------------
@pytest.mark.parametrize("name", list(targets.TARGETS))
def test_blocking_matches_the_targets_kernel_header(name):
    target = targets.TARGETS[name]
    with open(targets.family_source(target, "gemm", "h", HAL)) as f:
        header = {k: int(v) for k, v in re.findall(r"#define NN_GEMM_(\w+) (\d+)", f.read())}
    assert header == target.gemm.as_dict()
    b = target.gemm
    assert b.MC % b.MR == 0 and b.NC % b.NR == 0


@pytest.mark.parametrize("name", list(targets.TARGETS))
def test_every_target_declares_the_shared_gemm_interface(name):
    """Lowering emits the same calls whatever the target: a target's gemm.h gives its blocking
    only, the declarations are the shared hal/common/nn_gemm.h."""
    with open(targets.family_source(targets.TARGETS[name], "gemm", "h", HAL)) as f:
        code = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    lines = [line.split()[:2] for line in code.splitlines() if line.strip()]
    assert lines == [["#ifndef", "NN_GEMM_H"], ["#define", "NN_GEMM_H"]] + \
        [["#define", f"NN_GEMM_{p}"] for p in targets.TARGETS[name].gemm.as_dict()] + \
        [["#include", '"nn_gemm.h"'], ["#endif"]]


def test_a_family_the_target_lacks_falls_back():
    avx512 = targets.TARGETS["x86-avx512"]
    assert targets.family_source(avx512, "gemm", "h", HAL) == \
        os.path.join(HAL, "x86-avx512", "gemm.h")
    assert targets.family_source(avx512, "gemm", "c", HAL) == \
        os.path.join(HAL, "x86-avx2", "gemm.c")                    # one source, two widths
    assert targets.family_source(avx512, "norm", "c", HAL) == \
        os.path.join(HAL, "generic", "norm.c")
    for target in targets.TARGETS.values():
        assert target.search[-1] == "generic"


@pytest.mark.parametrize("name", list(targets.TARGETS))
def test_pack_a_uses_the_targets_layout(name):
    """Element (i, p) of A at (p // KC) * KC * Mp + (i // MR) * MR * kc + (p % KC) * MR + i % MR."""
    b = targets.TARGETS[name].gemm
    m, k = b.MR + 3, b.KC + 5
    a = np.arange(m * k, dtype=F32).reshape(m, k)
    with targets.using(targets.TARGETS[name]):
        packed = linalg.pack_a(a)
        assert packed.size == linalg.packed_a_floats(m, k)
    mp = -(-m // b.MR) * b.MR
    for i, p in [(0, 0), (m - 1, k - 1), (b.MR, b.KC), (1, b.KC - 1)]:
        kc = min(b.KC, k - p // b.KC * b.KC)
        at = (p // b.KC) * b.KC * mp + (i // b.MR) * b.MR * kc + (p % b.KC) * b.MR + i % b.MR
        assert packed[at] == a[i, p]


# --- the generated project --------------------------------------------------------------------
def conv_gemm_model():
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Flatten", ["c"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fb"], ["y"], transB=1)]
    inits = {"w": rng.standard_normal((20, 3, 3, 3)).astype(F32),
             "b": rng.standard_normal(20).astype(F32),
             "fc": (0.1 * rng.standard_normal((10, 20 * 9 * 7))).astype(F32),
             "fb": rng.standard_normal(10).astype(F32)}
    return make_model(nodes, {"x": (F32, [1, 3, 9, 7])}, ["y"], inits)


@pytest.mark.parametrize("name", list(targets.TARGETS))
def test_project_holds_the_targets_kernels_and_flags(name, tmp_path):
    target = targets.TARGETS[name]
    project = nnbuild.generate(conv_gemm_model(), str(tmp_path / "out"), target=name)
    files = project.files
    for family in ("gemm", "conv"):
        for ext in ("h", "c"):
            with open(targets.family_source(target, family, ext, HAL), "rb") as f:
                assert files[f"hal/{family}.{ext}"] == f.read()
    cmake = files["CMakeLists.txt"].decode()
    assert json.loads(files["nnbuild.json"])["target"] == name
    if name == "generic":               # the portable project: no instruction-set options
        assert "-m" not in re.sub(r"-W\w+", "", cmake.split("add_executable")[0])
        assert files["hal/gemm.c"] == open(os.path.join(HAL, "generic", "gemm.c"), "rb").read()
    else:
        assert ";".join(target.c_flags) in cmake


@target_param()
def test_thread_count_does_not_change_results(target, cache_dir):
    model = conv_gemm_model()
    x = np.random.default_rng(0).standard_normal((1, 3, 9, 7)).astype(F32)
    compiled = nnbuild.compile(model, cache_dir=cache_dir, target=target)
    outputs = []
    for threads in (1, 2, 3):
        compiled.set_num_threads(threads)
        outputs.append(compiled.run({"x": x})["y"])
    for other in outputs[1:]:
        assert np.array_equal(outputs[0], other)
