"""Fitting names into columns: each column as wide as its longest cell, and cut only when there is no room.

Why: fixed column widths cut names that fit the screen (``clean-fitFiberProfile`` at 160 columns, a journal's
``define-pro``), and Rich, left to itself, folded them mid-word onto a second line.  Here a table's columns
get their natural widths when they fit; otherwise the columns named first give room first, each down to a
minimum, and a cell that is still too long is cut at its end with ``…``.  A column is never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.cells import cell_len, set_cell_size


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, an ellipsis as its last cell when it had to be cut."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    return set_cell_size(text, width - 1) + "…"


def cut_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cut in its middle: for labels told apart by their ends (two data
    IDs of one camera that differ in their last value)."""
    if len(text) <= width or width < 5:
        return cut(text, width)
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + "…" + text[len(text) - tail:]


def natural_widths(header: Mapping[str, str], rows: Sequence[Sequence[str]]) -> dict[str, int]:
    """Each column's widest cell (its header included); ``rows`` give the cells in ``header`` order."""
    return {key: max([cell_len(title)] + [cell_len(row[i]) for row in rows])
            for i, (key, title) in enumerate(header.items())}


def fit_widths(natural: Mapping[str, int], room: int, *, steps: Sequence[tuple[str, int]], gap: int) -> dict[str, int]:
    """Widths for columns that each take ``gap`` cells besides their width (a DataTable's cell padding), within
    ``room`` cells if they can: the ``natural`` ones when they fit; else each ``(column, minimum)`` of ``steps``
    in turn gives room down to that minimum until they fit.  Whether they did: :func:`fits`."""
    widths = dict(natural)
    excess = sum(widths.values()) + gap * len(widths) - room
    for key, minimum in steps:
        if excess <= 0:
            break
        give = min(excess, max(0, widths[key] - minimum))
        widths[key] -= give
        excess -= give
    return widths


def fits(widths: Mapping[str, int], room: int, *, gap: int) -> bool:
    return sum(widths.values()) + gap * len(widths) <= room
