"""A confirmation dialog that shows exactly what will happen, and asks once."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 90%; max-width: 110; height: auto; max-height: 90%;
                               border: thick $warning; background: $surface; padding: 1 2; }
    ConfirmScreen #confirm-body { height: auto; max-height: 50vh; }  /* the buttons stay on a 24-row screen */
    ConfirmScreen Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    ConfirmScreen Button { margin-left: 2; }
    """
    BINDINGS = [Binding("escape,n", "cancel", "Cancel", id="confirm.cancel"),
                Binding("y", "ok", "Yes", id="confirm.yes")]

    def __init__(self, title: str, body: str, *, ok_label: str = "Yes", danger: bool = True) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.ok_label = ok_label
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self.title_text, "bold"), id="confirm-title")  # as written: never read as markup
            with VerticalScroll(id="confirm-body"):
                yield Static(self.body, markup=False)
            with Horizontal():
                yield Button("Cancel (n)", id="cancel")
                yield Button(f"{self.ok_label} (y)", id="ok", variant="error" if self.danger else "primary")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "ok")

    def action_cancel(self) -> None:
        self.dismiss(False)

    def action_ok(self) -> None:
        self.dismiss(True)


class TextScreen(ModalScreen[None]):
    """A read-only text view (a stage's argv, its failures), closed with escape."""

    DEFAULT_CSS = """
    TextScreen { align: center middle; }
    TextScreen > VerticalScroll { width: 95%; height: 90%; border: thick $primary; background: $surface;
                                  padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q", "close", "Close", id="text.close")]

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text.assemble((self.title_text, "bold"), "  (escape closes)"))
            yield Static(self.body, markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
