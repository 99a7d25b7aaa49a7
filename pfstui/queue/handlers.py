"""What the supervisor does for each request: one handler per request type, found through a table.

After pueue's ``message_handler/``: :func:`dispatch` looks the handler up by the request's type (every
request model of :mod:`pfstui.queue.requests` has one; a test checks), refuses what would change a frozen
session (its state file cannot be read), and returns the handler's typed reply.  Handlers run on the
supervisor's event loop, one at a time, so two clients never race.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from pfstui.process import runner
from pfstui.queue import rules
from pfstui.queue.model import StageStatus
from pfstui.queue.requests import (
    PROTOCOL,
    ApproveStage,
    EditStage,
    Hello,
    HelloReply,
    KillStage,
    LoadPlan,
    ParallelSet,
    PauseQueue,
    PauseStage,
    QueueFlag,
    RejectStage,
    Request,
    Requeued,
    RestartStage,
    ResumeQueue,
    ResumeStage,
    Run,
    SetParallel,
    Shutdown,
    SkipStage,
    Snapshot,
    StageChanged,
    Status,
    Stopping,
    Subscribe,
)
from pfstui.queue.state import Approval, Stage, StageExtra

if TYPE_CHECKING:
    from pfstui.queue.supervisor import Supervisor

__all__ = ["HANDLERS", "KILL_GRACE_SECONDS", "dispatch"]

#: How long a killed stage gets between SIGTERM and SIGKILL.
KILL_GRACE_SECONDS = 10.0

Handler = Callable[["Supervisor", Any, asyncio.StreamWriter], BaseModel]
#: Request type -> its handler.
HANDLERS: dict[type[Request], Handler] = {}


def _handles(*kinds: type[Request]) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for kind in kinds:
            HANDLERS[kind] = handler
        return handler

    return register


def dispatch(sup: Supervisor, request: Request, client: asyncio.StreamWriter) -> BaseModel:
    """The reply to ``request`` from ``client`` (its connection: ``subscribe`` keeps it)."""
    if client in sup.read_only_clients and not request.only_looks:
        raise rules.QueueError(f"{request.cmd} refused: this client said it is read-only (pfstui --read-only); "
                               "run the command again without --read-only to change the queue")
    if sup.frozen and request.changes_state:
        raise rules.QueueError(sup.frozen)
    return HANDLERS[type(request)](sup, request, client)


# --- looking ---------------------------------------------------------------------------------------------------
@_handles(Hello)
def _hello(sup: Supervisor, request: Hello, client: asyncio.StreamWriter) -> HelloReply:
    if request.read_only:  # for the rest of this connection: a later hello cannot take it back
        sup.read_only_clients.add(client)
    return HelloReply(protocol=PROTOCOL, pid=os.getpid(), session=str(sup.dir))


@_handles(Status)
def _status(sup: Supervisor, request: Status, client: asyncio.StreamWriter) -> Snapshot:
    return sup.snapshot()


@_handles(Subscribe)
def _subscribe(sup: Supervisor, request: Subscribe, client: asyncio.StreamWriter) -> Snapshot:
    sup.subscribers.add(client)
    return sup.snapshot()


# --- the queue -------------------------------------------------------------------------------------------------
@_handles(LoadPlan)
def _load_plan(sup: Supervisor, request: LoadPlan, client: asyncio.StreamWriter) -> BaseModel:
    return sup.load_plan(request.path, request.repo)


@_handles(Run, ResumeQueue, PauseQueue)
def _queue_paused(sup: Supervisor, request: Run | ResumeQueue | PauseQueue, client: asyncio.StreamWriter) -> QueueFlag:
    sup.state.queue_paused = isinstance(request, PauseQueue)
    sup.dirty = True
    return QueueFlag(queue_paused=sup.state.queue_paused)


@_handles(SetParallel)
def _set_parallel(sup: Supervisor, request: SetParallel, client: asyncio.StreamWriter) -> ParallelSet:
    sup.state.parallel = request.parallel
    sup.dirty = True
    return ParallelSet(parallel=sup.state.parallel)


@_handles(Shutdown)
def _shutdown(sup: Supervisor, request: Shutdown, client: asyncio.StreamWriter) -> Stopping:
    sup.stopping.set()
    return Stopping(stopping=True)


# --- one stage -------------------------------------------------------------------------------------------------
def _live(sup: Supervisor, name: str, done: str) -> tuple[Stage, runner.ProcessHandle]:
    """The running or paused stage ``name`` and its process; QueueError saying why not (``done``: what it
    would have been, for the message)."""
    stage = rules.check_active(sup.state, name, done)
    handle = sup.handle(stage.last_attempt)
    if handle is None:
        raise rules.QueueError(f"stage {name!r} has no live process to signal")
    return stage, handle


def _changed(sup: Supervisor, stage: Stage) -> StageChanged:
    sup.dirty = True
    return StageChanged(stage=stage.id, status=stage.status)


@_handles(PauseStage)
def _pause(sup: Supervisor, request: PauseStage, client: asyncio.StreamWriter) -> StageChanged:
    stage, handle = _live(sup, request.stage, "paused")
    runner.pause(handle)
    sup.bps_pools(stage.last_attempt, signal.SIGSTOP)
    stage.status = StageStatus.PAUSED
    stage.last_attempt.pause()
    return _changed(sup, stage)


@_handles(ResumeStage)
def _resume(sup: Supervisor, request: ResumeStage, client: asyncio.StreamWriter) -> StageChanged:
    stage, handle = _live(sup, request.stage, "resumed")
    sup.bps_pools(stage.last_attempt, signal.SIGCONT)
    runner.resume(handle)
    stage.status = StageStatus.RUNNING
    stage.last_attempt.resume()
    return _changed(sup, stage)


@_handles(KillStage)
def _kill(sup: Supervisor, request: KillStage, client: asyncio.StreamWriter) -> StageChanged:
    """SIGTERM now; whatever is left of the stage gets SIGKILL after the grace period (see the tick)."""
    stage, handle = _live(sup, request.stage, "killed")
    stage.extra.kill_requested, stage.extra.kill_escalate_at = True, time.time() + KILL_GRACE_SECONDS
    runner.terminate(handle)
    sup.bps_pools(stage.last_attempt, signal.SIGTERM)
    sup.journal_event("kill", stage, stage.last_attempt.number, pgid=handle.pgid)
    return _changed(sup, stage)


@_handles(RestartStage)
def _restart(sup: Supervisor, request: RestartStage, client: asyncio.StreamWriter) -> Requeued:
    stage = sup.state.stage(request.stage)
    merged = None
    if stage is not None and request.overrides:
        # Validate the edited options against the plan's model before accepting them.
        merged = {**stage.extra.overrides, **request.overrides}
        sup.plan_stage(Stage(id=stage.id, name=stage.name, extra=StageExtra(overrides=merged)))
    requeued = rules.restart(sup.state, request.stage)  # refused: nothing of the stage changed
    assert stage is not None
    if merged is not None:
        stage.extra.overrides = merged
    stage.extra.full_rerun = stage.next_attempt_number() if request.full else None
    sup.dirty = True
    return Requeued(requeued=requeued)


@_handles(EditStage)
def _edit(sup: Supervisor, request: EditStage, client: asyncio.StreamWriter) -> StageChanged:
    """The plan file now holds the edit: read it, and let its edited fields win over the restart editor's."""
    sup.load_plan(request.path, request.repo)
    stage = sup.state.stage(request.stage)
    if stage is None:
        raise rules.QueueError(f"no stage {request.stage!r} in the plan {request.path}; reopen the plan")
    stage.extra.overrides = {k: v for k, v in stage.extra.overrides.items() if k not in request.fields}
    return _changed(sup, stage)


