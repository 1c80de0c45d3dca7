"""The generated app's .npy reader (templates/project/npy.h) under libFuzzer with ASan+UBSan:
malformed headers, wrong dtypes, truncated data and overflow-sized shapes end in a one-line
error, never a crash, a sanitizer report or an allocation larger than the file.

Time-boxed: NNBUILD_NPY_FUZZ_SECONDS (default 15) in the default suite. Longer:

    NNBUILD_NPY_FUZZ_SECONDS=3600 python -m pytest tests/hardening/test_npy_fuzz.py -q -s
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from nnbuild.resources import templates_dir

HERE = os.path.dirname(os.path.abspath(__file__))
SECONDS = int(os.environ.get("NNBUILD_NPY_FUZZ_SECONDS", "15"))


def _fuzzer(tmp_path) -> str | None:
    clang = shutil.which("clang")
    if not clang:
        return None
    exe = str(tmp_path / "npy_fuzz")
    proc = subprocess.run([clang, "-g", "-O1", "-fsanitize=fuzzer,address,undefined",
                           "-fno-sanitize-recover=all",
                           f"-I{os.path.join(templates_dir(), 'project')}",
                           os.path.join(HERE, "npy_fuzz.c"), "-o", exe],
                          capture_output=True, text=True)
    return exe if proc.returncode == 0 else None


def seed_corpus(folder) -> None:
    """Valid files of every dtype the app reads, 0-d to 4-d, header versions 1 and 2."""
    os.makedirs(folder, exist_ok=True)
    arrays = [np.zeros((), np.float32), np.arange(6, dtype=np.int64).reshape(2, 3),
              np.ones((1, 2, 2, 2), np.float16), np.array([True, False]),
              np.arange(4, dtype=np.uint8), np.zeros((0, 3), np.float64),
              np.arange(3, dtype=np.int32), np.arange(5, dtype=np.int8)]
    for i, a in enumerate(arrays):
        np.save(os.path.join(folder, f"s{i}.npy"), a)
    with open(os.path.join(folder, "v2.npy"), "wb") as f:
        np.lib.format.write_array(f, np.arange(3, dtype=np.float32), version=(2, 0))


def peak_rss_mb() -> int:
    """This process's peak resident size (VmHWM), in MB; 0 where /proc is not there."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0


def test_npy_reader_survives_libfuzzer(tmp_path):
    exe = _fuzzer(tmp_path)
    if exe is None:
        pytest.skip("clang with libFuzzer (apt-get install clang libclang-rt-14-dev) is missing")
    corpus = tmp_path / "corpus"
    seed_corpus(corpus)
    # libFuzzer's RSS is getrusage's peak, which Linux carries across fork and exec: a fuzzer
    # started from a test process that has grown (a pytest-xdist worker after the model tests:
    # 3 GB) starts above a fixed limit. The limit is 2 GB above what it inherits.
    rss_limit = peak_rss_mb() + 2048
    proc = subprocess.run([exe, f"-max_total_time={SECONDS}", "-print_final_stats=1",
                           f"-rss_limit_mb={rss_limit}", "-malloc_limit_mb=1024", str(corpus)],
                          capture_output=True, text=True, timeout=SECONDS + 120, cwd=tmp_path)
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
    print(f"\nnpy reader fuzz: {runs.group(1) if runs else '?'} executions in {SECONDS} s")
    assert proc.returncode == 0, proc.stderr[-4000:]


def test_a_shape_larger_than_the_file_is_refused_before_allocation(tmp_path):
    """A header declaring 2^40 float32 over 16 bytes of data: a 'truncated' error, no
    allocation of that size (libFuzzer's -malloc_limit_mb=64 would report one)."""
    exe = _fuzzer(tmp_path)
    if exe is None:
        pytest.skip("clang with libFuzzer is missing")
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }"
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(16)
    (tmp_path / "huge.npy").write_bytes(data)
    proc = subprocess.run([exe, "-malloc_limit_mb=64", str(tmp_path / "huge.npy")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_dtype_with_a_newline_is_a_one_line_error(tmp_path):
    """The dtype string is echoed in the error: control characters in it are refused (the
    fuzzer found a dtype '<q\\n' giving a two-line message)."""
    exe = _fuzzer(tmp_path)
    if exe is None:
        pytest.skip("clang with libFuzzer is missing")
    header = "{'descr': '<q\n', 'fortran_order': False, 'shape': (1,), }"
    data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(4)
    (tmp_path / "nl.npy").write_bytes(data)
    proc = subprocess.run([exe, str(tmp_path / "nl.npy")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
