"""LogView / LogsPanel with the Textual pilot: tail at once, follow + badge, filter, jumps, record view."""

from __future__ import annotations

import asyncio
import functools
import gc
import shutil
import time
from pathlib import Path

from textual.app import App, ComposeResult

from pfstui.logfile.index import LogIndex
from pfstui.pipetask_log.formats import compact_line
from pfstui.ui.panes.logs import LogsPanel
from pfstui.ui.screens.log_prompt import LogPrompt
from pfstui.ui.screens.record import RecordScreen
from pfstui.ui.widgets.log_view import LogView
from tests.ui import wait_until

DATA = Path(__file__).resolve().parents[1] / "data" / "logs"
SIZE = (120, 30)


def make_log(path: Path, n: int, *, error_every: int = 0, partial: str = "") -> list[str]:
    lines = []
    for i in range(n):
        if error_every and i % error_every == error_every - 1:
            lines.append(f"ERROR 2026-11-25T09:46:14.913+00:00 lsst.pipe.base.single_quantum_executor "
                         f"(isr:{{visit: {i}}})(single_quantum_executor.py:316) - Execution of task 'isr' on "
                         f"quantum {{instrument: 'PFS', visit: {i}}} failed. Exception RuntimeError: boom {i}")
        else:
            lines.append(f"INFO 2026-11-25T09:45:28.635+00:00 lsst.pipe.base.mp_graph_executor ()"
                         f"(mp_graph_executor.py:757) - line {i}")
    path.write_text("".join(x + "\n" for x in lines) + partial)
    return lines


class OneLog(App):
    def __init__(self, path: Path, **kw) -> None:
        super().__init__()
        self.path = path
        self.kw = kw

    def compose(self) -> ComposeResult:
        yield LogView(self.path, "test", poll_interval=0.05, **self.kw)

    def on_mount(self) -> None:
        self.query_one(LogView).focus()


def screen_rows(view: LogView) -> list[str]:
    """What the view paints, row by row (the badge included)."""
    return [view.render_line(y).text for y in range(view._page())]


#: The views here answer fast: wait 5 s by default.
wait_for = functools.partial(wait_until, timeout=5.0)


async def test_last_line_is_on_screen_at_once(tmp_path, monkeypatch):
    """The last screen of a 30 MB log is shown from a tail read, before the file is indexed (how fast is
    bench/logview.py's figure, not a test's)."""
    path = tmp_path / "big.log"
    lines = make_log(path, 300_000, partial="still writing")  # ~30 MB
    before_indexing: list[int] = []
    step = LogIndex.index_step

    def first_step(index, *args, **kwargs):
        if not before_indexing:
            before_indexing.append(index.bytes_read)  # all that was read to show the last screen
        return step(index, *args, **kwargs)

    monkeypatch.setattr(LogIndex, "index_step", first_step)
    app = OneLog(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.rows > 0 and "still writing" in screen_rows(view)[-1])
        rows = screen_rows(view)
        assert rows[-2].rstrip() == compact_line(lines[-1])  # --long-log heads are shown compact
        assert view.follow
        await wait_for(pilot, lambda: view.index.indexed, timeout=20)
        # Far less than the file was read to show it: the indexing came after.
        assert before_indexing and before_indexing[0] < path.stat().st_size // 10, before_indexing
        await wait_for(pilot, lambda: "300,000 lines" in view.status)
        assert "still writing" in screen_rows(view)[-1]  # still at the end after the mode switch


async def test_follow_shows_appended_lines_and_badge_when_paused(tmp_path):
    path = tmp_path / "a.log"
    make_log(path, 500)
    app = OneLog(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.rows == 500)
        with open(path, "a") as f:
            f.write("appended while following\n")
        await wait_for(pilot, lambda: screen_rows(view)[-1].startswith("appended while following"))
        await pilot.press("up")
        assert not view.follow and "PAUSED" in view.status
        top_before = screen_rows(view)[0]
        with open(path, "a") as f:
            f.write("".join(f"more {i}\n" for i in range(7)))
        await wait_for(pilot, lambda: view.new_lines == 7)
        rows = screen_rows(view)
        assert "7 new lines" in rows[-1]
        assert rows[0] == top_before  # the view did not move
        await pilot.press("f")
        assert view.follow and view.new_lines == 0
        await pilot.pause(0.05)
        assert screen_rows(view)[-1].startswith("more 6")


