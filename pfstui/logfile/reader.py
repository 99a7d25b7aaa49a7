"""A log file read by byte offsets, never whole: the ground floor of :class:`~pfstui.logfile.index.LogIndex`.

Why this exists: a stage log can reach gigabytes and is still being written.  Every read here is an
``os.pread`` of at most a few MiB (counted in :attr:`LogReader.bytes_read`, which tests and benches
check), a displayed line is cut at ``max_line_bytes``, and the decoded lines sit in a small shared LRU
whose keys carry the :attr:`~LogReader.generation` (a replaced file never shows stale text).  The bytes
after the last newline are the *partial* line: the writer is mid-line.

The file is opened ``O_NONBLOCK`` (a FIFO given by mistake must not hang the watcher thread) and must be
a regular file; every failure is a :class:`LogIndexError` that names the file and what to do.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Self

from pfstui.errors import UserError
from pfstui.infra.lru import SharedLRU

__all__ = [
    "BACK_BYTES",
    "CHUNK_BYTES",
    "MAX_LINE_BYTES",
    "MAX_RECORD_BYTES",
    "LogIndexError",
    "LogReader",
    "decode_line",
]

#: Bytes read per ``pread`` while indexing or searching.
CHUNK_BYTES = 1024 * 1024
#: Bytes read per step when reading backwards from the end.
BACK_BYTES = 64 * 1024
#: A displayed line is cut after this many bytes (the full line is read only on demand).
MAX_LINE_BYTES = 8 * 1024
#: A full record (the JSON structured view) is read up to this size.
MAX_RECORD_BYTES = 4 * 1024 * 1024
_ELLIPSIS = "…"


class LogIndexError(UserError):
    """A log file cannot be opened or read; str() names the file, the problem and what to do."""


def decode_line(raw: bytes, truncated: bool = False) -> str:
    """Bytes of one line (without its newline) as text; a cut line ends with an ellipsis."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    text = raw.decode("utf-8", errors="replace")
    return text + _ELLIPSIS if truncated else text


class LogReader:
    """One log file opened for reading lines at byte offsets (see the module docstring).

    Subclasses extend :meth:`_open` (called again when the file is found replaced) with their own state.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.path = Path(path)
        self.max_line_bytes = max_line_bytes
        #: Bytes read from the file so far (all reads go through :meth:`pread`); tests and benches use it.
        self.bytes_read = 0
        #: Incremented whenever the file is found truncated or replaced and reading restarts.
        self.generation = 0
        self._lock = threading.RLock()
        self._lines = SharedLRU(2048)
        self._fd = -1
        self._open()

    # -- opening / closing -----------------------------------------------------------------------

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
        self._head = self.pread(min(64, self._size), 0)
        self._end = self.line_start(self._size)

    def close(self) -> None:
        """Close the file descriptor (idempotent)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    # -- low-level reads -------------------------------------------------------------------------

    def pread(self, n: int, offset: int) -> bytes:
        """Up to ``n`` bytes at ``offset``: every read of the file goes through here."""
        if n <= 0:
            return b""
        try:
            data = os.pread(self._fd, n, offset)
        except OSError as exc:
            raise LogIndexError(f"log file {self.path} cannot be read ({exc.strerror}): "
                                "check the disk and the file's permissions") from None
        self.bytes_read += len(data)
        return data

    def line_start(self, pos: int, floor: int = 0) -> int:
        """Start of the line holding byte ``pos``: just after the last newline before it, reading backwards
        in blocks, not below ``floor`` (``line_start(size)`` is where the partial line starts)."""
        hi = pos
        while hi > floor:
            lo = max(floor, hi - BACK_BYTES)
            k = self.pread(hi - lo, lo).rfind(b"\n")
            if k >= 0:
                return lo + k + 1
            hi = lo
        return floor

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
    def partial(self) -> str:
        """The last line without its newline yet ('' if the file ends with a newline)."""
        return self._read_span(self._end, self._size)

    # -- reading lines ---------------------------------------------------------------------------

    def _read_span(self, start: int, stop: int) -> str:
        """Text of the line occupying [start, stop) (stop may include the newline); cached."""
        key = (self.generation, start, stop)
        hit = self._lines.get(key)
        if hit is not None:
            return hit
        n = stop - start
        cap = self.max_line_bytes
        raw = self.pread(min(n, cap + 1), start)
        if raw.endswith(b"\n") and len(raw) == n:
            raw = raw[:-1]
            n -= 1
        text = decode_line(raw[:cap], True) if n > cap else decode_line(raw)
        self._lines[key] = text
        return text

    def read_line_at(self, offset: int, limit: int | None = None) -> str:
        """Text of the line starting at ``offset`` (cut at ``max_line_bytes``); ``limit`` bounds the line."""
        end = self._size if limit is None else limit
        key = (self.generation, offset, -1, end)
        hit = self._lines.get(key)
        if hit is not None:
            return hit
        cap = self.max_line_bytes
        raw = self.pread(min(cap + 1, max(0, end - offset)), offset)
        j = raw.find(b"\n")
        if j >= 0:
            text = decode_line(raw[:j])
        else:
            text = decode_line(raw[:cap], len(raw) > cap)
        self._lines[key] = text
        return text

    def read_full_line(self, offset: int, max_bytes: int = MAX_RECORD_BYTES) -> str:
        """The whole line starting at ``offset`` (up to ``max_bytes``), e.g. a JSON record to parse."""
        out = bytearray()
        pos = offset
        while len(out) < max_bytes:
            data = self.pread(min(CHUNK_BYTES, max_bytes - len(out)), pos)
            if not data:
                break
            j = data.find(b"\n")
            if j >= 0:
                out += data[:j]
                break
            out += data
            pos += len(data)
        return decode_line(bytes(out))

    def line_end(self, offset: int) -> int:
        """Offset just after the newline ending the line that starts at ``offset`` (or the size)."""
        pos = offset
        while True:
            data = self.pread(CHUNK_BYTES, pos)
            if not data:
                return pos
            j = data.find(b"\n")
            if j >= 0:
                return pos + j + 1
            pos += len(data)
