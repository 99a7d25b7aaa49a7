"""What a pipetask log can say, as typed events: the vocabulary between the parser and its readers.

Why a module of its own: the parser (:mod:`.parser`) makes these, and the progress aggregate
(:mod:`.progress`), the supervisor and the bps monitor read them; none of those needs the other's code.
Each event carries the byte offset of the line that starts its record, so a UI can jump to it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pfstui.pipetask_log.data_id import DataIdValue, QuantumKey

__all__ = [
    "CliError",
    "EmptyQuery",
    "Event",
    "FailedJob",
    "FailedJobs",
    "FatalError",
    "GraphSummary",
    "LogMessage",
    "NoQuanta",
    "Progress",
    "QuantumBlocked",
    "QuantumEvent",
    "QuantumFailed",
    "QuantumFinished",
    "QuantumNoWork",
    "QuantumPrepared",
    "QuantumSkipped",
    "QuantumStarted",
    "TaskDropped",
    "TaskException",
    "TaskQuantaGenerated",
]

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
class QuantumEvent(Event, QuantumKey):
    """An event about one quantum: its task label and data ID."""

    task: str
    data_id: dict[str, DataIdValue]


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
class FailedJob(QuantumKey):
    """One ``  - STATE: <X dataId={...}>`` entry of the final ``Failed jobs:`` list."""

    state: str  #: FAILED, TIMED_OUT or FAILED_DEP
    task: str
    data_id: dict[str, DataIdValue]


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
