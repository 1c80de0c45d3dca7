"""Publishing a generated project into the user's folder without clobbering anything.

Files are written to a temporary folder beside the target, then renamed into place. The
target must be new, empty, or a project nnbuild made before (it holds nnbuild.json); then it is
updated in place, never moved (a shell or an IDE may be inside it): changed files are renamed
over the old ones, files the old project listed in nnbuild.json and the new one lacks are
removed, the build/ folder and files nnbuild did not write are kept, and files whose content
did not change keep their timestamps, so the next build is incremental. nnbuild.json is
written last.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile

from ..errors import UsageError

MARKER = "nnbuild.json"
BUILD_DIR = "build"


def check_output_folder(folder: str) -> None:
    """UsageError unless ``folder`` is absent, empty, or an nnbuild project."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"-o {folder}: exists and is not a folder")
    if os.path.isdir(folder) and _holds_files(folder) and \
            not os.path.isfile(os.path.join(folder, MARKER)):
        raise UsageError(f"-o {folder}: folder holds files that nnbuild did not write; "
                         f"choose a new or empty folder")


def _holds_files(folder: str) -> bool:
    """Anything but (nested) empty folders: Bazel creates the folders of an action's declared
    outputs before the generator runs."""
    for _, _, files in os.walk(folder):
        if files:
            return True
    return False


def publish(project, folder: str) -> None:
    """Write ``project`` (a GeneratedProject) into ``folder``."""
    folder = os.path.abspath(folder)
    check_output_folder(folder)
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.tmp-", dir=parent)
    try:
        project.write_into(staging)
        if os.path.isdir(folder):
            _update_in_place(staging, folder, project.files)
        else:
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _update_in_place(staging: str, folder: str, files: dict) -> None:
    """Make ``folder`` hold ``files``; files of the previous project that the new one lacks
    are removed, anything else in the folder (build/, the user's own files) is left alone."""
    previous = _previous_files(folder)
    for rel in sorted(files, key=lambda r: r == MARKER):           # nnbuild.json last
        old = os.path.join(folder, *rel.split("/"))
        if _holds(old, files[rel]):
            continue                                                 # keep its timestamp
        os.makedirs(os.path.dirname(old), exist_ok=True)
        if os.path.isdir(old) and not os.path.islink(old):
            shutil.rmtree(old)
        os.replace(os.path.join(staging, *rel.split("/")), old)
    for rel in sorted(set(previous) - set(files)):       # only what nnbuild wrote before
        path = os.path.join(folder, *rel.split("/"))
        if os.path.isfile(path) or os.path.islink(path):
            os.unlink(path)
        parent = os.path.dirname(path)
        while parent != folder and os.path.isdir(parent) and not os.listdir(parent):
            os.rmdir(parent)
            parent = os.path.dirname(parent)


def _previous_files(folder: str) -> list:
    """The files the project in ``folder`` was generated with (its nnbuild.json lists them)."""
    try:
        with open(os.path.join(folder, MARKER)) as f:
            listed = json.load(f).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [rel for rel in listed if isinstance(rel, str) and ".." not in rel.split("/")
            and not os.path.isabs(rel) and rel.split("/")[0] != BUILD_DIR]


def _holds(path: str, content: bytes) -> bool:
    try:
        if os.path.isfile(path) and os.path.getsize(path) == len(content):
            with open(path, "rb") as f:
                return f.read() == content
    except OSError:
        pass
    return False