async def test_updates_are_batched_not_one_per_line(tmp_path):
    """A writer appending thousands of lines produces a few coalesced batches, never one per line."""
    path = tmp_path / "a.log"
    make_log(path, 10)
    handled = []

    class Counting(LogView):
        def on_log_view_updated(self, event):
            handled.append(time.monotonic())
            super().on_log_view_updated(event)

    class CountingApp(App):
        def compose(self):
            yield Counting(path, poll_interval=0.1)

    app = CountingApp()
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(Counting)
        await wait_for(pilot, lambda: view.rows == 10)
        handled.clear()
        t0 = time.monotonic()
        with open(path, "a") as f:
            for i in range(20):
                f.write("".join(f"burst {i}.{j}\n" for j in range(500)))
                f.flush()
                await asyncio.sleep(0.025)
        await wait_for(pilot, lambda: view.rows == 10 + 20 * 500)
        elapsed = time.monotonic() - t0
        assert len(handled) <= elapsed / 0.1 + 3, (len(handled), elapsed)
        # Back-pressure: while one batch is pending, the watcher does not queue another.
        view._pending.set()
        assert view._post() is False
        view._pending.clear()


async def test_filter_and_inverse(tmp_path):
    path = tmp_path / "a.log"
    lines = make_log(path, 2000, error_every=100)
    app = OneLog(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.rows == 2000)
        await pilot.press("slash")
        assert isinstance(app.screen, LogPrompt)
        await pilot.press(*"failed\\.", "enter")
        await wait_for(pilot, lambda: view.rows == 20)
        assert all("failed." in view.row_text(r) for r in range(view.rows))
        assert "filter /failed\\./ 20 matches" in view.status
        await pilot.press("exclamation_mark")
        await wait_for(pilot, lambda: view.rows == 1980)
        assert not any("failed." in view.row_text(r) for r in range(0, 1980, 7))
        await pilot.press("escape")
        await wait_for(pilot, lambda: view.rows == 2000)
        assert view.line_filter is None
        # A bad regex keeps the prompt open with a one-line reason.
        await pilot.press("slash", *"(oops", "enter")
        assert isinstance(app.screen, LogPrompt)
        assert "bad filter regex" in str(app.screen.query_one("#prompt-error").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, LogPrompt)
        # A leading ! inverts.
        await pilot.press("slash", *"!line", "enter")
        await wait_for(pilot, lambda: view.rows == 20)
        shown = [view.row_text(r) for r in range(view.rows)]
        assert lines[-2] not in shown and lines[-1] in shown


async def test_jump_to_next_and_previous_error_and_goto(tmp_path):
    path = tmp_path / "a.log"
    lines = make_log(path, 3000, error_every=700)  # errors at lines 699, 1399, 2099, 2799 (0-based)
    app = OneLog(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.index is not None and view.index.indexed and view.rows == 3000)
        await pilot.press("colon", *"1", "enter")
        await wait_for(pilot, lambda: view.cursor == 0)
        assert "line 1" in view.status
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: view.cursor == 699)
        assert view.row_text(view.cursor) == lines[699]
        assert compact_line(lines[699])[:50] in "".join(screen_rows(view))
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: view.cursor == 1399)
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: view.cursor == 699)
        await pilot.press("left_square_bracket")  # none before: stays, with a note
        await wait_for(pilot, lambda: view._note is not None)
        assert view.cursor == 699
        await pilot.press("colon", *"-10", "enter")
        await wait_for(pilot, lambda: view.cursor == 2990)
        await pilot.press("colon", *"2500", "enter")
        await wait_for(pilot, lambda: view.cursor == 2499)
        assert view.row_text(view.cursor) == lines[2499]


async def test_jump_within_a_filter(tmp_path):
    path = tmp_path / "a.log"
    make_log(path, 1000, error_every=250)
    app = OneLog(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.rows == 1000)
        await pilot.press("slash", *"line 1\\d\\d$|boom", "enter")
        await wait_for(pilot, lambda: view.line_filter is not None and view.rows == 104)
        await pilot.press("home", "right_square_bracket")
        await wait_for(pilot, lambda: "boom 249" in view.row_text(view.cursor))


async def test_before_the_index_is_built_lines_come_from_the_end(tmp_path, monkeypatch):
    """Index held back (as for a multi-GB log): scroll up reads further back, jumps and go-to still work."""
    from pfstui.logfile.index import LogIndex

    real_step = LogIndex.index_step
    monkeypatch.setattr(LogIndex, "index_step", lambda self, max_bytes=0: time.sleep(0.01) or False)
    path = tmp_path / "a.log"
    lines = make_log(path, 20_000, error_every=5000)  # errors at lines 4999, 9999, 14999, 19999
    app = OneLog(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.rows > 0)
        assert not view.index.indexed and "last lines" in view.status
        first_rows = view.rows
        assert first_rows < 20_000
        await pilot.press("home")
        top_line = view.row_text(view.cursor)
        await wait_for(pilot, lambda: view.rows > first_rows)  # read further back from the end
        assert view.row_text(view.cursor) == top_line  # the cursor kept its line
        await pilot.press("end", "left_square_bracket")  # the last line is an error itself: the one before
        await wait_for(pilot, lambda: not view.follow and view.row_text(view.cursor) == lines[14_999])
        await pilot.press("left_square_bracket")  # far before the known tail: read back to it
        await wait_for(pilot, lambda: view.row_text(view.cursor) == lines[9_999])
        await pilot.press("colon", *"42", "enter")  # needs line numbers: waits for the index
        await pilot.pause(0.1)
        assert view.row_text(view.cursor) != lines[41] and "will go to line 42" in view._note
        monkeypatch.setattr(LogIndex, "index_step", real_step)
        await wait_for(pilot, lambda: view.index.indexed and view.row_text(view.cursor) == lines[41], timeout=10)
        assert view.rows == 20_000 and view.cursor == 41


async def test_json_record_view(tmp_path):
    path = tmp_path / "run.log.json"
    shutil.copy(DATA / "v30_jsonlog_j1_fail.log.json", path)
    app = OneLog(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.rows == 87)
        await pilot.press("home", "right_square_bracket")
        await wait_for(pilot, lambda: "failed. Exception RuntimeError" in view.row_text(view.cursor))
        await pilot.press("enter")
        assert isinstance(app.screen, RecordScreen)
        assert app.screen.kind == "json"
        assert app.screen.fields["levelname"] == "ERROR"
        assert app.screen.fields["MDC"]["LABEL"].startswith("isr:")
        shown = "\n".join(s.text for s in app.screen._compositor.render_strips())
        assert "levelname" in shown and "single_quantum_executor" in shown and "(second line of message)" in shown
        await pilot.press("escape")
        assert not isinstance(app.screen, RecordScreen)


async def test_record_view_of_text_lines(tmp_path):
    path = tmp_path / "run.log"
    shutil.copy(DATA / "v30_long_j1_fail.log", path)
    app = OneLog(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.rows == 123)
        await pilot.press("up")  # the last line: a traceback line, not a record
        await pilot.press("end", "enter")
        await pilot.pause(0.05)
        assert not isinstance(app.screen, RecordScreen)
        await pilot.press("colon", *"1", "enter", "enter")
        assert isinstance(app.screen, RecordScreen) and app.screen.kind == "long"
        assert app.screen.fields["levelname"] == "INFO" and app.screen.fields["lineno"] > 0


async def test_compact_and_full_lines(tmp_path):
    path = tmp_path / "run.log"
    shutil.copy(DATA / "v30_long_j1_fail.log", path)
    raw = path.read_text().splitlines()
    app = OneLog(path, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.rows == 123)
        await pilot.press("home")
        assert view.compact and screen_rows(view)[0].rstrip() == compact_line(raw[0]) != raw[0]
        assert len(screen_rows(view)[0].rstrip()) < len(raw[0])
        await pilot.press("c")
        await pilot.pause()
        assert not view.compact and screen_rows(view)[0].startswith(raw[0][: SIZE[0] - 4])
        assert view.row_text(0) == raw[0]  # the row's text is the file's line either way
        await pilot.press("c", "enter")  # compact again; the record view has every field of the line
        assert view.compact and isinstance(app.screen, RecordScreen)
        assert app.screen.fields["asctime"] in raw[0] and app.screen.fields["filename"] in raw[0]


async def test_cursor_move_repaints_the_status_row(tmp_path):
    path = tmp_path / "a.log"
    make_log(path, 500)
    app = OneLog(path, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.rows == 500 and view.index.indexed)
        await pilot.press("home", "down", "down")
        await pilot.pause()
        shown = "\n".join(s.text for s in app.screen._compositor.render_strips())
        assert "PAUSED · line 3" in shown and view.border_subtitle == view.status


