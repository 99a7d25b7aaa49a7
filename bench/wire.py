#!/usr/bin/env python
"""Bytes on the wire: what the pfstui app writes to its terminal while a queue runs and nothing changes.

The real ``pfstui`` app runs in a 100x30 pseudo-terminal (TERM=xterm-256color) on the demo repository, its
Queue pane showing the demo plan (22 stages) whose first stage (the demo bias pipeline, a real ``pipetask
run``) is running and held on its first quantum by ``demoDelay`` (so no quanta count changes); the others
wait for it.  Only the running stage's elapsed time should change on screen, once a second.  After the app has
settled (``--settle`` s, not counted) the bytes it writes are counted for ``--duration`` s; the figure is
printed against the goal (<= 1 KiB/s) and against the fewest bytes that can show that clock: one cursor
move and five characters a second.  Measured twice on the same running stage: as started from a local
terminal, and with ``SSH_CONNECTION`` set (the app then lowers its frame rate, ``ssh_fps``).

The stage is started before the app (``pfstui run PLAN --no-wait``) and killed at the end; the demo
repository and every session file live in a temporary folder that is removed.

Usage: python bench/wire.py [--duration 10] [--settle 4]
``main(argv)`` is callable from another bench (bench/ui.py) with the same arguments.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # the harness lives with the tests; the pty reader with the log bench
    sys.path.insert(0, str(ROOT))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from logview import PtyProc

from tests.faults import Session, fault_env

SIZE = (100, 30)
GOAL = 1024.0  # bytes per second
#: A clock cell repainted once a second at its least: a cursor move (``ESC[row;colH``, ~8 bytes) and ``0:42``.
FLOOR = 8 + 5


def one_running_stage(tmp: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """A demo repository and the demo plan (22 stages) whose first stage runs, held on its first quantum."""
    repo = tmp / "repo"
    subprocess.run([sys.executable, "-m", "pfstui", "demo", "--build-only", "--repo", str(repo)], check=True,
                   env=env, stdout=subprocess.DEVNULL)
    plan = tmp / "plan.yaml"
    subprocess.run([sys.executable, "-m", "pfstui", "plan", "new", "--template", "demo", "--repo", str(repo),
                    "-o", str(plan)], check=True, env=env, stdout=subprocess.DEVNULL)
    query = "    query: \"instrument='PFS' AND visit.target_name = 'BIAS'\"\n"
    text = plan.read_text()
    if query not in text:
        raise RuntimeError(f"the demo plan's bias stage changed: {plan} has no line {query.strip()!r}")
    plan.write_text(text.replace(query, query + '    config: ["isr:demoDelay=900"]\n', 1))
    subprocess.run([sys.executable, "-m", "pfstui", "run", str(plan), "--no-wait"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return repo, plan


def wait_running(session: Session, timeout: float = 180.0) -> None:
    """Until the stage runs its quanta (its graph is built and its totals known): then nothing changes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bias = Session.stage(session.state(), "bias")
        progress = (bias.get("attempts") or [{}])[-1].get("quanta", {}).get("progress") or {}
        if bias.get("status") == "running" and progress.get("tasks"):
            return
        if bias.get("status") not in (None, "queued", "running"):
            raise RuntimeError(f"the bias stage ended {bias['status']} before it could be measured")
        time.sleep(0.2)
    raise RuntimeError(f"the bias stage did not reach its quanta within {timeout:g} s")


def bytes_per_second(repo: Path, plan: Path, env: dict[str, str], settle: float, duration: float) -> float:
    """What the app writes to its 100x30 terminal per second once settled."""
    argv = [sys.executable, "-m", "pfstui", "--repo", str(repo), "--plan", str(plan)]
    pty = PtyProc(argv, *SIZE, env=env)
    try:
        time.sleep(settle)
        if pty.proc.poll() is not None:
            raise RuntimeError(f"the app exited ({pty.proc.returncode}) before it was measured")
        t0 = time.time()
        time.sleep(duration)
        t1 = time.time()
        return pty.bytes_between(t0, t1) / (t1 - t0)
    finally:
        pty.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds counted per case (default 10)")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds after start not counted (default 4)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pfstui-wire-", ignore_cleanup_errors=True) as tmpdir:
        tmp = Path(tmpdir)
        env = fault_env(tmp, idle=60)
        env["PFSTUI_CONFIG_DIR"] = str(tmp / "cfg")
        env["TERM"] = "xterm-256color"
        for key in ("SSH_CONNECTION", "TEXTUAL_FPS", "COLORTERM", "TMUX"):
            env.pop(key, None)
        os.environ.update({k: env[k] for k in ("PFSTUI_STATE_DIR", "PFSTUI_DEMO_DIR", "PATH")})
        repo, plan = one_running_stage(tmp, env)
        session = Session(repo, plan)
        try:
            wait_running(session)
            ssh = dict(env, SSH_CONNECTION="10.0.0.1 50000 10.0.0.2 22")
            cases = {"local terminal": env, "SSH_CONNECTION set": ssh}
            figures = {label: bytes_per_second(repo, plan, case, args.settle, args.duration)
                       for label, case in cases.items()}
        finally:
            for action in (["pause"], ["kill", "bias"]):  # paused first: nothing else starts once it ends
                subprocess.run([sys.executable, "-m", "pfstui", "queue", *action, "--plan", str(plan)], check=False,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                session.wait(lambda state: Session.stage(state, "bias")["status"] != "running", timeout=30,
                             what="the bias stage ended")
            finally:
                session.shutdown()
    print(f"bytes to the terminal, pfstui at {SIZE[0]}x{SIZE[1]} with one running stage and nothing else "
          f"changing ({args.duration:g} s after {args.settle:g} s of settling; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}):")
    for label, value in figures.items():
        verdict = "met" if value <= GOAL else "MISSED"
        print(f"  {label + ':':<20} {value:8.0f} B/s = {value / 1024:5.2f} KiB/s (goal <= 1 KiB/s: {verdict}); "
              f"{value / FLOOR:.1f} x the least a ticking clock needs ({FLOOR} B/s)")
    return 0 if all(v <= GOAL for v in figures.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
