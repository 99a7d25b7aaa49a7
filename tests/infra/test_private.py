"""Private by construction: folders 0700, files 0600 whatever the umask; untrusted files refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pfstui.config import load_settings
from pfstui.infra.atomic import atomic_write_text
from pfstui.infra.journal import Journal
from pfstui.infra.private import (
    GROUP_ACCESS_ENV,
    UnsafePathError,
    check_trusted,
    make_private_dir,
)


@pytest.fixture
def loose_umask():
    """The umask a shared group setup uses (002): without explicit modes, files would be group-writable."""
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_new_folders_and_files_are_private_whatever_the_umask(tmp_path: Path, loose_umask) -> None:
    target = tmp_path / "a" / "b" / "state.json"
    atomic_write_text(target, "{}")
    assert mode(target) == 0o600
    assert mode(tmp_path / "a") == 0o700 and mode(tmp_path / "a" / "b") == 0o700
    journal = Journal(tmp_path / "j" / "journal.jsonl")
    journal.append({"action": "test"})
    assert mode(journal.path) == 0o600 and mode(journal.path.parent) == 0o700


def test_a_site_may_open_them_to_the_group_read_only(tmp_path: Path, loose_umask, monkeypatch) -> None:
    monkeypatch.setenv(GROUP_ACCESS_ENV, "1")
    target = tmp_path / "shared" / "state.json"
    atomic_write_text(target, "{}")
    assert mode(target) == 0o640 and mode(target.parent) == 0o750


def test_an_existing_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "session"
    folder.mkdir()
    os.chmod(folder, 0o775)
    with pytest.raises(UnsafePathError, match="can be changed by your group.*chmod go-w"):
        make_private_dir(folder)
    os.chmod(folder, 0o777)
    with pytest.raises(UnsafePathError, match="can be changed by everyone"):
        check_trusted(folder, "session folder")


def test_a_planted_symlink_is_refused_not_followed(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        make_private_dir(tmp_path / "link")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        make_private_dir(tmp_path / "dangling")


def test_settings_others_can_write_are_not_read(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("theme: light\n")
    os.chmod(path, 0o666)
    settings, problem = load_settings(path)
    assert settings.theme == "dark" and "can be changed by everyone" in problem
    os.chmod(path, 0o600)
    assert load_settings(path)[0].theme == "light"


def test_settings_that_are_not_utf8_are_one_line_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"theme: l\xe9ght\n")
    os.chmod(path, 0o600)
    settings, problem = load_settings(path)
    assert settings.theme == "dark" and "not UTF-8" in problem and "\n" not in problem
