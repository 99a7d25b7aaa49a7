"""Inputs as operators expect (issue 15): prompts that show what is typed, escape out of any field, pane keys
from inside a form, the lists' keys, the Queue and Collections filters, and a pane's number pressed again."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Input, TabbedContent, Tree

from pfstui.queue.requests import Snapshot
from pfstui.queue.state import QueueState
from pfstui.ui.app import PfsTuiApp
from pfstui.ui.panes.certify import CertifyPane
from pfstui.ui.panes.collections import CollectionsPane, PatternError, matcher
from pfstui.ui.panes.queue import QueuePane
from pfstui.ui.screens.log_prompt import LogPrompt
from pfstui.ui.widgets.log_view import LogView
from tests.ui import wait_until

DATA = Path(__file__).resolve().parents[1] / "data"
SIZES = [(80, 24), (160, 48)]
sizes = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
wait_for = functools.partial(wait_until, timeout=10.0)


def screen_text(app: App) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


class OneLog(App):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        yield LogView(self.path, "test", poll_interval=0.05)

    def on_mount(self) -> None:
        self.query_one(LogView).focus()


def a_log(tmp_path: Path, n: int = 300) -> Path:
    path = tmp_path / "a.log"
    path.write_text("".join(f"INFO 2026-11-25T09:45:28.635+00:00 lsst.demo ()(x.py:1) - line {i}\n" for i in range(n)))
    return path


@sizes
async def test_log_prompts_show_what_is_typed(tmp_path, size):
    """The `/` filter and `:` go-to-line prompts drew only their borders: a 1-row Input with a tall border."""
    app = OneLog(a_log(tmp_path))
    async with app.run_test(size=size) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.rows == 300)
        await pilot.press("slash", *"line 4")
        assert isinstance(app.screen, LogPrompt)
        await pilot.pause()
        last = screen_text(app).splitlines()[-3:]
        assert any(row.strip() == "line 4" for row in last), last
        await pilot.press("enter")
        await wait_for(pilot, lambda: view.line_filter is not None and view.rows == 11)
        await pilot.press("colon", *"-25")
        await pilot.pause()
        assert any(row.strip() == "-25" for row in screen_text(app).splitlines()[-3:])


async def test_enter_on_an_empty_filter_prompt_clears_the_filter(tmp_path):
    """The prompt says "empty clears": it opens empty (it used to hold the filter, invisibly), `up` recalls it."""
    app = OneLog(a_log(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.rows == 300)
        await pilot.press("slash", *"line 1\\d$", "enter")
        await wait_for(pilot, lambda: view.rows == 10)
        await pilot.press("slash", "up")  # the filter in force, to edit
        assert app.screen.query_one(Input).value == "line 1\\d$"
        await pilot.press("escape")
        assert view.line_filter is not None and not isinstance(app.screen, LogPrompt)
        await pilot.press("slash", "enter")
        await wait_for(pilot, lambda: view.line_filter is None and view.rows == 300)


async def test_a_filter_matching_nothing_finishes_its_scan(tmp_path):
    """On a finished log a filter with no match stayed at "0 matches (scanning 0%)": the scan ended without
    any match, so nothing was announced."""
    app = OneLog(a_log(tmp_path, 5000))
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.rows == 5000)
        await pilot.press("slash", *"no such line", "enter")
        await wait_for(pilot, lambda: "filter /no such line/ 0 matches" in view.status and "scanning" not in view.status)
        assert view.rows == 0


async def test_escape_leaves_a_field_and_the_pane_keys_work_again(demo_repo: Path):
    """Escape did not leave a text field, so `1`-`4` were typed into it."""
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(CollectionsPane)
        await wait_for(pilot, lambda: len(pane._rows) > 0, timeout=30)
        await pilot.press("slash", *"PFS/raw")
        box = pane.query_one("#collection-filter", Input)
        assert app.focused is box
        await pilot.press("escape")
        assert isinstance(app.focused, Tree)
        await pilot.press("4")
        assert app.query_one(TabbedContent).active == "certify"
        assert box.value == "PFS/raw"
        certify = app.query_one(CertifyPane)
        field = certify.query_one("#f-input", Input)
        field.focus()
        await pilot.press(*"u/me")
        await pilot.press("escape")
        assert not isinstance(app.focused, Input) and app.focused is not None
        await pilot.press("2")
        assert app.query_one(TabbedContent).active == "queue"
        assert field.value == "u/me"


@sizes
async def test_certify_keys_work_from_inside_a_field(demo_repo: Path, size):
    """ctrl+e in a Certify field was the field's end-of-line: no preview, and the footer dropped it."""
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("4")
        pane = app.query_one(CertifyPane)
        pane.query_one("#f-dataset_type", Input).focus()
        await pilot.press(*"bias")
        active = app.screen.active_bindings
        assert active["ctrl+e"].binding.id == "certify.preview" and active["ctrl+y"].binding.id == "certify.apply"
        await pilot.press("ctrl+e")
        await wait_for(pilot, lambda: "Input is required" in str(pane.query_one("#certify-preview").render()))
        assert isinstance(app.focused, Input), "the cursor stays in the field"
        if size[0] >= 160:
            footer = screen_text(app).splitlines()[-1]
            assert "Preview" in footer and "Apply" in footer, footer


def recorded_queue(tmp_path: Path) -> tuple[PfsTuiApp, Snapshot]:
    """The app on a queue state recorded from a demo run (22 stages, done and failed)."""
    plan = tmp_path / "demo-plan.yaml"
    plan.write_text("# stand-in: the recorded state carries the stages\n")
    app = PfsTuiApp(repo=None, plan=str(plan), connect=False, session_dir=tmp_path / "session")
    state = QueueState.model_validate_json((DATA / "state" / "demo-run.json").read_text())
    return app, Snapshot(version=1, session=str(tmp_path / "session"), supervisor_pid=1, state=state)


