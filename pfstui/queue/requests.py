"""The supervisor's contract: one request model per command, the reply model each gets, and the snapshot.

Clients (the app, the CLI) build a request object and get its typed reply back from
:meth:`pfstui.queue.protocol.SupervisorClient.request`; the supervisor answers each through its handler in
:mod:`pfstui.queue.handlers` (after pueue's ``message/request.rs`` and ``message_handler/``).  The
:class:`Snapshot` is everything a client shows: the state document, what the supervisor has to say about
it, and the exact command each queued or restartable stage runs next, so no client rebuilds a command.

:data:`PROTOCOL` is the wire version: a client and a supervisor of different versions refuse each other with
a one-line message (see :mod:`pfstui.queue.protocol`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pfstui.queue.model import MAX_PARALLEL, StageStatus, Wait
from pfstui.queue.state import QueueState, Stage

__all__ = [
    "MAX_PARALLEL",
    "PROTOCOL",
    "REQUESTS",
    "ApproveStage",
    "EditStage",
    "Hello",
    "HelloReply",
    "KillStage",
    "LoadPlan",
    "NextRun",
    "ParallelSet",
    "PauseQueue",
    "PauseStage",
    "PlanLoaded",
    "QueueFlag",
    "RejectStage",
    "Request",
    "Requeued",
    "RestartStage",
    "ResumeQueue",
    "ResumeStage",
    "Run",
    "SetParallel",
    "Shutdown",
    "SkipStage",
    "Snapshot",
    "StageChanged",
    "Status",
    "Stopping",
    "Subscribe",
]

#: Version 1 was the untyped protocol (``cmd`` + free ``args``, no version on requests); version 2 had no
#: waiting reasons in the snapshot; version 3 no approval gates (the ``waiting`` status, approve/reject).
PROTOCOL = 4


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- replies -------------------------------------------------------------------------------------------------
class HelloReply(_Message):
    protocol: int
    pid: int
    session: str


class NextRun(_Message):
    """What the next attempt of a queued or restartable stage runs, decided by the supervisor from the plan it
    holds and the stage's overrides, with the same function that starts the attempt."""

    argv: list[str] = Field(default_factory=list)
    #: How many argv items stay on the first line when shown (``shell_format``'s ``head``).
    head: int = 1
    #: A bps attempt's submit file, and (a new submission) its text as it will be written.
    submit_file: str | None = None
    submit_text: str | None = None
    #: Why the command cannot be built now (a plan mid-edit, a missing tool); ``argv`` is then empty.
    error: str | None = None


class Snapshot(_Message):
    """The queue as the supervisor sees it: sent as the reply to ``status``/``subscribe`` and after each change."""

    version: int
    session: str
    supervisor_pid: int
    plan_error: str | None = None
    #: One line naming the file and the fix when the state file was damaged or cannot be saved (or both).
    state_problem: str | None = None
    save_error: str | None = None
    #: The state file cannot be read: every change is refused until it is fixed.
    frozen: bool = False
    state: QueueState
    #: Stage id -> its next run, for every queued or restartable stage.
    next_runs: dict[str, NextRun] = Field(default_factory=dict)
    #: Stage id -> why it is not running, most pressing first, for every stage that has not started
    #: (:func:`pfstui.queue.rules.waits`).
    waiting: dict[str, list[Wait]] = Field(default_factory=dict)

    @property
    def stages(self) -> list[Stage]:
        return self.state.stages


class PlanLoaded(_Message):
    added: list[str]
    stages: int


class QueueFlag(_Message):
    queue_paused: bool


class StageChanged(_Message):
    stage: str
    status: StageStatus


class Requeued(_Message):
    requeued: list[str]


class ParallelSet(_Message):
    parallel: int


class Stopping(_Message):
    stopping: bool


# --- requests ------------------------------------------------------------------------------------------------
class Request[R: BaseModel](_Message):
    """A command to the supervisor; ``reply`` is the model of its result."""

    cmd: ClassVar[str]
    reply: ClassVar[type[BaseModel]]
    #: False for the requests a frozen supervisor (unreadable state file) still serves.
    changes_state: ClassVar[bool] = True
    #: True for the requests a read-only client (``pfstui --read-only``) may send: looking, never changing.
    only_looks: ClassVar[bool] = False


