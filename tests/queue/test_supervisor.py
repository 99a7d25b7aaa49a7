"""The supervisor with real stages: it runs the queue with no client, survives its own death, kills
whole process groups, reports failed quanta, and restarts a fixed stage.

Stages are real ``pipetask run``/``butler`` subprocesses on a copy of the demo repository.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import pfstui.infra.paths as paths
from pfstui.infra.journal import Journal
from pfstui.plan.argv import shell_join
from pfstui.queue.protocol import SupervisorClient
from pfstui.queue.requests import (
    EditStage,
    Hello,
    KillStage,
    LoadPlan,
    PauseQueue,
    RestartStage,
    Run,
    Shutdown,
    Status,
)

pytestmark = pytest.mark.integration

BEGIN, END = "2000-01-01T00:00:00", "2050-12-31T23:59:59"


def write_plan(tmp: Path, repo: Path, stages: str, processes: int = 1) -> Path:
    plan = tmp / "plan.yaml"
    plan.write_text(
        f"""version: 1
repository: {repo}
instrument: pfstui.demo.instrument.DemoPrimeFocusSpectrograph
rerun: u/test
defaults: {{processes: {processes}}}
stages:
{stages}"""
    )
    return plan


def bias_stage(config: list[str] | None = None) -> str:
    cfg = ", ".join(json.dumps(c) for c in (config or []))
    return f"""  - name: bias
    kind: pipetask
    pipeline: ${{PFSTUI_DEMO_DIR}}/pipelines/bias.yaml
    inputs: [PFS/raw/sps, PFS/calib]
    output: bias
    query: "instrument='PFS' AND visit.target_name = 'BIAS'"
    config: [{cfg}]
"""


CERTIFY_BIAS = f"""  - name: certify-bias
    kind: certify
    after: [bias]
    input: bias
    target: PFS/calib
    dataset_type: bias
    begin: {BEGIN}
    end: {END}
