"""The verification view (issue 17): snapshots at 80x24 and 160x48 with half-blocks and one with the kitty graphics
protocol, on a synthetic report whose r1 fails (tests/ui/verify_report.py: no Butler); the screen's keys (Escape
cancels a slow read, then goes back), the Queue's V, the histogram bars, the renderer choice and its setting, and
the question to the terminal (on a pty that answers as a Sixel or kitty terminal would, or not at all)."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
from textual.widgets import DataTable, Static

from pfstui.config import Settings, SettingsError
from pfstui.queue.state import QueueState
from pfstui.ui import images
from pfstui.ui.app import PfsTuiApp
from pfstui.ui.screens.verification import VerificationScreen, stage_request
from pfstui.ui.widgets.histogram_chart import bar_lines
from pfstui.ui.widgets.verification_view import BLANK_RGB, VerificationView, check_label, fit_cells, to_rgb
from pfstui.verify.pictures import Picture

from . import screen_lines, wait_until
from .test_snapshots import DATA, SIZES
from .verify_report import synthetic_report


def verify_app(**screen) -> PfsTuiApp:
    app = PfsTuiApp(repo=None, connect=False)
    app.settings = Settings(images="halfcell")  # the operator's config.yaml takes no part in a test
    app._verify_screen = screen
    return app


async def open_verification(pilot) -> None:
    app = pilot.app
    screen = VerificationScreen(None, "u/ci/badbias", "bias", report=synthetic_report(), **app._verify_screen)
    await app.push_screen(screen)
    await wait_until(pilot, lambda: bool(screen.query(".verify-image")), what="the pictures")
    await pilot.pause()


# --- snapshots --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_verification_view_half_blocks(snap_compare, size):
    assert snap_compare(verify_app(renderer="halfcell"), terminal_size=size, run_before=open_verification)


def test_verification_view_graphics_protocol(snap_compare, monkeypatch):
    """The kitty graphics protocol, forced: the cells hold its placeholders (the image itself goes to the terminal
    out of band); the image ids, random in textual-image, are fixed so the picture is the same every run."""
    from textual_image.renderable import tgp

    monkeypatch.setattr(tgp.Image, "_image_id_counter", itertools.count(0x10203))
    assert snap_compare(verify_app(renderer="tgp"), terminal_size=(80, 24), run_before=open_verification)


# --- the view ---------------------------------------------------------------------------------------------------
async def test_the_failing_camera_is_shown_first_and_its_row_says_fail():
    app = verify_app(renderer="halfcell")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_verification(pilot)
        grid = app.screen.query_one("#verify-grid", DataTable)
        rows = {str(grid.get_row_at(i)[0]): str(grid.get_row_at(i)[1]) for i in range(grid.row_count)}
        assert rows == {"arm=b spectrograph=1": "pass", "arm=r spectrograph=1": "FAIL",
                        "arm=b spectrograph=2": "pass", "arm=r spectrograph=2": "pass"}
        assert grid.cursor_row == 1
        assert str(app.screen.query_one("#verify-camera", Static).render()).startswith("arm=r spectrograph=1 FAIL")
        assert "1 of 4 cameras FAIL" in " ".join(screen_lines(app))
        await pilot.press("down")
        await wait_until(pilot, lambda: app.screen.query_one(VerificationView).camera.camera == "arm=b spectrograph=2",
                         what="the next camera")
        assert "diff_mean" not in str(app.screen.query_one("#verify-camera", Static).render())


async def test_escape_cancels_a_slow_verification_then_goes_back(monkeypatch):
    release = threading.Event()
    monkeypatch.setattr("pfstui.verify.report.verify", lambda *a, **k: release.wait(10) and synthetic_report())
    app = verify_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = VerificationScreen(lambda: None, "u/ci/badbias", "bias", against="PFS/calib")
        await app.push_screen(screen)
        await wait_until(pilot, lambda: "reading the product" in str(screen.query_one("#verify-working").render()),
                         what="the working line")
        await pilot.press("escape")
        await wait_until(pilot, lambda: "cancelled" in str(screen.query_one("#verify-note").render()),
                         what="the cancel note")
        release.set()
        await pilot.pause(0.2)
        assert app.screen is screen and not screen.query(VerificationView)  # the late result is thrown away
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is not screen, what="back to the panes")


async def test_a_refused_verification_is_one_line(monkeypatch):
    from pfstui.butler.errors import InputError

    def refuse(*_a, **_k):
        raise InputError("verify does not know dataset type 'arc'", "give one of bias, dark, fiberFlat, flat")

    monkeypatch.setattr("pfstui.verify.report.verify", refuse)
    app = verify_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = VerificationScreen(lambda: None, "u/ci/arc", "arc")
        await app.push_screen(screen)
        await wait_until(pilot, lambda: "does not know" in str(screen.query_one("#verify-note").render()),
                         what="the error")
        text = str(screen.query_one("#verify-note").render())
        assert text.startswith("Cannot verify: verify does not know dataset type 'arc'") and "Traceback" not in text


def test_cells_name_their_checks_shortly_and_blank_blocks_are_blue():
    assert [check_label(n) for n in ("mean", "outliers", "diff_mean", "ratio_spread", "diff_dark_current")] == \
        ["mean", "outl", "Δmean", "÷spread", "Δdark"]
    picture = Picture(np.array([[0, 128, 255]], np.uint8), np.array([[False, False, True]]), 0.0, 1.0, "new")
    assert to_rgb(picture, diverging=False).tolist() == [[[0, 0, 0], [128, 128, 128], list(BLANK_RGB)]]
    assert to_rgb(picture, diverging=True)[0, :2].tolist() == [[0, 0, 255], [255, 255, 255]]  # lower blue, same white


def test_a_picture_keeps_its_shape_in_any_box():
    assert fit_cells(80, 12, 1.0) == (24, 12)  # square: twice as many columns as rows
    assert fit_cells(20, 12, 1.0) == (20, 10)
    assert fit_cells(48, 18, 4 / 3) == (48, 18)


def test_histogram_bars_are_log_scaled_and_merged_when_narrow():
    lines = bar_lines([0, 9, 99, 9, 0], 10, 2)
    assert len(lines) == 2 and all(len(line) == 10 for line in lines)
    assert lines[0] == "    ██    " and lines[1][2:8] == "██████" and lines[1][:2] == "  "
    assert len(bar_lines(list(range(32)), 8, 3)[0]) == 8  # 32 bins in 8 columns


# --- where it is opened from, and how images are drawn ---------------------------------------------------------
def test_a_queue_stage_knows_the_product_it_verifies():
    stages = QueueState.model_validate_json((DATA / "state" / "demo-run.json").read_text()).stages
    found = {s.id: stage_request(s, stages) for s in stages}
    certify_bias = {"collection": "u/op/bias", "against": "PFS/calib", "dataset_type": "bias",
                    "at": "2000-01-01T00:00:00"}
    assert found["certify-bias"] == found["bias"] == certify_bias  # the pipetask stage: its certify stage's
    assert found["certify-flat"]["dataset_type"] == "fiberFlat"
    assert found["clean-bias"] is None and found["certify-detectorMap"] is None  # nothing verify reads


async def test_v_in_the_queue_verifies_the_selected_stage_s_product(tmp_path, monkeypatch):
    from pfstui.queue.requests import Snapshot
    from pfstui.ui.panes.queue import QueuePane
    from pfstui.ui.screens.confirm import TextScreen

    from .test_snapshots import queue_app

    asked = []
    monkeypatch.setattr("pfstui.verify.report.verify",
                        lambda gw, collection, dataset_type, **kw: asked.append((collection, dataset_type, kw))
                        or synthetic_report())
    state = QueueState.model_validate_json((DATA / "state" / "demo-run.json").read_text())
    app = queue_app(tmp_path)
    app._gateway = lambda: "the app's gateway"
    async with app.run_test(size=(120, 40)) as pilot:
        app.query_one(QueuePane).update_snapshot(Snapshot(version=1, session=str(tmp_path), supervisor_pid=1,
                                                          state=state))
        await pilot.pause()
        await pilot.press("V")  # the first stage, bias, in an app without a repository
        await wait_until(pilot, lambda: any("V verifies" in n.message for n in app._notifications),
                         what="the refusal")
        assert not isinstance(app.screen, VerificationScreen)
        await pilot.press("enter")  # its details say what V reads
        await wait_until(pilot, lambda: isinstance(app.screen, TextScreen), what="the details")
        assert "V verifies its product: bias in u/op/bias against PFS/calib" in app.screen.body
        await pilot.press("escape")
        app.repo = str(tmp_path / "repo")
        await pilot.press("V")
        await wait_until(pilot, lambda: bool(app.screen.query(VerificationView)), what="the verification")
        assert asked == [("u/op/bias", "bias", {"against": "PFS/calib", "at": asked[0][2]["at"], "pictures": True})]
        assert asked[0][2]["at"].isot.startswith("2000-01-01T00:00:00")  # the certify stage's begin date


def test_the_renderer_is_the_one_chosen_else_what_the_terminal_announces(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-kitty")
    monkeypatch.delenv("TMUX", raising=False)
    assert [images.resolve(r) for r in ("halfcell", "tgp", "sixel", "auto")] == ["halfcell", "tgp", "sixel", "tgp"]


@pytest.mark.parametrize(("env", "drawn"), [
    ({"TERM": "xterm-256color"}, "halfcell"),
    ({"TERM": "xterm-kitty"}, "tgp"),
    ({"TERM": "xterm-256color", "KITTY_WINDOW_ID": "1"}, "tgp"),
    ({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}, "tgp"),
    ({"TERM": "foot"}, "sixel"),
    ({"TERM": "tmux-256color", "TERM_PROGRAM": "tmux", "TMUX": "/tmp/tmux-0/default,1,0", "KITTY_WINDOW_ID": "1"},
     "halfcell"),
    ({"TERM": "screen", "KITTY_WINDOW_ID": "1"}, "halfcell"),
    ({}, "halfcell"),
])
def test_auto_recognises_the_terminal_without_asking_it(env, drawn):
    assert images.detect(env) == drawn


def test_the_images_setting():
    assert Settings.from_dict({"images": "sixel"}).images == "sixel" and Settings().images == "auto"
    with pytest.raises(SettingsError, match="images: 'png' is not one of auto, halfcell, tgp, sixel"):
        Settings.from_dict({"images": "png"})


def test_a_plan_s_certify_stage_is_read_as_butler_s():
    """The plan writes ``pfstui certify`` stages now (pfstui/plan/argv.py); a recorded queue has butler's."""
    from pfstui.queue.state import Stage

    argv = ["/venv/bin/pfstui", "certify", "/data/repo", "u/op/dark", "PFS/calib", "dark", "--begin-date",
            "2025-01-01T00:00:00", "--id", "arm=b", "--whole-product", "--stage", "certify-dark", "--attempt", "2"]
    pipetask = ["/venv/bin/pipetask", "run", "-b", "/data/repo", "-o", "u/op/dark", "-p", "dark.yaml"]
    stages = [Stage(id="dark", argv=pipetask), Stage(id="certify-dark", argv=argv)]
    expected = {"collection": "u/op/dark", "against": "PFS/calib", "dataset_type": "dark", "at": "2025-01-01T00:00:00"}
    assert stage_request(stages[1], stages) == stage_request(stages[0], stages) == expected
