"""Quieter Textual setters for a widget that changes often: the same effect, a smaller repaint.

Why: following 8 busy logs, a log view sets its scrollable size on every batch and its status (in the
bottom border) on every cursor move; the Queue pane's running stage changes its time every second.
Textual's own setters re-lay out the whole screen or repaint the whole widget for each (a whole Queue
table a second was 7-10 KB/s to a terminal at 100x30).  These reach into Textual 8.x internals to do only
what is needed, and fall back to the plain setter when an internal is missing (another Textual) or the
widget has no size yet.  Kept in one module so a Textual upgrade has one place to check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.content import Content
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.widget import Widget
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

__all__ = ["set_border_subtitle", "set_cell", "set_rows", "set_virtual_size"]


def set_virtual_size(view: ScrollView, size: Size) -> None:
    """Set ``virtual_size`` without a screen re-layout when the scrollbars stay as they are.

    The reactive is declared ``layout=True``, so each assignment re-arranges the whole screen; for a
    ScrollView the layout only feeds ``_scroll_update`` (scrollbar windows, clamping).  Following 8 logs
    at 5 batches/s that reflow was a third of the UI thread.
    """
    scroll_update = getattr(view, "_scroll_update", None)
    if scroll_update is None or not view.is_mounted or not view.container_size:
        view.virtual_size = size
        return
    before = (view.show_vertical_scrollbar, view.show_horizontal_scrollbar)
    view.set_reactive(ScrollView.virtual_size, size)
    scroll_update(size)
    if (view.show_vertical_scrollbar, view.show_horizontal_scrollbar) != before:
        view.refresh(layout=True)


def set_border_subtitle(widget: Widget, text: str) -> None:
    """Put ``text`` in the bottom border, repainting only that row.

    ``border_subtitle = ...`` repaints the whole widget; a cursor move changes a log view's status ("line
    N") and two rows, so it would repaint every row.  Same conversion as Textual's setter.
    """
    content = Content(text)  # plain text: a filter such as /[b]ad/ is shown as typed, not read as markup
    outer = widget.outer_size
    if not hasattr(widget, "_border_subtitle") or not widget.is_mounted or not outer.height:
        widget.border_subtitle = content
        return
    widget._border_subtitle = content.expand_tabs(4).split()[0]
    ox, oy = widget.content_offset
    widget.refresh(Region(-ox, outer.height - 1 - oy, outer.width, 1))


def set_cell(table: DataTable, row: str, column: str, value: Any) -> bool:
    """Put ``value`` in one cell, repainting that cell only; False, and nothing repainted, when it holds it.

    ``DataTable.update_cell`` repaints the whole table for one cell.  The render caches are keyed on the
    table's update count, so it is bumped as ``update_cell`` does; only the cell's region is refreshed.
    """
    if table.get_cell(row, column) == value:
        return False
    data = getattr(table, "_data", None)
    if not isinstance(data, dict) or not isinstance(getattr(table, "_update_count", None), int):
        table.update_cell(row, column, value)
        return True
    data[RowKey(row)][ColumnKey(column)] = value
    table._update_count += 1
    table.refresh_coordinate(table.get_cell_coordinate(row, column))
    return True


def set_rows(table: DataTable, rows: Sequence[tuple[str, Sequence[Any]]]) -> bool:
    """Show ``rows`` (key, cells in column order): only the cells that changed are repainted, unless rows
    came, went or moved (then the table is rebuilt).  True when it was rebuilt."""
    columns = [str(c.key.value) for c in table.ordered_columns]
    if [str(r.key.value) for r in table.ordered_rows] != [key for key, _ in rows]:
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
        return True
    for key, cells in rows:
        for column, value in zip(columns, cells, strict=True):
            set_cell(table, key, column, value)
    return False
