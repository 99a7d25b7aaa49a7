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
* The file is never mapped nor loaded whole: every read is an ``os.pread`` of at most a few MiB, and the
  caches (decoded blocks, single lines) are small LRUs of fixed capacity.
* :meth:`LogIndex.refresh` picks up appended data (the stage is still writing), keeps a last line without
  its newline as a *partial* line, and detects truncation or replacement (inode change, size shrink, or a
  changed first bytes) and starts again (``generation`` increments).

Threading: one thread may call :meth:`refresh` / :meth:`index_step` (the watcher worker) while another
(the UI) takes :meth:`snapshot` and reads lines.  Mutations publish under one short lock; file reads run
outside it (a byte range below the committed end never changes unless the file is reset, and a reset
bumps ``generation``, which every cache key carries).

The module also holds the pipetask-specific recognisers the log view needs (level of a line in the
default, ``--long-log`` and ``--log-file X.json`` formats; "failed quantum" lines; structured fields of a
record) and byte-level regex search bounded per call (:func:`search`, :class:`FilterScan`).

No ``textual`` import here: the widget lives in ``pfstui.ui.panes.logs``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import threading
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

from pfstui.errors import UserError

__all__ = [
    "ATTENTION_RE",
    "FailedQuantum",
    "FilterError",
    "FilterScan",
    "FilterSnapshot",
    "LineFilter",
    "LogIndex",
    "LogIndexError",
    "LogSnapshot",
    "Refresh",
    "SearchResult",
    "detect_level",
    "failed_quantum",
    "is_attention",
    "is_failed_quantum",
    "parse_record",
    "search",
]

#: Checkpoint spacing of the forward index (bytes).  One block is the most read to reach any line.
DEFAULT_BLOCK_BYTES = 128 * 1024
#: Bytes read per ``pread`` while indexing or searching.
CHUNK_BYTES = 1024 * 1024
#: Bytes read per step when reading backwards from the end.
BACK_BYTES = 64 * 1024
#: A displayed line is cut after this many bytes (the full line is read only on demand).
MAX_LINE_BYTES = 8 * 1024
#: A full record (the JSON structured view) is read up to this size.
MAX_RECORD_BYTES = 4 * 1024 * 1024
#: A block larger than this (a block holding very long lines) is decoded in pieces.
_BIG_BLOCK = 4 * 1024 * 1024
_ELLIPSIS = "…"


class LogIndexError(UserError):
    """A log file cannot be opened or read; str() names the file, the problem and what to do."""


class FilterError(UserError, ValueError):
    """A filter pattern is not a valid regular expression; str() says what to fix."""


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


class _LRU:
    """A tiny thread-tolerant LRU (a lock around an OrderedDict); capacity bounds memory."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def _decode(raw: bytes, truncated: bool = False) -> str:
    """Bytes of one line (without its newline) as text; a cut line ends with an ellipsis."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    text = raw.decode("utf-8", errors="replace")
    return text + _ELLIPSIS if truncated else text


# --------------------------------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------------------------------


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


