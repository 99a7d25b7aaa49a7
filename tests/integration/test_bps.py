"""The ``bps`` backend end to end (issue 8): real ``bps submit`` with the Parsl local site, on a demo repo.

* the demo bias pipeline through bps gives the same datasets and the same arrays as the local backend, and
  pause/resume reach bps and its worker pool;
* a failure (demo knob) makes the stage ``failed`` with the failing task and data ID although ``bps submit``
  exits 0; restarting with the option fixed resubmits and runs only the failed quantum and what it blocked;
* the app and the supervisor are SIGKILLed during a bps stage; the reopened app (a new supervisor) shows it
  re-adopted, and it finishes;
* kill reaches the Parsl worker pool's own process group; restart with unchanged options is `bps restart` in
  the first submission's folder, and the jobs finished before the kill are not run again (memo_done).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from pfstui.queue.requests import (
    KillStage,
    LoadPlan,
    PauseStage,
    RestartStage,
    ResumeStage,
    Run,
)
from tests.faults import Session, apply_env, fault_env, pipetask_stage, write_plan

pytestmark = pytest.mark.integration
pytest.importorskip("lsst.ctrl.bps.parsl", reason="the bps extra is not installed (pip install '.[bps]')")

QUERY = "instrument='PFS' AND visit.target_name = 'BIAS'"
FAIL_ON = "isr:demoFailOn=visit:12,arm:r,spectrograph:1"
BPS_SITES = "bps_sites:\n  local: {class: lsst.ctrl.bps.parsl.sites.Local, cores: 2}\n"


def bias_stage(name: str, *, backend: str = "local", config: list[str] = (), cluster: bool = True,
               after: str | None = None) -> str:
    text = pipetask_stage(name, "bias.yaml", "PFS/raw/sps, PFS/calib", name, QUERY, list(config),
                          after=[after] if after else None)
    if backend == "bps":
        text += "    backend: bps\n    bps:\n      site: local\n"
        if cluster:
            text += "      cluster_by: [arm, spectrograph]\n"
    return text


def bps_plan(tmp_path: Path, repo: Path, stages: str) -> Path:
    plan = write_plan(tmp_path / "plan.yaml", repo, stages, rerun="u/bps")
    text = plan.read_text().replace("stages:\n", BPS_SITES + "stages:\n", 1)
    plan.write_text(text)
    return plan


def start(session: Session) -> None:
    with session.client() as c:
        c.request(LoadPlan(path=str(session.plan)))
        c.request(Run())


def restart_and_wait(session: Session, **overrides: object) -> dict:
    """Restart the bias stage (with the restart editor's ``overrides``) and wait for its second attempt to end."""
    with session.client() as c:
        c.request(RestartStage(stage="bias", **overrides))
    state = session.wait(lambda s: session.stage(s, "bias")["status"] in ("done", "failed")
                         and len(session.stage(s, "bias")["attempts"]) == 2, timeout=600,
                         what="the restarted bias to finish")
    return session.stage(state, "bias")


def pool_processes(attempt: dict) -> list[psutil.Process]:
    """Every process of the Parsl worker pools of a bps attempt (the pools and their running jobs)."""
    from pfstui.bps.pools import worker_pools

    groups = set(worker_pools(attempt["bps"]["workdir"]))
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) in groups:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def tasks(stage: dict) -> dict[str, tuple[int, int, int, int]]:
    progress = stage["attempts"][-1]["quanta"]["progress"]
    return {k: (t["done"], t["failed"], t["blocked"], t["total"]) for k, t in progress["tasks"].items()}


