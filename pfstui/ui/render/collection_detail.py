"""What the Collections pane shows for one collection: its header, validity ranges, children, dataset types
and parents, fitted to the width of the detail view.

Why a module of its own: at scale the order and the sizes matter more than the content.  A CALIBRATION
collection of a busy repository has thousands of parent chains; listed in full they pushed its validity
ranges (what the operator came for) off every screen, so the ranges come first and long lists are
summarised (the first few and "and N more").  The validity table gets fixed column widths computed here:
left to Rich, a long camera text squeezed the ``type`` and ``run`` columns to nothing and names wrapped
mid-word (``detectorMap_b`` / ``ootstrap``).  Now every column keeps a width and a cell that does not fit is
cut at its end with an ellipsis.  Everything is built from plain text (no markup), so a name with ``[`` in
it is shown as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from pfstui.ui.render.fit import cut, fit_widths, fits, natural_widths
from pfstui.ui.render.timeline import camera_key, overlap_count, timeline

TYPE_STYLE = {"RUN": "green", "CHAINED": "cyan", "CALIBRATION": "magenta", "TAGGED": "yellow"}
#: How many parents and children are listed before "and N more".
PARENTS_SHOWN = 5
CHILDREN_SHOWN = 20
#: The validity table's columns, and the order in which they give room on a narrow screen (column, down to);
#: the bounds give none.
COLUMNS = {"type": "type", "camera": "camera", "begin": "begin (TAI)", "end": "end (TAI)", "run": "run"}
SHRINK = (("run", 16), ("camera", 10), ("run", 12), ("type", 14), ("camera", 6))


@dataclass
class Ranges:
    """The validity ranges loaded so far for a CALIBRATION collection (``more``: only the first were loaded)."""

    assocs: list
    more: bool = False


def _cells(a: Any) -> tuple[str, ...]:
    return (a.dataset_type, camera_key(a.data_id), a.begin or "−∞", a.end or "+∞", a.run)


def _short_times(rows: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The rows with their bounds written shorter when nothing is lost: ``2025-01-06`` when every finite bound
    is at midnight, ``2025-01-06T12:30`` when every one is on the minute."""
    bounds = [b for r in rows for b in r[2:4] if b[:1].isdigit()]
    for suffix in ("T00:00:00", ":00"):
        if bounds and all(b.endswith(suffix) for b in bounds):
            trim = len(suffix)
            return [(t, c, b[:-trim] if b[:1].isdigit() else b, e[:-trim] if e[:1].isdigit() else e, run)
                    for t, c, b, e, run in rows]
    return rows


def validity_table(assocs: Sequence[Any], width: int) -> RenderableType:
    """One row per range within ``width`` cells; every column present, long cells cut with an ellipsis.

    The bounds are never cut (``2000-01-0…`` says nothing), nor the other columns below a readable width:
    where they do not fit so (the detail of an 80-column screen), each range takes two lines instead
    (:func:`_stacked`).
    """
    rows = _short_times([_cells(a) for a in assocs])
    # One cell between two columns (none after the last one: given back).
    widths = fit_widths(natural_widths(COLUMNS, rows), width + 1, steps=SHRINK, gap=1)
    if not fits(widths, width + 1, gap=1):
        return _stacked(rows, width)
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", padding=(0, 1, 0, 0))
    for key, title in COLUMNS.items():
        table.add_column(title, width=widths[key], no_wrap=True, overflow="ellipsis")
    for r in rows:
        table.add_row(*r)
    return table


def _stacked(rows: list[tuple[str, ...]], width: int) -> Text:
    """The validity table on a narrow view: ``type camera``, then ``[begin, end)  run`` under it (the run on a
    line of its own when both do not fit), each line cut at its end with an ellipsis if it must be."""
    out = Text(cut("type camera", width) + "\n" + cut(" [begin, end) TAI  run", width), "bold", no_wrap=True)
    for dataset_type, camera, begin, end, run in rows:
        out.append("\n" + cut(f"{dataset_type} {camera}", width))
        bounds = f" [{begin}, {end})"
        rest = f"  {run}" if len(bounds) + 2 + len(run) <= width else f"\n {cut(run, width - 1)}"
        out.append("\n" + cut(bounds, width) + rest, "dim")
    return out


def _summary(items: Sequence[str], shown: int, numbered: bool = False) -> list[str]:
    lines = [f"  {i + 1}. {name}" if numbered else f"  {name}" for i, name in enumerate(items[:shown])]
    if len(items) > shown:
        lines.append(f"  … and {len(items) - shown:,} more")
    return lines


def _section(title: str, note: str = "") -> Text:
    text = Text("\n")
    text.append(title, "bold")
    if note:
        text.append(f" {note}")
    return text


def detail_view(detail: Any, ranges: Ranges | None, width: int) -> tuple[RenderableType, str]:
    """The renderable of a collection's detail (``ranges`` None: still loading) and its plain text."""
    row = detail.row
    parts: list[RenderableType] = []
    plain: list[str] = []

    def text(t: Text) -> None:
        parts.append(t)
        plain.append(t.plain)

    head = Text(row.name, "bold")
    head.append("  ")
    head.append(row.type, TYPE_STYLE.get(row.type, "white"))
    text(head)
    if row.doc:
        text(Text(row.doc))
    if row.type == "CALIBRATION":
        _ranges(ranges, width, parts, plain)
    if row.children:
        text(_section("Children", "(search order)"))
        text(Text("\n".join(_summary(list(row.children), CHILDREN_SHOWN, numbered=True))))
    if detail.dataset_types:
        text(_section("Dataset types"))
        name_w = max(len(name) for name, _ in detail.dataset_types)
        text(Text("\n".join(f"  {name:<{name_w}} {count:>6}" for name, count in detail.dataset_types)))
    if row.parents:
        text(_section("Parents", f"({len(row.parents):,})"))
        text(Text("\n".join(_summary(sorted(row.parents), PARENTS_SHOWN))))
    return Group(*parts), "\n".join(plain)


def _ranges(ranges: Ranges | None, width: int, parts: list, plain: list[str]) -> None:
    if ranges is None:
        title = _section("Validity ranges", "loading…")
        parts.append(title)
        plain.append(title.plain)
        return
    n = len(ranges.assocs)
    note = f"({n:,}{'+, first shown' if ranges.more else ''})"
    if n:
        conflicts = overlap_count(ranges.assocs)
        note += f" · overlaps in {conflicts} row{'s' if conflicts != 1 else ''}" if conflicts else " · no overlaps"
    title = _section("Validity ranges", note)
    bars = timeline(ranges.assocs, width=width)
    parts += [title, *bars]
    plain += [title.plain, *(b.plain for b in bars)]
    if n:
        parts += [Text(""), validity_table(ranges.assocs, width)]
        plain += [" ".join(_cells(a)) for a in ranges.assocs]
