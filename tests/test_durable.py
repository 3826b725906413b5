"""Whole-file replacement: a reader sees the old file or the new one, and a failed write leaves no trace."""

from pathlib import Path

import pytest

from pagehop.durable import is_temporary_of, replacing


def test_a_finished_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "index.npz"  # the folder is made on first write
    with replacing(target) as handle:
        handle.write(b"first")
    with replacing(target) as handle:
        handle.write(b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["index.npz"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), replacing(target) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_temporaries_are_recognised_by_the_file_they_were_for(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    assert is_temporary_of(tmp_path / ".manifest.json.k3j9x.tmp", target)
    assert not is_temporary_of(tmp_path / ".index.npz.k3j9x.tmp", target)
    assert not is_temporary_of(tmp_path / "manifest.json", target)
