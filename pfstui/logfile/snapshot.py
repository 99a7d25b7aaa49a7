"""A stable mapping from a view's rows to a log's lines, taken at one moment from a :class:`LogIndex`.

Why this exists: the index changes under the UI (lines appended, the tail read further back, the forward
index completed) from a worker thread, while the UI paints rows.  A :class:`LogSnapshot` freezes what the
rows are (``exact``: row = line number; *tail*: row 0 = the oldest line known from the end) so a frame
paints one consistent picture; the UI takes a new one per batch.  It reads the index's checkpoints and
block cache directly: it is the index's own view, in a module of its own only to keep each file small.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pfstui.logfile.index import LogIndex

__all__ = ["LogSnapshot"]


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

    def rows_inserted_since(self, old: LogSnapshot) -> int:
        """Rows now above ``old``'s first row (the tail was read further back; the index completed turns
        tail rows into line numbers): a view moves down by it so the same lines stay on screen."""
        if old.rows == 0 or old.generation != self.generation or (old.exact and self.exact):
            return 0
        return self.row_of_offset(old.offset(0)) or 0
