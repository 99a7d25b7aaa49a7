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
script that records each start (its attempt folder) and exits: a real run would cost seconds per round.  The
supervisor runs from a copy of this venv's layout (symlinks) whose ``bin`` holds that script, which is where
:class:`pfstui.plan.argv.Tools` looks first.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pfstui.queue.requests import LoadPlan, Run, Status
from tests.faults import Session, apply_env, fault_env, pipetask_stage, write_plan

pytestmark = pytest.mark.integration

KILLS = 50
STAGES = 50
POINTS = ("launch-intent", "launch-started", "launch-spawned", "timed")
QUERY = "instrument='PFS' AND visit.target_name = 'BIAS'"


def fake_venv(root: Path, runs: Path) -> Path:
    """A venv-shaped folder running this venv's Python and packages, with a ``pipetask`` that records its start."""
    bindir = root / "bin"
    bindir.mkdir(parents=True)
    (bindir / "python").symlink_to(os.path.realpath(sys.executable))
    shutil.copy(Path(sys.prefix) / "pyvenv.cfg", root / "pyvenv.cfg")
    (root / "lib").symlink_to(Path(sys.prefix) / "lib")
    script = bindir / "pipetask"
    script.write_text(f'#!/bin/sh\necho "$PWD $$" >> {runs}\nsleep 0.1\n')
    script.chmod(0o755)
    return bindir / "python"


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
