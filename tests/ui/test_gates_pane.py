"""The Queue pane and approval gates, at 80x24 and 160x48: a waiting stage says so in its row and the header,
`enter` shows its preview, `y` shows that preview and approves exactly it, `n` rejects, and a stage that does not
wait is refused in one line.  The snapshots are built as the supervisor builds them; no supervisor runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfstui.queue.requests import ApproveStage, RejectStage
from pfstui.queue.state import GatePreview, Stage
from pfstui.ui.screens.confirm import ConfirmScreen, TextScreen
from tests.ui import wait_until
from tests.ui.test_queue_display import header_of, queue_app, screen_text, show, sizes, snapshot

PREVIEW = "certify 4 bias from u/me/bias/1 into PFS/calib\n  + add bias arm=b spectrograph=1 ..."


def waiting_plan(state: str = "ready") -> list[Stage]:
    cert = Stage(id="certify-bias", name="certify-bias", depends_on=["bias"], status="waiting")
    cert.extra.gate = True
    cert.extra.preview = GatePreview(attempt=1, argv=["pfstui", "certify", "--yes"], state=state,
                                     text=PREVIEW if state == "ready" else "", digest="f" * 64)
    return [Stage(id="bias", name="bias", status="done"), cert]


@sizes
async def test_y_shows_the_preview_and_approves_exactly_it(tmp_path: Path, size) -> None:
    app = queue_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        sent = []
        app.send_request = sent.append
        pane = await show(pilot, snapshot(tmp_path, waiting_plan()))
        rows = [line.split() for line in screen_text(app).splitlines()[4:]]  # below the header
        assert any(r[:4] == ["certify-bias", "waiting", "needs", "approval"] for r in rows), screen_text(app)
        assert header_of(app).strip().startswith("certify-bias waits: y approves, n rejects · parallel 1")
        pane.focus_main()
        await pilot.press("down")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, TextScreen), timeout=5, what="the details")
        assert "preview of attempt 1 (ready" in app.screen.body and "+ add bias arm=b" in app.screen.body
        await pilot.press("escape")
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=5, what="the confirmation")
        assert app.screen.body == PREVIEW and "Approve certify-bias (attempt 1)?" in app.screen.title_text
        await pilot.press("y")
        await wait_until(pilot, lambda: sent, timeout=5, what="the approval")
        assert sent[-1].request == ApproveStage(stage="certify-bias", via="app", seen_argv=["pfstui", "certify", "--yes"],
                                                seen_digest="f" * 64)


async def test_y_off_the_waiting_stage_takes_the_only_one_that_waits_and_n_rejects(tmp_path: Path) -> None:
    """The header says "certify-bias waits: y approves": y on another row shows that stage's confirmation (the
    cursor moves onto it); n rejects."""
    app = queue_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        sent = []
        app.send_request = sent.append
        pane = await show(pilot, snapshot(tmp_path, waiting_plan()))
        pane.focus_main()
        await pilot.press("y")  # bias is selected: it is done, and certify-bias is the one that waits
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=5, what="the confirmation")
        assert "Approve certify-bias (attempt 1)?" in app.screen.title_text and pane.selected().id == "certify-bias"
        await pilot.press("escape")
        await pilot.press("n")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=5, what="the confirmation")
        await pilot.press("y")
        await wait_until(pilot, lambda: sent, timeout=5, what="the rejection")
        assert sent[-1].request == RejectStage(stage="certify-bias", via="app")


async def test_with_several_or_no_stages_waiting_y_elsewhere_is_refused_in_one_line(tmp_path: Path) -> None:
    app = queue_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        sent = []
        app.send_request = sent.append
        two = waiting_plan()
        other = two[1].model_copy(deep=True)
        other.id = other.name = "certify-dark"
        pane = await show(pilot, snapshot(tmp_path, [*two, other]))
        pane.focus_main()
        await pilot.press("y")
        await pilot.pause()
        assert not sent and not isinstance(app.screen, ConfirmScreen)
        assert any("2 stages wait for approval (certify-bias, certify-dark): move the cursor to the one to approve"
                   in n.message for n in app._notifications)
        await show(pilot, snapshot(tmp_path, [Stage(id="bias", name="bias", status="done")]))
        await pilot.press("y")
        await pilot.pause()
        assert not sent and any("bias is done: only a stage waiting for approval can be approved" in n.message
                                for n in app._notifications)


@pytest.mark.parametrize("state", ["computing"])
async def test_a_preview_still_computing_cannot_be_approved(tmp_path: Path, state: str) -> None:
    app = queue_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        sent = []
        app.send_request = sent.append
        pane = await show(pilot, snapshot(tmp_path, waiting_plan(state)))
        pane.focus_main()
        await pilot.press("down", "y")
        await pilot.pause()
        assert not sent and not isinstance(app.screen, ConfirmScreen)
        assert any("still being computed" in n.message for n in app._notifications)


@sizes
async def test_a_long_preview_keeps_the_approve_button_on_screen(tmp_path: Path, size) -> None:
    """A 4-camera preview wraps to ~16 rows at 80 columns: the dialog's buttons were below a 24-row screen."""
    app = queue_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        app.push_screen(ConfirmScreen("Approve certify-bias (attempt 1)?", "\n".join(f"  + add line {i}" for i in range(60)),
                                      ok_label="Approve"))
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=5, what="the dialog")
        await pilot.pause()
        from textual.widgets import Button

        for button in app.screen.query(Button):
            region = button.region
            assert region.height > 0 and region.bottom <= size[1], (button.id, region)
