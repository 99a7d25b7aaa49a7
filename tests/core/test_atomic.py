"""Atomic writes: the target is either the old or the new content, never a mix, and no temp file is left."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pfstui.infra.atomic as atomic
from pfstui.infra.atomic import (
    StateWriteError,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)


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


# --------------------------------------------------------------------------- exclusive: create, never overwrite


def test_exclusive_creates_a_new_file_durably(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_fsync, real_link, real_fsync_dir = os.fsync, os.link, atomic.fsync_dir
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "link", lambda a, b: (calls.append("link"), real_link(a, b))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: pytest.fail("exclusive must not rename over the target"))
    monkeypatch.setattr(atomic, "fsync_dir", lambda d: (calls.append("fsync_dir"), real_fsync_dir(d))[1])
    target = tmp_path / "sub" / "plan.yaml"
    assert atomic_write_text(target, "new plan\n", exclusive=True) == target
    assert target.read_text() == "new plan\n"
    assert target.stat().st_nlink == 1  # the temp name is gone, not just hidden
    assert calls[:3] == ["fsync", "link", "fsync_dir"]
    assert _only(target.parent) == ["plan.yaml"]


def test_exclusive_refuses_an_existing_file_and_says_so(tmp_path: Path) -> None:
    target = tmp_path / "plan.yaml"
    target.write_text("operator's edits\n")
    with pytest.raises(atomic.StateFileExistsError) as info:
        atomic_write_bytes(target, b"template\n", exclusive=True)
    err = info.value
    assert isinstance(err, FileExistsError) and isinstance(err, StateWriteError)
    assert err.errno == errno.EEXIST and err.path == target
    assert str(err) == f"cannot write {target}: File exists; the existing file is kept; choose another name or remove it first"
    assert target.read_text() == "operator's edits\n"
    assert _only(tmp_path) == ["plan.yaml"]
    atomic_write_text(target, "replaced\n")  # the default mode still replaces
    assert target.read_text() == "replaced\n"


def test_exclusive_does_not_write_through_a_dangling_symlink(tmp_path: Path) -> None:
    target = tmp_path / "plan.yaml"
    target.symlink_to(tmp_path / "elsewhere.yaml")
    with pytest.raises(FileExistsError):
        atomic_write_text(target, "x", exclusive=True)
    assert target.is_symlink() and not (tmp_path / "elsewhere.yaml").exists()
    assert _only(tmp_path) == ["plan.yaml"]


RACER = """
import sys, time
from pathlib import Path
from pfstui.infra.atomic import StateFileExistsError, atomic_write_text
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.001)
try:
    atomic_write_text(sys.argv[2], "writer " + sys.argv[3] + "\\n", exclusive=True)
except StateFileExistsError:
    sys.exit(3)
"""


def test_exclusive_racing_processes_exactly_one_wins_and_is_never_clobbered(tmp_path: Path) -> None:
    target, go = tmp_path / "out" / "plan.yaml", tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", RACER, str(go), str(target), str(i)]) for i in range(8)
    ]
    time.sleep(0.5)  # let every racer reach its wait loop
    go.touch()
    codes = [p.wait(timeout=30) for p in procs]
    assert sorted(codes) == [0] + [3] * 7, codes
    winner = codes.index(0)
    assert target.read_text() == f"writer {winner}\n"
    assert _only(target.parent) == ["plan.yaml"]


@pytest.mark.parametrize("code", [errno.EPERM, errno.EOPNOTSUPP])
def test_exclusive_without_hard_links_still_never_clobbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "plan.yaml"
    atomic_write_text(target, "first\n", exclusive=True)
    assert target.read_text() == "first\n"
    with pytest.raises(atomic.StateFileExistsError):
        atomic_write_text(target, "second\n", exclusive=True)
    assert target.read_text() == "first\n"
    assert _only(tmp_path) == ["plan.yaml"]


def test_exclusive_failures_leave_neither_target_nor_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "plan.yaml"

    def io_error(src: object, dst: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "link", io_error)  # a real error, not "no hard links here": no fallback
    with pytest.raises(StateWriteError, match=r"cannot write .*plan\.yaml: Input/output error") as info:
        atomic_write_text(target, "x", exclusive=True)
    assert not isinstance(info.value, FileExistsError)
    assert _only(tmp_path) == []

    monkeypatch.setattr(os, "link", lambda a, b: (_ for _ in ()).throw(OSError(errno.EPERM, "no links")))
    monkeypatch.setattr(os, "replace", io_error)  # the fallback's rename fails: its reservation is removed
    with pytest.raises(StateWriteError, match="Input/output error"):
        atomic_write_text(target, "x", exclusive=True)
    assert _only(tmp_path) == []
