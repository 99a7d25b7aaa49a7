#!/usr/bin/env python
"""Repository work against busy logs: certify-preview and Collections-refresh latency with ``--logs`` (8) logs
following at ``--rate`` (10,000) lines/s each, against the same with no log open, in one run (goal <= 1.5x).

Why: following logs and the supervisor link once took every thread of the pool the Butler work ran on, and the
certify preview never finished with four logs open.  Repository work now runs on the app's own lane of two
threads (pfstui/ui/workers.py); this measures what busy logs still cost it (the GIL, two cores).

How: a demo repository is built in a temporary folder (``pfstui demo --build-only``) and given a second bias
RUN to certify.  A child process runs the real app (``PfsTuiApp``, no plan) in a 200x50 pty whose output this
script reads and throws away.  Inside it, once the first frame is out and the start-up reads are done, after one
untimed warm-up, ``--repeat`` rounds of:

1. no log open: the certify preview (what ctrl+e does, on a filled form, the Certify pane shown), then a
   Collections refresh (what ``r`` does, that pane shown), each timed from the action to the first screen
   refresh after its result was handled;
2. the same with ``--logs`` logs open in the Logs pane while a writer process (bench/logview.py's) appends
   ``--rate`` lines/s to each, after ``--settle`` seconds of following (then the logs are closed and emptied).

Rounds alternate the two so that a machine whose speed drifts (other jobs) weighs on both alike.  Printed:
medians (quartiles) and the ratios loaded / idle; in brackets, the part spent in the Butler lane's thread (the
rest is the UI thread: the pane's handler, layout, the frame); the app's CPU by thread while measuring.  A call
that took over ``--timeout`` s counts as not finished.  On 2 cores the run takes about a minute and a half.
``main(argv)`` is what bench/ui.py can call.

Usage: python bench/latency.py [--logs 8] [--rate 10000] [--repeat 7] [--settle 3] [--timeout 60] [--tmp DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
PY = sys.executable
LOGVIEW = HERE.parent / "logview.py"
#: The RUN the preview certifies (into PFS/calib, before the demo's own bias range).
RUN = "u/bench/bias/20260101T000000Z"
FORM = {"input": RUN, "target": "PFS/calib", "dataset_type": "bias", "begin": "2020-01-01T00:00:00",
        "end": "2024-01-01T00:00:00"}


# --------------------------------------------------------------------------------------------------
# Child: the app, measuring itself
# --------------------------------------------------------------------------------------------------


def prepare(repo: str) -> None:
    """Certify four biases into PFS/calib and put four more in :data:`RUN` (what the preview certifies)."""
    import numpy as np
    from astropy.time import Time
    from lsst.daf.butler import Butler, CollectionType, DatasetType, Timespan

    with Butler.from_config(repo, writeable=True) as butler:
        dt = DatasetType("bias", ("instrument", "arm", "spectrograph"), "NumpyArray", universe=butler.dimensions,
                         isCalibration=True)
        butler.registry.registerDatasetType(dt)
        for run, value in (("u/bench/bias/20250301T000000Z", 0.0), (RUN, 1.0)):
            butler.collections.register(run, CollectionType.RUN)
            refs = [butler.put(np.full((2, 2), value), dt, instrument="PFS", arm=a, spectrograph=s, run=run)
                    for a in "br" for s in (1, 2)]
            if value == 0.0:
                butler.registry.certify("PFS/calib", refs, Timespan(Time("2025-01-01T00:00:00", scale="tai"), None))


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each live thread of this process, by kind (Linux: /proc/self/task)."""
    import re
    import threading

    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: re.sub(r"[-_]?\d+(_\d+)?$", "", t.name) for t in threading.enumerate()}
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(task.name), "other")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def child_app(repo: str, folder: str, result: str, logs: int, rate: int, repeat: int, settle: float,
              timeout: float) -> None:
    prepare(repo)
    out: dict = {"idle": {}, "loaded": {}}
    app = bench_app(out, Path(folder), logs, rate, repeat, settle, timeout)(repo=repo, connect=False)
    try:
        app.run()
    finally:
        Path(result).write_text(json.dumps(out))


