"""How a log view paints one row: cleaned text, level colour, failed-quantum mark, compact head, matches.

Why a module of its own: this is the work done per repainted row, and it was tuned (bench/logview.py,
keypress-to-repaint while following 8 busy logs).  What a line *is* (its level, a failed quantum, the
compact form of a ``--long-log`` head) is asked of :mod:`pfstui.pipetask_log.formats`; here is only how
it looks.  A rendered row is cached by the bytes it shows (:class:`LogRows`), so a row that scrolls or
stays on screen is never rendered twice, and painting it is one slice of one string for almost every
log line (:func:`paint_row`).

Two details keep the garbage collector out of the key presses: a cached row is one tracked object
(:class:`Row`), and the strips handed to the compositor carry no self-referencing cache
(:class:`NoCache`).  The role styles come from the view's component classes (``logview--error`` ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from pfstui.infra.lru import LRU
from pfstui.logfile.index import LogIndex
from pfstui.logfile.search import FilterScan, FilterSnapshot, LineFilter
from pfstui.logfile.snapshot import LogSnapshot
from pfstui.pipetask_log.formats import compact_line, detect_level, is_failed_quantum

__all__ = [
    "MAX_CELLS",
    "NO_CACHE",
    "LogRows",
    "NoCache",
    "Row",
    "error_row",
    "note_strip",
    "paint_row",
    "role_styles",
    "status_text",
    "with_badge",
]

#: Longest rendered line (cells); longer lines are cut (the full line is in the record view).
MAX_CELLS = 4000
#: Rows looked back to colour a continuation line (a traceback) like its record head.
_LEVEL_LOOKBACK = 64
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_MISSING = object()
#: The style role of each level's rows (other levels keep the base style).
_LEVEL_ROLE = {"CRITICAL": "critical", "ERROR": "error", "WARNING": "warning", "DEBUG": "debug", "TRACE": "debug",
               "VERBOSE": "debug"}
#: Roles styled as the view's base style plus their ``logview--<role>`` component class.
_ROLES = ("failed", "critical", "error", "warning", "debug", "note", "badge", "match")


class Row(NamedTuple):
    """A rendered row: its segments and cell width, or (``segments`` None) ``fast``, its text when it is a
    single ASCII segment in ``style`` — one tracked object per cached row, which keeps GC passes short."""

    segments: list[Segment] | None
    width: int
    fast: str | None
    style: Style


class NoCache:
    """Stands in for a ``Strip``'s divide cache on the lines a LogView hands to the compositor.

    Why: Textual's compositor calls ``strip.divide([width])`` on every line it paints, and a strip
    divided at its own width caches ``[self]`` in itself — a reference cycle.  Each repainted row thus
    became cyclic garbage that only a full GC pass frees; following 8 busy logs, those passes (30-60 ms
    of CPU each, every few seconds) were most of the slow key presses.  Without the cycle a replaced row
    is freed at once by reference counting.  Dividing at the full width is trivial, so nothing is lost.
    """

    __slots__ = ()

    def get(self, key: object, default: object = None) -> object:
        return default

    def __setitem__(self, key: object, value: object) -> None:
        pass


NO_CACHE = NoCache()


def _sanitize(text: str) -> str:
    if "\t" in text:
        text = text.expandtabs(4)
    return _CONTROL.sub("\ufffd", text) if _CONTROL.search(text) else text


def role_styles(view: Widget) -> dict[str, Style]:
    """Rich style per role from the view's component classes (``rich_style`` walks the DOM: call it once
    per style change, not per row)."""
    base = view.rich_style
    styles = {"base": base}
    for role in _ROLES:
        styles[role] = base + view.get_component_rich_style(f"logview--{role}")
    styles["badge"] = view.get_component_rich_style("logview--badge")
    styles["match"] = view.get_component_rich_style("logview--match", partial=True)
    styles["cursor"] = view.get_component_rich_style("logview--cursor", partial=True)
    return styles


def _highlight(text: str, style: Style, line_filter: LineFilter | None, match_style: Style) -> list[Segment]:
    """``text`` in ``style``, with the filter's matches (if it shows matching lines) in ``match_style``."""
    if line_filter is None or line_filter.invert:
        return [Segment(text, style)]
    spans = [(m.start(), m.end()) for m in line_filter.text_regex.finditer(text) if m.end() > m.start()]
    if not spans:
        return [Segment(text, style)]
    match_style = style + match_style
    out: list[Segment] = []
    pos = 0
    for a, b in spans:
        if a > pos:
            out.append(Segment(text[pos:a], style))
        out.append(Segment(text[a:b], match_style))
        pos = b
    if pos < len(text):
        out.append(Segment(text[pos:], style))
    return out


#: ``row_info(row)`` of a view: the row's cache key (the bytes it shows) and its text.
RowInfo = Callable[[int], tuple[Any, str]]


