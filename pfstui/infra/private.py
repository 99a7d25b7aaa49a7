"""Private by construction: what pfstui makes on disk is its user's alone, whatever the umask.

Why: pfstui runs on machines several operators share.  A session folder left ``drwxrwxr-x`` by a umask of 002
let another member of the group swap in a crafted ``state.json`` whose stage ran their code as you; a umask of
022 left every journal, state file and log world-readable.  So every folder pfstui makes is 0700 and every
file 0600, set explicitly (not left to the umask), and what pfstui is about to trust (state, plan, config) is
checked: owned by you and writable by nobody else, or refused with a message that says why.

A site may open folders to the group on purpose (0750 / 0640, never group-writable) with the setting
``group_access: true`` in ``config.yaml`` or ``PFSTUI_GROUP_ACCESS=1``; off by default.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pfstui.errors import UserError

__all__ = [
    "GROUP_ACCESS_ENV",
    "UnsafePathError",
    "check_trusted",
    "dir_mode",
    "file_mode",
    "group_access",
    "make_private_dir",
    "open_private",
    "owner_name",
]

GROUP_ACCESS_ENV = "PFSTUI_GROUP_ACCESS"


class UnsafePathError(UserError):
    """A file or folder pfstui would trust can be changed by another user; the message says which and why."""

    title = "Unsafe file"


def group_access() -> bool:
    """Whether the site opened pfstui's files to the group (read-only for the group, never writable)."""
    return os.environ.get(GROUP_ACCESS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def dir_mode() -> int:
    return 0o750 if group_access() else 0o700


def file_mode() -> int:
    return 0o640 if group_access() else 0o600


def owner_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return f"uid {uid}"


def check_trusted(path: Path | str, what: str, st: os.stat_result | None = None) -> None:
    """Refuse ``path`` unless it is yours and nobody else can write it (or, for a folder, rename in it).

    Symlinks are judged by the link itself: a link another user planted is refused, not followed.
    """
    path = Path(path)
    st = st or os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"{what} {path} is a symbolic link", "pfstui does not follow links there; remove it")
    if st.st_uid != os.getuid():
        raise UnsafePathError(f"{what} {path} belongs to {owner_name(st.st_uid)}, not to you",
                              "pfstui only trusts its own files; remove it or ask its owner to")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = "everyone" if st.st_mode & stat.S_IWOTH else "your group"
        raise UnsafePathError(f"{what} {path} can be changed by {who} (mode {stat.S_IMODE(st.st_mode):o})",
                              f"make it private: chmod go-w {path}")


def make_private_dir(path: Path | str, *, what: str = "folder") -> Path:
    """Create ``path`` (and missing parents) as private folders; check an existing one is yours and safe.

    Parents that already exist (your home, ``~/.local/state``) are left alone; each folder created here gets
    exactly :func:`dir_mode`.  The final folder, new or old, must pass :func:`check_trusted`.
    """
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not probe.exists() and not probe.is_symlink():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    mode = dir_mode()
    for folder in reversed(missing):
        try:
            os.mkdir(folder, mode)
        except FileExistsError:
            pass  # made meanwhile (another pfstui process): judged below like any existing folder
        else:
            os.chmod(folder, mode)  # the umask may have removed bits we want (never added any)
    check_trusted(path, what)
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise UnsafePathError(f"{what} {path} is not a folder", "remove it, then retry")
    return path


def open_private(path: Path | str, flags: int) -> int:
    """``os.open`` for pfstui's own files: created with :func:`file_mode`, never through a symlink."""
    return os.open(path, flags | os.O_CLOEXEC | os.O_NOFOLLOW, file_mode())
