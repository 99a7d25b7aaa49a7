"""The runner with real processes: detached launch, exit status, kill/pause of whole trees, PID-reuse safety."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

import pfstui.process.runner as runner
from pfstui.process.runner import HandleError, LaunchError, ProcessHandle, RunState

PY = sys.executable

# A parent that starts two workers (like `pipetask run -j 2`), reports their pids, and waits for them.
TREE = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    if len(sys.argv) > 1 and sys.argv[1] == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the workers
    kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) for _ in range(2)]
    print("kids", *[k.pid for k in kids], flush=True)
    for k in kids:
        k.wait()
    """
)


@pytest.fixture
def handles() -> Iterator[list[ProcessHandle]]:
    """Handles launched by a test; whatever is left is SIGKILLed afterwards so no test leaks processes."""
    launched: list[ProcessHandle] = []
    yield launched
    for handle in launched:
        with contextlib.suppress(Exception):
            runner.escalate(handle)


def _launch(tmp_path: Path, handles: list[ProcessHandle], argv: list[str], name: str = "stage",
            **kwargs: object) -> ProcessHandle:
    handle = runner.launch(argv, cwd=tmp_path, log_path=tmp_path / f"{name}.log",
                           status_path=tmp_path / f"{name}.status.json", **kwargs)  # type: ignore[arg-type]
    handles.append(handle)
    return handle


def _until(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.02) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def _kid_pids(log: Path) -> list[int]:
    def find() -> list[int] | None:
        for line in log.read_text().splitlines() if log.exists() else []:
            if line.startswith("kids "):
                return [int(x) for x in line.split()[1:]]
        return None

    pids = _until(find)
    assert pids, f"the tree never reported its workers; log: {log.read_text() if log.exists() else '(none)'}"
    return pids  # type: ignore[return-value]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _status(pid: int) -> str | None:
    try:
        return psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return None


# ------------------------------------------------------------------------------------------ launch, log, exit


def test_output_goes_to_log_and_exit_zero_is_recorded(tmp_path: Path, handles: list[ProcessHandle]) -> None:
    code = "import os, sys; print('to stdout', os.getcwd(), os.environ['PFSTUI_X']); print('to stderr', file=sys.stderr)"
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = dict(os.environ, PFSTUI_X="42")
    handle = runner.launch([PY, "-c", code], cwd=workdir, env=env, log_path=tmp_path / "s.log",
                           status_path=tmp_path / "s.status.json")
    handles.append(handle)
    assert handle.pgid == handle.pid  # own process group: kill/pause reach the whole stage
    assert handle.waiter_pid != handle.pid
    state = runner.wait(handle, timeout=5)
    assert state.state is RunState.EXITED
    assert (state.returncode, state.signal) == (0, None)
    log = (tmp_path / "s.log").read_text()
    assert f"to stdout {workdir} 42" in log
    assert "to stderr" in log
    status = json.loads((tmp_path / "s.status.json").read_text())
    assert status["returncode"] == 0 and status["signal"] is None and status["pid"] == handle.pid
    assert status["schema_version"] == 1 and status["ended_at"].endswith("+00:00")
    started = json.loads(Path(handle.started_path).read_text())
    assert started["pid"] == handle.pid and started["argv"] == [PY, "-c", code]
    assert not list(tmp_path.glob(".*spec*")), "the launch spec (it holds the environment) must be removed"


def test_nonzero_exit_code_is_recorded(tmp_path: Path, handles: list[ProcessHandle]) -> None:
    handle = _launch(tmp_path, handles, ["sh", "-c", "echo failing; exit 3"])
    state = runner.wait(handle, timeout=5)
    assert state.state is RunState.EXITED
    assert state.returncode == 3 and state.signal is None and not state.succeeded


def test_kill_records_sigterm(tmp_path: Path, handles: list[ProcessHandle]) -> None:
    handle = _launch(tmp_path, handles, ["sleep", "30"])
    assert runner.poll(handle).state is RunState.RUNNING
    state = runner.kill(handle, grace=3)
    assert state.state is RunState.EXITED
    assert state.signal == "SIGTERM" and state.returncode == -signal.SIGTERM
    assert json.loads(Path(handle.status_path).read_text())["signal"] == "SIGTERM"


def test_launch_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match=r"cannot start 'no-such-command-xyz': No such file"):
        runner.launch(["no-such-command-xyz"], cwd=tmp_path, log_path=tmp_path / "l", status_path=tmp_path / "s")
    assert "no-such-command-xyz" in (tmp_path / "l").read_text()
    with pytest.raises(LaunchError, match="working folder .* does not exist"):
        runner.launch(["true"], cwd=tmp_path / "missing", log_path=tmp_path / "l", status_path=tmp_path / "s")
    with pytest.raises(LaunchError, match="list of strings"):
        runner.launch("echo hi", cwd=tmp_path, log_path=tmp_path / "l", status_path=tmp_path / "s")  # type: ignore[arg-type]