class LogRows:
    """The rendered rows of one log view and their levels, cached by the bytes they show (rows shift as
    the tail grows or a filter finds more; lines do not).  UI thread only.

    ``on_wider(width)`` is called when a row wider than any before is rendered (the view widens its
    scrollable area, once per frame).
    """

    def __init__(self, on_wider: Callable[[int], None], *, compact: bool = True) -> None:
        self._on_wider = on_wider
        #: Show ``--long-log`` heads shortened (:func:`~pfstui.pipetask_log.formats.compact_line`).
        self.compact = compact
        #: Widest row rendered (cells) since the last :meth:`restart` / compact switch.
        self.max_width = 0
        self._strips = LRU(512)
        self._levels = LRU(2048)

    def forget(self) -> None:
        """Drop the rows and levels (the rows now show other lines: a filter changed)."""
        self._strips.clear()
        self._levels.clear()

    def restart(self) -> None:
        """Drop everything (a new file, or the same file replaced)."""
        self.forget()
        self.max_width = 0

    def restyle(self) -> None:
        """Drop the rows, keep the levels (the styles changed)."""
        self._strips.clear()

    def set_compact(self, compact: bool) -> None:
        self.compact = compact
        self._strips.clear()
        self.max_width = 0

    def render(self, row: int, row_info: RowInfo, styles: dict[str, Style], line_filter: LineFilter | None) -> Row:
        """The styled content of ``row`` (cached); ``line_filter`` is the view's filter, if any."""
        key, text = row_info(row)
        cached = self._strips.get(key)
        if cached is not None:
            return cached
        text = _sanitize(text)
        if len(text) > MAX_CELLS:
            text = text[:MAX_CELLS] + "…"
        level = self._level(row, text, row_info, filtered=line_filter is not None)
        if is_failed_quantum(text):
            style = styles["failed"]
        else:
            style = styles.get(_LEVEL_ROLE.get(level or "", "base"), styles["base"])
        if self.compact:
            text = compact_line(text)
        segments = _highlight(text, style, line_filter, styles["match"])
        width = cell_len(text)
        if width > self.max_width:
            self.max_width = width
            self._on_wider(width)
        if len(segments) == 1 and text.isascii():
            out = Row(None, width, text, style)
        else:
            out = Row(segments, width, None, style)
        self._strips[key] = out
        return out

    def _level(self, row: int, text: str, row_info: RowInfo, *, filtered: bool) -> str | None:
        """Level of the record a row belongs to (continuation lines take their head's level; a filtered
        view's rows are not contiguous, so there a row has only its own)."""
        level = detect_level(text)
        if level is not None or filtered:
            return level
        chain: list[Any] = []
        r = row
        while r >= 0 and len(chain) < _LEVEL_LOOKBACK:
            key, text = row_info(r)
            cached = self._levels.get(key, _MISSING)
            if cached is not _MISSING:
                level = cached
                break
            chain.append(key)
            level = detect_level(text)
            if level is not None:
                break
            r -= 1
        for key in chain:
            self._levels[key] = level
        return level


def error_row(exc: Exception, styles: dict[str, Style]) -> Row:
    """What a row shows when its line cannot be read: a read error never becomes a traceback on screen."""
    msg = f"(cannot read this line: {exc})"
    return Row([Segment(msg, styles["note"])], cell_len(msg), None, styles["note"])


def paint_row(r: Row, width: int, scroll_x: int, styles: dict[str, Style], on_cursor: bool) -> Strip:
    """The strip of a rendered row, scrolled ``scroll_x`` cells and cut or padded to ``width``."""
    if r.fast is not None:
        # One ASCII segment (almost every log line): slice it; one Strip, no crop copies.
        piece = r.fast[scroll_x:scroll_x + width]
        if len(piece) < width:
            piece = piece.ljust(width)
        return Strip([Segment(piece, r.style + styles["cursor"] if on_cursor else r.style)], width)
    base = styles["base"]
    strip = Strip(r.segments or [], r.width)
    if on_cursor:
        strip = strip.crop_extend(0, max(width + scroll_x, r.width), base)
        strip = strip.apply_style(styles["cursor"])
    return strip.crop_extend(scroll_x, scroll_x + width, base)


def note_strip(note: str, width: int, styles: dict[str, Style]) -> Strip:
    """A view-wide note (no file yet, empty log, no match yet) as a row."""
    return Strip([Segment(note, styles["note"])], cell_len(note)).crop_extend(0, width, styles["base"])


def with_badge(strip: Strip, label: str, width: int, style: Style) -> Strip:
    """``strip`` with ``label`` over its right end (the "N new lines" badge), if it fits."""
    bw = cell_len(label)
    if bw >= width:
        return strip
    return Strip.join([strip.crop(0, width - bw), Strip([Segment(label, style)], bw)])


def status_text(*, follow: bool, cursor: int, snap: LogSnapshot | FilterSnapshot | None, index: LogIndex | None,
                line_filter: LineFilter | None, scan: FilterScan | None, searching: bool, problem: str | None) -> str:
    """A view's one-line status (its bottom border): follow or paused, where, the filter, the indexing."""
    if problem and snap is None:
        return "not available"
    parts = ["FOLLOW" if follow else "PAUSED"]
    if isinstance(snap, LogSnapshot) and index is not None:
        if follow:
            parts.append(f"{snap.lines:,} lines" if snap.exact else "last lines")
        elif snap.exact:
            parts.append(f"line {cursor + 1:,}")
    if line_filter is not None:
        label = f"filter /{line_filter.describe()}/"
        if scan is not None and isinstance(snap, FilterSnapshot):
            label += f" {snap.rows:,} match{'es' if snap.rows != 1 else ''}"
            if not scan.done_back:
                label += f" (scanning {int(scan.scanned_fraction * 100)}%)"
            elif scan.truncated:
                label += " (oldest dropped)"
        parts.append(label)
    if index is not None and not index.indexed:
        parts.append(f"indexing {int(index.progress * 100)}%")
    if searching:
        parts.append("searching…")
    return " · ".join(parts)
