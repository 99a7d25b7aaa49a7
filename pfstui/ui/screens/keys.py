"""``?``: every key of pfstui with what it does and its binding id, the pane in use first.

Why a screen of its own: the README and the keymap warning tell the operator to rebind keys by id
(``keymap: {queue.kill: K}``), so the ids must be where the keys are listed.  Textual's help panel shows
the focused widget's keys without ids, and only those; this one shows them all, as rebound.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["KeysScreen", "binding_rows"]


def binding_rows(section, keymap: dict[str, str]) -> list[tuple[str, str, str]]:
    """``(keys, what it does, id)`` of a :class:`~pfstui.ui.keymap.Section`'s bindings, as rebound."""
    from pfstui.ui.keymap import key_text

    rows = []
    for cls in section.classes:
        for b in cls.__dict__.get("BINDINGS", []):
            if isinstance(b, Binding) and b.id:
                rows.append((key_text(keymap.get(b.id, b.key)), b.tooltip or b.description, b.id))
    return rows


class KeysScreen(ModalScreen[None]):
    """Every key, section by section (the pane shown first), with its binding id."""

    DEFAULT_CSS = """
    KeysScreen { align: center middle; }
    KeysScreen > VerticalScroll { width: 95%; max-width: 110; height: 90%; border: round $accent;
                                  background: $surface; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", id="keys.close"),
        Binding("up,k", "scroll_up", "Up", show=False, id="keys.up"),
        Binding("down,j", "scroll_down", "Down", show=False, id="keys.down"),
        Binding("pageup,b", "page(-1)", "Page up", show=False, id="keys.page_up"),
        Binding("pagedown,space", "page(1)", "Page down", show=False, id="keys.page_down"),
    ]

    def __init__(self, sections: list, keymap: dict[str, str]) -> None:
        super().__init__()
        self.sections = sections
        self.keymap = keymap

    def compose(self) -> ComposeResult:
        parts: list = [Text("Rebind a key by its id in ~/.config/pfstui/config.yaml, e.g. keymap: {queue.kill: K}",
                            "dim")]
        for section in self.sections:
            table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1), expand=True)
            table.add_column("keys", style="bold", no_wrap=True, width=12)
            table.add_column("what", ratio=1)
            table.add_column("id", style="dim", no_wrap=True)
            for keys, what, ident in binding_rows(section, self.keymap):
                table.add_row(keys, what, ident)
            parts += [Text(""), Text(section.title, "bold underline"), table]
        with VerticalScroll() as scroll:
            scroll.border_title = "Keys (escape closes)"
            yield Static(Group(*parts), id="keys-body")

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll_up(self) -> None:
        self.query_one(VerticalScroll).scroll_up(animate=False)

    def action_scroll_down(self) -> None:
        self.query_one(VerticalScroll).scroll_down(animate=False)

    def action_page(self, direction: int) -> None:
        scroll = self.query_one(VerticalScroll)
        (scroll.scroll_page_down if direction > 0 else scroll.scroll_page_up)(animate=False)
