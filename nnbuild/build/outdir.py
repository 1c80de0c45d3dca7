"""Publishing a generated project into the user's folder without clobbering anything.

Files are written to a temporary folder beside the target, then renamed into place. The
target must be new, empty, or a project nnbuild made before (it holds nnbuild.json); then its
build/ folder is kept, and files whose content did not change keep their timestamps, so the
next build is incremental.
"""
from __future__ import annotations

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
    if os.path.isdir(folder) and os.listdir(folder) and \
            not os.path.isfile(os.path.join(folder, MARKER)):
        raise UsageError(f"-o {folder}: folder holds files that nnbuild did not write; "
                         f"choose a new or empty folder")


def publish(project, folder: str) -> None:
    """Write ``project`` (a GeneratedProject) into ``folder`` atomically."""
    folder = os.path.abspath(folder)
    check_output_folder(folder)
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.tmp-", dir=parent)
    try:
        project.write_into(staging)
        if os.path.isdir(folder):
            _carry_over(folder, staging, project.files)
            retired = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.old-", dir=parent)
            os.rmdir(retired)
            os.replace(folder, retired)
            os.replace(staging, folder)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _carry_over(old: str, new: str, files: dict) -> None:
    """Keep the old build folder, and old copies of unchanged files (their mtimes)."""
    if os.path.isdir(os.path.join(old, BUILD_DIR)):
        os.replace(os.path.join(old, BUILD_DIR), os.path.join(new, BUILD_DIR))
    for rel, content in files.items():
        old_path = os.path.join(old, *rel.split("/"))
        try:
            if os.path.getsize(old_path) == len(content):
                with open(old_path, "rb") as f:
                    same = f.read() == content
                if same:
                    os.replace(old_path, os.path.join(new, *rel.split("/")))
        except OSError:
            pass
