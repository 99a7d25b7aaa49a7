"""The tables of the panes (the Queue, the Certify journal): a ``DataTable`` moved by the list keys.

See :mod:`pfstui.ui.widgets.lists` for the keys and why (Textual's DataTable scrolls sideways on
Home/End, and has no j/k/g/G).
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import BindingType
from textual.widgets import DataTable

from pfstui.ui.widgets.lists import list_bindings

__all__ = ["ListTable"]


class ListTable(DataTable):
    """A ``DataTable`` whose row cursor moves with the list keys."""

    BINDINGS: ClassVar[list[BindingType]] = list_bindings("scroll_top", "scroll_bottom")
