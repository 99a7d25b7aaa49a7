#!/usr/bin/env python
"""Soak test of issue 7: kill the app 100 times during demo plans and count what was lost.

Each round runs the four-stage demo plan (bias -> certify-bias -> dark -> certify-dark, real pipetask and
butler, -j 1, small demoDelay) on a fresh copy of the demo repository from the real ``pfstui`` app in a
pseudo-terminal, and kills the app at random points (SIGKILL, a destroyed tmux terminal, a closed pty) until
the plan is done; rounds repeat until ``--kills`` kill points were tried (see ``tests/faults/__init__.py``,
``run_kill_soak``).  Then one stage is timed through pfstui against the same argv run from a shell.

Prints: kill points tried, stages lost (goal 0), log lines lost or duplicated (goal 0), time from reopen to
every running stage shown re-attached (goal <= 1 s), stage wall time through pfstui / from a shell (goal
<= 1.05x).  Needs tmux.

Usage: python bench/soak.py [--kills 100] [--seed N] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pfstui.queue.requests import LoadPlan, Run  # noqa: E402 - with the harness's path
from tests.faults import (  # noqa: E402 - the harness lives with the tests
    STAGE_IDS,
    Session,
    exit_status_mismatches,
    fault_env,
    four_stage_plan,
    pipetask_stage,
    run_kill_soak,
    write_plan,
)


def use_env(env: dict[str, str]) -> None:
    for key in ("PATH", "PFSTUI_DEMO_DIR", "PFSTUI_STATE_DIR", "PFSTUI_SUPERVISOR_IDLE"):
        os.environ[key] = env[key]


def soak_round(template: Path, work: Path, kills: int, seed: int) -> tuple[object, list[str]]:
    repo = work / "repo"
    shutil.copytree(template, repo)
    env = fault_env(work)
    use_env(env)
    session = Session(repo, four_stage_plan(work / "plan.yaml", repo))
    try:
        report = run_kill_soak(session, env, min_kills=kills, seed=seed,
                               log=lambda m: print(f"    {m}", flush=True), timeout=900)
    finally:
        session.shutdown()
    state = session.state()
    problems = []
    for sid in STAGE_IDS:
        stage = Session.stage(state, sid)
        if stage["status"] != "done":
            problems.append(f"{sid} ended {stage['status']}")
        if len(stage["attempts"]) != 1:
            problems.append(f"{sid} ran {len(stage['attempts'])} times")
    problems += exit_status_mismatches(state) + session.journal_problems(state) + session.unjournaled_butler_changes()
    return report, problems


def wall_time_ratio(template: Path, work: Path, repeat: int) -> tuple[float, float, float]:
    """Median wall time of the bias stage through pfstui (run request -> done) and from a shell."""
    through, shell = [], []
    for i in range(repeat):
        # through pfstui: a one-stage plan on a fresh repository copy
        wdir = work / f"wall-{i}"
        wdir.mkdir()
        repo = wdir / "repo"
        shutil.copytree(template, repo)
        env = fault_env(wdir)
        use_env(env)
        stage = pipetask_stage("bias", "bias.yaml", "PFS/raw/sps, PFS/calib", "bias",
                               "instrument='PFS' AND visit.target_name = 'BIAS'", ["isr:demoDelay=0.5"])
        session = Session(repo, write_plan(wdir / "plan.yaml", repo, stage))
        client = session.client()
        client.request(LoadPlan(path=str(session.plan)))
        start = time.perf_counter()
        client.request(Run())
        state = session.wait(lambda s: s["stages"][0]["status"] in ("done", "failed"), timeout=300,
                             what="bias to finish")
        through.append(time.perf_counter() - start)
        client.close()
        session.shutdown()
        attempt = state["stages"][0]["attempts"][0]
        assert state["stages"][0]["status"] == "done", attempt.get("detail")
        # from a shell: the very same argv, in a fresh copy, from /bin/sh
        srepo = wdir / "shell-repo"
        shutil.copytree(template, srepo)
        argv = [a.replace(str(repo), str(srepo)) for a in attempt["argv"]]
        cwd = wdir / "shell-cwd"
        cwd.mkdir()
        argv = [a.replace(attempt["cwd"], str(cwd)) for a in argv]
        start = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", shlex.join(argv) + " >shell.log 2>&1"], cwd=cwd, env=env, check=True)
        shell.append(time.perf_counter() - start)
    t, s = statistics.median(through), statistics.median(shell)
    return t, s, t / s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100, help="kill points to try in all (default 100)")
    parser.add_argument("--per-round", type=int, default=20, help="kill points per plan run (default 20)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the wall-time comparison (default 3)")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("bench/soak.py needs tmux", file=sys.stderr)
        return 2
    from pfstui.demo.builder import ensure_demo_repo

    seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    total = 0
    reports, problems = [], []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pfstui-soak-") as tmp:
        base = Path(tmp)
        template = base / "template"
        ensure_demo_repo(template)
        n = 0
        while total < args.kills:
            n += 1
            want = min(args.per_round, args.kills - total)
            print(f"round {n}: at least {want} kill points, until the plan ends (seed {seed + n})", flush=True)
            work = base / f"round-{n}"
            work.mkdir()
            report, round_problems = soak_round(template, work, want, seed + n)
            reports.append(report)
            problems += [f"round {n}: {p}" for p in round_problems]
            total += report.kill_points
        soak_seconds = time.perf_counter() - t0
        through, shell, ratio = wall_time_ratio(template, base, args.repeat)

    reattach = [x for r in reports for x in r.reattach_seconds]
    lost = [x for r in reports for x in r.stages_lost] + [p for p in problems if "ended" in p or "ran" in p]
    log_bad = [x for r in reports for x in r.log_mismatches]
    screens = [x for r in reports for x in r.screen_mismatches]
    print()
    methods = Counter()
    for r in reports:
        methods.update(r.kills_by_method)
    print(f"kill points tried:                         {total} in {len(reports)} plan runs ({soak_seconds:.0f} s; "
          + ", ".join(f"{k} {v}" for k, v in methods.items())
          + f"; {sum(r.kills_during_plan for r in reports)} before the plan ended, "
          f"{sum(r.kills_while_running for r in reports)} while a stage ran)")
    print(f"stages lost (goal 0):                      {len(lost)}")
    print(f"log lines lost or duplicated (goal 0):     {len(log_bad)} views off, in "
          f"{sum(r.log_checks for r in reports)} log views of "
          f"{sum(r.log_lines_compared for r in reports)} lines compared")
    frames = [x for r in reports for x in r.first_frame_seconds if x == x]
    print(f"reopen -> every running stage re-attached: median {statistics.median(reattach):.2f} s, "
          f"max {max(reattach):.2f} s over {len(reattach)} reopens (goal <= 1 s; from the app's exec)")
    print(f"  of which the app's start-up to its first frame: median {statistics.median(frames):.2f} s, "
          f"max {max(frames):.2f} s")
    print(f"screen checks failed:                      {len(screens)} of {sum(r.reopen_checks for r in reports) + len(screens)}")
    print(f"supervisor restarted by an app kill:       {sum(len(r.supervisor_restarts) for r in reports)}")
    print(f"stage wall time, pfstui / shell:           {through:.2f} s / {shell:.2f} s = {ratio:.3f}x "
          f"(goal <= 1.05x; median of {args.repeat})")
    for p in problems + log_bad + screens[:3]:
        print(f"PROBLEM: {p}")
    return 1 if (problems or lost or log_bad or screens) else 0


if __name__ == "__main__":
    sys.exit(main())
