"""Input bindings: what ``--shape NAME=...`` (CLI, ``shapes=`` in the API, SHAPES in CMake,
``shapes`` in Bazel) says about a graph input that the model leaves open.

Text forms (one syntax everywhere):

    1x3x224x224          a tensor's dims (``scalar`` for rank 0)
    [2x4,2x4,3x4]        a sequence input: its length and each element's dims;
    [3*2x4]              ``N*DIMS`` repeats one element shape N times; ``[]`` is empty
    none                 an optional input that is absent (a present one is bound by the
                         dims or sequence of the value it holds)

Canonical values (hashable, what ``Options.shapes`` holds): a tuple of ints for a tensor,
``("sequence", (dims, dims, ...))`` for a sequence, ``("none",)`` for an absent optional.
The Python API also accepts a list of element dims for a sequence and ``None`` for absent.
"""
from __future__ import annotations

SEQUENCE, NONE = "sequence", "none"
SYNTAX = "dims like 1x3x224x224, a sequence like [2x4,3*2x4] (or []), or none"


class BindingError(ValueError):
    """A binding that does not parse; the message names it."""


def _dims(name: str, text: str, whole: str) -> tuple:
    text = text.strip().lower()
    if text == "scalar":
        return ()
    try:
        dims = tuple(int(d) for d in text.split("x"))
    except ValueError:
        raise BindingError(f"--shape {name}={whole}: expected {SYNTAX}") from None
    if any(d < 0 for d in dims):
        raise BindingError(f"--shape {name}={whole}: negative dimension")
    return dims


def _elements(name: str, text: str) -> tuple:
    body = text.strip()[1:-1].strip()
    if not body:
        return ()
    out = []
    for item in body.split(","):
        count, star, dims = item.partition("*")
        if star:
            try:
                n = int(count)
            except ValueError:
                raise BindingError(f"--shape {name}={text}: expected N*DIMS, got {item!r}") \
                    from None
            if n < 0:
                raise BindingError(f"--shape {name}={text}: negative count in {item!r}")
            out += [_dims(name, dims, text)] * n
        else:
            out.append(_dims(name, item, text))
    return tuple(out)


def parse(name: str, value):
    """A binding in any accepted form -> its canonical value (BindingError if malformed)."""
    if value is None:
        return (NONE,)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == NONE:
            return (NONE,)
        if text.startswith("[") and text.endswith("]"):
            return (SEQUENCE, _elements(name, text))
        return _dims(name, text, value)
    items = tuple(value)
    if items and items[0] == NONE and len(items) == 1:
        return (NONE,)
    if items and items[0] == SEQUENCE and len(items) == 2:
        return (SEQUENCE, tuple(_dims(name, e, e) if isinstance(e, str) else
                                tuple(int(d) for d in e) for e in items[1]))
    if items and all(isinstance(e, str) or not hasattr(e, "__int__") for e in items):
        try:                    # a list of element dims: a sequence
            return (SEQUENCE, tuple(_dims(name, e, e) if isinstance(e, str) else
                                    tuple(int(d) for d in e) for e in items))
        except (TypeError, ValueError):
            raise BindingError(f"--shape {name}={value!r}: expected {SYNTAX}") from None
    try:
        return tuple(int(d) for d in items)
    except (TypeError, ValueError):
        raise BindingError(f"--shape {name}={value!r}: expected {SYNTAX}") from None


def kind(binding) -> str:
    """"tensor", "sequence" or "none"."""
    if binding and isinstance(binding[0], str):
        return binding[0]
    return "tensor"


def format_dims(dims: tuple) -> str:
    return "x".join(str(d) for d in dims) if dims else "scalar"


def to_text(binding) -> str:
    """The text form of a canonical binding (what ``--shape NAME=`` takes back)."""
    k = kind(binding)
    if k == NONE:
        return NONE
    if k == SEQUENCE:
        return "[" + ",".join(format_dims(d) for d in binding[1]) + "]"
    return format_dims(binding)


def element_name(name: str, index: int) -> str:
    """The C API name of element ``index`` of sequence ``name``."""
    return f"{name}[{index}]"


def declared_kinds(model_graph) -> dict:
    """{"inputs": [(name, kind)], "outputs": [(name, kind)]} of an ONNX GraphProto's boundary,
    kind "tensor", "sequence" or "optional" (initializers are not inputs)."""
    def kind_of(vi):
        k = vi.type.WhichOneof("value")
        return {"sequence_type": SEQUENCE, "optional_type": "optional"}.get(k, "tensor")
    inits = {t.name for t in model_graph.initializer}
    return {"inputs": [(vi.name, kind_of(vi)) for vi in model_graph.input
                       if vi.name not in inits],
            "outputs": [(vi.name, kind_of(vi)) for vi in model_graph.output]}
