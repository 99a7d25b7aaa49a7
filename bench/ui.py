#!/usr/bin/env python
"""UI figures, each against a baseline measured in the same run, in a real terminal (tmux).

1. Time to first frame of `pfstui --repo DEMO` against a bare five-line Textual app (goal <= 1.3x).
   "First frame" = the moment tmux shows the app's tab bar (the bare app: its text), from spawning the
   process in a new tmux session.  Both are measured the same way, interleaved, after one untimed warm-up
   run each; the median of ``--repeat`` runs is taken.  Also shown: when the first pane's content (the
   Collections filter) is on screen, against the same bare figure.
   Bytecode: an installed pfstui has its ``.pyc`` files, like Textual.  When PYTHONDONTWRITEBYTECODE is set
   (as in some sandboxes) pfstui's sources would be compiled on every start while Textual's come
   precompiled, so both commands get a private PYTHONPYCACHEPREFIX (filled by the warm-up runs) instead;
   ``--cold-bytecode`` keeps the environment as it is.
2. Repository work while logs are followed (bench/latency.py): certify-preview and Collections-refresh latency
   with 8 logs growing at 10,000 lines/s each, against the same with no log open (goal <= 1.5x).
3. Bytes to the terminal (bench/wire.py): the Queue at 100x30 with one running stage (goal <= 1 KB/s).
4. The log figures (last line of a 2 GB log vs 1 KB, peak memory, following 8 growing logs: terminal bytes
   vs tail -f, CPU, line-to-screen delay, keypress-to-repaint) come from bench/logview.py, run from here
   with the same arguments (see `python bench/logview.py --help`).
Each of 2-4 runs as its own process, one after the other, in this one run.

Usage: python bench/ui.py [--repeat N] [--cold-bytecode] [--skip-latency] [--skip-wire] [--skip-logs]
                          [-- LOGVIEW ARGS...]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BARE = '''from textual.app import App
from textual.widgets import Header, Static
class Bare(App):
    def compose(self): yield Header(); yield Static("bare-ready")
Bare().run()
'''
#: On screen once the first frame is out: the tab bar.
APP_FRAME = "4 Certify"
#: On screen once the first pane (Collections) has its content: its filter's placeholder.
APP_PANE = "/ filter"


def first_frame(cmd: str, markers: list[str], session: str, timeout: float = 30.0) -> list[float]:
    """Seconds from spawning ``cmd`` in a new 80x24 tmux session until each marker is on screen."""
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    seen: dict[str, float] = {}
    start = time.perf_counter()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd], check=True)
    try:
        while time.perf_counter() - start < timeout:
            out = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
            now = time.perf_counter() - start
            for m in markers:
                if m not in seen and m in out:
                    seen[m] = now
            if len(seen) == len(markers):
                return [seen[m] for m in markers]
            time.sleep(0.005)
        missing = [m for m in markers if m not in seen]
        raise RuntimeError(f"{missing!r} never appeared for {cmd}")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def _spread(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return f"median {statistics.median(values) * 1000:5.0f} ms (quartiles {q[0] * 1000:.0f}-{q[2] * 1000:.0f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--cold-bytecode", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE as set (pfstui compiled from source at every start)")
    parser.add_argument("--skip-latency", action="store_true", help="leave out bench/latency.py")
    parser.add_argument("--skip-wire", action="store_true", help="leave out bench/wire.py")
    parser.add_argument("--skip-logs", action="store_true", help="leave out bench/logview.py")
    parser.add_argument("logview_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if not shutil.which("tmux"):
        print("tmux is needed (apt-get install tmux)", file=sys.stderr)
        return 2
    py = shlex.quote(sys.executable)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "demo-repo"
        subprocess.run([sys.executable, "-m", "pfstui", "demo", "--build-only", "--repo", str(repo)], check=True,
                       stdout=subprocess.DEVNULL)
        bare = Path(tmp) / "bare.py"
        bare.write_text(BARE)
        env = f"env PFSTUI_STATE_DIR={tmp}/state PFSTUI_CONFIG_DIR={tmp}/cfg"
        if os.environ.get("PYTHONDONTWRITEBYTECODE") and not args.cold_bytecode:
            env = f"env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX={tmp}/pycache{env[3:]}"
            bytecode = "cached for both (private PYTHONPYCACHEPREFIX, filled by the warm-up runs)"
        elif os.environ.get("PYTHONDONTWRITEBYTECODE"):
            bytecode = "NOT cached: PYTHONDONTWRITEBYTECODE is set (pfstui is compiled at every start)"
        else:
            bytecode = "as the environment has it (written beside the sources)"
        bare_cmd = f"{env} {py} {shlex.quote(str(bare))}"
        app_cmd = f"{env} {py} -m pfstui --repo {shlex.quote(str(repo))}"
        first_frame(bare_cmd, ["bare-ready"], "bench-bare-warm")  # warm-up: disk cache, bytecode
        first_frame(app_cmd, [APP_FRAME, APP_PANE], "bench-app-warm")
        bares, apps, panes = [], [], []
        for i in range(args.repeat):
            bares += first_frame(bare_cmd, ["bare-ready"], f"bench-bare-{i}")
            frame, pane = first_frame(app_cmd, [APP_FRAME, APP_PANE], f"bench-app-{i}")
            apps.append(frame)
            panes.append(pane)
    app, base, pane = statistics.median(apps), statistics.median(bares), statistics.median(panes)
    print(f"tmux 80x24, {args.repeat} runs each after a warm-up; bytecode {bytecode}; "
          f"load average {load:.1f} on {os.cpu_count()} cores")
    print(f"first frame, bare Textual app:        {_spread(bares)}")
    print(f"first frame, pfstui on the demo repo: {_spread(apps)} = {app / base:.2f} x the bare app "
          f"(goal <= 1.3x: {'met' if app / base <= 1.3 else 'MISSED'})")
    print(f"  its first pane's content on screen: {_spread(panes)} = {pane / base:.2f} x the bare app's first frame")
    status = 0
    for name, skip, extra in (("latency.py", args.skip_latency, []), ("wire.py", args.skip_wire, []),
                              ("logview.py", args.skip_logs, [a for a in args.logview_args if a != "--"])):
        if not skip:
            print(f"\n--- bench/{name} " + " ".join(extra), flush=True)
            status = subprocess.call([sys.executable, str(HERE / name), *extra]) or status
    return status


if __name__ == "__main__":
    sys.exit(main())