class LogIndex:
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
        self.path = Path(path)
        self.block_bytes = block_bytes
        self.max_line_bytes = max_line_bytes
        #: Bytes read from the file so far (all reads go through :meth:`_pread`); tests and benches use it.
        self.bytes_read = 0
        #: Incremented whenever the file is found truncated or replaced and the index restarts.
        self.generation = 0
        self._lock = threading.RLock()
        self._build_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._blocks = _LRU(32)
        self._lines = _LRU(2048)
        self._fd = -1
        self._open()

    # -- opening / reset -------------------------------------------------------------------------

    def _open(self) -> None:
        try:
            # O_NONBLOCK: opening a FIFO must not hang the watcher (it is rejected below).
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise LogIndexError(f"log file {self.path} does not exist (yet): the stage has not written it; "
                                "it is shown when it appears") from None
        except IsADirectoryError:
            raise LogIndexError(f"{self.path} is a directory, not a log file: give the path of the log file") \
                from None
        except OSError as exc:
            raise LogIndexError(f"log file {self.path} cannot be opened ({exc.strerror}): "
                                "check its permissions") from None
        try:
            st = os.fstat(fd)
        except OSError as exc:  # pragma: no cover - fstat on a fresh fd does not fail in practice
            os.close(fd)
            raise LogIndexError(f"log file {self.path} cannot be read ({exc.strerror})") from None
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise LogIndexError(f"{self.path} is {kind}, not a log file: give the path of the log file")
        old, self._fd = self._fd, fd
        if old >= 0:
            os.close(old)
        self._ino = (st.st_dev, st.st_ino)
        self._size = st.st_size
        self._head = self._pread(min(64, self._size), 0)
        self._end = self._last_line_end(self._size)
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

    def close(self) -> None:
        """Close the file descriptor (idempotent)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> LogIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    # -- low-level reads -------------------------------------------------------------------------

    def _pread(self, n: int, offset: int) -> bytes:
        if n <= 0:
            return b""
        try:
            data = os.pread(self._fd, n, offset)
        except OSError as exc:
            raise LogIndexError(f"log file {self.path} cannot be read ({exc.strerror}): "
                                "check the disk and the file's permissions") from None
        self.bytes_read += len(data)
        return data

    def _last_line_end(self, size: int) -> int:
        """Offset just after the last newline before ``size`` (0 if none): read backwards in blocks."""
        hi = size
        while hi > 0:
            lo = max(0, hi - BACK_BYTES)
            k = self._pread(hi - lo, lo).rfind(b"\n")
            if k >= 0:
                return lo + k + 1
            hi = lo
        return 0

    # -- public state ----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """File size at the last refresh (bytes)."""
        return self._size

    @property
    def end(self) -> int:
        """Offset just after the last complete line."""
        return self._end

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
            if size < self._size or (self._head and self._pread(len(self._head), 0) != self._head):
                self._reset()
                return Refresh(reset=True, new_bytes=self._size)
            if size == self._size:
                return Refresh()
            old_size, old_end = self._size, self._end
            if len(self._head) < 64:
                self._head = self._pread(min(64, size), 0)
            # Bytes [end, nl_scan) are known to hold no newline: scan only what follows.
            start = self._nl_scan
            stop = min(size, start + max_bytes)
            data = self._pread(stop - start, start)
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
                chunk = self._pread(n, pos)
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
            data = self._pread(stop - start, start)
            pieces = data.split(b"\n")[:nlines]
            starts = list(accumulate((len(p) + 1 for p in pieces[:-1]), initial=start)) if pieces else []
            cap = self.max_line_bytes
            texts = [_decode(p[:cap], True) if len(p) > cap else _decode(p) for p in pieces]
        else:  # very long lines: stream the block, keep only the head of each line
            pos, cur, cur_start = start, bytearray(), start
            cap = self.max_line_bytes
            cut = False
            while pos < stop:
                data = self._pread(min(CHUNK_BYTES, stop - pos), pos)
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
                    texts.append(_decode(bytes(cur), cut))
                    cur, cut = bytearray(), False
                    cur_start = pos + j + 1
                    i = j + 1
                pos += len(data)
        value = (starts, texts)
        self._blocks.put(key, value)
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
            data = self._pread(hi - lo, lo)
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

    # -- reading spans ---------------------------------------------------------------------------

    def _read_span(self, start: int, stop: int) -> str:
        """Text of the line occupying [start, stop) (stop may include the newline); cached."""
        key = (self.generation, start, stop)
        hit = self._lines.get(key)
        if hit is not None:
            return hit
        n = stop - start
        cap = self.max_line_bytes
        raw = self._pread(min(n, cap + 1), start)
        if raw.endswith(b"\n") and len(raw) == n:
            raw = raw[:-1]
            n -= 1
        text = _decode(raw[:cap], True) if n > cap else _decode(raw)
        self._lines.put(key, text)
        return text

    def read_line_at(self, offset: int, limit: int | None = None) -> str:
        """Text of the line starting at ``offset`` (cut at ``max_line_bytes``); ``limit`` bounds the line."""
        end = self._size if limit is None else limit
        key = (self.generation, offset, -1, end)
        hit = self._lines.get(key)
        if hit is not None:
            return hit
        cap = self.max_line_bytes
        raw = self._pread(min(cap + 1, max(0, end - offset)), offset)
        j = raw.find(b"\n")
        if j >= 0:
            text = _decode(raw[:j])
        else:
            text = _decode(raw[:cap], len(raw) > cap)
        self._lines.put(key, text)
        return text

    def read_full_line(self, offset: int, max_bytes: int = MAX_RECORD_BYTES) -> str:
        """The whole line starting at ``offset`` (up to ``max_bytes``), e.g. a JSON record to parse."""
        out = bytearray()
        pos = offset
        while len(out) < max_bytes:
            data = self._pread(min(CHUNK_BYTES, max_bytes - len(out)), pos)
            if not data:
                break
            j = data.find(b"\n")
            if j >= 0:
                out += data[:j]
                break
            out += data
            pos += len(data)
        return _decode(bytes(out))

    def line_end(self, offset: int) -> int:
        """Offset just after the newline ending the line that starts at ``offset`` (or the size)."""
        pos = offset
        while True:
            data = self._pread(CHUNK_BYTES, pos)
            if not data:
                return pos
            j = data.find(b"\n")
            if j >= 0:
                return pos + j + 1
            pos += len(data)

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


@dataclass
class LogSnapshot:
    """A stable mapping from view rows to lines, taken at one moment (see :meth:`LogIndex.snapshot`).

    ``lines`` complete lines, plus one partial row when ``size > end``.
    """

    index: LogIndex
    generation: int
    exact: bool
    lines: int
    end: int
    size: int
    ncp: int = 0
    tail: array | None = None

    @property
    def has_partial(self) -> bool:
        return self.size > self.end

    @property
    def rows(self) -> int:
        return self.lines + (1 if self.has_partial else 0)

    @property
    def first_line_number(self) -> int | None:
        """Absolute number of row 0 (0 in exact mode; unknown in tail mode)."""
        return 0 if self.exact else None

    def span(self, row: int) -> tuple[int, int]:
        """Byte range [start, stop) of ``row`` (stop includes the newline of a complete line)."""
        if row == self.lines and self.has_partial:
            return self.end, self.size
        if not 0 <= row < self.lines:
            raise IndexError(f"row {row} out of range (0..{self.rows - 1})")
        if self.exact:
            ix = self.index
            b = ix._block_of_line(row, self.ncp)
            starts, _ = ix._block(b, self.ncp, self.end, self.lines)
            i = row - ix._cp_line[b]
            start = starts[i]
            stop = starts[i + 1] if i + 1 < len(starts) else (
                ix._cp_off[b + 1] if b + 1 < self.ncp else self.end)
            return start, stop
        assert self.tail is not None
        start = self.tail[row]
        stop = self.tail[row + 1] if row + 1 < self.lines else self.end
        return start, stop

    def offset(self, row: int) -> int:
        return self.span(row)[0]

    def text(self, row: int) -> str:
        """Text of ``row`` (cut at the index's ``max_line_bytes``)."""
        if row == self.lines and self.has_partial:
            return self.index._read_span(self.end, self.size)
        if self.exact:
            if not 0 <= row < self.lines:
                raise IndexError(f"row {row} out of range (0..{self.rows - 1})")
            ix = self.index
            b = ix._block_of_line(row, self.ncp)
            _, texts = ix._block(b, self.ncp, self.end, self.lines)
            return texts[row - ix._cp_line[b]]
        start, stop = self.span(row)
        return self.index._read_span(start, stop)

    def row_of_offset(self, offset: int) -> int | None:
        """Row holding byte ``offset``; None when it lies before the known tail (tail mode)."""
        if offset >= self.end:
            return self.rows - 1 if self.rows else None
        if self.exact:
            ix = self.index
            b = bisect_right(ix._cp_off, offset, 0, self.ncp) - 1
            starts, _ = ix._block(b, self.ncp, self.end, self.lines)
            return ix._cp_line[b] + max(0, bisect_right(starts, offset) - 1)
        assert self.tail is not None
        if not self.lines or offset < self.tail[0]:
            return None
        return bisect_right(self.tail, offset, 0, self.lines) - 1


# --------------------------------------------------------------------------------------------------
# Recognisers: level, failed quantum, structured record
# --------------------------------------------------------------------------------------------------

_LEVEL_WORDS = "CRITICAL|FATAL|ERROR|WARNING|WARN|INFO|VERBOSE|DEBUG|TRACE"
_LONG_HEAD = re.compile(rf"^({_LEVEL_WORDS}) \d{{4}}-\d\d-\d\d[T ]")
_SHORT_HEAD = re.compile(rf"^[A-Za-z_][\w.\-]* ({_LEVEL_WORDS}): ")
_JSON_LEVEL = re.compile(r'"levelname":\s*"([A-Za-z]+)"')
_NORMAL = {"FATAL": "CRITICAL", "WARN": "WARNING"}
LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "VERBOSE", "DEBUG", "TRACE")


