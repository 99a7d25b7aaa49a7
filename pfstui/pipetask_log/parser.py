"""Parse the output of ``pipetask run`` into typed events and a live per-task progress aggregate.

Why this exists: pfstui runs ``pipetask`` as a detached subprocess whose stdout/stderr go to a log file,
and the only live signal of what a stage is doing is that file.  The LSST middleware writes plain
``logging`` records (daf_butler ``cli/cliLog.py``) in one of two layouts:

* default:      ``{name} {levelname}: {message}``
* ``--long-log``: ``{levelname} {asctime} {name} ({MDC[LABEL]})({filename}:{lineno}) - {message}``

and, with ``--log-file X.json``, one JSON ``ButlerLogRecord`` per line.  A record can span several lines
(the quantum-graph summary table follows its header line, tracebacks follow ERROR records, exception
messages may contain newlines, and a multiprocessing child prints ``Process task-...:`` plus a bare
traceback).  Any line that does not start a record continues the previous one.

The message texts matched here are copied from the installed LSST 30.0.11 sources (pipe_base
``mp_graph_executor.py``, ``single_quantum_executor.py``, ``quantum_graph_builder.py``,
``all_dimensions_quantum_graph_builder.py``; ctrl_mpexec ``cli/utils.py``; daf_butler ``cli/utils.py``)
and from the v29 wording (``lsst.ctrl.mpexec.cmdLineFwk`` / ``mpGraphExecutor``), so a log from either
stack parses.

Design:

* :class:`LogParser` is fed one line at a time with its byte offset and returns the events that became
  complete.  Single-line messages (progress, quantum start/finish, multiprocess failures, blocked quanta)
  are reported at once; records that may carry more lines (the graph table, task exceptions, tracebacks,
  generic warnings/errors) are reported when the next record starts, when the table has all its rows,
  or on :meth:`LogParser.flush` (call it once the process has exited).
* :class:`StageProgress` folds events into per-task counts in O(1) per event and round-trips through a
  plain dict (it is saved in a JSON state file).
* :func:`scan_file` reads a growing log incrementally from a byte offset in bounded chunks and never
  consumes a line that has no newline yet.
* :func:`read_summary` reads a ``pipetask run --summary FILE.json`` report, returning ``None`` for a
  missing or half-written file.
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "PROGRESS_SCHEMA",
    "CliError",
    "EmptyQuery",
    "Event",
    "FailedJob",
    "FailedJobs",
    "Failure",
    "FatalError",
    "GraphSummary",
    "LogMessage",
    "LogParseError",
    "LogParser",
    "LogRecordHead",
    "NoQuanta",
    "Progress",
    "ProgressStateError",
    "QuantumBlocked",
    "QuantumEvent",
    "QuantumFailed",
    "QuantumFinished",
    "QuantumNoWork",
    "QuantumPrepared",
    "QuantumSkipped",
    "QuantumStarted",
    "RunSummary",
    "StageProgress",
    "SummaryTaskCounts",
    "TaskDropped",
    "TaskException",
    "TaskProgress",
    "TaskQuantaGenerated",
    "data_id_key",
    "parse_data_id",
    "parse_json_record",
    "read_summary",
    "scan_file",
]


class LogParseError(Exception):
    """A log file cannot be scanned as asked; str() names the problem and the fix."""


class ProgressStateError(ValueError):
    """A saved StageProgress dict is not one this version can load; str() says what to do."""


# --------------------------------------------------------------------------------------------------
# Data IDs
# --------------------------------------------------------------------------------------------------

DataIdValue = int | float | str | bool | None


def parse_data_id(text: str) -> dict[str, DataIdValue]:
    """Parse a printed DataCoordinate such as ``{instrument: 'PFS', arm: 'r', spectrograph: 1}``.

    The middleware prints data IDs as ``{key: repr(value), ...}`` (daf_butler ``_coordinate.py``), which
    is not JSON nor a Python literal (keys are bare).  Values are read as Python literals (ints, floats,
    quoted strings with escapes); anything unreadable is kept as its raw text rather than failing, since a
    log line must never break the parser.  ``{}`` gives an empty dict.
    """
    s = text.strip()
    if not (s.startswith("{") and s.endswith("}")):
        raise ValueError(f"not a data ID (expected '{{key: value, ...}}'): {text!r}")
    out: dict[str, DataIdValue] = {}
    i, n = 1, len(s) - 1
    while i < n:
        while i < n and s[i] in " ,":
            i += 1
        if i >= n:
            break
        colon = s.find(":", i)
        if colon < 0:
            raise ValueError(f"not a data ID (a key has no ':'): {text!r}")
        key = s[i:colon].strip()
        i = colon + 1
        while i < n and s[i] == " ":
            i += 1
        if i < n and s[i] in "'\"":
            quote = s[i]
            j = i + 1
            while j < n and s[j] != quote:
                j += 2 if s[j] == "\\" else 1
            raw = s[i : j + 1]
            i = j + 1
        else:
            j = i
            while j < n and s[j] != ",":
                j += 1
            raw = s[i:j].strip()
            i = j
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = raw
        if not isinstance(value, int | float | str | bool | type(None)):
            value = raw
        out[key] = value
    return out


def data_id_key(task: str, data_id: dict[str, Any]) -> str:
    """A stable string identifying one quantum (task label + data ID), used to de-duplicate reports.

    The same failure is reported up to three times (task exception, executor failure, final
    ``Failed jobs:`` list); all print the same ``quantum.dataId`` so the keys agree.
    """
    return task + "@" + ",".join(f"{k}={data_id[k]!r}" for k in sorted(data_id))


def _safe_data_id(text: str) -> dict[str, DataIdValue]:
    try:
        return parse_data_id(text)
    except ValueError:
        return {"_raw": text}


def _task_label(text: str) -> str:
    """Task label from ``<label dataId=...>``; very old stacks printed a TaskDef repr there."""
    text = text.strip()
    if text.startswith("TaskDef("):
        m = re.search(r"label=([^,)\s]+)", text)
        if m:
            return m.group(1)
    return text


# --------------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Event:
    """Something the log said.  ``offset`` is the byte offset of the line that starts the record."""

    offset: int
    level: str = ""
    logger: str = ""
    time: str | None = None
    #: The MDC LABEL of a --long-log / JSON record: ``<taskLabel>:<dataId>`` inside a quantum.
    mdc_label: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form with a ``type`` key (for logging, tests and UIs)."""
        d = asdict(self)
        d["type"] = type(self).__name__
        return d


