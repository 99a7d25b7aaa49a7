"""The Parsl worker pools of a bps submission, found and signalled (they are not in the bps process group).

SIGINT is not a cancel and the Parsl worker pool lives in its own process group: :func:`worker_pools`
finds it by its ``--logdir`` inside the stage's working folder so the supervisor can signal it too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["signal_pools", "worker_pools"]


def worker_pools(workdir: Path | str) -> list[int]:
    """Process-group ids of the Parsl worker pools of the submission in ``workdir``.

    The pool (``process_worker_pool.py``) starts in a session of its own, so killing the bps group leaves
    it running jobs; it is recognised by a ``--logdir`` under ``<workdir>/runinfo`` (resolved against the
    pool's own working folder when relative).
    """
    import psutil

    root = (Path(workdir).absolute() / "runinfo").as_posix()
    groups: set[int] = set()
    for proc in psutil.process_iter(["cmdline", "pid"]):
        try:
            cmd = proc.info.get("cmdline") or []
            logdir = next((a.split("=", 1)[1] for a in cmd if a.startswith("--logdir=")), None)
            if logdir is None and "--logdir" in cmd:
                i = cmd.index("--logdir")
                logdir = cmd[i + 1] if i + 1 < len(cmd) else None
            if not logdir:
                continue
            path = Path(logdir)
            if not path.is_absolute():
                path = Path(proc.cwd()) / path
            if os.path.normpath(path).startswith(root):
                groups.add(os.getpgid(proc.pid))
        except (psutil.Error, OSError, StopIteration):
            continue
    groups.discard(os.getpgid(0))
    return sorted(groups)


def signal_pools(workdir: Path | str, sig: int) -> int:
    """Send ``sig`` to every worker-pool group of ``workdir``; how many groups got it."""
    sent = 0
    for pgid in worker_pools(workdir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
            sent += 1
    return sent
