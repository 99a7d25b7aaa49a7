"""The verification screen opened from the Certify pane (ctrl+t) on the real demo bias whose r1 the demoOffsetOn
knob spoiled (the ``bias_repo`` of test_verify.py: real ``pipetask run`` subprocesses): r1's row says FAIL, and
its pictures come from the product's FITS files."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from pfstui.config import Settings
from pfstui.ui.app import PfsTuiApp
from pfstui.ui.panes.certify import CertifyPane
from pfstui.ui.screens.verification import VerificationScreen
from pfstui.ui.widgets.verification_view import VerificationView
from tests.ui import wait_until
from tests.verify.conftest import BAD, BAD_CAMERA, CAMERAS

pytestmark = pytest.mark.integration


async def test_ctrl_t_in_the_certify_pane_shows_the_spoiled_camera_failing(bias_repo: Path,  # noqa: F811
                                                                           tmp_path, monkeypatch):
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    app = PfsTuiApp(repo=str(bias_repo), connect=False)
    app.settings = Settings(images="halfcell")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await wait_until(pilot, lambda: bool(app.query(CertifyPane)), what="the Certify pane")
        pane = app.query_one(CertifyPane)
        await pilot.press("ctrl+t")  # an empty form: nothing to verify yet
        await wait_until(pilot, lambda: any("fill them first" in n.message for n in app._notifications),
                         what="the refusal")
        for name, value in {"input": BAD, "dataset_type": "bias", "target": "PFS/calib"}.items():
            pane.query_one(f"#f-{name}").value = value
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, VerificationScreen), what="the verification")
        screen = app.screen
        await wait_until(pilot, lambda: bool(screen.query(VerificationView)), timeout=120, what="the report")
        grid = screen.query_one("#verify-grid", DataTable)
        rows = {str(grid.get_row_at(i)[0]): str(grid.get_row_at(i)[1]) for i in range(grid.row_count)}
        assert list(rows) == CAMERAS
        assert rows[BAD_CAMERA] == "FAIL" and {v for k, v in rows.items() if k != BAD_CAMERA} == {"pass"}
        view = screen.query_one(VerificationView)
        assert view.camera.camera == BAD_CAMERA and grid.cursor_row == CAMERAS.index(BAD_CAMERA)
        pictures = view.camera.pictures
        assert pictures is not None and pictures.comparison is not None
        assert (pictures.comparison.pixels == 255).mean() > 0.9  # 50 ADU above what is certified: all white
        assert screen.query(".verify-image")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, VerificationScreen), what="back to the pane")
