"""PID reuse (issue 7, point 4): a saved state names a pid that now belongs to another process.

The machine rebooted, or the stage and its waiter were killed without a trace, and the kernel gave their pids
to unrelated processes (here: two ``sleep`` processes with other start times).  The supervisor must never
report the stage running and never signal those processes; the stage is ``lost`` with its last known output
(log and quanta counts), its dependants are held, and the app offers a restart, which runs a new attempt.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import psutil
import pytest

from pfstui.queue.requests import KillStage, LoadPlan, Subscribe
from pfstui.queue.state import Attempt
from pfstui.queue.store import SessionStore
from tests.faults import (
    Session,
    apply_env,
    certify_stage,
    fault_env,
    pipetask_stage,
    write_plan,
)
from tests.faults.ptyapp import file_lines
from tests.ui import wait_until

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data" / "logs" / "bias-v30-longlog.log"




async def test_reused_pid_is_lost_never_running_and_offered_for_restart(demo_repo: Path, tmp_path: Path,
                                                                        monkeypatch):
    from pfstui.ui.app import PfsTuiApp
    from pfstui.ui.panes.logs import LogsPanel
    from pfstui.ui.panes.queue import QueuePane, RestartEditor
    from pfstui.ui.screens.confirm import ConfirmScreen

    env = fault_env(tmp_path)
    apply_env(env, monkeypatch.setenv)
    stages = (pipetask_stage("bias", "bias.yaml", "PFS/raw/sps, PFS/calib", "bias",
                             "instrument='PFS' AND visit.target_name = 'BIAS'", [])
              + certify_stage("certify-bias", "bias", "bias", "bias"))
    session = Session(demo_repo, write_plan(tmp_path / "plan.yaml", demo_repo, stages))
    with session.client() as c:
        c.request(LoadPlan(path=str(session.plan)))
    session.shutdown()

    # The state of a session whose bias was running, 5 of 16 quanta done, when its processes vanished and
    # their pids went to two unrelated processes.
    impostors = [subprocess.Popen(["sleep", "120"]) for _ in range(2)]
    try:
        adir = session.dir / "stages" / "bias" / "attempt-1"
        adir.mkdir(parents=True)
        log = adir / "stage.log"
        log.write_text("".join(DATA.read_text().splitlines(keepends=True)[:53]))
        born = [psutil.Process(p.pid).create_time() for p in impostors]
        store = SessionStore(session.dir)
        state = store.load()
        bias = state.stage("bias")
        bias.status = "running"
        bias.attempts = [Attempt(
            number=1, argv=["pipetask", "run", "(the lost attempt)"], cwd=str(adir),
            pid=impostors[0].pid, start_time=born[0] - 3600.0, pgid=impostors[0].pid,
            waiter_pid=impostors[1].pid, waiter_start_time=born[1] - 3600.0,
            boot_time=psutil.boot_time(), log_path=str(log), status_path=str(adir / "status"),
            started_path=str(adir / "status.started"), status="running", started_at="2026-11-25T09:45:28+00:00",
        )]
        state.queue_paused = False
        store.save(state)

        # A client that subscribes first hears "lost" in its very first snapshot: never "running".
        with session.client() as c:
            snap = c.request(Subscribe())
            first = Session.stage(snap.state.model_dump(mode="json"), "bias")
            assert first["status"] == "lost"
            detail = first["attempts"][0]["detail"]
            assert f"pid {impostors[0].pid} now belongs to another process (sleep)" in detail
            assert first["attempts"][0]["log_path"] == str(log), "its last known output is kept"
            tasks = first["attempts"][0]["quanta"]["progress"]["tasks"]
            assert sum(t["done"] for t in tasks.values()) == 5
            assert Session.stage(snap.state.model_dump(mode="json"), "certify-bias")["status"] == "dependency-failed"
            with pytest.raises(Exception, match="only a running or paused stage"):
                c.request(KillStage(stage="bias"))
        # The impostors were never signalled (not stopped, not killed).
        for p in impostors:
            assert p.poll() is None and psutil.Process(p.pid).status() != psutil.STATUS_STOPPED

        app = PfsTuiApp(repo=str(demo_repo), plan=str(session.plan))
        async with app.run_test(size=(120, 40)) as pilot:
            pane = app.query_one(QueuePane)
            table = pane.query_one("DataTable")
            await wait_until(pilot, lambda: len(pane.stages()) == 2, timeout=60, what="the queue")
            assert str(table.get_cell("bias", "status")) == "lost"
            assert "5/16" in str(table.get_cell("bias", "quanta"))
            # its last output is one key away
            table.move_cursor(row=0)
            await pilot.press("l")
            def log_view():
                # the Logs pane mounts the view asynchronously: look it up afresh each time
                panels = app.query(LogsPanel)
                return panels.first().view_for(log) if panels else None

            try:
                await wait_until(pilot, lambda: log_view() is not None and log_view().rows == file_lines(log) == 53,
                                 timeout=20, what="the lost stage's log")
            except AssertionError:
                v = log_view()
                raise AssertionError(f"the lost stage's log: focused={app.focused} panels={len(app.query(LogsPanel))} "
                                     f"view={v!r} rows={getattr(v, 'rows', None)} file={file_lines(log)} "
                                     f"problem={getattr(v, 'problem', None)}") from None
            await pilot.press("2")
            table.move_cursor(row=0)
            # Restart is offered: options editor, then a confirmation, then a new attempt runs.
            await pilot.press("R")
            await wait_until(pilot, lambda: isinstance(app.screen, RestartEditor), timeout=10, what="the editor")
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=10,
                             what="the confirmation")
            await pilot.press("y")
            await wait_until(pilot, lambda: str(table.get_cell("certify-bias", "status")) == "done", timeout=120,
                             what="the restarted bias and its certification")
        state = session.state()
        bias = Session.stage(state, "bias")
        assert [a["status"] for a in bias["attempts"]] == ["lost", "succeeded"]
        assert bias["attempts"][0]["log_path"] != bias["attempts"][1]["log_path"] and log.exists()
        for p in impostors:
            assert p.poll() is None, "an unrelated process holding a recorded pid was never touched"
        # 7. the journal: the lost attempt's end, and the new attempt's start and end
        entries, problems = session.journal()
        assert problems == []
        mine = [(e["stage"], e["attempt"], e["event"], e.get("status")) for e in entries
                if e.get("kind") == "command" and e.get("session") == str(session.dir)]
        assert ("bias", 1, "end", "lost") in mine
        assert ("bias", 2, "start", None) in mine and ("bias", 2, "end", "done") in mine
        assert ("certify-bias", 1, "end", "done") in mine
        assert not any(s == "bias" and a == 1 and ev == "start" for s, a, ev, _ in mine), "never relaunched as 1"
    finally:
        session.shutdown()
        for p in impostors:
            p.kill()
            p.wait()