def detect_level(line: str) -> str | None:
    """Level of a record's first line, in any pipetask format; None for continuation lines.

    Default ``name LEVEL: msg``, ``--long-log`` ``LEVEL asctime name (label)(file:line) - msg``, and
    ``--log-file X.json`` records (``"levelname": "..."``).  FATAL/WARN are normalised.
    """
    c = line[:1]
    if c == "{":
        m = _JSON_LEVEL.search(line)
        if m:
            lv = m.group(1).upper()
            return _NORMAL.get(lv, lv)
        return None
    if c in "CFEWIVDT":
        m = _LONG_HEAD.match(line)
        if m:
            return _NORMAL.get(m.group(1), m.group(1))
    m = _SHORT_HEAD.match(line)
    if m:
        return _NORMAL.get(m.group(1), m.group(1))
    return None


@dataclass(frozen=True)
class FailedQuantum:
    """A failed quantum named on one log line: its task label and printed data ID."""

    task: str
    data_id: str
    kind: str  # "exception" | "multiprocess" | "single-process" | "timeout"


# Message texts from pipe_base 30.0.11 (single_quantum_executor, mp_graph_executor) and the v29 wording.
_FAILED_PATTERNS = [
    ("exception", re.compile(r"Execution of task '([^']+)' on quantum (\{.*?\}) failed")),
    ("multiprocess", re.compile(r"Task <(\S+) dataId=(\{.*?\})> failed")),
    ("single-process", re.compile(r"\(([^()\s@]+)@(\{.*?\})\) failed")),
    ("timeout", re.compile(r"Timeout \(\S+ sec\) for task <(\S+) dataId=(\{.*?\})>")),
]


