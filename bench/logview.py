#!/usr/bin/env python
"""The LOGS pane against its goals: time to the last line of a huge log, memory, and live following.

Every figure is a ratio against a baseline measured in the same run:

(a) time until the LAST line of a large pipetask-style log is painted (default 2 GiB, ``--size``) against a
    1 KiB log, with the real ``LogView`` in a fresh process each time:
    - headless (``App.run_test``), from the app starting to the compositor asking for the row holding the
      last line (goal <= 1.2x);
    - in a real terminal (tmux, 160x48), from spawning the process to the last line being in
      ``tmux capture-pane`` (and the app's own figure from inside that process).
(b) peak RSS (``ru_maxrss`` of the child, read after the background index has covered the whole file)
    with the big log open against the 1 KiB log (goal <= 1.5x).
(c) following ``--logs`` (8) logs, each growing by ``--rate`` (10,000) lines/s from a writer subprocess,
    for ``--duration`` (30) s, with ``LogsPanel`` split 4 in a 200x50 pty whose output this script reads:
    - bytes written to the terminal per second against ``tail -f`` of the same 8 logs (goal <= 0.05x);
    - CPU of the app (all threads) as % of one core (goal <= 20%);
    - line-to-screen delay: for each writer tick (one ms timestamp, 1/100 s of lines), the time from its
      write to the first frame showing a line of it (goal <= 0.25 s);
    - then, with the writer still running, keypress-to-repaint: ``f`` (pause) and cursor ``up`` on the
      focused view, each timed until the frame carrying its unique status text (goal p99 <= 50 ms).

Big files go to a temporary folder (``--tmp``) that is removed at the end.  Figures are printed as measured,
goals missed included.  On 2 cores the whole run takes about 2 minutes (plus writing the big file).

The follow app of (c) does what the pfstui app does once it has started in a terminal: it calls
``pfstui.ui.app.settle_gc()`` (``gc.freeze()`` of the start-up objects, so full GC passes walk only what
was made since).  ``--without-settle-gc`` runs (c) a second time without it, for comparison.

Usage: python bench/logview.py [--size 2G] [--repeat 3] [--duration 30] [--rate 10000] [--logs 8]
                               [--without-settle-gc] [--skip-open] [--skip-tmux] [--skip-follow] [--tmp DIR]
"""

from __future__ import annotations

import argparse
import calendar
import fcntl
import json
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
PY = sys.executable

# --------------------------------------------------------------------------------------------------
# Log content
# --------------------------------------------------------------------------------------------------

_DID = "{{instrument: 'PFS', arm: '{arm}', spectrograph: {sm}, visit: {visit}, dither: 0, pfs_design_id: 305441741}}"
_TEMPLATES = [
    "INFO {ts} lsst.pipe.base.single_quantum_executor (isr:{did})(single_quantum_executor.py:220) - "
    "Preparing execution of quantum for label=isr dataId={did}.",
    "INFO {ts} pfs.isr (isr:{did})(isr.py:512) - Overscan correction: mean level 1000.06 ADU, row-to-row rms 1.18 ADU",
    "INFO {ts} pfs.isr (isr:{did})(isr.py:633) - Applying crosstalk correction (coefficient 2.0e-04).",
    "INFO {ts} lsst.pipe.base.single_quantum_executor (isr:{did})(single_quantum_executor.py:262) - "
    "Execution of task 'isr' on quantum {did} took 0.052 seconds",
    "INFO {ts} lsst.pipe.base.mp_graph_executor ()(mp_graph_executor.py:757) - Executed {n} quanta successfully, "
    "0 failed and 15 remain out of total 100000 quanta.",
    "VERBOSE {ts} pfs.isr (isr:{did})(isr.py:700) - Median of amplifier {sm}: 2.62 ADU",
]
_ERROR = [
    "ERROR {ts} lsst.pipe.base.single_quantum_executor (isr:{did})(single_quantum_executor.py:316) - "
    "Execution of task 'isr' on quantum {did} failed. Exception RuntimeError: Saturated amplifier",
    "Traceback (most recent call last):",
    '  File "/work/venv312/lib/python3.12/site-packages/lsst/pipe/base/single_quantum_executor.py", line 312, in run',
    "    self._execute(task, quantum)",
    "RuntimeError: Saturated amplifier",
]


