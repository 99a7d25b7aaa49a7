"""Append-only JSON-lines journal of operator actions (launch, kill, certify, clean, ...).

Why: actions against a shared Butler repository must be auditable after the fact ("who decertified what, when,
from which host"), even when several pfstui processes (UI, supervisor, CLI) append at the same time and one of
them dies mid-write.  Each entry is one line written with a single ``os.write`` on an ``O_APPEND`` descriptor and
fsynced, so concurrent writers never interleave and a crash can only leave a truncated *last* line, which
:meth:`Journal.read` skips and reports instead of failing.

A Butler change is journaled write-ahead, because the journal and the registry cannot be written atomically
together: :meth:`Journal.begin` appends an *intent* (the whole entry) before the registry commit and
:meth:`Journal.commit` a *commit* record naming it after; readers (:meth:`Journal.read`, and so ``pfstui
journal``, ``pfstui undo`` and the Certify pane) see the entry only once committed, at the commit's place.
An intent whose process died in between is *pending*; whoever next holds a Butler on that repository decides
from the registry whether the change is there (``pfstui.butler.reconcile``) and appends a commit marked
``reconciled`` or an *abort*.  So the journal never shows a change that did not happen and never misses one
that did.  Record format (``schema`` 2)::

    {"id": I, "ts", "user", "host", "pid", "record": "intent", "schema": 2, "process": {...}, ...the entry}
    {"id": C, ..., "record": "commit", "schema": 2, "intent": I, "reconciled": false, "note": ""}
    {"id": A, ..., "record": "abort", "schema": 2, "intent": I, "reason": "..."}

Lines without ``record`` are entries committed at once (every line written before schema 2, and the
queue's command entries, which change no registry).  A commit wins over an abort: the writer's own commit is
the truth, an abort only a reconciler's judgement.
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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from pfstui.errors import UserError
from pfstui.infra.atomic import StateWriteError, fsync_dir
from pfstui.infra.private import make_private_dir, open_private

__all__ = [
    "RECORD_SCHEMA",
    "RESERVED_KEYS",
    "Journal",
    "JournalEntry",
    "JournalError",
    "JournalProblem",
    "new_entry_id",
    "writer_alive",
]

#: Version of the write-ahead record format (the ``schema`` key of intent, commit and abort records).
RECORD_SCHEMA = 2
#: The identity every line carries.
IDENTITY_KEYS = frozenset({"id", "ts", "user", "host", "pid"})
#: Keys the journal sets itself; an entry passed to :meth:`Journal.append` or :meth:`Journal.begin` must not
#: contain them.
RESERVED_KEYS = IDENTITY_KEYS | {"record", "schema", "process"}
#: An intent written on another host cannot be checked for a live writer: it counts as in progress this long.
FOREIGN_GRACE_SECONDS = 3600.0

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
        data = {k: v for k, v in obj.items() if k not in IDENTITY_KEYS}
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


#: Intents this process wrote and has not yet committed or aborted: its own live transactions.
_in_flight: set[str] = set()
_proc_start: dict[int, float | None] = {}


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None if it is gone or a zombie."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc.create_time()
    except psutil.Error:
        return None


def _own_start() -> float | None:
    pid = os.getpid()
    if pid not in _proc_start:  # keyed by pid: a forked child is another process
        _proc_start[pid] = _process_start(pid)
    return _proc_start[pid]


def _age_seconds(ts: str) -> float:
    try:
        return (datetime.now(UTC) - datetime.fromisoformat(ts)).total_seconds()
    except (TypeError, ValueError):
        return float("inf")


def writer_alive(intent: JournalEntry) -> bool:
    """Whether the process that wrote ``intent`` may still commit it (then nobody else may decide it).

    Same host: that pid still runs and started when the intent says (a reused pid is another process); in
    this very process, only while the intent is in flight.  Another host: assumed alive for
    :data:`FOREIGN_GRACE_SECONDS` after the intent, as its processes cannot be seen from here.
    """
    if intent.host != _HOST:
        return _age_seconds(intent.ts) < FOREIGN_GRACE_SECONDS
    process = intent.data.get("process")
    started = process.get("start") if isinstance(process, dict) else None
    if not isinstance(started, (int, float)):
        started = None

    def same(now: float | None) -> bool:  # create times are exact to the clock tick; 1 s absorbs clock slew
        return started is None or now is None or abs(now - started) < 1.0

    if intent.pid == os.getpid() and same(_own_start()):
        return intent.id in _in_flight
    now = _process_start(intent.pid)
    return now is not None and same(now)


class Journal:
    """An append-only JSON-lines file; safe for concurrent appenders on one machine."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.problems: list[JournalProblem] = []  # problems found by the last read()

    # --- writing -----------------------------------------------------------------------------------------
    def append(self, entry: Mapping[str, Any]) -> JournalEntry:
        """Add ``entry`` (JSON-serialisable, without the reserved keys), committed at once, and return it.

        For what changes nothing the journal could be wrong about (a launch, a kill); a Butler change goes
        through :meth:`begin` and :meth:`commit`.  Raises :class:`JournalError` for bad input and
        :class:`pfstui.infra.atomic.StateWriteError` when the disk refuses the write.
        """
        return self._write(_checked(entry))

    def begin(self, entry: Mapping[str, Any]) -> JournalEntry:
        """Write the *intent* of a change (the whole entry), before the change is committed; return it.

        Readers see nothing of it until :meth:`commit`.  The intent counts as in flight (see
        :func:`writer_alive`) until :meth:`commit`, :meth:`abort` or :meth:`release`.
        """
        data = _checked(entry)
        record = self._write({"record": "intent", "schema": RECORD_SCHEMA,
                              "process": {"start": _own_start()}, **data})
        _in_flight.add(record.id)
        return record

    def commit(self, intent: JournalEntry, *, reconciled: bool = False, note: str = "") -> JournalEntry:
        """Make ``intent`` valid (its change is committed); return the entry readers now see.

        ``reconciled``: written by another process, which found the change in the registry.
        """
        try:
            record = self._write({"record": "commit", "schema": RECORD_SCHEMA, "intent": intent.id,
                                  "reconciled": bool(reconciled), "note": note})
        finally:
            self.release(intent)
        return _committed(intent, record)

    def abort(self, intent: JournalEntry, reason: str) -> JournalEntry:
        """Record that ``intent``'s change did not happen (rolled back, or not in the registry)."""
        try:
            return self._write({"record": "abort", "schema": RECORD_SCHEMA, "intent": intent.id,
                                "reason": reason})
        finally:
            self.release(intent)

    @staticmethod
    def release(intent: JournalEntry) -> None:
        """Stop counting ``intent`` as in flight: this process will neither commit nor abort it itself."""
        _in_flight.discard(intent.id)

    def _write(self, data: dict[str, Any]) -> JournalEntry:
        record = JournalEntry(id=new_entry_id(), ts=datetime.now(UTC).isoformat(timespec="microseconds"),
                              user=_user(), host=_HOST, pid=os.getpid(), data=data)
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

    # --- reading -----------------------------------------------------------------------------------------
    def records(self, problems: list[JournalProblem] | None = None) -> Iterator[JournalEntry]:
        """Every line as written (intents, commits and aborts too), skipping truncated or garbage lines."""
        return (record for _, record in self._lines(self._reporter(problems)))

    def read(self, problems: list[JournalProblem] | None = None) -> Iterator[JournalEntry]:
        """Iterate the committed entries in commit order, skipping (never raising on) damaged lines.

        Each skipped line is appended to ``problems`` when given, and to :attr:`problems` (reset per read).
        A missing journal reads as empty.
        """
        return self._fold(self._reporter(problems), None)

    def entries(self) -> tuple[list[JournalEntry], list[JournalProblem]]:
        """All committed entries and the problems met, in one call."""
        problems: list[JournalProblem] = []
        return list(self.read(problems)), problems

    def find(self, entry_id: str) -> JournalEntry | None:
        """The committed entry with this id, or None."""
        for entry in self.read():
            if entry.id == entry_id:
                return entry
        return None

    def pending(self) -> list[JournalEntry]:
        """Intents neither committed nor aborted (in progress, or left by a process that died), oldest first."""
        unresolved: dict[str, JournalEntry] = {}
        for _ in self._fold(self._reporter(None), unresolved):
            pass
        return list(unresolved.values())

    def orphans(self) -> list[JournalEntry]:
        """Pending intents whose writer is gone: someone with a Butler at hand must decide them."""
        return [intent for intent in self.pending() if not writer_alive(intent)]

    def _reporter(self, problems: list[JournalProblem] | None) -> Callable[[JournalProblem], None]:
        self.problems = []

        def report(problem: JournalProblem) -> None:
            self.problems.append(problem)
            if problems is not None:
                problems.append(problem)

        return report

    def _lines(self, report: Callable[[JournalProblem], None]) -> Iterator[tuple[int, JournalEntry]]:
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
                    yield number, JournalEntry.from_dict(obj)
                except (TypeError, ValueError):
                    report(JournalProblem(number, "malformed journal entry; skipped", excerpt))

    def _fold(self, report: Callable[[JournalProblem], None],
              unresolved: dict[str, JournalEntry] | None) -> Iterator[JournalEntry]:
        """Committed entries, each at its commit; ``unresolved`` gets the intents left without an outcome."""
        intents: dict[str, JournalEntry] = {}
        committed: set[str] = set()
        aborted: set[str] = set()
        for number, record in self._lines(report):
            kind = record.data.get("record")
            if kind is None:
                yield record
                continue
            schema = record.data.get("schema")
            if kind not in ("intent", "commit", "abort") or not isinstance(schema, int) or schema > RECORD_SCHEMA:
                report(JournalProblem(number, f"{kind!r} record of journal schema {schema!r} (written by a newer "
                                      "pfstui?); skipped", record.id))
                continue
            if kind == "intent":
                intents[record.id] = record
                continue
            target = str(record.data.get("intent", ""))
            if target not in intents:
                report(JournalProblem(number, f"{kind} of unknown entry {target}; skipped", record.id))
            elif kind == "abort":
                aborted.add(target)
            elif target not in committed:  # a second commit (two reconcilers at once) changes nothing
                committed.add(target)
                yield _committed(intents[target], record)
        if unresolved is not None:
            unresolved.update({i: e for i, e in intents.items() if i not in committed and i not in aborted})


def _checked(entry: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise JournalError(f"journal entry must be a dict, got {type(entry).__name__}; pass a dict")
    clash = sorted(RESERVED_KEYS.intersection(entry))
    if clash:
        raise JournalError(f"journal entry uses reserved key(s) {', '.join(clash)}; rename them")
    return dict(entry)


def _committed(intent: JournalEntry, commit: JournalEntry) -> JournalEntry:
    """The entry readers see: the intent's identity and data, and how it was committed."""
    data = {k: v for k, v in intent.data.items() if k != "record"}
    how: dict[str, Any] = {"id": commit.id, "ts": commit.ts, "reconciled": bool(commit.data.get("reconciled"))}
    if how["reconciled"]:
        how["by"] = f"{commit.user}@{commit.host}"
    if commit.data.get("note"):
        how["note"] = commit.data["note"]
    data["committed"] = how
    return JournalEntry(id=intent.id, ts=intent.ts, user=intent.user, host=intent.host, pid=intent.pid, data=data)


def default_journal() -> Journal:
    """The user's action journal: ``<state dir>/journal.jsonl`` (every command run and Butler change)."""
    from pfstui.infra.paths import state_dir

    return Journal(state_dir() / "journal.jsonl")