def test_stale_status_from_an_earlier_attempt_is_not_reused(tmp_path: Path, handles: list[ProcessHandle]) -> None:
    status = tmp_path / "stage.status.json"
    status.write_text(json.dumps({"pid": 1, "returncode": 9, "signal": None}))
    handle = _launch(tmp_path, handles, ["sleep", "30"])
    assert runner.poll(handle).state is RunState.RUNNING


# ------------------------------------------------------------------------------------------ outliving the launcher

LAUNCHER = textwrap.dedent(
    """
    import json, sys, time
    from pfstui.process.runner import launch
    tmp = sys.argv[1]
    handle = launch([sys.executable, "-c", "import time; time.sleep(1.5); print('stage done', flush=True)"],
                    cwd=tmp, log_path=tmp + "/stage.log", status_path=tmp + "/stage.status.json")
    print(json.dumps(handle.to_dict()), flush=True)
    time.sleep(60)
    """
)


def test_stage_survives_sigkill_of_its_launcher(tmp_path: Path, handles: list[ProcessHandle]) -> None:
    launcher = subprocess.Popen([PY, "-c", LAUNCHER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                                start_new_session=True)
    try:
        line = launcher.stdout.readline()  # type: ignore[union-attr]
        handle, state = runner.adopt(json.loads(line))
        handles.append(handle)
        assert state.state is RunState.RUNNING
        # Kill the launcher's whole group, as a dropped terminal would, then knock on the waiter too.
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait(timeout=5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)
        launcher.stdout.close()  # type: ignore[union-attr]
    os.kill(handle.waiter_pid, signal.SIGHUP)
    os.kill(handle.waiter_pid, signal.SIGINT)
    time.sleep(0.1)
    assert runner.poll(handle).state is RunState.RUNNING
    assert not _gone(handle.waiter_pid), "the waiter must ignore SIGHUP/SIGINT"
    assert not Path(handle.status_path).exists()
    state = runner.wait(handle, timeout=8)
    assert state.state is RunState.EXITED and state.returncode == 0
    assert "stage done" in Path(handle.log_path).read_text()


# ------------------------------------------------------------------------------------------ process trees


def test_kill_reaches_every_process_of_the_tree(tmp_path: Path, handles: list[ProcessHandle]) -> None:
    handle = _launch(tmp_path, handles, [PY, "-c", TREE])
    kids = _kid_pids(tmp_path / "stage.log")
    assert all(not _gone(pid) for pid in kids)
    assert {p.pid for p in psutil.Process(handle.pid).children()} == set(kids)
    state = runner.kill(handle, grace=3)
    assert _until(lambda: all(_gone(pid) for pid in [handle.pid, *kids]), timeout=3)
    assert not runner.group_alive(handle)
    assert state.state is RunState.EXITED and state.signal == "SIGTERM"


def test_terminate_then_escalate_when_sigterm_is_ignored(tmp_path: Path, handles: list[ProcessHandle]) -> None:
    handle = _launch(tmp_path, handles, [PY, "-c", TREE, "ignore-term"])
    kids = _kid_pids(tmp_path / "stage.log")
    t0 = time.monotonic()
    assert runner.terminate(handle) is True
    assert time.monotonic() - t0 < 1.0, "terminate() must not block"
    time.sleep(0.3)
    assert runner.group_alive(handle), "SIGTERM is ignored, so the group is still there"
    assert runner.poll(handle).state is RunState.RUNNING
    assert runner.escalate(handle) is True
    state = runner.wait(handle, timeout=5)
    assert state.state is RunState.EXITED and state.signal == "SIGKILL"
    assert _until(lambda: all(_gone(pid) for pid in kids), timeout=3)


def test_blocking_kill_escalates_after_grace(tmp_path: Path, handles: list[ProcessHandle]) -> None:
    handle = _launch(tmp_path, handles, [PY, "-c", TREE, "ignore-term"])
    kids = _kid_pids(tmp_path / "stage.log")
    t0 = time.monotonic()
    state = runner.kill(handle, grace=0.5)
    assert 0.5 <= time.monotonic() - t0 < 5
    assert state.signal == "SIGKILL"
    assert _until(lambda: all(_gone(pid) for pid in kids), timeout=3)


def test_pause_and_resume_stop_and_continue_the_whole_group(tmp_path: Path, handles: list[ProcessHandle]) -> None:
    handle = _launch(tmp_path, handles, [PY, "-c", TREE])
    members = [handle.pid, *_kid_pids(tmp_path / "stage.log")]
    assert runner.pause(handle) is True
    assert _until(lambda: all(_status(p) == psutil.STATUS_STOPPED for p in members), timeout=3)
    assert runner.poll(handle).state is RunState.PAUSED
    assert runner.resume(handle) is True
    assert _until(lambda: all(_status(p) not in (psutil.STATUS_STOPPED, None) for p in members), timeout=3)
    assert runner.poll(handle).state is RunState.RUNNING
    # A paused stage can still be killed gracefully: terminate() sends SIGCONT after SIGTERM.
    runner.pause(handle)
    assert _until(lambda: runner.poll(handle).state is RunState.PAUSED, timeout=3)
    state = runner.kill(handle, grace=3)
    assert state.signal == "SIGTERM"
    assert _until(lambda: all(_gone(p) for p in members), timeout=3)


# ------------------------------------------------------------------------------------------ identity / PID reuse


def test_reused_pid_is_lost_and_never_signalled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    me = psutil.Process()
    fake = ProcessHandle(
        pid=me.pid, start_time=me.create_time() - 1000.0, pgid=me.pid,
        waiter_pid=me.pid, waiter_start_time=me.create_time() - 1000.0,
        log_path=str(tmp_path / "l"), status_path=str(tmp_path / "s.json"), started_path=str(tmp_path / "st"),
        boot_time=psutil.boot_time(),
    )
    sent: list[tuple[str, int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append(("kill", pid, sig)))
    monkeypatch.setattr(os, "killpg", lambda pid, sig: sent.append(("killpg", pid, sig)))

    state = runner.poll(fake)
    assert state.state is RunState.LOST
    assert f"pid {me.pid} now belongs to another process" in state.detail
    assert state.handle == fake
    assert runner.kill(fake, grace=0.2).state is RunState.LOST
    assert runner.terminate(fake) is False
    assert runner.escalate(fake) is False
    assert runner.pause(fake) is False
    assert runner.resume(fake) is False
    assert not runner.group_alive(fake)
    assert sent == []


def test_vanished_stage_without_status_is_lost(tmp_path: Path, handles: list[ProcessHandle]) -> None:
    handle = _launch(tmp_path, handles, ["true"])
    assert runner.wait(handle, timeout=5).state is RunState.EXITED
    Path(handle.status_path).unlink()  # as if the waiter had been killed before recording anything
    assert _until(lambda: _gone(handle.waiter_pid), timeout=3)
    state = runner.poll(handle)
    assert state.state is RunState.LOST and "no status was recorded" in state.detail


def test_adopt_roundtrips_through_json_and_rejects_damage(tmp_path: Path, handles: list[ProcessHandle]) -> None:
    handle = _launch(tmp_path, handles, ["sleep", "30"])
    data = json.loads(json.dumps(handle.to_dict()))
    adopted, state = runner.adopt(data)
    assert adopted == handle and state.state is RunState.RUNNING
    broken = dict(data)
    del broken["pid"]
    with pytest.raises(HandleError, match="lacks 'pid'"):
        runner.adopt(broken)
    with pytest.raises(HandleError, match="'start_time' has the wrong type"):
        runner.adopt(dict(data, start_time="yesterday"))
    with pytest.raises(HandleError, match="schema_version 99"):
        runner.adopt(dict(data, schema_version=99))
    runner.escalate(handle)
    assert runner.wait(handle, timeout=5).signal == "SIGKILL"


def test_attempt_in_the_state_document_readopts_the_stage(tmp_path: Path, handles: list[ProcessHandle]) -> None:
    from pfstui.queue.state import Attempt, QueueState, Stage
    from pfstui.queue.store import SessionStore

    handle = _launch(tmp_path, handles, ["sleep", "30"])
    store = SessionStore(tmp_path / "session")
    attempt = Attempt.from_handle(1, handle)
    assert attempt.status == "running" and attempt.argv == ["sleep", "30"]
    store.save(QueueState(stages=[Stage(id="s1", argv=["sleep", "30"], status="running", attempts=[attempt])]))
    # A new supervisor reads the document and finds the still-running stage again.
    data = store.load().stages[0].attempts[0].handle_dict()
    adopted, state = runner.adopt(data)  # type: ignore[arg-type]
    assert adopted == handle and state.state is RunState.RUNNING
    assert Attempt(number=2, argv=["x"]).handle_dict() is None