def _ts(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(t * 1000) % 1000:03d}+00:00"


def make_block(n_lines: int = 20000) -> bytes:
    """About 4 MiB of varied pipetask --long-log lines (an error with a traceback now and then)."""
    out = []
    t = 1764064000.0
    for i in range(n_lines):
        did = _DID.format(arm="brnm"[i % 4], sm=1 + i % 4, visit=1000 + i)
        if i % 2000 == 1999:
            out.extend(x.format(ts=_ts(t), did=did) for x in _ERROR)
        else:
            out.append(_TEMPLATES[i % len(_TEMPLATES)].format(ts=_ts(t), did=did, n=i, sm=1 + i % 4))
        t += 0.001
    return ("\n".join(out) + "\n").encode()


def write_log(path: Path, size: int, marker: str) -> None:
    """A log of about ``size`` bytes ending with a unique ``marker`` line."""
    last = f"INFO {_ts(time.time())} lsst.pipe.base.mp_graph_executor ()(mp_graph_executor.py:757) - {marker}\n"
    room = max(0, size - len(last))
    with open(path, "wb") as f:
        if room:
            block = make_block() if room > 64 * 1024 else make_block(max(1, room // 200))
            while room >= len(block):
                f.write(block)
                room -= len(block)
            part = block[:room]
            cut = part.rfind(b"\n") + 1
            f.write(part[:cut])
        f.write(last.encode())


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)i?B?", text.strip(), re.IGNORECASE)
    if not m:
        raise SystemExit(f"--size {text!r}: give a size such as 2G, 500M or 1K")
    return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))


# --------------------------------------------------------------------------------------------------
# Child: open one log, report when its last line is painted
# --------------------------------------------------------------------------------------------------


def child_open(path: str, marker: str, result: str, headless: bool) -> None:
    t_proc = time.perf_counter()
    import asyncio
    import resource

    from textual.app import App

    from pfstui.ui.widgets.log_view import LogView

    state: dict[str, float | int | None] = {"paint": None, "indexed": None}

    class MarkerView(LogView):
        def render_line(self, y):
            strip = super().render_line(y)
            if state["paint"] is None and marker in strip.text:
                state["paint"] = time.perf_counter()
                state["bytes_at_paint"] = self.index.bytes_read if self.index is not None else None
            return strip

    class OpenApp(App):
        def compose(self):
            yield MarkerView(path, poll_interval=0.2)

        def on_mount(self):
            self.set_interval(0.02, self._check)

        def _check(self):
            view = self.query_one(MarkerView)
            if state["paint"] is not None and view.index is not None and view.index.indexed:
                if state["indexed"] is None:
                    state["indexed"] = time.perf_counter()
                    self.set_timer(0.3, self.exit)

    t_app = time.perf_counter()
    if headless:
        async def run():
            app = OpenApp()
            async with app.run_test(size=(160, 48)) as pilot:
                while state["indexed"] is None:
                    await pilot.pause(0.01)
                await pilot.pause(0.3)
                view = app.query_one(MarkerView)
                state["bytes_read"] = view.index.bytes_read
                state["checkpoints"] = view.index.checkpoints
        asyncio.run(run())
    else:
        OpenApp().run()
    out = {
        "import_s": t_app - t_proc,
        "paint_from_app_s": (state["paint"] or 0) - t_app,
        "paint_from_proc_s": (state["paint"] or 0) - t_proc,
        "indexed_from_app_s": (state["indexed"] or 0) - t_app,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "bytes_read": state.get("bytes_read"),
        "bytes_at_paint": state.get("bytes_at_paint"),
        "checkpoints": state.get("checkpoints"),
    }
    Path(result).write_text(json.dumps(out))


