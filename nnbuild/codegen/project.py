"""IR graph -> the generated CMake project, as an in-memory map of relative path -> content.

Layout (for prefix ``p``): CMakeLists.txt, include/p.h, src/p.c (+ src/nn_half.h when f16 or
bf16 values are computed on), hal/*.{h,c}, weights/p.bin (+ weights/p_weights.S when embedded),
app/main.c, app/npy.h, nnbuild.json. Content is a function of (graph, options, nnbuild version)
only: no timestamps, no absolute paths.

With ``fixed_files`` the project also holds every HAL family and every helper header, used or
not, so that its file list depends only on the prefix and the weights mode (what build systems
that declare outputs before the generator runs need: Bazel). The files both hold are identical.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field

import jinja2

from .. import __version__, targets
from ..ir.graph import Graph
from ..ops import registry
from ..resources import templates_dir
from .context import LoweringContext
from .names import c_comment, c_string
from .plan import MemoryPlan, plan_memory


@dataclass
class GeneratedProject:
    prefix: str
    files: dict                      # relative path -> bytes
    plan: MemoryPlan
    weights_bytes: int
    families: list = field(default_factory=list)

    def write_into(self, folder: str) -> None:
        for rel in sorted(self.files):
            path = os.path.join(folder, *rel.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(self.files[rel])


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(templates_dir(), "project")),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)


def _tensor_infos(graph: Graph, names: list, prefix: str, kind: str):
    shapes, infos = [], []
    for i, name in enumerate(names):
        t = graph.types[name]
        shape_name = f"{prefix}_{kind}{i}_shape"
        shapes.append({"name": shape_name, "dims": ", ".join(str(d) for d in t.shape) or "0"})
        infos.append({"name": c_string(name), "dtype": t.dtype.code, "rank": t.rank,
                      "shape": shape_name, "bytes": t.nbytes})
    return shapes, infos


def _lower(graph: Graph, plan: MemoryPlan, prefix: str) -> LoweringContext:
    ctx = LoweringContext(graph, plan, prefix, set())
    for index, node in enumerate(graph.nodes):
        ctx.lower_node(index, node, registry.get(node).lower)
    # Outputs that no node writes (a graph input or constant passed through, or one value
    # named twice) are copied into place at the end.
    written = {o for n in graph.nodes for o in n.outputs}
    for i, name in enumerate(graph.outputs):
        if name in written and ctx.output_index[name] == i:
            continue
        source = ctx.ptr(name)
        ctx.steps.append((c_comment(f"output {i} ({name}) copied from its source"),
                          [f"memcpy(outputs[{i}], {source}, {graph.types[name].nbytes});"]))
    ctx.finish()
    return ctx


def generate_project(graph: Graph, options, source_file: str, model_hash: str,
                     fixed_files: bool = False) -> GeneratedProject:
    prefix = graph.name
    target = targets.resolve(options.target)
    with targets.using(target):              # scratch sizes and packed layouts are the target's
        plan = plan_memory(graph)
        ctx = _lower(graph, plan, prefix)
    families = sorted(ctx.families)
    embedded = options.weights == "embed"
    blob = io.BytesIO()
    ctx.weights.write(blob)
    weights_sha256 = hashlib.sha256(blob.getvalue()).digest()
    helpers = sorted(ctx.helpers | (set() if embedded else {"sha256"}))   # the loader checks it
    in_shapes, inputs = _tensor_infos(graph, graph.inputs, prefix, "input")
    out_shapes, outputs = _tensor_infos(graph, graph.outputs, prefix, "output")
    values = dict(
        p=prefix, P=prefix.upper(), version=__version__,
        source_file=c_comment(source_file),     # one printable line: safe in C and CMake comments
        target=target.name, target_flags=";".join(target.c_flags),
        opt_level=options.opt_level, model_name=graph.name,
        num_inputs=len(inputs), num_outputs=len(outputs), inputs=inputs, outputs=outputs,
        shapes=in_shapes + out_shapes, workspace_bytes=plan.arena_bytes + 64,
        arena_bytes=plan.arena_bytes, weights_bytes=ctx.weights.size, embedded=embedded,
        families=families, helpers=helpers, tables=ctx.table_decls, steps=ctx.steps,
        weights_sha256_bytes=", ".join(f"0x{b:02x}" for b in weights_sha256))
    env = _environment()

    def render(name):
        return env.get_template(name).render(**values).encode()

    files = {
        "CMakeLists.txt": render("CMakeLists.txt.j2"),
        f"include/{prefix}.h": render("model.h.j2"),
        f"src/{prefix}.c": render("model.c.j2"),
        "app/main.c": render("main.c.j2"),
        "app/npy.h": _read(os.path.join(templates_dir(), "project", "npy.h")),
        "hal/nn_hal.h": _read(os.path.join(templates_dir(), "hal", "common", "nn_hal.h")),
        "hal/nn_pool.h": _read(os.path.join(templates_dir(), "hal", "common", "nn_pool.h")),
        "hal/nn_pool.c": _read(os.path.join(templates_dir(), "hal", "common", "nn_pool.c")),
        "hal/nn_vmath.h": _read(os.path.join(templates_dir(), "hal", "common", "nn_vmath.h")),
        "hal/nn_vexp.h": _read(os.path.join(templates_dir(), "hal", "common", "nn_vexp.h")),
        "hal/nn_attention_driver.h": _read(os.path.join(templates_dir(), "hal", "common",
                                                        "nn_attention_driver.h")),
        "hal/nn_lstm_driver.h": _read(os.path.join(templates_dir(), "hal", "common",
                                                   "nn_lstm_driver.h")),
        "hal/nn_config.h": (f"/* Generated by nnbuild {__version__}; do not edit. */\n"
                            f"#define NN_PREFIX {prefix}\n").encode(),
    }
    for helper in sorted(all_helpers() if fixed_files else helpers):
        files[f"src/nn_{helper}.h"] = _read(os.path.join(templates_dir(), "project",
                                                         f"nn_{helper}.h"))
    hal = os.path.join(templates_dir(), "hal")
    for shared in ("nn_gemm.h", "nn_gemm_driver.h", "nn_gemv_driver.h",  # gemm's, gemv's, conv's
                   "nn_conv_driver.h", "nn_depthwise_driver.h",   # and depthwise's,
                   "nn_winograd_driver.h",                        # winograd's,
                   "nn_pool_driver.h",                            # pooling's,
                   "nn_x86_vec.h",                                # the x86 kernels' vectors,
                   "nn_conv_vclamp.h"):                           # the epilogue's clamps
        files[f"hal/{shared}"] = _read(os.path.join(hal, "common", shared))
    emitted = all_families() if fixed_files else families
    for family in emitted:                   # the target's own file, else its fallback's
        for ext in ("h", "c"):
            files[f"hal/{family}.{ext}"] = _read(targets.family_source(target, family, ext, hal))
    files[f"weights/{prefix}.bin"] = blob.getvalue()
    if embedded:
        files[f"weights/{prefix}_weights.S"] = render("weights.S.j2")
    files["nnbuild.json"] = (json.dumps({
        "nnbuild_version": __version__, "model": source_file, "model_sha256": model_hash,
        "name": prefix, "target": target.name, "options": json.loads(options.key()),
        "arena_bytes": plan.arena_bytes, "weights_bytes": ctx.weights.size,
        "weights_sha256": weights_sha256.hex(),
        "files": sorted(files) + ["nnbuild.json"],
    }, indent=2, sort_keys=True) + "\n").encode()
    return GeneratedProject(prefix, files, plan, ctx.weights.size, families)


def all_families() -> list:
    """Every HAL family, sorted: those of ``generic``, the reference that has them all."""
    folder = os.path.join(templates_dir(), "hal", "generic")
    return sorted(f[:-2] for f in os.listdir(folder) if f.endswith(".c"))


def all_helpers() -> list:
    """Every helper header (templates/project/nn_<name>.h), sorted."""
    folder = os.path.join(templates_dir(), "project")
    return sorted(f[3:-2] for f in os.listdir(folder) if f.startswith("nn_") and f.endswith(".h"))


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
