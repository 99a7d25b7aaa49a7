"""Queue semantics, as pure functions over the session state (no processes, no I/O).

Stage statuses are :class:`pfstui.queue.model.StageStatus`.  Rules, after pueue:

* a stage starts when every stage it depends on is ``done`` or ``skipped``, the queue is not paused, and
  fewer than ``parallel`` stages are running or paused;
* a stage whose dependency ended badly (``failed``, ``killed``, ``lost``, ``dependency-failed``) becomes
  ``dependency-failed`` and is never run;
* restart puts a finished stage back in the queue (a new attempt; the old attempt's log is kept) and
  re-queues the dependants that were ``dependency-failed`` because of it; skip marks a stage ``skipped`` so
  its dependants may go on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pfstui.errors import UserError
from pfstui.queue.model import (
    ACTIVE,
    BAD,
    OK,
    RESTARTABLE,
    SKIPPABLE,
    AttemptStatus,
    StageStatus,
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
        if stage.status != StageStatus.QUEUED or launching(stage):
            continue
        deps = [state.stage(d) for d in stage.depends_on]
        if all(d is not None and d.status in OK for d in deps):
            out.append(stage.id)
            slots -= 1
    return out


def is_finished(state: QueueState) -> bool:
    """Nothing is running and nothing queued can ever start."""
    if any(s.status in ACTIVE for s in state.stages):
        return False
    for stage in state.stages:
        if stage.status == StageStatus.QUEUED:
            deps = [state.stage(d) for d in stage.depends_on]
            if not any(d is not None and d.status in BAD for d in deps):
                return False
    return True


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
