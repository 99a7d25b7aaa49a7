"""The small process that sits between pfstui and a running stage (``python -m pfstui.process.waiter SPEC``).

Why: a stage (``pipetask run -j 2 ...``) must outlive the UI, the supervisor and the SSH session that started it,
and someone must still record how it ended.  Like nq's second fork, this waiter lives in its own session, starts
the real command in *another* new session (so the command leads its own process group and kill/pause of that
group reaches every worker while the waiter survives), waits for it and writes the exit status atomically.

Files (all written with :mod:`pfstui.infra.atomic`):

* the spec (written by :func:`pfstui.process.runner.launch`, mode 0600, deleted by the waiter once read)::

    {"schema_version": 1, "argv": [...], "cwd": "...", "env": {...},
     "log_path": "...", "status_path": "...", "started_path": "...", "token": "…" | absent}

  With a ``token`` the waiter first takes the attempt's claim (:mod:`pfstui.process.intent`): when another waiter
  of the same attempt holds it, this one starts nothing and exits with ``CLAIMED_EXIT``.  Both records below
  repeat the token, so a launcher never mistakes another attempt's record for its own.

* the *started* record, as soon as the command exists::

    {"schema_version": 1, "token": "…", "pid": 123, "create_time": 1764000000.12, "boot_time": 1763990000.0,
     "boot_id": "…" | null, "pgid": 123, "waiter_pid": 122, "waiter_create_time": 1764000000.05,
     "argv": [...], "cwd": "...", "log_path": "...", "status_path": "...", "started_at": "2026-11-25T10:00:00+00:00"}

* the *status* record, when the command has ended (or could not start)::

    {"schema_version": 1, "token": "…", "pid": 123 | null, "create_time": ... | null, "returncode": 3 | -15 | 127,
     "signal": "SIGTERM" | null, "signal_number": 15 | null, "spawn_error": "..." | null,
     "ended_at": "2026-11-25T10:05:00+00:00"}

  ``returncode`` follows :mod:`subprocess`: negative means "killed by that signal"; 127/126 with ``spawn_error``
  means the command could not be started at all.

The waiter ignores SIGHUP and SIGINT (a closing terminal or a stray Ctrl-C must not lose the status) using a
Python-level no-op handler rather than ``SIG_IGN``: handlers are reset on ``exec`` while ignored dispositions are
inherited, so the stage itself keeps the default behaviour.  Nothing is forwarded; pfstui signals the stage's
process group directly.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from pfstui.infra.atomic import atomic_write_json
from pfstui.infra.private import open_private
from pfstui.process.intent import CLAIMED_EXIT, LaunchFiles, take_claim

SPEC_SCHEMA_VERSION = 1
RECORD_SCHEMA_VERSION = 1
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


def utc_now() -> str:
    """Current UTC time as ISO 8601 (``+00:00``), the format of every timestamp pfstui writes."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def current_boot_id() -> str | None:
    """Linux boot id, so a pid recorded before a reboot is never mistaken for one after it."""
    try:
        return BOOT_ID_PATH.read_text().strip() or None
    except OSError:
        return None


def signal_name(number: int) -> str:
    """``15 -> "SIGTERM"``; unknown numbers become ``"SIG<n>"``."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


def _noop_handler(signum: int, frame: Any) -> None:  # noqa: ARG001 - signal handler signature
    """Swallow SIGHUP/SIGINT in the waiter only (see module docstring)."""


def _say(message: str) -> None:
    """Write a line to the waiter's stderr, which is the stage log."""
    try:
        sys.stderr.write(f"pfstui-waiter: {message}\n")
        sys.stderr.flush()
    except OSError:
        pass


