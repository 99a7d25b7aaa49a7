"""A ``backend: bps`` stage in the app: failed although bps exited 0, its failure opens the failing job's log
at the failing line, `j` lists the job logs, and the details show the exact submit file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfstui.ui.app import PfsTuiApp
from pfstui.ui.panes.queue import QueuePane
from tests.ui import wait_until

pytestmark = pytest.mark.integration
pytest.importorskip("lsst.ctrl.bps.parsl", reason="the bps extra is not installed (pip install '.[bps]')")


def bps_plan(tmp_path: Path, repo: Path) -> Path:
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"""version: 1
repository: {repo}
instrument: pfstui.demo.instrument.DemoPrimeFocusSpectrograph
rerun: u/ui
bps_sites:
  local: {{class: lsst.ctrl.bps.parsl.sites.Local, cores: 2}}
stages:
  - name: bias
    kind: pipetask
    pipeline: ${{PFSTUI_DEMO_DIR}}/pipelines/bias.yaml
    inputs: [PFS/raw/sps, PFS/calib]
    output: bias
    query: "instrument='PFS' AND visit.target_name = 'BIAS'"
    config: ["isr:demoFailOn=visit:12,arm:r,spectrograph:1"]
    backend: bps
    bps: {{cluster_by: [arm, spectrograph]}}
""")
    return plan


async def test_bps_failure_opens_the_job_log(demo_repo: Path, tmp_path: Path, state_env):
    from pfstui.ui.panes.logs import LogsPanel
    from pfstui.ui.screens.confirm import TextScreen
    from pfstui.ui.screens.job_logs import JobLogsScreen

    app = PfsTuiApp(repo=str(demo_repo), plan=str(bps_plan(tmp_path, demo_repo)))
    async with app.run_test(size=(160, 48)) as pilot:
        pane = app.query_one(QueuePane)
        await wait_until(pilot, lambda: len(pane.stages()) == 1)
        await pilot.press("r")
        await wait_until(pilot, lambda: pane.stages()[0].status == "failed", timeout=400)
        attempt = pane.stages()[0].attempts[-1]
        failure = attempt.progress.failures[0]
        assert failure.log_path.startswith(attempt.bps.submit_dir)

        pane.query_one("DataTable").move_cursor(row=0)
        await pilot.press("x")  # the failed quanta, and the failing job's log opened at the failure
        await pilot.press("escape")
        await wait_until(pilot, lambda: bool(app.query(LogsPanel)) and app.query_one(LogsPanel).active_view, timeout=10)
        view = app.query_one(LogsPanel).active_view
        assert str(view.path) == failure.log_path
        await wait_until(pilot, lambda: view.rows > 0 and not view.follow, timeout=20)
        line = view.row_text(view.cursor)
        assert "visit: 12" in line and "arm: 'r'" in line

        # every job's log is reachable: `L` lists them, the failed one first
        app.action_show_pane("queue")
        await pilot.pause(0.3)
        pane.query_one("DataTable").focus()
        await pilot.press("L")
        await wait_until(pilot, lambda: isinstance(app.screen, JobLogsScreen), timeout=5)
        options = app.screen.query_one("OptionList")
        await wait_until(pilot, lambda: options.option_count > 1, timeout=10)
        # four camera jobs, plus the init and final jobs
        assert options.option_count == 6
        assert str(options.get_option_at_index(0).prompt).startswith("FAILED ")
        assert options.get_option_at_index(0).id == failure.log_path
        await pilot.press("down", "enter")  # another job's log opens in a tab of its own
        await wait_until(pilot, lambda: len(app.query_one(LogsPanel)._views) == 2, timeout=10)

        app.action_show_pane("queue")
        await pilot.pause(0.3)
        pane.query_one("DataTable").focus()
        await pilot.press("enter")  # details: where bps runs and the exact submit file
        await wait_until(pilot, lambda: isinstance(app.screen, TextScreen), timeout=5)
        body = app.screen.body
        assert f"submit file {attempt.bps.submit_file}:" in body
        assert "wmsServiceClass: lsst.ctrl.bps.parsl.ParslService" in body
        assert "isr:demoFailOn=visit:12,arm:r,spectrograph:1" in body


async def test_queued_stage_details_show_the_exact_next_command(demo_repo: Path, tmp_path: Path,
                                                                 state_env):
    """Before a bps stage runs, its details show the exact `bps submit` and the submit file it will write."""
    from pfstui.ui.screens.confirm import TextScreen

    app = PfsTuiApp(repo=str(demo_repo), plan=str(bps_plan(tmp_path, demo_repo)))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(QueuePane)
        await wait_until(pilot, lambda: len(pane.stages()) == 1)
        pane.query_one("DataTable").focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, TextScreen), timeout=5)
        body = app.screen.body
        session = pane.snapshot.session
        submit_file = f"{session}/stages/bias/attempt-1/bps-submit.yaml"
        assert f"bps submit {submit_file}" in body.replace(" \\\n", " ")
        assert f"{submit_file}:" in body and "dataQuery: instrument='PFS' AND visit.target_name = 'BIAS'" in body
        assert "-c isr:demoFailOn=visit:12,arm:r,spectrograph:1" in body
