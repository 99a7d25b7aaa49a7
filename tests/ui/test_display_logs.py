"""Display errors of issue 15 in a log view, at 80x24 and 160x48: compact lines keep the quantum's data ID in view,
"loading…" (never "(empty log)") until the first read is shown, and the new-lines hint names the rebound key."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from textual.app import App, ComposeResult

from pfstui.ui.widgets.log_view import LogView
from tests.ui import plan_app, screen_lines, wait_until

SIZES = [(80, 24), (160, 48)]
sizes = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")


LONG_LINE = ("INFO 2026-12-06T22:04:58.159+00:00 lsst.pipe.base.single_quantum_executor (isr:{instrument: 'PFS', "
             "arm: 'b', spectrograph: 1, visit: {visit}, dither: 0, pfs_design_id: 305441741})"
             "(single_quantum_executor.py:345) - Execution of task 'isr' on quantum {instrument: 'PFS', arm: 'b', "
             "spectrograph: 1, visit: {visit}, dither: 0, pfs_design_id: 305441741} took 0.030 seconds")


def write_long_log(path: Path, n: int = 40) -> None:
    path.write_text("".join(LONG_LINE.replace("{visit}", str(11 + i)) + "\n" for i in range(n)))


class OneLog(App):
    def __init__(self, path: Path, view_class: type[LogView] = LogView, **kw) -> None:
        super().__init__()
        self.path, self.view_class, self.kw = path, view_class, kw

    def compose(self) -> ComposeResult:
        yield self.view_class(self.path, "[b]isr[/b] log", poll_interval=0.05, **self.kw)


@sizes
async def test_compact_lines_keep_the_data_id_in_view(tmp_path: Path, size):
    path = tmp_path / "isr.log"
    write_long_log(path)
    app = OneLog(path)
    async with app.run_test(size=size) as pilot:
        view = app.query_one(LogView)
        await wait_until(pilot, lambda: view.rows == 40, timeout=10)
        await pilot.pause()
        lines = screen_lines(app)
        assert any("visit=50" in line for line in lines), "\n".join(lines)  # the last line, which quantum
        assert "[b]isr[/b] log" in lines[0]  # the title as written, not read as markup


class SlowFirstBatch(LogView):
    """A log view whose UI is busy when the first read is announced: that batch waits (held here)."""

    held: ClassVar[list] = []

    def on_log_view_updated(self, event: LogView.Updated) -> None:
        if not self.held:
            self.held.append(event)
            event.prevent_default()  # LogView's own handler does not see it either
            return
        if event not in self.held:
            event.prevent_default()
            super().on_log_view_updated(event)


@sizes
async def test_loading_until_the_first_read_is_shown(tmp_path: Path, size):
    path = tmp_path / "short.log"
    write_long_log(path, 133)
    empty = tmp_path / "empty.log"
    empty.write_text("")
    SlowFirstBatch.held = []
    app = OneLog(path, view_class=SlowFirstBatch)
    async with app.run_test(size=size) as pilot:
        view = app.query_one(LogView)
        await wait_until(pilot, lambda: view.index is not None and SlowFirstBatch.held, timeout=10)
        view.refresh()
        await pilot.pause()
        assert view.render_line(0).text.startswith("loading…")
        assert "(empty log)" not in "\n".join(screen_lines(app))
        LogView.on_log_view_updated(view, SlowFirstBatch.held[0])  # the UI gets to it
        await wait_until(pilot, lambda: view.rows == 133, timeout=10)
    app = OneLog(empty)
    async with app.run_test(size=size) as pilot:
        view = app.query_one(LogView)
        await wait_until(pilot, lambda: view.render_line(0).text.startswith("(empty log)"), timeout=10)


@sizes
async def test_new_lines_hint_names_the_rebound_key(tmp_path: Path, monkeypatch, size):
    monkeypatch.setenv("PFSTUI_CONFIG_DIR", str(tmp_path))
    (tmp_path / "config.yaml").write_text('keymap:\n  logs.follow: "o"\n')
    path = tmp_path / "isr.log"
    write_long_log(path, 60)
    app = plan_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await app.open_log("isr", str(path))
        view = app.query_one(LogView)
        await wait_until(pilot, lambda: view.rows == 60, timeout=10)
        view.focus()
        await pilot.press("up", "up")
        assert not view.follow
        with path.open("a") as f:
            f.write(LONG_LINE.replace("{visit}", "99") + "\n")
        await wait_until(pilot, lambda: view.new_lines == 1, timeout=10)
        await pilot.pause()
        badge = next(line for line in screen_lines(app) if "new line" in line)
        assert "↓ 1 new line · o follow" in badge and "· f follow" not in badge, badge
        await pilot.press("o")
        assert view.follow