@dataclass(kw_only=True)
class QuantumEvent(Event):
    """An event about one quantum: its task label and data ID."""

    task: str
    data_id: dict[str, DataIdValue]

    @property
    def key(self) -> str:
        return data_id_key(self.task, self.data_id)


@dataclass(kw_only=True)
class GraphSummary(Event):
    """``QuantumGraph contains N quanta for M tasks[, graph ID: '...']`` plus its table."""

    total: int
    task_count: int
    tasks: dict[str, int] = field(default_factory=dict)
    graph_id: str | None = None  #: only the v29 (cmdLineFwk) form has it


@dataclass(kw_only=True)
class NoQuanta(Event):
    """``QuantumGraph contains no quanta.`` (v30) -- the run stops with 'QuantumGraph was empty'."""

    message: str = "QuantumGraph contains no quanta."


@dataclass(kw_only=True)
class EmptyQuery(Event):
    """ERROR ``Initial data ID query returned no rows, so QuantumGraph will be empty.`` + explanation."""

    message: str
    explanation: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class CliError(Event):
    """A click error printed without a log prefix, e.g. ``Error: QuantumGraph was empty; ...``."""

    message: str


@dataclass(kw_only=True)
class TaskQuantaGenerated(Event):
    """``Generated N quanta for task X[ (...)].`` from the graph builder."""

    task: str
    count: int
    note: str = ""


@dataclass(kw_only=True)
class TaskDropped(Event):
    """``Dropping task X because no quanta remain[ (...)].`` from the graph builder."""

    task: str
    note: str = ""


@dataclass(kw_only=True)
class QuantumPrepared(QuantumEvent):
    """``Preparing execution of quantum for label=X dataId={...}.`` -- the quantum is now running."""


@dataclass(kw_only=True)
class QuantumStarted(QuantumEvent):
    """``Constructing task and executing quantum for label=X dataId={...}.``"""


@dataclass(kw_only=True)
class QuantumFinished(QuantumEvent):
    """``Execution of task 'X' on quantum {...} took S seconds`` -- success."""

    seconds: float


@dataclass(kw_only=True)
class QuantumSkipped(QuantumEvent):
    """``Skipping already-successful quantum for label=X dataId={...}.`` (counts as done)."""


@dataclass(kw_only=True)
class QuantumNoWork(QuantumEvent):
    """No work for a quantum.

    ``terminal`` is True for ``Nothing to do for task ... saving metadata and skipping`` (the quantum ends
    here, counted as done) and False for ``... exited early with no work found`` (a ``took`` line follows).
    """

    reason: str
    terminal: bool


@dataclass(kw_only=True)
class Progress(Event):
    """``Executed N quanta successfully, F failed and R remain out of total T quanta.``

    ``failed`` includes quanta blocked by an upstream failure (they are counted as failed by the executor).
    """

    succeeded: int
    failed: int
    remaining: int
    total: int