@_handles(SkipStage)
def _skip(sup: Supervisor, request: SkipStage, client: asyncio.StreamWriter) -> StageChanged:
    rules.skip(sup.state, request.stage)
    sup.dirty = True
    return StageChanged(stage=request.stage, status=StageStatus.SKIPPED)


@_handles(ApproveStage)
def _approve(sup: Supervisor, request: ApproveStage, client: asyncio.StreamWriter) -> StageChanged:
    """Approve exactly what the operator was shown: the preview's argv and digest are what the attempt runs."""
    try:
        stage = rules.approve(sup.state, request.stage, request.seen_argv, request.seen_digest)
    finally:
        sup.dirty = True  # a failed preview was dropped to be computed again
    preview = stage.extra.preview
    assert preview is not None
    number = stage.next_attempt_number()
    stage.extra.approval = Approval(attempt=number, argv=preview.argv, digest=preview.digest,
                                    by=f"{getpass.getuser()} ({request.via})")
    stage.status = StageStatus.QUEUED
    sup.journal_event("approve", stage, number, via=request.via, preview=preview.digest, argv=preview.argv)
    return _changed(sup, stage)


@_handles(RejectStage)
def _reject(sup: Supervisor, request: RejectStage, client: asyncio.StreamWriter) -> StageChanged:
    rules.reject(sup.state, request.stage)
    stage = sup.state.stage(request.stage)
    assert stage is not None
    preview = stage.extra.preview
    sup.journal_event("reject", stage, stage.next_attempt_number(), via=request.via,
                      preview=preview.digest if preview else None)
    sup.dirty = True
    return StageChanged(stage=request.stage, status=StageStatus.SKIPPED)
