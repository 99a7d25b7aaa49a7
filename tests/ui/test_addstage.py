"""Adding a stage from a template in the Queue pane, with the Pilot, a real demo repository and supervisor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pfstui.infra.paths as paths
from pfstui.plan.edit import backup_path
from pfstui.queue.protocol import SupervisorClient
from pfstui.queue.requests import LoadPlan
from pfstui.ui.app import PfsTuiApp
from pfstui.ui.panes.queue import QueuePane
from pfstui.ui.screens.add_stage import AddStageScreen
from tests.ui import wait_until

pytestmark = pytest.mark.integration


def write_plan(tmp: Path, repo: Path) -> tuple[Path, str]:
    """A demo plan as an operator keeps it: comments everywhere, and `defaults` after the stages."""
    text = f"""\
# Demo night, bias only for now.  (operator's note: keep me)
version: 1
repository: {repo}
instrument: pfstui.demo.instrument.DemoPrimeFocusSpectrograph
rerun: u/ui          # my rerun
stages:
  # ---- Bias ----
  - name: bias
    kind: pipetask
    pipeline: ${{PFSTUI_DEMO_DIR}}/pipelines/bias.yaml
    inputs: [PFS/raw/sps, PFS/calib]
    output: bias
    query: "instrument='PFS' AND visit.target_name = 'BIAS'"
  - name: certify-bias
    kind: certify
    after: [bias]
    input: bias
    target: PFS/calib
    dataset_type: bias
    begin: 2000-01-01T00:00:00

# processes: 1 keeps the demo quick
defaults:
  processes: 1
