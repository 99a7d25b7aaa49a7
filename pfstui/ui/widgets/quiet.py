"""Quieter Textual setters for a widget that changes often: the same effect, a smaller repaint.

Why: following 8 busy logs, a log view sets its scrollable size on every batch and its status (in the
bottom border) on every cursor move.  Textual's own setters re-lay out the whole screen or repaint the
whole widget for either.  These two reach into Textual 8.x internals to do only what is needed, and fall
back to the plain setter when an internal is missing (another Textual) or the widget has no size yet.
Kept in one module so a Textual upgrade has one place to check.
"""

from __future__ import annotations

from textual.content import Content
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.widget import Widget

__all__ = ["set_border_subtitle", "set_virtual_size"]


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
