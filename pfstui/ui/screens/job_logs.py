"""The job logs of a ``backend: bps`` stage: pick one to open it in the Logs pane.

A bps attempt's own log is the ``bps submit`` output; each job (a ``pipetask run-qbb`` of one quantum or
one cluster) writes its own log under ``<submit>/logs/<label>/``.  The folder is listed in a thread
worker (a big submission has thousands of jobs); failed jobs come first.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option


def list_job_logs(logs_dir: Path, failed: set[str]) -> list[tuple[str, str]]:
    """``(path, label)`` of every job's stderr log, failed ones first, then newest first."""
    found: list[tuple[bool, float, str, str]] = []
    for root, _dirs, files in os.walk(logs_dir):
        for name in files:
            if not name.endswith(".stderr"):
                continue
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            rel = os.path.relpath(path, logs_dir)
            bad = path in failed
            label = f"{'FAILED ' if bad else ''}{rel[: -len('.stderr')]}  ({st.st_size // 1024 + 1} KiB)"
            found.append((not bad, -st.st_mtime, path, label))
    found.sort()
    return [(path, label) for _ok, _t, path, label in found]


class JobLogsScreen(ModalScreen[str | None]):
    """Choose a job log; dismissed with its path (or None)."""

    DEFAULT_CSS = """
    JobLogsScreen { align: center middle; }
    JobLogsScreen > Vertical { width: 95%; height: 90%; border: thick $primary; background: $surface; padding: 0 1; }
    JobLogsScreen OptionList { height: 1fr; }
    """
    BINDINGS = [Binding("escape", "close", "Close", id="joblogs.close")]

    def __init__(self, stage_id: str, logs_dir: str, failed: set[str]) -> None:
        super().__init__()
        self.stage_id = stage_id
        self.logs_dir = Path(logs_dir)
        self.failed = failed

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text.assemble((f"Job logs of {self.stage_id}", "bold"),
                                       f"  (enter opens, escape closes)\n{self.logs_dir}"), id="joblogs-title")
            yield OptionList(id="joblogs-list")

    def on_mount(self) -> None:
        self._load()

    @work(thread=True, exclusive=True)
    def _load(self) -> None:
        entries = list_job_logs(self.logs_dir, self.failed) if self.logs_dir.is_dir() else []
        self.app.call_from_thread(self._show, entries)

    def _show(self, entries: list[tuple[str, str]]) -> None:
        options = self.query_one(OptionList)
        if not entries:
            options.add_option(Option("No job has written a log yet.", disabled=True))
            return
        options.add_options([Option(Text(label), id=path) for path, label in entries])  # file names, not markup
        options.highlighted = 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)
