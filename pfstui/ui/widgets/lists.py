"""The keys every list of pfstui moves with (as a log does), and the Collections tree that has them.

Why: Textual's ``DataTable`` binds Home/End to horizontal scrolling and its ``Tree`` binds neither, so
Home/End/g/G did nothing in the Queue, the Certify journal or the Collections tree while ``?`` listed
them.  :func:`list_bindings` gives every list the keys of the log view (``less``/vim): ``up``/``k``,
``down``/``j``, ``pageup``/``b`` and ``pagedown``/``space``, ``g``/``home`` first row, ``G``/``end`` last
row, with one binding id each (``list.*``) so a ``keymap:`` entry rebinds them in every list at once.
(The tree's ``space`` toggled a node, which ``enter`` does too: here ``space`` pages, as in a log.)
The tables are :class:`pfstui.ui.widgets.tables.ListTable`: a module of their own, so the Collections pane,
first on screen without a plan, does not import Textual's DataTable before its first frame.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Tree

__all__ = ["ListTree", "list_bindings"]


def list_bindings(top: str, bottom: str) -> list[BindingType]:
    """The list keys; ``top``/``bottom`` are the widget's own actions that move its cursor there."""
    return [
        Binding("up,k", "cursor_up", "Up", show=False, id="list.up"),
        Binding("down,j", "cursor_down", "Down", show=False, id="list.down"),
        Binding("pageup,b", "page_up", "Page up", show=False, id="list.page_up"),
        Binding("pagedown,space", "page_down", "Page down", show=False, id="list.page_down"),
        Binding("home,g", top, "Top", show=False, id="list.top"),
        Binding("end,G", bottom, "Bottom", show=False, id="list.bottom"),
    ]


class ListTree(Tree):
    """A ``Tree`` whose cursor moves with the list keys (see the module docstring)."""

    BINDINGS: ClassVar[list[BindingType]] = list_bindings("scroll_home", "scroll_end")