def test_bps_outputs_equal_local(demo_repo: Path, tmp_path: Path, monkeypatch):
    apply_env(fault_env(tmp_path), monkeypatch.setenv)
    # demoDelay only sleeps (same outputs); it leaves time to pause the bps stage while its jobs run
    plan = bps_plan(tmp_path, demo_repo, bias_stage("local")
                    + bias_stage("viabps", backend="bps", config=["isr:demoDelay=1.0"], after="local"))
    session = Session(demo_repo, plan)
    from pfstui.bps.pools import worker_pools

    try:
        start(session)
        state = session.wait(lambda s: session.stage(s, "viabps")["status"] == "running", timeout=120,
                             what="the bps stage to run")
        attempt = session.stage(state, "viabps")["attempts"][0]
        deadline = time.monotonic() + 120
        while not any(p.name() == "pipetask" or "run-qbb" in p.cmdline() for p in pool_processes(attempt)):
            assert time.monotonic() < deadline, "no job started"
            time.sleep(0.2)
        # pause reaches bps and the worker pool with its running jobs; resume lets them go on
        with session.client() as c:
            c.request(PauseStage(stage="viabps"))
        time.sleep(0.5)
        stopped = []
        for proc in [psutil.Process(attempt["pid"]), *pool_processes(attempt)]:
            try:
                stopped.append(proc.status())
            except psutil.NoSuchProcess:  # a job that ended just before the pause
                pass
        assert len(stopped) >= 3 and set(stopped) == {psutil.STATUS_STOPPED}, stopped
        with session.client() as c:
            c.request(ResumeStage(stage="viabps"))
        state = session.wait(session.finished, timeout=600, what="both bias stages to finish")
        assert not worker_pools(attempt["bps"]["workdir"]), "the pool ends with the stage"
        local, viabps = session.stage(state, "local"), session.stage(state, "viabps")
        assert local["status"] == "done", local["attempts"][-1]
        assert viabps["status"] == "done", viabps["attempts"][-1]
        attempt = viabps["attempts"][-1]
        assert attempt["argv"][-2:] == ["submit", str(Path(attempt["cwd"]) / "bps-submit.yaml")]
        submit = Path(attempt["bps"]["submit_file"]).read_text()
        assert "dimension_clustering" in submit and "--instrument pfstui.demo.instrument" in submit
        # the same per-task quanta counts a local stage shows, from the job logs and pipetask report
        assert tasks(viabps) == {"isr": (12, 0, 0, 12), "cpBiasCombine": (4, 0, 0, 4)}
        assert attempt["exit_code"] == 0
    finally:
        session.shutdown()
    from lsst.daf.butler import Butler

    with Butler.from_config(str(demo_repo)) as butler:
        for dataset_type, count in (("bias", 4), ("biasProc", 12)):
            a = {r.dataId: r for r in butler.query_datasets(dataset_type, collections="u/bps/local", explain=False)}
            b = {r.dataId: r for r in butler.query_datasets(dataset_type, collections="u/bps/viabps", explain=False)}
            assert len(a) == count and a.keys() == b.keys(), dataset_type
            for data_id in a:
                np.testing.assert_array_equal(butler.get(a[data_id]), butler.get(b[data_id]))


def test_bps_failure_is_failed_and_restart_reruns_only_what_failed(demo_repo: Path, tmp_path: Path, monkeypatch):
    apply_env(fault_env(tmp_path), monkeypatch.setenv)
    plan = bps_plan(tmp_path, demo_repo, bias_stage("bias", backend="bps", config=[FAIL_ON]))
    session = Session(demo_repo, plan)
    try:
        start(session)
        state = session.wait(session.finished, timeout=600, what="the failing bias to finish")
        stage = session.stage(state, "bias")
        first = stage["attempts"][-1]
        status = json.loads(Path(first["status_path"]).read_text())
        assert status["returncode"] == 0, "bps submit exits 0 even though a job failed"
        assert stage["status"] == "failed" and first["status"] == "failed"
        failures = first["quanta"]["progress"]["failures"]
        assert [(f["task"], {k: f["data_id"][k] for k in ("visit", "arm", "spectrograph")}) for f in failures] == [
            ("isr", {"visit": 12, "arm": "r", "spectrograph": 1})]
        assert "Saturated pixels" in failures[0]["message"]
        # the failure points into the failing job's log, at the line that reports it
        job_log = Path(failures[0]["log_path"])
        with open(job_log, "rb") as fh:
            fh.seek(failures[0]["offset"])
            assert b"visit: 12" in fh.readline()
        assert "isr" in first["detail"] and "visit=12" in first["detail"]
        assert tasks(stage) == {"isr": (11, 1, 0, 12), "cpBiasCombine": (3, 0, 1, 4)}
        # every command run is journaled: bps submit, then the pipetask report that judged it
        entries, _problems = session.journal()
        mine = [e for e in entries if e.get("kind") == "command" and e.get("stage") == "bias"]
        assert [e["event"] for e in mine] == ["start", "report", "end"]
        assert mine[1]["argv"][1:3] == ["report", str(demo_repo)]
        assert session.journal_problems(state) == []

        # Fix the option (drop the failure knob) and restart: a new submission that skips what exists.
        stage = restart_and_wait(session, overrides={"config": []})
        second = stage["attempts"][-1]
        assert stage["status"] == "done", second
        assert second["bps"]["mode"] == "submit"
        assert "--skip-existing-in u/bps/bias" in Path(second["bps"]["submit_file"]).read_text()
        # only the failed isr quantum and the combine it blocked ran again
        assert tasks(stage) == {"isr": (1, 0, 0, 1), "cpBiasCombine": (1, 0, 0, 1)}
    finally:
        session.shutdown()
    from lsst.daf.butler import Butler

    with Butler.from_config(str(demo_repo)) as butler:
        assert len(butler.query_datasets("bias", collections="u/bps/bias", explain=False)) == 4


