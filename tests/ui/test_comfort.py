"""Operator comfort: keys rebound by id from the config file, `?` help, palette commands, themes, and a
notification (with the bell) when a stage ends."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import TabbedContent

from pfstui.queue.requests import Snapshot
from pfstui.queue.state import QueueState, Stage
from pfstui.ui.app import PfsTuiApp


async def test_keymap_theme_and_bad_ids(tmp_path: Path, monkeypatch, demo_repo: Path):
    monkeypatch.setenv("PFSTUI_CONFIG_DIR", str(tmp_path))
    (tmp_path / "config.yaml").write_text('theme: light\nkeymap:\n  pane.logs: "9"\n  no.such: x\n')
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        assert app.theme == "textual-light"
        assert any("no.such" in n.message for n in app._notifications)
        await pilot.press("9")
        assert app.query_one(TabbedContent).active == "logs"
        await pilot.press("3")  # the old key no longer does it
        await pilot.press("2")
        assert app.query_one(TabbedContent).active == "queue"


async def test_bad_config_uses_defaults_and_says_why(tmp_path: Path, monkeypatch, demo_repo: Path):
    monkeypatch.setenv("PFSTUI_CONFIG_DIR", str(tmp_path))
    (tmp_path / "config.yaml").write_text("theme: purple\n")
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        assert app.theme == "textual-dark"
        assert any("theme" in n.message and "config.yaml" in n.message for n in app._notifications)


async def test_help_and_palette(tmp_path: Path, monkeypatch, demo_repo: Path):
    from pfstui.ui.palette import palette_entries
    from pfstui.ui.screens.keys import KeysScreen

    monkeypatch.setenv("PFSTUI_CONFIG_DIR", str(tmp_path))
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4")
        await pilot.pause(0.3)
        titles = [text for text, *_ in palette_entries(app)]
        assert "pfstui: Show the Queue pane" in titles and any(t.startswith("Certify: Preview") for t in titles)
        assert "Keys" not in [c.title for c in app.get_system_commands(app.screen)], "? replaces Textual's"
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        assert isinstance(app.screen, KeysScreen)


async def test_stage_end_notifies_and_rings(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PFSTUI_CONFIG_DIR", str(tmp_path))
    plan = tmp_path / "plan.yaml"
    plan.write_text("# unused\n")
    app = PfsTuiApp(repo=None, plan=str(plan), connect=False, session_dir=tmp_path / "s")
    rings = []
    app.bell = lambda: rings.append(1)
    def snapshot(status: str) -> Snapshot:
        return Snapshot(version=1, session=str(tmp_path / "s"), supervisor_pid=1,
                        state=QueueState(stages=[Stage(id="dark", status=status)]))

    async with app.run_test(size=(80, 24)) as pilot:
        app._announce(snapshot("running"))
        app._announce(snapshot("failed"))
        await pilot.pause()
        assert any("dark: failed" in n.message for n in app._notifications)
        assert rings == [1]
        app._announce(snapshot("done"))
        assert rings == [1], "by default the bell rings for failures only"


async def test_keymap_problems_are_reported_at_start_and_not_applied(tmp_path: Path, monkeypatch, demo_repo: Path):
    """A key bound to two ids of one pane, an unknown id and an invalid key name: one notification lists them
    all, those entries are not applied (the Queue pane keeps r for run), and the good entries are."""
    monkeypatch.setenv("PFSTUI_CONFIG_DIR", str(tmp_path))
    (tmp_path / "config.yaml").write_text(
        "keymap:\n  queue.kill: r\n  no.such: x\n  queue.skip: ctlr+s\n  logs.goto: shift+notakey\n"
        '  pane.logs: "9"\n  queue.pause: P\n  queue.resume: P\n')
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        notes = [n.message for n in app._notifications if "keymap" in n.message]
        assert len(notes) == 1, notes
        note = notes[0]
        assert "unknown binding id(s) no.such" in note
        assert "queue.skip: ctlr+s" in note and "logs.goto: shift+notakey" in note
        assert "r (queue.kill, queue.run)" in note and "P (queue.pause, queue.resume)" in note
        assert "pane.logs" not in note
        assert not {"queue.kill", "queue.skip", "queue.pause", "queue.resume", "no.such"} & set(app._keymap)
        await pilot.press("9")  # the good entry is applied
        assert app.query_one(TabbedContent).active == "logs"


def test_key_names():
    from pfstui.ui.keymap import valid_key

    for good in ("r", "R", "ctrl+k", "f5", "question_mark", "shift+tab", "pagedown", "space", "slash", "9", "ctrl+at"):
        assert valid_key(good), good
    for bad in ("ctlr+k", "notakey", "ctrl+", "", "+", "ctrl+\x1b", "f99x"):
        assert not valid_key(bad), bad
