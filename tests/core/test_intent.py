"""Launch intents (:mod:`pfstui.process.intent`): however many launches of one attempt race, one process runs;
and what a successor finds of a launch (started, pending, vanished, not started) is told from the files."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import psutil

from pfstui.process import runner
from pfstui.process.intent import LaunchFiles, Outcome, find


def launch(files: LaunchFiles, runs: Path, *, resume: bool) -> runner.ProcessHandle:
    return runner.launch(["sh", "-c", f"echo $$ >> {runs}; sleep 0.3"], cwd=files.status.parent,
                         log_path=files.log, status_path=files.status, started_path=files.started,
                         token=files.token, resume=resume, timeout=30)


def test_racing_launches_of_one_attempt_start_one_process(tmp_path: Path):
    for round_ in range(5):
        folder = tmp_path / f"attempt-{round_}"
        folder.mkdir()
        files, runs = LaunchFiles.new(folder), folder / "runs"
        handles: list[runner.ProcessHandle] = []

        def one(files: LaunchFiles = files, runs: Path = runs, handles: list = handles) -> None:
            handles.append(launch(files, runs, resume=True))

        threads = [threading.Thread(target=one) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({h.pid for h in handles}) == 1 and len(handles) == 3, "every launcher got the one process"
        assert runner.wait(handles[0], timeout=30).succeeded
        assert len(runs.read_text().split()) == 1, "the command ran once"


def test_find_tells_what_became_of_a_launch(tmp_path: Path):
    files = LaunchFiles.new(tmp_path)
    assert LaunchFiles.of(str(files.log), str(files.status), str(files.started)) == files
    assert find(files).outcome is Outcome.NOT_STARTED
    # A record of another launch (a stale status at the shared path) is not this launch's.
    files.status.write_text(json.dumps({"token": "0" * 16, "returncode": 0}))
    assert find(files).outcome is Outcome.NOT_STARTED

    # A claim held by a live waiter: the record comes in a moment.
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        me = psutil.Process(holder.pid)
        files.claim.write_text(json.dumps({"token": files.token, "waiter_pid": me.pid,
                                           "waiter_create_time": me.create_time()}))
        assert find(files).outcome is Outcome.PENDING
    finally:
        holder.kill()
        holder.wait()
    found = find(files)
    assert found.outcome is Outcome.VANISHED and "restart the stage" in found.detail

    files.claim.unlink()
    handle = launch(files, tmp_path / "runs", resume=False)
    found = find(files)
    assert found.outcome is Outcome.STARTED and found.record["pid"] == handle.pid
    runner.wait(handle, timeout=30)
    assert find(files).outcome is Outcome.STARTED, "the started record stays the answer"


def test_an_attempt_recorded_without_a_token_is_never_started_again(tmp_path: Path):
    old = LaunchFiles.of(str(tmp_path / "stage.log"), str(tmp_path / "status"), str(tmp_path / "status.started"))
    assert old.token is None
    assert find(old).outcome is Outcome.VANISHED
