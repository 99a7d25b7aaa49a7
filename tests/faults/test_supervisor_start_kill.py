"""SIGKILL of the supervisor at 50 stage starts: no stage ever runs twice (issue "Safe on a shared summit host").

Before the fix a supervisor killed just after launching a stage, before saving that it had, left the stage
``queued`` and its successor started it again (two RUN collections).  Here a plan of 50 quick stages runs
through supervisors that are SIGKILLed at each start, spread around the launch: at the test-only kill points
(:mod:`pfstui.infra.faults`) ``launch-intent`` (saved, nothing launched), ``launch-spawned`` (the waiter is
starting) and ``launch-started`` (the stage runs, its handle unsaved), and a few milliseconds after
``launch-intent`` announces itself (anywhere in the launch).  Each successor settles what it finds.  Then
every stage must be done with exactly one attempt, and the stage command itself must have run exactly once
per attempt.

The stages are real ``pipetask`` stages of a real plan, run by a supervisor whose ``pipetask`` is a shell
script that records each start (its attempt folder) and exits (:func:`tests.faults.fake_venv`): a real run
would cost seconds per round.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from pfstui.queue.requests import LoadPlan, Run, Status
from tests.faults import (
    Session,
    apply_env,
    fake_venv,
    fault_env,
    pipetask_stage,
    write_plan,
)

pytestmark = pytest.mark.integration

KILLS = 50
STAGES = 50
POINTS = ("launch-intent", "launch-started", "launch-spawned", "timed")
QUERY = "instrument='PFS' AND visit.target_name = 'BIAS'"


class Supervisors:
    """Starts the session's supervisor with a kill point, and kills it there."""

    def __init__(self, python: Path, session: Session, env: dict[str, str]) -> None:
        self.python, self.session, self.env = python, session, env
        self.log = session.dir / "supervisor.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills: Counter[str] = Counter()

    def start(self, point: str | None) -> None:
        env = dict(self.env)
        if point is not None:
            env["PFSTUI_FAULT_PAUSE"] = "trace" if point == "timed" else point
        self.session.dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([str(self.python), "-m", "pfstui.queue.supervisor", str(self.session.dir)],
                                         env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         start_new_session=True)

    def kill_at(self, point: str, rng: random.Random, timeout: float = 60.0) -> bool:
        """SIGKILL the supervisor once it reaches ``point``; False if the plan ended first."""
        assert self.proc is not None
        word = "at launch-intent" if point == "timed" else f"paused at {point}"
        pattern = re.compile(rf"pfstui-fault: {word} \(pid {self.proc.pid}\)")
        deadline = time.monotonic() + timeout
        while not pattern.search(self.log.read_text(errors="replace")):
            if self.session.finished() or time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        if point == "timed":
            time.sleep(rng.uniform(0.0, 0.05))
        self.proc.kill()
        self.proc.wait(10)
        self.kills[point] += 1
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)