def test_bps_stage_survives_app_and_supervisor_kill(demo_repo: Path, tmp_path: Path, monkeypatch):
    from tests.faults.ptyapp import TmuxApp, pfstui_argv, queue_rows

    env = fault_env(tmp_path)
    apply_env(env, monkeypatch.setenv)
    plan = bps_plan(tmp_path, demo_repo, bias_stage("bias", backend="bps", config=["isr:demoDelay=1.0"]))
    session = Session(demo_repo, plan)
    apps: list[TmuxApp] = []
    try:
        app = TmuxApp(pfstui_argv(demo_repo, plan), env, size=(160, 48)).start()
        apps.append(app)
        app.wait_screen(lambda text: "bias" in queue_rows(text, ["bias"]), timeout=60)
        app.send_keys("r")
        state = session.wait(lambda s: session.stage(s, "bias")["status"] == "running", what="bias to run")
        attempt = session.stage(state, "bias")["attempts"][0]
        db = Path(attempt["bps"]["workdir"]) / "monitor.sqlite"
        deadline = time.monotonic() + 120
        while not db.exists():  # jobs are running: the Parsl workflow has started
            assert time.monotonic() < deadline, "the bps workflow never started"
            time.sleep(0.2)
        # The link drops: the app dies without cleaning up, and the supervisor with it.
        app.kill(signal.SIGKILL)
        assert app.wait_gone(10)
        session.kill_supervisor()
        os.kill(attempt["pid"], 0)  # bps outlives both
        # The operator reopens pfstui: a new supervisor re-adopts the same bps process, and it finishes.
        app = TmuxApp(pfstui_argv(demo_repo, plan), env, size=(160, 48)).start()
        apps.append(app)
        screen = app.wait_screen(lambda text: queue_rows(text, ["bias"]).get("bias", ("",))[0] in ("running", "done"),
                                 timeout=60)
        state = session.state()
        readopted = session.stage(state, "bias")
        assert [(a["pid"], a["start_time"]) for a in readopted["attempts"]] == [(attempt["pid"], attempt["start_time"])]
        screen = app.wait_screen(lambda text: queue_rows(text, ["bias"]).get("bias", ("",))[0] == "done", timeout=600)
        assert "16/16" in queue_rows(screen, ["bias"])["bias"][1]
        stage = session.stage(session.state(), "bias")
        assert stage["status"] == "done" and len(stage["attempts"]) == 1, stage["attempts"][-1]
        assert tasks(stage) == {"isr": (12, 0, 0, 12), "cpBiasCombine": (4, 0, 0, 4)}
    finally:
        for app in apps:
            app.stop()
        session.shutdown()


def test_bps_kill_reaches_the_worker_pool_and_restart_skips_finished_jobs(demo_repo: Path, tmp_path: Path,
                                                                          monkeypatch):
    from pfstui.bps.monitor import _latest_states
    from pfstui.bps.pools import worker_pools

    apply_env(fault_env(tmp_path), monkeypatch.setenv)
    plan = bps_plan(tmp_path, demo_repo, bias_stage("bias", backend="bps", config=["isr:demoDelay=3.0"],
                                                    cluster=False))
    session = Session(demo_repo, plan)
    workdir: Path | None = None
    try:
        start(session)
        state = session.wait(lambda s: session.stage(s, "bias")["status"] == "running", what="bias to run")
        workdir = Path(session.stage(state, "bias")["attempts"][0]["bps"]["workdir"])
        db = workdir / "monitor.sqlite"
        deadline = time.monotonic() + 300
        while sum(st == "exec_done" for _l, st, _o in _latest_states(db)) < 2:
            assert time.monotonic() < deadline, "no job finished"
            time.sleep(0.2)
        assert worker_pools(workdir), "the Parsl worker pool runs in a process group of its own"
        with session.client() as c:
            c.request(KillStage(stage="bias"))
        session.wait(lambda s: session.stage(s, "bias")["status"] == "killed", timeout=60, what="bias to be killed")
        finished_before = sum(st == "exec_done" for _l, st, _o in _latest_states(db))
        deadline = time.monotonic() + 30
        while worker_pools(workdir):
            assert time.monotonic() < deadline, "the worker pool outlived the kill"
            time.sleep(0.2)

        # Restart with the same options: `bps restart` in the first submission's folder.
        stage = restart_and_wait(session)
        second = stage["attempts"][-1]
        assert stage["status"] == "done", second
        assert second["bps"]["mode"] == "restart" and second["bps"]["workdir"] == str(workdir)
        assert second["argv"][-4:] == ["--wms-service-class", "lsst.ctrl.bps.parsl.ParslService", "--id",
                                       str(workdir / "submit")]
        memo = sum(st == "memo_done" for _l, st, _o in _latest_states(db))
        assert memo >= finished_before >= 2, "jobs finished before the kill are not run again"
        assert tasks(stage) == {"isr": (12, 0, 0, 12), "cpBiasCombine": (4, 0, 0, 4)}
    finally:
        for pgid in worker_pools(workdir) if workdir else []:
            os.killpg(pgid, signal.SIGKILL)
        session.shutdown()
