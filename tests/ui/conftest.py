"""Fixtures of the app tests: a private state folder whose supervisors are shut down afterwards."""

from __future__ import annotations

import pytest


@pytest.fixture
def state_env(tmp_path, monkeypatch, tool_env):
    """Stages and supervisors of this test use ``tmp_path/state``; every supervisor started is shut down."""
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PFSTUI_SUPERVISOR_IDLE", "10")
    monkeypatch.setenv("PFSTUI_DEMO_DIR", tool_env["PFSTUI_DEMO_DIR"])
    monkeypatch.setenv("PATH", tool_env["PATH"])
    yield
    from pfstui.queue.protocol import SupervisorClient
    from pfstui.queue.requests import Shutdown

    for sdir in (tmp_path / "state" / "sessions").glob("*"):
        try:
            SupervisorClient(sdir, autostart=False, timeout=2).connect().request(Shutdown())
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass
