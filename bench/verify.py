#!/usr/bin/env python
"""Time to a verdict: ``pfstui verify`` of the demo bias (4 cameras) against ``pipetask run`` of the same bias.

Why: verification runs before every certify of a night, so it must be cheap beside what it checks.  The goal is
that the verdict costs under a tenth of building the product (ratio verify / pipetask < 0.1).

How: a demo repository is built in a temporary folder (``pfstui demo --build-only``); the demo bias pipeline
runs once into ``u/bench/bias``, which is certified into ``PFS/calib`` (the current product), and once more into
``u/bench/newbias`` (the new product).  Then, in turn (A B A B ..., so a machine whose speed drifts weighs on both
alike), after ``--warmup`` pairs not counted:

* A: ``python -m pfstui verify REPO u/bench/newbias bias --against PFS/calib`` (a fresh process each time: its
  imports, the Butler's start-up, 8 FITS files read and 24 checks judged);
* B: ``pipetask run`` of the demo bias pipeline (the argv tests/integration/test_workflow.py builds, 16 quanta,
  ``-j 1``), each run into a fresh output collection ``u/bench/vs<N>``.

Each run is the whole process, wall time from start to exit and its CPU (user + system of the reaped child).
Printed: min, median and max of each, the ratio A/B taken pair by pair (median and spread), and whether the goal
is met.  Beside them, the floor both pay: ``python -c 'import lsst.daf.butler'`` (F, timed in the same turns), and
the ratio of what is left above it, (A - F) / (B - F): on the demo's tiny images the floor is most of A.
Also printed (V): the verdict where the repository is already open, as the app's Certify pane, its verification
view (ctrl+t) and the certify gate compute it: ``pfstui.verify.report.verify`` timed inside one process that
opened the repository first (its first call, which also imports the FITS reader, and the median of the next
ones), against the same B.
``--prepare-only DIR`` builds the repository in DIR and prints the two commands (B as ``sh -c`` with a counter
file, so each run gets a fresh collection) for timing them with any other tool.  About two minutes on
2 cores with the defaults.

Usage: python bench/verify.py [--repeat 5] [--warmup 1] [--tmp DIR] [--prepare-only DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PY = sys.executable
INSTRUMENT = "pfstui.demo.instrument.DemoPrimeFocusSpectrograph"
QUERY = "instrument='PFS' AND visit.target_name = 'BIAS'"
CURRENT, NEW = "u/bench/bias", "u/bench/newbias"
GOAL = 0.1


def environment(tmp: Path) -> dict[str, str]:
    """This checkout first on the path, the venv's programs first on PATH, a private state folder."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", PFSTUI_STATE_DIR=str(tmp / "state"),
               PFSTUI_DEMO_DIR=str(ROOT / "pfstui" / "demo"))
    return env


def pipetask(repo: Path, output: str) -> list[str]:
    """``pipetask run`` of the demo bias pipeline into ``output`` (as tests/integration/test_workflow.py runs it)."""
    return [str(BIN / "pipetask"), "--long-log", "--log-level", "pfs=INFO", "run", "--register-dataset-types",
            "-j", "1", "-b", str(repo), "--instrument", INSTRUMENT, "-i", "PFS/raw/sps,PFS/calib", "-o", output,
            "-p", str(ROOT / "pfstui" / "demo" / "pipelines" / "bias.yaml"), "-d", QUERY, "--fail-fast"]


def verify(repo: Path) -> list[str]:
    return [PY, "-m", "pfstui", "verify", str(repo), NEW, "bias", "--against", "PFS/calib"]


def prepare(repo: Path, env: dict[str, str]) -> None:
    """The demo repository, a bias certified in PFS/calib (the current one) and a new bias to verify."""
    steps = [
        [PY, "-m", "pfstui", "demo", "--build-only", "--repo", str(repo)],
        pipetask(repo, CURRENT),
        [str(BIN / "butler"), "certify-calibrations", str(repo), CURRENT, "PFS/calib", "bias",
         "--begin-date", "2000-01-01T00:00:00", "--end-date", "2050-12-31T23:59:59"],
        pipetask(repo, NEW),
    ]
    for argv in steps:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            sys.exit(f"{shlex.join(argv[:6])} ... failed ({done.returncode}):\n{done.stderr[-3000:]}")


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall s, cpu s, exit status) of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode


IN_PROCESS = """
import json, statistics, sys, time
from pfstui.butler.gateway import ButlerGateway
from pfstui.verify.report import verify
with ButlerGateway(sys.argv[1], read_only=True) as gw:
    gw.collection_type("PFS/calib")  # the repository open, as in the app
    times = []
    for _ in range(int(sys.argv[3])):
        start = time.perf_counter()
        report = verify(gw, sys.argv[2], "bias", against="PFS/calib")
        times.append(time.perf_counter() - start)
        assert len(report.cameras) == 4 and not report.failed
print(json.dumps(times))
"""