class Hello(Request[HelloReply]):
    """The first request of every connection; ``read_only`` makes the supervisor refuse every change that
    this connection asks for, whatever the client does (a second line of defence behind the client's own
    refusal, so a bug in one pane cannot change the queue of an operator who asked to only look)."""

    cmd, reply, changes_state, only_looks = "hello", HelloReply, False, True
    read_only: bool = False


class Status(Request[Snapshot]):
    cmd, reply, changes_state, only_looks = "status", Snapshot, False, True


class Subscribe(Request[Snapshot]):
    """The snapshot now, then a state event after every change, on this connection."""

    cmd, reply, changes_state, only_looks = "subscribe", Snapshot, False, True


class LoadPlan(Request[PlanLoaded]):
    """(Re)read a plan file: its new stages are queued, and every next run follows the file as it is now."""

    cmd, reply = "load_plan", PlanLoaded
    path: str
    repo: str | None = None


class Run(Request[QueueFlag]):
    cmd, reply = "run", QueueFlag


class PauseQueue(Request[QueueFlag]):
    """Start nothing new (running stages go on)."""

    cmd, reply = "pause_queue", QueueFlag


class ResumeQueue(Request[QueueFlag]):
    cmd, reply = "resume_queue", QueueFlag


class _ChangeStage(Request[StageChanged]):
    """A request about one stage, answered with its new status."""

    reply = StageChanged
    stage: str


class PauseStage(_ChangeStage):
    """SIGSTOP to the stage's process group (and a bps stage's worker pools)."""

    cmd = "pause"


class ResumeStage(_ChangeStage):
    cmd = "resume"


class KillStage(_ChangeStage):
    """SIGTERM now, SIGKILL to what is left after a grace period."""

    cmd = "kill"


class SkipStage(_ChangeStage):
    """Mark a queued or badly ended stage skipped, so that its dependants may go on."""

    cmd = "skip"


class ApproveStage(_ChangeStage):
    """An operator's yes to a stage waiting for approval: its next attempt runs, and writes only the change its
    preview showed (the digest travels in its argv as ``--approved``)."""

    cmd = "approve"
    #: Which client asked (journaled with the approval).
    via: Literal["app", "cli"] = "cli"
    #: The preview the operator was shown (its argv and digest): refused if the stage's preview is another one
    #: by the time the request arrives (the plan was edited, the preview computed again).
    seen_argv: list[str]
    seen_digest: str | None = None


class RejectStage(_ChangeStage):
    """An operator's no to a stage waiting for approval: it is skipped (journaled)."""

    cmd = "reject"
    via: Literal["app", "cli"] = "cli"


class RestartStage(Request[Requeued]):
    """A new attempt of a stage that ended badly (and of its dependants it held), with edited options.

    It runs only the quanta that did not succeed (see :func:`pfstui.queue.launch.prepare`); ``full`` runs
    every quantum again."""

    cmd, reply = "restart", Requeued
    stage: str
    overrides: dict[str, object] | None = None
    full: bool = False


class EditStage(_ChangeStage):
    """The plan file's entry of a stage whose next attempt has not started was edited (the Queue's ``e``): read
    the plan again, and forget the restart editor's overrides of the ``fields`` edited, so the file's values
    are the ones that run.  The reply's status says whether the stage started before the edit was saved."""

    cmd = "edit"
    path: str
    repo: str | None = None
    fields: list[str] = Field(default_factory=list)


class SetParallel(Request[ParallelSet]):
    """How many stages may run at once: a whole number from 1 to :data:`MAX_PARALLEL` (``1e22``, ``2.5`` and
    ``"4"`` are refused with one line, not stored and saved into state.json)."""

    cmd, reply = "set_parallel", ParallelSet
    parallel: int

    @field_validator("parallel", mode="before")
    @classmethod
    def _whole_number(cls, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PARALLEL:
            raise ValueError(f"{value!r} is not a whole number from 1 to {MAX_PARALLEL}")
        return value


class Shutdown(Request[Stopping]):
    cmd, reply, changes_state = "shutdown", Stopping, False


#: Command word -> its request model.
REQUESTS: dict[str, type[Request]] = {
    cls.cmd: cls
    for cls in (Hello, Status, Subscribe, LoadPlan, Run, PauseQueue, ResumeQueue, PauseStage, ResumeStage,
                KillStage, RestartStage, SkipStage, EditStage, ApproveStage, RejectStage, SetParallel, Shutdown)
}