@dataclass(kw_only=True)
class TaskException(QuantumEvent):
    """``Execution of task 'X' on quantum {...} failed. Exception Cls: message`` (may be multi-line)."""

    exception_class: str
    message: str


@dataclass(kw_only=True)
class QuantumFailed(QuantumEvent):
    """The executor reports a failed quantum.

    ``form`` says which wording: ``multiprocess`` (``Task <X dataId={...}> failed, exit code=N`` or
    ``killed by signal N (name)``), ``timeout``, ``single`` (v30 ``<uuid> (X@{...}) failed``), ``v29``
    (``Task <X dataId={...}> failed; ...``), ``fail_fast`` (found in the final exception message).
    The exception fields come from a following traceback when there is one.
    """

    form: str
    quantum_id: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    signal_name: str | None = None
    timeout: float | None = None
    exception_class: str | None = None
    message: str = ""


@dataclass(kw_only=True)
class QuantumBlocked(QuantumEvent):
    """``Upstream job failed for task <X dataId={...}>, skipping this task.`` (or the v30 uuid form)."""

    quantum_id: str | None = None


@dataclass
class FailedJob:
    """One ``  - STATE: <X dataId={...}>`` entry of the final ``Failed jobs:`` list."""

    state: str  #: FAILED, TIMED_OUT or FAILED_DEP
    task: str
    data_id: dict[str, DataIdValue]

    @property
    def key(self) -> str:
        return data_id_key(self.task, self.data_id)


@dataclass(kw_only=True)
class FailedJobs(Event):
    """The final ``Failed jobs:`` list of multiprocess mode, gathered from its item records."""

    jobs: list[FailedJob] = field(default_factory=list)


@dataclass(kw_only=True)
class FatalError(Event):
    """``Caught an exception, details are in traceback:`` and the final exception of that traceback.

    The command then exits with status 1.
    """

    exception_class: str | None
    message: str
    traceback: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class LogMessage(Event):
    """Any other WARNING/ERROR/CRITICAL record; ``task``/``data_id`` come from the MDC label if any."""

    message: str
    lines: list[str] = field(default_factory=list)
    task: str | None = None
    data_id: dict[str, DataIdValue] | None = None

    @property
    def text(self) -> str:
        return "\n".join([self.message, *self.lines])


# --------------------------------------------------------------------------------------------------
# Record heads (one per log record) and their recognition
# --------------------------------------------------------------------------------------------------

_LEVELS = r"(?:CRITICAL|ERROR|WARNING|INFO|VERBOSE|DEBUG|TRACE|FATAL|WARN|Level \d+)"
_LONG_RE = re.compile(
    rf"^(?P<level>{_LEVELS}) (?P<time>\S+) (?P<name>\S+) \((?P<label>.*?)\)"
    r"\((?P<file>[^()]*?):(?P<lineno>\d+)\) - (?P<msg>.*)$"
)
_SHORT_RE = re.compile(rf"^(?P<name>[A-Za-z_][\w.\-]*) (?P<level>{_LEVELS}): (?P<msg>.*)$")
_LEVEL_RANK = {"TRACE": 5, "DEBUG": 10, "VERBOSE": 15, "INFO": 20, "WARNING": 30, "WARN": 30,
               "ERROR": 40, "CRITICAL": 50, "FATAL": 50}


@dataclass
class LogRecordHead:
    """The first line of one log record, split into its fields (``message`` is that line's text)."""

    offset: int
    level: str
    logger: str
    message: str
    time: str | None = None
    mdc_label: str = ""
    filename: str | None = None
    lineno: int | None = None
    #: Extra lines already known (JSON records carry their whole message and traceback).
    extra: list[str] | None = None

    @property
    def levelno(self) -> int:
        if self.level.startswith("Level "):
            try:
                return int(self.level[6:])
            except ValueError:
                return 0
        return _LEVEL_RANK.get(self.level, 0)


def _parse_head(line: str, offset: int) -> LogRecordHead | None:
    c = line[:1]
    if c in "CEWIVDTFL":
        m = _LONG_RE.match(line)
        if m:
            return LogRecordHead(
                offset=offset,
                level=m["level"],
                logger=m["name"],
                message=m["msg"],
                time=m["time"],
                mdc_label=m["label"],
                filename=m["file"],
                lineno=int(m["lineno"]),
            )
    m = _SHORT_RE.match(line)
    if m:
        return LogRecordHead(offset=offset, level=m["level"], logger=m["name"], message=m["msg"])
    return None


