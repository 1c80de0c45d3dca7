"""The build cache behind ``nnbuild.compile`` and ``nnbuild run``: one built project per
(model content, options, nnbuild version), reused across calls and processes."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import tempfile

from .. import __version__

try:
    import fcntl
except ImportError:                         # Windows
    fcntl = None


def default_cache_dir() -> str:
    base = os.environ.get("NNBUILD_CACHE_DIR")
    if base:
        return base
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "nnbuild")


@functools.lru_cache(maxsize=1)
def tool_fingerprint() -> str:
    """sha256 over nnbuild's own Python sources and templates: a changed kernel or generator
    (even at the same version number) never reuses an old build."""
    from ..resources import templates_dir
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    h = hashlib.sha256()
    for root in (package, templates_dir()):
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = os.path.join(folder, name)
                h.update(os.path.relpath(path, root).encode() + b"\0")
                with open(path, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def cache_key(model_hash: str, options_key: str) -> str:
    h = hashlib.sha256()
    for part in (model_hash, options_key, __version__, tool_fingerprint()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


@contextlib.contextmanager
def _locked(path: str):
    """An exclusive advisory lock on ``path`` (fcntl.flock; released when the process dies,
    so a killed build never blocks the next). Without fcntl (Windows) no lock is taken: the
    staging-and-rename below still keeps entries whole."""
    if fcntl is None:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def cached_build(cache_dir: str, key: str, make) -> str:
    """The folder for ``key``; when absent, ``make(folder)`` fills a private staging folder
    that is then renamed into place. Makers of one key take turns under a file lock
    (processes and threads alike): the first builds, the others find the entry complete."""
    entry = os.path.join(cache_dir, key)
    if os.path.isfile(os.path.join(entry, "complete")):
        return entry
    os.makedirs(cache_dir, exist_ok=True)
    with _locked(os.path.join(cache_dir, f".{key}.lock")):
        if os.path.isfile(os.path.join(entry, "complete")):
            return entry                    # built while we waited
        return _make_entry(cache_dir, key, entry, make)


def _make_entry(cache_dir: str, key: str, entry: str, make) -> str:
    for name in os.listdir(cache_dir):      # under the lock: leftovers of killed makers
        if name.startswith(f".{key}.tmp-"):
            shutil.rmtree(os.path.join(cache_dir, name), ignore_errors=True)
    staging = tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=cache_dir)
    try:
        project = os.path.join(staging, "project")
        make(project)
        open(os.path.join(staging, "complete"), "w").close()
        if os.path.isdir(entry):            # an earlier, interrupted attempt
            shutil.rmtree(entry, ignore_errors=True)
        try:
            os.replace(staging, entry)
        except OSError:                     # someone else finished first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return entry
