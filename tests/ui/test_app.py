"""The app, driven with the Pilot on real demo repositories and a real supervisor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pfstui.ui.app import PfsTuiApp
from pfstui.ui.link import contract
from pfstui.ui.messages import QueueRequest
from pfstui.ui.panes.collections import CollectionsPane
from pfstui.ui.panes.queue import QueuePane
from tests.pg import REGISTRIES
from tests.ui import wait_until


def certify_a_bias(repo: Path) -> None:
    """Put and certify four small biases through the Butler API (as a finished bias stage would)."""
    from astropy.time import Time
    from lsst.daf.butler import Butler, CollectionType, DatasetType, Timespan

    with Butler.from_config(str(repo), writeable=True) as butler:
        dt = DatasetType("bias", ("instrument", "arm", "spectrograph"), "NumpyArray", universe=butler.dimensions,
                         isCalibration=True)
        butler.registry.registerDatasetType(dt)
        run = "u/op/bias/20250301T000000Z"
        butler.collections.register(run, CollectionType.RUN)
        refs = [butler.put(np.zeros((2, 2)), dt, instrument="PFS", arm=a, spectrograph=s, run=run)
                for a in "br" for s in (1, 2)]
        butler.registry.certify("PFS/calib", refs, Timespan(Time("2025-01-01T00:00:00", scale="tai"), None))


@pytest.mark.parametrize("demo_repo", REGISTRIES, indirect=True)
async def test_collections_show_validity_ranges(demo_repo: Path):
    certify_a_bias(demo_repo)
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=(160, 48)) as pilot:
        pane = app.query_one(CollectionsPane)
        await wait_until(pilot, lambda: len(pane._rows) > 0)
        tree = pane.query_one("Tree")
        labels = [str(n.label) for n in tree.root.children]
        assert any(label.startswith("PFS/calib") for label in labels)
        index = next(i for i, n in enumerate(tree.root.children) if str(n.label).startswith("PFS/calib"))
        tree.move_cursor(tree.root.children[index])
        await wait_until(pilot, lambda: "Validity ranges (" in pane.detail_plain, timeout=60)
        text = pane.detail_plain
        assert "bias" in text and "2025-01-01T00:00:00" in text and "+∞" in text


async def test_collections_filter(demo_repo: Path):
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(CollectionsPane)
        await wait_until(pilot, lambda: len(pane._rows) > 0)
        await pilot.press("slash")
        await pilot.press(*"PFS/raw/*")
        tree = pane.query_one("Tree")
        await wait_until(pilot, lambda: len(tree.root.children) == 3)
        assert sorted(str(n.label).split()[0] for n in tree.root.children) == ["PFS/raw/all", "PFS/raw/pfsConfig",
                                                                              "PFS/raw/sps"]


def write_plan(tmp: Path, repo: Path, config: str = "") -> Path:
    plan = tmp / "plan.yaml"
    plan.write_text(f"""version: 1
repository: {repo}
instrument: pfstui.demo.instrument.DemoPrimeFocusSpectrograph
rerun: u/ui
stages:
  - name: bias
    kind: pipetask
    pipeline: ${{PFSTUI_DEMO_DIR}}/pipelines/bias.yaml
    inputs: [PFS/raw/sps, PFS/calib]
    output: bias
    query: "instrument='PFS' AND visit.target_name = 'BIAS'"
    config: [{config}]
  - name: certify-bias
    kind: certify
    after: [bias]
    input: bias
    target: PFS/calib
    dataset_type: bias
    begin: 2000-01-01T00:00:00
