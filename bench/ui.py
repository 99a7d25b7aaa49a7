#!/usr/bin/env python
"""UI figures, each against a baseline measured in the same run, in a real terminal (tmux).

1. Time to first frame of `pfstui --repo DEMO` against a bare five-line Textual app (goal <= 1.3x).
   "First frame" = the moment tmux shows the app's tab bar (the bare app: its header), from process spawn.
2. The log figures (last line of a 2 GB log vs 1 KB, peak memory, following 8 growing logs: terminal bytes
   vs tail -f, CPU, line-to-screen delay, keypress-to-repaint) come from bench/logview.py, run from here
   with the same arguments (see `python bench/logview.py --help`).

Usage: python bench/ui.py [--repeat N] [--skip-logs] [-- LOGVIEW ARGS...]
"""

from __future__ import annotations

import argparse
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


def first_frame(cmd: str, marker: str, session: str, timeout: float = 30.0) -> float:
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    start = time.perf_counter()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd], check=True)
    try:
        while time.perf_counter() - start < timeout:
            out = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
            if marker in out:
                return time.perf_counter() - start
            time.sleep(0.005)
        raise RuntimeError(f"{marker!r} never appeared for {cmd}")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-logs", action="store_true", help="only the first-frame figure")
    parser.add_argument("logview_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if not shutil.which("tmux"):
        print("tmux is needed (apt-get install tmux)", file=sys.stderr)
        return 2
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "demo-repo"
        subprocess.run([py, "-m", "pfstui", "demo", "--build-only", "--repo", str(repo)], check=True,
                       stdout=subprocess.DEVNULL)
        bare = Path(tmp) / "bare.py"
        bare.write_text(BARE)
        env = f"PFSTUI_STATE_DIR={tmp}/state PFSTUI_CONFIG_DIR={tmp}/cfg"
        apps, bares = [], []
        for i in range(args.repeat):
            bares.append(first_frame(f"{py} {bare}", "bare-ready", f"bench-bare-{i}"))
            apps.append(first_frame(f"env {env} {py} -m pfstui --repo {repo}", "4 Certify", f"bench-app-{i}"))
    app, base = statistics.median(apps), statistics.median(bares)
    print(f"first frame, bare Textual app:       {base * 1000:7.0f} ms (median of {args.repeat})")
    print(f"first frame, pfstui on the demo repo: {app * 1000:7.0f} ms = {app / base:.2f} x the bare app (goal <= 1.3x)")
    if args.skip_logs:
        return 0
    extra = [a for a in args.logview_args if a != "--"]
    print("\n--- bench/logview.py " + " ".join(extra), flush=True)
    return subprocess.call([py, str(HERE / "logview.py"), *extra])


if __name__ == "__main__":
    sys.exit(main())
