"""Worker errors, handled once per pane.

Why: a pane's thread workers (Butler reads, previews, applies) used to catch ``Exception`` at every call
site and post a message of their own.  Now a worker just raises; Textual reports the failure as a
``Worker.StateChanged`` event on the pane that started it, and :class:`WorkerErrors` turns it into one line
for the pane's :meth:`~WorkerErrors.worker_failed`: a :class:`~pfstui.errors.UserError` as its own message
(problem and fix), anything else as "unexpected", never a traceback on screen.  A worker's ``description``
(``@work(description="Cannot list collections")``) is the context put before the message.
"""

from __future__ import annotations

from textual.worker import Worker, WorkerState

from pfstui.errors import UserError

__all__ = ["WorkerErrors", "error_text"]


def error_text(error: BaseException, context: str = "") -> str:
    """One line for ``error``: its message when it is the operator's to fix, else named as unexpected."""
    text = str(error) if isinstance(error, UserError) else f"unexpected {type(error).__name__}: {error}"
    text = " ".join(text.split()) or type(error).__name__
    return f"{context}: {text}" if context else text


class WorkerErrors:
    """Mixin for a widget whose ``@work`` workers raise: their failures reach :meth:`worker_failed` once."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state != WorkerState.ERROR or worker.error is None:
            return
        event.stop()
        self.worker_failed(worker, error_text(worker.error, worker.description))

    def worker_failed(self, worker: Worker, text: str) -> None:  # pragma: no cover - every user overrides it
        raise NotImplementedError
