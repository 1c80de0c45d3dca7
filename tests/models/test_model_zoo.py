"""The nine model-zoo networks shipped with the onnx package (backend test data, "light"
variants: full-size architectures at 1x3x224x224 whose weights are ConstantOfShape fills) match
their stored expected output within MODEL_TOLERANCE, both in process and through the built app.

The input is not stored: onnx's backend runner generates it (generate_dummy_data with
random=False in onnx/backend/test/runner/__init__.py), and so do we. Each network is built once:
the in-process check and the app check use the same build.

Note: the weights are one value everywhere, so every class gets the same logit and the stored
output of the nets ending in Softmax is 0.001 throughout; densenet121 (no Softmax) is the one
whose expected values depend on the arithmetic. The real-weight nets (test_real_weights.py)
are the numerically demanding check."""
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import nnbuild
from model_checks import assert_outputs_match, run_app
from nnbuild.build.driver import artifact_paths

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")

# vgg19 holds 575 MB of weights after folding: its build folder takes ~1.7 GB while it runs.
NETWORKS = ["bvlc_alexnet", "zfnet512", "squeezenet", "shufflenet", "inception_v1", "resnet50",
            "inception_v2", "densenet121", "vgg19"]


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


@pytest.fixture(scope="module", params=NETWORKS)
def zoo_build(request, tmp_path_factory):
    """One build per network, shared by its in-process and app checks, in a private cache that
    is removed afterwards (the biggest builds take gigabytes: weights are stored expanded)."""
    name = request.param
    path, feeds, expected = zoo_case(name)
    cache = tmp_path_factory.mktemp(f"zoo-{name}")
    try:
        yield name, nnbuild.compile(path, cache_dir=str(cache)), feeds, expected
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def test_in_process_matches_stored_output(zoo_build):
    name, compiled, feeds, expected = zoo_build
    assert_outputs_match(compiled.run(feeds), expected, f"light_{name} (in process)")


def test_built_app_matches_stored_output(zoo_build, tmp_path):
    name, compiled, feeds, expected = zoo_build
    app = artifact_paths(compiled.project_dir, compiled.prefix, shared=True).app
    actual = run_app(app, feeds, list(expected), str(tmp_path))
    assert_outputs_match(actual, expected, f"light_{name} (app)")


BUILD_AND_MEASURE = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def test_vgg19_weights_never_pass_through_the_c_compiler(tmp_path):
    """The 575 MB blob is embedded by the assembler's .incbin: no process of the build (C
    compiler, assembler, archiver) grows past 1 GB."""
    from nnbuild.build.driver import cmake_exe, ninja_exe
    project = tmp_path / "vgg19"
    generated = nnbuild.generate(os.path.join(LIGHT_DIR, "light_vgg19.onnx"), str(project))
    assert generated.weights_bytes > 500e6
    assert (project / "src" / "light_vgg19.c").stat().st_size < 1e6      # code only, no data
    cmake = cmake_exe()
    subprocess.run([cmake, "-S", project, "-B", project / "build", "-G", "Ninja",
                    f"-DCMAKE_MAKE_PROGRAM={ninja_exe()}"], check=True, stdout=subprocess.DEVNULL)
    peak_kb = int(subprocess.run([sys.executable, "-c", BUILD_AND_MEASURE, cmake, "--build",
                                  project / "build"], check=True, capture_output=True,
                                 text=True).stdout)
    assert peak_kb < 1024 * 1024, f"a build process peaked at {peak_kb / 1024:.0f} MB"