"""


@pytest.fixture
def session(tmp_path: Path, monkeypatch, tool_env):
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PFSTUI_SUPERVISOR_IDLE", "20")
    monkeypatch.setenv("PFSTUI_DEMO_DIR", tool_env["PFSTUI_DEMO_DIR"])
    monkeypatch.setenv("PATH", tool_env["PATH"])
    made: list[Path] = []

    def open_session(plan: Path, repo: Path) -> tuple[SupervisorClient, Path]:
        sdir = paths.session_dir(repo, plan)
        made.append(sdir)
        client = SupervisorClient(sdir).connect()
        client.request(LoadPlan(path=str(plan)))
        return client, sdir

    yield open_session
    for sdir in made:
        try:
            SupervisorClient(sdir, autostart=False, timeout=2).connect().request(Shutdown())
        except Exception:
            pass


def read_state(sdir: Path) -> dict:
    return json.loads((sdir / "state.json").read_text())


def stage_of(state: dict, name: str) -> dict:
    return next(s for s in state["stages"] if s["id"] == name)


def wait_for(sdir: Path, predicate, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    state: dict = {}
    while time.monotonic() < deadline:
        try:
            state = read_state(sdir)
        except (OSError, ValueError):
            time.sleep(0.1)
            continue
        if predicate(state):
            return state
        time.sleep(0.2)
    raise AssertionError(f"timed out; stages: {[(s['id'], s['status']) for s in state.get('stages', [])]}")


def test_queue_advances_with_no_client(session, demo_repo: Path, tmp_path: Path):
    plan = write_plan(tmp_path, demo_repo, bias_stage() + CERTIFY_BIAS)
    client, sdir = session(plan, demo_repo)
    assert read_state(sdir)["queue_paused"] is True  # a freshly loaded plan waits for "run"
    client.request(Run())
    client.close()  # nobody is connected from here on
    state = wait_for(sdir, lambda s: stage_of(s, "certify-bias")["status"] in ("done", "failed"))
    assert stage_of(state, "certify-bias")["status"] == "done"
    bias = stage_of(state, "bias")
    progress = bias["attempts"][0]["quanta"]["progress"]["tasks"]
    assert progress["isr"]["total"] == progress["isr"]["done"] == 12
    assert progress["cpBiasCombine"]["done"] == 4
    # the journal has both commands, in dependency order
    starts = [e for e in Journal(paths.state_dir() / "journal.jsonl").read() if e.get("event") == "start"]
    assert [e["stage"] for e in starts] == ["bias", "certify-bias"]
    assert "--register-dataset-types" in starts[0]["argv"]


def test_next_argv_follows_the_plan_file_and_is_exactly_what_the_attempt_runs(session, demo_repo: Path,
                                                                              tmp_path: Path):
    """The bug this contract fixes: adding ``config: [...]`` to a queued stage in the plan file made the Queue
    pane show ``-c ...`` (it rebuilt the command from the file) while the attempt ran without it.  Now the
    supervisor says what runs next, from the plan it holds, and the attempt runs exactly that."""
    plan = write_plan(tmp_path, demo_repo, bias_stage() + CERTIFY_BIAS)
    client, sdir = session(plan, demo_repo)
    before = client.request(Status()).next_runs["bias"]
    assert before.error is None and before.argv[:1] and "-c" not in before.argv
    assert "--register-dataset-types" in before.argv  # as on its first run

    write_plan(tmp_path, demo_repo, bias_stage(["isr:demoDelay=0.01"]) + CERTIFY_BIAS)  # edited while queued
    assert client.request(Status()).next_runs["bias"] == before, "the supervisor runs the plan it has read"
    client.request(LoadPlan(path=str(plan)))  # what the app does when it opens the plan (and after `a`)
    snap = client.request(Status())
    after = snap.next_runs["bias"]
    assert after.argv[after.argv.index("-c") + 1] == "isr:demoDelay=0.01"
    assert after.argv == before.argv[:after.argv.index("-c")] + ["-c", "isr:demoDelay=0.01"] + \
        before.argv[after.argv.index("-c"):]
    certify = snap.next_runs["certify-bias"].argv  # pfstui's own certify, journaled with its stage and attempt
    assert "certify" in certify and certify[-5:] == ["--stage", "certify-bias", "--attempt", "1", "--yes"]

    # `pfstui status` shows the same argv: it asks the supervisor and never reads the plan file for it.
    status = [sys.executable, "-m", "pfstui", "status", "--plan", str(plan), "--repo", str(demo_repo)]
    doc = json.loads(subprocess.run(status + ["--json"], capture_output=True, text=True, check=True).stdout)
    assert next(s for s in doc["stages"] if s["id"] == "bias")["next_argv"] == after.argv
    text = subprocess.run(status, capture_output=True, text=True, check=True).stdout
    assert f"    next: {shell_join(after.argv)}" in text

    client.request(Run())
    state = wait_for(sdir, lambda s: stage_of(s, "bias")["status"] in ("done", "failed"))
    assert stage_of(state, "bias")["status"] == "done"
    assert stage_of(state, "bias")["attempts"][0]["argv"] == after.argv, "the attempt ran what was shown"
    starts = [e for e in Journal(paths.state_dir() / "journal.jsonl").read() if e.get("event") == "start"]
    assert starts[0]["stage"] == "bias" and starts[0]["argv"] == after.argv


def test_failure_dependency_failed_and_restart(session, demo_repo: Path, tmp_path: Path):
    plan = write_plan(tmp_path, demo_repo,
                      bias_stage(["isr:demoFailOn=visit:12,arm:r,spectrograph:1"]) + CERTIFY_BIAS)
    client, sdir = session(plan, demo_repo)
    client.request(Run())
    state = wait_for(sdir, lambda s: stage_of(s, "bias")["status"] == "failed")
    state = wait_for(sdir, lambda s: stage_of(s, "certify-bias")["status"] == "dependency-failed")
    attempt = stage_of(state, "bias")["attempts"][0]
    assert attempt["exit_code"] != 0
    failures = attempt["quanta"]["progress"]["failures"]
    assert len(failures) == 1
    f = failures[0]
    assert f["task"] == "isr" and f["exception_class"] == "RuntimeError" and "Saturated" in f["message"]
    assert {k: f["data_id"][k] for k in ("visit", "arm", "spectrograph")} == {"visit": 12, "arm": "r", "spectrograph": 1}
    log = Path(attempt["log_path"]).read_bytes()
    assert b"failed" in log[f["offset"]: f["offset"] + 400]
    # Fix the option and restart: a second attempt, the first one's log kept, dependants re-queued.
    result = client.request(RestartStage(stage="bias", overrides={"config": []}))
    assert result.requeued == ["bias", "certify-bias"]
    state = wait_for(sdir, lambda s: stage_of(s, "certify-bias")["status"] in ("done", "failed", "dependency-failed"))
    assert stage_of(state, "certify-bias")["status"] == "done"
    bias = stage_of(state, "bias")
    assert [a["number"] for a in bias["attempts"]] == [1, 2]
    assert Path(bias["attempts"][0]["log_path"]).exists() and bias["attempts"][0]["log_path"] != bias["attempts"][1]["log_path"]
    assert "isr:demoFailOn=visit:12,arm:r,spectrograph:1" not in bias["attempts"][1]["argv"]


def _tasks(attempt: dict) -> dict[str, tuple[int | None, int]]:
    """Each task's (total, done) in an attempt's progress."""
    return {label: (t["total"], t["done"]) for label, t in attempt["quanta"]["progress"]["tasks"].items()}


def test_restart_runs_only_the_quanta_that_did_not_succeed(session, demo_repo: Path, tmp_path: Path):
    """Attempt 2 of a stage with 7 of 16 quanta done started again at 0/16.  A restart now runs, in a new RUN of
    the same output chain, only the quanta that did not succeed (here those of camera r1: 3 isr and its
    combine), unless the operator asks for a full rerun; the next argv shown is the argv each attempt ran."""
    from lsst.daf.butler import Butler

    stage = bias_stage(["isr:demoFailOn=arm:r,spectrograph:1"]) + "    fail_fast: false\n"  # the other cameras go on
    plan = write_plan(tmp_path, demo_repo, stage)
    client, sdir = session(plan, demo_repo)
    client.request(Run())
    state = wait_for(sdir, lambda s: stage_of(s, "bias")["status"] == "failed")
    assert _tasks(stage_of(state, "bias")["attempts"][0]) == {"isr": (12, 9), "cpBiasCombine": (4, 3)}

    client.request(PauseQueue())  # to look at what the restarted attempt will run before it runs
    restart = [sys.executable, "-m", "pfstui", "queue", "restart", "bias", "--full", "--plan", str(plan),
               "--repo", str(demo_repo)]
    subprocess.run(restart, capture_output=True, text=True, check=True)  # every quantum again: r1 fails again
    shown = client.request(Status()).next_runs["bias"].argv
    assert "--skip-existing-in" not in shown
    client.request(Run())
    state = wait_for(sdir, lambda s: len(stage_of(s, "bias")["attempts"]) == 2
                     and stage_of(s, "bias")["status"] == "failed")
    second = stage_of(state, "bias")["attempts"][1]
    assert second["argv"] == shown and _tasks(second) == {"isr": (12, 9), "cpBiasCombine": (4, 3)}

    client.request(PauseQueue())
    client.request(RestartStage(stage="bias", overrides={"config": []}))  # the fix; only what is not done
    shown = client.request(Status()).next_runs["bias"].argv
    assert shown[shown.index("--skip-existing-in") + 1] == "u/test/bias"
    client.request(Run())
    state = wait_for(sdir, lambda s: stage_of(s, "bias")["status"] in ("done", "failed"))
    third = stage_of(state, "bias")["attempts"][2]
    assert stage_of(state, "bias")["status"] == "done" and third["argv"] == shown
    assert _tasks(third) == {"isr": (3, 3), "cpBiasCombine": (1, 1)}, "counted from its graph: r1 alone"
    assert third["quanta"]["progress"]["graph_total"] == 4

    with Butler.from_config(str(demo_repo)) as butler:
        chain = list(butler.collections.get_info("u/test/bias").children)
        runs = [c for c in chain if c.startswith("u/test/bias/")]
        assert len(runs) == 3 and chain[:3] == runs, "each attempt a RUN of the one chain, newest first"
        cameras = {(ref.dataId["arm"], ref.dataId["spectrograph"])
                   for ref in butler.query_datasets("biasProc", collections=runs[0], explain=False)}
        assert cameras == {("r", 1)}, "the last attempt ran r1's quanta only"
        biases = butler.query_datasets("bias", collections="u/test/bias", explain=False)
        assert sorted(ref.run == runs[0] for ref in biases) == [False, False, False, True]


def test_a_stage_edited_in_the_plan_file_runs_the_file_over_earlier_restart_options(session, demo_repo: Path,
                                                                                      tmp_path: Path):
    """``e`` writes a queued stage's options into the plan file (EditStage): the fields edited there replace
    what the restart editor had set for them, so the next attempt runs what the operator just saved."""
    from pfstui.plan.edit import read_plan_file
    from pfstui.plan.stage_edit import edit_stage

    plan = write_plan(tmp_path, demo_repo, bias_stage(["isr:demoFailOn=visit:12,arm:r,spectrograph:1"]))
    client, sdir = session(plan, demo_repo)
    client.request(Run())
    wait_for(sdir, lambda s: stage_of(s, "bias")["status"] == "failed")
    client.request(PauseQueue())
    client.request(RestartStage(stage="bias", overrides={"config": ["isr:demoDelay=0.01"], "processes": 2}))
    before = client.request(Status()).next_runs["bias"].argv
    assert "isr:demoDelay=0.01" in before and before[before.index("-j") + 1] == "2"

    edit_stage(read_plan_file(plan), "bias", {"config": ["isr:demoDelay=0.02"]})
    reply = client.request(EditStage(stage="bias", path=str(plan), fields=["config"]))
    assert reply.status == "queued"
    snap = client.request(Status())
    after = snap.next_runs["bias"].argv
    assert "isr:demoDelay=0.02" in after and "isr:demoDelay=0.01" not in after
    assert after[after.index("-j") + 1] == "2", "a field not edited keeps the restart editor's value"
    assert snap.state.stage("bias").extra.overrides == {"processes": 2}


def test_a_refused_restart_changes_nothing(session, demo_repo: Path, tmp_path: Path):
    """Restarting a queued stage with options used to keep the options although the restart was refused."""
    from pfstui.queue.protocol import SupervisorError

    client, _ = session(write_plan(tmp_path, demo_repo, bias_stage()), demo_repo)
    with pytest.raises(SupervisorError, match="only a failed, killed, lost or dependency-failed stage"):
        client.request(RestartStage(stage="bias", overrides={"processes": 3}, full=True))
    snap = client.request(Status())
    assert snap.state.stage("bias").extra.overrides == {} and snap.state.stage("bias").extra.full_rerun is None
    argv = snap.next_runs["bias"].argv
    assert argv[argv.index("-j") + 1] == "1"


def test_kill_reaches_every_process_of_a_j2_pipetask(session, demo_repo: Path, tmp_path: Path):
    plan = write_plan(tmp_path, demo_repo, bias_stage(["isr:demoDelay=30"]), processes=2)
    client, sdir = session(plan, demo_repo)
    client.request(Run())
    state = wait_for(sdir, lambda s: stage_of(s, "bias")["status"] == "running")
    pgid = stage_of(state, "bias")["attempts"][0]["pgid"]
    # wait until pipetask has forked its -j 2 workers
    deadline = time.monotonic() + 60
    members: list[psutil.Process] = []
    while time.monotonic() < deadline:
        members = [p for p in psutil.process_iter(["pid"]) if _pgid(p.pid) == pgid]
        if len(members) >= 3:
            break
        time.sleep(0.3)
    assert len(members) >= 3, "pipetask -j 2 should run a parent and two workers"
    client.request(KillStage(stage="bias"))
    state = wait_for(sdir, lambda s: stage_of(s, "bias")["status"] == "killed", timeout=40)
    gone, alive = psutil.wait_procs(members, timeout=15)
    assert alive == []
    assert stage_of(state, "bias")["attempts"][0]["signal"] in ("SIGTERM", "SIGKILL") or \
        stage_of(state, "bias")["attempts"][0]["exit_code"] != 0


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def test_supervisor_killed_readopts_running_stage(session, demo_repo: Path, tmp_path: Path):
    plan = write_plan(tmp_path, demo_repo, bias_stage(["isr:demoDelay=0.6"]) + CERTIFY_BIAS)
    client, sdir = session(plan, demo_repo)
    hello = client.request(Hello())
    client.request(Run())
    state = wait_for(sdir, lambda s: stage_of(s, "bias")["status"] == "running")
    pid = stage_of(state, "bias")["attempts"][0]["pid"]
    client.close()
    os.kill(hello.pid, signal.SIGKILL)
    time.sleep(1.0)
    assert psutil.pid_exists(pid), "the stage outlives its supervisor"
    # The next client restarts the supervisor, which re-adopts the stage by pid + start time.
    client2 = SupervisorClient(sdir).connect()
    assert client2.request(Hello()).pid != hello.pid
    snap = client2.request(Status())
    assert snap.state.stage("bias").status in ("running", "done")
    state = wait_for(sdir, lambda s: stage_of(s, "certify-bias")["status"] in ("done", "failed"))
    assert stage_of(state, "certify-bias")["status"] == "done"
    bias = stage_of(state, "bias")
    assert len(bias["attempts"]) == 1, "nothing is run twice"
    assert bias["attempts"][0]["quanta"]["progress"]["tasks"]["isr"]["done"] == 12


def test_client_respawns_when_an_exiting_supervisor_held_the_lock(tmp_path: Path, monkeypatch):
    """An idle supervisor exiting just as a client arrives: the supervisor the client starts finds the lock
    still held and gives way; the client must start another one once the lock is free, not time out."""
    from pfstui.queue.store import SessionStore

    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PFSTUI_SUPERVISOR_IDLE", "5")
    sdir = tmp_path / "state" / "sessions" / "race"
    sdir.mkdir(parents=True)
    lock = SessionStore(sdir).lock()
    assert lock.try_acquire()  # "the exiting supervisor" still holds it
    import threading

    released = threading.Timer(1.5, lock.release)
    released.start()
    started = time.monotonic()
    client = SupervisorClient(sdir, timeout=15).connect()
    try:
        assert time.monotonic() - started >= 1.5
        assert client.request(Hello()).session == str(sdir)
        log = (sdir / "supervisor.log").read_text()
        assert "another supervisor owns" in log, "the first one gave way to the lock holder"
    finally:
        client.request(Shutdown())
        client.close()
        released.cancel()