"""
    plan = tmp / "plan.yaml"
    plan.write_text(text)
    return plan, text


async def open_add_stage(app: PfsTuiApp, pilot) -> AddStageScreen:
    pane = app.query_one(QueuePane)
    await wait_until(pilot, lambda: len(pane.stages()) == 2)
    await pilot.press("a")
    await wait_until(pilot, lambda: isinstance(app.screen, AddStageScreen))
    return app.screen


async def pick(pilot, screen: AddStageScreen, option_id: str) -> None:
    options = screen.query_one("#addstage-list")
    options.highlighted = options.get_option_index(option_id)
    await pilot.pause()
    options.focus()
    await pilot.press("enter")
    await wait_until(pilot, lambda: screen.has_class("-editing"))


async def test_add_a_template_stage_to_the_queue(demo_repo: Path, tmp_path: Path, state_env):
    plan, original = write_plan(tmp_path, demo_repo)
    app = PfsTuiApp(repo=str(demo_repo), plan=str(plan))
    async with app.run_test(size=(100, 30)) as pilot:
        assert app._plan_stage_options("bias")["kind"] == "pipetask"  # the app has read the plan once
        screen = await open_add_stage(app, pilot)
        options = screen.query_one("#addstage-list")
        # the demo template's stages, each with what it does on one line
        assert options.option_count == 28  # 7 products, 6 of them verified before their certify
        first = str(options.get_option_at_index(0).prompt)
        assert first.startswith("bias") and "run bias.yaml on instrument='PFS'" in first and "u/ui/bias" in first
        await pick(pilot, screen, "demo:dark")
        editor = screen.query_one("#addstage-text")
        assert editor.text.startswith("name: dark\nkind: pipetask\n")
        # certify-bias exists in the plan, so the template's `after` is kept
        assert "after: [certify-bias]\n" in editor.text
        editor.text = editor.text.replace("\nquery:", "\n# my own comment on the new stage\nquery:")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, AddStageScreen))

        pane = app.query_one(QueuePane)
        await wait_until(pilot, lambda: [s.id for s in pane.stages()] == ["bias", "certify-bias", "dark"])
        dark = pane.stages()[2]
        assert dark.status == "queued" and not dark.attempts and dark.depends_on == ["certify-bias"]
        table = pane.query_one("DataTable")
        assert str(table.get_cell("dark", "status")) == "queued"
        await wait_until(pilot, lambda: any("Added stage dark" in n.message for n in app._notifications))
        # the restart editor of the new stage starts from its options: the app read the changed plan again
        assert app._plan_stage_options("dark")["pipeline"].endswith("/pipelines/dark.yaml")

    text = plan.read_text()
    head, tail = original.split("\n# processes: 1 keeps the demo quick\n")
    assert text.startswith(head + "  - name: dark\n    kind: pipetask\n    after: [certify-bias]\n")
    assert "    # my own comment on the new stage\n    query:" in text
    assert text.endswith("\n# processes: 1 keeps the demo quick\n" + tail)
    assert backup_path(plan).read_text() == original
    # the supervisor kept it, queued, and the queue still waits for "run"
    state = json.loads((paths.session_dir(str(demo_repo), str(plan)) / "state.json").read_text())
    assert [s["id"] for s in state["stages"]] == ["bias", "certify-bias", "dark"]
    assert state["queue_paused"] is True


async def test_a_bad_edit_shows_the_problem_and_leaves_the_file_alone(demo_repo: Path, tmp_path: Path, state_env):
    plan, original = write_plan(tmp_path, demo_repo)
    app = PfsTuiApp(repo=str(demo_repo), plan=str(plan))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_add_stage(app, pilot)
        await pick(pilot, screen, "demo:bias")
        editor = screen.query_one("#addstage-text")
        assert editor.text.startswith("name: bias-2\n")  # 'bias' is taken
        editor.text = editor.text.replace("output: bias", "outptu: bias")
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert app.screen is screen, "the editor stays open with the text to fix"
        error = str(screen.query_one("#addstage-error").render())
        assert "new stage:5: stage 'bias-2': unknown field 'outptu' (did you mean 'output'?)" in error
        assert "Traceback" not in error
        assert plan.read_text() == original and not backup_path(plan).exists()
        # fixed, it goes in
        editor.text = editor.text.replace("outptu: bias", "output: bias")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen is not screen)
        pane = app.query_one(QueuePane)
        await wait_until(pilot, lambda: [s.id for s in pane.stages()][-1:] == ["bias-2"])
        assert pane.stages()[-1].status == "queued"

        # escape cancels without touching the file
        written = plan.read_text()
        screen = await open_add_stage_again(app, pilot)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is not screen)
        assert plan.read_text() == written


async def open_add_stage_again(app: PfsTuiApp, pilot) -> AddStageScreen:
    app.query_one(QueuePane).focus_main()
    await pilot.press("a")
    await wait_until(pilot, lambda: isinstance(app.screen, AddStageScreen))
    return app.screen


async def test_read_only_refuses_to_add_a_stage(demo_repo: Path, tmp_path: Path, state_env):
    plan, original = write_plan(tmp_path, demo_repo)
    sdir = paths.session_dir(str(demo_repo), str(plan))
    with SupervisorClient(sdir) as client:
        client.request(LoadPlan(path=str(plan)))
    app = PfsTuiApp(repo=str(demo_repo), plan=str(plan), read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(QueuePane)
        await wait_until(pilot, lambda: len(pane.stages()) == 2)
        await pilot.press("a")
        await pilot.pause(0.2)
        assert len(app.screen_stack) == 1, "no editor is even offered"
        assert any("Read-only mode: add stage refused" in n.message for n in app._notifications)
    assert plan.read_text() == original and not backup_path(plan).exists()


async def test_a_broken_plan_file_is_reported_not_edited(demo_repo: Path, tmp_path: Path, state_env):
    plan, original = write_plan(tmp_path, demo_repo)
    app = PfsTuiApp(repo=str(demo_repo), plan=str(plan))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(QueuePane)
        await wait_until(pilot, lambda: len(pane.stages()) == 2)
        broken = original.replace("output: bias", "outptu: bias")
        plan.write_text(broken)
        await pilot.press("a")
        await pilot.pause(0.2)
        assert len(app.screen_stack) == 1
        assert any("unknown field 'outptu'" in n.message for n in app._notifications)
    assert plan.read_text() == broken


async def test_no_plan_loaded_says_so(demo_repo: Path, tmp_path: Path):
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        # The app shows no Queue pane without a plan; a pane mounted anyway (e.g. a plan whose supervisor
        # has none) says there is nothing to add to.
        app.plan = None
        pane = QueuePane()
        await app.query_one("#queue").mount(pane)
        await pilot.pause()
        pane.action_add_stage()
        await pilot.pause()
        assert len(app.screen_stack) == 1
        assert any("No plan is loaded" in n.message for n in app._notifications)
