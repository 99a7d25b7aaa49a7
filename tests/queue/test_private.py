"""The queue's files are private by construction, its socket has no open window, and what it would act on
(session folder, state, plan) is refused when another user could have written it.

One user here (the tests' own); ``tests/security/test_two_users.py`` repeats the attacks as a second user.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pfstui.infra.private import GROUP_ACCESS_ENV
from pfstui.process import runner
from pfstui.queue import protocol
from pfstui.queue.protocol import SupervisorClient, SupervisorError, UnsafeSessionError
from pfstui.queue.requests import LoadPlan, Shutdown, Status
from pfstui.queue.store import SessionStore, StateError


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def loose_umask():
    """A shared group's umask (002): anything made with default modes is group-writable."""
    old = os.umask(0o002)
    yield
    os.umask(old)


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PFSTUI_SUPERVISOR_IDLE", "10")
    monkeypatch.delenv(GROUP_ACCESS_ENV, raising=False)
    return tmp_path / "state" / "sessions" / "s"


def stop(session: Path) -> None:
    try:
        SupervisorClient(session, autostart=False, timeout=3).connect().request(Shutdown())
    except SupervisorError:
        pass


def test_session_files_are_private_whatever_the_umask(env: Path, loose_umask) -> None:
    client = SupervisorClient(env).connect()
    try:
        client.request(Status())
        sock = protocol.socket_path(env)
        assert mode(env) == 0o700 and mode(env.parent) == 0o700
        assert mode(sock) == 0o600
        for name in ("lock", "supervisor.log"):
            assert mode(env / name) == 0o600, name
    finally:
        client.request(Shutdown())
        client.close()
    assert mode(env / "state.json") == 0o600


def test_stage_logs_are_private_but_the_stage_keeps_its_umask(tmp_path: Path, loose_umask) -> None:
    """Our log and records are 0600; the stage (pipetask writing the datastore) runs with the user's umask."""
    adir = tmp_path / "stages" / "bias" / "attempt-1"
    handle = runner.launch(["sh", "-c", "umask"], cwd=tmp_path, log_path=adir / "stage.log",
                           status_path=adir / "status.json")
    assert runner.wait(handle, timeout=30).returncode == 0
    assert mode(adir) == 0o700 and mode(adir.parent) == 0o700
    assert mode(adir / "stage.log") == 0o600 and mode(adir / "status.json") == 0o600
    assert (adir / "stage.log").read_text().strip().endswith("0002")


def test_the_socket_is_private_from_its_first_instant(tmp_path: Path) -> None:
    """Bound under umask 000 (the worst case): already 0600 before any chmod, so no window to connect in."""
    old = os.umask(0)
    try:
        sock = protocol.bind_private(tmp_path / "x.sock")
    finally:
        os.umask(old)
    with sock:
        assert mode(tmp_path / "x.sock") == 0o600
    assert os.umask(old) == old, "the process umask is restored"


def test_a_long_session_path_uses_a_private_random_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PFSTUI_SUPERVISOR_IDLE", "10")
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    session = tmp_path / ("x" * 60) / ("y" * 60)
    assert protocol.socket_path(session) is None, "a client never makes the folder: the supervisor does"
    client = SupervisorClient(session).connect()
    try:
        sock = protocol.socket_path(session)
        folder = Path((session / protocol.SOCKET_RECORD).read_text().strip())
        assert sock == folder / protocol.SOCKET_NAME and mode(folder) == 0o700 and mode(sock) == 0o600
        assert folder.name.startswith("pfstui-") and folder.name != f"pfstui-{os.getuid()}"
    finally:
        client.request(Shutdown())
        client.close()
    deadline = time.monotonic() + 60
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not folder.exists(), "a supervisor that exits removes its random folder"


def test_a_squatted_fallback_is_never_used(tmp_path: Path, monkeypatch) -> None:
    session = tmp_path / ("x" * 60) / ("y" * 60)
    session.mkdir(parents=True)
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    os.chmod(loose, 0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(loose))
    (session / protocol.SOCKET_RECORD).write_text(str(tmp_path / "planted") + "\n")
    (tmp_path / "planted").symlink_to(loose)
    made = protocol.socket_path(session, create=True)
    assert made is not None and loose not in made.parents and tmp_path / "planted" not in made.parents
    protocol.release_socket(made, session)
    assert not made.parent.exists(), "the random folder goes with the socket"
    # A short private runtime folder (tmp_path under xdist is too long for a socket path inside it).
    private = Path(tempfile.mkdtemp(prefix="run", dir="/tmp"))
    try:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(private))
        assert protocol.socket_path(session).parent == private, "a private XDG_RUNTIME_DIR is preferred"
    finally:
        os.rmdir(private)


def test_a_session_folder_others_can_write_is_refused(env: Path) -> None:
    env.mkdir(parents=True)
    os.chmod(env, 0o775)
    with pytest.raises(UnsafeSessionError, match="session folder .* can be changed by your group"):
        SupervisorClient(env).connect()
    assert not (env / "supervisor.log").exists(), "no supervisor was started"
    done = subprocess.run([sys.executable, "-m", "pfstui.queue.supervisor", str(env)], check=False, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "refusing to serve" in done.stderr


def test_a_state_file_others_can_write_is_refused(env: Path) -> None:
    env.mkdir(parents=True, mode=0o700)
    (env / "state.json").write_text('{"schema_version": 1}')
    os.chmod(env / "state.json", 0o666)
    with pytest.raises(UnsafeSessionError, match="state file .*state.json can be changed by everyone"):
        SupervisorClient(env).connect()
    with pytest.raises(StateError, match="reads and runs nothing from this session"):
        SessionStore(env).load()
    os.chmod(env / "state.json", 0o600)
    (env / "state.json.prev").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeSessionError, match="previous state file .* is a symbolic link"):
        SupervisorClient(env).connect()


def test_a_plan_others_can_write_is_not_loaded(env: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("version: 1\n")
    os.chmod(plan, 0o666)
    client = SupervisorClient(env).connect()
    try:
        with pytest.raises(SupervisorError, match="plan file .*plan.yaml can be changed by everyone"):
            client.request(LoadPlan(path=str(plan)))
    finally:
        client.request(Shutdown())
        client.close()


def test_the_group_access_setting_reaches_what_pfstui_starts(tmp_path: Path, monkeypatch) -> None:
    from pfstui.cli.main import _apply_group_access

    monkeypatch.setenv("PFSTUI_CONFIG_DIR", str(tmp_path))
    monkeypatch.delenv(GROUP_ACCESS_ENV, raising=False)
    (tmp_path / "config.yaml").write_text("group_access: true\n")
    _apply_group_access()
    assert os.environ[GROUP_ACCESS_ENV] == "1"