def _status_record(
    *,
    pid: int | None,
    create_time: float | None,
    returncode: int,
    spawn_error: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    sig = -returncode if returncode < 0 else None
    return {
        "schema_version": RECORD_SCHEMA_VERSION,
        "token": token,
        "pid": pid,
        "create_time": create_time,
        "returncode": returncode,
        "signal": signal_name(sig) if sig else None,
        "signal_number": sig,
        "spawn_error": spawn_error,
        "ended_at": utc_now(),
    }


def run(spec: dict[str, Any]) -> int:
    """Start the command described by ``spec``, record it, wait for it, record its end. Returns the waiter's rc."""
    argv: list[str] = list(spec["argv"])
    log_path = Path(spec["log_path"])
    status_path = Path(spec["status_path"])
    started_path = Path(spec["started_path"])
    cwd = spec["cwd"]
    env = dict(spec["env"])
    token = spec.get("token")
    if token is not None:
        try:
            claimed = take_claim(LaunchFiles(log_path, status_path, started_path, token).claim, token)
        except OSError as exc:
            _say(f"cannot claim the attempt ({exc.strerror}); not starting it")
            return 1
        if not claimed:
            _say(f"another waiter already started this attempt (launch {token}); nothing to do")
            return CLAIMED_EXIT

    log_fd = open_private(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        child = subprocess.Popen(  # noqa: S603 - argv list from the plan, never a shell
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,
            close_fds=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        err = getattr(exc, "errno", None)
        code = 127 if err in (errno.ENOENT, errno.ENOTDIR) else 126
        reason = getattr(exc, "strerror", None) or str(exc)
        message = f"cannot start {argv[0]!r}: {reason}; check the command name, PATH and permissions"
        try:
            os.write(log_fd, f"pfstui: {message}\n".encode())
        except OSError:
            pass
        atomic_write_json(status_path, _status_record(pid=None, create_time=None, returncode=code,
                                                      spawn_error=message, token=token))
        return 1
    finally:
        os.close(log_fd)

    try:
        create_time = psutil.Process(child.pid).create_time()
        me = psutil.Process(os.getpid())
        try:
            pgid = os.getpgid(child.pid)
        except OSError:
            pgid = child.pid  # start_new_session makes it the group leader
        started = {
            "schema_version": RECORD_SCHEMA_VERSION,
            "token": token,
            "pid": child.pid,
            "create_time": create_time,
            "boot_time": psutil.boot_time(),
            "boot_id": current_boot_id(),
            "pgid": pgid,
            "waiter_pid": me.pid,
            "waiter_create_time": me.create_time(),
            "argv": argv,
            "cwd": str(cwd),
            "log_path": str(log_path),
            "status_path": str(status_path),
            "started_at": utc_now(),
        }
        atomic_write_json(started_path, started)
    except Exception as exc:  # noqa: BLE001 - nobody could ever track the stage: stop it rather than orphan it
        _say(f"cannot record the started stage ({exc}); stopping it")
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except OSError:
            pass
        rc = child.wait()
        try:
            atomic_write_json(status_path, _status_record(pid=child.pid, create_time=None, returncode=rc,
                                                          token=token))
        except Exception as exc2:  # noqa: BLE001
            _say(f"cannot record the status either: {exc2}")
        return 1

    rc = child.wait()
    try:
        atomic_write_json(status_path, _status_record(pid=child.pid, create_time=create_time, returncode=rc,
                                                      token=token))
    except Exception as exc:  # noqa: BLE001
        _say(f"stage ended with returncode {rc} but its status could not be recorded: {exc}")
        return 1
    return 0


def main(args: list[str] | None = None) -> int:
    """Entry point: ``python -m pfstui.process.waiter SPEC_PATH``."""
    signal.signal(signal.SIGHUP, _noop_handler)
    signal.signal(signal.SIGINT, _noop_handler)
    args = sys.argv[1:] if args is None else args
    if len(args) != 1:
        _say("usage: python -m pfstui.process.waiter SPEC_PATH")
        return 2
    spec_path = Path(args[0])
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _say(f"cannot read the launch spec {spec_path}: {exc}")
        return 2
    finally:
        try:
            spec_path.unlink()  # it holds the stage environment; do not leave it lying around
        except OSError:
            pass
    if spec.get("schema_version") != SPEC_SCHEMA_VERSION:
        _say(f"launch spec {spec_path} has schema {spec.get('schema_version')!r}, expected {SPEC_SCHEMA_VERSION}")
        return 2
    return run(spec)


if __name__ == "__main__":
    sys.exit(main())
