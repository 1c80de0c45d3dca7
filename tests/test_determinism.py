"""Generated output is byte-reproducible: the same model and options give the same files,
whatever the folder, the working directory or Python's hash seed; nothing records a time or
an absolute path; nnbuild.json says what was built from what (the model's sha256)."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from helpers import make_model

F32 = np.float32


def model():
    """Many constants and values (set and dict order would show), several dtypes."""
    rng = np.random.default_rng(0)
    nodes, inits, prev = [], {}, "x"
    for i in range(12):
        inits[f"w{i}"] = rng.standard_normal(16).astype(F32)
        nodes.append(helper.make_node("Add" if i % 2 else "Mul", [prev, f"w{i}"], [f"v{i}"],
                                      name=f"layer {i}"))
        prev = f"v{i}"
    nodes += [helper.make_node("Relu", [prev], ["r"], name="relu"),
              helper.make_node("Cast", ["r"], ["h"], name="half", to=TensorProto.FLOAT16),
              helper.make_node("Neg", ["h"], ["out/half"], name="neg"),
              helper.make_node("Greater", ["r", "zero"], ["out/mask"], name="gt")]
    inits["zero"] = np.zeros(16, F32)
    return make_model(nodes, {"x": (F32, [4, 16])}, ["out/half", "out/mask", "r"], inits)


def files_of(folder):
    out = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "build"]
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder).replace(os.sep, "/")] = f.read()
    return out


def generate(source, out, *options, cwd, seed):
    proc = subprocess.run([sys.executable, "-m", "nnbuild", "generate", str(source), "-o",
                           str(out), *options], cwd=str(cwd), capture_output=True, text=True,
                          env={**os.environ, "PYTHONHASHSEED": str(seed)})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("options", [[], ["--weights", "file", "--name", "net", "-O1"]])
def test_same_model_twice_gives_identical_files(tmp_path, options):
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    for folder in ("a", "b/deeper"):
        onnx.save(model(), str(tmp_path / folder / "model.onnx"))
    generate(tmp_path / "a" / "model.onnx", tmp_path / "out1", *options, cwd=tmp_path, seed=1)
    generate("model.onnx", "../../out2", *options, cwd=tmp_path / "b" / "deeper", seed=2)
    first, second = files_of(tmp_path / "out1"), files_of(tmp_path / "out2")
    assert sorted(first) == sorted(second)
    for rel in first:
        assert first[rel] == second[rel], f"{rel} differs between the two generations"
    assert "src/nn_half.h" in first


def test_no_absolute_paths_or_times_in_generated_files(tmp_path):
    onnx.save(model(), str(tmp_path / "model.onnx"))
    generate(tmp_path / "model.onnx", tmp_path / "out", "--weights", "file", cwd=tmp_path, seed=0)
    for rel, content in files_of(tmp_path / "out").items():
        assert str(tmp_path).encode() not in content, f"{rel} holds an absolute path"


def test_nnbuild_json_records_what_was_built_from_what(tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save(model(), str(path))
    generate(path, tmp_path / "out", "--name", "net", cwd=tmp_path, seed=0)
    record = json.loads((tmp_path / "out" / "nnbuild.json").read_text())
    assert record["model_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["model"] == "model.onnx"
    from nnbuild import targets
    assert record["name"] == "net" and record["target"] == targets.host().name
    assert record["options"] == {"name": "net", "opt_level": 2, "shapes": {}, "target": "host",
                                 "weights": "embed"}
    import nnbuild
    assert record["nnbuild_version"] == nnbuild.__version__
    assert sorted(record["files"]) == sorted(files_of(tmp_path / "out"))   # the complete list


def test_model_hash_follows_the_model(tmp_path):
    onnx.save(model(), str(tmp_path / "model.onnx"))
    generate(tmp_path / "model.onnx", tmp_path / "out1", cwd=tmp_path, seed=0)
    changed = model()
    changed.graph.initializer[0].raw_data = np.ones(16, F32).tobytes()
    onnx.save(changed, str(tmp_path / "model.onnx"))
    generate(tmp_path / "model.onnx", tmp_path / "out2", cwd=tmp_path, seed=0)
    hashes = [json.loads((tmp_path / o / "nnbuild.json").read_text())["model_sha256"]
              for o in ("out1", "out2")]
    assert hashes[0] != hashes[1]


def test_intermediate_file_is_reproducible(tmp_path):
    onnx.save(model(), str(tmp_path / "model.onnx"))
    for seed, out in ((1, "a.nnir.json"), (2, "b.nnir.json")):
        proc = subprocess.run([sys.executable, "-m", "nnbuild", "translate", "model.onnx", "-o",
                               out], cwd=str(tmp_path), capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": str(seed)})
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a.nnir.json").read_bytes() == (tmp_path / "b.nnir.json").read_bytes()
