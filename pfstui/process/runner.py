"""Launch stages as detached processes that outlive pfstui, and poll, pause, resume and kill them safely.

Why: operators start hour-long ``pipetask run -j N`` stages over SSH; the UI or supervisor may die or be restarted
at any time, so a stage must not be a child tied to them (no pipes, own session), its exit status must be recorded
by someone who stays (the waiter, :mod:`pfstui.process.waiter`), and every later action must be safe against PID
reuse: a process is identified by its pid *plus* its create time (psutil), and pfstui never signals a pid or a
process group whose identity does not match.

Process layout::

    launcher (UI/supervisor) ──Popen(start_new_session)──> waiter  (session A; ignores SIGHUP/SIGINT)
                                                              └──Popen(start_new_session)──> stage (session B,
                                                                    leader of process group B; its workers join B)

Kill, pause and resume signal process group B, so they reach every worker and never the waiter, which then
records the status.  ``poll`` reads the status file first, then checks the stage's identity.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import psutil

from pfstui.errors import UserError
from pfstui.infra.atomic import atomic_write_json
from pfstui.infra.faults import fault_point
from pfstui.infra.private import make_private_dir, open_private
from pfstui.process.intent import CLAIMED_EXIT, read_record
from pfstui.process.waiter import SPEC_SCHEMA_VERSION, current_boot_id

__all__ = [
    "RunnerError",
    "LaunchError",
    "HandleError",
    "RunState",
    "ProcessHandle",
    "ProcessState",
    "launch",
    "poll",
    "wait",
    "kill",
    "terminate",
    "escalate",
    "pause",
    "resume",
    "group_alive",
    "adopt",
    "handle_from_started",
    "read_status",
]

#: Create times compared relative to boot (immune to wall-clock steps) may differ by float noise only.
_MONOTONIC_TOLERANCE = 0.05
#: Fallback when a handle carries no boot time: compare wall-clock create times.
_WALL_TOLERANCE = 1.0
_HANDLE_SCHEMA_VERSION = 1

# Waiter Popen objects of this process, reaped opportunistically so finished waiters do not linger as zombies
# while the launcher (e.g. a long-running supervisor) lives on.
_WAITERS: list[subprocess.Popen[bytes]] = []


class RunnerError(UserError):
    """Base class for runner errors; ``str()`` is a one-line message naming the problem and the fix."""


class LaunchError(RunnerError):
    """A stage could not be started (bad command, missing folder, waiter failure)."""


class HandleError(RunnerError):
    """A stored process handle is malformed and cannot be adopted."""


class RunState(StrEnum):
    """What :func:`poll` can say about a stage."""

    RUNNING = "running"
    PAUSED = "paused"  # stopped by SIGSTOP
    EXITED = "exited"  # the waiter recorded a status
    LOST = "lost"  # the process is gone (or its pid reused) and no status was recorded


@dataclass(frozen=True)
class ProcessHandle:
    """Everything needed to find a launched stage again, from any process, after any restart.

    JSON-serialisable through :meth:`to_dict` / :meth:`from_dict` (or :func:`adopt`).
    """

    pid: int
    start_time: float  # psutil create_time (seconds since the epoch)
    pgid: int
    waiter_pid: int
    waiter_start_time: float
    log_path: str
    status_path: str
    started_path: str
    argv: tuple[str, ...] = ()
    cwd: str = ""
    started_at: str = ""
    boot_time: float | None = None  # psutil.boot_time() when recorded: makes identity immune to clock steps
    boot_id: str | None = None  # Linux boot id: a pid from before a reboot is never "ours"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``argv`` as a list) with a ``schema_version``."""
        data = asdict(self)
        data["argv"] = list(self.argv)
        data["schema_version"] = _HANDLE_SCHEMA_VERSION
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessHandle:
        """Rebuild a handle; raises :class:`HandleError` naming the bad field."""
        if not isinstance(data, Mapping):
            raise HandleError(f"process handle must be a JSON object, got {type(data).__name__}; "
                              "the stored session state is damaged")
        version = data.get("schema_version", _HANDLE_SCHEMA_VERSION)
        if version != _HANDLE_SCHEMA_VERSION:
            raise HandleError(f"process handle has schema_version {version!r}, this pfstui reads "
                              f"{_HANDLE_SCHEMA_VERSION}; use the pfstui version that launched the stage")

        def need(name: str, kinds: tuple[type, ...], optional: bool = False) -> Any:
            if name not in data or data[name] is None:
                if optional:
                    return None
                raise HandleError(f"process handle lacks '{name}'; the stored session state is damaged")
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise HandleError(f"process handle field '{name}' has the wrong type "
                                  f"({type(value).__name__}); the stored session state is damaged")
            return value

        argv = data.get("argv", [])
        if not isinstance(argv, list | tuple) or not all(isinstance(a, str) for a in argv):
            raise HandleError("process handle field 'argv' must be a list of strings; "
                              "the stored session state is damaged")
        status_path = need("status_path", (str,))
        return cls(
            pid=need("pid", (int,)),
            start_time=float(need("start_time", (int, float))),
            pgid=need("pgid", (int,)),
            waiter_pid=need("waiter_pid", (int,)),
            waiter_start_time=float(need("waiter_start_time", (int, float))),
            log_path=need("log_path", (str,)),
            status_path=status_path,
            started_path=need("started_path", (str,), optional=True) or _default_started_path(status_path),
            argv=tuple(argv),
            cwd=need("cwd", (str,), optional=True) or "",
            started_at=need("started_at", (str,), optional=True) or "",
            boot_time=_opt_float(need("boot_time", (int, float), optional=True)),
            boot_id=need("boot_id", (str,), optional=True),
        )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class ProcessState:
    """Result of :func:`poll`.

    ``returncode``/``signal``/``ended_at`` are set for EXITED (``returncode`` follows :mod:`subprocess`:
    negative when killed by a signal).  For LOST, ``detail`` says why and ``handle`` is the last known info.
    """

    state: RunState
    handle: ProcessHandle
    returncode: int | None = None
    signal: str | None = None
    ended_at: str | None = None
    spawn_error: str | None = None
    detail: str = ""
    status: Mapping[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """True once nothing more will happen (exited or lost)."""
        return self.state in (RunState.EXITED, RunState.LOST)

    @property
    def succeeded(self) -> bool:
        return self.state is RunState.EXITED and self.returncode == 0


# --------------------------------------------------------------------------------------------------- helpers


def _default_started_path(status_path: str | Path) -> str:
    p = Path(status_path)
    return str(p.with_name(p.name + ".started"))


def _reap_waiters() -> None:
    for proc in list(_WAITERS):
        if proc.poll() is not None:
            _WAITERS.remove(proc)


def _package_root() -> str:
    import pfstui

    return str(Path(pfstui.__file__).resolve().parent.parent)


def _same_identity(proc: psutil.Process, create_time: float, boot_time: float | None,
                   boot_id: str | None) -> bool:
    """True if ``proc`` is the process recorded with ``create_time`` (and boot info)."""
    if boot_id is not None:
        now_id = current_boot_id()
        if now_id is not None and now_id != boot_id:
            return False
    actual = proc.create_time()
    if boot_time is not None:
        # Compare times since boot: a wall-clock step shifts both create_time and boot_time equally.
        return abs((actual - psutil.boot_time()) - (create_time - boot_time)) <= _MONOTONIC_TOLERANCE
    return abs(actual - create_time) <= _WALL_TOLERANCE


def _find(pid: int, create_time: float, boot_time: float | None, boot_id: str | None) -> psutil.Process | None:
    """The live process with this identity, or None (gone, or pid reused by another process)."""
    try:
        proc = psutil.Process(pid)
        return proc if _same_identity(proc, create_time, boot_time, boot_id) else None
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ProcessLookupError):
        return None


