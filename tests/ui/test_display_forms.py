"""Display errors of issue 15 in panes and dialogs, at 80x24 and 160x48: titles are text (never markup), stage
names and journal actions are shown whole, the Certify form is filled from the open repository (not PFS), and
Escape in the add-stage editor asks before it throws edits away."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App

from pfstui.infra.journal import Journal
from pfstui.plan.edit import read_plan_file, stage_templates
from pfstui.plan.variables import stage_env
from pfstui.queue.requests import Snapshot
from pfstui.queue.state import QueueState
from pfstui.ui.app import PfsTuiApp
from pfstui.ui.panes.certify import CertifyPane
from pfstui.ui.panes.queue import QueuePane
from pfstui.ui.screens.add_stage import AddStageScreen
from pfstui.ui.screens.confirm import ConfirmScreen
from tests.ui import plan_app, screen_lines, wait_until
from tests.ui.test_addstage import pick, write_plan

SIZES = [(80, 24), (160, 48)]
sizes = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
DATA = Path(__file__).resolve().parents[1] / "data"


@sizes
async def test_confirm_title_is_text_not_markup(tmp_path: Path, size):
    title = "Apply: certify 4 bias for [2025-01-01T00:00:00, ∞)"
    app = PfsTuiApp(repo=None, connect=False)
    async with app.run_test(size=size) as pilot:
        app.push_screen(ConfirmScreen(title, "[b]body[/b] stays as written"))
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        shown = "\n".join(screen_lines(app))
        assert title in shown and "[/b]" not in shown.replace("[b]body[/b]", "")


def recorded_snapshot(tmp_path: Path) -> Snapshot:
    state = QueueState.model_validate_json((DATA / "state" / "demo-run.json").read_text())
    return Snapshot(version=1, session=str(tmp_path / "session"), supervisor_pid=1, state=state)


@sizes
async def test_stage_names_in_full(tmp_path: Path, size):
    app = plan_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        pane = app.query_one(QueuePane)
        pane.update_snapshot(recorded_snapshot(tmp_path))
        await pilot.pause()
        table = pane.query_one("DataTable")
        table.move_cursor(row=len(pane.stages()) - 1)  # the last stages in view at 80x24
        await pilot.pause(0.2)
        lines = screen_lines(app)
        assert any(" clean-fitFiberProfiles " in line for line in lines), "\n".join(lines)
        assert any(" certify-fiberProfiles " in line for line in lines)


@sizes
async def test_journal_shows_whole_action_names(demo_repo: Path, tmp_path: Path, monkeypatch, size):
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    journal = Journal(tmp_path / "state" / "journal.jsonl")
    for action in ("define-profiles", "certify-detectormaps", "remove-collections"):
        journal.append({"kind": "butler", "action": action, "repository": str(demo_repo), "undoable": False,
                        "summary": "a change to the demo repository"})
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("4")
        pane = app.query_one(CertifyPane)
        await wait_until(pilot, lambda: len(pane.journal_entries) == 3, timeout=60)
        await pilot.pause()
        shown = "\n".join(screen_lines(app))
        for action in ("define-profiles", "certify-detectormaps", "remove-collections"):
            assert f" {action} " in shown, shown


def latiss_repo(root: Path) -> Path:
    """A repository of another instrument (the default dimension universe): LATISS, with LATISS/calib."""
    from lsst.daf.butler import Butler, CollectionType

    Butler.makeRepo(str(root))
    with Butler.from_config(str(root), writeable=True) as butler:
        butler.registry.insertDimensionData("instrument", {"name": "LATISS", "visit_max": 99999, "exposure_max": 99999,
                                                           "detector_max": 1, "class_name": "lsst.obs.lsst.Latiss",
                                                           "visit_system": 0})
        butler.collections.register("LATISS/calib", CollectionType.CALIBRATION)
        butler.collections.register("LATISS/raw/all", CollectionType.RUN)
    return root


@sizes
async def test_certify_form_is_filled_from_the_repository(tmp_path: Path, size):
    repo = latiss_repo(tmp_path / "latiss")
    app = PfsTuiApp(repo=str(repo), connect=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("4")
        pane = app.query_one(CertifyPane)
        target = pane.query_one("#f-target")
        await wait_until(pilot, lambda: target.value, timeout=60, what="the target filled from the repository")
        assert target.value == "LATISS/calib"
        await pilot.pause()
        hints = [pane.query_one(f"#f-{name}").placeholder for name in ("data_ids", "where", "target")]
        assert "instrument=LATISS" in hints[0] and "instrument='LATISS'" in hints[1]
        assert not any("PFS" in hint for hint in hints), hints
        shown = "\n".join(screen_lines(app))
        assert "LATISS/calib" in shown and "PFS" not in shown


@sizes
async def test_escape_asks_before_discarding_edits(demo_repo: Path, tmp_path: Path, state_env, size):
    plan, original = write_plan(tmp_path, demo_repo)
    plan_file = read_plan_file(plan, env=stage_env())
    screen = AddStageScreen(plan_file, stage_templates(plan_file.plan, text=plan_file.text, env=stage_env()))
    app = App()
    async with app.run_test(size=size) as pilot:
        await app.push_screen(screen)
        await pick(pilot, screen, "demo:dark")
        editor = screen.query_one("#addstage-text")
        editor.focus()
        await pilot.press("end", *" # mine")
        assert editor.text.endswith("# mine") or "# mine" in editor.text
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert any("Discard your edits to dark?" in line for line in screen_lines(app))
        await pilot.press("n")  # keep editing: nothing lost
        await wait_until(pilot, lambda: app.screen is screen)
        assert "# mine" in editor.text
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: app.screen is not screen and not isinstance(app.screen, ConfirmScreen))
    assert plan.read_text() == original


@sizes
async def test_escape_without_edits_leaves_at_once(demo_repo: Path, tmp_path: Path, state_env, size):
    plan, _ = write_plan(tmp_path, demo_repo)
    plan_file = read_plan_file(plan, env=stage_env())
    screen = AddStageScreen(plan_file, stage_templates(plan_file.plan, text=plan_file.text, env=stage_env()))
    app = App()
    async with app.run_test(size=size) as pilot:
        await app.push_screen(screen)
        await pick(pilot, screen, "demo:dark")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is not screen)
        assert not isinstance(app.screen, ConfirmScreen)
