"""The fields of one log record, pretty-printed: the log view's ``enter``.

Why: the screen shows a ``--long-log`` head compact and a JSON record as one long line; the operator who
needs the MDC label, the source line or the traceback of a JSON record reads them here, field by field.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rich.console import Group
from rich.pretty import Pretty
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["RecordScreen"]


class RecordScreen(ModalScreen[None]):
    """The fields of one log record, pretty-printed (JSON records show every field they carry)."""

    DEFAULT_CSS = """
    RecordScreen { align: center middle; background: $background 40%; }
    RecordScreen > VerticalScroll {
        width: 90%;
        height: 80%;
        background: $panel;
        border: round $accent;
        padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,enter", "close", "Close", id="logs.record.close"),
    ]

    #: Field order shown first; the rest follow alphabetically.
    ORDER = ("levelname", "asctime", "name", "message", "MDC", "filename", "lineno", "funcName", "pathname",
             "process", "processName", "levelno", "exc_info")

    def __init__(self, kind: str, fields: dict[str, Any], title: str = "") -> None:
        super().__init__()
        self.kind = kind
        self.fields = fields
        self._title = title

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        keys = [k for k in self.ORDER if k in self.fields] + sorted(k for k in self.fields if k not in self.ORDER)
        for key in keys:
            value = self.fields[key]
            if isinstance(value, str):
                cell: Any = Text(value)
            elif isinstance(value, dict | list):
                cell = Pretty(value) if value else Text("{}" if isinstance(value, dict) else "[]", style="dim")
            else:
                cell = Text(json.dumps(value))
            table.add_row(key, cell)
        with VerticalScroll() as vs:
            vs.border_title = Text(f"{self._title} — {self.kind} record")  # a stage id is not markup
            vs.border_subtitle = "esc close"
            yield Static(Group(table), id="record-fields")

    def action_close(self) -> None:
        self.dismiss(None)