def bench_app(out: dict, folder: Path, logs: int, rate: int, repeat: int, settle: float, timeout: float):
    """The app class that measures itself once its first frame is out (results into ``out``)."""
    import asyncio
    import resource

    from pfstui.ui.app import PfsTuiApp
    from pfstui.ui.panes.certify import CertifyPane
    from pfstui.ui.panes.collections import CollectionsPane
    from pfstui.ui.workers import Lane

    calls = timed_lane_calls(Lane)
    #: Set once a result is on screen: the pane's handler asks for a call after the next refresh.
    shown = asyncio.Event()

    class Certify(CertifyPane):
        def on_certify_pane_previewed(self, message) -> None:  # runs before the pane's own handler
            self.call_after_refresh(shown.set)

    class Collections(CollectionsPane):
        def on_collections_pane_loaded(self, message) -> None:
            self.call_after_refresh(shown.set)

    async def timed(start, into: list) -> None:
        shown.clear()
        calls.clear()
        t0 = time.perf_counter()
        start()
        try:
            await asyncio.wait_for(shown.wait(), timeout)
            into.append((time.perf_counter() - t0, calls[0] if calls else None))
        except TimeoutError:
            into.append((None, None))

    class BenchApp(PfsTuiApp):
        def _certify_pane(self):
            return Certify(self._gateway, read_only=self.read_only)

        def _collections_pane(self):
            return Collections(self._gateway)

        def on_ready(self) -> None:
            self.run_worker(self._bench(), exit_on_error=False)

        async def _bench(self) -> None:
            try:
                await self._measure_all()
            finally:
                self.exit()

        async def _measure_all(self) -> None:
            await self._deferred_done.wait()
            certify, collections = self.query_one(CertifyPane), self.query_one(CollectionsPane)
            while not (collections._rows and certify.query_one("#f-input").suggester is not None
                       and self.butler_lane.running == 0):
                await asyncio.sleep(0.05)
            for name, value in FORM.items():
                certify.query_one(f"#f-{name}").value = value
            await self._sample(certify, collections, {})  # warm-up
            for _ in range(repeat):  # in turn, so a machine whose speed drifts weighs on both alike
                with cpu_share(out["idle"]):
                    await self._sample(certify, collections, out["idle"])
                await self._following(certify, collections)

        async def _following(self, certify, collections) -> None:
            """One sample with the logs open and growing (opened empty, closed and emptied afterwards)."""
            started = time.perf_counter()
            writer = subprocess.Popen([PY, str(LOGVIEW), "--child", "writer", str(folder), str(logs), str(rate),
                                       "3600"], cwd=ROOT)
            try:
                for i in range(logs):
                    await self.open_log(f"stage{i}", str(folder / f"stage{i}.log"))
                await asyncio.sleep(settle)
                with cpu_share(out["loaded"]):
                    await self._sample(certify, collections, out["loaded"])
            finally:
                writer.kill()
                writer.wait()
            out["writer_cpu_s"] = sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])
            out["writer_wall_s"] = out.get("writer_wall_s", 0.0) + time.perf_counter() - started
            out["written_bytes"] = out.get("written_bytes", 0) + sum(p.stat().st_size for p in folder.glob("*.log"))
            panel = self.query_one("LogsPanel")
            for view in list(panel.views):
                await panel.remove_log(view)
            for path in folder.glob("*.log"):
                path.write_bytes(b"")

        async def _sample(self, certify, collections, into: dict) -> None:
            """The preview with the Certify pane shown, then a refresh with Collections shown."""
            self.action_show_pane("certify")
            await asyncio.sleep(0.5)
            await timed(certify.action_preview, into.setdefault("preview", []))
            self.action_show_pane("collections")
            await asyncio.sleep(0.5)
            await timed(collections.action_refresh, into.setdefault("refresh", []))

    return BenchApp


def timed_lane_calls(lane_class) -> list[float]:
    """Record how long each lane call takes in its thread (the Butler's time, waits for the GIL included)."""
    calls: list[float] = []
    run_in_thread = lane_class._run

    def timed_run(self, fn, args):
        t0 = time.perf_counter()
        try:
            return run_in_thread(self, fn, args)
        finally:
            calls.append(time.perf_counter() - t0)

    lane_class._run = timed_run
    return calls


@contextmanager
def cpu_share(into: dict):
    """Add the app's CPU seconds during the block (all threads, and by thread) and its wall seconds to ``into``."""
    c0, t0, by0 = time.process_time(), time.perf_counter(), thread_cpu()
    yield
    by1 = thread_cpu()
    into["wall_s"] = into.get("wall_s", 0.0) + time.perf_counter() - t0
    into["cpu_s"] = into.get("cpu_s", 0.0) + time.process_time() - c0
    threads = into.setdefault("threads_s", {})
    for name in by1:
        threads[name] = threads.get(name, 0.0) + by1[name] - by0.get(name, 0.0)