def _stage(handle: ProcessHandle) -> psutil.Process | None:
    return _find(handle.pid, handle.start_time, handle.boot_time, handle.boot_id)


def _waiter(handle: ProcessHandle) -> psutil.Process | None:
    return _find(handle.waiter_pid, handle.waiter_start_time, handle.boot_time, handle.boot_id)


def _status_of(proc: psutil.Process) -> str | None:
    try:
        return proc.status()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _group_members(handle: ProcessHandle) -> list[psutil.Process]:
    """Live (non-zombie) processes of the stage's process group that provably belong to this stage.

    Empty when the group's leader pid now belongs to another process (group id reused) or when the group is the
    caller's own (pfstui never launches a stage into its own group, so that would be a corrupt handle).
    """
    pgid = handle.pgid
    if pgid <= 1:
        return []
    try:
        if os.getpgid(0) == pgid:
            return []
    except OSError:
        return []
    if pgid == handle.pid:
        try:
            leader = psutil.Process(pgid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            leader = None
        if leader is not None:
            try:
                if not _same_identity(leader, handle.start_time, handle.boot_time, handle.boot_id):
                    return []  # the group id belongs to somebody else now
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
    members: list[psutil.Process] = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) != pgid:
                continue
            # Members of our group were all created after its leader.
            if proc.create_time() + _WALL_TOLERANCE < handle.start_time:
                continue
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError, PermissionError):
            continue
        members.append(proc)
    return members


