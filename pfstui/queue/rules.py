"""Queue semantics, as pure functions over the session state (no processes, no I/O).

Stage statuses are :class:`pfstui.queue.model.StageStatus`.  Rules, after pueue:

* a stage starts when every stage it depends on is ``done`` or ``skipped``, the queue is not paused, and
  fewer than ``parallel`` stages are running or paused;
* a stage whose dependency ended badly (``failed``, ``killed``, ``lost``, ``dependency-failed``) becomes
  ``dependency-failed`` and is never run;
* restart puts a finished stage back in the queue (a new attempt; the old attempt's log is kept) and
  re-queues the dependants that were ``dependency-failed`` because of it; skip marks a stage ``skipped`` so
  its dependants may go on.

:func:`waits` says, from the same rules, why each stage that has not started is not running.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from pfstui.errors import UserError
from pfstui.queue.model import (
    ACTIVE,
    BAD,
    LABEL_WIDTH,
    OK,
    RESTARTABLE,
    SKIPPABLE,
    WAITS,
    AttemptStatus,
    StageStatus,
    Wait,
)

if TYPE_CHECKING:  # the state records (pydantic) are not needed to apply the rules, and cost ~0.2 s to import
    from pfstui.queue.state import QueueState, Stage


class QueueError(UserError):
    """An operation that does not fit the stage's state; the message says what would."""


def _stage(state: QueueState, name: str) -> Stage:
    stage = state.stage(name)
    if stage is None:
        raise QueueError(f"no stage {name!r} in the queue (stages: {', '.join(s.id for s in state.stages)})")
    return stage


def propagate_failures(state: QueueState) -> list[str]:
    """Mark queued stages whose dependencies ended badly as dependency-failed; return their ids."""
    changed: list[str] = []
    progress = True
    while progress:
        progress = False
        for stage in state.stages:
            if stage.status != StageStatus.QUEUED:
                continue
            deps = [state.stage(d) for d in stage.depends_on]
            if any(d is not None and d.status in BAD for d in deps):
                stage.status = StageStatus.DEPENDENCY_FAILED
                changed.append(stage.id)
                progress = True
    return changed


def launching(stage: Stage) -> bool:
    """Its attempt is saved but its process not yet recorded: a supervisor was killed while launching it, and
    the next one settles that attempt (:mod:`pfstui.queue.starts`) instead of starting another."""
    last = stage.last_attempt
    return stage.status == StageStatus.QUEUED and last is not None and last.status == AttemptStatus.STARTING


def ready(state: QueueState, parallel: int) -> list[str]:
    """Ids of the stages to start now, in queue order."""
    if state.queue_paused:
        return []
    slots = parallel - sum(1 for s in state.stages if s.status in ACTIVE or launching(s))
    out: list[str] = []
    for stage in state.stages:
        if slots <= 0:
            break
        if stage.status != StageStatus.QUEUED or launching(stage) or (stage.extra.gate and not approved(stage)):
            continue
        if _dependencies_done(state, stage):
            out.append(stage.id)
            slots -= 1
    return out


def _dependencies_done(state: QueueState, stage: Stage) -> bool:
    return all((d := state.stage(dep)) is not None and d.status in OK for dep in stage.depends_on)


# --- approval gates ------------------------------------------------------------------------------------------
def approved(stage: Stage) -> bool:
    """An operator approved the stage's next attempt (an approval is for one attempt: a restart asks again)."""
    approval = stage.extra.approval
    return approval is not None and approval.attempt == stage.next_attempt_number()


def gate(state: QueueState) -> list[str]:
    """Stop gated stages whose dependencies are done (``waiting``) and return their ids; a waiting stage whose
    plan no longer asks for approval goes back to the queue.

    Why then and not earlier: the preview an operator approves must be of the registry the stage will meet,
    which its dependencies write."""
    stopped: list[str] = []
    for stage in state.stages:
        if stage.status == StageStatus.WAITING and not stage.extra.gate:
            stage.status = StageStatus.QUEUED
        elif (stage.status == StageStatus.QUEUED and stage.extra.gate and not approved(stage)
              and not launching(stage) and _dependencies_done(state, stage)):
            stage.status = StageStatus.WAITING
            stopped.append(stage.id)
    return stopped


