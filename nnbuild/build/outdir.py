"""Publishing a generated project into the user's folder without clobbering anything.

Files are written to a temporary folder beside the target, then renamed into place. The
target must be new, empty, or a project nnbuild made before (it holds nnbuild.json); then it is
updated in place, never moved (a shell or an IDE may be inside it): changed files are renamed
over the old ones, files the old project listed in nnbuild.json and the new one lacks are
removed, the build/ folder and files nnbuild did not write are kept, and files whose content
did not change keep their timestamps, so the next build is incremental. nnbuild.json is
written last.

Interrupted runs: the new files are written to the staging folder first, so a kill before
the update leaves the folder untouched (stale staging folders of dead processes are removed by
the next run). The update itself is journaled: ``.nnbuild-journal`` in the folder names the
files to be added and those replaced or removed, whose old versions are moved into the staging
folder's ``.old/`` before the new ones go in; a kill during the update leaves the journal, and
the next publish (or ``recover``) first rolls the folder back to the previous project.

A publish can carry a step that must finish before the update counts as done (``then``: the
cmake/ninja build of ``nnbuild build``). The journal stays until that step returns, and the
previous build artifacts it names (``keep``: the app and the library) are saved first as hard
links in the backup (the linker and CMake's archive rule remove an output before writing it, so
the saved inode is never written). Killed during the build, the next run restores the previous
project and artifacts, and touches the restored sources so the next build recompiles them.
A build that fails with an error (not a kill) commits: the new project stays with its log.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile

from ..errors import UsageError
from ..fileio import TEMPORARY_INFIX, replacing

MARKER = "nnbuild.json"
BUILD_DIR = "build"
JOURNAL = ".nnbuild-journal"
STAGING_INFIX = ".tmp-"
KEPT = ".built"                 # in the backup: the previous build artifacts


def check_output_folder(folder: str) -> None:
    """UsageError unless ``folder`` is absent, empty, or an nnbuild project."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"-o {folder}: exists and is not a folder")
    if os.path.isdir(folder) and _holds_files(folder) and \
            not os.path.isfile(os.path.join(folder, MARKER)) and \
            not os.path.isfile(os.path.join(folder, JOURNAL)):     # an interrupted first update
        raise UsageError(f"-o {folder}: folder holds files that nnbuild did not write; "
                         f"choose a new or empty folder")


def _holds_files(folder: str) -> bool:
    """Anything but (nested) empty folders: Bazel creates the folders of an action's declared
    outputs before the generator runs."""
    for _, _, files in os.walk(folder):
        if files:
            return True
    return False


