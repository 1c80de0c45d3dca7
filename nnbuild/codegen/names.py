"""Names and text that end up in C: identifiers from model names, safe comments."""
from __future__ import annotations

import os
import re

C_KEYWORDS = set("""auto break case char const continue default do double else enum extern float
for goto if inline int long register restrict return short signed sizeof static struct switch
typedef union unsigned void volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic
_Imaginary _Noreturn _Static_assert _Thread_local bool true false main""".split())


def c_identifier(text: str) -> str:
    """A C identifier made from arbitrary text: other characters become '_'."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", text) or "model"
    if ident[0].isdigit():
        ident = "m_" + ident
    if ident in C_KEYWORDS:
        ident += "_"
    return ident


def model_prefix(path: str) -> str:
    base = os.path.basename(str(path))
    for ext in (".nnir.json", ".onnx", ".json"):
        if base.endswith(ext):
            base = base[: -len(ext)]
            break
    return c_identifier(base)


def c_comment(text: str) -> str:
    """Text safe inside /* */: no comment terminators, no control characters, bounded."""
    text = "".join(c if c.isprintable() and ord(c) < 128 else "?" for c in text)
    text = text.replace("*/", "* /").replace("/*", "/ *")
    return text if len(text) <= 200 else text[:197] + "..."


def c_string(text: str) -> str:
    """A C string literal holding ``text`` (escaped byte by byte)."""
    out = []
    for b in text.encode("utf-8"):
        c = chr(b)
        if c in "\"\\":
            out.append("\\" + c)
        elif 32 <= b < 127 and c != "?":
            out.append(c)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


FILE_STEM = 200


def app_output_files(names: list) -> list:
    """The .npy file name the generated app writes for each output (rule of app/main.c):
    UTF-8 bytes outside [A-Za-z0-9._-] and a leading '.' become '_', at most 200 bytes; a name
    that gives the same file as an earlier output gets "_<index>" appended."""
    stems = []
    for name in names:
        raw = name.encode("utf-8")[:FILE_STEM]
        stem = "".join(chr(b) if (chr(b).isascii() and (chr(b).isalnum() or chr(b) in "._-"))
                       and not (i == 0 and b == ord(".")) else "_" for i, b in enumerate(raw))
        stems.append(stem)
    return [f"{stem}_{k}.npy" if stem in stems[:k] else f"{stem}.npy"
            for k, stem in enumerate(stems)]
