"""The app exits with its terminal: closed pty (SIGHUP), or SIGHUP ignored (``nohup``) and only the end of the
terminal left to tell it, in every state: idle, a modal open, workers running, its supervisor link down.

Twenty closes in a row, each of a real ``pfstui`` on a bare pty (:class:`tests.faults.ptyapp.PtyApp`); run it
beside other tests under ``pytest -n 2`` for the load the close-pty fault failed under.  The supervisor and
its queue must not care.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.faults import Session, apply_env, fault_env, four_stage_plan
from tests.faults.ptyapp import PtyApp, pfstui_argv

pytestmark = pytest.mark.integration

CLOSES = 20
STATES = ("idle", "modal", "workers", "link-down")


def bring_to(app: PtyApp, state: str, session: Session) -> int | None:
    """Put the app in ``state``; returns a supervisor pid that was stopped (to continue after the close)."""
    assert app.wait_output("connected", timeout=60), f"the app never connected ({state})"
    if state == "modal":
        app.type("\x10")  # ctrl+p: the command palette
    elif state == "workers":
        app.type("1")  # the Collections pane: its tree is read from the Butler in a worker
        return None
    elif state == "link-down":
        (pid,) = session.supervisor_pids()
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.5)
        return pid
    time.sleep(0.5)
    return None


def test_the_app_exits_with_its_terminal_20_times_in_a_row(demo_repo: Path, tmp_path: Path, monkeypatch):
    env = fault_env(tmp_path)
    apply_env(env, monkeypatch.setenv)
    session = Session(demo_repo, four_stage_plan(tmp_path / "plan.yaml", demo_repo))
    argv = pfstui_argv(session.repo, session.plan)
    outlived: list[str] = []
    closes: Counter[str] = Counter()
    try:
        for n in range(CLOSES):
            state, nohup = STATES[n % len(STATES)], (n // len(STATES)) % 2 == 1
            what = f"close {n + 1}: {state}{', SIGHUP ignored' if nohup else ''}"
            app = PtyApp(argv, env, sighup_ignored=nohup).start()
            stopped = None
            try:
                stopped = bring_to(app, state, session)
                app.close_terminal()
                if app.wait_gone(10) is None:
                    outlived.append(what)
                closes[f"{state}{'+nohup' if nohup else ''}"] += 1
            finally:
                if stopped is not None:
                    os.kill(stopped, signal.SIGCONT)
                app.stop()
        print(f"\napp hang-ups: {sum(closes.values())} closes, {len(outlived)} outlived: {dict(closes)}")
        assert outlived == [], outlived
        assert len(session.supervisor_pids()) == 1, "the supervisor outlives every terminal"
    finally:
        session.shutdown()
