#!/usr/bin/env python
"""How long the demo repository takes to build, and how long the demo bias pipeline takes.

Figures are printed as ratios against baselines measured in the same run:
- building the demo repository, against the goal of 60 s on 2 cores;
- ``pipetask run`` of the demo bias pipeline, against ``pipetask --help`` (pipetask's start-up, the floor).

Usage: python bench/demo_build.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import pfstui.demo

    pipelines = Path(pfstui.demo.__file__).parent / "pipelines"
    builds, runs, helps = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            repo = Path(tmp) / f"repo{i}"
            builds.append(timed([sys.executable, "-m", "pfstui", "demo", "--build-only", "--repo", str(repo)]))
            helps.append(timed([str(BIN / "pipetask"), "--help"]))
            runs.append(timed([
                str(BIN / "pipetask"), "run", "--register-dataset-types", "-j", "1", "-b", str(repo),
                "--instrument", "pfstui.demo.instrument.DemoPrimeFocusSpectrograph", "-i", "PFS/raw/sps,PFS/calib",
                "-o", "u/bench/bias", "-p", str(pipelines / "bias.yaml"),
                "-d", "instrument='PFS' AND visit.target_name = 'BIAS'",
            ]))
    build, run, help_ = (statistics.median(x) for x in (builds, runs, helps))
    print(f"demo repository build (pfstui demo --build-only): {build:6.2f} s  "
          f"= {build / 60.0:.3f} x the 60 s goal")
    print(f"pipetask --help (start-up floor):                 {help_:6.2f} s")
    print(f"pipetask run, demo bias pipeline (16 quanta, -j 1): {run:6.2f} s  = {run / help_:.2f} x pipetask --help")
    print(f"(median of {args.repeat} runs each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
