"""The Python API; the CLI is a thin layer over these functions.

    translate(model)            -> IR graph (static shapes, canonical ops)
    optimize(graph)             -> IR graph after the -O pipeline
    generate(model, out_dir)    -> GeneratedProject written to out_dir
    build(model, out_dir)       -> BuildResult (app and library paths)
    compile(model)              -> CompiledModel loaded in process, through the cache
    diff(model)                 -> DiffResult: every surviving intermediate against onnxruntime
"""
from __future__ import annotations

import hashlib
import os

import onnx

from . import bindings, ops  # noqa: F401  (ops: registers every op)
from .build import cache
from .build.driver import BuildResult, artifact_paths, build_project
from .build.outdir import check_output_folder, publish
from .codegen import generate_project
from .codegen.names import model_prefix
from .errors import ModelError
from .frontend import load_model
from .frontend import translate as _translate_onnx
from .ir import Graph, load_json
from .options import Options
from .passes import PassManager, pipeline
from .runtime import CompiledModel

INTERMEDIATE_SUFFIX = ".nnir.json"


def _options(options: Options | None, kwargs: dict) -> Options:
    if options is not None and kwargs:
        return Options.make(**{**_as_kwargs(options), **kwargs})
    return options if options is not None else Options.make(**kwargs)


def _as_kwargs(options: Options) -> dict:
    return dict(name=options.name, target=options.target, opt_level=options.opt_level,
                shapes=options.shape_map, weights=options.weights, dump_ir=options.dump_ir)


def _source(model) -> tuple:
    """(display name, default prefix, content hash, loader) for a path or ModelProto."""
    if isinstance(model, onnx.ModelProto):
        data = model.SerializeToString()
        return "<ModelProto>", "model", hashlib.sha256(data).hexdigest(), lambda: model
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise ModelError(f"{path}: no such file")
    return os.path.basename(path), model_prefix(path), _fingerprint(path), None


def _fingerprint(path: str) -> str:
    """sha256 of the model file and of the external-data files beside it that it names."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        data = f.read()
    h.update(data)
    if b"location" in data:              # cheap test before parsing: external data is named
        for location in _external_locations(data):
            h.update(b"\0" + location.encode() + b"\0")
            try:
                with open(os.path.join(os.path.dirname(os.path.abspath(path)), location),
                          "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
            except (OSError, ValueError):    # ValueError: a NUL in the name
                pass                     # translate reports the missing or escaping file
    return h.hexdigest()


def _external_locations(data: bytes) -> list:
    """The external-data files a serialized model names, sorted; [] if it does not parse."""
    from .frontend.onnx_import import _all_tensors
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception:
        return []
    return sorted({e.value for t in _all_tensors(model.graph)
                   if t.data_location == onnx.TensorProto.EXTERNAL
                   for e in t.external_data if e.key == "location"})


def translate(model, options: Options | None = None, **kwargs) -> Graph:
    """ONNX path / ModelProto / intermediate file -> typed IR graph."""
    options = _options(options, kwargs)
    display, prefix, _, loader = _source(model)
    name = options.name or prefix
    if loader is None and str(model).endswith(INTERMEDIATE_SUFFIX):
        graph = load_json(os.fspath(model))
        graph.name = name
        return graph
    proto = loader() if loader else load_model(os.fspath(model))
    return _translate_onnx(proto, options.shape_map, name=name, where=display)


def optimize(graph: Graph, options: Options | None = None, stop_after: str | None = None,
             verify_each: bool = False, **kwargs) -> Graph:
    options = _options(options, kwargs)
    manager = PassManager(pipeline(options.opt_level), dump_dir=options.dump_ir,
                          verify_each=verify_each, stop_after=stop_after)
    return manager.run(graph)


def _generate(model, options: Options, fixed_files: bool = False):
    display, _, model_hash, _ = _source(model)
    graph = optimize(translate(model, options), options)
    return generate_project(graph, options, display, model_hash, fixed_files)


def generate(model, out_dir: str, options: Options | None = None, fixed_files: bool = False,
             **kwargs):
    """Write the complete CMake project for ``model`` into ``out_dir`` (no build).
    ``fixed_files``: also write every HAL family and helper header of the target, so that the
    file list depends only on the options (build systems that declare outputs: Bazel)."""
    options = _options(options, kwargs)
    out_dir = os.path.abspath(out_dir)
    check_output_folder(out_dir)          # before any work, so a bad -o fails fast
    project = _generate(model, options, fixed_files)
    publish(project, out_dir)
    return project


def build(model, out_dir: str, options: Options | None = None, shared: bool = False,
          **kwargs) -> BuildResult:
    """generate + configure + build; returns the app and library paths."""
    options = _options(options, kwargs)
    out_dir = os.path.abspath(out_dir)
    check_output_folder(out_dir)
    project = _generate(model, options)
    artifacts = artifact_paths(out_dir, project.prefix, shared)
    built = []                  # the build is part of the journaled update of out_dir
    publish(project, out_dir, keep=(artifacts.app, artifacts.library),
            then=lambda: built.append(build_project(out_dir, project.prefix, shared=shared)))
    return built[0]


def cached(model, options: Options, cache_dir: str | None = None) -> tuple:
    """Build through the cache; returns (BuildResult, prefix)."""
    _, prefix, model_hash, _ = _source(model)
    prefix = options.name or prefix
    key = cache.cache_key(model_hash, f"{options.key()}|{prefix}|{options.resolved_target}")

    def make(project_dir):
        project = _generate(model, options)
        publish(project, project_dir)
        build_project(project_dir, project.prefix, shared=True,
                      extra_args=("-DCMAKE_BUILD_RPATH_USE_ORIGIN=ON",))

    entry = cache.cached_build(cache_dir or cache.default_cache_dir(), key, make)
    return artifact_paths(os.path.join(entry, "project"), prefix, shared=True), prefix


def compile(model, cache_dir: str | None = None, options: Options | None = None,
            **kwargs) -> CompiledModel:
    """Generate and build through the cache, then load the library in this process."""
    options = _options(options, kwargs)
    result, prefix = cached(model, options, cache_dir)
    return CompiledModel(result.library, prefix, result.project_dir, _boundary(model))


def _boundary(model) -> dict | None:
    """The ONNX model's declared inputs and outputs with their kinds (sequences and optionals
    are flattened at the C API; the runtime regroups them); None for an intermediate file."""
    if not isinstance(model, onnx.ModelProto):
        if str(model).endswith(INTERMEDIATE_SUFFIX):
            return None
        model = onnx.load(os.fspath(model), load_external_data=False)
    kinds = bindings.declared_kinds(model.graph)
    plain = all(k == "tensor" for _, k in kinds["inputs"] + kinds["outputs"])
    return None if plain else kinds


def diff(model, options: Options | None = None, inputs: dict | None = None,
         tolerance: str = "model", work_dir: str | None = None, **kwargs):
    """Build ``model`` with every surviving intermediate as an output, run it and onnxruntime
    on ``inputs`` (the rest seeded random); ``result.first_bad`` names the first node whose
    error exceeds nnbuild.testing's tolerance ("model" or "op")."""
    from .analysis.diff import diff_model
    return diff_model(model, _options(options, kwargs), inputs=inputs, tolerance=tolerance,
                      work_dir=work_dir)
