"""SIGKILL of the supervisor while stages run (issue 7, point 3).

The next client (the CLI's, or the app's own link) starts a new supervisor, which re-adopts every running
stage by pid + start time and collects the exit status of the stages that ended while it was gone: a
success with its full quanta counts, a failure with its true non-zero exit code.  Nothing runs twice, the
queue goes on, and an app that was watching keeps its log view in step with the file.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from pfstui.queue.requests import LoadPlan, Run, Status
from tests.faults import (
    Session,
    apply_env,
    certify_stage,
    exit_status_mismatches,
    fault_env,
    pipetask_stage,
    stage_identity,
    write_plan,
)
from tests.faults.ptyapp import file_lines
from tests.ui import wait_until

pytestmark = pytest.mark.integration

BIAS_QUERY = "instrument='PFS' AND visit.target_name = 'BIAS'"


def bias(delay: float) -> str:
    return pipetask_stage("bias", "bias.yaml", "PFS/raw/sps, PFS/calib", "bias", BIAS_QUERY,
                          [f"isr:demoDelay={delay}"])


def wait_file(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_supervisor_killed_readopts_running_stages_and_collects_exit_status(demo_repo: Path, tmp_path: Path,
                                                                              monkeypatch):
    env = fault_env(tmp_path)
    apply_env(env, monkeypatch.setenv)
    # bias -> certify-bias, then a certify of a collection that does not exist: it fails with exit status 1.
    stages = (bias(0.4) + certify_stage("certify-bias", "bias", "bias", "bias")
              + certify_stage("certify-missing", "certify-bias", "no-such-run", "bias"))
    session = Session(demo_repo, write_plan(tmp_path / "plan.yaml", demo_repo, stages))
    try:
        with session.client() as c:
            c.request(LoadPlan(path=str(session.plan)))
            c.request(Run())
        state = session.wait(lambda s: session.stage(s, "bias")["status"] == "running", what="bias to run")
        attempt = session.stage(state, "bias")["attempts"][0]

        # Killed while bias runs; the next client restarts it and it re-adopts bias by pid + start time.
        first = session.kill_supervisor()
        assert stage_identity(attempt) == "alive", "the stage outlives its supervisor"
        with session.client() as c:
            snap = c.request(Status())
        assert snap.supervisor_pid != first
        readopted = session.stage(snap.state.model_dump(mode="json"), "bias")
        assert readopted["status"] == "running"
        assert [(a["pid"], a["start_time"]) for a in readopted["attempts"]] == [(attempt["pid"], attempt["start_time"])]

        # Killed again; bias ends while no supervisor exists; the next one collects its exit status and counts.
        session.kill_supervisor()
        wait_file(Path(attempt["status_path"]))
        assert session.status("bias") == "running", "nobody has looked at it yet"
        with session.client() as c:
            snap = c.request(Status())
        done = session.stage(snap.state.model_dump(mode="json"), "bias")
        assert done["status"] == "done", "settled before the first reply, never shown running"
        assert done["attempts"][0]["exit_code"] == 0
        tasks = done["attempts"][0]["quanta"]["progress"]["tasks"]
        assert {k: (t["done"], t["total"]) for k, t in tasks.items()} == {"isr": (12, 12), "cpBiasCombine": (4, 4)}

        # The queue goes on: certify-bias starts; kill the supervisor under it and let it end alone too.
        for sid, expect_ok in (("certify-bias", True), ("certify-missing", False)):
            state = session.wait(lambda s, sid=sid: session.stage(s, sid)["status"] != "queued", timeout=60,
                                 what=f"{sid} to start")
            a = session.stage(state, sid)["attempts"][0]
            assert session.stage(state, sid)["status"] == "running" and not Path(a["status_path"]).exists()
            session.kill_supervisor()
            wait_file(Path(a["status_path"]))
            truth = json.loads(Path(a["status_path"]).read_text())["returncode"]
            assert (truth == 0) is expect_ok
            with session.client() as c:
                snap = c.request(Status())
            st = session.stage(snap.state.model_dump(mode="json"), sid)
            assert st["status"] == ("done" if expect_ok else "failed")
            assert st["attempts"][0]["exit_code"] == truth

        state = session.state()
        assert [len(s["attempts"]) for s in state["stages"]] == [1, 1, 1], "nothing is run twice"
        assert exit_status_mismatches(state) == []
        assert len(session.supervisor_pids()) == 1
        # 7. the journal has one start and one end per attempt, with the collected exit codes
        assert session.journal_problems(state) == []
        assert session.unjournaled_butler_changes() == []
    finally:
        session.shutdown()




def file_text_lines(path: Path) -> list[str]:
    return [line.removesuffix("\r") for line in path.read_bytes().decode("utf-8", "replace").split("\n")][
        : file_lines(path)]


async def test_app_keeps_following_through_supervisor_death_and_reopen(demo_repo: Path, tmp_path: Path,
                                                                       monkeypatch):
    """The app watching a running stage: supervisor SIGKILLed under it, then the app closed and reopened."""
    from pfstui.ui.app import PfsTuiApp
    from pfstui.ui.panes.logs import LogsPanel
    from pfstui.ui.panes.queue import QueuePane

    env = fault_env(tmp_path)
    apply_env(env, monkeypatch.setenv)
    session = Session(demo_repo, write_plan(tmp_path / "plan.yaml", demo_repo,
                                            bias(0.6) + certify_stage("certify-bias", "bias", "bias", "bias")))
    with session.client() as c:
        c.request(LoadPlan(path=str(session.plan)))
        c.request(Run())
    state = session.wait(lambda s: session.stage(s, "bias")["status"] == "running", what="bias to run")
    log = Path(session.stage(state, "bias")["attempts"][0]["log_path"])

    def shown(pane: QueuePane, sid: str) -> str | None:
        return next((s.status for s in pane.stages() if s.id == sid), None)

    try:
        app = PfsTuiApp(repo=str(demo_repo), plan=str(session.plan))
        async with app.run_test(size=(120, 40)) as pilot:
            pane = app.query_one(QueuePane)
            await wait_until(pilot, lambda: shown(pane, "bias") == "running", timeout=60, what="bias shown running")
            await app.open_log("bias", str(log))
            view = app.query_one(LogsPanel).view_for(log)
            await wait_until(pilot, lambda: view.rows > 0 and view.rows == file_lines(log), timeout=20,
                             what="the log view to reach the file's end")
            killed = session.kill_supervisor()
            # The app's own link restarts the supervisor and re-attaches: same attempt, still running.
            await wait_until(pilot, lambda: getattr(pane.snapshot, "supervisor_pid", None) not in (None, killed),
                             timeout=30, what="the app to re-attach to a new supervisor")
            assert shown(pane, "bias") == "running"
            assert [a.number for a in next(s for s in pane.stages() if s.id == "bias").attempts] == [1]
            await wait_until(pilot, lambda: view.rows == file_lines(log), timeout=20,
                             what="the log view to follow the file after the restart")
            assert session.status("bias") == "running", "the reopen below must happen while bias runs"
        # The app is gone (as with a dropped link); a new one opens while bias still runs.
        app = PfsTuiApp(repo=str(demo_repo), plan=str(session.plan))
        async with app.run_test(size=(120, 40)) as pilot:
            pane = app.query_one(QueuePane)
            await wait_until(pilot, lambda: shown(pane, "bias") is not None, timeout=60, what="the queue")
            await app.open_log("bias", str(log))
            view = app.query_one(LogsPanel).view_for(log)
            await wait_until(pilot, lambda: view.rows > 0 and view.rows == file_lines(log), timeout=20,
                             what="the reopened log view to reach the file's end")
            await wait_until(pilot, lambda: shown(pane, "certify-bias") == "done", timeout=90,
                             what="the queue to finish")
            await wait_until(pilot, lambda: view.rows == file_lines(log), timeout=20, what="the last lines")
            await asyncio.sleep(0.5)
            # Line by line: nothing lost, nothing shown twice.
            assert [view.row_text(r) for r in range(view.rows)] == file_text_lines(log)
            table = pane.query_one("DataTable")
            assert "16/16" in str(table.get_cell("bias", "quanta"))
        state = session.state()
        assert [len(s["attempts"]) for s in state["stages"]] == [1, 1]
        assert session.journal_problems(state) == []
    finally:
        session.shutdown()
