"""Verify a product and look at it: the verification runs on the app's Butler lane, then the view draws it.

Why a screen of its own: the grid and two pictures need the whole terminal at 80x24, and the operator comes
here from two places (the Certify form, a stage's details in the Queue) and goes back with Escape to where
they were.  It is modal, as the other dialogs: the panes' keys (``1``..``4``) would act unseen behind it.  Reading 16 cameras' FITS files takes a while: the working line says so after a moment, and Escape
cancels the read (the late result is thrown away), then closes the screen.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import ModalScreen
from textual.widgets import Static

from pfstui.ui.images import Renderer
from pfstui.ui.widgets.footer import KeysFooter
from pfstui.ui.workers import RepositoryWork

__all__ = ["VerificationScreen", "stage_request"]


def _certify_args(argv: list[str]) -> dict[str, str | None] | None:
    """What ``pfstui certify`` or ``butler certify-calibrations`` (``REPO INPUT TARGET DATASETTYPE [--begin-date
    D] ...``) certifies, or None for another command."""
    word = next((a for a in argv if a in ("certify", "certify-calibrations")), None)
    if word is None:
        return None
    rest = argv[argv.index(word) + 1:]
    positional = [a for i, a in enumerate(rest) if not a.startswith("-") and not (i and rest[i - 1].startswith("--"))]
    begin = rest[rest.index("--begin-date") + 1] if "--begin-date" in rest[:-1] else None
    if len(positional) < 4:
        return None
    return {"collection": positional[1], "against": positional[2], "dataset_type": positional[3], "at": begin}


def _output(argv: list[str]) -> str | None:
    for flag in ("-o", "--output"):
        if flag in argv[:-1]:
            return argv[argv.index(flag) + 1]
    return None


def stage_request(stage: Any, stages: list[Any]) -> dict[str, str | None] | None:
    """What verifying a Queue stage's product means: a certify stage's input, type, target and begin date; for a
    pipetask stage, those of the certify stage that takes its output.  None when verify has nothing to read."""
    from pfstui.verify.limits import product_kind

    found = _certify_args(stage.argv)
    if found is None and stage.argv and os.path.basename(stage.argv[0]) == "pipetask":
        output = _output(stage.argv)
        found = next((args for args in map(_certify_args, (s.argv for s in stages))
                      if args and output and args["collection"] == output), None)
    return found if found and product_kind(str(found["dataset_type"])) else None


class VerificationScreen(RepositoryWork, ModalScreen[None]):
    """The verification of ``dataset_type`` in ``collection`` against ``against`` at ``at`` (TAI text; now if
    empty); ``report`` given (a test, a report already made) is shown without reading anything."""

    DEFAULT_CSS = """
    VerificationScreen { background: $background; }
    VerificationScreen #verify-working { height: auto; }
    VerificationScreen #verify-body { height: 1fr; }
    """
    #: The same widths as the app's panes (a test app without them still gets the wide layout).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [Binding("escape", "back", "Back", id="verify.back", tooltip="Cancel the reading, else go back")]
    WORKING = {"verify": "reading the product's files, camera by camera"}
    CANCELLABLE = frozenset({"verify"})

    def __init__(self, gateway_factory: Callable[[], Any] | None, collection: str, dataset_type: str, *,
                 against: str | None = None, at: str | None = None, renderer: Renderer | None = None,
                 report: Any = None) -> None:
        super().__init__()
        self._gateway_factory = gateway_factory
        self.collection, self.dataset_type, self.against, self.at = collection, dataset_type, against, at
        self._renderer = renderer
        self.report = report

    @property
    def renderer(self) -> Renderer:
        """The one given, else the ``images`` setting (``auto`` in an app without settings)."""
        settings = getattr(self.app, "settings", None)
        return self._renderer or getattr(settings, "images", "auto")

    def compose(self) -> ComposeResult:
        working = Static("", id="verify-working", classes="status-line")
        working.display = False
        yield working
        with Container(id="verify-body"):
            if self.report is None:
                yield Static(f"Verifying {self.dataset_type} in {self.collection}… (esc cancels)", id="verify-note")
        yield KeysFooter()

    def on_mount(self) -> None:
        if self.report is not None:
            self._show(self.report)
        else:
            self.run_verify()

    @work(exclusive=True, group="verify", exit_on_error=False, description="Cannot verify")
    async def run_verify(self) -> None:
        self._show(await self.in_butler(self._verify))

    def _verify(self) -> Any:
        from pfstui.values.tai import to_time
        from pfstui.verify.report import verify

        at = to_time(self.at) if self.at else None
        return verify(self._gateway_factory(), self.collection, self.dataset_type, against=self.against or None,
                      at=at, pictures=True)

    def _show(self, report: Any) -> None:
        # Imported here: the key map (``?``, a config.yaml keymap at start) imports this module, not numpy.
        from pfstui.ui.widgets.verification_view import VerificationView

        self.report = report
        body = self.query_one("#verify-body", Container)
        body.remove_children()
        view = VerificationView(report, renderer=self.renderer)
        body.mount(view)
        self.call_after_refresh(view.focus_main)

    def _note(self, text: Text | str) -> None:
        for note in self.query("#verify-note").results(Static):
            note.update(text)

    def action_back(self) -> None:
        running = [w for w in self.app.workers if w.node is self and w.group == "verify" and not w.is_finished]
        if not running:
            self.dismiss(None)
            return
        for worker in running:
            worker.cancel()
        self._note(Text("Verification cancelled: esc goes back.", "yellow"))

    def show_working(self, line: str | None) -> None:
        box = self.query_one("#verify-working", Static)
        box.update(line or "")
        box.display = bool(line)  # no empty row at 80x24 once the pictures are there

    def worker_failed(self, worker, text: str) -> None:
        self._note(Text(f"{text}\nesc goes back.", "red"))
