"""Edit a stage's options as YAML: before restarting it (``R``), or, for a stage that has not started, in the
plan file itself (``e``).

Why two editors on one base: the operator edits the same fields the same way; what differs is where the
change goes.  A restart's changes are the supervisor's overrides for the new attempt, with the choice of
running only the quanta that did not succeed (the default) or every quantum again.  A queued stage's changes
are written into the plan file as the add-stage editor writes (:func:`pfstui.plan.stage_edit.edit_stage`:
comments kept, ``.bak``, validated, refused when the file changed on disk); a refusal is shown in place,
next to the text to fix.  Asking the supervisor to act on either is the Queue pane's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Static, TextArea

__all__ = ["OptionsEditor", "RestartChoice", "RestartEditor", "StageEditor"]

#: How many problems the inline error shows.
MAX_SHOWN_PROBLEMS = 6


@dataclass(frozen=True)
class RestartChoice:
    """What the restart editor was told: the options changed, and whether every quantum runs again."""

    changes: dict[str, Any]
    full: bool = False


class OptionsEditor(ModalScreen):
    """A stage's options as YAML; ctrl+s hands the changed ones to :meth:`save`, escape cancels."""

    DEFAULT_CSS = """
    OptionsEditor { align: center middle; }
    OptionsEditor > Vertical { width: 95%; height: 90%; border: thick $warning; background: $surface;
                                padding: 0 1; }
    OptionsEditor #options-text { height: 1fr; }
    OptionsEditor #options-error { color: $error; height: auto; max-height: 8; }
    OptionsEditor #options-buttons { height: auto; align-horizontal: right; }
    OptionsEditor Checkbox { width: 1fr; }
    """

    ok_label = "Save"

    def __init__(self, stage_id: str, options: dict[str, Any]) -> None:
        super().__init__()
        self.stage_id = stage_id
        self.options = options

    def title_line(self) -> str:  # pragma: no cover - each editor says what it does
        raise NotImplementedError

    def extra_widgets(self) -> ComposeResult:
        yield from ()

    def compose(self) -> ComposeResult:
        text = yaml.safe_dump(self.options, sort_keys=False, default_flow_style=False) if self.options else "{}\n"
        with Vertical():
            yield Static(self.title_line(), id="options-title")
            yield TextArea(text, id="options-text")
            yield Static("", id="options-error", markup=False)
            with Horizontal(id="options-buttons"):
                yield from self.extra_widgets()
                yield Button(f"{self.ok_label} (ctrl+s)", id="options-ok", variant="warning")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_save()

    def error(self, text: str) -> None:
        self.query_one("#options-error", Static).update(text)

    def changes(self) -> dict[str, Any] | None:
        """The options whose values the operator changed (None, with the problem shown, when the text is not
        'field: value' YAML).  Read as a plan reads YAML: a date stays the string it was written as."""
        from pfstui.plan.loader import plain_values

        try:
            data = plain_values(self.query_one(TextArea).text) or {}
        except yaml.YAMLError as exc:
            self.error(f"Not valid YAML: {exc}".splitlines()[0])
            return None
        if not isinstance(data, dict):
            self.error("Write the options as 'field: value' lines.")
            return None
        return {k: v for k, v in data.items() if self.options.get(k) != v}

    def action_save(self) -> None:
        changes = self.changes()
        if changes is not None:
            self.save(changes)

    def save(self, changes: dict[str, Any]) -> None:  # pragma: no cover - each editor knows where it goes
        raise NotImplementedError


class RestartEditor(OptionsEditor):
    """Edit a stage's options before restarting it; dismissed with a :class:`RestartChoice`."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="restart.cancel"),
                Binding("ctrl+s", "save", "Restart", id="restart.save")]
    ok_label = "Restart"

    def title_line(self) -> str:
        return (f"[b]Restart {escape(self.stage_id)}[/b] with these options (YAML; ctrl+s restarts, escape "
                "cancels). It runs only the quanta that did not succeed, unless you tick the full rerun.")

    def extra_widgets(self) -> ComposeResult:
        yield Checkbox("Full rerun: every quantum again", id="options-full")

    def save(self, changes: dict[str, Any]) -> None:
        self.dismiss(RestartChoice(changes, full=self.query_one("#options-full", Checkbox).value))


class StageEditor(OptionsEditor):
    """Edit the options of a stage that has not started, in the plan file; dismissed with the
    :class:`pfstui.plan.stage_edit.StageEdit` once the file holds them."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="stageedit.cancel"),
                Binding("ctrl+s", "save", "Save", id="stageedit.save")]

    def __init__(self, stage_id: str, options: dict[str, Any], plan_file: Any, *,
                 env: Mapping[str, str] | None = None) -> None:
        super().__init__(stage_id, options)
        self.plan_file = plan_file
        self.env = env

    def title_line(self) -> str:
        from pfstui.plan.edit import backup_path

        path = Path(self.plan_file.path)
        return (f"[b]Edit {escape(self.stage_id)}[/b] in {escape(path.name)} (YAML; ctrl+s checks the whole plan, "
                f"keeps the old file as {escape(backup_path(path).name)} and saves; escape cancels). Its next "
                "attempt runs with these options.")

    def save(self, changes: dict[str, Any]) -> None:
        from pfstui.plan.issues import PlanError
        from pfstui.plan.stage_edit import edit_stage

        if not changes:
            self.dismiss(None)
            return
        try:
            result = edit_stage(self.plan_file, self.stage_id, changes, env=self.env)
        except PlanError as exc:
            lines = [i.message for i in exc.issues[:MAX_SHOWN_PROBLEMS]]
            more = len(exc.issues) - len(lines)
            self.error("Not saved: " + "\n".join(lines) + (f"\n… and {more} more" if more else ""))
            return
        except OSError as exc:  # StateWriteError says which file and what to do
            self.error(f"Not saved: {exc}")
            return
        self.dismiss(result)
