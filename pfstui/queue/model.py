"""The queue's status words, defined once: what a stage and an attempt of it can be, and the groups the
rules, the supervisor and the clients ask about.

They are ``StrEnum`` members, so each is its word: ``state.json`` and the protocol carry the same strings
as before (``"dependency-failed"``), and a status compares equal to its word.  This module imports nothing
heavy: the scheduler's rules and the app's first frame use it without pydantic.

Per-task quanta counts use Rubin's ``pipetask report`` words instead (successful / failed / blocked /
unknown); they are not queue states.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ACTIVE",
    "BAD",
    "EDITABLE",
    "ENDED",
    "FINISHED",
    "MAX_PARALLEL",
    "OK",
    "RAN_BADLY",
    "RESTARTABLE",
    "SKIPPABLE",
    "AttemptStatus",
    "StageStatus",
]


#: The most stages a queue may run at once: far above any host's cores, far below a typo such as ``1e22``.
MAX_PARALLEL = 1000


class StageStatus(StrEnum):
    """Where a stage is in the queue (see :mod:`pfstui.queue.rules` for how it moves)."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"  # its process group is stopped (SIGSTOP)
    DONE = "done"
    FAILED = "failed"
    KILLED = "killed"
    DEPENDENCY_FAILED = "dependency-failed"  # a stage it depends on ended badly: never run
    SKIPPED = "skipped"  # marked by the operator, so that its dependants may go on
    LOST = "lost"  # its process vanished (or its pid was reused) without a recorded exit status


class AttemptStatus(StrEnum):
    """How one run of a stage went."""

    STARTING = "starting"  # a record not launched yet
    RUNNING = "running"  # launched; its stage says whether it is paused
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"
    LOST = "lost"
    SPAWN_FAILED = "spawn_failed"  # its command could not even be built or started (``detail`` says why)


S = StageStatus
#: A process of the stage is alive.
ACTIVE = frozenset({S.RUNNING, S.PAUSED})
#: Its dependants may run.
OK = frozenset({S.DONE, S.SKIPPED})
#: Ended badly: its dependants never run (until it is restarted or skipped).
BAD = frozenset({S.FAILED, S.KILLED, S.LOST, S.DEPENDENCY_FAILED})
FINISHED = OK | BAD
RESTARTABLE = BAD
#: Its next attempt has not started: its options may still be edited in the plan file.
EDITABLE = frozenset({S.QUEUED})
SKIPPABLE = frozenset({S.QUEUED}) | BAD
#: Its own attempt ended badly (a dependency-failed stage never ran): its failures and log are worth showing.
RAN_BADLY = frozenset({S.FAILED, S.KILLED, S.LOST})
#: An attempt of it has just ended, one way or the other (what the app announces).
ENDED = RAN_BADLY | {S.DONE}
del S