def parse_json_record(line: str, offset: int = 0) -> LogRecordHead | None:
    """Parse one line of a ``--log-file X.json`` log (a daf_butler ``ButlerLogRecord``).

    Returns None for anything that is not such a record (blank, truncated, or other JSON), so a
    half-written last line is simply not a record yet.  The message's extra lines and the ``exc_info``
    traceback become :attr:`LogRecordHead.extra`, exactly as the text formats would show them.
    """
    s = line.strip()
    if not s.startswith("{"):
        return None
    try:
        d = json.loads(s)
    except (ValueError, RecursionError):
        return None
    if not isinstance(d, dict) or not isinstance(d.get("message"), str) or not isinstance(d.get("name"), str):
        return None
    level = d.get("levelname")
    if not isinstance(level, str):
        levelno = d.get("levelno")
        level = next((k for k, v in _LEVEL_RANK.items() if v == levelno), f"Level {levelno}")
    mdc = d.get("MDC") if isinstance(d.get("MDC"), dict) else {}
    lines = d["message"].split("\n")
    extra = lines[1:]
    exc = d.get("exc_info")
    if isinstance(exc, str) and exc:
        extra.extend(exc.rstrip("\n").split("\n"))
    lineno = d.get("lineno")
    return LogRecordHead(
        offset=offset,
        level=level,
        logger=d["name"],
        message=lines[0],
        time=str(d["asctime"]) if d.get("asctime") is not None else None,
        mdc_label=str(mdc.get("LABEL", "")),
        filename=d.get("filename") if isinstance(d.get("filename"), str) else None,
        lineno=lineno if isinstance(lineno, int) else None,
        extra=extra,
    )


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


