"""Display errors of issue 15 in the app's frame, at 80x24 and 160x48 (and 100 columns): the footer keeps
``q Quit`` and ``? Keys``, toasts leave the newest log lines and the status visible, and the open logs come back
when pfstui is opened again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.geometry import Region
from textual.widgets import TabbedContent
from textual.widgets._toast import Toast

from pfstui.ui.panes.logs import LogsPanel
from pfstui.ui.widgets.log_view import LogView
from tests.ui import plan_app, screen_lines, wait_until

SIZES = [(80, 24), (160, 48)]
sizes = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")


@pytest.mark.parametrize("size", [*SIZES, (100, 30)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_footer_keeps_quit_and_help(tmp_path: Path, size):
    app = plan_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: "Run queue" in screen_lines(app)[-1], what="the footer")
        footer = screen_lines(app)[-1]
        assert "r Run queue" in footer and "q Quit" in footer and "? Keys" in footer, footer


@sizes
async def test_toasts_leave_the_newest_log_lines_and_status_visible(tmp_path: Path, size):
    path = tmp_path / "isr.log"
    path.write_text("".join(f"line {i} of the isr log\n" for i in range(60)))
    app = plan_app(tmp_path)
    async with app.run_test(size=size, notifications=True) as pilot:
        await app.open_log("isr", str(path))
        view = app.query_one(LogView)
        await wait_until(pilot, lambda: view.rows == 60, timeout=10)
        app.notify("bias: done", title="Stage finished")
        app.notify("dark: failed", title="Stage did not finish", severity="error")
        await wait_until(pilot, lambda: len(app.screen.query(Toast)) == 2)
        await pilot.pause(0.3)
        region = view.region
        bottom = Region(region.x, region.bottom - 3, region.width, 3)  # the last two lines, the status border
        for toast in app.screen.query(Toast):
            assert not toast.region.overlaps(bottom), (toast.region, view.region)
        lines = screen_lines(app)
        assert "line 59 of the isr log" in lines[view.region.bottom - 2] and "FOLLOW" in lines[view.region.bottom - 1]
        app.action_show_pane("queue")  # the queue's status line (top left) stays readable too
        await pilot.pause(0.2)
        assert len(app.screen.query(Toast)) == 2
        assert any(line.startswith(" Connecting to the supervisor…") for line in screen_lines(app))


@sizes
async def test_open_logs_come_back_after_a_reopen(tmp_path: Path, size):
    logs = []
    for name in ("bias", "dark", "flat"):
        path = tmp_path / f"{name}.log"
        path.write_text(f"{name} line 1\n{name} line 2\n")
        logs.append((name, path))
    saved = tmp_path / "session" / "open-logs.json"
    app = plan_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        for name, path in logs:
            await app.open_log(name, str(path))
        panel = app.query_one(LogsPanel)
        panel._activate(panel.view_for(logs[1][1]))
        await panel.action_close_log()  # closed: not remembered
        # the list after the close (not the one written after the second open, which also holds two logs)
        await wait_until(pilot, lambda: saved.exists() and [e["title"] for e in json.loads(saved.read_text())["logs"]]
                         == ["bias", "flat"], what="the open logs after the close")
    assert saved.stat().st_mode & 0o077 == 0  # private, like everything in the session folder

    app = plan_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: app.query(LogsPanel) and len(app.query_one(LogsPanel).views) == 2)
        views = app.query_one(LogsPanel).views
        assert [(v.title, v.path) for v in views] == [logs[0], logs[2]]
        await pilot.pause(0.2)
        assert app.query_one(TabbedContent).active == "queue", "reopened in the background: the Queue stays shown"
        await pilot.press("3")
        await wait_until(pilot, lambda: any("bias line 2" in line for line in screen_lines(app)))


async def test_read_only_restores_but_does_not_write(tmp_path: Path):
    path = tmp_path / "bias.log"
    path.write_text("bias line\n")
    saved = tmp_path / "session" / "open-logs.json"
    app = plan_app(tmp_path, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await app.open_log("bias", str(path))
        await pilot.pause(0.3)
        workers = [w for w in app.workers if w.group == "open-logs"]
        for worker in workers:
            await worker.wait()
    assert not saved.exists()
