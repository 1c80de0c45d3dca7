"""The JSON form of the IR: the "intermediate file" (`nnbuild translate -o model.nnir.json`).

Same content as the text form, as plain JSON: constants carry base64 little-endian bytes, or
``{"splat": v}`` for one-value fills. Standard JSON has no NaN or infinities, so those floats
are spelled "nan", "inf", "-inf" (a float attribute as ``{"float": "nan"}``). ``generate`` and ``build`` accept this file in place of
an ONNX model.
"""
from __future__ import annotations

import base64
import json
import math

import numpy as np

from .. import dtypes
from ..errors import ModelError
from ..fileio import replacing
from .graph import Graph, Node, TensorType, is_splat, splat

FORMAT = "nnir"
VERSION = 1


def _type(t: TensorType) -> dict:
    return {"dtype": t.dtype.short, "shape": list(t.shape)}


def _untype(d: dict) -> TensorType:
    return TensorType(dtypes.from_short(d["dtype"]), tuple(d["shape"]))


def _float(value: float):
    """A float as JSON: a number, or the string "nan", "inf" or "-inf"."""
    value = float(value)
    return value if math.isfinite(value) else repr(value)


def _array(array: np.ndarray) -> dict:
    out = _type(TensorType.of(array))
    if is_splat(array):
        t = TensorType.of(array)
        out["splat"] = _float(array.flat[0]) if t.dtype.is_floating else array.flat[0].item()
    else:
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)
        out["data"] = base64.b64encode(data.tobytes()).decode()
    return out


def _unarray(d: dict) -> np.ndarray:
    t = _untype(d)
    if "splat" in d:
        value = float(d["splat"]) if isinstance(d["splat"], str) else d["splat"]
        return splat(value, t.dtype.numpy, t.shape)
    le = np.dtype(t.dtype.numpy).newbyteorder("<")
    return np.frombuffer(base64.b64decode(d["data"]), dtype=le).astype(t.dtype.numpy).reshape(t.shape)


def _attr(value):
    if isinstance(value, np.ndarray):
        return {"tensor": _array(value)}
    if isinstance(value, (list, tuple)):
        return [_attr(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": _float(value)}
    return value


def _unattr(value):
    if isinstance(value, dict) and "tensor" in value:
        return np.array(_unarray(value["tensor"]))
    if isinstance(value, dict) and "float" in value:
        return float(value["float"])
    if isinstance(value, list):
        return [_unattr(v) for v in value]
    return value


def graph_to_json(graph: Graph) -> dict:
    return {
        "format": FORMAT, "version": VERSION, "name": graph.name,
        "opsets": {d: v for d, v in sorted(graph.opsets.items())},
        "inputs": list(graph.inputs), "outputs": list(graph.outputs),
        "types": {n: _type(t) for n, t in sorted(graph.types.items())},
        "constants": {n: _array(a) for n, a in sorted(graph.constants.items())},
        "nodes": [{"op": n.op, "domain": n.domain, "inputs": list(n.inputs),
                   "outputs": list(n.outputs),
                   "attrs": {k: _attr(n.attrs[k]) for k in sorted(n.attrs)},
                   "sources": list(n.sources)} for n in graph.nodes],
    }


def graph_from_json(doc: dict) -> Graph:
    if doc.get("format") != FORMAT:
        raise ModelError("not an nnbuild intermediate file (missing \"format\": \"nnir\")")
    if doc.get("version") != VERSION:
        raise ModelError(f"intermediate file version {doc.get('version')} is not {VERSION}")
    return Graph(
        name=doc["name"], inputs=list(doc["inputs"]), outputs=list(doc["outputs"]),
        nodes=[Node(n["op"], tuple(n["inputs"]), tuple(n["outputs"]),
                    {k: _unattr(v) for k, v in n["attrs"].items()}, tuple(n["sources"]),
                    n.get("domain", "")) for n in doc["nodes"]],
        types={n: _untype(t) for n, t in doc["types"].items()},
        constants={n: _unarray(a) for n, a in doc["constants"].items()},
        opsets=dict(doc["opsets"]),
    )


def save_json(graph: Graph, path: str) -> None:
    """Write atomically: a temporary file beside the target, then rename."""
    with replacing(path) as f:
        json.dump(graph_to_json(graph), f, separators=(",", ":"), allow_nan=False)


def load_json(path: str) -> Graph:
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: cannot read intermediate file: {e}") from None
    try:
        return graph_from_json(doc)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"{path}: malformed intermediate file: {e}") from None
