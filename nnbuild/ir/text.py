"""The text form of the IR: what `nnbuild inspect` prints and `--dump-ir` writes; it parses back.

    graph tiny opsets(ai.onnx=13) {
      input %x: f32[1,4]
      const @w: f32[4,2] = b64"AACAPwAAAEA..."
      const @zeros: f32[2] = splat(0.0)
      %y: f32[1,2] = MatMul(%x, @w)                    # fc
      %z: f32[1,2] = Add(%y, @zeros)                   # bias
      output %z
    }

Values are ``%name``, constants ``@name``; names outside [A-Za-z0-9_./-] are JSON-quoted.
An omitted optional input or output is ``_``. The trailing comment lists the ONNX node names
the node stands for. Small constants print as lists, large ones as base64 of their
little-endian bytes, one-value fills as ``splat(v)``.
"""
from __future__ import annotations

import base64
import json
import re

import numpy as np

from .. import dtypes
from ..errors import ModelError
from .graph import Graph, Node, TensorType, is_splat, splat

SMALL_CONSTANT = 16
_BARE = re.compile(r"[A-Za-z0-9_./\-]+\Z")
_NUMBER = re.compile(r"[-+]?(?:[0-9]|inf\Z|nan\Z)")     # symbolic dims spelled so are quoted


# --- printing ---------------------------------------------------------------------------------
def _name(name: str) -> str:
    return name if _BARE.match(name) else json.dumps(name)


def _ref(graph: Graph, name: str) -> str:
    if not name:
        return "_"
    return ("@" if graph.is_constant(name) else "%") + _name(name)


def _scalar(value, dtype) -> str:
    if dtype.short in ("f32", "f16"):
        return str(dtype.numpy(value))        # the shortest text that reads back exactly
    if dtype.is_floating:
        return repr(float(value))
    if dtype.short == "bool":
        return "true" if value else "false"
    return str(int(value))


def _type(ttype: TensorType) -> str:
    """``f32[1,N,4]``; a symbolic dim that is not a bare word is JSON-quoted."""
    dims = ",".join(str(d) if isinstance(d, int) else
                    json.dumps(d) if _NUMBER.match(d) else _name(d) for d in ttype.shape)
    return f"{ttype.dtype.short}[{dims}]"


def format_array(array: np.ndarray, elide: bool = False) -> str:
    dtype = dtypes.from_numpy(array.dtype)
    if is_splat(array):
        return f"splat({_scalar(array.flat[0], dtype)})"
    if array.size <= SMALL_CONSTANT:
        return "[" + ", ".join(_scalar(v, dtype) for v in array.reshape(-1)) + "]"
    if elide:
        return f"<{array.nbytes} bytes>"
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)
    return 'b64"' + base64.b64encode(data.tobytes()).decode() + '"'


def _attr(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, np.ndarray):
        return f"tensor<{_type(TensorType.of(value))}>({format_array(value)})"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_attr(v) for v in value) + "]"
    raise TypeError(f"cannot print attribute value {value!r}")


def format_node(graph: Graph, node: Node) -> str:
    outs = ", ".join(f"%{_name(o)}: {_type(graph.types[o])}" if o else "_" for o in node.outputs)
    op = f"{node.domain}::{node.op}" if node.domain else node.op
    args = ", ".join(_ref(graph, i) for i in node.inputs)
    line = f"{outs} = {op}({args})"
    if node.attrs:
        line += " {" + ", ".join(f"{k}={_attr(node.attrs[k])}" for k in sorted(node.attrs)) + "}"
    if node.sources:
        line += "  # " + ", ".join(_name(s) for s in node.sources)
    return line