# --------------------------------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------------------------------


def _spread(values: list[float | None]) -> str:
    done = sorted(v for v in values if v is not None)
    missing = len(values) - len(done)
    if not done:
        return f"never finished ({missing} of {len(values)})"
    q = statistics.quantiles(done, n=4) if len(done) > 1 else [done[0]] * 3
    text = f"median {statistics.median(done) * 1000:5.0f} ms (quartiles {q[0] * 1000:.0f}-{q[2] * 1000:.0f})"
    return text + (f", {missing} of {len(values)} never finished" if missing else "")


def _median(values: list[float | None]) -> float | None:
    done = [v for v in values if v is not None]
    return statistics.median(done) if done and len(done) == len(values) else None


def run(args: argparse.Namespace, tmp: Path) -> dict:
    sys.path.insert(0, str(HERE.parent))
    from logview import PtyProc  # the pty plumbing of the follow benchmark

    repo, folder, result = tmp / "demo-repo", tmp / "logs", tmp / "result.json"
    subprocess.run([PY, "-m", "pfstui", "demo", "--build-only", "--repo", str(repo)], check=True,
                   stdout=subprocess.DEVNULL, cwd=ROOT)
    folder.mkdir()
    for i in range(args.logs):
        (folder / f"stage{i}.log").write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "TEXTUAL_FPS")}
    env.update(TERM="xterm-256color", PFSTUI_STATE_DIR=str(tmp / "state"), PFSTUI_CONFIG_DIR=str(tmp / "cfg"))
    argv = [PY, str(HERE), "--child", "app", str(repo), str(folder), str(result), str(args.logs), str(args.rate),
            str(args.repeat), str(args.settle), str(args.timeout)]
    pty = PtyProc(argv, 200, 50, env=env)
    try:
        pty.proc.wait(timeout=120 + 2 * (args.repeat + 1) * (args.timeout + 1) + args.settle)
    finally:
        pty.stop()
    if not result.exists():
        raise SystemExit("the app wrote no result (it failed or timed out)")
    return json.loads(result.read_text())


def report(out: dict, args: argparse.Namespace) -> bool:
    """Print the figures; True when every ratio meets the goal."""
    wall = out.get("writer_wall_s") or 1.0
    print(f"{args.logs} logs following at {args.rate:,} lines/s each ({out.get('written_bytes', 0) / wall / 1e6:.1f} "
          f"MB/s written, the writer using {100 * out.get('writer_cpu_s', 0) / wall:.0f}% of a core); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.repeat} runs each after a warm-up")
    for phase, name in (("idle", "no log open"), ("loaded", f"{args.logs} logs following")):
        wall = out[phase].get("wall_s") or 1.0
        shares = sorted(out[phase].get("threads_s", {}).items(), key=lambda kv: -kv[1])
        print(f"app CPU while measuring, {name}: {100 * out[phase].get('cpu_s', 0) / wall:.0f}% of a core ("
              + ", ".join(f"{t} {100 * c / wall:.0f}%" for t, c in shares if c / wall >= 0.005) + ")")
    met = True
    for what, label in (("preview", "certify preview"), ("refresh", "Collections refresh")):
        idle, loaded = out["idle"].get(what, []), out["loaded"].get(what, [])
        print(f"{label}, action to result on screen (in the lane's thread):")
        for name, samples in (("no log open", idle), (f"{args.logs} logs following", loaded)):
            print(f"  {name:<18} {_spread([t for t, _ in samples])}  "
                  f"({_spread([c for t, c in samples if t is not None])})")
        a, b = _median([t for t, _ in loaded]), _median([t for t, _ in idle])
        if a is None or b is None:
            print(f"  ratio: not measured (a call did not finish within {args.timeout:g} s; goal <= 1.5x: MISSED)")
            met = False
            continue
        met = met and a / b <= 1.5
        print(f"  ratio {a / b:.2f} x (goal <= 1.5x: {'met' if a / b <= 1.5 else 'MISSED'})")
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=8)
    parser.add_argument("--rate", type=int, default=10000, help="lines per second written to each log")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of following before measuring")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds after which a call counts as stuck")
    parser.add_argument("--tmp", help="folder for the repository and the logs (default: a temporary one)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "app":
            child_app(rest[0], rest[1], rest[2], int(rest[3]), int(rest[4]), int(rest[5]), float(rest[6]),
                      float(rest[7]))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="pfstui-latency-", dir=args.tmp))
    try:
        out = run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(out, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
