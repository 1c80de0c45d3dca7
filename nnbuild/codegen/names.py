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


# A model's prefix also names its header (include/<p>.h), which sits on the include path of
# every file of the project, ahead of the system's: a prefix equal to a system header hides it
# (the project's own files include the model header by path and use guards no prefix can
# make, so nnbuild's header names are free). And the prefix names the CMake library target.
SYSTEM_HEADERS = frozenset("""assert complex ctype errno fenv float inttypes iso646 limits locale
math setjmp signal stdalign stdarg stdatomic stdbool stddef stdint stdio stdlib stdnoreturn string
tgmath threads time uchar wchar wctype alloca endian features malloc memory pthread sched strings
unistd direct windows arm_neon arm_fp16 arm_bf16 Python""".split())
CMAKE_RESERVED_TARGETS = frozenset("""all clean help install edit_cache rebuild_cache preinstall
ALL_BUILD ZERO_CHECK INSTALL""".split())


def prefix_clash(prefix: str) -> str | None:
    """Why ``prefix`` cannot name a model's project (None when it can)."""
    if prefix in SYSTEM_HEADERS or prefix.endswith("intrin"):
        return f"include/{prefix}.h would hide <{prefix}.h>"
    if prefix in CMAKE_RESERVED_TARGETS:
        return f"CMake reserves the target name {prefix!r}"
    return None


def model_prefix(path: str) -> str:
    """The prefix a model file gets by default: its base name as a C identifier, with
    "_model" appended when that name cannot name a project (see prefix_clash)."""
    base = os.path.basename(str(path))
    for ext in (".nnir.json", ".onnx", ".json"):
        if base.endswith(ext):
            base = base[: -len(ext)]
            break
    prefix = c_identifier(base)
    return prefix + "_model" if prefix_clash(prefix) else prefix


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
