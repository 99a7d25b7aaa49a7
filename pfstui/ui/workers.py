"""Workers of the panes: errors handled once per pane, repository work on threads of its own.

Why errors here: a pane's workers (Butler reads, previews, applies) used to catch ``Exception`` at every call
site and post a message of their own.  Now a worker just raises; Textual reports the failure as a
``Worker.StateChanged`` event on the pane that started it, and :class:`WorkerErrors` turns it into one line
for the pane's :meth:`~WorkerErrors.worker_failed`: a :class:`~pfstui.errors.UserError` as its own message
(problem and fix), anything else as "unexpected", never a traceback on screen.  A worker's ``description``
(``@work(description="Cannot list collections")``) is the context put before the message.

Why threads of its own (:class:`Lane`): Textual's thread workers run on the event loop's default executor,
shared with everything else that runs in a thread (6 threads on 2 cores).  When each open log followed its
file from there, four or five logs and the supervisor link took every thread and the certify preview waited
silently behind them.  So repository work runs on the app's :class:`Lane` for the Butler (two threads, made
on first use, shut down with the app): panes start *async* workers (``@work(exclusive=True, group=...)``)
that ``await`` the lane, so nothing else can take those threads and a slow Butler call cannot take anyone
else's.  :class:`RepositoryWork` adds what the operator sees: a working line once a call takes a moment,
and Escape to cancel a read or a preview (the late result is thrown away; an apply, once started, finishes).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, TypeVar

from textual.actions import SkipAction
from textual.worker import Worker, WorkerState

from pfstui.errors import UserError

__all__ = ["Lane", "RepositoryWork", "WorkerErrors", "butler_lane", "error_text"]

T = TypeVar("T")


def error_text(error: BaseException, context: str = "") -> str:
    """One line for ``error``: its message when it is the operator's to fix, else named as unexpected."""
    text = str(error) if isinstance(error, UserError) else f"unexpected {type(error).__name__}: {error}"
    text = " ".join(text.split()) or type(error).__name__
    return f"{context}: {text}" if context else text


class WorkerErrors:
    """Mixin for a widget whose ``@work`` workers raise: their failures reach :meth:`worker_failed` once."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        self.work_changed(worker)
        if event.state != WorkerState.ERROR or worker.error is None:
            return
        event.stop()
        self.worker_failed(worker, error_text(worker.error, worker.description))

    def work_changed(self, worker: Worker) -> None:
        """A worker of this widget started or ended (Textual handlers run once per class: a hook instead)."""

    def worker_failed(self, worker: Worker, text: str) -> None:  # pragma: no cover - every user overrides it
        raise NotImplementedError


class Lane:
    """A fixed number of threads of one kind of work, owned by the app (see the module docstring).

    Threads are made on the first :meth:`call`, and :meth:`shutdown` drops the calls not started yet.
    """

    def __init__(self, name: str, threads: int) -> None:
        self.name = name
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._running = 0

    @property
    def running(self) -> int:
        """Calls executing in one of the threads right now."""
        return self._running

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on one of the lane's threads; the event loop never waits for it.

        Cancelling the awaiting task (Escape, an exclusive worker replaced, the app closing) drops a call not
        started yet; one already running finishes in its thread and its result is thrown away.
        """
        pool = self._executor()
        if pool is None:  # the app is closing
            raise asyncio.CancelledError
        return await asyncio.get_running_loop().run_in_executor(pool, self._run, fn, args)

    def _run(self, fn: Callable[..., T], args: tuple) -> T:
        with self._lock:
            self._running += 1
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._running -= 1

    def _executor(self) -> ThreadPoolExecutor | None:
        with self._lock:
            if self._pool is None and not self._closed:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix=self.name)
            return self._pool

    def shutdown(self) -> None:
        """Drop what has not started; the app does not wait for a call already running."""
        with self._lock:
            pool, self._pool, self._closed = self._pool, None, True
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def butler_lane(app: Any) -> Lane:
    """The app's lane for repository work (made here for an app that has none: a pane in a test app)."""
    lane = getattr(app, "butler_lane", None)
    if lane is None:
        lane = app.butler_lane = Lane("pfstui-butler", 2)
    return lane


class RepositoryWork(WorkerErrors):
    """Mixin for a pane whose repository work runs on the app's Butler lane.

    The pane's workers are async (``@work(exclusive=True, group=G, exit_on_error=False)``) and ``await``
    :meth:`in_butler`.  While a worker of a group in :attr:`WORKING` has run for :attr:`WORKING_DELAY`, the pane's
    :meth:`show_working` is given what is going on (a quick call shows nothing: no flicker, no bytes on a slow
    link); Escape (the pane's ``action_cancel_work`` binding) cancels the ones in :attr:`CANCELLABLE`.
    """

    #: group -> what the pane says while it runs ("refreshing the collections").
    WORKING: ClassVar[dict[str, str]] = {}
    #: Groups Escape cancels: reads and previews (an apply, once started, finishes or fails).
    CANCELLABLE: ClassVar[frozenset[str]] = frozenset()
    WORKING_DELAY: ClassVar[float] = 0.25

    async def in_butler(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the app's Butler lane (never on the UI thread, never in the shared pool)."""
        return await butler_lane(self.app).call(fn, *args)  # type: ignore[attr-defined]

    def work_changed(self, worker: Worker) -> None:
        if worker.group not in self.WORKING:
            return
        since = self.__dict__.setdefault("_work_since", {})
        if worker.state == WorkerState.RUNNING:
            since.setdefault(worker, time.monotonic())
            self.set_timer(self.WORKING_DELAY, self._update_working)  # type: ignore[attr-defined]
        else:
            since.pop(worker, None)
            self._update_working()

    def _update_working(self) -> None:
        since: dict[Worker, float] = self.__dict__.get("_work_since", {})
        now = time.monotonic()
        texts = [self.WORKING[w.group] for w, at in sorted(since.items(), key=lambda item: item[1])
                 if w.state == WorkerState.RUNNING and now - at >= self.WORKING_DELAY * 0.9]
        cancellable = any(w.group in self.CANCELLABLE for w in since if w.state == WorkerState.RUNNING)
        line = ", ".join(dict.fromkeys(texts)) + ("… (esc cancels)" if cancellable else "…") if texts else None
        if line != self.__dict__.get("_working_line"):
            self.__dict__["_working_line"] = line
            self.show_working(line)

    @property
    def working(self) -> str | None:
        """What the working line says now (None: nothing is taking long)."""
        return self.__dict__.get("_working_line")

    def action_cancel_work(self) -> None:
        """Escape: cancel the running reads and previews; with none, the key goes on to its other meaning."""
        running = [w for w in self.app.workers  # type: ignore[attr-defined]
                   if w.node is self and w.group in self.CANCELLABLE and not w.is_finished]
        if not running:
            raise SkipAction
        for worker in running:
            worker.cancel()
        self.work_cancelled({w.group for w in running})

    def show_working(self, line: str | None) -> None:  # pragma: no cover - every user overrides it
        raise NotImplementedError

    def work_cancelled(self, groups: set[str]) -> None:
        """Say what Escape cancelled (the pane's choice of words and place)."""
