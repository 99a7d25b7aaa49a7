"""The session's state document (``state.json``) as typed records: the queue, its stages and their attempts.

Every field has a name and a type, down to what used to be free dicts: a stage's queue data
(:class:`StageExtra`), an attempt's progress counts (:class:`Quanta`) and its bps submission
(:class:`BpsAttempt`).  The JSON they write is the one earlier versions wrote (same keys, same status
words; defaults fill what an older file lacks), so ``schema_version`` stays 1 and files written before
these records load unchanged.  :mod:`pfstui.queue.store` reads and writes the document; the supervisor
is its only writer; clients get it inside each :class:`pfstui.queue.requests.Snapshot`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from pfstui.queue.model import AttemptStatus, StageStatus

__all__ = [
    "SCHEMA_VERSION",
    "Attempt",
    "BpsAttempt",
    "BpsJobs",
    "FailedQuantum",
    "Progress",
    "Quanta",
    "QueueState",
    "Stage",
    "StageExtra",
    "TaskCounts",
    "now",
]

SCHEMA_VERSION = 1


def now(timespec: str = "seconds") -> str:
    """The current UTC time as the state document writes it (ISO 8601, ``+00:00``)."""
    return datetime.now(UTC).isoformat(timespec=timespec)


class _Record(BaseModel):
    # forbid: a field this version does not know means the file is not what we think it is.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class _Relayed(BaseModel):
    """A record whose full shape another package owns (the log parser's progress): the fields the queue and
    its clients read are named and typed, the others are kept as they are (``extra="allow"``), so the parser
    can add one without making every state file "damaged"."""

    model_config = ConfigDict(extra="allow")


# --- progress ------------------------------------------------------------------------------------------------
class TaskCounts(_Relayed):
    """Quanta of one task label (``done`` includes skipped-existing and nothing-to-do quanta)."""

    total: int | None = None
    done: int = 0
    failed: int = 0
    blocked: int = 0


class FailedQuantum(_Relayed):
    """One failed quantum, and where its log says so."""

    task: str
    data_id: dict[str, Any] = Field(default_factory=dict)
    exception_class: str | None = None
    message: str = ""
    #: Byte offset of the first log line that reported it (None when it came from a summary or report).
    offset: int | None = None
    #: The log holding ``offset`` when it is not the stage's own log (a bps job's log).
    log_path: str | None = None


class Progress(_Relayed):
    """A stage's progress as :meth:`pfstui.pipetask_log.parser.StageProgress.to_dict` writes it."""

    tasks: dict[str, TaskCounts] = Field(default_factory=dict)
    failures: list[FailedQuantum] = Field(default_factory=list)
    graph_total: int | None = None

    def totals(self) -> tuple[int, int, int, int | None]:
        """``(done, failed, blocked, total)`` over every task; total None while some task's is unknown (then
        the quantum graph's total, when announced)."""
        tasks = self.tasks.values()
        totals = [t.total for t in tasks]
        total = sum(totals) if all(t is not None for t in totals) else self.graph_total  # type: ignore[arg-type]
        return (sum(t.done for t in tasks), sum(t.failed for t in tasks), sum(t.blocked for t in tasks), total)


class BpsJobs(_Record):
    """What a bps attempt's monitor saw of bps and its Parsl jobs (see :class:`pfstui.bps.monitor.BpsMonitor`)."""

    phase: str | None = None  # the bps step it is in: acquire, cluster, transform, prepare, submit
    jobs: dict[str, int] = Field(default_factory=dict)  # Parsl job state -> how many
    error: str | None = None  # why bps itself failed, when it did
    #: Where it is in one word for the queue: graph, prepare, jobs or ingest (None in records of older pfstui).
    step: str | None = None


class Quanta(_Record):
    """An attempt's progress record, kept so that a new supervisor goes on where the last one stopped."""

    #: How far the tracker has read the stage's log (a local stage).
    offset: int = 0
    progress: Progress | None = None
    #: The ``pipetask run --summary`` report as read at the end (a local stage; kept for the record).
    summary: dict[str, Any] | None = None
    bps: BpsJobs | None = None


# --- approval gates -----------------------------------------------------------------------------------------
class GatePreview(_Record):
    """What a gated stage's next attempt would change, computed by running its own argv with ``--dry-run``
    once its dependencies are done (see :mod:`pfstui.queue.gates`)."""

    #: The attempt it previews and the argv previewed (the attempt's argv, without the approval's digest).
    attempt: int = Field(ge=1)
    argv: list[str]
    state: Literal["computing", "ready", "failed"] = "computing"
    #: The preview as the operator reads it (or why it failed), at most :data:`PREVIEW_LIMIT` characters.
    text: str = ""
    #: The digest of the preview's JSON: the attempt refuses to change anything else.
    digest: str | None = None
    at: str = Field(default_factory=lambda: now("seconds"))


class Approval(_Record):
    """An operator's yes to one attempt of a gated stage, for exactly the argv and preview they saw."""

    attempt: int = Field(ge=1)
    argv: list[str]
    digest: str | None = None
    by: str
    at: str = Field(default_factory=lambda: now("seconds"))


#: The most characters of a preview kept in the state and sent in snapshots.
PREVIEW_LIMIT = 32_000


# --- the document --------------------------------------------------------------------------------------------
class StageExtra(_Record):
    """What the queue keeps about a stage besides its status (the plan holds the rest)."""

    kind: str | None = None  # the plan stage's kind when it was queued
    #: Options edited in the restart editor, applied over the plan's for the next attempts.
    overrides: dict[str, Any] = Field(default_factory=dict)
    #: The attempt the operator asked to run in full (every quantum again); other restarts run only the
    #: quanta that did not succeed.
    full_rerun: int | None = None
    kill_requested: bool = False
    #: When whatever survives the SIGTERM of a kill gets SIGKILL (seconds since the epoch).
    kill_escalate_at: float | None = None
    #: The plan says it waits for an operator's approval (``approve: true``); set each time the plan is read.
    gate: bool = False
    preview: GatePreview | None = None
    approval: Approval | None = None


class BpsAttempt(_Record):
    """A ``backend: bps`` attempt's submission."""

    workdir: str  # where bps runs (Parsl's runinfo/, the monitoring database); shared by `bps restart` attempts
    submit_dir: str
    submit_file: str | None = None
    mode: Literal["submit", "restart"]
    #: The stage's overrides it was made with: unchanged options make the next attempt a `bps restart`.
    overrides: dict[str, Any] = Field(default_factory=dict)


class Attempt(_Record):
    """One run of a stage: its process identity (see :class:`pfstui.process.runner.ProcessHandle`) and outcome.

    An attempt is saved ``starting`` (argv and launch files, no process yet) before its process is launched;
    its started path's name carries the launch token (:mod:`pfstui.process.intent`).  Older files have no
    such attempts, and older pfstui read these as attempts that never started.
    """

    number: int = Field(ge=1)
    argv: list[str]
    cwd: str | None = None
    pid: int | None = None
    start_time: float | None = None
    pgid: int | None = None
    waiter_pid: int | None = None
    waiter_start_time: float | None = None
    boot_time: float | None = None
    boot_id: str | None = None
    log_path: str | None = None
    status_path: str | None = None
    started_path: str | None = None
    status: AttemptStatus = AttemptStatus.STARTING
    exit_code: int | None = None
    signal: str | None = None
    quanta: Quanta = Field(default_factory=Quanta)
    started_at: str | None = None
    ended_at: str | None = None
    #: When its stage was last paused (None while it runs), and the seconds of the pauses it was resumed from:
    #: a paused stage's time does not count on.
    paused_at: str | None = None
    paused_seconds: float = 0.0
    detail: str = ""
    bps: BpsAttempt | None = None

    HANDLE_FIELDS: ClassVar[tuple[str, ...]] = (
        "pid", "start_time", "pgid", "waiter_pid", "waiter_start_time", "boot_time", "boot_id",
        "log_path", "status_path", "started_path", "cwd",
    )

    @classmethod
    def from_handle(cls, number: int, handle: Any, **fields: Any) -> Attempt:
        """An attempt recording a :class:`pfstui.process.runner.ProcessHandle` (duck-typed via ``to_dict()``)."""
        data = handle.to_dict()
        values = {k: data.get(k) for k in cls.HANDLE_FIELDS}
        values.setdefault("argv", list(data.get("argv", [])))
        values["started_at"] = data.get("started_at") or None
        values["status"] = AttemptStatus.RUNNING
        values.update(fields)
        return cls(number=number, **values)

    def record_handle(self, handle: Any) -> None:
        """This ``starting`` attempt's process exists: record its identity (its folder stays ``cwd``)."""
        data = handle.to_dict()
        for key in self.HANDLE_FIELDS:
            if key != "cwd":
                setattr(self, key, data.get(key))
        self.started_at = data.get("started_at") or self.started_at
        self.status = AttemptStatus.RUNNING

    def handle_dict(self) -> dict[str, Any] | None:
        """The process-handle dict for :func:`pfstui.process.runner.adopt`, or None if the attempt never started."""
        if self.pid is None or self.start_time is None or self.status_path is None:
            return None
        data = {k: getattr(self, k) for k in self.HANDLE_FIELDS}
        data.update(argv=list(self.argv), started_at=self.started_at or "", cwd=self.cwd or "")
        return data

    @property
    def progress(self) -> Progress:
        """Its quanta progress (empty before the first count)."""
        return self.quanta.progress or Progress()

    def pause(self) -> None:
        self.paused_at = self.paused_at or now()

    def resume(self) -> None:
        if self.paused_at:
            pause = datetime.now(UTC) - datetime.fromisoformat(self.paused_at)
            self.paused_seconds += max(0.0, pause.total_seconds())
            self.paused_at = None

    def run_seconds(self, at: datetime | None = None) -> int | None:
        """Whole seconds it has run until ``at`` (now), its pauses left out; None before it started.

        Why here: the Queue pane, ``pfstui status`` and the supervisor must count the same time, and only the
        attempt knows its pauses (a paused stage's clock stops, and stays stopped if it is killed paused)."""
        if not self.started_at:
            return None
        try:
            start = datetime.fromisoformat(self.started_at)
            stop = self.paused_at or self.ended_at
            end = datetime.fromisoformat(stop) if stop else (at or datetime.now(UTC))
        except ValueError:
            return None
        return max(0, int((end - start).total_seconds() - self.paused_seconds))


class Stage(_Record):
    """A queued unit of work (one command) with its attempts, oldest first."""

    id: str
    name: str = ""
    argv: list[str] = Field(default_factory=list)
    status: StageStatus = StageStatus.QUEUED
    depends_on: list[str] = Field(default_factory=list)
    attempts: list[Attempt] = Field(default_factory=list)
    extra: StageExtra = Field(default_factory=StageExtra)
    created_at: str = Field(default_factory=lambda: now("microseconds"))

    @property
    def last_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def next_attempt_number(self) -> int:
        return (self.attempts[-1].number + 1) if self.attempts else 1

    @property
    def progress(self) -> Progress:
        """The last attempt's quanta progress (empty before it has any)."""
        return self.attempts[-1].progress if self.attempts else Progress()


class QueueState(_Record):
    """The whole state document of one session."""

    schema_version: int = SCHEMA_VERSION
    repo: str | None = None
    plan: str | None = None
    queue_paused: bool = False
    #: How many stages may run at once.
    parallel: int = Field(default=1, ge=1)
    pipelines: set[str] = Field(default_factory=set)
    stages: list[Stage] = Field(default_factory=list)
    saved_at: str | None = None

    @field_serializer("pipelines")
    def _sorted_pipelines(self, value: set[str]) -> list[str]:
        return sorted(value)

    def stage(self, stage_id: str) -> Stage | None:
        """The stage with this id, or None."""
        return next((s for s in self.stages if s.id == stage_id), None)