def format_graph(graph: Graph, elide_weights: bool = False) -> str:
    opsets = ", ".join(f"{d or 'ai.onnx'}={v}" for d, v in sorted(graph.opsets.items()))
    lines = [f"graph {_name(graph.name)} opsets({opsets}) {{"]
    lines += [f"  input %{_name(i)}: {_type(graph.types[i])}" for i in graph.inputs]
    for name in sorted(graph.constants):
        array = graph.constants[name]
        lines.append(f"  const @{_name(name)}: {_type(graph.types[name])} = "
                     f"{format_array(array, elide_weights)}")
    lines += ["  " + format_node(graph, n) for n in graph.nodes]
    lines += [f"  output {_ref(graph, o)}" for o in graph.outputs]
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- parsing ----------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*(?=\n|$)) |
    (?P<b64>b64"[A-Za-z0-9+/=]*") |
    (?P<str>"(?:[^"\\]|\\.)*") |
    (?P<num>[-+]?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d+|inf|nan)(?![A-Za-z0-9_./\-])) |
    (?P<word>[A-Za-z0-9_./\-]+) |
    (?P<punct>::|[%@(){}\[\],=:<>_])
""", re.VERBOSE)


class _Parser:
    def __init__(self, text: str):
        self.tokens = []
        self.comments = {}     # token index -> comment text following a node line
        self.lines = []        # token index -> line number
        pos, line = 0, 1
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                raise ModelError(f"IR text: line {line}: cannot parse at {text[pos:pos + 30]!r}")
            kind = m.lastgroup
            if kind == "ws":
                if m.group().startswith("#"):
                    self.comments[len(self.tokens)] = m.group()[1:].strip()
            else:
                self.tokens.append((kind, m.group()))
                self.lines.append(line)
            line += m.group().count("\n")
            pos = m.end()
        self.i = 0

    def line(self) -> int:
        """The line of the token being read (1-based), for messages."""
        return self.lines[min(self.i, len(self.lines) - 1)] if self.lines else 1

    def peek(self, k: int = 0):
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else ("eof", "")

    def take(self, expect: str | None = None) -> str:
        kind, text = self.peek()
        if expect is not None and text != expect:
            raise ModelError(f"IR text: expected {expect!r}, found {text!r}")
        self.i += 1
        return text

    def name(self) -> str:
        kind, text = self.peek()
        self.i += 1
        if kind == "str":
            return json.loads(text)
        if kind in ("word", "num"):
            return text
        raise ModelError(f"IR text: expected a name, found {text!r}")

    def ref(self) -> str:
        if self.peek()[1] == "_":
            self.take()
            return ""
        if self.peek()[1] not in ("%", "@"):
            raise ModelError(f"IR text: expected %value or @constant, found {self.peek()[1]!r}")
        self.take()
        return self.name()

    def tensor_type(self) -> TensorType:
        short = self.take()
        if short not in dtypes.BY_SHORT:
            raise ModelError(f"IR text: unknown element type {short!r} "
                             f"(types: {', '.join(dtypes.BY_SHORT)})")
        dtype = dtypes.from_short(short)
        self.take("[")
        shape = []
        while self.peek()[1] != "]":
            kind = self.peek()[0]
            d = self.name()
            shape.append(int(d) if kind == "num" else d)
            if self.peek()[1] == ",":
                self.take()
        self.take("]")
        return TensorType(dtype, tuple(shape))

    def scalar(self, dtype):
        text = self.take()
        if text in ("true", "false"):
            return text == "true"
        return float(text) if dtype.is_floating else int(text)

    def array(self, ttype: TensorType) -> np.ndarray:
        np_dtype = ttype.dtype.numpy
        kind, text = self.peek()
        if text == "splat":
            self.take()
            self.take("(")
            value = self.scalar(ttype.dtype)
            self.take(")")
            return splat(value, np_dtype, ttype.shape)
        if kind == "b64":
            self.take()
            raw = base64.b64decode(text[4:-1])
            le = np.dtype(np_dtype).newbyteorder("<")
            return np.frombuffer(raw, dtype=le).astype(np_dtype).reshape(ttype.shape)
        if text == "<":
            raise ModelError("IR text: constant data was elided (<N bytes>); print with weights")
        self.take("[")
        values = []
        while self.peek()[1] != "]":
            values.append(self.scalar(ttype.dtype))
            if self.peek()[1] == ",":
                self.take()
        self.take("]")
        return np.array(values, dtype=np_dtype).reshape(ttype.shape)

    def attr_value(self):
        kind, text = self.peek()
        if text == "[":
            self.take()
            items = []
            while self.peek()[1] != "]":
                items.append(self.attr_value())
                if self.peek()[1] == ",":
                    self.take()
            self.take("]")
            return items
        if text == "tensor":
            self.take()
            self.take("<")
            ttype = self.tensor_type()
            self.take(">")
            self.take("(")
            value = self.array(ttype)
            self.take(")")
            return np.array(value)
        self.take()
        if kind == "str":
            return json.loads(text)
        if text in ("true", "false"):
            return text == "true"
        if kind == "num":
            return float(text) if any(c in text for c in ".eEn") else int(text)
        raise ModelError(f"IR text: bad attribute value {text!r}")

    def node(self, graph: Graph) -> Node:
        outputs = []
        while True:
            if self.peek()[1] == "_":
                self.take()
                outputs.append("")
            else:
                self.take("%")
                out = self.name()
                self.take(":")
                graph.types[out] = self.tensor_type()
                outputs.append(out)
            if self.peek()[1] != ",":
                break
            self.take()
        self.take("=")
        op, domain = self.name(), ""
        if self.peek()[1] == "::":
            self.take()
            domain, op = op, self.name()
        self.take("(")
        inputs = []
        while self.peek()[1] != ")":
            inputs.append(self.ref())
            if self.peek()[1] == ",":
                self.take()
        self.take(")")
        attrs = {}
        if self.peek()[1] == "{":
            self.take()
            while self.peek()[1] != "}":
                key = self.name()
                self.take("=")
                attrs[key] = self.attr_value()
                if self.peek()[1] == ",":
                    self.take()
            self.take("}")
        sources = ()
        if self.i in self.comments:
            sources = tuple(_parse_names(self.comments[self.i]))
        return Node(op, tuple(inputs), tuple(outputs), attrs, sources, domain)

    def graph(self) -> Graph:
        self.take("graph")
        graph = Graph(name=self.name())
        self.take("opsets")
        self.take("(")
        while self.peek()[1] != ")":
            domain = self.name()
            self.take("=")
            graph.opsets["" if domain == "ai.onnx" else domain] = int(self.take())
            if self.peek()[1] == ",":
                self.take()
        self.take(")")
        self.take("{")
        while self.peek()[1] != "}":
            word = self.peek()[1]
            if word == "input":
                self.take()
                self.take("%")
                name = self.name()
                self.take(":")
                graph.types[name] = self.tensor_type()
                graph.inputs.append(name)
            elif word == "const":
                self.take()
                self.take("@")
                name = self.name()
                self.take(":")
                ttype = self.tensor_type()
                self.take("=")
                graph.constants[name] = self.array(ttype)
                graph.types[name] = ttype
            elif word == "output":
                self.take()
                graph.outputs.append(self.ref())
            else:
                graph.nodes.append(self.node(graph))
        self.take("}")
        return graph


def _parse_names(comment: str) -> list:
    names, rest = [], comment
    while rest:
        rest = rest.lstrip(", ")
        if not rest:
            break
        if rest.startswith('"'):
            decoder = json.JSONDecoder()
            value, end = decoder.raw_decode(rest)
            names.append(value)
            rest = rest[end:]
        else:
            part, _, rest = rest.partition(",")
            names.append(part.strip())
    return names


def parse_graph(text: str) -> Graph:
    """Parse the text form back into a Graph (the inverse of ``format_graph``); any problem
    is one ModelError naming the line."""
    parser = _Parser(text)
    try:
        return parser.graph()
    except ModelError as e:
        raise ModelError(f"{e} (line {parser.line()})") from None
    except (ValueError, TypeError, OverflowError, IndexError, KeyError) as e:
        # bad numbers or base64, data that does not fit the declared shape, bad escapes...
        raise ModelError(f"IR text: line {parser.line()}: {type(e).__name__}: {e}") from None