def _signal_group(handle: ProcessHandle, sig: int) -> bool:
    """Send ``sig`` to the stage's process group if (and only if) it is provably ours. True if sent."""
    if not _group_members(handle):
        return False
    try:
        os.killpg(handle.pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError as exc:
        raise RunnerError(f"not allowed to signal process group {handle.pgid} ({exc.strerror}); "
                          "was the stage started by another user?") from exc
    return True


# --------------------------------------------------------------------------------------------------- public API


def read_status(handle: ProcessHandle) -> dict[str, Any] | None:
    """The waiter's status record for this handle, or None if not (yet) written.

    A status file left by an earlier process at the same path (different pid) is ignored.
    """
    try:
        data = json.loads(Path(handle.status_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("pid") is not None and data.get("pid") != handle.pid:
        return None
    return data


def _exited(handle: ProcessHandle, status: Mapping[str, Any]) -> ProcessState:
    rc = status.get("returncode")
    return ProcessState(
        state=RunState.EXITED,
        handle=handle,
        returncode=rc if isinstance(rc, int) else None,
        signal=status.get("signal"),
        ended_at=status.get("ended_at"),
        spawn_error=status.get("spawn_error"),
        status=dict(status),
    )


def launch(
    argv: Sequence[str],
    *,
    cwd: str | Path,
    env: Mapping[str, str] | None = None,
    log_path: str | Path,
    status_path: str | Path,
    started_path: str | Path | None = None,
    timeout: float = 5.0,
    token: str | None = None,
    resume: bool = False,
) -> ProcessHandle:
    """Start ``argv`` detached (via the waiter) and return its handle once the started record exists.

    ``env`` is the stage's complete environment (default: this process's).  Output (stdout+stderr) is appended to
    ``log_path``.  The waiter writes ``started_path`` (default ``<status_path>.started``) and, at the end,
    ``status_path``; stale files at those paths are removed first.  Raises :class:`LaunchError` if the command
    cannot be started or the waiter does not report within ``timeout`` seconds.

    With a ``token`` (see :mod:`pfstui.process.intent`) the waiter claims the attempt first and only records
    carrying the token count; ``resume=True`` launches an attempt whose earlier launch may have got anywhere:
    nothing is removed, and the handle returned is that of the attempt's one process, whichever waiter started it.
    """
    if isinstance(argv, str | bytes) or not argv or not all(isinstance(a, str) for a in argv):
        raise LaunchError(f"stage command must be a non-empty list of strings, got {argv!r}; "
                          "build argv as a list (no shell strings)")
    argv = list(argv)
    cwd_path = Path(cwd).absolute()
    if not cwd_path.is_dir():
        raise LaunchError(f"working folder {cwd_path} does not exist; create it or fix the stage's folder")
    log = Path(log_path).absolute()
    status = Path(status_path).absolute()
    started = Path(started_path).absolute() if started_path is not None else Path(_default_started_path(status))
    for folder in {log.parent, status.parent, started.parent}:
        try:
            make_private_dir(folder)
        except OSError as exc:
            raise LaunchError(f"cannot create folder {folder}: {exc.strerror}; check permissions and disk") from exc
    for stale in () if resume else (started, status):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()

    _reap_waiters()
    spec = {
        "schema_version": SPEC_SCHEMA_VERSION,
        "argv": argv,
        "cwd": str(cwd_path),
        "env": dict(os.environ if env is None else env),
        "log_path": str(log),
        "status_path": str(status),
        "started_path": str(started),
    }
    if token is not None:
        spec["token"] = token
    spec_path = status.parent / f".{status.name}.{secrets.token_hex(4)}.spec.json"
    atomic_write_json(spec_path, spec, mode=0o600)

    waiter_env = dict(os.environ)
    root = _package_root()
    waiter_env["PYTHONPATH"] = os.pathsep.join(p for p in (root, waiter_env.get("PYTHONPATH", "")) if p)
    try:
        log_fd = open_private(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    except OSError as exc:
        spec_path.unlink(missing_ok=True)
        raise LaunchError(f"cannot open log file {log}: {exc.strerror}; check permissions and disk") from exc
    try:
        waiter = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, "-m", "pfstui.process.waiter", str(spec_path)],
            cwd="/",
            env=waiter_env,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        spec_path.unlink(missing_ok=True)
        raise LaunchError(f"cannot start the pfstui waiter ({exc}); check that {sys.executable} runs") from exc
    finally:
        os.close(log_fd)
    _WAITERS.append(waiter)
    fault_point("launch-spawned")

    def record(path: Path) -> dict[str, Any] | None:
        return _read_json(path) if token is None else read_record(path, token)

    deadline = time.monotonic() + timeout
    while True:
        if (found := record(started)) is not None:
            return handle_from_started(found, started)
        done = record(status)
        if done is not None and done.get("spawn_error"):
            raise LaunchError(str(done["spawn_error"]))
        # A waiter that lost the attempt's claim to another waiter started nothing: the other one's record comes.
        if waiter.poll() is not None and waiter.returncode != CLAIMED_EXIT:
            if (found := record(started)) is not None:
                return handle_from_started(found, started)
            spec_path.unlink(missing_ok=True)
            raise LaunchError(f"the pfstui waiter exited with code {waiter.returncode} before starting "
                              f"{argv[0]!r}; see {log} for its message")
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)

    waiter.kill()  # it is its own session leader; the stage (if any) is in another session
    waiter.wait()
    if (found := record(started)) is not None:
        return handle_from_started(found, started)
    spec_path.unlink(missing_ok=True)
    raise LaunchError(f"{argv[0]!r} did not start within {timeout:.0f} s (no record at {started}); "
                      "the machine may be overloaded; retry or raise the launch timeout")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def handle_from_started(record: Mapping[str, Any], started: Path) -> ProcessHandle:
    """The handle of a stage from its waiter's started record (see :mod:`pfstui.process.waiter`)."""
    return ProcessHandle(
        pid=int(record["pid"]),
        start_time=float(record["create_time"]),
        pgid=int(record["pgid"]),
        waiter_pid=int(record["waiter_pid"]),
        waiter_start_time=float(record["waiter_create_time"]),
        log_path=str(record["log_path"]),
        status_path=str(record["status_path"]),
        started_path=str(started),
        argv=tuple(record.get("argv", ())),
        cwd=str(record.get("cwd", "")),
        started_at=str(record.get("started_at", "")),
        boot_time=_opt_float(record.get("boot_time")),
        boot_id=record.get("boot_id"),
    )


def poll(handle: ProcessHandle) -> ProcessState:
    """Current state of a stage: running, paused, exited (status recorded) or lost. Never signals anything."""
    _reap_waiters()
    status = read_status(handle)
    if status is not None:
        return _exited(handle, status)
    proc = _stage(handle)
    if proc is not None:
        st = _status_of(proc)
        if st == psutil.STATUS_STOPPED:
            return ProcessState(RunState.PAUSED, handle)
        if st is not None:
            detail = "ending; the waiter is recording its status" if st == psutil.STATUS_ZOMBIE else ""
            return ProcessState(RunState.RUNNING, handle, detail=detail)
    # The stage is gone (or its pid is someone else's).  The waiter may have written the status meanwhile.
    status = read_status(handle)
    if status is not None:
        return _exited(handle, status)
    waiter = _waiter(handle)
    if waiter is not None and _status_of(waiter) not in (None, psutil.STATUS_ZOMBIE):
        return ProcessState(RunState.RUNNING, handle, detail="ending; the waiter is recording its status")
    status = read_status(handle)
    if status is not None:
        return _exited(handle, status)
    return ProcessState(RunState.LOST, handle, detail=_lost_detail(handle))


def _lost_detail(handle: ProcessHandle) -> str:
    try:
        other = psutil.Process(handle.pid)
        return (f"pid {handle.pid} now belongs to another process ({other.name()}); the stage ended without "
                f"a recorded status (no {handle.status_path}); rerun it")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return (f"pid {handle.pid} is gone and no status was recorded at {handle.status_path} (the machine "
                "rebooted or the waiter was killed); rerun the stage")


def wait(handle: ProcessHandle, timeout: float | None = None, interval: float = 0.05) -> ProcessState:
    """Poll until the stage is exited or lost, or ``timeout`` seconds pass; returns the last state."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        state = poll(handle)
        if state.finished or (deadline is not None and time.monotonic() >= deadline):
            return state
        time.sleep(interval)


def group_alive(handle: ProcessHandle) -> bool:
    """True while any process of the stage's group is alive (zombies excluded)."""
    return bool(_group_members(handle))


def terminate(handle: ProcessHandle) -> bool:
    """Non-blocking: SIGTERM (then SIGCONT, so a paused stage can act on it) to the stage's group.

    Returns True if the group was signalled; False if nothing of it remains or its identity did not match.
    Call :func:`escalate` later for whatever survives.
    """
    sent = _signal_group(handle, signal.SIGTERM)
    if sent:
        _signal_group(handle, signal.SIGCONT)
    return sent


def escalate(handle: ProcessHandle) -> bool:
    """SIGKILL whatever remains of the stage's group. True if anything was signalled."""
    return _signal_group(handle, signal.SIGKILL)


def kill(handle: ProcessHandle, grace: float = 10.0, interval: float = 0.05) -> ProcessState:
    """SIGTERM the group, wait up to ``grace`` seconds, SIGKILL what remains; return the final state.

    Blocking (run it in a worker thread from a UI).  A handle whose identity does not match (PID reuse) is
    never signalled; its state (lost) is returned as is.
    """
    if not terminate(handle):
        return wait(handle, timeout=2.0, interval=interval)
    deadline = time.monotonic() + grace
    while group_alive(handle):
        if time.monotonic() >= deadline:
            escalate(handle)
            break
        time.sleep(interval)
    return wait(handle, timeout=max(2.0, interval), interval=interval)


def pause(handle: ProcessHandle) -> bool:
    """SIGSTOP the stage's whole group. True if signalled."""
    return _signal_group(handle, signal.SIGSTOP)


def resume(handle: ProcessHandle) -> bool:
    """SIGCONT the stage's whole group. True if signalled."""
    return _signal_group(handle, signal.SIGCONT)


def adopt(data: Mapping[str, Any]) -> tuple[ProcessHandle, ProcessState]:
    """Rebuild a handle from its JSON dict (e.g. from the session state after a restart) and verify it.

    Returns the handle and its current state (running/paused/exited, or lost when the pid is gone or reused).
    Raises :class:`HandleError` if the dict is malformed.
    """
    handle = ProcessHandle.from_dict(data)
    return handle, poll(handle)
