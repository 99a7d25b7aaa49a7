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
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="logs.prompt.cancel"),
        Binding("up", "recall", "Recall", show=False, id="logs.prompt.recall"),
    ]

    def __init__(self, label: str, *, value: str = "", placeholder: str = "", validate=None,
                 recall: str = "") -> None:
        super().__init__()
        self._label = label
        self._value = value
        self._placeholder = placeholder
        self._validate = validate
        #: What ``up`` puts in the line (the filter in force): the prompt opens empty, so enter on it
        #: does what the label says empty does, and the old answer is one key away.
        self._recall = recall

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._label)
            # compact: one row, no border (a 1-row Input with the default tall border had no room left for
            # its text: the prompt drew only its borders, focused or not).
            yield Input(value=self._value, placeholder=self._placeholder, id="prompt-input", compact=True)
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

    def action_recall(self) -> None:
        if self._recall:
            box = self.query_one(Input)
            box.value = self._recall
            box.cursor_position = len(self._recall)
