"""A compact, lazily built line index over a growing log file, for showing multi-GB logs at once.

Why this exists: a ``pipetask run`` log can reach gigabytes, and the operator wants its last screen *now*.
toolong scans the whole file (``mmap`` + ``rfind``) and keeps a ``list[int]`` of every line break before
it can number lines; that is seconds and ~8 bytes per line (plus a Python int each) for a big log.  Here:

* :meth:`LogIndex.tail_lines` and the tail view read **backwards from the end** in small blocks, so the
  last screen costs one or two ``pread`` calls whatever the file size.  Until the forward index has
  reached the end, lines are addressed **from the end** (the *tail* mode of :class:`LogSnapshot`).
* The forward index is built **in the background, from the start**, by :meth:`LogIndex.index_step`
  (bounded work per call, so a worker thread can stop or yield between calls).  It keeps only a sparse
  **checkpoint** every ``block_bytes`` (128 KiB): two ``array('Q')`` of (line number, byte offset).  A
  2 GB log needs ~16 k checkpoints, 256 KB.  Going to any line reads at most one block.  Once the index
  has reached the end, the total line count is known and lines are addressed absolutely (the *exact*
  mode).
* The file is never mapped nor loaded whole (:class:`~pfstui.logfile.reader.LogReader` does every read),
  and the caches (decoded blocks, single lines) are small LRUs of fixed capacity.
* :meth:`LogIndex.refresh` picks up appended data (the stage is still writing), keeps a last line without
  its newline as a *partial* line, and detects truncation or replacement (inode change, size shrink, or a
  changed first bytes) and starts again (``generation`` increments).

Threading: one thread may call :meth:`refresh` / :meth:`index_step` (the watcher worker) while another
(the UI) takes :meth:`snapshot` and reads lines.  Mutations publish under one short lock; file reads run
outside it (a byte range below the committed end never changes unless the file is reset, and a reset
bumps ``generation``, which every cache key carries).

The index knows lines, not what they say: what a pipetask record looks like is
:mod:`pfstui.pipetask_log.formats`'s business, and a caller that looks for some kind of line passes its
own pattern in (:mod:`pfstui.logfile.search`).  No ``textual`` import here: the widget lives in
``pfstui.ui.widgets.log_view``.
"""

from __future__ import annotations

import os
import threading
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate

from pfstui.infra.lru import SharedLRU
from pfstui.logfile.reader import (
    BACK_BYTES,
    CHUNK_BYTES,
    MAX_LINE_BYTES,
    LogIndexError,
    LogReader,
    decode_line,
)
from pfstui.logfile.snapshot import LogSnapshot

__all__ = ["DEFAULT_BLOCK_BYTES", "LogIndex", "Refresh"]

#: Checkpoint spacing of the forward index (bytes).  One block is the most read to reach any line.
DEFAULT_BLOCK_BYTES = 128 * 1024
#: A block larger than this (a block holding very long lines) is decoded in pieces.
_BIG_BLOCK = 4 * 1024 * 1024


@dataclass(frozen=True)
class Refresh:
    """What one :meth:`LogIndex.refresh` found."""

    #: Complete lines that became known (appended) in this call.
    new_lines: int = 0
    #: Bytes appended since the last call (complete and partial lines).
    new_bytes: int = 0
    #: The file was truncated or replaced; everything was reset (``generation`` incremented).
    reset: bool = False
    #: The path no longer exists (the open file keeps being shown).
    missing: bool = False
    #: The call stopped at its byte budget; call again soon.
    more: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.new_bytes or self.reset)