def connect(session: Session, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return session.client(autostart=False)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_supervisor_killed_at_50_stage_starts_never_runs_a_stage_twice(demo_repo: Path, tmp_path: Path,
                                                                        monkeypatch):
    env = fault_env(tmp_path)
    apply_env(env, monkeypatch.setenv)
    runs = tmp_path / "runs.txt"
    python = fake_venv(tmp_path / "venv", runs)
    stages = "".join(pipetask_stage(f"s{n:02d}", "bias.yaml", "PFS/raw/sps, PFS/calib", f"s{n:02d}", QUERY, [])
                     for n in range(1, STAGES + 1))
    session = Session(demo_repo, write_plan(tmp_path / "plan.yaml", demo_repo, stages))
    sups = Supervisors(python, session, dict(os.environ))
    rng = random.Random(int(os.environ.get("PFSTUI_SEED", "0")) or random.randrange(1 << 30))
    try:
        sups.start(POINTS[0])
        with connect(session) as c:
            c.request(LoadPlan(path=str(session.plan)))
            c.request(Run())
        for n in range(KILLS):
            if not sups.kill_at(POINTS[n % len(POINTS)], rng):
                break
            sups.start(POINTS[(n + 1) % len(POINTS)])
        sups.stop()
        sups.start(None)
        with connect(session) as c:
            c.request(Status())
        state = session.wait(session.finished, timeout=180, what="every stage to finish")
    finally:
        sups.stop()
        session.shutdown()

    log = sups.log.read_text(errors="replace")
    starts = Counter(line.split()[0] for line in runs.read_text().splitlines())
    attempts = {s["id"]: len(s["attempts"]) for s in state["stages"]}
    counts = {"kills": sum(sups.kills.values()), "by point": dict(sups.kills),
              "double runs": sum(n - 1 for n in starts.values()) + sum(n - 1 for n in attempts.values()),
              "adopted": log.count(": adopted pid"), "restarted": log.count(": relaunched, pid"),
              "lost": log.count(": lost (")}
    print(f"\nsupervisor start-kill: {counts}")

    assert sum(sups.kills.values()) == KILLS, counts
    assert all(sups.kills[p] >= KILLS // len(POINTS) for p in POINTS), counts
    assert counts["double runs"] == 0, (counts, [a for a, n in starts.items() if n > 1], attempts)
    assert [s["status"] for s in state["stages"]] == ["done"] * STAGES, [(s["id"], s["status"]) for s in state["stages"]]
    assert len(starts) == STAGES, "one start of the stage command per stage"
    assert counts["adopted"] >= 1 and counts["restarted"] >= 1, counts
    assert counts["lost"] == 0, counts
    assert session.journal_problems(state) == []


def test_a_stage_name_too_long_for_the_file_system_fails_that_stage_and_the_queue_goes_on(demo_repo: Path,
                                                                                         tmp_path: Path, monkeypatch):
    """A state.json from an older pfstui (names of ~300 characters were allowed) with such a stage queued, and
    another one running: each used to stop the supervisor at every start (OSError: File name too long)."""
    env = fault_env(tmp_path)
    apply_env(env, monkeypatch.setenv)
    python = fake_venv(tmp_path / "venv", tmp_path / "runs.txt")
    stages = (pipetask_stage("a", "bias.yaml", "PFS/raw/sps, PFS/calib", "a", QUERY, [])
              + pipetask_stage("b", "bias.yaml", "PFS/raw/sps, PFS/calib", "b", QUERY, [], after=["a"]))
    session = Session(demo_repo, write_plan(tmp_path / "plan.yaml", demo_repo, stages))
    queued, running = "q" * 300, "r" * 300
    far = session.dir / "stages" / running / "attempt-1"
    attempt = {"number": 1, "argv": ["pipetask", "run"], "cwd": str(far), "pid": 4194000, "start_time": 1.0,
               "pgid": 4194000, "waiter_pid": 4194001, "waiter_start_time": 1.0, "log_path": str(far / "stage.log"),
               "status_path": str(far / "status"), "started_path": str(far / "status.started"), "status": "running"}
    session.dir.mkdir(parents=True)
    (session.dir / "state.json").write_text(json.dumps({
        "schema_version": 1, "repo": str(demo_repo), "plan": str(session.plan), "queue_paused": False,
        "stages": [{"id": queued, "name": queued, "status": "queued"},
                   {"id": running, "name": running, "status": "running", "attempts": [attempt]},
                   {"id": "a", "name": "a", "status": "queued"},
                   {"id": "b", "name": "b", "status": "queued", "depends_on": ["a"]}]}))
    sups = Supervisors(python, session, dict(os.environ))
    try:
        sups.start(None)
        state = session.wait(session.finished, timeout=120, what="every stage to finish")
        with connect(session) as c:
            snap = c.request(Status())
    finally:
        sups.stop()
        session.shutdown()
    assert snap.supervisor_pid == sups.proc.pid, "the first supervisor ran the whole queue"
    by_id = {s["id"]: s for s in state["stages"]}
    assert (by_id["a"]["status"], by_id["b"]["status"]) == ("done", "done")
    assert by_id[queued]["status"] == "failed"
    detail = by_id[queued]["attempts"][0]["detail"]
    assert "300 characters" in detail and "rename it in the plan" in detail and "\n" not in detail
    assert by_id[running]["status"] == "lost"
