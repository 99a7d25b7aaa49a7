"""Run a short command to the end and keep what it printed, bounded in time and in memory.

Why: the supervisor asks a gated stage's own command what it would change (its argv with ``--dry-run --json``)
while it goes on ticking and answering clients; the answer must never block its event loop, never grow without
bound (a command that prints gigabytes), and never outlive its deadline (a Butler that hangs on a lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Captured", "capture"]


@dataclass(frozen=True)
class Captured:
    """How the command ended and the first ``limit`` bytes of each stream (decoded, bad bytes replaced)."""

    returncode: int | None
    stdout: str
    stderr: str
    #: It was still running at the deadline and was killed (with its process group).
    timed_out: bool = False
    #: It could not be started at all (``stderr`` says why).
    not_started: bool = False


async def _read(stream: asyncio.StreamReader | None, limit: int) -> bytes:
    """The first ``limit`` bytes; the rest is read and dropped, so the command never blocks on a full pipe."""
    if stream is None:
        return b""
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return bytes(kept)


async def capture(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None,
                  timeout: float = 300.0, limit: int = 1 << 20) -> Captured:
    """Run ``argv`` (a list, never a shell line) in a new process group with stdin closed."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=dict(env) if env is not None else None, cwd=cwd,
            start_new_session=True)
    except OSError as exc:
        return Captured(None, "", f"cannot start {argv[0]}: {exc.strerror or exc}", not_started=True)
    reading = asyncio.gather(_read(proc.stdout, limit), _read(proc.stderr, limit))
    try:
        out, err = await asyncio.wait_for(asyncio.shield(reading), timeout)
        await proc.wait()
    except TimeoutError:
        _kill(proc.pid)
        out, err = await reading
        await proc.wait()
        return Captured(proc.returncode, _text(out), _text(err), timed_out=True)
    except asyncio.CancelledError:  # the supervisor is stopping: the command must not outlive it
        _kill(proc.pid)
        raise
    return Captured(proc.returncode, _text(out), _text(err))


def _kill(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
