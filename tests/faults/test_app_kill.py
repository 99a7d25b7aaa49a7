"""The app dies with the operator's SSH link: SIGKILL, or its terminal closed (SIGHUP), at random points.

One four-stage demo plan (bias -> certify-bias -> dark -> certify-dark, real ``pipetask``/``butler``) is
run from the real ``pfstui`` app in a pseudo-terminal while the app is killed at least 20 times: SIGKILL
of the app, its tmux terminal destroyed, or a bare pty's master closed (the kernel's hang-up).  Each reopen
is checked against the durable state (see :func:`tests.faults.run_kill_soak`).  The run is shared by all
kill points, so the whole test is about one plan's duration.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.faults import (
    EXPECTED_QUANTA,
    STAGE_IDS,
    Session,
    apply_env,
    exit_status_mismatches,
    fault_env,
    four_stage_plan,
    run_kill_soak,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux to read the app's screen"),
]

KILL_POINTS = 20


def test_app_killed_or_hung_up_at_20_random_points_loses_nothing(demo_repo: Path, tmp_path: Path, monkeypatch):
    env = fault_env(tmp_path)
    apply_env(env, monkeypatch.setenv)
    plan = four_stage_plan(tmp_path / "plan.yaml", demo_repo)
    session = Session(demo_repo, plan)
    try:
        report = run_kill_soak(session, env, min_kills=KILL_POINTS, timeout=240)
    finally:
        session.shutdown()
    context = f"(seed {report.seed}; replay with the same seed)\n" + "\n".join(report.events[-8:])

    # The faults really happened, of every kind, and mostly while a stage ran.
    assert report.kill_points >= KILL_POINTS
    assert report.kills_by_method["sigkill"] >= 5, report.kills_by_method
    assert report.kills_by_method["close-tmux"] >= 2 and report.kills_by_method["close-pty"] >= 2, \
        report.kills_by_method
    assert report.kills_during_plan >= KILL_POINTS * 3 // 5, context
    assert report.kills_while_running >= KILL_POINTS // 2, context

    # 1./2. Nothing else died with the app; every reopen showed the true queue and the logs continued.
    assert report.apps_surviving == [], report.apps_surviving
    assert report.stages_lost == [], report.stages_lost
    assert report.supervisor_restarts == [], report.supervisor_restarts
    assert report.screen_mismatches == [], report.screen_mismatches[0] + context
    assert report.reopen_checks >= KILL_POINTS // 2
    assert report.reattach_seconds, "some reopen happened while a stage ran"
    assert report.log_mismatches == [], report.log_mismatches
    assert report.log_checks >= 1, "the log view was checked at least once"

    # The plan went on: every stage done exactly once, with its true exit status and quanta counts.
    state = session.state()
    for sid in STAGE_IDS:
        stage = Session.stage(state, sid)
        assert stage["status"] == "done", (sid, stage["status"])
        assert len(stage["attempts"]) == 1, f"{sid} was run {len(stage['attempts'])} times"
    assert exit_status_mismatches(state) == []
    for sid, tasks in EXPECTED_QUANTA.items():
        progress = Session.stage(state, sid)["attempts"][0]["quanta"]["progress"]["tasks"]
        assert {label: (t["done"], t["total"]) for label, t in progress.items()} == \
            {label: (n, n) for label, n in tasks.items()}, sid

    # 7. The journal tells the whole story, and every Butler change is in it.
    assert session.journal_problems(state) == []
    assert session.unjournaled_butler_changes() == []