async def test_home_end_g_G_move_the_cursor_in_every_list(tmp_path, demo_repo: Path):
    """Home/End/g/G did nothing in the Queue table (Textual's DataTable scrolls sideways on Home/End)."""
    app, snapshot = recorded_queue(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(QueuePane)
        pane.update_snapshot(snapshot)
        table = pane.query_one(DataTable)
        assert app.focused is table and table.row_count == 22
        for key, row in (("end", 21), ("home", 0), ("G", 21), ("k", 20), ("g", 0), ("j", 1)):
            await pilot.press(key)
            assert table.cursor_row == row, key
        assert pane.selected().id == "certify-bias"
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=(160, 48)) as pilot:
        pane = app.query_one(CollectionsPane)
        await wait_for(pilot, lambda: len(pane._rows) > 0, timeout=30)
        tree = pane.query_one(Tree)
        await pilot.press("G")
        assert tree.cursor_line == tree.last_line > 0
        await pilot.press("g")
        assert tree.cursor_line == 0
        await pilot.press("end")
        assert tree.cursor_line == tree.last_line
        await pilot.press("4")
        journal = app.query_one(CertifyPane).query_one("#journal-table", DataTable)
        await wait_for(pilot, lambda: journal.columns)
        for i in range(5):
            journal.add_row("2026-01-01 00:00:00", "certify", "yes", f"entry {i}")
        journal.focus()
        for key, row in (("G", 4), ("home", 0), ("end", 4), ("g", 0)):
            await pilot.press(key)
            assert journal.cursor_row == row, key


@sizes
async def test_queue_filter(tmp_path, size):
    """`/` filters the Queue by stage name or status; enter keeps it, escape clears it."""
    app, snapshot = recorded_queue(tmp_path)
    async with app.run_test(size=size) as pilot:
        pane = app.query_one(QueuePane)
        pane.update_snapshot(snapshot)
        table = pane.query_one(DataTable)
        await pilot.press("slash", *"bias")
        await wait_for(pilot, lambda: [str(k.value) for k in table.rows] == ["bias", "certify-bias", "clean-bias"])
        assert "/ filter bias" in screen_text(app), "the filter line says what filters the rows"
        await pilot.press("enter")
        assert app.focused is table
        await pilot.press("end")
        assert pane.selected().id == "clean-bias"
        await pilot.press("slash", "ctrl+u", *"FAILED", "enter")
        await wait_for(pilot, lambda: len(table.rows) == 7)
        assert all(s.status == "failed" for s in pane.shown_stages())
        pane.update_snapshot(snapshot)  # a new snapshot keeps the filter
        assert len(table.rows) == 7
        await pilot.press("escape")
        await wait_for(pilot, lambda: table.row_count == 22)
        assert not pane.query_one("#queue-filter-row").display


async def test_pressing_the_shown_pane_number_focuses_its_list(demo_repo: Path):
    """Pressing the number of the pane already shown left nothing focused (no key of the pane worked)."""
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(CollectionsPane)
        await wait_for(pilot, lambda: len(pane._rows) > 0, timeout=30)
        await pilot.press("1")
        assert isinstance(app.focused, Tree)
        await pilot.press("slash", "escape", "1")
        assert isinstance(app.focused, Tree)


def test_collections_filter_tells_regex_from_glob():
    names = ["u/me/step3", "u/me/step4", "u/me/step3/x", "u/me/step5", "PFS/raw/sps", "PFS/raw/all", "PFS/calib"]

    def kept(pattern: str) -> list[str]:
        keep = matcher(pattern)
        return [n for n in names if keep(n)]

    assert kept("step[34]$") == ["u/me/step3", "u/me/step4"]  # was a glob: 0 matches
    assert kept("^PFS/raw/(sps|all)") == ["PFS/raw/sps", "PFS/raw/all"]
    assert kept("re:step[34]") == ["u/me/step3", "u/me/step4", "u/me/step3/x"]
    assert kept("u/me/step[34]") == ["u/me/step3", "u/me/step4"]  # a glob: the whole name
    assert kept("PFS/raw/*") == ["PFS/raw/sps", "PFS/raw/all"]
    assert kept("calib") == ["PFS/calib"]
    with pytest.raises(PatternError, match=r"not a valid regex.*escape special characters"):
        matcher("re:(oops")


async def test_collections_regex_filter_and_a_bad_one(demo_repo: Path):
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(CollectionsPane)
        await wait_for(pilot, lambda: len(pane._rows) > 0, timeout=30)
        tree = pane.query_one(Tree)
        await pilot.press("slash", *"raw/[as].*$")
        await wait_for(pilot, lambda: sorted(str(n.label).split()[0] for n in tree.root.children)
                       == ["PFS/raw/all", "PFS/raw/sps"])
        await pilot.press("left_parenthesis")
        await wait_for(pilot, lambda: "not a valid regex 'raw/[as].*$('" in str(pane.query_one("#collections-status").render()))
        assert "escape special characters" in str(pane.query_one("#collections-status").render())
        assert len(tree.root.children) == 2, "the last good filter's tree stays"
        await pilot.press("enter")
        assert app.focused is tree
        await pilot.press("escape")  # in the tree: clears the filter
        await wait_for(pilot, lambda: len(tree.root.children) > 2)
        assert pane.query_one("#collection-filter", Input).value == ""
