"""Append-only JSON-lines journal of operator actions (launch, kill, certify, clean, ...).

Why: actions against a shared Butler repository must be auditable after the fact ("who decertified what, when,
from which host"), even when several pfstui processes (UI, supervisor, CLI) append at the same time and one of
them dies mid-write.  Each entry is one line written with a single ``os.write`` on an ``O_APPEND`` descriptor and
fsynced, so concurrent writers never interleave and a crash can only leave a truncated *last* line, which
:meth:`Journal.read` skips and reports instead of failing.
"""

from __future__ import annotations

import getpass
import hashlib
import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pfstui.errors import UserError
from pfstui.infra.atomic import StateWriteError, fsync_dir
from pfstui.infra.private import make_private_dir, open_private

__all__ = ["Journal", "JournalEntry", "JournalProblem", "JournalError", "RESERVED_KEYS", "new_entry_id"]

#: Keys the journal sets itself; an entry passed to :meth:`Journal.append` must not contain them.
RESERVED_KEYS = frozenset({"id", "ts", "user", "host", "pid"})

_counter = itertools.count(1)
_id_lock = threading.Lock()
_last_ns = 0
_HOST = socket.gethostname()
_HOST_TAG = hashlib.sha1(_HOST.encode(), usedforsecurity=False).hexdigest()[:6]


class JournalError(UserError):
    """An entry could not be journaled; ``str()`` names the problem and the fix."""


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry / no env: fall back to the uid
        return str(os.getuid())


def new_entry_id() -> str:
    """A unique, time-ordered id: ``<ns since epoch, 19 digits>-<host tag>-<pid>-<counter>``.

    Strictly increasing within a process (even if the wall clock steps back); unique across processes and hosts
    sharing a journal on a network file system thanks to host tag + pid.
    """
    global _last_ns
    with _id_lock:
        ns = max(time.time_ns(), _last_ns + 1)
        _last_ns = ns
        n = next(_counter)
    return f"{ns:019d}-{_HOST_TAG}-{os.getpid()}-{n}"


@dataclass(frozen=True)
class JournalEntry:
    """One journal line: the journal's own fields plus the caller's ``data``."""

    id: str
    ts: str
    user: str
    host: str
    pid: int
    data: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON object as stored on disk."""
        return {"id": self.id, "ts": self.ts, "user": self.user, "host": self.host, "pid": self.pid,
                **self.data}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> JournalEntry:
        data = {k: v for k, v in obj.items() if k not in RESERVED_KEYS}
        return cls(id=str(obj["id"]), ts=str(obj["ts"]), user=str(obj.get("user", "")),
                   host=str(obj.get("host", "")), pid=int(obj.get("pid", 0) or 0), data=data)


@dataclass(frozen=True)
class JournalProblem:
    """A line :meth:`Journal.read` skipped: its 1-based number, why, and the start of its text."""

    line: int
    reason: str
    excerpt: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class Journal:
    """An append-only JSON-lines file; safe for concurrent appenders on one machine."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.problems: list[JournalProblem] = []  # problems found by the last read()

    def append(self, entry: Mapping[str, Any]) -> JournalEntry:
        """Add ``entry`` (JSON-serialisable, without the reserved keys) and return it with id/ts/user/host.

        Raises :class:`JournalError` for bad input and :class:`pfstui.infra.atomic.StateWriteError` when the disk
        refuses the write.
        """
        if not isinstance(entry, Mapping):
            raise JournalError(f"journal entry must be a dict, got {type(entry).__name__}; pass a dict")
        clash = sorted(RESERVED_KEYS.intersection(entry))
        if clash:
            raise JournalError(f"journal entry uses reserved key(s) {', '.join(clash)}; rename them")
        record = JournalEntry(id=new_entry_id(), ts=datetime.now(UTC).isoformat(timespec="microseconds"),
                              user=_user(), host=_HOST, pid=os.getpid(), data=dict(entry))
        try:
            line = json.dumps(record.to_dict(), ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise JournalError(f"journal entry is not JSON-serialisable ({exc}); pass plain str/int/list/dict "
                               "values") from exc
        payload = (line + "\n").encode("utf-8")
        try:
            if not self.path.parent.is_dir():
                make_private_dir(self.path.parent)
            created = not self.path.exists()
            fd = open_private(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
            try:
                size = os.fstat(fd).st_size
                # A crash may have left a last line without its newline: start on a fresh line so this entry
                # is not glued onto the garbage.
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    payload = b"\n" + payload
                written = os.write(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                fsync_dir(self.path.parent)
        except OSError as exc:
            raise StateWriteError(self.path, exc) from exc
        if written != len(payload):
            raise StateWriteError(self.path, OSError(28, "short write to the journal (disk full?)"))
        return record

    def read(self, problems: list[JournalProblem] | None = None) -> Iterator[JournalEntry]:
        """Iterate entries in file order, skipping (never raising on) truncated or garbage lines.

        Each skipped line is appended to ``problems`` when given, and to :attr:`problems` (reset per read).
        A missing journal reads as empty.
        """
        self.problems = []

        def report(problem: JournalProblem) -> None:
            self.problems.append(problem)
            if problems is not None:
                problems.append(problem)

        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        with handle:
            for number, raw in enumerate(handle, start=1):
                complete = raw.endswith(b"\n")
                text = raw.rstrip(b"\r\n")
                if not text.strip():
                    continue
                excerpt = text[:80].decode("utf-8", errors="replace")
                try:
                    obj = json.loads(text.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    reason = ("truncated last line (an interrupted write); ignored" if not complete
                              else "not valid JSON; skipped")
                    report(JournalProblem(number, reason, excerpt))
                    continue
                if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or "ts" not in obj:
                    report(JournalProblem(number, "not a journal entry (no id/ts); skipped", excerpt))
                    continue
                try:
                    yield JournalEntry.from_dict(obj)
                except (TypeError, ValueError):
                    report(JournalProblem(number, "malformed journal entry; skipped", excerpt))

    def entries(self) -> tuple[list[JournalEntry], list[JournalProblem]]:
        """All entries and the problems met, in one call."""
        problems: list[JournalProblem] = []
        return list(self.read(problems)), problems

    def find(self, entry_id: str) -> JournalEntry | None:
        """The entry with this id, or None."""
        for entry in self.read():
            if entry.id == entry_id:
                return entry
        return None


def default_journal() -> Journal:
    """The user's action journal: ``<state dir>/journal.jsonl`` (every command run and Butler change)."""
    from pfstui.infra.paths import state_dir

    return Journal(state_dir() / "journal.jsonl")
