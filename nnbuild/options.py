"""The one options object that flows through the pipeline (CLI, Python API and build rules)."""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field

from . import bindings, targets
from .codegen.names import prefix_clash
from .errors import UsageError

TARGETS = ("host",) + tuple(targets.TARGETS)
WEIGHT_MODES = ("embed", "file")


@dataclass(frozen=True)
class Options:
    name: str | None = None          # C prefix; default: from the model file name
    target: str = "host"             # a name in targets.TARGETS, or host (best for this machine)
    opt_level: int = 2
    shapes: tuple = ()               # (("input", (1, 3, 224, 224)), ...)
    weights: str = "embed"           # embed into the library, or load from a file at run time
    dump_ir: str | None = field(default=None, compare=False)   # debugging aid, not a build input

    def __post_init__(self):
        if self.target not in TARGETS:
            raise UsageError(f"--target {self.target}: unknown target "
                             f"(targets: {', '.join(TARGETS)})")
        if self.weights not in WEIGHT_MODES:
            raise UsageError(f"--weights {self.weights}: must be one of {', '.join(WEIGHT_MODES)}")
        if self.opt_level not in (0, 1, 2):
            raise UsageError(f"-O{self.opt_level}: optimization level must be 0, 1 or 2")
        if self.name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise UsageError(f"--name {self.name!r}: must be a C identifier")
        clash = self.name is not None and prefix_clash(self.name)
        if clash:
            raise UsageError(f"--name {self.name}: {clash}; choose another name")

    @staticmethod
    def make(shapes=None, **kwargs) -> "Options":
        """Build from friendly values: shapes as {"x": "1x3x224x224"} or {"x": (1, 3, 224, 224)}
        (sequences and optionals: see nnbuild.bindings)."""
        items = []
        for name, value in sorted((shapes or {}).items()):
            try:                     # dims, a sequence or an absent optional: nnbuild.bindings
                items.append((name, bindings.parse(name, value)))
            except bindings.BindingError as e:
                raise UsageError(str(e)) from None
        return Options(shapes=tuple(items), **kwargs)

    @property
    def shape_map(self) -> dict:
        return dict(self.shapes)

    @property
    def resolved_target(self) -> str:
        """The target name, ``host`` replaced by the best one for this machine."""
        return targets.resolve(self.target).name

    def key(self) -> str:
        """What the generated project depends on, as canonical JSON (cache keys, nnbuild.json)."""
        d = dataclasses.asdict(self)
        d.pop("dump_ir")
        d["shapes"] = {n: list(s) for n, s in self.shapes}
        return json.dumps(d, sort_keys=True)
