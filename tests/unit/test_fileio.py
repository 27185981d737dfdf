"""ovnbgp.fileio.atomic_write: the one file writer."""

import os

import pytest

from ovnbgp import fileio


def test_writes_creates_directory_and_sets_mode(tmp_path):
    p = tmp_path / "a" / "b" / "f.conf"
    fileio.atomic_write(p, "one\n", mode=0o640)
    assert p.read_text() == "one\n"
    assert p.stat().st_mode & 0o777 == 0o640
    fileio.atomic_write(p, "two\n", mode=fileio.mode_of(p, 0o644))
    assert p.read_text() == "two\n"
    assert p.stat().st_mode & 0o777 == 0o640
    assert fileio.mode_of(tmp_path / "missing", 0o123) == 0o123


def test_no_temp_file_left_behind_on_failure(tmp_path, monkeypatch):
    p = tmp_path / "f"
    p.write_text("old")

    def boom(*a, **k):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        fileio.atomic_write(p, "new")
    assert p.read_text() == "old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["f"]


def test_temp_file_is_in_the_target_directory(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append((os.path.dirname(src), os.path.dirname(dst)))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    fileio.atomic_write(tmp_path / "f", "x")
    assert seen == [(str(tmp_path), str(tmp_path))]
