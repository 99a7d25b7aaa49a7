"""Starting a stage's attempt exactly once, wherever the supervisor is killed (see :mod:`pfstui.process.intent`).

Why: a supervisor SIGKILLed just after launching a stage, before saving that it had, left the stage
``queued``; its successor started it again (a second RUN collection).  The order below makes that impossible:
the attempt is decided (:func:`pfstui.queue.launch.prepare`), saved as ``starting`` (``state.json`` is written
atomically and fsynced), only then launched, then its process recorded.  A supervisor killed anywhere in between
leaves a ``starting`` attempt, which its successor settles (:func:`settle`) before serving clients: adopted
when its process started, launched (as the same attempt, with the same token) when no waiter ever claimed it,
``lost`` when that cannot be known; never a second process, never a second attempt.

Test-only kill points (:mod:`pfstui.infra.faults`): ``launch-intent`` (saved, nothing launched),
``launch-spawned`` (in :func:`pfstui.process.runner.launch`: the waiter spawned) and ``launch-started`` (the
process runs, its handle not saved yet).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pfstui.infra.faults import fault_point
from pfstui.process import runner
from pfstui.process.intent import Found, Outcome, find
from pfstui.queue import launch
from pfstui.queue.model import AttemptStatus, StageStatus
from pfstui.queue.state import Attempt, Stage, now

if TYPE_CHECKING:
    from pfstui.queue.supervisor import Supervisor

__all__ = ["settle", "start"]

log = logging.getLogger("pfstui.queue")


def start(sup: Supervisor, stage: Stage, prepare: Callable[[Path], launch.LaunchSpec]) -> None:
    """Start the next attempt of ``stage`` (``prepare``: what it runs with its files in a folder)."""
    number = stage.next_attempt_number()
    adir = launch.attempt_dir(sup.dir, stage.id, number)
    argv: list[str] = []
    try:
        launch.make_folder(adir, stage.id)
        spec = prepare(adir)
        argv = spec.argv
        attempt = launch.intent(spec, number)
    except Exception as exc:  # noqa: BLE001 - a stage that cannot start fails with the reason
        attempt = Attempt(number=number, argv=argv, cwd=str(adir), started_at=now())
        stage.attempts.append(attempt)
        _spawn_failed(sup, stage, attempt, str(exc) or type(exc).__name__)
        return
    if not _save_intent(sup, stage, attempt):
        return
    fault_point("launch-intent")
    try:
        handle = launch.start(attempt)
    except Exception as exc:  # noqa: BLE001
        _spawn_failed(sup, stage, attempt, str(exc) or type(exc).__name__)
        return
    fault_point("launch-started")
    _running(sup, stage, attempt, handle)


def _save_intent(sup: Supervisor, stage: Stage, attempt: Attempt) -> bool:
    """Record ``attempt`` as starting and save it; False (nothing changed, retried next tick) when it cannot be
    saved: an attempt launched without its record is exactly the one a successor would start again."""
    stage.attempts.append(attempt)  # the stage stays queued until its process is recorded (rules.launching)
    if sup.save_now():
        return True
    stage.attempts.pop()
    return False


def settle(sup: Supervisor, stage: Stage, attempt: Attempt) -> None:
    """Find what became of the launch of a ``starting`` attempt and record it (a live waiter about to start
    it: nothing yet, the next tick looks again)."""
    found = find(launch.files_of(attempt))
    if found.outcome is Outcome.NOT_STARTED:
        found = _relaunch(sup, stage, attempt)
    if found.outcome is Outcome.STARTED:
        assert found.record is not None and attempt.started_path is not None
        handle = runner.handle_from_started(found.record, Path(attempt.started_path))
        log.info(f"launch of {stage.id} attempt {attempt.number}: adopted pid {handle.pid}, which its waiter "
                 "had started")
        _running(sup, stage, attempt, handle, settling=True)
    elif found.outcome is Outcome.FAILED:
        code = (found.record or {}).get("returncode")
        _spawn_failed(sup, stage, attempt, found.detail, exit_code=code if isinstance(code, int) else None)
    elif found.outcome is Outcome.VANISHED:
        log.info(f"launch of {stage.id} attempt {attempt.number}: lost ({found.detail})")
        _ended(sup, stage, attempt, AttemptStatus.LOST, StageStatus.LOST, found.detail)


def _relaunch(sup: Supervisor, stage: Stage, attempt: Attempt) -> Found:
    """Launch an attempt no waiter has claimed (PENDING once recorded).  A waiter of the earlier launch may
    still win the claim; its process is then the one returned (see :mod:`pfstui.process.intent`)."""
    try:
        handle = launch.start(attempt, resume=True)
    except Exception as exc:  # noqa: BLE001 - what the files say decides; else it failed with the reason
        again = find(launch.files_of(attempt))
        return again if again.outcome is not Outcome.NOT_STARTED else Found(Outcome.FAILED, None, str(exc))
    log.info(f"launch of {stage.id} attempt {attempt.number}: relaunched, pid {handle.pid} (no waiter had "
             "claimed it)")
    _running(sup, stage, attempt, handle, settling=True)
    return Found(Outcome.PENDING)


def _running(sup: Supervisor, stage: Stage, attempt: Attempt, handle: runner.ProcessHandle, *,
             settling: bool = False) -> None:
    attempt.record_handle(handle)
    stage.argv, stage.status = attempt.argv, StageStatus.RUNNING
    stage.extra.kill_requested, stage.extra.kill_escalate_at = False, None
    if not (settling and _journaled_start(sup, stage, attempt.number)):
        sup.journal_event("start", stage, attempt.number, argv=attempt.argv, stage_pid=handle.pid,
                          log=str(handle.log_path))
    sup.dirty = True


def _journaled_start(sup: Supervisor, stage: Stage, number: int) -> bool:
    """Whether a killed predecessor journaled this start already (read only when settling a launch)."""
    try:
        entries, _ = sup.journal.entries()
    except Exception:  # noqa: BLE001 - an unreadable journal: write the entry (a duplicate beats a gap)
        return False
    return any(e.get("kind") == "command" and e.get("event") == "start" and e.get("session") == str(sup.dir)
               and e.get("stage") == stage.id and e.get("attempt") == number for e in entries)


def _spawn_failed(sup: Supervisor, stage: Stage, attempt: Attempt, detail: str,
                  exit_code: int | None = None) -> None:
    attempt.exit_code = exit_code
    _ended(sup, stage, attempt, AttemptStatus.SPAWN_FAILED, StageStatus.FAILED, detail)
    sup.journal_event("start-failed", stage, attempt.number, argv=attempt.argv, error=detail)


def _ended(sup: Supervisor, stage: Stage, attempt: Attempt, status: AttemptStatus, stage_status: StageStatus,
           detail: str) -> None:
    attempt.status, stage.status = status, stage_status
    attempt.detail, attempt.ended_at = detail, now()
    sup.dirty = True
