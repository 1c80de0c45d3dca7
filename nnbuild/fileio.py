"""Writing a user's file all at once: a report, an intermediate file, the machine description.

``replacing(path)`` hands out a file object for a temporary file beside ``path`` and renames it
over ``path`` when the block completes (``os.replace``: atomic on one file system). A crash, an
exception or Ctrl-C in between leaves ``path`` as it was and removes the temporary file, so a
reader never sees a half-written report and a failed run never destroys the previous one.
"""
from __future__ import annotations

import contextlib
import os
import tempfile


TEMPORARY_INFIX = ".tmp-"     # <name>.tmp-<random>: what a killed writer can leave behind


@contextlib.contextmanager
def replacing(path: str, mode: str = "w", durable: bool = False):
    """``with replacing(path) as f: f.write(...)``: ``path`` holds exactly what the block wrote,
    or is untouched if the block raised. ``mode`` is "w" (text) or "wb"; ``durable`` also syncs
    the data to disk before the rename (a journal that must survive a power cut)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"replacing: mode {mode!r} (expected 'w' or 'wb')")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f"{os.path.basename(path)}{TEMPORARY_INFIX}", dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _default_mode() -> int:
    """What ``open(path, "w")`` would have given a new file (0o666 less the umask); mkstemp
    creates 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
