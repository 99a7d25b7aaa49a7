"""Parse the output of ``pipetask run``, one line at a time, into typed events.

Why this exists: pfstui runs ``pipetask`` as a detached subprocess whose stdout/stderr go to a log file,
and the only live signal of what a stage is doing is that file.  How a record head looks (the layouts,
the level words) is :mod:`pfstui.pipetask_log.formats`'s business; this module knows what the messages
*say*.  A record can span several lines (the quantum-graph summary table follows its header line,
tracebacks follow ERROR records, exception messages may contain newlines, and a multiprocessing child
prints ``Process task-...:`` plus a bare traceback).  Any line that does not start a record continues the
previous one.

The message texts matched here are copied from the installed LSST 30.0.11 sources (pipe_base
``mp_graph_executor.py``, ``single_quantum_executor.py``, ``quantum_graph_builder.py``,
``all_dimensions_quantum_graph_builder.py``; ctrl_mpexec ``cli/utils.py``; daf_butler ``cli/utils.py``)
and from the v29 wording (``lsst.ctrl.mpexec.cmdLineFwk`` / ``mpGraphExecutor``), so a log from either
stack parses.

:class:`LogParser` is fed one line at a time with its byte offset and returns the events that became
complete.  Single-line messages (progress, quantum start/finish, multiprocess failures, blocked quanta)
are reported at once; records that may carry more lines (the graph table, task exceptions, tracebacks,
generic warnings/errors) are reported when the next record starts, when the table has all its rows, or
on :meth:`LogParser.flush` (call it once the process has exited).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from typing import Any

from pfstui.pipetask_log.data_id import safe_data_id, task_label
from pfstui.pipetask_log.events import (
    CliError,
    EmptyQuery,
    FailedJob,
    FailedJobs,
    FatalError,
    GraphSummary,
    LogMessage,
    NoQuanta,
    Progress,
    QuantumBlocked,
    QuantumFailed,
    QuantumFinished,
    QuantumNoWork,
    QuantumPrepared,
    QuantumSkipped,
    QuantumStarted,
    TaskDropped,
    TaskException,
    TaskQuantaGenerated,
)
from pfstui.pipetask_log.formats import LogRecordHead, parse_head, split_mdc_label

__all__ = ["LogParser"]

# Message patterns (source: LSST 30.0.11 and the v29 wording).
_DID = r"(\{.*\})"
_UUID = r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
_CONTINUE = r"; processing will continue for remaining tasks\."
_RE = {
    "summary": re.compile(
        r"^QuantumGraph contains (\d+) (?:quantum|quanta) for (\d+) tasks?(?:, graph ID: (.*?))?\s*$"
    ),
    "prepared": re.compile(rf"^Preparing execution of quantum for label=(\S+) dataId={_DID}\.$"),
    "started": re.compile(rf"^Constructing task and executing quantum for label=(\S+) dataId={_DID}\.$"),
    "finished": re.compile(rf"^Execution of task '(.+?)' on quantum {_DID} took (\d+(?:\.\d*)?) seconds$"),
    "skipped": re.compile(rf"^Skipping already-successful quantum for label=(\S+) dataId={_DID}\.$"),
    "nothing": re.compile(
        rf"^Nothing to do for task '(.+?)' on quantum {_DID}; saving metadata and skipping: (.*)$"
    ),
    "early": re.compile(rf"^Task '(.+?)' on quantum {_DID} exited early with no work found: (.*?)\.?$"),
    "task_exc": re.compile(rf"^Execution of task '(.+?)' on quantum {_DID} failed\. Exception (\S+?): ?(.*)$"),
    "progress": re.compile(
        r"^Executed (\d+) quanta successfully, (\d+) failed and (\d+) remain out of total (\d+) quanta\.$"
    ),
    "mp_fail": re.compile(
        rf"^Task <(.+?) dataId={_DID}> failed, (?:exit code=(-?\d+)|killed by signal (\d+)(?: \((.*?)\))?)"
        rf"(?:{_CONTINUE}|\.)?$"
    ),
    "timeout": re.compile(
        rf"^Timeout \((\S+) sec\) for task <(.+?) dataId={_DID}>(?:, task is killed)?(?:{_CONTINUE}|\.)?$"
    ),
    "sp_fail": re.compile(rf"^{_UUID} \((.+?)@{_DID}\) failed(?:{_CONTINUE}|; dropping into pdb\.)$"),
    "v29_fail": re.compile(rf"^Task <(.+?) dataId={_DID}> failed(?:{_CONTINUE}|; dropping into pdb\.|\.)$"),
    "fail_fast": re.compile(rf"^Quantum {_UUID} \((.+?)@{_DID}\) failed\.$"),
    "blocked_mp": re.compile(rf"^Upstream job failed for task <(.+?) dataId={_DID}>, skipping this task\.$"),
    "blocked_sp": re.compile(
        rf"^Upstream job failed for task {_UUID} \((.+?)@{_DID}\), skipping this quantum\.$"
    ),
    "failed_job": re.compile(rf"^\s*- (\w+): <(.+?) dataId={_DID}>$"),
    "generated": re.compile(r"^Generated (\d+) (?:quanta|quantum) for task (\S+?)(?: \((.*)\))?\.$"),
    "dropping": re.compile(r"^Dropping task (\S+?) because no quanta remain(?: \((.*)\))?\.$"),
    "table_row": re.compile(r"^\s*(\d+)\s+(\S+)\s*$"),
}
_NO_QUANTA = "QuantumGraph contains no quanta."
_FAILED_JOBS = "Failed jobs:"
_CAUGHT = "Caught an exception, details are in traceback:"
_EMPTY_QUERY = "Initial data ID query returned no rows, so QuantumGraph will be empty."
_TRACEBACK = "Traceback (most recent call last):"

#: Bounds on the lines kept for one record: a runaway record must not eat memory.  The head keeps the
#: start of a message, the tail keeps the end of a traceback (where the exception is).
_KEEP_HEAD = 200
_KEEP_TAIL = 800


def _exception_from_lines(lines: Iterable[str]) -> tuple[str | None, str]:
    """The final exception (class, message) of the last traceback in ``lines``; (None, '') if none.

    Python prints ``Traceback (most recent call last):``, indented frame lines, then ``Cls: message`` at
    column 0 (a message may continue on further lines).  Chained exceptions repeat this, so the last
    ``Traceback`` block holds the exception that ended the program.
    """
    lines = list(lines)
    start = None
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].lstrip().startswith(_TRACEBACK):
            start = i
            break
    if start is None:
        return None, ""
    i = start + 1
    while i < len(lines) and (not lines[i].strip() or lines[i][:1] in (" ", "\t")):
        i += 1
    if i >= len(lines):
        return None, ""
    first = lines[i]
    rest = lines[i + 1 :]
    while rest and not rest[-1].strip():
        rest.pop()
    if ": " in first:
        cls, msg = first.split(": ", 1)
    elif first.endswith(":"):
        cls, msg = first[:-1], ""
    else:
        cls, msg = first, ""
    cls = cls.strip()
    if not re.fullmatch(r"[\w.<>]+", cls):
        return None, "\n".join([first, *rest])
    return cls, "\n".join([msg, *rest]) if rest else msg


def _message_until_traceback(first: str, lines: list[str]) -> str:
    """A multi-line message: its first line plus continuation lines up to any traceback that follows."""
    out = [first]
    for ln in lines:
        if ln.startswith(_TRACEBACK) or ln.startswith("Process task-"):
            break
        out.append(ln)
    while len(out) > 1 and not out[-1].strip():
        out.pop()
    return "\n".join(out)

class _OpenRecord:
    """A record that may still receive continuation lines."""

    __slots__ = ("head", "kind", "match", "_lines", "_tail", "dropped", "table_rows")

    def __init__(self, head: LogRecordHead, kind: str, match: re.Match | None) -> None:
        self.head = head
        self.kind = kind
        self.match = match
        self._lines: list[str] = []
        self._tail: deque[str] = deque(maxlen=_KEEP_TAIL)
        self.dropped = 0
        self.table_rows: dict[str, int] = {}

    def add(self, line: str) -> None:
        if len(self._lines) < _KEEP_HEAD:
            self._lines.append(line)
        else:
            if len(self._tail) == self._tail.maxlen:
                self.dropped += 1
            self._tail.append(line)

    @property
    def lines(self) -> list[str]:
        if not self._tail:
            return self._lines
        # Indented, so it reads as part of a traceback's frames rather than as its exception line.
        gap = [f"    ... ({self.dropped} lines not kept) ..."] if self.dropped else []
        return [*self._lines, *gap, *self._tail]


class LogParser:
    """Stateful parser of a pipetask log, fed line by line (text or JSON-lines, both layouts).

    Call :meth:`feed` for every line in order with its byte offset, and :meth:`flush` when the log is
    complete (the process exited).  Between calls, :attr:`resume_offset` is the offset of the first
    line whose events are not yet out (an open record), so a caller that cannot keep this object can
    restart a fresh parser there without losing or repeating events.
    """

    def __init__(self) -> None:
        self._open: _OpenRecord | None = None
        self._failed_jobs: FailedJobs | None = None

    # -- public API ------------------------------------------------------------------------------

    @property
    def resume_offset(self) -> int | None:
        """Offset of the earliest line still held back in an open record (None: nothing held)."""
        offsets = []
        if self._failed_jobs is not None:
            offsets.append(self._failed_jobs.offset)
        if self._open is not None:
            offsets.append(self._open.head.offset)
        return min(offsets) if offsets else None

    def feed(self, line: str, offset: int) -> list[Any]:
        """Parse one line (with or without its newline) that starts at byte ``offset``."""
        line = line.rstrip("\r\n")
        events: list[Any] = []
        head = parse_head(line, offset)
        if head is not None:
            self._close(events)
            self._start(head, events)
            return events
        if line.startswith("Error: "):
            # click prints its errors bare on stderr (e.g. "QuantumGraph was empty; ...").
            self._close(events)
            self._close_failed_jobs(events)
            events.append(CliError(offset=offset, level="ERROR", logger="click", message=line[7:]))
            return events
        rec = self._open
        if rec is not None:
            if rec.kind == "summary":
                self._table_line(rec, line, events)
            else:
                rec.add(line)
        return events

    def feed_record(self, head: LogRecordHead) -> list[Any]:
        """Feed a record parsed elsewhere (e.g. by :func:`.formats.parse_json_record`)."""
        events: list[Any] = []
        self._close(events)
        self._start(head, events)
        return events

    def flush(self) -> list[Any]:
        """Close any open record and return its events (call at end of log)."""
        events: list[Any] = []
        self._close(events)
        self._close_failed_jobs(events)
        return events

    # -- internals -------------------------------------------------------------------------------

    def _base(self, head: LogRecordHead) -> dict[str, Any]:
        return {
            "offset": head.offset,
            "level": head.level,
            "logger": head.logger,
            "time": head.time,
            "mdc_label": head.mdc_label,
        }

    def _close_failed_jobs(self, events: list[Any]) -> None:
        if self._failed_jobs is not None:
            events.append(self._failed_jobs)
            self._failed_jobs = None

    def _start(self, head: LogRecordHead, events: list[Any]) -> None:
        msg = head.message
        b = self._base(head)
        extra = head.extra or []

        # The "Failed jobs:" list is a run of separate records; gather it until something else comes.
        if self._failed_jobs is not None:
            m = _RE["failed_job"].match(msg)
            if m:
                self._failed_jobs.jobs.append(FailedJob(m[1], task_label(m[2]), safe_data_id(m[3])))
                return
            self._close_failed_jobs(events)
        if msg == _FAILED_JOBS:
            self._failed_jobs = FailedJobs(**b)
            return

        # Records whose whole content is on this line: report at once.
        immediate = self._immediate(msg, b)
        if immediate is not None:
            events.append(immediate)
            return

        # Records that may carry more lines: keep them open.
        kind, match = self._deferred_kind(head)
        if kind is None:
            return  # an INFO/DEBUG line with nothing to report; its continuation lines are ignored
        rec = _OpenRecord(head, kind, match)
        self._open = rec
        if kind == "summary":
            for ln in extra:
                self._table_line(rec, ln, events)
                if self._open is not rec:
                    break
        else:
            for ln in extra:
                rec.add(ln)
        if head.extra is not None:
            # A JSON record arrives whole.
            self._close(events)

    def _immediate(self, msg: str, b: dict[str, Any]) -> Any | None:
        c = msg[:3]
        if c == "Exe":
            if m := _RE["progress"].match(msg):
                return Progress(**b, succeeded=int(m[1]), failed=int(m[2]), remaining=int(m[3]), total=int(m[4]))
            if m := _RE["finished"].match(msg):
                return QuantumFinished(**b, task=m[1], data_id=safe_data_id(m[2]), seconds=float(m[3]))
        elif c == "Pre":
            if m := _RE["prepared"].match(msg):
                return QuantumPrepared(**b, task=m[1], data_id=safe_data_id(m[2]))
        elif c == "Con":
            if m := _RE["started"].match(msg):
                return QuantumStarted(**b, task=m[1], data_id=safe_data_id(m[2]))
        elif c == "Ski":
            if m := _RE["skipped"].match(msg):
                return QuantumSkipped(**b, task=m[1], data_id=safe_data_id(m[2]))
        elif c == "Not":
            if m := _RE["nothing"].match(msg):
                return QuantumNoWork(**b, task=m[1], data_id=safe_data_id(m[2]), reason=m[3], terminal=True)
        elif c == "Tas":
            if m := _RE["early"].match(msg):
                return QuantumNoWork(**b, task=m[1], data_id=safe_data_id(m[2]), reason=m[3], terminal=False)
            if m := _RE["mp_fail"].match(msg):
                return self._mp_failed(b, m)
        elif c == "Tim":
            if m := _RE["timeout"].match(msg):
                try:
                    seconds: float | None = float(m[1])
                except ValueError:
                    seconds = None
                return QuantumFailed(
                    **b, task=task_label(m[2]), data_id=safe_data_id(m[3]), form="timeout",
                    timeout=seconds, message=f"timed out after {m[1]} sec and was killed",
                )
        elif c == "Ups":
            if m := _RE["blocked_mp"].match(msg):
                return QuantumBlocked(**b, task=task_label(m[1]), data_id=safe_data_id(m[2]))
            if m := _RE["blocked_sp"].match(msg):
                return QuantumBlocked(**b, task=m[2], data_id=safe_data_id(m[3]), quantum_id=m[1])
        elif c == "Gen":
            if m := _RE["generated"].match(msg):
                return TaskQuantaGenerated(**b, task=m[2], count=int(m[1]), note=m[3] or "")
        elif c == "Dro":
            if m := _RE["dropping"].match(msg):
                return TaskDropped(**b, task=m[1], note=m[2] or "")
        elif msg == _NO_QUANTA:
            return NoQuanta(**b)
        return None

    @staticmethod
    def _mp_failed(b: dict[str, Any], m: re.Match, form: str = "multiprocess") -> QuantumFailed:
        text = m[0]
        reason = text[text.index("> failed, ") + 10 :]
        for suffix in ("; processing will continue for remaining tasks.", "."):
            if reason.endswith(suffix):
                reason = reason[: -len(suffix)]
                break
        return QuantumFailed(
            **b,
            task=task_label(m[1]),
            data_id=safe_data_id(m[2]),
            form=form,
            exit_code=int(m[3]) if m[3] is not None else None,
            signal=int(m[4]) if m[4] is not None else None,
            signal_name=m[5],
            message=reason,
        )

    def _deferred_kind(self, head: LogRecordHead) -> tuple[str | None, re.Match | None]:
        msg = head.message
        if msg.startswith("QuantumGraph contains"):
            m = _RE["summary"].match(msg)
            if m:
                return "summary", m
        if msg.startswith("Execution of task"):
            m = _RE["task_exc"].match(msg)
            if m:
                return "task_exc", m
        if msg == _CAUGHT:
            return "fatal", None
        if msg.startswith(_EMPTY_QUERY):
            return "empty_query", None
        m = _RE["sp_fail"].match(msg)
        if m:
            return "sp_fail", m
        if msg.startswith("Task <"):
            m = _RE["v29_fail"].match(msg)
            if m:
                return "v29_fail", m
        if head.levelno >= 30:
            return "generic", None
        return None, None

    def _table_line(self, rec: _OpenRecord, line: str, events: list[Any]) -> None:
        """Add one line to an open quantum-graph summary; close it when all rows are in."""
        m = _RE["table_row"].match(line)
        stripped = line.strip()
        if m:
            rec.table_rows[m[2]] = int(m[1])
        elif not stripped or stripped.startswith("Quanta") or set(stripped) <= {"-", " "}:
            return  # column titles, separator
        else:
            self._close(events)  # not a table line: the table is over
            return
        n_tasks = int(rec.match[2]) if rec.match else 0
        if len(rec.table_rows) >= n_tasks:
            self._close(events)

    def _close(self, events: list[Any]) -> None:
        rec = self._open
        if rec is None:
            return
        self._open = None
        head, m, lines = rec.head, rec.match, rec.lines
        b = self._base(head)
        if rec.kind == "summary":
            assert m is not None
            gid = m[3]
            if gid is not None:
                gid = gid.strip()
                q = gid[:1]
                if q in "'\"" and len(gid) > 1:
                    end = gid.find(q, 1)
                    gid = gid[1:end] if end > 0 else gid[1:]
            events.append(GraphSummary(**b, total=int(m[1]), task_count=int(m[2]), tasks=dict(rec.table_rows),
                                       graph_id=gid))
        elif rec.kind == "task_exc":
            assert m is not None
            events.append(
                TaskException(**b, task=m[1], data_id=safe_data_id(m[2]), exception_class=m[3],
                              message=_message_until_traceback(m[4], lines))
            )
        elif rec.kind == "fatal":
            cls, msg = _exception_from_lines(lines)
            events.append(FatalError(**b, exception_class=cls, message=msg, traceback=list(lines)))
            failed = self._fail_fast_failure(b, msg)
            if failed is not None:
                events.append(failed)
        elif rec.kind == "empty_query":
            events.append(EmptyQuery(**b, message=head.message, explanation=list(lines)))
        elif rec.kind in ("sp_fail", "v29_fail"):
            assert m is not None
            cls, msg = _exception_from_lines(lines)
            if rec.kind == "sp_fail":
                ev = QuantumFailed(**b, task=m[2], data_id=safe_data_id(m[3]), form="single", quantum_id=m[1],
                                   exception_class=cls, message=msg)
            else:
                ev = QuantumFailed(**b, task=task_label(m[1]), data_id=safe_data_id(m[2]), form="v29",
                                   exception_class=cls, message=msg)
            events.append(ev)
        elif rec.kind == "generic":
            task, did = split_mdc_label(head.mdc_label)
            events.append(LogMessage(**b, message=head.message, lines=list(lines), task=task, data_id=did))

    def _fail_fast_failure(self, b: dict[str, Any], msg: str) -> QuantumFailed | None:
        """With --fail-fast the failed quantum is named only in the final exception message."""
        first = msg.split("\n", 1)[0].strip()
        if m := _RE["fail_fast"].match(first):
            return QuantumFailed(**b, task=m[2], data_id=safe_data_id(m[3]), form="fail_fast", quantum_id=m[1],
                                 message=first)
        if m := _RE["mp_fail"].match(first):
            return self._mp_failed(b, m, form="fail_fast")
        if m := _RE["v29_fail"].match(first):
            return QuantumFailed(**b, task=task_label(m[1]), data_id=safe_data_id(m[2]), form="fail_fast",
                                 message=first)
        if m := _RE["timeout"].match(first):
            return QuantumFailed(**b, task=task_label(m[2]), data_id=safe_data_id(m[3]), form="fail_fast",
                                 message=f"timed out after {m[1]} sec and was killed")
        return None