def in_process(repo: Path, env: dict[str, str], count: int) -> list[float]:
    """Seconds of each of ``count`` verdicts in one process with the repository open (see the module docstring)."""
    done = subprocess.run([PY, "-c", IN_PROCESS, str(repo), NEW, str(count)], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        sys.exit(f"the in-process verdict failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> str:
    return f"{min(values):8.3f} {statistics.median(values):8.3f} {max(values):8.3f}"


def measure(repo: Path, env: dict[str, str], repeat: int, warmup: int) -> int:
    rows: dict[str, list[float]] = {"A wall s": [], "A cpu s": [], "B wall s": [], "B cpu s": [], "F wall s": []}
    ratios: dict[str, list[float]] = {"wall": [], "cpu": [], "wall above F": []}
    for n in range(warmup + repeat):
        a_wall, a_cpu, a_status = timed(verify(repo), env)
        b_wall, b_cpu, b_status = timed(pipetask(repo, f"u/bench/vs{n}"), env)
        f_wall, _f_cpu, _f_status = timed([PY, "-c", "import lsst.daf.butler"], env)
        if a_status != 0 or b_status != 0:
            sys.exit(f"a run failed: verify exit {a_status}, pipetask exit {b_status} (the verdict must be a pass)")
        if n < warmup:
            continue
        for key, value in (("A wall s", a_wall), ("A cpu s", a_cpu), ("B wall s", b_wall), ("B cpu s", b_cpu),
                           ("F wall s", f_wall)):
            rows[key].append(value)
        ratios["wall"].append(a_wall / b_wall)
        ratios["cpu"].append(a_cpu / b_cpu)
        ratios["wall above F"].append((a_wall - f_wall) / (b_wall - f_wall))
    print(f"A = {shlex.join(['pfstui', *verify(repo)[3:]])}")
    print("B = pipetask run of the demo bias pipeline (16 quanta, -j 1), a fresh output collection each run")
    print("F = python -c 'import lsst.daf.butler' (the start-up both pay)")
    print(f"{'':12} {'min':>8} {'median':>8} {'max':>8}   ({repeat} pairs, A B A B ..., after {warmup} not counted)")
    for key, values in rows.items():
        print(f"{key:12} {spread(values)}")
    for key, values in ratios.items():
        print(f"{'A/B ' + key:12} {spread(values)}" if key != "wall above F" else f"{'(A-F)/(B-F)':12} {spread(values)}")
    ratio = statistics.median(ratios["wall"])
    print(f"time to a verdict / time to build the product (median wall): {ratio:.3f} "
          f"-> goal < {GOAL:g} {'met' if ratio < GOAL else 'NOT met'} (a fresh pfstui verify process)")
    times = in_process(repo, env, repeat + 1)
    build = statistics.median(rows["B wall s"])
    first, later = times[0], statistics.median(times[1:])
    print(f"V = the verdict with the repository open (app, certify gate): first {first:.3f} s, then median "
          f"{later:.3f} s")
    met = "met" if first / build < GOAL else "NOT met"
    print(f"V first / B median wall: {first / build:.3f} -> goal < {GOAL:g} {met} (where the operator asks for it)")
    return 0


def print_commands(repo: Path) -> None:
    """The two commands, for another timer: B takes a fresh collection from a counter file at each run."""
    counter = repo.parent / "counter"
    counter.write_text("0\n")
    b = shlex.join(pipetask(repo, "OUTPUT")).replace("OUTPUT", 'u/bench/vs"$n"')
    script = f'n=$(cat {shlex.quote(str(counter))}); echo $((n + 1)) > {shlex.quote(str(counter))}; exec {b}'
    print("env:", shlex.join(f"{k}={environment(repo.parent)[k]}" for k in ("PYTHONPATH", "PATH",
                                                                          "PFSTUI_STATE_DIR", "PFSTUI_DEMO_DIR")))
    print("A:", shlex.join(verify(repo)))
    print("B:", shlex.join(["sh", "-c", script]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--tmp", help="folder for the temporary repository (default: the system's)")
    parser.add_argument("--prepare-only", metavar="DIR", help="build the repository in DIR, print the commands, stop")
    args = parser.parse_args(argv)
    if args.prepare_only:
        tmp = Path(args.prepare_only).absolute()
        tmp.mkdir(parents=True, exist_ok=True)
        prepare(tmp / "repo", environment(tmp))
        print_commands(tmp / "repo")
        return 0
    with tempfile.TemporaryDirectory(dir=args.tmp) as name:
        tmp = Path(name)
        env = environment(tmp)
        prepare(tmp / "repo", env)
        return measure(tmp / "repo", env, args.repeat, args.warmup)


if __name__ == "__main__":
    sys.exit(main())
