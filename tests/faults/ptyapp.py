"""Drive the real ``pfstui`` app in a pseudo-terminal, as an operator's SSH session would.

Two drivers:

* :class:`TmuxApp` runs the app as the only pane of a private tmux server (``tmux -L NAME``), so the test can
  read the screen (``capture-pane``), type keys, SIGKILL the app (``kill``) or close its terminal
  (``close_terminal``: tmux destroys the pane's pty and the app gets SIGHUP, exactly as when sshd drops a
  session).  One server per app: the server exits with its last pane, and ``stop`` kills what is left.
* :class:`PtyApp` runs it on a bare pty pair (no tmux) as session leader with the pty as controlling
  terminal; ``close_terminal`` closes the master side, so the kernel sends the hang-up itself.

Both wait for nothing on their own; :meth:`TmuxApp.wait_screen` polls the screen for a condition.  Screen
helpers parse the Queue pane's table (:func:`queue_rows`) and the log view's "N lines" border
(:func:`log_lines_shown`).
"""

from __future__ import annotations

import fcntl
import itertools
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

TMUX = shutil.which("tmux")
STATUS_WORDS = ("dependency-failed", "queued", "running", "paused", "done", "failed", "killed", "skipped",
                "lost")
_names = itertools.count()


def pfstui_argv(repo: Path | str, plan: Path | str) -> list[str]:
    """The console script of this environment, as the operator types it."""
    script = Path(sys.executable).parent / "pfstui"
    head = [str(script)] if script.exists() else [sys.executable, "-m", "pfstui"]
    return head + ["--repo", str(repo), "--plan", str(plan)]


