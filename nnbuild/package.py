"""`nnbuild package`: a model as a pip-installable Python extension (a scikit-build-core project).

    nnbuild package model.onnx -o mypkg/ --name mynet
    pip install ./mypkg            # or: pip wheel ./mypkg
    python -c "import mynet; print(mynet.run(x))"

The folder holds (for the name ``n``):

    pyproject.toml          scikit-build-core backend; runtime dependency numpy only
    CMakeLists.txt          nn_add_model() from model/ when nnbuild is importable at build
                            time, else add_subdirectory(generated)
    native.c                the extension n._native: Python's C API and the buffer protocol
    python/n/__init__.py    run(), inputs, outputs: numpy in and out, dtypes and shapes checked
    model/n.onnx            the model, as given
    generated/              the generated C project (nnbuild generate), so that building the
                            package needs no nnbuild: wheels install anywhere numpy does
    nnbuild.json            what was packaged from what, and the list of files written

Like every nnbuild output folder, ``-o`` must be new, empty or one nnbuild wrote before.
"""
from __future__ import annotations

import json
import os

import jinja2

from . import __version__, api, bindings
from .build.outdir import check_output_folder, publish
from .codegen.names import c_comment
from .codegen.project import GeneratedProject
from .errors import UsageError
from .options import Options
from .resources import templates_dir

PACKAGE_VERSION = "0.1.0"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(templates_dir(), "package")),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)


def _model_args(options: Options, target: str) -> str:
    """nn_add_model()'s options that reproduce ``options`` (the target already resolved, so the
    vendored sources and a regeneration agree)."""
    args = f" TARGET {target} WEIGHTS embed OPT_LEVEL {options.opt_level}"
    if options.shapes:
        args += " SHAPES " + " ".join(
            f'"{name}={bindings.to_text(dims)}"' for name, dims in options.shapes)
    return args


def package(model: str, out_dir: str, options: Options) -> GeneratedProject:
    """Write the scikit-build-core project for ``model`` into ``out_dir``."""
    if options.weights != "embed":
        raise UsageError("--weights file: a package embeds its weights in the extension")
    model = os.fspath(model)
    name = options.name or api._source(model)[1]
    if not name.isidentifier():
        raise UsageError(f"--name {name!r}: the package name must be a Python identifier")
    options = Options.make(**{**api._as_kwargs(options), "name": name})
    out_dir = os.path.abspath(out_dir)
    check_output_folder(out_dir)
    project = api._generate(model, options)
    suffix = api.INTERMEDIATE_SUFFIX if model.endswith(api.INTERMEDIATE_SUFFIX) else ".onnx"
    model_file = name + suffix
    header = json.loads(project.files["nnbuild.json"])
    values = dict(
        name=name, p=project.prefix, P=project.prefix.upper(), version=__version__,
        package_version=PACKAGE_VERSION, source_file=c_comment(os.path.basename(model)),
        model_file=model_file, model_args=_model_args(options, header["target"]))
    env = _environment()

    def render(template):
        return env.get_template(template).render(**values).encode()

    files = {f"generated/{rel}": data for rel, data in project.files.items()}
    with open(model, "rb") as f:
        files[f"model/{model_file}"] = f.read()
    files["pyproject.toml"] = render("pyproject.toml.j2")
    files["CMakeLists.txt"] = render("CMakeLists.txt.j2")
    files["native.c"] = render("native.c.j2")
    files[f"python/{name}/__init__.py"] = render("__init__.py.j2")
    files["nnbuild.json"] = (json.dumps({
        "nnbuild_version": __version__, "package": name, "package_version": PACKAGE_VERSION,
        "model": header["model"], "model_sha256": header["model_sha256"],
        "target": header["target"], "options": header["options"],
        "files": sorted(files) + ["nnbuild.json"],
    }, indent=2, sort_keys=True) + "\n").encode()
    packaged = GeneratedProject(project.prefix, files, project.plan, project.weights_bytes,
                                project.families)
    publish(packaged, out_dir)
    return packaged
