"""Atomic file writes for every state file pfstui keeps.

Why: the supervisor, the waiter of each stage and the UI all write small state files that must survive a crash,
a dropped SSH session or a full disk without ever leaving a half-written file behind.  The recipe is the one
nq and the "write_atomic" crates document: write a uniquely named temp file in the *same* folder (so the rename
cannot cross a file system), flush and fsync it, ``os.replace`` it over the target, then fsync the folder so the
rename itself is durable.  The temp file is removed on any error, so the target is either the old or the new
content, never a mix.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
from pathlib import Path
from typing import Any

__all__ = [
    "StateWriteError",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "fsync_dir",
]

#: errno -> the one-line fix shown to the operator.
_FIXES: dict[int, str] = {
    errno.EROFS: "the file system is read-only; point PFSTUI_STATE_DIR (or the session) at a writable disk",
    errno.ENOSPC: "the disk is full; free some space (e.g. clean old runs or logs) and retry",
    errno.EDQUOT: "the disk quota is exceeded; free some space in your quota and retry",
    errno.EACCES: "permission denied; check the owner and mode of the folder or point PFSTUI_STATE_DIR elsewhere",
    errno.EPERM: "operation not permitted; check the owner and mode of the folder or point PFSTUI_STATE_DIR "
    "elsewhere",
}


class StateWriteError(OSError):
    """A state file could not be written; the previous content (if any) is intact.

    Subclasses ``OSError`` so generic handlers still catch it, but ``str()`` is a one-line message naming the file
    and the fix instead of the bare ``[Errno N]`` text.
    """

    def __init__(self, path: Path | str, cause: OSError) -> None:
        code = cause.errno if cause.errno is not None else 0
        super().__init__(code, cause.strerror or str(cause), str(path))
        self.path = Path(path)
        self.cause = cause
        reason = os.strerror(code) if code else str(cause)
        fix = _FIXES.get(code, "check that the folder exists and is writable, then retry")
        self.message = f"cannot write {self.path}: {reason}; {fix}"

    def __str__(self) -> str:
        return self.message


def fsync_dir(directory: Path | str) -> None:
    """fsync a folder so a rename or a new file in it is durable.  Silently skipped where unsupported."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems (e.g. certain FUSE/NFS setups) refuse fsync on a folder
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path | str, data: bytes, *, mode: int = 0o644, make_parents: bool = True) -> Path:
    """Replace ``path`` with ``data`` atomically and durably; returns the path.

    Raises :class:`StateWriteError` on any OS error; the target then still holds its previous content and no
    temp file is left behind.
    """
    target = Path(path)
    folder = target.parent
    tmp: Path | None = None
    try:
        if make_parents:
            folder.mkdir(parents=True, exist_ok=True)
        fd = -1
        # O_EXCL + a random token: two writers (or a stale temp from a crash) can never share a temp file.
        for _ in range(16):
            candidate = folder / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
            try:
                fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            except FileExistsError:
                continue
            tmp = candidate
            break
        else:  # pragma: no cover - 16 random collisions in a row
            raise FileExistsError(errno.EEXIST, "could not create a unique temp file", str(folder))
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        tmp = None
        fsync_dir(folder)
    except OSError as exc:
        if isinstance(exc, StateWriteError):
            raise
        raise StateWriteError(target, exc) from exc
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return target


def atomic_write_text(path: Path | str, text: str, *, encoding: str = "utf-8", **kwargs: Any) -> Path:
    """Text variant of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode(encoding), **kwargs)


def atomic_write_json(path: Path | str, data: Any, *, indent: int | None = 2, **kwargs: Any) -> Path:
    """Serialise ``data`` as JSON (UTF-8, trailing newline) and write it atomically.

    The JSON is produced *before* the temp file is created, so an unserialisable value raises ``TypeError``
    without touching the disk.
    """
    text = json.dumps(data, indent=indent, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text, **kwargs)