def _split_mdc_label(label: str) -> tuple[str | None, dict[str, DataIdValue] | None]:
    if not label:
        return None, None
    task, sep, rest = label.partition(":")
    if sep and rest.startswith("{"):
        return task, _safe_data_id(rest)
    return label, None


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
        head = _parse_head(line, offset)
        if head is None and line.startswith("{") and '"levelname"' in line:
            head = parse_json_record(line, offset)
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
        """Feed a record parsed elsewhere (e.g. by :func:`parse_json_record`)."""
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
                self._failed_jobs.jobs.append(FailedJob(m[1], _task_label(m[2]), _safe_data_id(m[3])))
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
                return QuantumFinished(**b, task=m[1], data_id=_safe_data_id(m[2]), seconds=float(m[3]))
        elif c == "Pre":
            if m := _RE["prepared"].match(msg):
                return QuantumPrepared(**b, task=m[1], data_id=_safe_data_id(m[2]))
        elif c == "Con":
            if m := _RE["started"].match(msg):
                return QuantumStarted(**b, task=m[1], data_id=_safe_data_id(m[2]))
        elif c == "Ski":
            if m := _RE["skipped"].match(msg):
                return QuantumSkipped(**b, task=m[1], data_id=_safe_data_id(m[2]))
        elif c == "Not":
            if m := _RE["nothing"].match(msg):
                return QuantumNoWork(**b, task=m[1], data_id=_safe_data_id(m[2]), reason=m[3], terminal=True)
        elif c == "Tas":
            if m := _RE["early"].match(msg):
                return QuantumNoWork(**b, task=m[1], data_id=_safe_data_id(m[2]), reason=m[3], terminal=False)
            if m := _RE["mp_fail"].match(msg):
                return self._mp_failed(b, m)
        elif c == "Tim":
            if m := _RE["timeout"].match(msg):
                try:
                    seconds: float | None = float(m[1])
                except ValueError:
                    seconds = None
                return QuantumFailed(
                    **b, task=_task_label(m[2]), data_id=_safe_data_id(m[3]), form="timeout",
                    timeout=seconds, message=f"timed out after {m[1]} sec and was killed",
                )
        elif c == "Ups":
            if m := _RE["blocked_mp"].match(msg):
                return QuantumBlocked(**b, task=_task_label(m[1]), data_id=_safe_data_id(m[2]))
            if m := _RE["blocked_sp"].match(msg):
                return QuantumBlocked(**b, task=m[2], data_id=_safe_data_id(m[3]), quantum_id=m[1])
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
            task=_task_label(m[1]),
            data_id=_safe_data_id(m[2]),
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
                TaskException(**b, task=m[1], data_id=_safe_data_id(m[2]), exception_class=m[3],
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
                ev = QuantumFailed(**b, task=m[2], data_id=_safe_data_id(m[3]), form="single", quantum_id=m[1],
                                   exception_class=cls, message=msg)
            else:
                ev = QuantumFailed(**b, task=_task_label(m[1]), data_id=_safe_data_id(m[2]), form="v29",
                                   exception_class=cls, message=msg)
            events.append(ev)
        elif rec.kind == "generic":
            task, did = _split_mdc_label(head.mdc_label)
            events.append(LogMessage(**b, message=head.message, lines=list(lines), task=task, data_id=did))

    def _fail_fast_failure(self, b: dict[str, Any], msg: str) -> QuantumFailed | None:
        """With --fail-fast the failed quantum is named only in the final exception message."""
        first = msg.split("\n", 1)[0].strip()
        if m := _RE["fail_fast"].match(first):
            return QuantumFailed(**b, task=m[2], data_id=_safe_data_id(m[3]), form="fail_fast", quantum_id=m[1],
                                 message=first)
        if m := _RE["mp_fail"].match(first):
            return self._mp_failed(b, m, form="fail_fast")
        if m := _RE["v29_fail"].match(first):
            return QuantumFailed(**b, task=_task_label(m[1]), data_id=_safe_data_id(m[2]), form="fail_fast",
                                 message=first)
        if m := _RE["timeout"].match(first):
            return QuantumFailed(**b, task=_task_label(m[2]), data_id=_safe_data_id(m[3]), form="fail_fast",
                                 message=f"timed out after {m[1]} sec and was killed")
        return None


# --------------------------------------------------------------------------------------------------
# Incremental file scanning
# --------------------------------------------------------------------------------------------------

DEFAULT_CHUNK = 1 << 16


def scan_file(
    path: str | os.PathLike[str],
    start_offset: int = 0,
    *,
    parser: LogParser | None = None,
    final: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    max_bytes: int | None = None,
) -> tuple[list[Any], int]:
    """Parse the complete lines of ``path`` from byte ``start_offset``; return (events, end_offset).

    The file is read in ``chunk_size`` pieces, never whole.  A last line without its newline is not
    consumed (the writer may be mid-line) unless ``final`` is true (the writer has exited), in which case
    it is parsed and the parser flushed.  ``max_bytes`` bounds the bytes read by one call (it stops at the
    first chunk boundary past it, leaving any partial line for the next call; a single line longer than
    the budget is still read whole so that every call makes progress).

    ``end_offset`` is where the next call must start:

    * with a ``parser`` kept by the caller: just after the last line consumed (the parser holds any open
      record and reports it later);
    * without one: the start of any record still open at the end (a table, a traceback), so the next
      stateless call re-reads it whole.  Events are therefore never lost nor repeated either way.

    A missing file is empty when ``start_offset`` is 0 (the stage may not have written yet).  A file now
    shorter than ``start_offset`` was truncated or replaced: :class:`LogParseError`.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    stateless = parser is None
    p = parser if parser is not None else LogParser()
    path = Path(path)
    events: list[Any] = []
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        if start_offset == 0:
            return [], 0
        raise LogParseError(
            f"log file {path} is missing but {start_offset} bytes of it were already read; "
            "it was moved or deleted -- rescan from offset 0 if it is rewritten"
        ) from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size < start_offset:
            raise LogParseError(
                f"log file {path} is {size} bytes, shorter than the {start_offset} bytes already read; "
                "it was truncated or replaced -- rescan it from offset 0 with a fresh StageProgress"
            )
        fh.seek(start_offset)
        pos = start_offset  # file offset of the first byte of `pending`
        pending = b""
        read = 0
        eof = False
        while True:
            if max_bytes is not None and read >= max_bytes and pos > start_offset:
                break  # budget spent and some progress made; the caller comes back for the rest
            chunk = fh.read(chunk_size)
            if not chunk:
                eof = True
                break
            read += len(chunk)
            data = pending + chunk
            start = 0
            while (nl := data.find(b"\n", start)) >= 0:
                events.extend(p.feed(data[start:nl].decode("utf-8", errors="replace"), pos + start))
                start = nl + 1
            pos += start
            pending = data[start:]
        end = pos
        if final and eof and pending:
            # The writer has exited: a last line without a newline is complete after all.
            events.extend(p.feed(pending.decode("utf-8", errors="replace"), pos))
            end = pos + len(pending)
    if final and eof:
        events.extend(p.flush())
    elif stateless:
        held = p.resume_offset
        if held is not None:
            end = held
    return events, end


# --------------------------------------------------------------------------------------------------
# Progress aggregate
# --------------------------------------------------------------------------------------------------

PROGRESS_SCHEMA = 1


@dataclass
class TaskProgress:
    """Counts for one task label.  ``done`` includes skipped-existing and nothing-to-do quanta."""

    total: int | None = None
    done: int = 0
    failed: int = 0
    blocked: int = 0
    running: int = 0
    skipped: int = 0

    @property
    def remaining(self) -> int | None:
        if self.total is None:
            return None
        return max(self.total - self.done - self.failed - self.blocked, 0)


@dataclass
class Failure:
    """One failed quantum, merged from all the lines that reported it."""

    task: str
    data_id: dict[str, DataIdValue]
    exception_class: str | None = None
    message: str = ""
    #: Byte offset of the first log line that reported this failure (None when from a summary file).
    offset: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    quantum_id: str | None = None
    timed_out: bool = False
    #: The log holding ``offset`` when it is not the stage's own log (a BPS job's log).
    log_path: str | None = None

    @property
    def key(self) -> str:
        return data_id_key(self.task, self.data_id)


class StageProgress:
    """Per-task and overall progress of one ``pipetask run``, folded from parser events.

    Each :meth:`apply` is O(1), so it can follow a growing log live.  :meth:`to_dict` /
    :meth:`from_dict` round-trip through plain JSON types for the state file.
    """

    def __init__(self) -> None:
        self.tasks: dict[str, TaskProgress] = {}
        self.graph_total: int | None = None
        self.graph_id: str | None = None
        self.empty_graph: bool = False
        #: Last "Executed ... quanta" line: (succeeded, failed incl. blocked, remaining, total).
        self.reported: tuple[int, int, int, int] | None = None
        self.failures: list[Failure] = []
        #: ``Caught an exception`` at the end: {"exception_class", "message", "offset"}.
        self.fatal: dict[str, Any] | None = None
        self.cli_error: str | None = None
        self.warnings: int = 0
        self.errors: int = 0
        #: Offset of the last event applied (lets a follower check it is resuming where it stopped).
        self.last_offset: int | None = None
        self._failure_index: dict[str, int] = {}
        self._running: dict[str, str] = {}  # key -> task
        self._blocked: set[str] = set()

    # -- queries ---------------------------------------------------------------------------------

    def task(self, label: str) -> TaskProgress:
        tp = self.tasks.get(label)
        if tp is None:
            tp = self.tasks[label] = TaskProgress()
        return tp

    @property
    def total(self) -> int | None:
        if self.graph_total is not None:
            return self.graph_total
        if self.reported is not None:
            return self.reported[3]
        totals = [t.total for t in self.tasks.values()]
        return sum(totals) if totals and all(t is not None for t in totals) else None  # type: ignore[misc]

    @property
    def done(self) -> int:
        counted = sum(t.done for t in self.tasks.values())
        return max(counted, self.reported[0]) if self.reported else counted

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def blocked(self) -> int:
        counted = sum(t.blocked for t in self.tasks.values())
        if self.reported is not None:
            counted = max(counted, self.reported[1] - self.failed)
        return counted

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def remaining(self) -> int | None:
        total = self.total
        if total is None:
            return None
        return max(total - self.done - self.failed - self.blocked, 0)

    @property
    def finished(self) -> bool:
        """True once the log shows the run ended (all quanta accounted for, or a fatal error)."""
        if self.fatal is not None or self.empty_graph:
            return True
        return self.reported is not None and self.reported[2] == 0

    # -- updates ---------------------------------------------------------------------------------

    def apply_all(self, events: Iterable[Any]) -> None:
        for ev in events:
            self.apply(ev)

    def apply(self, ev: Any) -> None:
        """Fold one event in."""
        self.last_offset = ev.offset
        match ev:
            case GraphSummary():
                self.graph_total = ev.total
                self.graph_id = ev.graph_id
                for label, n in ev.tasks.items():
                    self.task(label).total = n
            case NoQuanta() | EmptyQuery():
                self.empty_graph = True
                if isinstance(ev, EmptyQuery):
                    self.errors += 1
            case CliError():
                self.cli_error = ev.message
                if "QuantumGraph was empty" in ev.message:
                    self.empty_graph = True
            case QuantumPrepared() | QuantumStarted():
                self._start(ev.key, ev.task)
            case QuantumFinished() | QuantumSkipped():
                self._end(ev.key, ev.task)
                tp = self.task(ev.task)
                tp.done += 1
                if isinstance(ev, QuantumSkipped):
                    tp.skipped += 1
            case QuantumNoWork():
                if ev.terminal:
                    self._end(ev.key, ev.task)
                    tp = self.task(ev.task)
                    tp.done += 1
                    tp.skipped += 1
            case Progress():
                self.reported = (ev.succeeded, ev.failed, ev.remaining, ev.total)
                if ev.remaining == 0:
                    self._clear_running()
            case TaskException():
                self._fail(ev.task, ev.data_id, ev.offset, exception_class=ev.exception_class, message=ev.message)
            case QuantumFailed():
                self._fail(
                    ev.task, ev.data_id, ev.offset, exception_class=ev.exception_class, message=ev.message,
                    exit_code=ev.exit_code, signal=ev.signal, quantum_id=ev.quantum_id,
                    timed_out=ev.form == "timeout" or ev.message.startswith("timed out after"),
                )
            case QuantumBlocked():
                self._block(ev.key, ev.task)
            case FailedJobs():
                for job in ev.jobs:
                    if job.state == "FAILED_DEP":
                        self._block(job.key, job.task)
                    else:
                        self._fail(job.task, job.data_id, ev.offset, timed_out=job.state == "TIMED_OUT")
            case FatalError():
                self.fatal = {"exception_class": ev.exception_class, "message": ev.message, "offset": ev.offset}
                self.errors += 1
                self._clear_running()
            case LogMessage():
                if ev.level in ("WARNING", "WARN"):
                    self.warnings += 1
                else:
                    self.errors += 1
            case _:
                pass

    def _start(self, key: str, task: str) -> None:
        if key not in self._running:
            self._running[key] = task
            self.task(task).running += 1

    def _end(self, key: str, task: str) -> None:
        if self._running.pop(key, None) is not None:
            self.task(task).running -= 1

    def _clear_running(self) -> None:
        for task in self._running.values():
            self.task(task).running -= 1
        self._running.clear()

    def _block(self, key: str, task: str) -> None:
        if key in self._blocked:
            return
        self._blocked.add(key)
        self._end(key, task)
        self.task(task).blocked += 1

    def _fail(self, task: str, data_id: dict[str, DataIdValue], offset: int | None, **info: Any) -> None:
        key = data_id_key(task, data_id)
        self._end(key, task)
        idx = self._failure_index.get(key)
        if idx is None:
            self._failure_index[key] = len(self.failures)
            f = Failure(task=task, data_id=dict(data_id), offset=offset)
            self.failures.append(f)
            self.task(task).failed += 1
        else:
            f = self.failures[idx]
        # Fill what is still unknown; the first report keeps its offset (it is where the error text is).
        if info.get("exception_class") and not f.exception_class:
            f.exception_class = info["exception_class"]
            if info.get("message"):
                f.message = info["message"]
        elif info.get("message") and not f.message:
            f.message = info["message"]
        for name in ("exit_code", "signal", "quantum_id"):
            if info.get(name) is not None and getattr(f, name) is None:
                setattr(f, name, info[name])
        if info.get("timed_out"):
            f.timed_out = True

    # -- persistence -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": PROGRESS_SCHEMA,
            "tasks": {k: asdict(v) for k, v in self.tasks.items()},
            "graph_total": self.graph_total,
            "graph_id": self.graph_id,
            "empty_graph": self.empty_graph,
            "reported": list(self.reported) if self.reported is not None else None,
            "failures": [asdict(f) for f in self.failures],
            "fatal": self.fatal,
            "cli_error": self.cli_error,
            "warnings": self.warnings,
            "errors": self.errors,
            "last_offset": self.last_offset,
            "running": [[k, t] for k, t in self._running.items()],
            "blocked_keys": sorted(self._blocked),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StageProgress:
        if not isinstance(d, dict):
            raise ProgressStateError(
                f"progress state must be a dict, got {type(d).__name__}; delete the stage state to rebuild it"
            )
        schema = d.get("schema")
        if schema != PROGRESS_SCHEMA:
            raise ProgressStateError(
                f"progress state has schema {schema!r}, this pfstui reads schema {PROGRESS_SCHEMA}; "
                "rescan the stage log to rebuild it"
            )
        try:
            self = cls()
            task_fields = {f.name for f in fields(TaskProgress)}
            self.tasks = {
                str(k): TaskProgress(**{n: v for n, v in dict(t).items() if n in task_fields})
                for k, t in d.get("tasks", {}).items()
            }
            self.graph_total = d.get("graph_total")
            self.graph_id = d.get("graph_id")
            self.empty_graph = bool(d.get("empty_graph", False))
            rep = d.get("reported")
            self.reported = tuple(int(x) for x in rep) if rep is not None else None  # type: ignore[assignment]
            fail_fields = {f.name for f in fields(Failure)}
            self.failures = [Failure(**{n: v for n, v in dict(f).items() if n in fail_fields})
                             for f in d.get("failures", [])]
            self._failure_index = {f.key: i for i, f in enumerate(self.failures)}
            self.fatal = d.get("fatal")
            self.cli_error = d.get("cli_error")
            self.warnings = int(d.get("warnings", 0))
            self.errors = int(d.get("errors", 0))
            self.last_offset = d.get("last_offset")
            self._running = {str(k): str(t) for k, t in d.get("running", [])}
            self._blocked = set(d.get("blocked_keys", []))
        except (TypeError, ValueError) as exc:
            raise ProgressStateError(
                f"progress state is malformed ({exc}); rescan the stage log to rebuild it"
            ) from None
        return self

    def summary_line(self) -> str:
        """One human line, e.g. ``14/16 done, 1 failed, 1 blocked, 0 running``."""
        total = self.total
        return (
            f"{self.done}/{total if total is not None else '?'} done, {self.failed} failed, "
            f"{self.blocked} blocked, {self.running} running"
        )


# --------------------------------------------------------------------------------------------------
# --summary FILE.json
# --------------------------------------------------------------------------------------------------


@dataclass
class SummaryTaskCounts:
    """Per-task counts from a --summary report.  ``blocked`` are the 'skipped' (upstream failed) quanta."""

    total: int | None = None
    succeeded: int = 0
    failed: int = 0
    blocked: int = 0
    timed_out: int = 0

    @property
    def reported(self) -> int:
        return self.succeeded + self.failed + self.blocked + self.timed_out


@dataclass
class RunSummary:
    """The parts of a pipe_base ``Report`` (``pipetask run --summary``) that pfstui shows."""

    status: str
    exit_code: int | None
    exception_class: str | None
    exception_message: str | None
    tasks: dict[str, SummaryTaskCounts]
    failures: list[Failure]
    output_run: str | None = None
    output_collection: str | None = None
    graph_id: str | None = None

    @property
    def total(self) -> int | None:
        totals = [t.total for t in self.tasks.values()]
        return sum(totals) if totals and all(t is not None for t in totals) else None  # type: ignore[misc]

    def to_progress(self) -> StageProgress:
        """A StageProgress carrying this report's final counts (e.g. for a run whose log was lost)."""
        sp = StageProgress()
        for label, c in self.tasks.items():
            tp = sp.task(label)
            tp.total, tp.done, tp.blocked = c.total, c.succeeded, c.blocked
        for f in self.failures:
            sp._fail(f.task, f.data_id, f.offset, exception_class=f.exception_class, message=f.message,
                     exit_code=f.exit_code, signal=f.signal, quantum_id=f.quantum_id, timed_out=f.timed_out)
        sp.graph_total = self.total
        sp.graph_id = self.graph_id
        if self.exception_class:
            sp.fatal = {"exception_class": self.exception_class, "message": self.exception_message or "",
                        "offset": None}
        return sp


def read_summary(path: str | os.PathLike[str]) -> RunSummary | None:
    """Read a ``pipetask run --summary`` JSON report; None when missing, empty, half-written or not a Report.

    pipetask writes the report once at exit, so a reader racing it may see a truncated file: that, and
    any malformed content, yields None rather than an exception.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
        d = json.loads(text)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(d, dict) or "quantaReports" not in d and "qgraphSummary" not in d:
        return None
    try:
        return _summary_from_dict(d)
    except (TypeError, ValueError, AttributeError, KeyError):
        return None


def _summary_from_dict(d: dict[str, Any]) -> RunSummary:
    qg = d.get("qgraphSummary") or {}
    tasks: dict[str, SummaryTaskCounts] = {}
    for label, ts in (qg.get("qgraphTaskSummaries") or {}).items():
        n = ts.get("numQuanta") if isinstance(ts, dict) else None
        tasks[str(label)] = SummaryTaskCounts(total=int(n) if n is not None else None)
    failures: list[Failure] = []
    for q in d.get("quantaReports") or []:
        if not isinstance(q, dict):
            continue
        label = str(q.get("taskLabel") or "?")
        c = tasks.setdefault(label, SummaryTaskCounts())
        status = q.get("status", "success")
        did = q.get("dataId") if isinstance(q.get("dataId"), dict) else {}
        if status == "success":
            c.succeeded += 1
        elif status == "skipped":
            c.blocked += 1
        else:
            if status == "timeout":
                c.timed_out += 1
            else:
                c.failed += 1
            exc = q.get("exceptionInfo") if isinstance(q.get("exceptionInfo"), dict) else {}
            code = q.get("exitCode")
            code = int(code) if isinstance(code, int) else None
            failures.append(
                Failure(
                    task=label,
                    data_id=dict(did),
                    exception_class=exc.get("className"),
                    message=str(exc.get("message", "")) or (
                        f"killed by signal {-code}" if code is not None and code < 0
                        else f"exit code={code}" if code else ""
                    ),
                    exit_code=code,
                    signal=-code if code is not None and code < 0 else None,
                    quantum_id=str(q["quantumId"]) if q.get("quantumId") else None,
                    timed_out=status == "timeout",
                )
            )
    exc = d.get("exceptionInfo") if isinstance(d.get("exceptionInfo"), dict) else {}
    gid = qg.get("graphID")
    return RunSummary(
        status=str(d.get("status", "success")),
        exit_code=d.get("exitCode") if isinstance(d.get("exitCode"), int) else None,
        exception_class=exc.get("className"),
        exception_message=exc.get("message"),
        tasks=tasks,
        failures=failures,
        output_run=qg.get("outputRun"),
        output_collection=qg.get("outputCollection"),
        graph_id=str(gid) if gid is not None else None,
    )
