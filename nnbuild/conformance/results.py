"""What a conformance case can end as: one category per case and a one-line reason.

Categories, in the order the pipeline reaches them:
- ``unsupported op``: an op (or op version) nnbuild has no implementation or kernel for;
- ``unsupported attribute/dtype``: the op is there, this attribute value or element type is not;
- ``data-dependent shape``: a shape depends on values only known at run time;
- ``compiler error``: translate/optimize/generate failed otherwise (an nnbuild bug, or a model
  nnbuild rejects for another reason);
- ``build error``: the generated C did not compile or link;
- ``runtime error``: the program crashed, timed out or returned an error;
- ``numeric mismatch``: it ran, an output differs beyond nnbuild.testing.OP_TOLERANCE (or has
  the wrong shape/dtype).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from ..errors import ModelError

PASSED = "passed"
UNSUPPORTED_OP = "unsupported op"
UNSUPPORTED_ATTR = "unsupported attribute/dtype"
DATA_DEPENDENT = "data-dependent shape"
COMPILER_ERROR = "compiler error"
BUILD_ERROR = "build error"
RUNTIME_ERROR = "runtime error"
MISMATCH = "numeric mismatch"
CATEGORIES = (PASSED, UNSUPPORTED_OP, UNSUPPORTED_ATTR, DATA_DEPENDENT, COMPILER_ERROR,
              BUILD_ERROR, RUNTIME_ERROR, MISMATCH)

# ModelError text -> category, first match wins.
_RULES = [
    (re.compile(r"unsupported ops:|is older than supported|newer than the installed onnx|"
                r"no op '[^']*' in the registry"), UNSUPPORTED_OP),
    (re.compile(r"must be known at compile time|data-dependent|symbolic shape|has no shape"),
     DATA_DEPENDENT),
    (re.compile(r"not supported|unsupported|no kernel for|is not a tensor"), UNSUPPORTED_ATTR),
]
_UNSUPPORTED_LIST = re.compile(r"unsupported ops: (.*)")
_OLD_OPSET = re.compile(r"is older than supported for (.*)")


@dataclass
class Result:
    id: str                          # <source>/<name>
    op: str                          # the op under test
    category: str
    reason: str = ""                 # one line; empty when passed
    missing_ops: list = field(default_factory=list)   # ops whose absence blocks the case
    max_abs: float | None = None     # numeric mismatch: worst errors over the outputs
    max_rel: float | None = None
    max_ulp: int | None = None       # ... in units in the last place of the expected type
    frozen: list = field(default_factory=list)        # inputs frozen to the test data
    frozen_result: str = ""          # data-dependent shape: the category with them frozen

    @property
    def source(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.id.split("/", 1)[1]

    @property
    def passed(self) -> bool:
        return self.category == PASSED

    def to_json(self) -> dict:
        d = asdict(self)
        return {k: v for k, v in d.items() if v not in (None, [], "") or k in ("id", "category")}

    @staticmethod
    def from_json(d: dict) -> "Result":
        return Result(**{k: d[k] for k in ("id", "op", "category")},
                      reason=d.get("reason", ""), missing_ops=d.get("missing_ops", []),
                      max_abs=d.get("max_abs"), max_rel=d.get("max_rel"),
                      max_ulp=d.get("max_ulp"), frozen=d.get("frozen", []), frozen_result=d.get("frozen_result", ""))


def one_line(text: str, limit: int = 300) -> str:
    """The first non-empty line of ``text``, without the '<ModelProto>: ' location prefix."""
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    line = line.replace("<ModelProto>: ", "")
    return line if len(line) <= limit else line[:limit - 3] + "..."


def classify_error(error: BaseException) -> tuple:
    """(category, reason, missing ops) of an exception raised by translate/optimize/generate."""
    reason = one_line(str(error) or type(error).__name__)
    if isinstance(error, NotImplementedError):       # a registered op without a kernel
        op = str(error).split(" ")[0] if str(error) else ""
        return UNSUPPORTED_OP, f"no kernel: {reason}", [op] if op else []
    if not isinstance(error, ModelError):
        return COMPILER_ERROR, f"internal error: {type(error).__name__}: {reason}", []
    category = next((c for rx, c in _RULES if rx.search(reason)), COMPILER_ERROR)
    if category != UNSUPPORTED_OP:
        return category, reason, []
    missing = missing_ops(reason)
    if missing and _UNSUPPORTED_LIST.search(reason):     # one name per op, not per node
        reason = "unsupported ops: " + ", ".join(missing)
    return category, reason, missing


def _top_level_parts(text: str) -> list:
    """``text`` split at ';' outside parentheses."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == ";" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return parts + [current]


_LEADING_OP = re.compile(r"\s*((?:[\w.]+::)?\w+)")


def missing_ops(reason: str) -> list:
    """The op names an 'unsupported ops: ...' or 'older than supported for ...' message lists,
    each once: every ';'-separated part (outside parentheses) starts with an op name."""
    m = _UNSUPPORTED_LIST.search(reason) or _OLD_OPSET.search(reason)
    if not m:
        return []
    suffix = "" if m.re is _UNSUPPORTED_LIST else " (old opset)"
    ops = [op.group(1) + suffix for op in map(_LEADING_OP.match, _top_level_parts(m.group(1)))
           if op]
    return list(dict.fromkeys(ops))
