"""Atomic file writes for every state file pfstui keeps.

Why: the supervisor, the waiter of each stage and the UI all write small state files that must survive a crash,
a dropped SSH session or a full disk without ever leaving a half-written file behind.  The recipe is the one
nq and the "write_atomic" crates document: write a uniquely named temp file in the *same* folder (so the rename
cannot cross a file system), flush and fsync it, ``os.replace`` it over the target, then fsync the folder so the
rename itself is durable.  The temp file is removed on any error, so the target is either the old or the new
content, never a mix.

``exclusive=True`` is the "create, never overwrite" variant (``pfstui plan new`` without ``--force``): the last
step is a hard link of the fsynced temp file to the target, which the kernel refuses when the name exists, so a
file that appeared between any check and the write is never clobbered; the temp name is then unlinked.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from pathlib import Path
from typing import Any

from pfstui.errors import UserError
from pfstui.infra.private import file_mode, make_private_dir

__all__ = [
    "StateFileExistsError",
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
    errno.EEXIST: "the existing file is kept; choose another name or remove it first",
}

#: errnos of ``os.link`` meaning "this file system has no hard links" (FAT, some FUSE/SMB mounts).
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})


class StateWriteError(UserError, OSError):
    """A state file could not be written; the previous content (if any) is intact.

    Subclasses ``OSError`` so generic handlers still catch it, but ``str()`` is a one-line message naming the file
    and the fix instead of the bare ``[Errno N]`` text.
    """

    def __init__(self, path: Path | str, cause: OSError) -> None:
        code = cause.errno if cause.errno is not None else 0
        OSError.__init__(self, code, cause.strerror or str(cause), str(path))
        self.fix = None
        self.path = Path(path)
        self.cause = cause
        reason = os.strerror(code) if code else str(cause)
        fix = _FIXES.get(code, "check that the folder exists and is writable, then retry")
        self.message = f"cannot write {self.path}: {reason}; {fix}"

    def __str__(self) -> str:
        return self.message


class StateFileExistsError(StateWriteError, FileExistsError):
    """An ``exclusive=True`` write found the target already there; it was left untouched.

    Also a ``FileExistsError``, so ``except FileExistsError`` catches it; callers with their own wording
    (``PlanFileExistsError``) translate it.
    """


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


def atomic_write_bytes(
    path: Path | str, data: bytes, *, mode: int | None = None, make_parents: bool = True, exclusive: bool = False
) -> Path:
    """Replace ``path`` with ``data`` atomically and durably; returns the path.

    Raises :class:`StateWriteError` on any OS error; the target then still holds its previous content and no
    temp file is left behind.  With ``exclusive=True`` an existing ``path`` is never replaced, not even one
    created while this call runs: :class:`StateFileExistsError` is raised instead.

    The file gets ``mode`` exactly (default :func:`pfstui.infra.private.file_mode`, 0600), whatever the umask;
    missing parent folders are made private (:func:`pfstui.infra.private.make_private_dir`).
    """
    target = Path(path)
    folder = target.parent
    tmp: Path | None = None
    try:
        mode = file_mode() if mode is None else mode
        if make_parents and not folder.is_dir():
            make_private_dir(folder)
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
            os.fchmod(fd, mode)  # exactly: the umask may have removed bits a site asked for
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            _publish_exclusive(tmp, target)
        else:
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


def _publish_exclusive(tmp: Path, target: Path) -> None:
    """Give the complete, fsynced ``tmp`` the name ``target`` unless that name exists (then raise).

    ``tmp`` is gone afterwards unless this raises (the caller removes it then).  ``os.link`` fails with EEXIST
    when the name exists (even as a dangling symlink), atomically, on every POSIX file system with hard links.
    Without hard links the name is first reserved with ``O_EXCL`` (also atomic) and then replaced by ``tmp``:
    readers may briefly see an empty file there, but never a clobbered one.
    """
    try:
        os.link(tmp, target)
    except FileExistsError as exc:
        raise StateFileExistsError(target, exc) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    else:
        with contextlib.suppress(OSError):  # the content is published; a leftover temp name is only clutter
            os.unlink(tmp)
        return
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError as exc:
        raise StateFileExistsError(target, exc) from None
    os.close(fd)
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(target)  # our own empty reservation: the name is free again
        raise


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