class TmuxApp:
    """The app in its own tmux server; see the module docstring."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], *, size: tuple[int, int] = (120, 40),
                 cwd: Path | str | None = None) -> None:
        if TMUX is None:
            raise RuntimeError("tmux is not installed")
        self.argv = list(argv)
        self.env = {k: v for k, v in env.items() if k not in ("TMUX", "TMUX_PANE")}  # never nest into a test's tmux
        self.size = size
        self.cwd = str(cwd) if cwd else None
        self.server = f"pfstui-fault-{os.getpid()}-{next(_names)}"
        self.pid: int | None = None
        self.proc: psutil.Process | None = None
        self.started_at = 0.0

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TMUX, "-L", self.server, "-f", "/dev/null", *args], env=self.env,
                              capture_output=True, text=True, check=check, timeout=20)

    def start(self) -> TmuxApp:
        width, height = self.size
        # The server is started by this very command with our environment, and a pane inherits the
        # server's environment: the app sees exactly self.env (plus tmux's TERM).
        command = self.argv
        self.started_at = time.monotonic()
        self._tmux("new-session", "-d", "-s", "app", "-x", str(width), "-y", str(height),
                   *(["-c", self.cwd] if self.cwd else []), *command)
        out = self._tmux("list-panes", "-t", "app", "-F", "#{pane_pid}").stdout.split()
        self.pid = int(out[0])
        self.proc = psutil.Process(self.pid)
        return self

    def screen(self) -> str:
        done = self._tmux("capture-pane", "-p", "-t", "app", check=False)
        return done.stdout if done.returncode == 0 else ""

    def send_keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "app", *keys)

    def wait_screen(self, predicate: Callable[[str], bool], timeout: float = 20.0, interval: float = 0.05) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            if not self.alive():
                raise AssertionError(f"the app exited; last screen:\n{text}")
            time.sleep(interval)
        raise AssertionError(f"screen condition not met within {timeout} s; last screen:\n{text}")

    def alive(self) -> bool:
        try:
            return self.proc is not None and self.proc.is_running() and self.proc.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the app process itself (SIGKILL: the app gets no chance to clean up)."""
        assert self.pid is not None
        os.kill(self.pid, sig)

    def close_terminal(self) -> None:
        """Destroy the app's terminal: tmux closes the pane's pty and hangs up its processes (SIGHUP)."""
        self._tmux("kill-server", check=False)

    def wait_gone(self, timeout: float = 10.0) -> bool:
        """True once the app is dead (a zombie counts: tmux reaps its pane's process up to ~2 s late)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def stop(self) -> None:
        """Cleanup for tests: end this server and, if it survived that, the app process it started."""
        self._tmux("kill-server", check=False)
        if self.proc is not None and not self.wait_gone(5):
            try:
                self.proc.kill()
            except psutil.NoSuchProcess:
                pass
        # tmux leaves its socket file behind; it is this server's own, named after this object.
        base = Path(self.env.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        (base / self.server).unlink(missing_ok=True)


class PtyApp:
    """The app on a bare pty: it is a session leader whose controlling terminal is the pty's slave side.

    ``sighup_ignored`` starts it as ``nohup`` would (SIGHUP ignored, inherited through exec): then only the
    end of its terminal (EOF) can tell it the link is gone.
    """

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], *, size: tuple[int, int] = (120, 40),
                 sighup_ignored: bool = False) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.size = size
        self.sighup_ignored = sighup_ignored
        self.output = bytearray()
        self.proc: subprocess.Popen[bytes] | None = None
        self._master: int | None = None
        self._reader: threading.Thread | None = None
        self._closing = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> PtyApp:
        master, slave = os.openpty()
        width, height = self.size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        env = dict(self.env, TERM=self.env.get("TERM") or "xterm-256color")
        env.pop("TMUX", None)
        self.proc = subprocess.Popen(
            self.argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
            preexec_fn=_nohup_and_take_tty if self.sighup_ignored else _take_controlling_tty, close_fds=True,
        )
        os.close(slave)
        self._master = master
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        return self

    def _drain(self) -> None:
        # Always read: a terminal whose output nobody reads blocks the app's writes.  Never block in read():
        # close_terminal() must be able to stop this thread first (see there).
        assert self._master is not None
        fd = self._master
        while not self._closing.is_set():
            try:
                if not select.select([fd], [], [], 0.05)[0]:
                    continue
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self.output += chunk

    def seen(self, text: str) -> bool:
        with self._lock:
            return text.encode() in self.output

    def wait_output(self, text: str, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.seen(text):
                return True
            if self.proc is not None and self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def type(self, text: str) -> None:
        """Type ``text`` into the terminal (``"\x10"`` is ctrl+p)."""
        assert self._master is not None
        os.write(self._master, text.encode())

    def close_terminal(self) -> None:
        """Close the master side: the kernel hangs up the terminal and SIGHUPs its session leader.

        The reader thread is stopped first.  Why: a read() in progress on the master holds the open file, so a
        close() from another thread only drops the descriptor; the kernel hangs the terminal up when that read
        returns, i.e. at the app's next output.  An app with nothing to draw then outlived its "closed" pty:
        the close-pty fault that failed under load.
        """
        self._wait_controlling_tty()
        self._closing.set()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(5)
        fd, self._master = self._master, None
        if fd is not None:
            os.close(fd)

    def _wait_controlling_tty(self, timeout: float = 3.0) -> None:
        """An sshd hangs up a shell that owns its terminal; a kill point in the first milliseconds could
        close the pty before the child has made it its controlling terminal (then no SIGHUP is sent at
        all). Wait until /proc says it has one (field 7, tty_nr, is not 0)."""
        if self.proc is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                stat = open(f"/proc/{self.proc.pid}/stat").read()
                if int(stat.rsplit(")", 1)[1].split()[4]) != 0:
                    return
            except (OSError, ValueError, IndexError):
                return
            time.sleep(0.01)

    def wait_gone(self, timeout: float = 10.0) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        self.close_terminal()
        if self.proc is not None and self.proc.poll() is None:
            if self.wait_gone(5) is None:
                self.proc.kill()
                self.proc.wait(5)


def _take_controlling_tty() -> None:  # pragma: no cover - runs in the child between fork and exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _nohup_and_take_tty() -> None:  # pragma: no cover - runs in the child between fork and exec
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _take_controlling_tty()


# ------------------------------------------------------------------------------------------ screen parsing
def queue_rows(screen: str, stage_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``{stage: (status word, quanta text)}`` for the Queue pane rows found on ``screen``."""
    rows: dict[str, tuple[str, str]] = {}
    words = "|".join(re.escape(w) for w in STATUS_WORDS)
    for line in screen.splitlines():
        for sid in stage_ids:
            m = re.match(rf"^\s*{re.escape(sid)}\s+({words})(?:\s+(.*))?$", line)
            if m:
                rows[sid] = (m.group(1), (m.group(2) or "").strip())
    return rows


def quanta_shown(text: str) -> tuple[int, int] | None:
    """``(done, total)`` from a Quanta cell such as ``████████ 16/16``."""
    m = re.search(r"(\d+)/(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def log_lines_shown(screen: str) -> int | None:
    """The line count in the log view's border (``FOLLOW · 1,234 lines``), when it shows one."""
    m = re.search(r"FOLLOW · ([\d,]+) lines", screen)
    return int(m.group(1).replace(",", "")) if m else None


def file_lines(path: Path | str) -> int:
    """Lines of a log file as a viewer counts them: complete lines plus a last one without its newline."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return 0
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
