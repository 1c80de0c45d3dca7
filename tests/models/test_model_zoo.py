"""The nine model-zoo networks shipped with the onnx package (backend test data, "light"
variants: full-size architectures at 1x3x224x224 whose weights are ConstantOfShape fills) match
their stored expected output within MODEL_TOLERANCE, both in process and through the built app.

The input is not stored: onnx's backend runner generates it (generate_dummy_data with
random=False in onnx/backend/test/runner/__init__.py), and so do we. Each network is built once,
through the cache: the in-process check and the app check use the same build."""
import os

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import nnbuild
from model_checks import assert_outputs_match, run_app
from nnbuild.build.driver import artifact_paths

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")

FAST = ["bvlc_alexnet", "zfnet512", "squeezenet", "shufflenet", "inception_v1", "resnet50",
        "inception_v2", "densenet121"]
SLOW = ["vgg19"]                     # the largest by far (see the timings in the report)
NETWORKS = FAST + [pytest.param(name, marks=pytest.mark.slow) for name in SLOW]


def backend_dummy_input(vi: onnx.ValueInfoProto) -> np.ndarray:
    """What onnx's backend runner feeds: arange(n) / n in the input's shape, as float32."""
    shape = tuple(d.dim_value if d.HasField("dim_value") else 1
                  for d in vi.type.tensor_type.shape.dim)
    n = np.prod(shape)
    return (np.arange(n).reshape(shape) / n).astype(np.float32)


def zoo_case(name: str) -> tuple:
    """(model path, feeds, expected outputs by name) for light_<name>."""
    path = os.path.join(LIGHT_DIR, f"light_{name}.onnx")
    graph = onnx.load(path, load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    (data,) = [vi for vi in graph.input if vi.name not in initializers]
    expected = {}
    for i, out in enumerate(graph.output):
        tensor = onnx.TensorProto()
        with open(os.path.join(LIGHT_DIR, f"light_{name}_output_{i}.pb"), "rb") as f:
            tensor.ParseFromString(f.read())
        expected[out.name] = numpy_helper.to_array(tensor)
    return path, {data.name: backend_dummy_input(data)}, expected


@pytest.mark.parametrize("name", NETWORKS)
def test_in_process_matches_stored_output(name, cache_dir):
    path, feeds, expected = zoo_case(name)
    compiled = nnbuild.compile(path, cache_dir=cache_dir)
    assert_outputs_match(compiled.run(feeds), expected, f"light_{name} (in process)")


@pytest.mark.parametrize("name", NETWORKS)
def test_built_app_matches_stored_output(name, cache_dir, tmp_path):
    path, feeds, expected = zoo_case(name)
    compiled = nnbuild.compile(path, cache_dir=cache_dir)     # the same cached build
    app = artifact_paths(compiled.project_dir, compiled.prefix, shared=True).app
    actual = run_app(app, feeds, list(expected), str(tmp_path))
    assert_outputs_match(actual, expected, f"light_{name} (app)")
