"""Validity ranges as a text timeline: one row per (dataset type, data ID), ranges as bars.

Ranges are the Butler's half-open ``[begin, end)`` on its exact nanosecond bounds, so two ranges that touch
(``[a, b)`` then ``[b, c)``) do not overlap: 150 consecutive weekly ranges are one green bar.  A cell is red
(``▓``) only where two ranges of one row really overlap (a conflict the registry would refuse); gaps are
blank; open ends run to the edge of the axis with an arrow.  A row is one dataset type and one full data ID
(every dimension, ``physical_filter`` included): two filters of one camera are two rows, not a conflict.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.text import Text

from pfstui.butler.values import MAX_NSEC, MIN_NSEC, camera_text, nsec_to_iso
from pfstui.ui.render.fit import cut, cut_middle

#: Axis used when no range has a finite bound (2000-01-01 to 2050-01-01 TAI).
_DEFAULT_AXIS = (946684800 * 10**9, 2524608000 * 10**9)
_YEAR = 365 * 86400 * 10**9


def camera_key(data_id: Mapping[str, Any]) -> str:
    """A data ID as the operator names a camera: ``b1`` for arm and spectrograph, then every other dimension
    (``b1 physical_filter=b``); the instrument is left out."""
    if "arm" in data_id and "spectrograph" in data_id:
        rest = {k: v for k, v in data_id.items() if k not in ("instrument", "arm", "spectrograph")}
        head = f"{data_id['arm']}{data_id['spectrograph']}"
        return f"{head} {camera_text(rest)}" if rest else head
    return camera_text(data_id) or "-"


def overlaps(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The stretches covered by two or more of the half-open ``spans`` (ranges that only touch do not count)."""
    events = []
    for begin, end in spans:
        if begin < end:
            events += [(begin, 1), (end, -1)]
    events.sort()  # at the same instant an end (-1) comes before a begin (+1): touching is not overlapping
    out: list[tuple[int, int]] = []
    depth, start = 0, 0
    for t, step in events:
        depth += step
        if step == 1 and depth == 2:
            start = t
        elif step == -1 and depth == 1 and t > start:
            out.append((start, t))
    return out


def overlap_count(assocs: Sequence[Any]) -> int:
    """How many rows (dataset type, data ID) hold overlapping ranges."""
    return sum(1 for items in _rows(assocs).values() if overlaps(a.nsec for a in items))


def _rows(assocs: Sequence[Any]) -> dict[tuple, list]:
    rows: dict[tuple, list] = {}
    for a in assocs:
        rows.setdefault((a.dataset_type, a.data_id_key()), []).append(a)
    return rows


class _Axis:
    """``width`` cells from ``lo`` to ``hi``, cell i covering ``[bounds[i], bounds[i+1])``; what lies beyond
    either end (an open end, a range starting at ``hi``) is drawn in the cell at that end."""

    def __init__(self, assocs: Sequence[Any], width: int) -> None:
        finite = [b for a in assocs for b in a.nsec if MIN_NSEC < b < MAX_NSEC]
        lo, hi = (min(finite), max(finite)) if finite else _DEFAULT_AXIS
        if hi <= lo:
            hi = lo + _YEAR
        self.lo, self.hi, self.width = lo, hi, width
        self.bounds = [lo + i * (hi - lo) // width for i in range(width + 1)]

    def cells(self, begin: int, end: int) -> range:
        """The cells a half-open ``[begin, end)`` covers."""
        if begin >= end:
            return range(0)
        first = min(self.width - 1, max(0, bisect_right(self.bounds, begin) - 1))
        last = min(self.width - 1, max(first, bisect_left(self.bounds, end) - 1))
        return range(first, last + 1)


def timeline(assocs: Sequence[Any], width: int = 60) -> list[Text]:
    """Within ``width`` cells: the axis (first and last date), then per dataset type its name and one bar per
    data ID (labelled ``  b1``, ``  b1 physical_filter=b``)."""
    if not assocs:
        return [Text("no validity ranges", "dim")]
    rows = _rows(assocs)
    labels = {key: "  " + camera_key(items[0].data_id) for key, items in rows.items()}
    label_w = min(max(len(t) for t in labels.values()), max(8, width // 2))
    axis = _Axis(assocs, max(10, width - label_w - 1))
    first, last = nsec_to_iso(axis.lo)[:10], nsec_to_iso(axis.hi)[:10]
    head = " " * (label_w + 1) + (first + last.rjust(axis.width - len(first)) if axis.width >= 22 else first)
    out = [Text(head, "dim", no_wrap=True, overflow="ellipsis")]
    dataset_type = None
    for key in sorted(rows):
        if key[0] != dataset_type:
            dataset_type = key[0]
            out.append(Text(cut(dataset_type, width), "bold", no_wrap=True))
        out.append(_bar_row(cut_middle(labels[key], label_w).ljust(label_w + 1), rows[key], axis))
    return out


def _bar_row(label: str, items: list, axis: _Axis) -> Text:
    covered = [False] * axis.width
    red = [False] * axis.width
    for a in items:
        for i in axis.cells(*a.nsec):
            covered[i] = True
    for span in overlaps(a.nsec for a in items):
        for i in axis.cells(*span):
            red[i] = True
    open_left = any(a.nsec[0] <= MIN_NSEC for a in items)
    open_right = any(a.nsec[1] >= MAX_NSEC for a in items)
    line = Text(label, no_wrap=True, overflow="ellipsis")
    for i in range(axis.width):
        if red[i]:
            line.append("▓", "bold red")
        elif not covered[i]:
            line.append("·", "dim")
        else:
            arrow = "◀" if i == 0 and open_left else "▶" if i == axis.width - 1 and open_right else "█"
            line.append(arrow, "green")
    return line
