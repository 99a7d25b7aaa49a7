"""Editing a queued stage (``e``, or ``R`` on a queued stage) and restarting a failed one (``R``) in the Queue
pane, with the Pilot, a real demo repository and supervisor: the edit is written into the plan file and the
attempt runs it; a restart runs only the quanta that did not succeed unless a full rerun is ticked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pfstui.plan.edit import backup_path
from pfstui.ui.app import PfsTuiApp
from pfstui.ui.panes.queue import QueuePane
from pfstui.ui.screens.confirm import ConfirmScreen
from pfstui.ui.screens.stage_options import RestartEditor, StageEditor
from tests.ui import wait_until
from tests.ui.test_addstage import write_plan

pytestmark = pytest.mark.integration

FAIL_R1 = "isr:demoFailOn=arm:r,spectrograph:1"


async def open_editor(app: PfsTuiApp, pilot, key: str, kind: type) -> object:
    app.query_one(QueuePane).focus_main()
    app.query_one(QueuePane).query_one("DataTable").move_cursor(row=0)
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(app.screen, kind), what=kind.__name__)
    return app.screen


def inside(widget, size: tuple[int, int]) -> bool:
    region = widget.region
    return region.width > 0 and region.right <= size[0] and region.bottom <= size[1]


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_edit_a_queued_stage_then_restart_only_what_failed(demo_repo: Path, tmp_path: Path, state_env,
                                                                 size: tuple[int, int]):
    plan, original = write_plan(tmp_path, demo_repo)
    app = PfsTuiApp(repo=str(demo_repo), plan=str(plan))
    async with app.run_test(size=size) as pilot:
        pane = app.query_one(QueuePane)
        await wait_until(pilot, lambda: len(pane.stages()) == 2, what="the queue")
        editor = await open_editor(app, pilot, "e", StageEditor)
        assert inside(editor.query_one("#options-ok"), size) and inside(editor.query_one("#options-text"), size)
        text = editor.query_one("#options-text")
        options = yaml.safe_load(text.text)
        assert options["query"] == "instrument='PFS' AND visit.target_name = 'BIAS'" and options["config"] == []
        text.text = text.text.replace("config: []", f"config:\n- {FAIL_R1}") + "fail_fast: false\n"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, StageEditor), what="the edit saved")
        # the supervisor read the plan again: what the queued stage runs next has the change
        await wait_until(pilot, lambda: FAIL_R1 in pane.snapshot.next_runs["bias"].argv, what="the new next run")
        shown = pane.snapshot.next_runs["bias"].argv
        assert "--fail-fast" not in shown and "--skip-existing-in" not in shown
        assert any("Saved bias in plan.yaml" in n.message for n in app._notifications)

        await pilot.press("r")
        await wait_until(pilot, lambda: pane.stages()[0].status == "failed", timeout=120, what="bias failing on r1")
        assert pane.stages()[0].attempts[0].argv == shown, "the attempt ran the edit, exactly as shown"

        # R on the failed stage: a full rerun is one tick away (here looked at, then cancelled) ...
        editor = await open_editor(app, pilot, "R", RestartEditor)
        assert inside(editor.query_one("#options-full"), size)
        editor.query_one("#options-full").value = True
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        assert "every quantum again (full rerun)" in app.screen.body
        await pilot.press("n")
        # ... and the default runs only the quanta that did not succeed: r1's four
        editor = await open_editor(app, pilot, "R", RestartEditor)
        assert yaml.safe_load(editor.query_one("#options-text").text)["config"] == [FAIL_R1]
        text = editor.query_one("#options-text")
        text.text = text.text.replace(f"config:\n- {FAIL_R1}", "config: []")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        assert "only the quanta that did not succeed" in app.screen.body
        await pilot.press("y")
        await wait_until(pilot, lambda: len(pane.stages()[0].attempts) == 2 and pane.stages()[0].status == "done",
                         timeout=120, what="the restarted bias")
        second = pane.stages()[0].attempts[1]
        assert second.argv[second.argv.index("--skip-existing-in") + 1] == "u/ui/bias"
        table = pane.query_one("DataTable")
        await wait_until(pilot, lambda: "4/4" in str(table.get_cell("bias", "quanta")), what="4 quanta run")
        await pilot.press("e")  # a stage that ran is not edited: its next attempt is a restart
        await pilot.pause(0.2)
        assert len(app.screen_stack) == 1
        assert any("Only a queued stage can be edited" in n.message for n in app._notifications)

    text = plan.read_text()
    assert text == original.replace(
        "    query: \"instrument='PFS' AND visit.target_name = 'BIAS'\"\n",
        f"    query: \"instrument='PFS' AND visit.target_name = 'BIAS'\"\n    config: ['{FAIL_R1}']\n"
        "    fail_fast: false\n")
    assert backup_path(plan).read_text() == original


async def test_restart_key_on_a_queued_stage_edits_it_and_a_file_changed_meanwhile_is_kept(
        demo_repo: Path, tmp_path: Path, state_env):
    plan, original = write_plan(tmp_path, demo_repo)
    app = PfsTuiApp(repo=str(demo_repo), plan=str(plan))
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(QueuePane)
        await wait_until(pilot, lambda: len(pane.stages()) == 2, what="the queue")
        editor = await open_editor(app, pilot, "R", StageEditor)  # nothing to restart: its options are edited
        changed = original.replace("# Demo night", "# Demo night (edited in vi meanwhile)")
        plan.write_text(changed)
        text = editor.query_one("#options-text")
        text.text = text.text.replace("processes: null", "processes: 3")
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert app.screen is editor, "the editor stays open"
        assert "the plan file changed on disk since it was opened" in str(editor.query_one("#options-error").render())
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is not editor, what="the editor closed")
        argv = pane.snapshot.next_runs["bias"].argv
        assert argv[argv.index("-j") + 1] == "1", "nothing changed"
    assert plan.read_text() == changed and not backup_path(plan).exists()
