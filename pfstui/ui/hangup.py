"""The app ends with its terminal: on SIGHUP, and on the terminal's hang-up when no SIGHUP tells it.

Why: the app is only a view (the supervisor owns the queue, Butler changes are journaled write-ahead), so when
the operator's SSH link drops it must go, whatever it is doing: a modal open, workers in threads, its link to
the supervisor down.  The kernel's SIGHUP does that by default, unless the app inherited SIGHUP ignored
(``nohup``, some job launchers) or a shell that leads the terminal's session does not pass the hang-up on.
Textual then reads end-of-file forever (its input thread loops on the empty read, or dies of EIO) and the app
outlives the link, holding its worker threads and Butler connections.  So SIGHUP gets its default action
back, and a thread waits for the terminal's hang-up (``POLLHUP``) and delivers the SIGHUP itself.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading

__all__ = ["exit_with_terminal"]


def exit_with_terminal() -> bool:
    """Make this process end when its terminal hangs up; False (nothing done) without a terminal or off the
    main thread (only it may set signal handlers)."""
    fd = next((f.fileno() for f in (sys.__stdin__, sys.__stdout__, sys.__stderr__) if f is not None and f.isatty()),
              None)
    if fd is None or threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    threading.Thread(target=_wait_for_hangup, args=(fd,), name="pfstui-hangup", daemon=True).start()
    return True


def _wait_for_hangup(fd: int) -> None:
    poller = select.poll()
    poller.register(fd, 0)  # no events asked for: poll reports only POLLHUP, POLLERR and POLLNVAL
    while True:
        events = [mask for _, mask in poller.poll()]
        if any(mask & (select.POLLHUP | select.POLLERR) for mask in events):
            os.kill(os.getpid(), signal.SIGHUP)  # its default action: the process ends at once
            return
        if any(mask & select.POLLNVAL for mask in events):
            return  # the descriptor was closed: the app is ending by itself
