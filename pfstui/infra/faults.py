"""Named points where a test may stop a real pfstui process to kill it there (``PFSTUI_FAULT_PAUSE``).

Why: crash safety is only proven by killing real processes at the worst moments, and some of those moments
(between the journal's intent and the registry commit) last a millisecond, too short to hit with a timer.
Test-only and inert unless the variable is set:

* ``PFSTUI_FAULT_PAUSE=intent,registry-commit`` - at each listed point the process writes
  ``pfstui-fault: paused at NAME (pid N)`` to stderr and sleeps (at most ``PFSTUI_FAULT_PAUSE_SECONDS``, 60 by
  default, then carries on), so the test can SIGKILL it exactly there;
* any other value (e.g. ``trace``) only announces each point as ``pfstui-fault: at NAME`` (for kills timed
  from a point).

The points (see :mod:`pfstui.butler.apply`): ``apply`` (before anything), ``intent`` (the journal intent is
on disk, the registry transaction still open), ``registry-commit`` (the registry committed, the journal's
commit record not yet written), ``journal-commit`` (both written).  In the supervisor starting a stage (see
:mod:`pfstui.queue.starts`): ``launch-intent`` (the attempt saved, nothing launched), ``launch-spawned`` (its
waiter spawned, its started record not read yet), ``launch-started`` (the stage runs, its handle not saved).
"""

from __future__ import annotations

import os
import time

__all__ = ["fault_point"]


def fault_point(name: str) -> None:
    """Announce (and, when listed in ``PFSTUI_FAULT_PAUSE``, pause at) the named point; a no-op otherwise."""
    wanted = os.environ.get("PFSTUI_FAULT_PAUSE")
    if not wanted:
        return
    pause = name in {w.strip() for w in wanted.split(",")}
    text = f"pfstui-fault: {'paused at' if pause else 'at'} {name} (pid {os.getpid()})\n"
    try:
        os.write(2, text.encode())
    except OSError:
        pass
    if pause:
        try:
            limit = float(os.environ.get("PFSTUI_FAULT_PAUSE_SECONDS", "60"))
        except ValueError:
            limit = 60.0
        time.sleep(max(0.0, limit))
