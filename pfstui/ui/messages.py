"""The messages that travel between the app, its panes and the supervisor link: one home, each carrying its data.

Pane-internal messages (a worker's result for its own pane) stay nested in their pane's class; what crosses
widgets is here, so a reader sees every conversation of the app in one file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from pydantic import BaseModel

    from pfstui.queue.requests import Request, Snapshot

__all__ = [
    "LinkStatus",
    "OpenLog",
    "QueueFailed",
    "QueueReply",
    "QueueRequest",
    "QueueUpdated",
    "RegistryChanged",
]


@dataclass
class QueueUpdated(Message):
    """A fresh snapshot of the queue (the supervisor's ``state`` event).

    Only the newest matters: a snapshot still waiting in a queue is replaced by a newer one (a flood of
    events over a slow link coalesces instead of queueing repaints).
    """

    snapshot: Snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, QueueUpdated)


@dataclass
class LinkStatus(Message):
    """The supervisor link came up (``connected``) or went down; ``text`` says which supervisor or why."""

    connected: bool
    text: str


@dataclass
class QueueRequest(Message):
    """Ask the supervisor to do something; ``label`` is what the notification says afterwards."""

    request: Request[Any]
    label: str = ""

    @property
    def cmd(self) -> str:
        return self.request.cmd


@dataclass
class QueueReply(Message):
    request: QueueRequest
    result: BaseModel


@dataclass
class QueueFailed(Message):
    request: QueueRequest
    error: str


class RegistryChanged(Message):
    """The repository was changed (the Collections pane refreshes)."""


@dataclass
class OpenLog(Message):
    """Ask the Logs pane to show a stage's log (optionally at a byte offset)."""

    stage_id: str
    path: str
    offset: int | None = None
