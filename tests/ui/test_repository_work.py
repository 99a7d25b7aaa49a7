"""Repository work shows that it is working, can be cancelled with Escape, and fails with one line.

A slow Butler is made by holding the pane's own gateway (``gateway.session()``: the lock that serialises its
calls) from the test, so the pane's call waits in its lane thread exactly as it would behind a long query.
"""

from __future__ import annotations

from pathlib import Path

from lsst.daf.butler import Butler, CollectionType

from pfstui.ui.app import PfsTuiApp
from pfstui.ui.panes.certify import CertifyPane
from pfstui.ui.panes.collections import CollectionsPane

from . import wait_until
from .test_app import certify_a_bias
from .test_certify_pane import fill, second_bias_run


def text_of(pane, selector: str) -> str:
    return str(pane.query_one(selector).render())


async def test_escape_cancels_a_slow_preview_and_its_late_result_is_dropped(demo_repo: Path, tmp_path: Path,
                                                                            monkeypatch):
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    certify_a_bias(demo_repo)
    run = second_bias_run(demo_repo)
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        pane = app.query_one(CertifyPane)
        # the pane's own reads at start (names, journal) are done: the lane is idle
        await wait_until(pilot, lambda: pane.query_one("#f-input").suggester is not None, what="the names")
        await wait_until(pilot, lambda: app.butler_lane.running == 0, what="an idle lane")
        await fill(pilot, pane, input=run, dataset_type="bias", begin="2020-01-01T00:00:00",
                   end="2024-01-01T00:00:00")
        pane.focus_main()
        with pane.gateway().session("the test holds the repository"):
            await pilot.press("ctrl+e")
            assert "Computing the preview… (esc cancels)" in text_of(pane, "#certify-preview")
            await wait_until(pilot, lambda: app.butler_lane.running == 1, what="the preview waiting in its thread")
            await pilot.press("escape")
            assert "Preview cancelled" in text_of(pane, "#certify-preview")
        # the call finishes in its thread once the repository is free; its result is thrown away
        await wait_until(pilot, lambda: app.butler_lane.running == 0, what="the cancelled call to end")
        await pilot.pause(0.2)
        assert pane.preview is None
        assert "Preview cancelled" in text_of(pane, "#certify-preview")
        # Escape with nothing running is not swallowed by the pane (it keeps its other meanings)
        assert await app.run_action("cancel_work", pane) is False
        # and the same preview, not cancelled, completes
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: pane.preview is not None, what="the preview")


async def test_a_slow_refresh_says_so_and_escape_drops_it(demo_repo: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(CollectionsPane)
        await wait_until(pilot, lambda: len(pane._rows) > 0, what="the collections")
        await wait_until(pilot, lambda: app.butler_lane.running == 0, what="an idle lane")
        before = len(pane._rows)
        status = pane.query_one("#collections-status")
        with Butler.from_config(str(demo_repo), writeable=True) as butler:
            butler.collections.register("u/new/meanwhile", CollectionType.RUN)
        pane.focus_main()
        with pane.gateway().session("the test holds the repository"):
            await pilot.press("ctrl+r")
            await wait_until(pilot, lambda: "reading the collections… (esc cancels)" in str(status.render()),
                             what="the working line")
            await pilot.press("escape")
            assert "refresh cancelled" in str(status.render())
            assert f"{before} of {before} collections" in str(status.render())
        await wait_until(pilot, lambda: app.butler_lane.running == 0, what="the cancelled call to end")
        await pilot.pause(0.2)
        assert len(pane._rows) == before  # the late answer was dropped
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: any(r.name == "u/new/meanwhile" for r in pane._rows), what="the refresh")
        assert "cancelled" not in str(status.render())


async def test_a_repository_that_cannot_be_opened_is_one_line_in_each_pane(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "not-a-repo").mkdir()
    app = PfsTuiApp(repo=str(tmp_path / "not-a-repo"), connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(CollectionsPane)
        status = pane.query_one("#collections-status")
        await wait_until(pilot, lambda: "Cannot list collections: cannot open Butler repository" in str(status.render()),
                         what="the failure")
        assert "\n" not in str(status.render()) and "Traceback" not in str(status.render())
        await pilot.press("4")
        certify = app.query_one(CertifyPane)
        await fill(pilot, certify, input="u/x", dataset_type="bias")
        certify.focus_main()
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: "cannot open Butler repository" in text_of(certify, "#certify-preview"),
                         what="the preview's failure")
        assert certify.preview is None and certify.working is None