class LogIndex(LogReader):
    """Line index of one log file, built lazily; see the module docstring.

    Lines are numbered from 0.  A *complete* line ends with ``\\n``; bytes after the last newline form the
    *partial* line (the writer is mid-line), shown but not counted in :attr:`line_count`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        max_line_bytes: int = MAX_LINE_BYTES,
    ) -> None:
        if block_bytes < 1024:
            raise ValueError("block_bytes must be at least 1024")
        self.block_bytes = block_bytes
        self._build_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._blocks = SharedLRU(32)
        super().__init__(path, max_line_bytes=max_line_bytes)

    # -- opening / reset -------------------------------------------------------------------------

    def _open(self) -> None:
        super()._open()
        #: Position up to which [end, scan) is known to hold no newline (a long partial line).
        self._nl_scan = self._size
        # Forward index: checkpoints (line number, offset); cp 0 is (0, 0).
        self._cp_line = array("Q", [0])
        self._cp_off = array("Q", [0])
        self._fwd_lines = 0  # complete lines whose newline lies before _fwd_scan
        self._fwd_scan = 0  # bytes scanned from the start
        self._fwd_line_end = 0  # offset just after the last newline counted
        self._fwd_done = self._end == 0
        # Tail (lines addressed from the end): ascending starts of the last complete lines.
        self._tail: array | None = None
        self._tail_top = self._end  # every complete line starting at or after this is in _tail

    def _reset(self) -> None:
        """The file was truncated or replaced: reopen and start every structure again."""
        with self._lock:
            self.generation += 1
            self._blocks.clear()
            self._lines.clear()
            self._open()

    # -- public state ----------------------------------------------------------------------------

    @property
    def indexed(self) -> bool:
        """True once the forward index has reached the end: line numbers and the total are known."""
        return self._fwd_done

    @property
    def line_count(self) -> int:
        """Complete lines indexed from the start so far (the total once :attr:`indexed`)."""
        return self._fwd_lines

    @property
    def progress(self) -> float:
        """Fraction of the file the forward index has covered (1.0 when done)."""
        if self._fwd_done or self._end == 0:
            return 1.0
        return min(1.0, self._fwd_scan / self._end)

    @property
    def checkpoints(self) -> int:
        """Number of checkpoints held (each is 16 bytes)."""
        return len(self._cp_off)

    @property
    def partial(self) -> str:
        """The last line without its newline yet ('' if the file ends with a newline)."""
        return self._read_span(self._end, self._size)

    def memory_bytes(self) -> int:
        """Approximate bytes held by the index structures (not the bounded caches)."""
        tail = self._tail
        return (self._cp_off.buffer_info()[1] + self._cp_line.buffer_info()[1]) * 8 + (
            len(tail) * 8 if tail is not None else 0)


    # -- refresh (appended data, truncation) -----------------------------------------------------

    def refresh(self, max_bytes: int = 16 * 1024 * 1024) -> Refresh:
        """Pick up data appended since the last call, reading at most about ``max_bytes``.

        Detects replacement (the path now names another inode), truncation (size shrank, or the first
        bytes changed) and restarts the index then.  A deleted path keeps the open file shown.
        """
        with self._refresh_lock:
            try:
                st = os.stat(self.path)
            except OSError:
                return Refresh(missing=True)
            if (st.st_dev, st.st_ino) != self._ino:
                try:
                    self._reset()
                except LogIndexError:
                    return Refresh(missing=True)
                return Refresh(reset=True, new_bytes=self._size)
            try:
                size = os.fstat(self._fd).st_size
            except OSError:
                return Refresh(missing=True)
            if size < self._size or (self._head and self.pread(len(self._head), 0) != self._head):
                self._reset()
                return Refresh(reset=True, new_bytes=self._size)
            if size == self._size:
                return Refresh()
            old_size, old_end = self._size, self._end
            if len(self._head) < 64:
                self._head = self.pread(min(64, size), 0)
            # Bytes [end, nl_scan) are known to hold no newline: scan only what follows.
            start = self._nl_scan
            stop = min(size, start + max_bytes)
            data = self.pread(stop - start, start)
            stop = start + len(data)
            k = data.rfind(b"\n")
            if k < 0:
                with self._lock:
                    self._size = stop
                    self._nl_scan = stop
                return Refresh(new_bytes=stop - old_size, more=stop < size)
            new_end = start + k + 1
            complete = data[: k + 1]
            starts: list[int] | None = None
            if not self._fwd_done:
                # Starts of the newly complete lines, for the tail: the old partial line, then one
                # after every newline but the last.
                starts = [old_end]
                find, pos = complete.find, 0
                while True:
                    j = find(b"\n", pos, k)
                    if j < 0:
                        break
                    pos = j + 1
                    starts.append(start + pos)
            with self._lock:
                if self._fwd_done:
                    new_lines = self._scan_forward(complete, start)
                    self._fwd_scan = new_end
                else:
                    new_lines = complete.count(b"\n")
                    if self._tail is not None and starts is not None:
                        self._tail.extend(starts)
                self._end = new_end
                self._size = stop
                self._nl_scan = stop
            return Refresh(new_lines=new_lines, new_bytes=stop - old_size, more=stop < size)

    # -- forward index ---------------------------------------------------------------------------

    def _scan_forward(self, chunk: bytes, base: int) -> int:
        """Count newlines of ``chunk`` (at ``base``) into the forward index, adding checkpoints.

        Called with the lock held.  Pure C-speed bytes operations: one ``count`` for the total and one
        ``find`` + ``count`` per checkpoint, never a Python loop per line.
        """
        n = chunk.count(b"\n")
        last = self._cp_off[-1]
        lines_before = self._fwd_lines
        counted = 0
        counted_to = 0
        step = self.block_bytes
        find, count = chunk.find, chunk.count
        while True:
            t = last + step - 1 - base
            idx = find(b"\n", t if t > 0 else 0)
            if idx < 0:
                break
            counted += count(b"\n", counted_to, idx + 1)
            counted_to = idx + 1
            last = base + idx + 1
            self._cp_off.append(last)
            self._cp_line.append(lines_before + counted)
        self._fwd_lines = lines_before + n
        if n:
            self._fwd_line_end = base + chunk.rfind(b"\n") + 1
        return n

    def index_step(self, max_bytes: int = 8 * CHUNK_BYTES) -> bool:
        """Advance the forward index by about ``max_bytes``; return True once it has reached the end.

        Bounded so a worker can check for cancellation between calls.  Reads outside the lock; commits
        each chunk under it, unless the file was reset meanwhile.
        """
        with self._build_lock:
            done = 0
            while done < max_bytes:
                with self._lock:
                    if self._fwd_done:
                        return True
                    gen = self.generation
                    pos = self._fwd_scan
                    end = self._end
                    if pos >= end:
                        self._fwd_done = True
                        return True
                n = min(CHUNK_BYTES, end - pos)
                chunk = self.pread(n, pos)
                if len(chunk) < n:  # the file shrank under us; refresh() will reset
                    return False
                with self._lock:
                    if gen != self.generation or pos != self._fwd_scan:
                        return False
                    self._scan_forward(chunk, pos)
                    self._fwd_scan = pos + n
                    if self._fwd_scan >= self._end:
                        self._fwd_done = True
                        return True
                done += n
            return self._fwd_done

    def build_index(self, stop: threading.Event | None = None) -> bool:
        """Run :meth:`index_step` until done (or ``stop`` is set); True when done."""
        while not (stop is not None and stop.is_set()):
            if self.index_step():
                return True
        return False

    def _block_of_line(self, n: int, ncp: int) -> int:
        return bisect_right(self._cp_line, n, 0, ncp) - 1

    def _block(self, b: int, ncp: int, end: int, lines: int) -> tuple[list[int], list[str]]:
        """Decode block ``b`` of the forward index: (line starts, texts).  Cached (LRU of 32 blocks)."""
        start = self._cp_off[b]
        if b + 1 < ncp:
            stop, nlines = self._cp_off[b + 1], self._cp_line[b + 1] - self._cp_line[b]
        else:
            stop, nlines = end, lines - self._cp_line[b]
        key = (self.generation, start, stop)
        hit = self._blocks.get(key)
        if hit is not None:
            return hit
        starts: list[int] = []
        texts: list[str] = []
        if stop - start <= _BIG_BLOCK:
            data = self.pread(stop - start, start)
            pieces = data.split(b"\n")[:nlines]
            starts = list(accumulate((len(p) + 1 for p in pieces[:-1]), initial=start)) if pieces else []
            cap = self.max_line_bytes
            texts = [decode_line(p[:cap], True) if len(p) > cap else decode_line(p) for p in pieces]
        else:  # very long lines: stream the block, keep only the head of each line
            pos, cur, cur_start = start, bytearray(), start
            cap = self.max_line_bytes
            cut = False
            while pos < stop:
                data = self.pread(min(CHUNK_BYTES, stop - pos), pos)
                i = 0
                while True:
                    j = data.find(b"\n", i)
                    piece = data[i:] if j < 0 else data[i:j]
                    room = cap - len(cur)
                    if room > 0:
                        cur += piece[:room]
                    if len(piece) > max(room, 0):
                        cut = True
                    if j < 0:
                        break
                    starts.append(cur_start)
                    texts.append(decode_line(bytes(cur), cut))
                    cur, cut = bytearray(), False
                    cur_start = pos + j + 1
                    i = j + 1
                pos += len(data)
        value = (starts, texts)
        self._blocks[key] = value
        return value

    def line(self, n: int) -> str:
        """Text of line ``n`` (0-based, cut at ``max_line_bytes``); the line must be indexed already."""
        return self.snapshot_exact().text(n)

    def line_offset(self, n: int) -> int:
        """Byte offset where line ``n`` starts; the line must be indexed already (``n < line_count``)."""
        snap = self.snapshot_exact()
        if not 0 <= n < snap.lines:
            raise IndexError(f"line {n} is not indexed yet ({snap.lines} lines indexed)")
        return snap.offset(n)

    def line_number(self, offset: int) -> int:
        """Number of the line containing byte ``offset`` (must be below the indexed position)."""
        with self._lock:
            ncp, lines, end = len(self._cp_off), self._fwd_lines, self._end
            done = self._fwd_done
        if not done:
            raise IndexError("the index has not reached the end yet")
        offset = max(0, min(offset, end))
        if offset >= end:
            return lines
        b = bisect_right(self._cp_off, offset, 0, ncp) - 1
        starts, _ = self._block(b, ncp, end, lines)
        return self._cp_line[b] + bisect_right(starts, offset) - 1

    # -- tail (lines from the end) ---------------------------------------------------------------

    def extend_tail(self, want: int, *, max_bytes: int | None = None, until: int | None = None) -> int:
        """Make at least ``want`` more lines before the current tail known (reading backwards).

        Stops early at the file start, after ``max_bytes`` read, or once the tail reaches offset
        ``until``.  Returns how many lines were prepended (callers shift their row numbers by it).
        """
        with self._lock:
            if self._tail is None:
                self._tail = array("Q")
                self._tail_top = self._end
            top, gen = self._tail_top, self.generation
        if top == 0 or want <= 0:
            return 0
        new: list[int] = []  # descending starts
        hi = top - 1  # byte top-1 is the newline ending the line before `top`
        read = 0
        while hi > 0 and (len(new) < want or (until is not None and (not new or new[-1] > until))):
            if max_bytes is not None and read >= max_bytes:
                break
            lo = max(0, hi - BACK_BYTES)
            data = self.pread(hi - lo, lo)
            read += len(data)
            j = len(data)
            while True:
                k = data.rfind(b"\n", 0, j)
                if k < 0:
                    j = 0
                    break
                new.append(lo + k + 1)
                j = k
                if len(new) >= want and (until is None or new[-1] <= until):
                    break
            hi = lo + j
        if hi == 0:
            new.append(0)
        with self._lock:
            if gen != self.generation or self._tail is None or self._tail_top != top:
                return 0
            prefix = array("Q", reversed(new))
            self._tail = prefix + self._tail
            self._tail_top = prefix[0]
        return len(new)

    def tail_lines(self, n: int) -> list[str]:
        """The last ``n`` lines (the partial last line counts as one), read backwards from the end."""
        if n <= 0:
            return []
        with self._lock:
            has_partial = self._size > self._end
        want = n - (1 if has_partial else 0)
        snap = self.snapshot(min_tail=want, prefer_exact=False)
        rows = snap.rows
        first = max(0, rows - n)
        out = [snap.text(r) for r in range(first, rows)]
        return out

    # -- snapshots (the UI's stable row mapping) -------------------------------------------------

    def snapshot(self, *, min_tail: int = 0, prefer_exact: bool = True) -> LogSnapshot:
        """A frozen row mapping for the UI: rows are lines (plus the partial line, if any).

        Exact (rows are absolute line numbers) once the index has reached the end, unless
        ``prefer_exact`` is false; otherwise *tail* mode: rows are the lines known from the end (at least
        ``min_tail`` of them when the file has that many), row 0 being the oldest known.  The mapping of a
        snapshot never changes; take a new one after :meth:`refresh` / :meth:`extend_tail`.
        """
        with self._lock:
            exact = self._fwd_done and prefer_exact
        if not exact:
            with self._lock:
                have = len(self._tail) if self._tail is not None else 0
                top = self._tail_top if self._tail is not None else self._end
            if self._tail is None or (have < min_tail and top > 0):
                self.extend_tail(max(min_tail - have, 0) or 1)
        with self._lock:
            if exact:
                self._tail = None
                self._tail_top = self._end
                return LogSnapshot(self, self.generation, True, self._fwd_lines, self._end, self._size,
                                   ncp=len(self._cp_off))
            tail = self._tail if self._tail is not None else array("Q")
            return LogSnapshot(self, self.generation, False, len(tail), self._end, self._size, tail=tail)

    def snapshot_exact(self) -> LogSnapshot:
        """An exact snapshot over the lines indexed so far (even before the index reaches the end).

        Its rows are the complete lines counted from the start; no partial row.
        """
        with self._lock:
            end = self._end if self._fwd_done else self._fwd_line_end
            return LogSnapshot(self, self.generation, True, self._fwd_lines, end, end, ncp=self._ncp_upto(end))

    def _ncp_upto(self, end: int) -> int:
        """Checkpoints at offsets <= end (a checkpoint may sit at the start of an uncounted line)."""
        return bisect_right(self._cp_off, end)