""")
    return plan


@pytest.mark.integration
async def test_queue_runs_the_plan_and_shows_progress(demo_repo: Path, tmp_path: Path, state_env):
    plan = write_plan(tmp_path, demo_repo, '"isr:demoDelay=0.3"')
    app = PfsTuiApp(repo=str(demo_repo), plan=str(plan))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(QueuePane)
        await wait_until(pilot, lambda: len(pane.stages()) == 2)
        assert pane.snapshot.state.queue_paused is True
        await pilot.press("r")
        seen_partial = []

        def bias_progress():
            done = sum(t.done for t in pane.stages()[0].progress.tasks.values())
            if 0 < done < 16:
                seen_partial.append(done)
            return done

        await wait_until(pilot, lambda: bias_progress() == 16, timeout=90)
        assert seen_partial, "progress rose while the stage ran"
        await wait_until(pilot, lambda: pane.stages()[1].status == "done", timeout=60)
        table = pane.query_one("DataTable")
        assert "16/16" in str(table.get_cell("bias", "quanta"))
        # open the stage's log from the queue
        table.move_cursor(row=0)
        await pilot.press("l")
        await pilot.pause(0.5)
        assert app.query_one("TabbedContent").active == "logs"


@pytest.mark.integration
async def test_read_only_refuses_every_queue_mutation(demo_repo: Path, tmp_path: Path, state_env):
    plan = write_plan(tmp_path, demo_repo)
    # a writable app loads the plan first, then a read-only one watches
    import pfstui.infra.paths as paths
    from pfstui.queue.protocol import SupervisorClient
    from pfstui.queue.requests import LoadPlan

    sdir = paths.session_dir(str(demo_repo), str(plan))
    with SupervisorClient(sdir) as client:
        client.request(LoadPlan(path=str(plan)))
    app = PfsTuiApp(repo=str(demo_repo), plan=str(plan), read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(QueuePane)
        await wait_until(pilot, lambda: len(pane.stages()) == 2)
        keys = {"r": "run the queue", "ctrl+k": "kill", "R": "restart", "s": "skip", "p": "pause", "u": "resume",
                "a": "add stage", "e": "edit stage", "plus": "change the parallel limit",
                "minus": "change the parallel limit", "y": "approve", "n": "reject"}
        # every key of the pane that changes something, so a new one cannot slip through untested
        mutating = {"queue.run", "queue.pause", "queue.resume", "queue.kill", "queue.restart", "queue.skip",
                    "queue.add", "queue.edit", "queue.parallel_more", "queue.parallel_less", "queue.approve",
                    "queue.reject"}
        assert {b.key for b in QueuePane.BINDINGS if b.id in mutating} == set(keys)
        for key, what in keys.items():
            await pilot.press(key)
            await pilot.pause(0.2)
            assert any(f"Read-only mode: {what} refused" in n.message for n in app._notifications), key
        assert len(app.screen_stack) == 1, "no confirmation is even offered"
        # A request that got past a pane (a bug) is refused by the supervisor: the link said read-only.
        app.post_message(QueueRequest(contract().Run(), "Queue running"))
        await wait_until(pilot, lambda: any("this client said it is read-only" in n.message
                                            for n in app._notifications), timeout=20)
        state = json.loads((sdir / "state.json").read_text())
        assert state["queue_paused"] is True
        assert all(s["status"] == "queued" and not s["attempts"] for s in state["stages"])
        assert "READ-ONLY" in app.sub_title


@pytest.mark.integration
async def test_failed_stage_jumps_to_the_failing_quantum_line(demo_repo: Path, tmp_path: Path, state_env):
    from pfstui.ui.widgets.log_view import LogView

    plan = write_plan(tmp_path, demo_repo, '"isr:demoFailOn=visit:12,arm:r,spectrograph:1"')
    app = PfsTuiApp(repo=str(demo_repo), plan=str(plan))
    async with app.run_test(size=(160, 48)) as pilot:
        pane = app.query_one(QueuePane)
        await wait_until(pilot, lambda: len(pane.stages()) == 2)
        await pilot.press("r")
        await wait_until(pilot, lambda: pane.stages()[0].status == "failed", timeout=90)
        await wait_until(pilot, lambda: pane.stages()[1].status == "dependency-failed", timeout=30)
        pane.query_one("DataTable").move_cursor(row=0)
        await pilot.press("x")  # the failed quanta, and the log opened at the first one
        await pilot.press("escape")
        from pfstui.ui.panes.logs import LogsPanel

        await wait_until(pilot, lambda: bool(app.query(LogsPanel)) and app.query_one(LogsPanel).active_view, timeout=10)
        view = app.query_one(LogsPanel).active_view
        assert isinstance(view, LogView)
        await wait_until(pilot, lambda: view.rows > 0 and not view.follow, timeout=20)
        line = view.row_text(view.cursor)
        assert "failed" in line and "visit: 12" in line and "isr" in line


async def test_a_snapshot_arriving_while_the_app_closes_is_ignored(demo_repo: Path, tmp_path: Path, state_env):
    """The supervisor's last snapshot can land after the Queue pane's table is gone (the app closing): it
    must be dropped, not raise NoMatches out of the app (seen in tests/faults under load)."""
    plan = write_plan(tmp_path, demo_repo, '"isr:demoDelay=0.3"')
    app = PfsTuiApp(repo=str(demo_repo), plan=str(plan))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(QueuePane)
        await wait_until(pilot, lambda: len(pane.stages()) == 2)
        snapshot = pane.snapshot
        await pane.query_one("DataTable").remove()
        pane.update_snapshot(snapshot)  # before the guard: NoMatches
        await pilot.pause()
        assert pane.snapshot is snapshot


@pytest.mark.integration
async def test_a_plan_the_supervisor_cannot_load_is_said_and_stays_said(demo_repo: Path, tmp_path: Path, state_env):
    """The error used to go to the header, replaced at once by the link's "connected": the operator saw an empty
    queue and no reason."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"version: 1\nrepository: {demo_repo}\ninstrument: PFS\nrerun: u/t\nstages: [oops\n")
    app = PfsTuiApp(repo=str(demo_repo), plan=str(plan))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: any(n.message.startswith("The plan was not loaded: ")
                                            for n in app._notifications), timeout=30, what="the plan's error")
        await wait_until(pilot, lambda: app.link_text.startswith("●"), timeout=30, what="the link")
        assert any(str(plan) in n.message for n in app._notifications)


def test_a_plan_that_does_not_exist_is_one_line_before_the_app_starts(tmp_path: Path, capsys):
    from pfstui.cli.main import main

    missing = tmp_path / "nope.yaml"
    assert main(["--repo", str(tmp_path), "--plan", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"pfstui: error: plan {missing} does not exist; check the path, or write one with "
                   f"`pfstui plan new --template pfs -o {missing}`"]
