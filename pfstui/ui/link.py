"""The app's link to the session supervisor: a worker thread that subscribes to queue events.

Widgets never talk to the socket themselves: they post `QueueRequest` messages to the app, which sends
them from a worker thread, and receive `QueueUpdated` snapshots and `QueueReply`/`QueueFailed` results.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.message import Message


@dataclass
class QueueUpdated(Message):
    """A fresh snapshot of the queue (the supervisor's ``state`` event)."""

    snapshot: dict[str, Any]


@dataclass
class LinkStatus(Message):
    connected: bool
    text: str


@dataclass
class QueueRequest(Message):
    """Ask the supervisor to do something; ``label`` is what the notification says afterwards."""

    cmd: str
    args: dict[str, Any] = field(default_factory=dict)
    label: str = ""


@dataclass
class QueueReply(Message):
    request: QueueRequest
    result: Any


@dataclass
class QueueFailed(Message):
    request: QueueRequest
    error: str


class SupervisorLink:
    """Owns the subscription connection; reconnects (restarting the supervisor) when it drops."""

    def __init__(self, session_dir: Path, post) -> None:
        self.session_dir = session_dir
        self.post = post
        self.stop = threading.Event()

    def run(self) -> None:
        from pfstui.queue.protocol import SupervisorClient, SupervisorError

        backoff = 0.5
        while not self.stop.is_set():
            try:
                client = SupervisorClient(self.session_dir).connect()
                snapshot = client.request("subscribe")
                self.post(LinkStatus(True, f"supervisor pid {snapshot.get('supervisor_pid')}"))
                self.post(QueueUpdated(snapshot))
                backoff = 0.5
                for event in client.events(timeout=0.5):
                    if self.stop.is_set():
                        break
                    if event is not None and event.get("event") == "state":
                        self.post(QueueUpdated(event))
                client.close()
            except (SupervisorError, OSError, ValueError) as exc:
                self.post(LinkStatus(False, f"supervisor unreachable: {exc}"))
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def request(self, req: QueueRequest) -> Any:
        from pfstui.queue.protocol import SupervisorClient

        with SupervisorClient(self.session_dir) as client:
            return client.request(req.cmd, **req.args)
