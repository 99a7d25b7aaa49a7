"""Launch intents: an attempt's process is started at most once, even when its launcher dies mid-launch.

Why: the supervisor records an attempt (durably, status ``starting``) *before* it launches the attempt's
process, and it can be SIGKILLed at any point of the launch.  A new supervisor then finds the attempt without a
process handle and must tell "it started" (adopt it) from "it is about to" (wait) from "it never will" (start
it), and must never start a second process for the attempt: a ``pipetask run`` run twice makes two RUN
collections.  Timing cannot decide that (a waiter spawned just before the kill may still be importing Python), so
two facts do:

* every launch of an attempt carries its *token* (fresh per attempt, part of the started record's file name,
  repeated inside the waiter's started and status records, so a stale record of another attempt never counts);
* the waiter takes the attempt's *claim* (``.claim-<token>``, created with ``O_EXCL``) before it starts the
  command.  Of any number of waiters launched for one attempt, exactly one starts it; the others exit with
  :data:`CLAIMED_EXIT` and their launcher waits for the winner's started record.

So a launcher that does not know what became of a launch may simply launch again with the same token
(:func:`pfstui.process.runner.launch` with ``resume=True``): it gets the one process of the attempt either way.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import psutil

__all__ = ["CLAIMED_EXIT", "Found", "LaunchFiles", "Outcome", "find", "read_record", "take_claim"]

#: The waiter's exit code when another waiter of the same attempt holds its claim (it started nothing).
CLAIMED_EXIT = 3
#: A claim whose holder cannot be read (the waiter died between creating it and writing it) is judged after this.
_UNREADABLE_CLAIM_SECONDS = 10.0
_TOKEN = re.compile(r"^status\.([0-9a-f]{16})\.started$")


@dataclass(frozen=True)
class LaunchFiles:
    """Where one attempt's waiter writes: its log, its status, its started record and its claim."""

    log: Path
    status: Path
    started: Path
    token: str | None

    @classmethod
    def new(cls, folder: Path | str) -> LaunchFiles:
        """The files of a new attempt in ``folder``, with a fresh token."""
        folder = Path(folder).absolute()
        token = secrets.token_hex(8)
        return cls(folder / "stage.log", folder / "status", folder / f"status.{token}.started", token)

    @classmethod
    def of(cls, log: str, status: str, started: str) -> LaunchFiles:
        """The files an attempt recorded (its token read back from the started record's name; None if absent)."""
        match = _TOKEN.match(Path(started).name)
        return cls(Path(log), Path(status), Path(started), match.group(1) if match else None)

    @property
    def claim(self) -> Path:
        return self.status.parent / f".claim-{self.token}"


def read_record(path: Path, token: str | None) -> dict[str, Any] | None:
    """The JSON record at ``path`` if it belongs to the launch of ``token`` (None: absent, unreadable, another's)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("token") == token else None


def take_claim(path: Path, token: str) -> bool:
    """Claim the attempt for this waiter (False: another waiter already has it).  Durable before it returns,
    so a launcher that finds the claim knows a waiter was past this point."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return False
    try:
        me = psutil.Process()
        os.write(fd, json.dumps({"token": token, "waiter_pid": me.pid,
                                 "waiter_create_time": me.create_time()}).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


class Outcome(StrEnum):
    """What became of a launch, as far as the files and the processes tell."""

    STARTED = "started"  # the started record exists: adopt it
    FAILED = "failed"  # the waiter recorded a status without starting (the command could not be started)
    PENDING = "pending"  # a live waiter holds the claim and will write the started record in a moment
    VANISHED = "vanished"  # the waiter that held the claim died without a record: the process is unknown
    NOT_STARTED = "not-started"  # no waiter got as far as the claim: launching again is safe (see module doc)


@dataclass(frozen=True)
class Found:
    outcome: Outcome
    record: dict[str, Any] | None = None
    detail: str = ""


def find(files: LaunchFiles) -> Found:
    """What became of the launch of ``files`` (see :class:`Outcome`); never starts or signals anything."""
    if files.token is None:
        return Found(Outcome.VANISHED, detail="the attempt was recorded without a launch token (an older pfstui); "
                                              "restart the stage if it did not run")
    records = _records(files)
    if records is not None or not files.claim.exists():
        return records or Found(Outcome.NOT_STARTED)
    if _claim_alive(files.claim):
        return Found(Outcome.PENDING)
    return _records(files) or Found(Outcome.VANISHED, detail=(
        f"its waiter claimed the launch and vanished before recording the process (no {files.started.name}); "
        "check that it did not run, then restart the stage"))


def _records(files: LaunchFiles) -> Found | None:
    started = read_record(files.started, files.token)
    if started is not None:
        return Found(Outcome.STARTED, started)
    status = read_record(files.status, files.token)
    if status is not None:
        return Found(Outcome.FAILED, status, str(status.get("spawn_error") or "the waiter could not start it"))
    return None


def _claim_alive(path: Path) -> bool:
    """True while the waiter holding the claim lives (or, its claim unreadable, for a short grace)."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        proc = psutil.Process(int(holder["waiter_pid"]))
        same = abs(proc.create_time() - float(holder["waiter_create_time"])) < 1.0
        return same and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    except (OSError, ValueError, KeyError, TypeError):
        try:
            return time.time() - path.stat().st_mtime < _UNREADABLE_CLAIM_SECONDS
        except OSError:
            return False