def approve(state: QueueState, name: str, seen_argv: list[str], seen_digest: str | None) -> Stage:
    """Check that ``name`` may be approved now (waiting, its preview ready and the one the operator saw); the
    caller records the approval."""
    stage = _stage(state, name)
    if stage.status != StageStatus.WAITING:
        raise QueueError(f"stage {name!r} is {stage.status}; only a stage waiting for approval can be approved")
    preview = stage.extra.preview
    if preview is None or preview.state == "computing":
        raise QueueError(f"the preview of {name!r} is still being computed",
                         "approve once it is shown (the stage's details, or `pfstui status`)")
    if preview.state == "failed":
        stage.extra.preview = None  # the supervisor computes it again
        first = preview.text.strip().splitlines()[-1:] or ["no reason given"]
        raise QueueError(f"the preview of {name!r} failed ({first[0][:200]}); it is being computed again",
                         "approve once the new preview is shown, or reject the stage (it is then skipped)")
    if (preview.argv, preview.digest) != (seen_argv, seen_digest):
        raise QueueError(f"the preview of {name!r} changed after it was shown (the plan or the registry changed)",
                         "read the new preview, then approve again")
    return stage


def reject(state: QueueState, name: str) -> None:
    """An operator's no: the waiting stage is skipped (its dependants go on, as after any skip)."""
    stage = _stage(state, name)
    if stage.status != StageStatus.WAITING:
        raise QueueError(f"stage {name!r} is {stage.status}; only a stage waiting for approval can be rejected",
                         "skip it instead (s in the Queue, or `pfstui queue skip`)")
    skip(state, name)


def is_finished(state: QueueState) -> bool:
    """Nothing is running, nothing waits for an operator, and nothing queued can ever start."""
    if any(s.status in ACTIVE or s.status == StageStatus.WAITING for s in state.stages):
        return False
    for stage in state.stages:
        if stage.status == StageStatus.QUEUED:
            deps = [state.stage(d) for d in stage.depends_on]
            if not any(d is not None and d.status in BAD for d in deps):
                return False
    return True


def phase(state: QueueState) -> str:
    """Where the queue is, in one word: ``finished`` (every stage done or skipped), ``empty``, ``paused``,
    ``waiting`` (nothing runs; a stage waits for an operator's approval), ``idle`` (nothing more can run until
    a stage is restarted or skipped) or ``running``.

    Why: the Queue pane said ``queue running · 22 done`` once everything was done; every client says this
    word instead of reading the paused flag alone."""
    finished = is_finished(state)
    if finished and all(s.status in OK for s in state.stages):
        return "finished" if state.stages else "empty"
    if state.queue_paused:
        return "paused"
    if not any(s.status in ACTIVE for s in state.stages) and any(s.status == StageStatus.WAITING
                                                                 for s in state.stages):
        return "waiting"
    return "idle" if finished else "running"


def dependants(state: QueueState, name: str) -> list[str]:
    """Every stage that depends on ``name``, directly or not, in queue order."""
    found: set[str] = set()
    frontier = {name}
    while frontier:
        nxt = {s.id for s in state.stages if set(s.depends_on) & frontier} - found
        found |= nxt
        frontier = nxt
    return [s.id for s in state.stages if s.id in found]


def restart(state: QueueState, name: str) -> list[str]:
    """Put a finished stage back in the queue; return the ids re-queued (it and its dependants)."""
    stage = _stage(state, name)
    if stage.status not in RESTARTABLE:
        raise QueueError(f"stage {name!r} is {stage.status}; only a failed, killed, lost or dependency-failed "
                         "stage can be restarted")
    stage.status = StageStatus.QUEUED
    requeued = [name]
    for dep_id in dependants(state, name):
        dep = state.stage(dep_id)
        if dep is not None and dep.status == StageStatus.DEPENDENCY_FAILED:
            dep.status = StageStatus.QUEUED
            requeued.append(dep_id)
    return requeued