def run_open_headless(path: Path, marker: str, tmp: Path) -> dict:
    res = tmp / f"res-{uuid.uuid4().hex}.json"
    subprocess.run([PY, str(HERE), "--child", "open-headless", str(path), marker, str(res)], check=True,
                   cwd=ROOT, timeout=600)
    return json.loads(res.read_text())


def run_open_tmux(path: Path, marker: str, tmp: Path) -> dict:
    """Spawn the app in a detached tmux session; time until the marker is in the pane."""
    sock = f"pfstui-bench-{uuid.uuid4().hex[:10]}"
    res = tmp / f"res-{uuid.uuid4().hex}.json"
    tm = ["tmux", "-L", sock, "-f", "/dev/null"]
    cmd = [PY, str(HERE), "--child", "open-tui", str(path), marker, str(res)]
    t0 = time.perf_counter()
    subprocess.run([*tm, "new-session", "-d", "-s", "b", "-x", "160", "-y", "48", "--", *cmd], check=True,
                   cwd=ROOT, env={**os.environ, "TERM": "xterm-256color"})
    seen = None
    try:
        deadline = t0 + 120
        while time.perf_counter() < deadline:
            out = subprocess.run([*tm, "capture-pane", "-p", "-t", "b"], capture_output=True, text=True).stdout
            if marker in out:
                seen = time.perf_counter() - t0
                break
            time.sleep(0.005)
        while not res.exists() and time.perf_counter() < deadline:
            time.sleep(0.05)
    finally:
        subprocess.run([*tm, "kill-server"], capture_output=True)
        sock_path = Path(f"/tmp/tmux-{os.getuid()}") / sock
        sock_path.unlink(missing_ok=True)
    out = json.loads(res.read_text()) if res.exists() else {}
    out["pane_s"] = seen
    return out


# --------------------------------------------------------------------------------------------------
# Child: the follow app, and the writer
# --------------------------------------------------------------------------------------------------


def child_follow(folder: str, poll: float, settle_gc: bool = True) -> None:
    from textual.app import App

    from pfstui.ui.panes.logs import LogsPanel

    paths = sorted(Path(folder).glob("stage*.log"))

    class FollowApp(App):
        def compose(self):
            yield LogsPanel(split=4, poll_interval=poll)

        async def on_mount(self):
            panel = self.query_one(LogsPanel)
            for i, p in enumerate(paths):
                await panel.add_log(p, p.stem, activate=(i == 0))
            if settle_gc:  # as PfsTuiApp does once started (after its first frame and deferred panes)
                from pfstui.ui.app import settle_gc as settle

                settle()

    prof_path = os.environ.get("PFSTUI_BENCH_PROFILE")
    if prof_path:  # profile the UI thread (developer aid)
        import cProfile

        cProfile.runctx("FollowApp().run()", globals(), {"FollowApp": FollowApp}, prof_path)
    else:
        FollowApp().run()


def child_writer(folder: str, logs: int, rate: int, duration: float) -> None:
    """Append ``rate`` lines/s to each log in 10 ms ticks; every tick's lines carry that tick's time.

    The time is in the ``--long-log`` head and again in the message: the Logs pane shows heads compact
    (``HH:MM:SS``), and the message is what the delay measurement then reads (same line length as the
    lines before the compact display: 27 + 33 padding characters)."""
    paths = [Path(folder) / f"stage{i}.log" for i in range(logs)]
    fds = [os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) for p in paths]
    tail = [f"(mp_graph_executor.py:757) - stage{i} at {{ts}} quantum {{n}} " + "x" * 27 + "\n" for i in range(logs)]
    t0 = time.time()
    written = 0
    tick = 0.01
    while True:
        now = time.time()
        if now - t0 >= duration:
            break
        due = int((now - t0) * rate) - written
        if due > 0:
            ts = _ts(now)
            head = f"INFO {ts} lsst.pipe.base.mp_graph_executor ()"
            for i, fd in enumerate(fds):
                t = tail[i]
                os.write(fd, "".join(head + t.format(ts=ts, n=written + k) for k in range(due)).encode())
            written += due
        time.sleep(max(0.0, tick - (time.time() - now)))
    for fd in fds:
        os.close(fd)