def failed_quantum(line: str) -> FailedQuantum | None:
    """Recognise a "this quantum failed" line (task exception, multiprocess or single-process failure).

    Blocked downstream quanta ("Upstream job failed for task ...") are not failures of their own and
    are not matched.
    """
    if "failed" not in line and "Timeout" not in line:
        return None
    for kind, rx in _FAILED_PATTERNS:
        m = rx.search(line)
        if m:
            return FailedQuantum(task=m.group(1), data_id=m.group(2), kind=kind)
    return None


def is_failed_quantum(line: str) -> bool:
    return failed_quantum(line) is not None


#: Bytes regex for "error-level record or failed quantum" (the ``n``/``N`` jumps), line-anchored.
ATTENTION_RE = re.compile(
    rb"^(?:CRITICAL|FATAL|ERROR) \d{4}-\d\d-\d\d[T ]"
    rb"|^[A-Za-z_][\w.\-]* (?:CRITICAL|FATAL|ERROR): "
    rb'|^\{[^\n]*"levelname":\s*"(?:CRITICAL|FATAL|ERROR)"'
    rb"|Execution of task '[^'\n]+' on quantum [^\n]* failed"
    rb"|Task <\S+ dataId=\{[^\n]*\}> failed"
    rb"|\([^()\s@\n]+@\{[^\n]*\}\) failed",
    re.MULTILINE,
)


def is_attention(line: str) -> bool:
    """True for an ERROR/CRITICAL record head or a failed-quantum line (what ``n`` jumps to)."""
    return detect_level(line) in ("ERROR", "CRITICAL") or is_failed_quantum(line)


