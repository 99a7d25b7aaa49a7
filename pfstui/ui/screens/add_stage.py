"""Add a stage to the plan from a template: pick a template stage, edit its YAML, ctrl+s appends it.

The screen does the file work itself (``core.planedit.append_stage``) so a refused stage is shown in place,
next to the text to fix, and nothing is lost; it is dismissed with the ``AppendResult`` only once the plan
file holds the new stage.  Asking the supervisor to reload the plan is the Queue pane's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from pfstui.plan.edit import (
    AppendResult,
    PlanFile,
    TemplateStage,
    append_stage,
    backup_path,
    stage_text_for,
)
from pfstui.plan.issues import PlanError

#: How many problems the inline error shows (the rest are counted).
MAX_SHOWN_PROBLEMS = 6


def option_id(stage: TemplateStage) -> str:
    return f"{stage.template}:{stage.name}"


def option_prompt(stage: TemplateStage, *, show_template: bool, name_width: int = 22, kind_width: int = 18) -> Text:
    """One line per template stage: name, kind, what it does (cut with … on a narrow terminal)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if show_template:
        text.append(f"{stage.template:<5} ", "dim")
    text.append(f"{stage.name:<{name_width}} ", "bold")
    text.append(f"{stage.kind:<{kind_width}} ", "cyan")
    text.append(stage.description)
    return text


class AddStageScreen(ModalScreen[AppendResult | None]):
    """Pick a template stage, then edit it; ctrl+s validates and appends it to the plan file."""

    DEFAULT_CSS = """
    AddStageScreen { align: center middle; }
    AddStageScreen > Vertical { width: 95%; height: 90%; border: thick $primary; background: $surface; padding: 0 1; }
    AddStageScreen #addstage-title { height: auto; }
    AddStageScreen #addstage-list { height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    AddStageScreen #addstage-about { height: auto; color: $text-muted; }
    AddStageScreen #addstage-text { height: 1fr; display: none; }
    AddStageScreen.-editing #addstage-text { display: block; }
    AddStageScreen.-editing #addstage-list { display: none; }
    AddStageScreen #addstage-error { color: $error; height: auto; max-height: 8; }
    AddStageScreen #addstage-buttons { height: 3; align-horizontal: right; }
    AddStageScreen #addstage-ok { display: none; }
    AddStageScreen.-editing #addstage-ok { display: block; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="addstage.cancel"),
                Binding("ctrl+s", "save", "Add", id="addstage.save")]

    def __init__(self, plan_file: PlanFile, stages: list[TemplateStage], *,
                 env: Mapping[str, str] | None = None, queue_paused: bool | None = None) -> None:
        super().__init__()
        self.plan_file = plan_file
        self.stages = stages
        self.env = env
        self.queue_paused = queue_paused
        self.chosen: TemplateStage | None = None
        self._loaded_text = ""  # the chosen stage's text as the editor got it (edits are what differs)

    @property
    def plan_name(self) -> str:
        return Path(self.plan_file.path).name

    def compose(self) -> ComposeResult:
        several = len({s.template for s in self.stages}) > 1
        widths = {"name_width": max((len(s.name) for s in self.stages), default=0),
                  "kind_width": max((len(s.kind) for s in self.stages), default=0)}
        with Vertical():
            yield Static(f"[b]Add a stage to {escape(self.plan_name)}[/b] — pick a template stage (enter), "
                         "escape cancels", id="addstage-title")
            yield OptionList(*(Option(option_prompt(s, show_template=several, **widths), id=option_id(s))
                               for s in self.stages), id="addstage-list")
            yield TextArea("", id="addstage-text")
            yield Static("", id="addstage-about", markup=False)
            yield Static("", id="addstage-error", markup=False)
            with Horizontal(id="addstage-buttons"):
                yield Button("Add (ctrl+s)", id="addstage-ok", variant="primary")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.stages:
            options.highlighted = 0
        options.focus()
        self._about(self.stages[0] if self.stages else None)

    # --- picking ---------------------------------------------------------------------------------------
    def _about(self, stage: TemplateStage | None) -> None:
        if stage is None:
            self.query_one("#addstage-about", Static).update("No template stages to offer.")
            return
        after = ", ".join(stage.after) if stage.after else "nothing"
        self.query_one("#addstage-about", Static).update(
            f"{stage.template} template · {stage.name} ({stage.kind}), after {after}: {stage.description}")

    @on(OptionList.OptionHighlighted, "#addstage-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._about(self.stages[event.option_index])

    @on(OptionList.OptionSelected, "#addstage-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.choose(self.stages[event.option_index])

    def choose(self, stage: TemplateStage) -> None:
        """Switch to the editor with ``stage`` renamed and its ``after`` fitted to the plan."""
        self.chosen = stage
        text = stage_text_for(self.plan_file.plan, stage)
        editor = self.query_one("#addstage-text", TextArea)
        editor.load_text(text)
        self._loaded_text = editor.text
        self.add_class("-editing")
        when = {True: "it stays queued until the queue runs (r)",
                False: "the queue is running: it starts as soon as its 'after' stages are done",
                None: "it is queued"}[self.queue_paused]
        self.query_one("#addstage-title", Static).update(
            f"[b]Add to {escape(self.plan_name)}[/b] ({stage.template} template: {escape(stage.name)}) · "
            "ctrl+s adds · escape cancels")
        self.query_one("#addstage-about", Static).update(
            f"ctrl+s checks the whole plan, keeps the old file as {backup_path(self.plan_file.path).name}, "
            f"appends this stage and reloads the plan; {when}.")
        self.query_one("#addstage-error", Static).update("")
        editor.focus()

    # --- saving ----------------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_save()

    def action_cancel(self) -> None:
        """Escape: leave, but never throw away edits without asking."""
        editor = self.query_one("#addstage-text", TextArea)
        if self.chosen is None or editor.text == self._loaded_text:
            self.dismiss(None)
            return
        from pfstui.ui.screens.confirm import ConfirmScreen

        self.app.push_screen(
            ConfirmScreen(f"Discard your edits to {self.chosen.name}?",
                          f"The stage is not added to {self.plan_name}; the text you changed is lost.",
                          ok_label="Discard"),
            lambda discard: discard and self.dismiss(None))

    def _error(self, text: str) -> None:
        self.query_one("#addstage-error", Static).update(text)

    def action_save(self) -> None:
        if self.chosen is None:
            options = self.query_one(OptionList)
            if options.highlighted is not None and self.stages:
                self.choose(self.stages[options.highlighted])
            return
        text = self.query_one("#addstage-text", TextArea).text
        try:
            result = append_stage(self.plan_file, text, env=self.env)
        except PlanError as exc:
            lines = [i.message for i in exc.issues[:MAX_SHOWN_PROBLEMS]]
            more = len(exc.issues) - len(lines)
            if more:
                lines.append(f"… and {more} more")
            self._error("Not added: " + "\n".join(lines))
            return
        except OSError as exc:  # StateWriteError says which file and what to do
            self._error(f"Not added: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - never a traceback in the operator's face
            self._error(f"Not added: {type(exc).__name__}: {exc}")
            return
        self.dismiss(result)
