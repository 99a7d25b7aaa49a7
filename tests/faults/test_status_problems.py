"""``pfstui status`` (text and ``--json``) says what the supervisor knows is wrong with the session.

Why: a damaged state file (the last good copy used, or the queue started empty), a frozen session (its state
file cannot be read, so every change is refused) and a full disk (changes kept in memory only) showed in the
app's Queue pane but not in ``pfstui status``, which looked healthy.  Each is made for real here, with a real
supervisor, and read through the command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pfstui.cli.main as cli
from pfstui.queue.requests import SkipStage, Status
from tests.faults import Session
from tests.faults.test_damaged_state import FAULTY_SUPERVISOR, session  # noqa: F401 - the fixture, used by name

pytestmark = pytest.mark.integration


def status(capsys, s: Session) -> tuple[str, dict]:
    """The text and the JSON of ``pfstui status --plan PLAN``."""
    assert cli.main(["status", "--plan", str(s.plan)]) == 0
    text = capsys.readouterr().out
    assert cli.main(["status", "--plan", str(s.plan), "--json"]) == 0
    return text, json.loads(capsys.readouterr().out)


def test_a_damaged_state_file_is_shown(capsys, session: Session) -> None:  # noqa: F811 - the fixture
    path = session.dir / "state.json"
    path.write_bytes(path.read_bytes()[:20])
    text, doc = status(capsys, session)
    assert doc["state_problem"] and "truncated or garbled" in doc["state_problem"]
    assert doc["frozen"] is False and doc["save_error"] is None
    assert f"state problem: {doc['state_problem']}" in text.splitlines()


def test_a_frozen_session_is_shown(capsys, session: Session) -> None:  # noqa: F811 - the fixture
    path = session.dir / "state.json"
    path.unlink()
    path.mkdir()  # cannot be read, and is not moved aside: the supervisor serves but changes nothing
    text, doc = status(capsys, session)
    assert doc["frozen"] is True and str(path) in doc["state_problem"]
    lines = text.splitlines()
    assert any(line.startswith("FROZEN: every change to this queue is refused") for line in lines), text
    assert any(line.startswith("state problem: ") and str(path) in line for line in lines), text


def test_a_save_error_is_shown(capsys, session: Session, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    flag = tmp_path / "disk-fault"
    with open(session.dir / "supervisor.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-c", FAULTY_SUPERVISOR, str(session.dir), str(flag)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                cwd=str(session.dir), env=dict(os.environ))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client = session.client(autostart=False, timeout=5)
                break
            except Exception:  # noqa: BLE001 - not listening yet
                assert time.monotonic() < deadline and proc.poll() is None, "the supervisor did not start"
                time.sleep(0.05)
        flag.write_text("ENOSPC")
        client.request(SkipStage(stage="c1"))  # applied in memory; the disk refuses it
        assert client.request(Status()).save_error
        client.close()
        text, doc = status(capsys, session)
        assert doc["save_error"] and "the disk is full" in doc["save_error"] and doc["frozen"] is False
        assert any(line.startswith("state problem: ") and doc["save_error"] in line for line in text.splitlines())
    finally:
        flag.unlink(missing_ok=True)
        session.shutdown()
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