async def test_repainted_rows_are_not_left_as_cyclic_garbage(tmp_path):
    """Each painted row used to become a reference cycle (only full GC passes freed it): slow keys."""
    path = tmp_path / "a.log"
    make_log(path, 2000)
    app = OneLog(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.rows == 2000)
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(5):
                view.refresh()
                await pilot.pause()
            gc.collect()
            rows = [o for o in gc.garbage if type(o).__name__ == "Strip" and "mp_graph_executor: line" in o.text]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        assert rows == []


async def test_level_colours(tmp_path):
    path = tmp_path / "a.log"
    shutil.copy(DATA / "v30_long_j1_fail.log", path)
    app = OneLog(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.rows == 123)
        error = view.get_component_rich_style("logview--error")
        warning = view.get_component_rich_style("logview--warning")
        rows = {view.row_text(r): r for r in range(view.rows)}
        err_row = next(r for t, r in rows.items() if t.startswith("ERROR ") and "Caught an exception" in t)
        warn_row = next(r for t, r in rows.items() if t.startswith("WARNING "))
        info_row = 0

        def painted_colour(row):
            view.goto_line(row + 1)
            strip = view.render_line(row - int(view.scroll_y))
            return next(iter(strip)).style.color

        await pilot.pause(0.05)
        assert painted_colour(err_row) == error.color
        assert painted_colour(err_row + 2) == error.color  # a traceback line takes its record's level
        assert painted_colour(warn_row) == warning.color
        assert painted_colour(info_row) not in (error.color, warning.color)


async def test_missing_file_shows_a_message_then_the_log(tmp_path):
    path = tmp_path / "later.log"
    app = OneLog(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.problem is not None)
        assert "does not exist" in screen_rows(view)[0]
        make_log(path, 5)
        await wait_for(pilot, lambda: view.rows == 5, timeout=5)
        assert view.problem is None


async def test_unreadable_path_is_an_inline_message(tmp_path):
    app = OneLog(tmp_path)  # a directory, not a log
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: "not available" in view.status)
        assert "is a directory" in screen_rows(view)[0]


async def test_truncated_log_starts_over(tmp_path):
    path = tmp_path / "a.log"
    make_log(path, 300)
    app = OneLog(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(LogView)
        await wait_for(pilot, lambda: view.rows == 300)
        path.write_text("fresh start\n")
        await wait_for(pilot, lambda: view.rows == 1)
        assert screen_rows(view)[0].startswith("fresh start")


async def test_logs_panel_tabs_and_split(tmp_path):
    paths = []
    for i in range(5):
        p = tmp_path / f"stage{i}.log"
        make_log(p, 50 + i)
        paths.append(p)

    class PanelApp(App):
        def compose(self):
            yield LogsPanel(poll_interval=0.05)

    app = PanelApp()
    async with app.run_test(size=(160, 40)) as pilot:
        panel = app.query_one(LogsPanel)
        for i, p in enumerate(paths):
            await panel.add_log(p, f"stage {i}", activate=(i == 0))
        assert await panel.add_log(paths[0]) is panel.views[0]  # already open: same view
        await pilot.pause(0.2)
        shown = [v for v in panel.views if v.display]
        assert [v.title for v in shown] == ["stage 0"]
        await wait_for(pilot, lambda: panel.views[0].rows == 50)
        await pilot.press("v")
        assert panel.split == 2
        await pilot.pause(0.1)
        assert sum(v.display for v in panel.views) == 2
        await pilot.press("v")
        assert panel.split == 4
        await pilot.pause(0.2)
        shown = [v for v in panel.views if v.display]
        assert len(shown) == 4 and all(v.region.width > 0 for v in shown)
        await wait_for(pilot, lambda: all(v.rows == 50 + i for i, v in enumerate(shown)))
        await pilot.press("greater_than_sign")
        assert panel.active_view.title == "stage 1"
        await pilot.pause(0.1)
        assert [v.title for v in panel.views if v.display] == ["stage 1", "stage 2", "stage 3", "stage 4"]
        assert await panel.remove_log(paths[2])
        assert len(panel.views) == 4 and panel.view_for(paths[2]) is None
        await pilot.press("v")
        assert panel.split == 1
        await pilot.pause(0.1)
        assert sum(v.display for v in panel.views) == 1


def test_every_binding_has_an_id():
    for cls in (LogView, LogsPanel, LogPrompt, RecordScreen):
        for b in cls.BINDINGS:
            assert b.id and b.id.startswith("logs."), (cls.__name__, b)
