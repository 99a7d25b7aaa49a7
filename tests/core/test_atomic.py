"""Atomic writes: the target is either the old or the new content, never a mix, and no temp file is left."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from pfstui.core import atomic
from pfstui.core.atomic import StateWriteError, atomic_write_bytes, atomic_write_json, atomic_write_text


def _only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_writes_new_file_and_replaces_existing(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "state.json"
    atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    atomic_write_text(target, "second\n")
    assert target.read_text() == "second\n"
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert _only(target.parent) == ["state.json"]


def test_json_ends_with_newline_and_keeps_unicode(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    atomic_write_json(target, {"name": "flat – Quartz"})
    text = target.read_text(encoding="utf-8")
    assert text.endswith("\n") and "–" in text


def test_unserialisable_json_touches_nothing(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert target.read_text() == "old"
    assert _only(tmp_path) == ["x.json"]


def test_failed_replace_keeps_previous_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "state.json"
    target.write_text('{"version": "old"}')

    def boom(src: object, dst: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(StateWriteError) as info:
        atomic_write_json(target, {"version": "new"})
    assert target.read_text() == '{"version": "old"}'
    assert _only(tmp_path) == ["state.json"]
    assert str(target) in str(info.value)


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only"), (errno.EACCES, "permission denied")],
)
def test_disk_errors_become_typed_error_naming_file_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, words: str
) -> None:
    target = tmp_path / "state.json"
    target.write_text("previous")
    real_write = os.write

    def failing_write(fd: int, data: bytes) -> int:
        if fd > 2:
            raise OSError(code, os.strerror(code))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(StateWriteError) as info:
        atomic_write_text(target, "new content")
    monkeypatch.undo()
    message = str(info.value)
    assert str(target) in message and words in message
    assert "\n" not in message
    assert info.value.errno == code
    assert isinstance(info.value, OSError)
    assert target.read_text() == "previous"
    assert _only(tmp_path) == ["state.json"]


def test_read_only_folder_reports_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # We run as root in CI, where chmod does not stop writes; simulate the kernel's answer instead.
    real_open = os.open

    def ro_open(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", ro_open)
    with pytest.raises(StateWriteError, match=r"cannot write .*state\.json: Read-only file system; .*writable"):
        atomic_write_text(tmp_path / "state.json", "x")
    monkeypatch.undo()
    assert _only(tmp_path) == []


def test_fsync_of_file_and_folder_happen_before_and_after_replace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_fsync, real_replace, real_fsync_dir = os.fsync, os.replace, atomic.fsync_dir
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    monkeypatch.setattr(atomic, "fsync_dir", lambda d: (calls.append("fsync_dir"), real_fsync_dir(d))[1])
    atomic_write_text(tmp_path / "f", "data")
    assert calls[:2] == ["fsync", "replace"]
    assert "fsync_dir" in calls[2:]


def test_concurrent_temp_names_do_not_collide(tmp_path: Path) -> None:
    target = tmp_path / "f"
    for i in range(50):
        atomic_write_text(target, str(i))
    assert target.read_text() == "49"
    assert _only(tmp_path) == ["f"]
