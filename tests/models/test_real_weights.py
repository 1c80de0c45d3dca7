"""Small networks with real (seeded random) weights match onnxruntime within MODEL_TOLERANCE,
both loaded in process (nnbuild.compile) and as the CMake-built app (nnbuild.build).

The networks are fixtures in tests/models/data/, written by scripts/make_test_models.py (see
its docstring for the architectures and the ONNX ops each one uses)."""
import os

import numpy as np
import onnx
import pytest

import nnbuild
from helpers import onnxruntime_outputs, target_param
from model_checks import DATA_DIR, assert_outputs_match, run_app

VOCAB = 100                    # transformer_small's embedding table size

NETWORKS = ["resnet_small", "mobilenet_small", "transformer_small"]


def seeded_inputs(model: onnx.ModelProto, seed: int = 0) -> dict:
    """Standard-normal floats; integer inputs are token ids in [0, VOCAB)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in model.graph.input:
        t = vi.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)
        shape = [d.dim_value for d in t.shape.dim]
        if np.issubdtype(dtype, np.integer):
            feeds[vi.name] = rng.integers(0, VOCAB, shape).astype(dtype)
        else:
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


@pytest.fixture(scope="module", params=NETWORKS)
def network(request):
    """(path, feeds, onnxruntime outputs) for one network."""
    path = os.path.join(DATA_DIR, f"{request.param}.onnx")
    model = onnx.load(path)
    feeds = seeded_inputs(model)
    return path, feeds, onnxruntime_outputs(model, feeds)


@pytest.mark.parametrize("opt_level", [2, 0], ids=["O2", "O0"])
def test_in_process_matches_onnxruntime(network, opt_level, cache_dir):
    """-O2 folds BatchNormalization into the convolutions; -O0 runs every node as exported."""
    path, feeds, expected = network
    compiled = nnbuild.compile(path, cache_dir=cache_dir, opt_level=opt_level)
    assert_outputs_match(compiled.run(feeds), expected, f"{os.path.basename(path)} -O{opt_level}")


@target_param()
def test_every_target_matches_onnxruntime(network, target, cache_dir):
    """Each hardware interface's kernels (those this CPU runs), not only the host's."""
    path, feeds, expected = network
    compiled = nnbuild.compile(path, cache_dir=cache_dir, target=target)
    assert_outputs_match(compiled.run(feeds), expected, f"{os.path.basename(path)} {target}")


def test_built_app_matches_onnxruntime(network, tmp_path):
    path, feeds, expected = network
    result = nnbuild.build(path, str(tmp_path / "project"))
    actual = run_app(result.app, feeds, list(expected), str(tmp_path))
    assert_outputs_match(actual, expected, os.path.basename(result.app))
