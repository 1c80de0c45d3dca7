"""Cross-compiling: examples/cmake-app built for aarch64 with the toolchain file nnbuild ships
(Debian's gcc-aarch64-linux-gnu), the generator running on the build machine; its programs run
under qemu-aarch64 (Debian's qemu-user) and give the outputs of the native x86-64 build."""
import os
import platform
import shutil
import subprocess

import numpy as np
import pytest

from cmake_helpers import build, configure, copy_example, example_outputs, pattern
from nnbuild import resources
from nnbuild.testing import MODEL_TOLERANCE, assert_close

SYSROOT = "/usr/aarch64-linux-gnu"
MISSING = [tool for tool in ("aarch64-linux-gnu-gcc", "qemu-aarch64") if not shutil.which(tool)]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"cross tools absent: {', '.join(MISSING)} (Debian: apt-get install "
                          f"gcc-aarch64-linux-gnu qemu-user; .ci/run installs them)")


def elf_machine(path: str) -> int:
    with open(path, "rb") as f:
        header = f.read(20)
    assert header[:4] == b"\x7fELF"
    return int.from_bytes(header[18:20], "little")


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """One copy of the example built twice: natively and for aarch64."""
    source = copy_example("cmake-app", tmp_path_factory.mktemp("cross"))
    native, arm = os.path.join(source, "build-native"), os.path.join(source, "build-aarch64")
    configure(source, native)
    toolchain = os.path.join(resources.cmake_dir(), "toolchains", "aarch64-linux-gnu.cmake")
    configure(source, arm, f"-DCMAKE_TOOLCHAIN_FILE={toolchain}")
    build(native)
    log = build(arm)
    return native, arm, log


def qemu(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-aarch64", "-L", SYSROOT, *cmd], capture_output=True, text=True,
                          check=True)


def test_programs_are_built_for_aarch64(builds):
    _, arm, log = builds
    assert "generating classifier.nnbuild" in log          # the generator ran on this machine
    for program in ("app", "classifier_app"):
        assert elf_machine(os.path.join(arm, program)) == 183       # EM_AARCH64


def test_aarch64_app_under_qemu_gives_the_native_outputs(builds):
    native, arm, _ = builds
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("compares against an x86-64 build")
    expected = example_outputs(subprocess.run([os.path.join(native, "app")], capture_output=True,
                                              text=True, check=True).stdout)
    actual = example_outputs(qemu(os.path.join(arm, "app")).stdout)
    assert set(actual) == {"classifier", "scorer"}
    for model in actual:
        assert_close(actual[model], expected[model], MODEL_TOLERANCE, what=f"aarch64 {model}")


def test_aarch64_standalone_app_reads_and_writes_npy(builds, tmp_path):
    native, arm, _ = builds
    np.save(tmp_path / "image.npy", pattern((1, 3, 32, 32)))
    for name, build_dir in (("native", native), ("aarch64", arm)):
        cmd = [os.path.join(build_dir, "classifier_app"), "--input",
               f"image={tmp_path / 'image.npy'}", "--output-dir", str(tmp_path / name)]
        if name == "aarch64":
            qemu(*cmd)
        else:
            subprocess.run(cmd, check=True, capture_output=True)
    assert_close(np.load(tmp_path / "aarch64" / "probs.npy"),
                 np.load(tmp_path / "native" / "probs.npy"), MODEL_TOLERANCE, what="probs")
