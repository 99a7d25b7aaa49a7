"""The Certify pane on a real demo repository: inline validation, preview with conflicts, confirm and
apply, the journal, undo, and read-only refusal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pfstui.ui.app import PfsTuiApp
from pfstui.ui.panes.certify import CertifyPane
from pfstui.ui.screens.confirm import ConfirmScreen

from tests.pg import REGISTRIES

from . import wait_until
from .test_app import certify_a_bias


def second_bias_run(repo: Path) -> str:
    from lsst.daf.butler import Butler, CollectionType

    run = "u/op/bias/20260101T000000Z"
    with Butler.from_config(str(repo), writeable=True) as butler:
        butler.collections.register(run, CollectionType.RUN)
        for a in "br":
            for s in (1, 2):
                butler.put(np.ones((2, 2)), "bias", instrument="PFS", arm=a, spectrograph=s, run=run)
    return run


def associations(repo: Path) -> list[tuple]:
    from lsst.daf.butler import Butler

    with Butler.from_config(str(repo)) as butler:
        return sorted((a.ref.run, a.ref.dataId["arm"], a.ref.dataId["spectrograph"], str(a.timespan))
                      for a in butler.registry.queryDatasetAssociations("bias", collections=["PFS/calib"]))


async def fill(pilot, pane: CertifyPane, **values: str) -> None:
    # The demo's CALIBRATION collection, as the form fills it in once it has read the repository (which may
    # not have happened yet, or may fail: an unreadable repository).
    values = {"target": "PFS/calib", **values} if not pane.query_one("#f-target").value else values
    for name, value in values.items():
        pane.query_one(f"#f-{name}").value = value
    await pilot.pause()


@pytest.fixture
def journal_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))


@pytest.mark.parametrize("demo_repo", REGISTRIES, indirect=True)
async def test_validation_conflict_apply_and_undo(demo_repo: Path, journal_dir):
    certify_a_bias(demo_repo)
    run = second_bias_run(demo_repo)
    before = associations(demo_repo)
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4")
        pane = app.query_one(CertifyPane)
        # inline validation of a bad date, before anything is asked of the Butler
        await fill(pilot, pane, input=run, dataset_type="bias", begin="2030-13-01")
        assert "2025-03-01T00:00:00" in str(pane.query_one("#e-begin").render())
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: "is not a valid date" in str(pane.query_one("#certify-preview").render()))
        assert pane.query_one("#b-apply").disabled
        # an overlapping range for the same cameras is a conflict: shown, and blocks apply
        await fill(pilot, pane, begin="2030-01-01T00:00:00")
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: pane.preview is not None, timeout=60)
        assert pane.preview.blocked and pane.preview.conflicts
        assert pane.query_one("#b-apply").disabled
        assert associations(demo_repo) == before
        # a range before the certified one: preview, confirm once, applied
        await fill(pilot, pane, begin="2020-01-01T00:00:00", end="2024-01-01T00:00:00")
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: pane.preview is not None and not pane.preview.blocked, timeout=60)
        assert len(pane.preview.added_associations) == 4
        await pilot.press("ctrl+y")
        try:
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        except AssertionError:
            raise AssertionError(f"no confirmation: focused={app.focused} preview={pane.preview!r:.200} "
                                 f"text={pane.query_one('#certify-preview').render()!s:.300}") from None
        await pilot.press("y")
        await wait_until(pilot, lambda: len(associations(demo_repo)) == 8, timeout=60)
        await wait_until(pilot, lambda: pane.journal_entries and pane.journal_entries[0].get("action") == "certify")
        # undo from the journal restores the registry, association by association
        pane.query_one("#journal-table").move_cursor(row=0)
        await pilot.press("ctrl+z")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=60)
        await pilot.press("y")
        await wait_until(pilot, lambda: associations(demo_repo) == before, timeout=60)


async def test_read_only_never_applies(demo_repo: Path, journal_dir):
    certify_a_bias(demo_repo)
    run = second_bias_run(demo_repo)
    before = associations(demo_repo)
    app = PfsTuiApp(repo=str(demo_repo), connect=False, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4")
        pane = app.query_one(CertifyPane)
        assert "Read-only mode" in str(pane.query_one("#certify-ro").render())
        await fill(pilot, pane, input=run, dataset_type="bias", begin="2020-01-01T00:00:00", end="2024-01-01T00:00:00")
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: pane.preview is not None, timeout=60)
        assert pane.query_one("#b-apply").disabled
        await pilot.press("ctrl+y")
        await pilot.pause(0.5)
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("ctrl+z")  # undo the journaled certify: refused too
        await pilot.pause(0.5)
        assert not isinstance(app.screen, ConfirmScreen)
        notes = [n.message for n in app._notifications]
        assert any("Read-only mode: apply refused" in n for n in notes)
        assert any("Read-only mode: undo refused" in n for n in notes)
        assert associations(demo_repo) == before


async def test_the_journal_list_decides_what_a_killed_pfstui_left_pending(demo_repo: Path, journal_dir):
    from pfstui.butler.apply import apply
    from pfstui.butler.certify import preview_certify
    from pfstui.butler.gateway import ButlerGateway
    from pfstui.infra.journal import default_journal

    certify_a_bias(demo_repo)
    run = second_bias_run(demo_repo)
    journal = default_journal()
    with ButlerGateway(str(demo_repo)) as gw:
        done = apply(gw, preview_certify(gw, run, "PFS/calib", "bias", begin="2020-01-01", end="2024-01-01"),
                     journal=journal)
    # Only the intent, as a pfstui on a host that vanished after the registry commit left it.
    intent = json.loads(journal.path.read_text().splitlines()[0])
    assert intent["record"] == "intent" and intent["id"] == done.entry_id
    journal.path.write_text(json.dumps(intent | {"host": "vanished", "ts": "2000-01-01T00:00:00+00:00"}) + "\n")
    assert journal.entries()[0] == [] and len(journal.orphans()) == 1
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4")
        pane = app.query_one(CertifyPane)
        await wait_until(pilot, lambda: [e.id for e in pane.journal_entries] == [done.entry_id], timeout=60)
        assert pane.journal_entries[0]["committed"]["reconciled"] is True
    assert journal.pending() == []


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_the_journal_shows_this_repository_what_was_undone_and_by_whom(demo_repo: Path, journal_dir, size):
    """An undone certify read ``yes`` under Undo, and every repository's entries were listed together."""
    from pfstui.butler.apply import apply
    from pfstui.butler.certify import preview_certify
    from pfstui.butler.gateway import ButlerGateway
    from pfstui.butler.undo import preview_undo
    from pfstui.infra.journal import default_journal

    certify_a_bias(demo_repo)
    run = second_bias_run(demo_repo)
    journal = default_journal()
    journal.append({"kind": "butler", "action": "certify", "repository": "/elsewhere/repo", "undoable": True,
                    "summary": "certified 4 bias in PFS/calib elsewhere", "inverse": {}})
    with ButlerGateway(str(demo_repo)) as gw:
        preview = preview_certify(gw, run, "PFS/calib", "bias", begin="2020-01-01", end="2024-01-01")
        preview.origin = {"stage": "certify-bias", "attempt": 2}
        done = apply(gw, preview, journal=journal)
        undo = apply(gw, preview_undo(gw, done.entry_id, journal=journal), journal=journal)
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=size) as pilot:
        await pilot.press("4")
        pane = app.query_one(CertifyPane)
        table = pane.query_one("#journal-table")
        await wait_until(pilot, lambda: table.row_count == 2, timeout=60, what="this repository's two entries")
        assert [e.id for e in pane.journal_entries] == [undo.entry_id, done.entry_id]  # newest first
        _when, action, undone, repository, what = table.get_row_at(1)
        assert (action, undone, repository) == ("certify", "undone", "repo")
        assert what.endswith(f"(stage certify-bias#2) — undone by {undo.entry_id}")
        assert table.get_row_at(0)[1:3] == ["undo", "yes"]
        await pilot.pause()
        assert "undone" in app.export_screenshot(), "the Undo column is on screen"
        table.move_cursor(row=1)
        table.focus()
        await pilot.press("ctrl+z")
        await wait_until(pilot, lambda: any("Already undone by entry " + undo.entry_id in n.message
                                            for n in app._notifications), what="the refusal")
        assert not isinstance(app.screen, ConfirmScreen)
        pane.query_one("#journal-all").value = True
        await wait_until(pilot, lambda: table.row_count == 3, timeout=60, what="every repository's entries")
        assert table.get_row_at(2)[3] == "repo" and pane.journal_entries[2]["repository"] == "/elsewhere/repo"
