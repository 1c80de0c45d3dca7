"""Loading a built model library in process (ctypes) and running it on numpy arrays."""
from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

from . import bindings, dtypes
from .errors import BuildError, UsageError


class _TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("rank", ctypes.c_int),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("bytes", ctypes.c_size_t)]


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: np.dtype
    shape: tuple


class CompiledModel:
    """A built model loaded in this process: ``run({name: array}) -> {name: array}``."""

    def __init__(self, library: str, prefix: str, project_dir: str | None = None,
                 boundary: dict | None = None):
        """``boundary``: the model's declared inputs and outputs with their kinds
        (``nnbuild.bindings.declared_kinds``); with it ``run`` takes and returns lists for
        sequences and None for absent optionals, else every name is a C API tensor."""
        self.library_path, self.prefix, self.project_dir = library, prefix, project_dir
        self.boundary = boundary
        try:
            self._lib = ctypes.CDLL(library)
        except OSError as e:
            raise BuildError(f"cannot load {library}: {e}") from None
        self._fn = lambda name: getattr(self._lib, f"{prefix}_{name}")
        for kind in ("input", "output"):
            self._fn(f"{kind}_info").restype = ctypes.POINTER(_TensorInfo)
            self._fn(f"{kind}_info").argtypes = [ctypes.c_int]
        self._fn("workspace_size").restype = ctypes.c_size_t
        self._fn("strerror").restype = ctypes.c_char_p
        self._fn("strerror").argtypes = [ctypes.c_int]
        self._fn("run_ws").argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self.inputs = self._specs("input")
        self.outputs = self._specs("output")
        self._workspace = np.zeros(self._fn("workspace_size")(), np.uint8)
        self._lock = threading.Lock()

    def _specs(self, kind: str) -> list:
        specs = []
        for i in range(self._fn(f"num_{kind}s")()):
            info = self._fn(f"{kind}_info")(i).contents
            specs.append(TensorSpec(info.name.decode("utf-8", "replace"),
                                    np.dtype(dtypes.from_code(info.dtype).numpy),
                                    tuple(info.shape[d] for d in range(info.rank))))
        return specs

    def set_num_threads(self, n: int) -> None:
        self._check(self._fn("set_num_threads")(int(n)))

    def _check(self, rc: int) -> None:
        if rc != 0:
            raise UsageError(f"{self.prefix}: {self._fn('strerror')(rc).decode()}")

    def run(self, feeds: dict) -> dict:
        """{name: array} -> {name: array}; a sequence is a list of arrays, an absent optional
        None (when loaded with its ``boundary``, as ``nnbuild.compile`` does)."""
        if self.boundary is None:
            return self._run_flat(feeds)
        return self._regroup(self._run_flat(self._flatten(feeds)))

    def _elements(self, specs: list, name: str) -> list:
        """The C API names ``name[0]``, ``name[1]``, ... present in ``specs``, in order."""
        have = {s.name for s in specs}
        names = []
        while bindings.element_name(name, len(names)) in have:
            names.append(bindings.element_name(name, len(names)))
        return names

    def _flatten(self, feeds: dict) -> dict:
        declared = dict(self.boundary["inputs"])
        unknown = sorted(set(feeds) - set(declared))
        missing = [n for n, k in declared.items() if n not in feeds and k != "optional"]
        if missing or unknown:
            raise UsageError(f"{self.prefix}.run: missing inputs {missing}, unknown {unknown} "
                             f"(inputs: {list(declared)})")
        flat, names = {}, {s.name for s in self.inputs}
        for name, kind in declared.items():
            value = feeds.get(name)
            elements = self._elements(self.inputs, name)
            if kind == "tensor" or (kind == "optional" and name in names):
                if value is None:
                    raise UsageError(f"{self.prefix}.run: input {name!r} was compiled present; "
                                     f"None is not a tensor")
                flat[name] = value
            elif kind == "optional" and not elements:     # absent (or an empty sequence)
                if value is not None and not (isinstance(value, (list, tuple)) and not value):
                    raise UsageError(f"{self.prefix}.run: input {name!r} was compiled absent "
                                     f"(--shape {name}=none); pass None")
            elif kind in ("sequence", "optional"):
                if not isinstance(value, (list, tuple)) or len(value) != len(elements):
                    got = (f"a list of {len(value)}" if isinstance(value, (list, tuple))
                           else "None" if value is None else type(value).__name__)
                    raise UsageError(f"{self.prefix}.run: input {name!r} was compiled as a "
                                     f"sequence of {len(elements)} tensors, got {got}")
                flat.update(zip(elements, value))
        return flat

    def _regroup(self, flat: dict) -> dict:
        out = {}
        for name, kind in self.boundary["outputs"]:
            elements = self._elements(self.outputs, name)
            if name in flat:
                out[name] = flat[name]
            elif kind == "sequence" or (kind == "optional" and elements):
                out[name] = [flat[e] for e in elements]
            else:                                # an absent optional
                out[name] = None
        return out

    def _run_flat(self, feeds: dict) -> dict:
        missing = [s.name for s in self.inputs if s.name not in feeds]
        extra = sorted(set(feeds) - {s.name for s in self.inputs})
        if missing or extra:
            raise UsageError(f"{self.prefix}.run: missing inputs {missing}, unknown {extra} "
                             f"(inputs: {[s.name for s in self.inputs]})")
        arrays = []
        for spec in self.inputs:
            a = np.asarray(feeds[spec.name])
            if a.dtype != spec.dtype:
                narrow = dtypes.from_numpy(spec.dtype).is_narrow   # no silent float8/int4 casts
                if narrow or not np.can_cast(a.dtype, spec.dtype, "same_kind"):
                    raise UsageError(f"{self.prefix}.run: input {spec.name!r} has dtype "
                                     f"{a.dtype}, the model takes {spec.dtype}")
                a = a.astype(spec.dtype)
            if tuple(a.shape) != spec.shape:
                raise UsageError(f"{self.prefix}.run: input {spec.name!r} has shape "
                                 f"{tuple(a.shape)}, the model takes {spec.shape}")
            arrays.append(np.ascontiguousarray(a))
        outs = [np.empty(s.shape, s.dtype) for s in self.outputs]
        in_ptrs = (ctypes.c_void_p * max(len(arrays), 1))(*[a.ctypes.data for a in arrays])
        out_ptrs = (ctypes.c_void_p * max(len(outs), 1))(*[o.ctypes.data for o in outs])
        with self._lock:
            self._check(self._fn("run_ws")(self._workspace.ctypes.data, in_ptrs, out_ptrs))
        return {s.name: o for s, o in zip(self.outputs, outs)}

    def __repr__(self) -> str:
        fmt = lambda specs: ", ".join(f"{s.name}: {s.dtype}{list(s.shape)}" for s in specs)
        return f"<CompiledModel {self.prefix} ({fmt(self.inputs)}) -> ({fmt(self.outputs)})>"
