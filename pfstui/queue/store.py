"""Reading and writing the per-session state document (``state.json``, :mod:`pfstui.queue.state`), and its
single-writer lock.

Why: the supervisor that owns a (repository, plan) queue can be killed, restarted or replaced at any moment, and
the operator must never lose the record of which stage ran, with which pid, log and exit code.  So the document
is versioned (``schema_version``), always written atomically, the previous good version is kept as
``state.json.prev``, and a damaged file is moved aside (never overwritten) with a clear message, falling back to
the previous good copy when there is one.  A ``flock`` on ``<dir>/lock`` makes one supervisor the only writer;
the kernel drops the lock when that process dies, so a crash never leaves a stale lock behind (nq's trick).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pfstui.errors import UserError
from pfstui.infra.atomic import StateWriteError, atomic_write_bytes, fsync_dir
from pfstui.infra.paths import make_session_dir
from pfstui.infra.private import UnsafePathError, check_trusted, open_private
from pfstui.queue.state import SCHEMA_VERSION, QueueState, now

__all__ = [
    "LOCK_FILE",
    "PREV_FILE",
    "STATE_FILE",
    "LoadResult",
    "SessionLock",
    "SessionStore",
    "StateError",
    "StateLockedError",
    "check_session",
]

STATE_FILE = "state.json"
PREV_FILE = "state.json.prev"
LOCK_FILE = "lock"


class StateError(UserError):
    """The state file is unreadable, damaged or from a newer pfstui; ``str()`` names the file and the fix."""

    def __init__(self, message: str, *, path: Path, moved_to: Path | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.moved_to = moved_to


def check_session(directory: Path | str) -> Path:
    """Make the session folder private (or check it is), and refuse state files another user could have put
    there: the state names the plan and the commands the supervisor runs, so a crafted one runs code as you.

    Raises :class:`pfstui.infra.private.UnsafePathError` saying which file and why.
    """
    directory = make_session_dir(directory)
    for name, what in ((STATE_FILE, "state file"), (PREV_FILE, "previous state file")):
        with contextlib.suppress(FileNotFoundError):
            check_trusted(directory / name, what)
    return directory


class StateLockedError(UserError):
    """Another process holds the session lock; ``str()`` names the holder and what to do."""


@dataclass(frozen=True)
class LoadResult:
    """What :meth:`SessionStore.load_report` found.

    ``problem`` is set when the current file was damaged and the previous good copy was used instead
    (``recovered_from``); the damaged file is at ``problem.moved_to``.
    """

    state: QueueState
    problem: StateError | None = None
    recovered_from: Path | None = None


class _Unusable(Exception):
    """Internal: why a state file cannot be used (short reason)."""

    def __init__(self, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


def _parse(raw: bytes) -> QueueState:
    if not raw.strip():
        raise _Unusable("the file is empty (truncated)", "a previous good copy is used when one exists")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _Unusable(f"the file is not UTF-8 text ({exc.reason})", "it was garbled on disk") from exc
    except json.JSONDecodeError as exc:
        raise _Unusable(f"invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}; truncated or garbled)",
                        "it was cut short or garbled on disk") from exc
    if not isinstance(data, dict):
        raise _Unusable(f"top level is a JSON {type(data).__name__}, not an object", "it is not a pfstui state")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _Unusable(f"schema_version is missing or not an integer ({version!r})", "it is not a pfstui state")
    if version > SCHEMA_VERSION:
        raise _Unusable(f"it was written by a newer pfstui (schema {version}; this pfstui reads up to "
                        f"{SCHEMA_VERSION})", "upgrade pfstui to use it")
    if version < 1:
        raise _Unusable(f"unknown schema_version {version}", "it is not a pfstui state")
    try:
        return QueueState.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "(top level)"
        raise _Unusable(f"field {where}: {first.get('msg', 'invalid')}", "it was edited or garbled") from exc


class SessionStore:
    """Load and save the :class:`QueueState` of one session folder.

    Files: ``state.json`` (current), ``state.json.prev`` (previous good version), ``state.json.damaged-<UTC>``
    (files that could not be read, kept for inspection), ``lock`` (see :class:`SessionLock`).
    """

    def __init__(self, directory: Path | str) -> None:
        self.dir = Path(directory)
        self.path = self.dir / STATE_FILE
        self.prev_path = self.dir / PREV_FILE
        self.lock_path = self.dir / LOCK_FILE
        self.last_problem: StateError | None = None

    # ------------------------------------------------------------------------------------------------ loading
    def load(self) -> QueueState:
        """The session state (empty if none yet).

        If ``state.json`` is damaged it is moved aside and the previous good copy is returned; the problem is
        then in :attr:`last_problem`.  Raises :class:`StateError` when no usable copy exists.
        """
        return self.load_report().state

    def load_report(self) -> LoadResult:
        """Like :meth:`load` but also returns what went wrong and which file was used."""
        self.last_problem = None
        try:
            check_session(self.dir)
        except UnsafePathError as exc:
            raise StateError(f"pfstui reads and runs nothing from this session: {exc}", path=self.path) from None
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raw = None
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc.strerror}; check its permissions",
                             path=self.path) from exc

        if raw is None:
            if not self.prev_path.exists():
                return LoadResult(QueueState())
            prev = self._load_prev()
            if prev is None:
                raise StateError(f"{self.path} is missing and {self.prev_path} is unusable; move both aside "
                                 "to start an empty queue", path=self.path)
            problem = StateError(f"{self.path} is missing; using the previous good copy {self.prev_path} "
                                 "(the most recent change may be lost)", path=self.path)
            self.last_problem = problem
            return LoadResult(prev, problem, self.prev_path)

        try:
            return LoadResult(_parse(raw))
        except _Unusable as bad:
            moved = self._move_aside()
            prev = self._load_prev()
            if prev is not None:
                problem = StateError(
                    f"{self.path} is unusable: {bad.reason}; {bad.fix}. It was moved to {moved.name} and the "
                    f"previous good copy {self.prev_path.name} is used (the last change may be lost)",
                    path=self.path, moved_to=moved)
                self.last_problem = problem
                return LoadResult(prev, problem, self.prev_path)
            raise StateError(
                f"{self.path} is unusable: {bad.reason}; {bad.fix}. It was moved to {moved.name} and there is "
                f"no previous good copy; inspect it, or run again to start an empty queue",
                path=self.path, moved_to=moved) from None

    def _load_prev(self) -> QueueState | None:
        try:
            return _parse(self.prev_path.read_bytes())
        except (OSError, _Unusable):
            return None

    def _move_aside(self) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        for n in range(1000):
            target = self.dir / (f"{STATE_FILE}.damaged-{stamp}" + (f".{n}" if n else ""))
            try:
                os.link(self.path, target)  # never overwrites an earlier damaged copy
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                    raise StateError(f"cannot move damaged {self.path} aside: {exc.strerror}; "
                                     "check the folder's permissions", path=self.path) from exc
                if target.exists():
                    continue
                os.replace(self.path, target)  # no hard links here; the existence check above guards it
                fsync_dir(self.dir)
                return target
            os.unlink(self.path)
            fsync_dir(self.dir)
            return target
        raise StateError(f"cannot move damaged {self.path} aside (too many damaged copies); clean up "
                         f"{self.dir}", path=self.path)

    # ------------------------------------------------------------------------------------------------ saving
    def save(self, state: QueueState) -> Path:
        """Write ``state`` atomically, first keeping the current good file as ``state.json.prev``.

        Raises :class:`pfstui.infra.atomic.StateWriteError` (naming the file and the fix) on a full or read-only
        disk; the files on disk are then unchanged.
        """
        state.saved_at = now("microseconds")
        payload = (state.model_dump_json(indent=2) + "\n").encode("utf-8")
        try:
            current = self.path.read_bytes()
        except FileNotFoundError:
            current = None
        except OSError as exc:
            raise StateWriteError(self.path, exc) from exc
        if current is not None:
            try:
                _parse(current)
            except _Unusable:
                # Never let a damaged file become "previous good", and never overwrite it silently.
                self._move_aside()
            else:
                atomic_write_bytes(self.prev_path, current)
        return atomic_write_bytes(self.path, payload)

    def lock(self) -> SessionLock:
        """A new (unacquired) lock object for this session."""
        return SessionLock(self.lock_path)


class SessionLock:
    """Exclusive single-writer lock: ``fcntl.flock`` on ``<session>/lock``.

    The lock belongs to this object's open file (two objects conflict even inside one process) and is released
    by the kernel when the holder dies.  The holder writes its pid, host and start time into the file so a
    refused caller can say who holds it.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _open(self) -> int:
        make_session_dir(self.path.parent)
        return open_private(self.path, os.O_RDWR | os.O_CREAT)

    def _record_holder(self, fd: int) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "acquired_at": now("microseconds")}
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)

    def try_acquire(self) -> bool:
        """Take the lock if free; False (immediately) if another holder has it."""
        if self._fd is not None:
            return True
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        self._record_holder(fd)
        return True

    def acquire(self, timeout: float | None = None, interval: float = 0.05) -> None:
        """Block until the lock is ours (``timeout`` None = forever); :class:`StateLockedError` on timeout."""
        if self._fd is not None:
            return
        if timeout is None:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            self._record_holder(fd)
            return
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                raise StateLockedError(self._locked_message())
            time.sleep(interval)

    def acquire_or_raise(self) -> None:
        """Non-blocking acquire that raises :class:`StateLockedError` (naming the holder) when taken."""
        if not self.try_acquire():
            raise StateLockedError(self._locked_message())

    def holder(self) -> dict[str, Any] | None:
        """Who wrote the lock file last (pid, host, acquired_at), if readable."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _locked_message(self) -> str:
        who = self.holder()
        desc = f"pid {who.get('pid')} on {who.get('host')}" if who else "another process"
        return (f"session {self.path.parent} is in use by {desc} (lock {self.path}); attach to that supervisor "
                "or stop it first")

    def release(self) -> None:
        """Give the lock up (no-op if not held)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> SessionLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self.release()
