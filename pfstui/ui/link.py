"""The app's link to the session supervisor: a worker thread that subscribes to queue events.

Widgets never talk to the socket themselves: they post `QueueRequest` messages (holding a typed request of
:mod:`pfstui.queue.requests`) to the app, which sends them from a worker thread, and receive `QueueUpdated`
snapshots and `QueueReply`/`QueueFailed` results.

The contract's models (pydantic) are imported only when a widget first asks for them, through
:func:`contract`: they are not needed for the app's first frame.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from pfstui.ui.messages import LinkStatus, QueueUpdated

if TYPE_CHECKING:
    from pydantic import BaseModel

    from pfstui.ui.messages import QueueRequest


def contract() -> ModuleType:
    """:mod:`pfstui.queue.requests`, imported on first use: the one lazy place the UI gets the queue's
    request and snapshot models from (pydantic costs ~0.1 s to import, off the first frame)."""
    import pfstui.queue.requests

    return pfstui.queue.requests


class SupervisorLink:
    """Owns the subscription connection; reconnects (restarting the supervisor) when it drops."""

    def __init__(self, session_dir: Path, post, *, read_only: bool = False) -> None:
        self.session_dir = session_dir
        self.post = post
        #: Every connection says so in its hello, so the supervisor itself refuses changes (pfstui --read-only).
        self.read_only = read_only
        self.stop = threading.Event()

    def run(self) -> None:
        from pfstui.queue.protocol import SupervisorClient, SupervisorError

        backoff = 0.5
        while not self.stop.is_set():
            try:
                client = SupervisorClient(self.session_dir, read_only=self.read_only).connect()
                snapshot = client.request(contract().Subscribe())
                self.post(LinkStatus(True, f"supervisor pid {snapshot.supervisor_pid}"))
                self.post(QueueUpdated(snapshot))
                backoff = 0.5
                for event in client.events(timeout=0.5):
                    if self.stop.is_set():
                        break
                    if event is not None:
                        self.post(QueueUpdated(event))
                client.close()
            except (SupervisorError, OSError, ValueError) as exc:
                self.post(LinkStatus(False, f"supervisor unreachable: {exc}"))
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def request(self, req: QueueRequest) -> BaseModel:
        from pfstui.queue.protocol import SupervisorClient

        with SupervisorClient(self.session_dir, read_only=self.read_only) as client:
            return client.request(req.request)
