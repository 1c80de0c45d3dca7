"""A user's file is written all at once (nnbuild.fileio.replacing): reports, intermediate files
and the machine description either hold what the block wrote or stay as they were."""
from __future__ import annotations

import os

import pytest

from nnbuild.conformance import report
from nnbuild.fileio import replacing


def test_the_file_holds_what_the_block_wrote(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old")
    with replacing(str(path)) as f:
        f.write("new")
        assert path.read_text() == "old"       # nothing visible before the block ends
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["report.json"]


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "table.md"
    path.write_text("previous table")
    with pytest.raises(RuntimeError):
        with replacing(str(path)) as f:
            f.write("half a ta")
            raise RuntimeError("the run died here")
    assert path.read_text() == "previous table"
    assert os.listdir(tmp_path) == ["table.md"]


def test_bytes_and_permissions_of_a_plain_new_file(tmp_path):
    umask = os.umask(0o022)
    try:
        with replacing(str(tmp_path / "journal"), "wb", durable=True) as f:
            f.write(b"\x00\x01")
    finally:
        os.umask(umask)
    assert (tmp_path / "journal").read_bytes() == b"\x00\x01"
    assert (tmp_path / "journal").stat().st_mode & 0o777 == 0o644


def test_conformance_reports_are_written_whole(tmp_path, monkeypatch):
    path = tmp_path / "conformance.json"
    path.write_text('{"previous": true}')

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report.json, "dump", broken)
    with pytest.raises(KeyboardInterrupt):
        report.write_json(str(path), [], {})
    assert path.read_text() == '{"previous": true}'
    assert os.listdir(tmp_path) == ["conformance.json"]
