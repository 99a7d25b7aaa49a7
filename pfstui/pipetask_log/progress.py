"""Per-task and overall progress of one ``pipetask run``, folded from parser events.

Why this exists: the queue shows "14/16 done, 1 failed" per stage while it runs and keeps it in its
JSON state file; :class:`StageProgress` folds each event in O(1) (so it can follow a growing log live)
and round-trips through plain JSON types.  Each failed quantum is merged into one :class:`Failure` from
every line that reported it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

from pfstui.pipetask_log.data_id import DataIdValue, QuantumKey, data_id_key
from pfstui.pipetask_log.events import (
    CliError,
    EmptyQuery,
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
    TaskException,
)
from pfstui.pipetask_log.formats import normal_level

__all__ = ["PROGRESS_SCHEMA", "Failure", "ProgressStateError", "StageProgress", "TaskProgress"]


class ProgressStateError(ValueError):
    """A saved StageProgress dict is not one this version can load; str() says what to do."""



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
class Failure(QuantumKey):
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
                if normal_level(ev.level) == "WARNING":
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
