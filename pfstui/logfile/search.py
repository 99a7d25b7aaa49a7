"""Find lines in a log file by regex, bounded per call: the ``/`` filter and the jumps of the log view.

Why this exists: a filter over a multi-GB log must show its newest matches at once and never hold the
file nor a Python object per line.  :func:`search` scans raw bytes in chunks with a ``re.MULTILINE``
bytes pattern (one regex search per *matching* line, C speed in between) and stops after a byte budget;
:class:`FilterScan` runs it from the end backwards (newest matches first) and forwards over appended
data, keeping match offsets in two ``array('Q')`` of capped size; :func:`find_line` finds the next line
of some kind from a view row.

What kind of line is worth finding is the caller's business: it passes the pattern (and, for filtered
rows, the matching test on one decoded line).  Nothing here knows what a pipetask log looks like.
"""

from __future__ import annotations

import re
import threading
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pfstui.errors import UserError
from pfstui.logfile.index import LogIndex
from pfstui.logfile.reader import CHUNK_BYTES
from pfstui.logfile.snapshot import LogSnapshot

__all__ = ["FilterError", "FilterScan", "FilterSnapshot", "LineFilter", "SearchResult", "find_line", "search"]


class FilterError(UserError, ValueError):
    """A filter pattern is not a valid regular expression; str() says what to fix."""


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
            data = index.pread(hi - lo, lo)
            res.bytes_scanned += len(data)
            if lo > floor:
                k = data.find(b"\n")
                if k < 0 or k == len(data) - 1:
                    # The line ending at hi is longer than the chunk: match its head, skip it.
                    s = index.line_start(hi - 1, floor)
                    head = index.pread(min(CHUNK_BYTES, hi - s), s)
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
        data = index.pread(min(CHUNK_BYTES, end - pos), pos)
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

    def passed(self, offset: int) -> bool:
        """True once the backward scan has looked at every line from ``offset`` on."""
        return self.done_back or self._back_pos <= offset

    @property
    def position(self) -> tuple[int, int, int]:
        """Where the scan is (matches, backward and forward positions): it moved when this changed, matches
        or not (a filter that matches nothing still goes from "scanning 0%" to done)."""
        with self._lock:
            return len(self._back) + len(self._fwd), self._back_pos, self._fwd_pos

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

    def rows_inserted_since(self, old: FilterSnapshot) -> int:
        """Rows now above ``old``'s first row (older matches found by the backward scan): a view moves
        down by it so the same lines stay on screen."""
        if old.rows == 0 or self.rows == 0:
            return 0
        row = self.row_of_offset(old.offset(0), after=True)
        return row if row is not None else 0


def find_line(
    snap: LogSnapshot | FilterSnapshot,
    row: int,
    *,
    forward: bool,
    regex: re.Pattern[bytes],
    test: Callable[[str], bool],
    cancelled: Callable[[], bool],
) -> tuple[str, int] | None:
    """The nearest line after (``forward``) or before ``row`` of the kind the caller looks for.

    The caller says the kind twice, in two forms that must agree: ``regex`` (bytes, ``re.MULTILINE``)
    scans the file between rows of a :class:`LogSnapshot`, giving ``("offset", line_start)``; ``test``
    tells one decoded row of a :class:`FilterSnapshot` (the filter's rows are not contiguous), giving
    ``("row", row)``.  None when there is none, or once ``cancelled()`` says a newer search replaced this
    one.  Runs in a worker: a whole file may be scanned.
    """
    if isinstance(snap, FilterSnapshot):
        rows = range(row + 1, snap.rows) if forward else range(row - 1, -1, -1)
        for i, r in enumerate(rows):
            if i % 4096 == 0 and cancelled():
                return None
            if test(snap.text(r)):
                return "row", r
        return None
    start, stop = snap.span(row)
    pos: int | None = stop if forward else start
    if forward and stop > snap.end:
        pos = None
    while pos is not None and not cancelled():
        res = search(snap.index, regex, pos, backward=not forward, limit=1, stop=snap.end if forward else None)
        if res.offsets:
            return "offset", res.offsets[0]
        pos = res.resume
    return None
