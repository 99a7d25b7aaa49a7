"""Read a growing pipetask log incrementally, in bounded chunks, into parser events.

Why this exists: a stage's log grows while the supervisor watches it and may reach gigabytes, so it is
read from the byte offset where the last call stopped, a chunk at a time, and a last line without its
newline (the writer is mid-line) is left for the next call.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pfstui.pipetask_log.parser import LogParser

__all__ = ["DEFAULT_CHUNK", "LogParseError", "scan_file"]


class LogParseError(Exception):
    """A log file cannot be scanned as asked; str() names the problem and the fix."""


DEFAULT_CHUNK = 1 << 16


def scan_file(
    path: str | os.PathLike[str],
    start_offset: int = 0,
    *,
    parser: LogParser | None = None,
    final: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    max_bytes: int | None = None,
) -> tuple[list[Any], int]:
    """Parse the complete lines of ``path`` from byte ``start_offset``; return (events, end_offset).

    The file is read in ``chunk_size`` pieces, never whole.  A last line without its newline is not
    consumed (the writer may be mid-line) unless ``final`` is true (the writer has exited), in which case
    it is parsed and the parser flushed.  ``max_bytes`` bounds the bytes read by one call (it stops at the
    first chunk boundary past it, leaving any partial line for the next call; a single line longer than
    the budget is still read whole so that every call makes progress).

    ``end_offset`` is where the next call must start:

    * with a ``parser`` kept by the caller: just after the last line consumed (the parser holds any open
      record and reports it later);
    * without one: the start of any record still open at the end (a table, a traceback), so the next
      stateless call re-reads it whole.  Events are therefore never lost nor repeated either way.

    A missing file is empty when ``start_offset`` is 0 (the stage may not have written yet).  A file now
    shorter than ``start_offset`` was truncated or replaced: :class:`LogParseError`.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    stateless = parser is None
    p = parser if parser is not None else LogParser()
    path = Path(path)
    events: list[Any] = []
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        if start_offset == 0:
            return [], 0
        raise LogParseError(
            f"log file {path} is missing but {start_offset} bytes of it were already read; "
            "it was moved or deleted -- rescan from offset 0 if it is rewritten"
        ) from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size < start_offset:
            raise LogParseError(
                f"log file {path} is {size} bytes, shorter than the {start_offset} bytes already read; "
                "it was truncated or replaced -- rescan it from offset 0 with a fresh StageProgress"
            )
        fh.seek(start_offset)
        pos = start_offset  # file offset of the first byte of `pending`
        pending = b""
        read = 0
        eof = False
        while True:
            if max_bytes is not None and read >= max_bytes and pos > start_offset:
                break  # budget spent and some progress made; the caller comes back for the rest
            chunk = fh.read(chunk_size)
            if not chunk:
                eof = True
                break
            read += len(chunk)
            data = pending + chunk
            start = 0
            while (nl := data.find(b"\n", start)) >= 0:
                events.extend(p.feed(data[start:nl].decode("utf-8", errors="replace"), pos + start))
                start = nl + 1
            pos += start
            pending = data[start:]
        end = pos
        if final and eof and pending:
            # The writer has exited: a last line without a newline is complete after all.
            events.extend(p.feed(pending.decode("utf-8", errors="replace"), pos))
            end = pos + len(pending)
    if final and eof:
        events.extend(p.flush())
    elif stateless:
        held = p.resume_offset
        if held is not None:
            end = held
    return events, end
