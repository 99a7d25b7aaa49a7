"""The pfstui Textual app: four panes (Collections, Queue, Logs, Certify) over the core."""

from __future__ import annotations

import os
from importlib import resources

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from .collections import CollectionsPane

CSS = resources.files("pfstui.themes").joinpath("pfstui.tcss").read_text()


class PfsTuiApp(App):
    """Main application. The Butler is only touched from worker threads (its import takes over a second)."""

    CSS = CSS
    TITLE = "pfstui"
    BINDINGS = [
        Binding("1", "show_pane('collections')", "Collections", id="pane.collections"),
        Binding("2", "show_pane('queue')", "Queue", id="pane.queue"),
        Binding("3", "show_pane('logs')", "Logs", id="pane.logs"),
        Binding("4", "show_pane('certify')", "Certify", id="pane.certify"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(self, *, repo: str | None, plan: str | None = None, read_only: bool = False, demo: bool = False):
        super().__init__()
        self.repo = repo
        self.plan = plan
        self.read_only = read_only
        self.demo = demo
        if os.environ.get("SSH_CONNECTION"):
            # Over SSH: no animations (the frame rate is capped with TEXTUAL_FPS by the launcher).
            self.animation_level = "none"

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="panes", initial="collections"):
            with TabPane("1 Collections", id="collections"):
                if self.repo:
                    yield CollectionsPane(self._gateway)
                else:
                    yield Static("No repository: start pfstui with --repo REPO (or try `pfstui demo`).",
                                 classes="pane-note")
            with TabPane("2 Queue", id="queue"):
                yield Static("The queue of calibration stages lands here (issue: Textual app).", classes="pane-note")
            with TabPane("3 Logs", id="logs"):
                yield Static("Live logs of running stages land here.", classes="pane-note")
            with TabPane("4 Certify", id="certify"):
                yield Static("Certify, decertify and clean forms land here.", classes="pane-note")
        yield Footer()

    def on_mount(self) -> None:
        parts = [f"repo {self.repo}" if self.repo else "no repository"]
        if self.plan:
            parts.append(f"plan {self.plan}")
        if self.read_only:
            parts.append("READ-ONLY")
        self.sub_title = " · ".join(parts)

    def _gateway(self):
        from ..core.gateway import ButlerGateway

        return ButlerGateway(self.repo, read_only=self.read_only)

    def action_show_pane(self, pane: str) -> None:
        self.query_one(TabbedContent).active = pane
