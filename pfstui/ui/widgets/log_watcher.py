"""The thread side of a log view: poll one file, keep its index and filter scan moving, announce changes.

Why a class of its own: everything a :class:`~pfstui.ui.widgets.log_view.LogView` does off the UI thread
is here, and so is everything the two threads share, each field written by one side only:

* :attr:`LogWatcher.index` and :attr:`~LogWatcher.problem` are written here, read by the UI;
* :attr:`~LogWatcher.want_back` (lines to read backwards in tail mode) is asked by the UI, taken here;
* :attr:`~LogWatcher.scan` (the filter's scan) is made by the UI, stepped here;
* :attr:`~LogWatcher.first_paint` is set by the UI once rows are painted (background indexing waits for
  it: it competes for the GIL with the first paint).

The watcher polls (default 5 times a second, no inotify), refreshes the index, advances the background
index and the filter scan, and calls ``post()`` for a batch; the view's ``post`` refuses while one batch
is still pending, so a slow UI coalesces batches instead of queueing them.  Watchers wake on a common
clock, so the batches of all visible views land in one frame.  No ``textual`` import here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from pfstui.logfile.index import LogIndex
from pfstui.logfile.reader import LogIndexError
from pfstui.logfile.search import FilterScan

__all__ = ["LogWatchHub", "LogWatcher"]


class LogWatcher:
    """Watches one log file for one view (see the module docstring); :meth:`run` is the thread's body.

    ``post()`` announces a batch (False: one is still pending, try later); ``on_missing()`` is told the
    path is gone (the open file keeps being shown) and says whether that is news for the screen.
    """

    def __init__(self, path: Path, poll_interval: float, *, post: Callable[[], bool],
                 on_missing: Callable[[], bool]) -> None:
        self._early_step_at = 0.0
        self.path = path
        self.poll_interval = poll_interval
        self._post = post
        self._on_missing = on_missing
        self._last_problem: str | None = None
        #: Set to end :meth:`run` (the view was closed or unmounted).
        self.stop = threading.Event()
        #: Set by the UI once rows are painted: background work may start.
        self.first_paint = threading.Event()
        #: The open index, None until the file could be opened.
        self.index: LogIndex | None = None
        #: Why the file is not shown (missing, unreadable), or None.
        self.problem: str | None = None
        #: Lines the UI asks to read backwards from the known tail (tail mode).
        self.want_back = 0
        #: The scan of the view's filter (None: no filter).
        self.scan: FilterScan | None = None

    def run(self, *, warm: int, cancelled: Callable[[], bool]) -> None:
        """Poll until :attr:`stop` is set or ``cancelled()`` (a thread of its own: tests and benches)."""
        self.start(warm)
        try:
            while not self.stop.is_set() and not cancelled():
                self.stop.wait(max(0.0, self.tick(time.monotonic()) - time.monotonic()))
        finally:
            self.close()

    def start(self, warm: int) -> None:
        """Before the first :meth:`tick`: ``warm`` lines are read first from the end."""
        self._warm = warm
        self._index: LogIndex | None = None
        self._last_post = 0.0
        self._dirty = False  # a change not yet announced to the UI
        self._not_before = 0.0  # an open that failed, or a read error: wait until then

    def close(self) -> None:
        if getattr(self, "_index", None) is not None:
            self._index.close()
            self._index = None

    def tick(self, now: float) -> float:
        """One poll; returns when this watcher wants the next one (monotonic time).  Never raises, never
        blocks: a read error becomes the view's inline message and the file is reopened a second later."""
        if now < self._not_before:
            return self._not_before
        try:
            if self._index is None:
                self._index = self._open()
                if self._index is None:
                    self._not_before = now + max(self.poll_interval, 0.5)
                    return self._not_before
                self._publish(self._index, self._warm)
                self._last_post = now
                return now
            changed, busy = self._step(self._index, self._warm)
        except Exception as exc:  # noqa: BLE001 - shown inline, then the file is reopened
            self.problem = f"cannot read {self.path}: {exc}; retrying"
            self.close()
            self._post()
            self._not_before = now + 1.0
            return self._not_before
        self._dirty = self._dirty or changed
        if self._dirty and (not busy or now - self._last_post >= self.poll_interval):
            if self._post():
                self._last_post = now
                self._dirty = False
        if busy:
            return now
        # Wake on a common clock: every view's batch lands in the same frame.
        return now + self.poll_interval - now % self.poll_interval

    def _open(self) -> LogIndex | None:
        """The file's index; None (after saying why, once, and a pause) while the file cannot be opened."""
        try:
            return LogIndex(self.path)
        except LogIndexError as exc:
            if str(exc) != self._last_problem:
                self._last_problem = self.problem = str(exc)
                self._post()
            return None

    def _publish(self, index: LogIndex, warm: int) -> None:
        """Hand a newly opened file to the UI, its last screen already read."""
        if not index.indexed:
            index.extend_tail(warm)
        index.tail_lines(min(warm, 100))  # warm the line cache for the first screen
        self.index, self.problem, self._last_problem = index, None, None
        self._early_step_at = time.monotonic()
        self._post()

    def _step(self, index: LogIndex, warm: int) -> tuple[bool, bool]:
        """One poll: appended data, lines asked for backwards, some indexing, some filtering.

        Returns (changed: something to show, busy: more work waits, poll again at once).
        """
        busy = False
        changed = False
        r = index.refresh()
        if r.missing and self._on_missing():
            changed = True
        if r.reset and not index.indexed:
            index.extend_tail(warm)  # a new file: its last screen first, again
        if r.changed or r.more:
            changed = True
            busy = busy or r.more
        if self.want_back and not index.indexed:
            n, self.want_back = self.want_back, 0
            if index.extend_tail(n, max_bytes=64 * 1024 * 1024):
                changed = True
        if not index.indexed:
            if self.first_paint.is_set():
                index.index_step()
                busy = changed = True
            elif time.monotonic() - self._early_step_at >= 1.0:
                # The last screen first: indexing competes for the GIL with the first paint, so until it is
                # painted, one step a second.
                self._early_step_at = time.monotonic()
                index.index_step()
                changed = True
        scan = self.scan
        if scan is not None and scan.generation == index.generation:
            before = scan.position
            if not scan.step():
                busy = True
            changed = changed or scan.position != before or r.changed
        return changed, busy


