"""The queue's status words, defined once: what a stage and an attempt of it can be, and the groups the
rules, the supervisor and the clients ask about.

They are ``StrEnum`` members, so each is its word: ``state.json`` and the protocol carry the same strings
as before (``"dependency-failed"``), and a status compares equal to its word.  This module imports nothing
heavy: the scheduler's rules and the app's first frame use it without pydantic.

Per-task quanta counts use Rubin's ``pipetask report`` words instead (successful / failed / blocked /
unknown); they are not queue states.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

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
    "WAITS",
    "AttemptStatus",
    "StageStatus",
    "Wait",
    "WaitKind",
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
    WAITING = "waiting"  # its dependencies are done; it waits for an operator's approval (``approve: true``)


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
EDITABLE = frozenset({S.QUEUED, S.WAITING})
#: Skipping a waiting stage is rejecting it.
SKIPPABLE = frozenset({S.QUEUED, S.WAITING}) | BAD
#: Its own attempt ended badly (a dependency-failed stage never ran): its failures and log are worth showing.
RAN_BADLY = frozenset({S.FAILED, S.KILLED, S.LOST})
#: An attempt of it has just ended, one way or the other (what the app announces).
ENDED = RAN_BADLY | {S.DONE}
#: It has not started and the queue says why (:func:`pfstui.queue.rules.waits`).
WAITS = frozenset({S.QUEUED, S.WAITING})
del S

#: Why a stage waits: a stage it depends on is not done, an operator's approval is awaited, the queue
#: is paused, the parallel limit is reached, or nothing: it starts at the supervisor's next tick.
WaitKind = Literal["dependency", "approval", "paused", "parallel", "starting"]


@dataclass(frozen=True)
class Wait:
    """One reason a stage is not running, decided by the supervisor's rules and shown as it is by every client.

    Why both texts come from the rules: the Queue pane, its details and ``pfstui status`` must say the same
    thing, and none of them may guess the scheduler's reasons from the state.  A plain dataclass (no pydantic),
    so the rules stay cheap; the snapshot carries it as it is.
    """

    kind: WaitKind
    #: A few words for a table cell (at most :data:`LABEL_WIDTH` characters).
    label: str
    #: The whole reason, naming the stages it waits for and their status.
    text: str
    #: The stages it waits for (a dependency), or those holding the parallel slots.
    stages: tuple[str, ...] = field(default=())


#: The most characters of a :attr:`Wait.label` (the Queue pane's Quanta column).
LABEL_WIDTH = 20