def skip(state: QueueState, name: str) -> None:
    stage = _stage(state, name)
    if stage.status not in SKIPPABLE:
        raise QueueError(f"stage {name!r} is {stage.status}; only a queued or finished-badly stage can be skipped "
                         "(kill it first if it is running)")
    if launching(stage):
        raise QueueError(f"stage {name!r} is being started (its launch is being settled); wait a second, then "
                         "kill it if needed")
    stage.status = StageStatus.SKIPPED
    for dep_id in dependants(state, name):
        dep = state.stage(dep_id)
        if dep is not None and dep.status == StageStatus.DEPENDENCY_FAILED:
            dep.status = StageStatus.QUEUED
    propagate_failures(state)


def check_active(state: QueueState, name: str, action: str) -> Stage:
    stage = _stage(state, name)
    if stage.status not in ACTIVE:
        raise QueueError(f"stage {name!r} is {stage.status}; only a running or paused stage can be {action}")
    return stage


# --- why a stage waits ---------------------------------------------------------------------------------------
class _Queue(NamedTuple):
    """What every wait check needs to know of the queue, computed once per snapshot."""

    state: QueueState
    parallel: int
    #: Stages holding a parallel slot (running, paused, being launched), then those starting at the next tick.
    holding: list[str]
    starting: list[str]


def _and(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]


def _dependencies(q: _Queue, stage: Stage) -> Wait | None:
    pending = [(d, q.state.stage(d)) for d in stage.depends_on]
    pending = [(d, dep) for d, dep in pending if dep is None or dep.status not in OK]
    if not pending:
        return None
    names = [d for d, _ in pending]
    label = f"after {names[0]}" if len(names) == 1 else f"after {len(names)} stages"
    if len(label) > LABEL_WIDTH:
        label = "after 1 stage"
    said = [f"{d} ({dep.status if dep is not None else 'not in the queue'})" for d, dep in pending]
    return Wait("dependency", label, f"waits for {_and(said)}", tuple(names))


def _paused(q: _Queue, stage: Stage) -> Wait | None:
    if not q.state.queue_paused:
        return None
    return Wait("paused", "queue paused", "the queue is paused: nothing new starts until it runs again")


def _approval(q: _Queue, stage: Stage) -> Wait | None:
    if stage.status != StageStatus.WAITING:
        return None
    preview = stage.extra.preview
    said = {"ready": "its preview is ready", "failed": "its preview failed"}.get(
        preview.state if preview else "", "its preview is being computed")
    return Wait("approval", "needs approval",
                f"waits for an operator's approval ({said}): y approves and n rejects in the Queue, or "
                f"`pfstui queue approve|reject {stage.id}`")


def _slot(q: _Queue, stage: Stage) -> Wait | None:
    """Its dependencies are done and the queue runs: it starts now, or every slot of the limit is taken."""
    if q.state.queue_paused or stage.status != StageStatus.QUEUED or _dependencies(q, stage) is not None:
        return None
    if launching(stage):
        return Wait("starting", "starting…", "being started (its launch is settled first, so it runs once)")
    if stage.id in q.starting:
        return Wait("starting", "starting…", "ready: it starts at the supervisor's next tick")
    ahead = q.holding + q.starting
    said = [f"{s} {'starting' if s in q.starting else q.state.stage(s).status}" for s in ahead]
    return Wait("parallel", f"parallel limit {q.parallel}",
                f"the parallel limit ({q.parallel} at once) is reached: {', '.join(said) or 'nothing'}; "
                "raise it to start this stage now", tuple(ahead))


#: The checks, most pressing first.
WAIT_CHECKS: list[Callable[[_Queue, Stage], Wait | None]] = [_dependencies, _approval, _paused, _slot]


def waits(state: QueueState, parallel: int) -> dict[str, list[Wait]]:
    """Why each stage that has not started is not running, most pressing reason first (stage id -> reasons).

    Why it lives with the rules: it must say exactly what :func:`ready` decides, so the operator never reads
    "waiting for the parallel limit" about a stage the supervisor would not start anyway."""
    holding = [s.id for s in state.stages if s.status in ACTIVE or launching(s)]
    q = _Queue(state, parallel, holding, ready(state, parallel))
    out: dict[str, list[Wait]] = {}
    for stage in state.stages:
        if stage.status in WAITS:
            out[stage.id] = [w for check in WAIT_CHECKS if (w := check(q, stage)) is not None]
    return out
