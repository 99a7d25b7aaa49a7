"""The Queue pane's display findings of issue 15, at 80x24 and 160x48: why a stage waits, the parallel limit
(shown and changed with +/-), the header once everything is done, a failed stage's bar, a paused stage's
time, and what reaches the terminal when only a running stage's clock changes.

The snapshots are built as the supervisor builds them (the state, and the reasons from
:func:`pfstui.queue.rules.waits`); the app runs without a supervisor (``connect=False``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from textual._compositor import CompositorUpdate
from textual.widgets import DataTable

from pfstui.queue import rules
from pfstui.queue.requests import SetParallel, Snapshot
from pfstui.queue.state import Attempt, Progress, Quanta, QueueState, Stage, TaskCounts
from pfstui.ui.app import PfsTuiApp
from pfstui.ui.panes.queue import QueuePane
from pfstui.ui.screens.confirm import TextScreen
from tests.ui import wait_until

SIZES = [(80, 24), (160, 48)]
sizes = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")


def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()


def attempt(status: str = "running", *, started: float = 65, ended: float | None = None, paused: float | None = None,
            counts: tuple[int, int, int, int] | None = None) -> Attempt:
    """An attempt started ``started`` seconds ago (ended, paused that many seconds ago), with quanta counts
    ``(done, failed, blocked, total)`` of one task."""
    progress = None
    if counts:
        done, failed, blocked, total = counts
        progress = Progress(tasks={"isr": TaskCounts(total=total, done=done, failed=failed, blocked=blocked)})
    return Attempt(number=1, argv=["pipetask", "run"], status=status, started_at=ago(started),
                   ended_at=ago(ended) if ended is not None else None,
                   paused_at=ago(paused) if paused is not None else None, quanta=Quanta(progress=progress))


def snapshot(tmp_path: Path, stages: list[Stage], *, paused: bool = False, parallel: int = 1) -> Snapshot:
    state = QueueState(stages=stages, queue_paused=paused, parallel=parallel)
    return Snapshot(version=1, session=str(tmp_path / "s"), supervisor_pid=1, state=state,
                    waiting=rules.waits(state, parallel))


def queue_app(tmp_path: Path, *, read_only: bool = False) -> PfsTuiApp:
    plan = tmp_path / "plan.yaml"
    plan.write_text("# stand-in: the snapshots carry the stages\n")
    return PfsTuiApp(repo=None, plan=str(plan), connect=False, session_dir=tmp_path / "s", read_only=read_only)


def screen_text(app: PfsTuiApp) -> str:
    return "\n".join(s.text for s in app.screen._compositor.render_strips())


def row_of(app: PfsTuiApp, stage: str) -> str:
    return next((line for line in screen_text(app).splitlines() if line.strip().startswith(stage + " ")), "")


def header_of(app: PfsTuiApp) -> str:
    return screen_text(app).splitlines()[3]


async def until(pilot, check, what: str) -> None:
    """Until ``check()`` holds on screen (the app repaints when it gets to it)."""
    await wait_until(pilot, check, timeout=10, what=what)


def running_plan() -> list[Stage]:
    """bias runs; certify-bias waits for it; dark could run but the limit (1) is taken; flat waits for two."""
    return [Stage(id="bias", status="running", attempts=[attempt(counts=(3, 0, 0, 16))]),
            Stage(id="certify-bias", depends_on=["bias"]),
            Stage(id="dark"),
            Stage(id="flat", depends_on=["certify-bias", "dark"])]


async def show(pilot, snap: Snapshot) -> QueuePane:
    pane = pilot.app.query_one(QueuePane)
    pane.update_snapshot(snap)
    await pilot.pause()
    return pane


@sizes
async def test_a_waiting_stage_says_why_in_its_row_and_its_details(tmp_path: Path, size) -> None:
    app = queue_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        pane = await show(pilot, snapshot(tmp_path, running_plan()))
        await until(pilot, lambda: "after bias" in row_of(app, "certify-bias"), "certify-bias's reason")
        assert "parallel limit 1" in row_of(app, "dark")
        assert "after 2 stages" in row_of(app, "flat")
        assert "parallel 1" in header_of(app)
        table = pane.query_one(DataTable)
        table.move_cursor(row=1)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TextScreen) and "not running because" in screen_text(app),
                    "the details")
        assert "waits for bias (running)" in screen_text(app)
        await pilot.press("escape")
        table.move_cursor(row=2)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, TextScreen) and "not running because" in screen_text(app),
                    "the details")
        assert "the parallel limit (1 at once) is reached: bias running" in screen_text(app)
        await pilot.press("escape")
        await show(pilot, snapshot(tmp_path, running_plan(), paused=True))
        await until(pilot, lambda: "queue paused" in row_of(app, "dark"), "dark's new reason")
        assert "queue PAUSED" in header_of(app)


@sizes
async def test_the_header_says_finished_when_every_stage_is_done(tmp_path: Path, size) -> None:
    app = queue_app(tmp_path)
    done = [Stage(id=f"s{n}", status="done", attempts=[attempt("succeeded", ended=1)]) for n in range(22)]
    async with app.run_test(size=size) as pilot:
        await show(pilot, snapshot(tmp_path, done))
        await until(pilot, lambda: "22 done" in header_of(app), "the header")
        assert "queue finished" in header_of(app) and "running" not in header_of(app)
        done[3].status = "failed"
        await show(pilot, snapshot(tmp_path, done))
        await until(pilot, lambda: "1 failed" in header_of(app), "the new header")
        assert "queue idle: nothing more can run" in header_of(app)
        assert "running" not in header_of(app).replace("can run", "")


@sizes
async def test_a_failed_stage_draws_only_its_done_quanta(tmp_path: Path, size) -> None:
    app = queue_app(tmp_path)
    failed = Stage(id="dark", status="failed", attempts=[attempt("failed", ended=1, counts=(37, 1, 2, 40))])
    full = Stage(id="bias", status="done", attempts=[attempt("succeeded", ended=1, counts=(40, 0, 0, 40))])
    async with app.run_test(size=size) as pilot:
        await show(pilot, snapshot(tmp_path, [full, failed]))
        await until(pilot, lambda: "37/40" in row_of(app, "dark"), "dark's quanta")
        assert "███████░ 37/40 ✗1 ⊘2" in row_of(app, "dark")
        assert "████████ 40/40" in row_of(app, "bias")


@sizes
async def test_a_paused_stage_time_stands_still(tmp_path: Path, size) -> None:
    """Started 100 s ago, paused 40 s ago after an earlier 10 s pause: it ran 50 s, whatever the clock says."""
    app = queue_app(tmp_path)
    paused = attempt(started=100, paused=40)
    paused.paused_seconds = 10
    async with app.run_test(size=size) as pilot:
        pane = await show(pilot, snapshot(tmp_path, [Stage(id="bias", status="paused", attempts=[paused])]))
        await until(pilot, lambda: "paused" in row_of(app, "bias"), "bias's row")
        assert "0:50" in row_of(app, "bias")
        pane._refresh_times()  # the pane's once-a-second tick
        await pilot.pause()
        assert "0:50" in row_of(app, "bias")
        assert paused.run_seconds(datetime.now(UTC) + timedelta(hours=1)) == 50


async def test_plus_and_minus_change_the_parallel_limit(tmp_path: Path) -> None:
    app = queue_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        sent = []
        app.send_request = sent.append
        await show(pilot, snapshot(tmp_path, running_plan(), parallel=1))
        await pilot.press("plus")
        await wait_until(pilot, lambda: sent, timeout=5, what="a request")
        assert sent[-1].request == SetParallel(parallel=2)
        await pilot.press("minus")  # 1 is the least: nothing is asked
        await pilot.pause()
        assert len(sent) == 1 and any("stays 1" in n.message for n in app._notifications)
        await show(pilot, snapshot(tmp_path, running_plan(), parallel=3))
        await pilot.press("minus")
        await wait_until(pilot, lambda: len(sent) == 2, timeout=5, what="a second request")
        assert sent[-1].request == SetParallel(parallel=2)


async def test_plus_and_minus_are_refused_when_read_only(tmp_path: Path) -> None:
    app = queue_app(tmp_path, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        sent = []
        app.send_request = sent.append
        await show(pilot, snapshot(tmp_path, running_plan()))
        for key in ("plus", "minus"):
            await pilot.press(key)
            await pilot.pause()
        assert not sent
        assert sum("Read-only mode: change the parallel limit refused" in n.message for n in app._notifications) == 2


async def test_only_what_changed_reaches_the_terminal(tmp_path: Path) -> None:
    """At 100x30 with one running stage: a tick of its clock sends that stage's row (Textual writes a line from
    the table's left edge to the last changed cell), and a snapshot that changes nothing sends nothing.

    Before: every tick repainted the whole table (~7 KB/s at 100x30 for the demo plan; bench/wire.py)."""
    app = queue_app(tmp_path)
    written: list[str] = []
    async with app.run_test(size=(100, 30)) as pilot:
        stages = running_plan() + [Stage(id=f"later-{n}", depends_on=["flat"]) for n in range(15)]
        pane = await show(pilot, snapshot(tmp_path, stages))
        display = app._display

        def capture(screen, renderable) -> None:  # the terminal bytes of each update (headless writes none)
            if isinstance(renderable, CompositorUpdate):
                written.append(renderable.render_segments(app.console))
            display(screen, renderable)

        app._display = capture
        pane.stages()[0].attempts[0].started_at = ago(125)  # as the clock would have it two minutes on
        pane._refresh_times()
        await wait_until(pilot, lambda: any("2:0" in w for w in written), timeout=10, what="the new time")
        for update in written:  # (the pane's own once-a-second tick may have sent one more of the same)
            assert "bias" in update and "certify-bias" not in update and "later-" not in update, update
            assert update.count("\x1b[") < 20 and len(update.encode()) < 400, update

        stages[0].status = "done"  # nothing runs: no clock ticks while the next snapshot is compared
        stages[0].attempts[0].ended_at = ago(1)
        pane.update_snapshot(snapshot(tmp_path, stages))
        await wait_until(pilot, lambda: any("done" in w for w in written), timeout=10, what="the done row")
        await pilot.pause()
        written.clear()
        pane.update_snapshot(snapshot(tmp_path, [st.model_copy(deep=True) for st in stages]))
        pane._refresh_times()
        for _ in range(5):
            await pilot.pause()
        assert written == [], "a snapshot that changes nothing repaints nothing"


@pytest.mark.integration
async def test_plus_raises_the_limit_in_the_supervisor(demo_repo: Path, tmp_path: Path, state_env) -> None:
    from tests.ui.test_app import write_plan

    app = PfsTuiApp(repo=str(demo_repo), plan=str(write_plan(tmp_path, demo_repo)))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(QueuePane)
        await wait_until(pilot, lambda: len(pane.stages()) == 2, what="the plan's stages")
        await until(pilot, lambda: "queue paused" in row_of(app, "bias"), "bias's reason")
        assert "parallel 1" in header_of(app)
        await pilot.press("plus")
        await wait_until(pilot, lambda: pane.snapshot.state.parallel == 2, timeout=20, what="the new limit")
        await until(pilot, lambda: "parallel 2" in header_of(app), "the new limit in the header")
