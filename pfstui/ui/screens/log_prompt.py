"""A one-line prompt at the bottom of the screen: the log view's filter and go-to-line questions.

Why a modal of its own: the question must not steal the log view's keys while it is not asked, and a
bad answer (an invalid regex) must keep it open with the reason under the input, not close and lose it.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

__all__ = ["LogPrompt"]


class LogPrompt(ModalScreen[str | None]):
    """A one-line prompt at the bottom of the screen; ``validate`` returning a message keeps it open."""

    DEFAULT_CSS = """
    LogPrompt {
        align: center bottom;
        background: $background 20%;
    }
    LogPrompt > Vertical {
        height: auto;
        width: 100%;
        background: $panel;
        border-top: tall $accent;
        padding: 0 1;
    }
    LogPrompt Label { width: 100%; color: $text-muted; }
    LogPrompt #prompt-error { color: $error; height: auto; }
    LogPrompt Input { border: none; height: 1; padding: 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="logs.prompt.cancel"),
    ]

    def __init__(self, label: str, *, value: str = "", placeholder: str = "", validate=None) -> None:
        super().__init__()
        self._label = label
        self._value = value
        self._placeholder = placeholder
        self._validate = validate

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._label)
            yield Input(value=self._value, placeholder=self._placeholder, id="prompt-input")
            yield Static("", id="prompt-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value
        if self._validate is not None:
            problem = self._validate(value)
            if problem:
                self.query_one("#prompt-error", Static).update(problem)
                return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