class LogWatchHub:
    """The one thread that polls every open log view's file, however many are open.

    Why one: each view used to run its watcher as a Textual thread worker, and those share the event loop's
    default executor (6 threads on 2 cores).  Four or five open logs took every thread, and the Butler work
    of the other panes (the certify preview, a Collections refresh) waited silently behind them.  Now the
    number of threads for following logs is fixed (one), and each watcher's :meth:`LogWatcher.tick` says
    when it next wants a turn; busy ones (indexing, filtering) get turns back to back, idle ones wake on
    the common poll clock.
    """

    _lock = threading.Lock()
    _shared: LogWatchHub | None = None

    def __init__(self) -> None:
        self._watchers: dict[LogWatcher, float] = {}
        self._wake = threading.Event()
        self._mutex = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="pfstui-log-watch", daemon=True)
        self._thread.start()

    @classmethod
    def shared(cls) -> LogWatchHub:
        """The process's hub, started on first use."""
        with cls._lock:
            if cls._shared is None or not cls._shared._thread.is_alive():
                cls._shared = cls()
            return cls._shared

    def add(self, watcher: LogWatcher, *, warm: int) -> None:
        watcher.start(warm)
        with self._mutex:
            self._watchers[watcher] = 0.0
        self._wake.set()

    def __len__(self) -> int:
        with self._mutex:
            return len(self._watchers)

    def _run(self) -> None:
        while True:
            with self._mutex:
                due = list(self._watchers.items())
            now = time.monotonic()
            for watcher, at in due:
                if watcher.stop.is_set():
                    watcher.close()
                    with self._mutex:
                        self._watchers.pop(watcher, None)
                elif at <= now:
                    next_at = watcher.tick(now)
                    with self._mutex:
                        if watcher in self._watchers:
                            self._watchers[watcher] = next_at
            with self._mutex:
                soonest = min(self._watchers.values(), default=now + 1.0)
            timeout = soonest - time.monotonic()
            if timeout > 0:
                self._wake.wait(min(timeout, 1.0))
            self._wake.clear()
