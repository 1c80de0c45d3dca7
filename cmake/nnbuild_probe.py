"""Run by nnbuildConfig.cmake with the candidate Python: prints CMake set() commands that
describe the nnbuild this Python imports (version, folders, targets and their C flags)."""
import os

import nnbuild
from nnbuild import options, resources


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "/").replace('"', '\\"').replace("$", "\\$") + '"'


known = [t for t in options.TARGETS if t != "host"]
flags, host = {}, "host"               # "host": let the generator pick
try:                                   # targets with their own instruction sets
    from nnbuild import targets
    flags = {name: list(t.c_flags) for name, t in targets.TARGETS.items() if name in known}
    if targets.resolve("host").name in known:
        host = targets.resolve("host").name
except ImportError:
    pass
values = {
    "nnbuild_VERSION": nnbuild.__version__,
    "NNBUILD_TEMPLATES_DIR": resources.templates_dir(),
    "NNBUILD_PACKAGE_DIR": os.path.dirname(os.path.abspath(nnbuild.__file__)),
    "NNBUILD_TARGETS": ";".join(known),
    "NNBUILD_HOST_TARGET": host,
}
values.update({f"NNBUILD_C_FLAGS_{name}": ";".join(f) for name, f in sorted(flags.items())})
for key, value in values.items():
    print(f"set({key} {quoted(value)} PARENT_SCOPE)")