_LONG_FIELDS = re.compile(
    rf"^(?P<levelname>{_LEVEL_WORDS}) (?P<asctime>\S+) (?P<name>\S+) \((?P<label>.*?)\)"
    r"\((?P<filename>[^()]*?):(?P<lineno>\d+)\) - (?P<message>.*)$"
)
_SHORT_FIELDS = re.compile(rf"^(?P<name>[A-Za-z_][\w.\-]*) (?P<levelname>{_LEVEL_WORDS}): (?P<message>.*)$")


def parse_record(line: str) -> tuple[str, dict[str, Any]] | None:
    """Structured fields of one record line: ``("json"|"long"|"default", fields)`` or None.

    JSON records (``--log-file X.json``, daf_butler ``ButlerLogRecord``) give every field as written
    (``name, asctime, message, levelno, levelname, filename, pathname, lineno, funcName, process,
    processName, exc_info, MDC``).  Text heads give what their format carries.
    """
    s = line.strip()
    if s.startswith("{"):
        try:
            d = json.loads(s)
        except (ValueError, RecursionError):
            return None
        if isinstance(d, dict) and ("message" in d or "levelname" in d):
            return "json", d
        return None
    m = _LONG_FIELDS.match(line)
    if m:
        d = m.groupdict()
        d["lineno"] = int(d["lineno"])
        d["MDC"] = {"LABEL": d.pop("label")} if d["label"] else {}
        return "long", d
    m = _SHORT_FIELDS.match(line)
    if m:
        return "default", m.groupdict()
    return None


# --------------------------------------------------------------------------------------------------
# Searching and filtering
# --------------------------------------------------------------------------------------------------


@dataclass
class SearchResult:
    """Matches of one bounded :func:`search` call: line start offsets, in scan order."""

    offsets: list[int] = field(default_factory=list)
    #: Where the next call continues (forward: a line start to scan from; backward: the exclusive upper
    #: bound); None when the scan reached its limit (file start or ``stop``).
    resume: int | None = None
    bytes_scanned: int = 0


def _match_starts(buf: bytes, regex: re.Pattern[bytes], invert: bool) -> list[int]:
    """Relative starts of the lines of ``buf`` that match (or, inverted, do not).

    ``buf`` starts at a line start; a last piece without a newline counts as a line.  One regex search
    per *matching* line (C speed between matches), never a Python loop over non-matching lines unless
    inverted.
    """
    n = len(buf)
    out: list[int] = []
    pos = 0
    search_ = regex.search
    rfind, find = buf.rfind, buf.find
    while pos < n:
        m = search_(buf, pos)
        if m is None:
            break
        ms = m.start()
        if ms >= n:
            break
        ls = (rfind(b"\n", pos, ms) + 1) or pos
        le = find(b"\n", ms)
        out.append(ls)
        if le < 0:
            break
        pos = le + 1
    if not invert:
        return out
    matched = set(out)
    inv: list[int] = []
    pos = 0
    while pos < n:
        if pos not in matched:
            inv.append(pos)
        j = find(b"\n", pos)
        if j < 0:
            break
        pos = j + 1
    return inv


def _line_start(index: LogIndex, pos: int, floor: int = 0) -> int:
    """Start of the line holding byte ``pos`` (reading backwards in blocks, not below ``floor``)."""
    hi = pos
    while hi > floor:
        lo = max(floor, hi - BACK_BYTES)
        k = index._pread(hi - lo, lo).rfind(b"\n")
        if k >= 0:
            return lo + k + 1
        hi = lo
    return floor


