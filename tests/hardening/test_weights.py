"""Weights integrity: nnbuild.json records the SHA-256 of the model and of the weight blob;
with --weights file, <p>_load_weights checks the file's size and SHA-256 (computed at load
time by templates/project/nn_sha256.h) and refuses a truncated, corrupted or foreign blob with
an error code and message."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import nnbuild
from nnbuild.resources import templates_dir

CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def test_c_sha256_matches_hashlib(tmp_path):
    """Padding edges (55/56/63/64 bytes...) and a multi-block message."""
    lengths = [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 100003]
    src = tmp_path / "sha.c"
    src.write_text(
        '#include <stdio.h>\n#include <stdlib.h>\n#include "nn_sha256.h"\n'
        "int main(int argc, char **argv) {\n"
        "  for (int a = 1; a < argc; ++a) {\n"
        "    size_t n = (size_t)atol(argv[a]);\n"
        "    unsigned char *d = malloc(n + 1), out[32];\n"
        "    for (size_t i = 0; i < n; ++i) d[i] = (unsigned char)(i * 131u + 7u);\n"
        "    nn_sha256(d, n, out);\n"
        "    for (int i = 0; i < 32; ++i) printf(\"%02x\", out[i]);\n"
        "    printf(\"\\n\");\n    free(d);\n  }\n  return 0;\n}\n")
    exe = tmp_path / "sha"
    subprocess.run([CC, "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror",
                    f"-I{os.path.join(templates_dir(), 'project')}", str(src), "-o", str(exe)],
                   check=True)
    got = subprocess.run([str(exe), *map(str, lengths)], capture_output=True, text=True,
                         check=True).stdout.split()
    for n, digest in zip(lengths, got):
        data = bytes((i * 131 + 7) & 0xFF for i in range(n))
        assert digest == hashlib.sha256(data).hexdigest(), f"{n} bytes"


def weighted_model(seed: int) -> onnx.ModelProto:
    w = np.random.default_rng(seed).standard_normal((16, 8)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    graph = helper.make_graph(nodes, "w", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [2, 16])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [2, 8])], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="module")
def file_weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    onnx.save(weighted_model(0), str(root / "net.onnx"))
    onnx.save(weighted_model(1), str(root / "other.onnx"))
    result = nnbuild.build(str(root / "net.onnx"), str(root / "net"), weights="file")
    nnbuild.generate(str(root / "other.onnx"), str(root / "other"), name="net", weights="file")
    x = np.random.default_rng(2).standard_normal((2, 16)).astype(np.float32)
    np.save(root / "x.npy", x)
    return root, result


def test_nnbuild_json_records_model_and_weights_sha256(file_weights):
    root, _ = file_weights
    meta = json.loads((root / "net" / "nnbuild.json").read_text())
    assert meta["model_sha256"] == hashlib.sha256((root / "net.onnx").read_bytes()).hexdigest()
    blob = (root / "net" / "weights" / "net.bin").read_bytes()
    assert meta["weights_sha256"] == hashlib.sha256(blob).hexdigest()


def run_app(root, result, blob: bytes | None):
    cmd = [result.app, "--input", str(root / "x.npy"), "--output-dir", str(root / "out")]
    if blob is not None:
        (root / "candidate.bin").write_bytes(blob)
        cmd += ["--weights", str(root / "candidate.bin")]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_the_right_blob_loads(file_weights):
    root, result = file_weights
    proc = run_app(root, result, (root / "net" / "weights" / "net.bin").read_bytes())
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("damage", ["flipped_byte", "truncated", "extended",
                                    "other_model_same_size"])
def test_a_wrong_blob_is_refused_with_a_message(file_weights, damage):
    root, result = file_weights
    blob = bytearray((root / "net" / "weights" / "net.bin").read_bytes())
    if damage == "flipped_byte":
        blob[len(blob) // 2] ^= 0x01
    elif damage == "truncated":
        blob = blob[:-1]
    elif damage == "extended":
        blob += b"\0"
    else:
        blob = bytearray((root / "other" / "weights" / "net.bin").read_bytes())
        assert len(blob) == len((root / "net" / "weights" / "net.bin").read_bytes())
    proc = run_app(root, result, bytes(blob))
    assert proc.returncode == 2, proc.stderr
    expected = "wrong size" if damage in ("truncated", "extended") else "SHA-256"
    assert expected in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