# --------------------------------------------------------------------------------------------------
# pty plumbing
# --------------------------------------------------------------------------------------------------

_TS_RE = re.compile(rb"(\d{4}-\d\d-\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})\+00:00")


class PtyProc:
    """A child on a pty of a given size; a thread reads everything it writes, with arrival times."""

    def __init__(self, argv: list[str], cols: int, rows: int, *, env: dict[str, str] | None = None,
                 parse_ts: bool = False) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.master = master
        self.chunks: list[tuple[float, int]] = []  # (arrival, length)
        self.recent: list[tuple[float, bytes]] = []  # kept only while someone waits for text
        self.keep_text = False
        self.cond = threading.Condition()
        self.parse_ts = parse_ts
        self.first_seen: dict[bytes, float] = {}
        self._midnight: dict[bytes, int] = {}
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _epoch(self, m: re.Match) -> float:
        day = m.group(1)
        base = self._midnight.get(day)
        if base is None:
            base = self._midnight[day] = calendar.timegm(time.strptime(day.decode(), "%Y-%m-%d"))
        return base + int(m.group(2)) * 3600 + int(m.group(3)) * 60 + int(m.group(4)) + int(m.group(5)) / 1000

    def _read(self) -> None:
        tail = b""
        while True:
            try:
                data = os.read(self.master, 1 << 16)
            except OSError:
                break
            if not data:
                break
            t = time.time()
            if self.parse_ts:
                for m in _TS_RE.finditer(tail + data):
                    key = m.group(0)
                    if key not in self.first_seen:
                        self.first_seen[key] = t - self._epoch(m)
                tail = data[-40:]
            with self.cond:
                self.chunks.append((t, len(data)))
                if self.keep_text:
                    self.recent.append((t, data))
                self.cond.notify_all()

    def bytes_between(self, t0: float, t1: float) -> int:
        with self.cond:
            return sum(n for t, n in self.chunks if t0 <= t < t1)

    def send_and_wait(self, keys: bytes, pattern: re.Pattern[bytes], timeout: float = 2.0
                      ) -> tuple[float | None, re.Match | None]:
        """Write ``keys``; return the seconds until output matching ``pattern`` arrives (and the match)."""
        with self.cond:
            self.recent = []
            self.keep_text = True
        t0 = time.time()
        os.write(self.master, keys)
        buf = b""
        deadline = t0 + timeout
        try:
            with self.cond:
                while True:
                    while self.recent:
                        t, data = self.recent.pop(0)
                        buf = buf[-200:] + data
                        m = pattern.search(buf)
                        if m:
                            return t - t0, m
                    left = deadline - time.time()
                    if left <= 0:
                        return None, None
                    self.cond.wait(left)
        finally:
            with self.cond:
                self.keep_text = False
                self.recent = []

    def stop(self) -> None:
        """End the child (its own session: the process group we created) and close the pty."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        try:
            os.close(self.master)
        except OSError:
            pass


def cpu_seconds(pid: int) -> float:
    import psutil

    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:2])
        for child in proc.children(recursive=True):
            total += sum(child.cpu_times()[:2])
        return total
    except psutil.Error:
        return 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))]


# --------------------------------------------------------------------------------------------------
# The follow benchmark
# --------------------------------------------------------------------------------------------------


def follow_phase(kind: str, tmp: Path, args: argparse.Namespace) -> dict:
    folder = tmp / f"follow-{kind}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for i in range(args.logs):
        (folder / f"stage{i}.log").write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "TEXTUAL_FPS")}
    env["TERM"] = "xterm-256color"
    if kind == "tail":
        argv = ["tail", "-f", *[str(folder / f"stage{i}.log") for i in range(args.logs)]]
    else:
        argv = [PY, str(HERE), "--child", "follow", str(folder), str(args.poll),
                "plain" if kind == "app-plain" else "settle"]
    app = kind != "tail"
    pty = PtyProc(argv, 200, 50, env=env, parse_ts=app)
    out: dict = {}
    try:
        time.sleep(2.5 if app else 0.5)  # start-up output is not counted
        key_time = 0.0 if kind == "tail" else args.key_seconds
        writer = subprocess.Popen([PY, str(HERE), "--child", "writer", str(folder), str(args.logs), str(args.rate),
                                   str(args.duration + key_time + 1.0)], cwd=ROOT)
        time.sleep(0.5)
        pty.first_seen.clear()
        w0 = time.time()
        c0 = cpu_seconds(pty.proc.pid)
        time.sleep(args.duration)
        w1 = time.time()
        c1 = cpu_seconds(pty.proc.pid)
        out["bytes_per_s"] = pty.bytes_between(w0, w1) / (w1 - w0)
        out["cpu_pct"] = 100 * (c1 - c0) / (w1 - w0)
        if app:
            out["delays"] = list(pty.first_seen.values())
            out["keys"], out["key_misses"] = keypress_latencies(pty, args)
        writer.wait(timeout=args.duration + key_time + 60)
        written = sum((folder / f"stage{i}.log").stat().st_size for i in range(args.logs))
        out["written_bytes_per_s"] = written / (args.duration + key_time + 1.0)
    finally:
        pty.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return out


def keypress_latencies(pty: PtyProc, args: argparse.Namespace) -> tuple[list[float], int]:
    """``f`` pauses the focused view (its status shows PAUSED · line N); each ``up`` shows line N-1."""
    lat: list[float] = []
    misses = 0
    end = time.time() + args.key_seconds
    line_re = re.compile(rb"PAUSED \xc2\xb7 line ([\d,]+)")
    while time.time() < end:
        dt, m = pty.send_and_wait(b"f", line_re)
        if dt is None or m is None:
            misses += 1
            pty.send_and_wait(b"f", re.compile(rb"FOLLOW"), timeout=1.0)
            continue
        lat.append(dt)
        n = int(m.group(1).replace(b",", b""))
        for _ in range(10):
            if n <= 1:
                break
            n -= 1
            dt, _m = pty.send_and_wait(b"\x1b[A", re.compile(rb"PAUSED \xc2\xb7 line " + f"{n:,}".encode() + rb"\b"))
            if dt is None:
                misses += 1
            else:
                lat.append(dt)
            time.sleep(0.05)
        pty.send_and_wait(b"f", re.compile(rb"FOLLOW"), timeout=1.0)  # resume (not timed)
        time.sleep(0.2)
    return lat, misses


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def goal(value: float, limit: float, lower_is_better: bool = True) -> str:
    ok = value <= limit if lower_is_better else value >= limit
    return f"goal <= {limit:g}: {'met' if ok else 'MISSED'}"


def report_follow(label: str, app: dict, base: dict) -> None:
    ratio = app["bytes_per_s"] / base["bytes_per_s"] if base["bytes_per_s"] else float("nan")
    print(f"  {label}:")
    print(f"    {app['bytes_per_s'] / 1024:10.1f} KiB/s to the terminal -> {ratio:.4f}x tail -f ({goal(ratio, 0.05)})")
    print(f"    CPU {app['cpu_pct']:.1f}% of one core ({goal(app['cpu_pct'], 20)})")
    d = app["delays"]
    if d:
        print(f"    line-to-screen delay over {len(d)} writer ticks seen: p50 {pct(d, 50) * 1000:.0f} ms, "
              f"p99 {pct(d, 99) * 1000:.0f} ms, max {max(d) * 1000:.0f} ms ({goal(pct(d, 99), 0.25)} for p99)")
    else:
        print("    line-to-screen delay: no timestamps seen in the app's output (MISSED)")
    k = app["keys"]
    if k:
        print(f"    keypress-to-repaint over {len(k)} keys (f, up) while following: p50 {pct(k, 50) * 1000:.0f} ms, "
              f"p99 {pct(k, 99) * 1000:.0f} ms, max {max(k) * 1000:.0f} ms; no repaint within 2 s: "
              f"{app['key_misses']} ({goal(pct(k, 99), 0.05)} for p99)")
        print(f"    keys over 50 ms: {sum(x > 0.05 for x in k)} of {len(k)}; slowest: "
              f"{', '.join(f'{x * 1000:.0f}' for x in sorted(k)[-5:])} ms")
    else:
        print(f"    keypress-to-repaint: no key got a repaint ({app['key_misses']} misses) (MISSED)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2G", help="size of the big log (default 2G)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case for (a) and (b), median taken")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of following measured in (c)")
    parser.add_argument("--rate", type=int, default=10_000, help="lines/s appended to each log in (c)")
    parser.add_argument("--logs", type=int, default=8, help="logs followed in (c)")
    parser.add_argument("--poll", type=float, default=0.2, help="LogView poll interval (s)")
    parser.add_argument("--key-seconds", type=float, default=12.0, help="seconds of keypress timing in (c)")
    parser.add_argument("--without-settle-gc", action="store_true",
                        help="in (c), also run the app without the pfstui app's settle_gc() and print those figures")
    parser.add_argument("--skip-tmux", action="store_true")
    parser.add_argument("--skip-follow", action="store_true")
    parser.add_argument("--skip-open", action="store_true")
    parser.add_argument("--tmp", default=None, help="folder for the temporary logs (default: system temp)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, *rest = args.child
        if kind in ("open-headless", "open-tui"):
            child_open(rest[0], rest[1], rest[2], headless=(kind == "open-headless"))
        elif kind == "follow":
            child_follow(rest[0], float(rest[1]), settle_gc=not (len(rest) > 2 and rest[2] == "plain"))
        elif kind == "writer":
            child_writer(rest[0], int(rest[1]), int(rest[2]), float(rest[3]))
        return 0

    size = parse_size(args.size)
    print(f"pfstui LogView benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="pfstui-logbench-", dir=args.tmp) as tmpdir:
        tmp = Path(tmpdir)
        if not args.skip_open:
            small, big = tmp / "small.log", tmp / "big.log"
            m_small, m_big = f"LAST-LINE-{uuid.uuid4().hex}", f"LAST-LINE-{uuid.uuid4().hex}"
            write_log(small, 1024, m_small)
            t = time.perf_counter()
            write_log(big, size, m_big)
            print(f"wrote the big log: {big.stat().st_size / 1024**3:.2f} GiB in {time.perf_counter() - t:.1f} s "
                  f"(page-cached: these are warm-cache figures); small log: {small.stat().st_size} B")
            runs: dict[str, list[dict]] = {"small": [], "big": []}
            for _ in range(args.repeat):
                for name, path, marker in (("small", small, m_small), ("big", big, m_big)):
                    runs[name].append(run_open_headless(path, marker, tmp))
            med = {k: {f: statistics.median(r[f] for r in v) for f in
                       ("paint_from_app_s", "paint_from_proc_s", "maxrss_kb", "indexed_from_app_s")}
                   for k, v in runs.items()}
            a_ratio = med["big"]["paint_from_app_s"] / med["small"]["paint_from_app_s"]
            print(f"\n(a) time to the last line on screen, headless App.run_test, median of {args.repeat}:")
            print(f"    1 KiB log: {med['small']['paint_from_app_s'] * 1000:7.1f} ms from app start "
                  f"({med['small']['paint_from_proc_s'] * 1000:.0f} ms from process start)")
            print(f"    {args.size} log: {med['big']['paint_from_app_s'] * 1000:7.1f} ms from app start "
                  f"({med['big']['paint_from_proc_s'] * 1000:.0f} ms from process start); "
                  f"{runs['big'][-1]['bytes_at_paint']:,} bytes of {big.stat().st_size:,} read when it was painted")
            print(f"    ratio big/small = {a_ratio:.2f}x   ({goal(a_ratio, 1.2)})")
            print(f"    background index of the big log complete {med['big']['indexed_from_app_s']:.1f} s after app start "
                  f"({runs['big'][-1]['checkpoints']:,} checkpoints, {runs['big'][-1]['checkpoints'] * 16 / 1024:.0f} KiB)")
            if not args.skip_tmux and shutil.which("tmux"):
                truns: dict[str, list[dict]] = {"small": [], "big": []}
                for _ in range(args.repeat):
                    for name, path, marker in (("small", small, m_small), ("big", big, m_big)):
                        truns[name].append(run_open_tmux(path, marker, tmp))
                ok = all(r.get("pane_s") for v in truns.values() for r in v)
                if ok:
                    tm = {k: {f: statistics.median(r[f] for r in v) for f in ("pane_s", "paint_from_app_s", "maxrss_kb")}
                          for k, v in truns.items()}
                    t_ratio = tm["big"]["pane_s"] / tm["small"]["pane_s"]
                    i_ratio = tm["big"]["paint_from_app_s"] / tm["small"]["paint_from_app_s"]
                    print(f"    in tmux (160x48), from spawning the process to the line in the pane: "
                          f"1 KiB {tm['small']['pane_s'] * 1000:.0f} ms, {args.size} {tm['big']['pane_s'] * 1000:.0f} ms "
                          f"-> {t_ratio:.2f}x ({goal(t_ratio, 1.2)})")
                    print(f"    in tmux, the app's own figure (app start to paint): "
                          f"1 KiB {tm['small']['paint_from_app_s'] * 1000:.0f} ms, "
                          f"{args.size} {tm['big']['paint_from_app_s'] * 1000:.0f} ms -> {i_ratio:.2f}x")
                    med["tmux_small_rss"] = tm["small"]["maxrss_kb"]
                    med["tmux_big_rss"] = tm["big"]["maxrss_kb"]
                else:
                    print("    tmux: the last line did not show up in the pane (tmux run failed)")
            b_ratio = med["big"]["maxrss_kb"] / med["small"]["maxrss_kb"]
            print(f"\n(b) peak RSS after the whole file is indexed (headless): 1 KiB {med['small']['maxrss_kb'] / 1024:.1f} MiB, "
                  f"{args.size} {med['big']['maxrss_kb'] / 1024:.1f} MiB -> {b_ratio:.2f}x ({goal(b_ratio, 1.5)})")
            if "tmux_big_rss" in med:
                r = med["tmux_big_rss"] / med["tmux_small_rss"]
                print(f"    in tmux: 1 KiB {med['tmux_small_rss'] / 1024:.1f} MiB, {args.size} "
                      f"{med['tmux_big_rss'] / 1024:.1f} MiB -> {r:.2f}x")
            big.unlink()
        if not args.skip_follow:
            print(f"\n(c) following {args.logs} logs x {args.rate:,} lines/s for {args.duration:g} s "
                  f"(LogsPanel split 4, 200x50 pty, TERM=xterm-256color, poll {args.poll:g} s):")
            base = follow_phase("tail", tmp, args)
            print(f"    tail -f: {base['bytes_per_s'] / 1024:10.1f} KiB/s to the terminal "
                  f"(the writer produced {base['written_bytes_per_s'] / 1024:.0f} KiB/s), CPU {base['cpu_pct']:.1f}%")
            report_follow("pfstui", follow_phase("app", tmp, args), base)
            if args.without_settle_gc:
                report_follow("pfstui without settle_gc()", follow_phase("app-plain", tmp, args), base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
