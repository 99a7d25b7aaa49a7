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

__all__ = ["LogWatcher"]


class LogWatcher:
    """Watches one log file for one view (see the module docstring); :meth:`run` is the thread's body.

    ``post()`` announces a batch (False: one is still pending, try later); ``on_missing()`` is told the
    path is gone (the open file keeps being shown) and says whether that is news for the screen.
    """

    def __init__(self, path: Path, poll_interval: float, *, post: Callable[[], bool],
                 on_missing: Callable[[], bool]) -> None:
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
        """Poll until :attr:`stop` is set or ``cancelled()``; ``warm`` lines are read first from the end.

        Never raises: a read error becomes the view's inline message and the file is reopened later.
        """
        index: LogIndex | None = None
        last_post = 0.0
        dirty = False  # a change not yet announced to the UI
        try:
            while not self.stop.is_set() and not cancelled():
                try:
                    if index is None:
                        index = self._open()
                        if index is not None:
                            self._publish(index, warm)
                            last_post = time.monotonic()
                        continue
                    changed, busy = self._step(index, warm)
                except Exception as exc:  # noqa: BLE001 - shown inline, then the file is reopened
                    self.problem = f"cannot read {self.path}: {exc}; retrying"
                    if index is not None:
                        index.close()
                    index = None
                    self._post()
                    self.stop.wait(1.0)
                    continue
                dirty = dirty or changed
                now = time.monotonic()
                if dirty and (not busy or now - last_post >= self.poll_interval):
                    if self._post():
                        last_post = now
                        dirty = False
                if busy:
                    self.stop.wait(0.0005)
                else:
                    # Wake on a common clock: every view's batch lands in the same frame.
                    self.stop.wait(self.poll_interval - time.monotonic() % self.poll_interval)
        finally:
            if index is not None:
                index.close()

    def _open(self) -> LogIndex | None:
        """The file's index; None (after saying why, once, and a pause) while the file cannot be opened."""
        try:
            return LogIndex(self.path)
        except LogIndexError as exc:
            if str(exc) != self._last_problem:
                self._last_problem = self.problem = str(exc)
                self._post()
            self.stop.wait(max(self.poll_interval, 0.5))
            return None

    def _publish(self, index: LogIndex, warm: int) -> None:
        """Hand a newly opened file to the UI, its last screen already read."""
        if not index.indexed:
            index.extend_tail(warm)
        index.tail_lines(min(warm, 100))  # warm the line cache for the first screen
        self.index, self.problem, self._last_problem = index, None, None
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
            if not self.first_paint.is_set():
                # The last screen first: indexing competes for the GIL with the first paint.
                self.first_paint.wait(1.0)
                self.stop.wait(0.05)
            index.index_step()
            busy = True
            changed = True
        scan = self.scan
        if scan is not None and scan.generation == index.generation:
            before = len(scan)
            if not scan.step():
                busy = True
            changed = changed or len(scan) != before or r.changed
        return changed, busy