def search(
    index: LogIndex,
    regex: re.Pattern[bytes],
    start: int,
    *,
    backward: bool = False,
    invert: bool = False,
    max_bytes: int = 4 * CHUNK_BYTES,
    limit: int | None = None,
    stop: int | None = None,
) -> SearchResult:
    """Find complete lines matching ``regex`` (a bytes pattern, ``re.MULTILINE``), bounded per call.

    Forward: lines starting at or after ``start`` (a line start) before ``stop`` (default: the committed
    end); offsets ascending.  Backward: lines starting before ``start`` (a line start, exclusive) and at
    or after ``stop`` (default 0, a line start); offsets descending.  At most about ``max_bytes`` are
    read and at most ``limit`` matches returned; ``resume`` is where the next call goes on (None: the
    scan is complete).  A line longer than a chunk (1 MiB) is matched on its head only.
    """
    res = SearchResult()
    if backward:
        floor = 0 if stop is None else stop
        hi = min(start, index.end)
        while hi > floor and res.bytes_scanned < max_bytes:
            lo = max(floor, hi - CHUNK_BYTES)
            data = index._pread(hi - lo, lo)
            res.bytes_scanned += len(data)
            if lo > floor:
                k = data.find(b"\n")
                if k < 0 or k == len(data) - 1:
                    # The line ending at hi is longer than the chunk: match its head, skip it.
                    s = _line_start(index, hi - 1, floor)
                    head = index._pread(min(CHUNK_BYTES, hi - s), s)
                    if _match_starts(head, regex, invert)[:1]:
                        res.offsets.append(s)
                        if limit is not None and len(res.offsets) >= limit:
                            res.resume = s if s > floor else None
                            return res
                    hi = s
                    continue
                data, lo = data[k + 1:], lo + k + 1
            for rel in reversed(_match_starts(data, regex, invert)):
                res.offsets.append(lo + rel)
                if limit is not None and len(res.offsets) >= limit:
                    res.resume = lo + rel if lo + rel > floor else None
                    return res
            hi = lo
        res.resume = hi if hi > floor else None
        return res
    end = index.end if stop is None else min(stop, index.end)
    pos = start
    while pos < end and res.bytes_scanned < max_bytes:
        data = index._pread(min(CHUNK_BYTES, end - pos), pos)
        res.bytes_scanned += len(data)
        k = data.rfind(b"\n")
        if k < 0:  # a line longer than the chunk: match its head, then skip to its end
            nxt = min(index.line_end(pos), end)
            if _match_starts(data, regex, invert)[:1]:
                res.offsets.append(pos)
                if limit is not None and len(res.offsets) >= limit:
                    res.resume = nxt if nxt < end else None
                    return res
            pos = nxt
            continue
        data = data[: k + 1]
        for rel in _match_starts(data, regex, invert):
            res.offsets.append(pos + rel)
            if limit is not None and len(res.offsets) >= limit:
                nxt = pos + data.find(b"\n", rel) + 1
                res.resume = nxt if nxt < end else None
                return res
        pos += k + 1
    res.resume = pos if pos < end else None
    return res


@dataclass(frozen=True)
class LineFilter:
    """A compiled ``/`` filter: a regex, possibly inverted (a leading ``!`` inverts; ``\\!`` is a literal).

    Holds a bytes pattern (for scanning files) and a str pattern (for testing one decoded line).
    """

    pattern: str
    invert: bool
    regex: re.Pattern[bytes]
    text_regex: re.Pattern[str]

    @classmethod
    def parse(cls, text: str, invert: bool = False) -> LineFilter:
        """Compile what the operator typed; raises :class:`FilterError` with a one-line fix."""
        pattern = text
        if pattern.startswith("!"):
            invert, pattern = not invert, pattern[1:]
        elif pattern.startswith("\\!"):
            pattern = pattern[1:]
        if not pattern:
            raise FilterError("empty filter: type a regular expression (a leading ! shows the lines NOT matching)")
        try:
            text_regex = re.compile(pattern, re.MULTILINE)
            regex = re.compile(pattern.encode("utf-8"), re.MULTILINE)
        except re.error as exc:
            raise FilterError(f"bad filter regex {pattern!r}: {exc}; escape special characters with \\ "
                              "(e.g. \\( or \\[)") from None
        return cls(pattern, invert, regex, text_regex)

    def matches(self, line: str) -> bool:
        return (self.text_regex.search(line) is not None) != self.invert

    def describe(self) -> str:
        return ("!" if self.invert else "") + self.pattern


