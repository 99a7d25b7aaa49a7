"""App tests (Pilot and snapshots); shared helpers below, fixtures in conftest.py."""

from __future__ import annotations

import asyncio


async def wait_until(pilot, predicate, timeout: float = 30.0, what: str = "condition") -> None:
    """Let the app run until ``predicate()`` holds; AssertionError naming ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def screen_lines(app) -> list[str]:
    """The lines the terminal shows now, top to bottom (what an operator reads)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def plan_app(tmp_path, **kwargs):
    """The app on a stand-in plan (no supervisor: ``connect=False``) with its session folder at
    ``tmp_path/session``."""
    from pfstui.ui.app import PfsTuiApp

    plan = tmp_path / "plan.yaml"
    plan.write_text("# stand-in: no stage is run here\n")
    (tmp_path / "session").mkdir(mode=0o700, exist_ok=True)
    return PfsTuiApp(repo=None, plan=str(plan), connect=False, session_dir=tmp_path / "session", **kwargs)