def publish(project, folder: str, then=None, keep: tuple = ()) -> None:
    """Write ``project`` (a GeneratedProject) into ``folder``; then run ``then()`` (if given)
    inside the same journaled update, the files ``keep`` (paths inside ``folder``) restorable
    until it returns."""
    folder = os.path.abspath(folder)
    recover(folder)
    check_output_folder(folder)
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    _remove_stale_staging(folder)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}{STAGING_INFIX}"
                               f"{os.getpid()}-", dir=parent)
    try:
        project.write_into(staging)
        if os.path.isdir(folder):
            _update_in_place(staging, folder, project.files, then, keep)
        else:
            os.replace(staging, folder)
            if then is not None:
                then()
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def recover(folder: str) -> bool:
    """Roll ``folder`` back to its previous project if an update was interrupted (its journal
    is there); True when it did."""
    journal = os.path.join(folder, JOURNAL)
    if os.path.isdir(folder):
        for name in os.listdir(folder):       # a journal cut while being written
            if name.startswith(f"{JOURNAL}{TEMPORARY_INFIX}"):
                os.unlink(os.path.join(folder, name))
    try:
        with open(journal) as f:
            record = json.load(f)
    except (OSError, ValueError):
        if os.path.lexists(journal):          # cut while being written: nothing moved yet
            os.unlink(journal)
        return False
    if not _valid_journal(record, folder):
        raise UsageError(f"-o {folder}: {JOURNAL} is not one nnbuild wrote; remove it")
    backup = record["backup"]
    for rel in record["added"]:
        path = os.path.join(folder, *rel.split("/"))
        if os.path.isfile(path) or os.path.islink(path):
            os.unlink(path)
    for rel in record["moved"]:
        saved = os.path.join(backup, *rel.split("/"))
        if os.path.lexists(saved):
            path = os.path.join(folder, *rel.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.replace(saved, path)
            os.utime(path)                    # newer than objects a killed build made of it
    for rel in record.get("kept", []):        # build artifacts of the previous project
        saved, path = os.path.join(backup, KEPT, *rel.split("/")), \
            os.path.join(folder, *rel.split("/"))
        if os.path.lexists(saved):
            os.replace(saved, path)
        elif os.path.lexists(path):           # there was none before: drop the new one
            os.unlink(path)
    _remove_empty_parents(folder, record["added"])
    os.unlink(journal)
    shutil.rmtree(os.path.dirname(backup), ignore_errors=True)
    return True


def _valid_journal(record, folder: str) -> bool:
    """Only paths inside ``folder`` and a backup inside a staging folder beside it."""
    try:
        backup = record["backup"]
        rels = list(record["added"]) + list(record["moved"]) + list(record.get("kept", []))
        staging = os.path.dirname(backup)
        return (isinstance(backup, str) and os.path.basename(backup) == ".old"
                and os.path.dirname(staging) == os.path.dirname(folder)
                and os.path.basename(staging).startswith(
                    f".{os.path.basename(folder)}{STAGING_INFIX}")
                and all(isinstance(r, str) and r and not os.path.isabs(r)
                        and ".." not in r.split("/") for r in rels))
    except (KeyError, TypeError):
        return False


def _remove_stale_staging(folder: str) -> None:
    """Staging folders beside ``folder`` left by processes that no longer run (killed)."""
    parent, prefix = os.path.dirname(folder), f".{os.path.basename(folder)}{STAGING_INFIX}"
    for name in os.listdir(parent):
        if not name.startswith(prefix):
            continue
        pid = name[len(prefix):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True                           # exists, another user's
    return True


def _update_in_place(staging: str, folder: str, files: dict, then=None, keep=()) -> None:
    """Make ``folder`` hold ``files``; files of the previous project that the new one lacks
    are removed, anything else in the folder (build/, the user's own files) is left alone.
    Journaled: old versions go to staging/.old/ first, so ``recover`` can roll back."""
    previous = _previous_files(folder)
    changed = [rel for rel in sorted(files, key=lambda r: r == MARKER)     # nnbuild.json last
               if not _holds(os.path.join(folder, *rel.split("/")), files[rel])]
    gone = sorted(set(previous) - set(files))            # only what nnbuild wrote before
    exists = [rel for rel in changed + gone if os.path.lexists(os.path.join(folder, *rel.split("/")))]
    backup = os.path.join(staging, ".old")
    record = {"backup": backup, "moved": exists, "added": [r for r in changed if r not in exists]}
    _write_atomically(os.path.join(folder, JOURNAL), json.dumps(record).encode())
    for rel in exists:                                   # the previous versions, kept aside
        saved = os.path.join(backup, *rel.split("/"))
        os.makedirs(os.path.dirname(saved), exist_ok=True)
        os.replace(os.path.join(folder, *rel.split("/")), saved)
    for rel in changed:
        path = os.path.join(folder, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(os.path.join(staging, *rel.split("/")), path)
    _remove_empty_parents(folder, gone)
    if then is not None:                                 # ... and keep the journal meanwhile
        _save_artifacts(folder, backup, keep, record)
        try:
            then()
        except Exception:                                # a failed build: keep it, with its log
            os.unlink(os.path.join(folder, JOURNAL))
            raise
        except BaseException:                            # Ctrl-C: as if killed, roll back now
            recover(folder)
            raise
        # a kill skips everything below: the next run's recover rolls back
    os.unlink(os.path.join(folder, JOURNAL))             # committed


def _save_artifacts(folder: str, backup: str, keep, record: dict) -> None:
    """Hard-link the current ``keep`` files into the backup and name them in the journal."""
    kept = []
    for path in keep:
        rel = os.path.relpath(os.path.abspath(path), folder).replace(os.sep, "/")
        if rel.startswith("../") or os.path.isabs(rel):
            continue
        kept.append(rel)
        if os.path.isfile(path):
            saved = os.path.join(backup, KEPT, *rel.split("/"))
            os.makedirs(os.path.dirname(saved), exist_ok=True)
            try:
                os.link(path, saved)
            except OSError:                              # no hard links here: copy
                shutil.copy2(path, saved)
    record["kept"] = kept
    _write_atomically(os.path.join(folder, JOURNAL), json.dumps(record).encode())


def _remove_empty_parents(folder: str, rels: list) -> None:
    for rel in rels:
        parent = os.path.dirname(os.path.join(folder, *rel.split("/")))
        while parent != folder and os.path.isdir(parent) and not os.listdir(parent):
            os.rmdir(parent)
            parent = os.path.dirname(parent)


def _write_atomically(path: str, data: bytes) -> None:
    with replacing(path, "wb", durable=True) as f:
        f.write(data)


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