class FilterScan:
    """Lines of a log matching a :class:`LineFilter`, found newest first.

    The scan starts at the end and goes backwards (so the latest matches show at once), while lines
    appended later are scanned forwards.  Offsets live in two ``array('Q')``; at most ``max_matches`` are
    kept (the oldest are dropped and :attr:`truncated` set), so memory is bounded whatever the log size.
    Call :meth:`step` from a worker until it returns True, and again after each refresh.
    """

    def __init__(self, index: LogIndex, line_filter: LineFilter, *, max_matches: int = 2_000_000) -> None:
        self.index = index
        self.filter = line_filter
        self.max_matches = max_matches
        self.generation = index.generation
        self._back = array("Q")  # descending offsets (scan from the end backwards)
        self._fwd = array("Q")  # ascending offsets (appended data)
        self._back_pos = index.end  # exclusive upper bound of what remains to scan backwards
        self._fwd_pos = index.end  # next line start to scan forwards
        self._lock = threading.Lock()
        self.truncated = False
        #: Rows removed from the top so far (dropped oldest matches); the UI shifts by it.
        self.dropped = 0

    @property
    def done_back(self) -> bool:
        return self._back_pos <= 0 or self.truncated

    @property
    def scanned_fraction(self) -> float:
        end = max(1, self.index.end)
        return 1.0 if self.done_back else 1.0 - self._back_pos / end

    def step(self, max_bytes: int = 4 * CHUNK_BYTES) -> bool:
        """Scan appended lines, then up to ``max_bytes`` more backwards; True when nothing is left."""
        ix = self.index
        budget = max_bytes
        end = ix.end
        if self._fwd_pos < end:
            res = search(ix, self.filter.regex, self._fwd_pos, invert=self.filter.invert, max_bytes=budget,
                         stop=end)
            with self._lock:
                self._fwd.extend(res.offsets)
                self._fwd_pos = res.resume if res.resume is not None else end
            budget -= res.bytes_scanned
        if not self.done_back and budget > 0:
            res = search(ix, self.filter.regex, self._back_pos, backward=True, invert=self.filter.invert,
                         max_bytes=budget)
            with self._lock:
                self._back.extend(res.offsets)
                self._back_pos = res.resume if res.resume is not None else 0
        self._cap()
        return self.done_back and self._fwd_pos >= ix.end

    def _cap(self) -> None:
        with self._lock:
            total = len(self._back) + len(self._fwd)
            if total <= self.max_matches:
                return
            excess = total - self.max_matches
            self.truncated = True
            nb = min(excess, len(self._back))
            if nb:
                self._back = self._back[: len(self._back) - nb]
            rest = excess - nb
            if rest:
                self._fwd = self._fwd[rest:]
            self.dropped += excess

    def snapshot(self) -> FilterSnapshot:
        with self._lock:
            return FilterSnapshot(self, self._back, len(self._back), self._fwd, len(self._fwd),
                                  self.index.end, self.dropped)

    def __len__(self) -> int:
        return len(self._back) + len(self._fwd)


@dataclass
class FilterSnapshot:
    """Stable rows of a :class:`FilterScan`: row 0 is the oldest match found so far."""

    scan: FilterScan
    back: array
    nback: int
    fwd: array
    nfwd: int
    end: int
    dropped: int

    @property
    def rows(self) -> int:
        return self.nback + self.nfwd

    def offset(self, row: int) -> int:
        if not 0 <= row < self.rows:
            raise IndexError(f"row {row} out of range (0..{self.rows - 1})")
        if row < self.nback:
            return self.back[self.nback - 1 - row]
        return self.fwd[row - self.nback]

    def text(self, row: int) -> str:
        return self.scan.index.read_line_at(self.offset(row), self.end)

    def row_of_offset(self, offset: int, *, after: bool = True) -> int | None:
        """Row of the first match at or after ``offset`` (``after``) or the last at or before it."""
        lo, hi = 0, self.rows
        while lo < hi:
            mid = (lo + hi) // 2
            if self.offset(mid) < offset:
                lo = mid + 1
            else:
                hi = mid
        if after:
            return lo if lo < self.rows else None
        if lo < self.rows and self.offset(lo) == offset:
            return lo
        return lo - 1 if lo > 0 else None

    def iter_rows(self, start: int, stop: int) -> Iterator[tuple[int, str]]:
        for r in range(max(0, start), min(stop, self.rows)):
            yield r, self.text(r)
