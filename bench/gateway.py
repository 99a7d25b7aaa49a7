#!/usr/bin/env python
"""Time to the first screen of the Butler gateway on a big repository, against ``butler query-collections``.

Runs on both registry databases in one run: SQLite (inside the repository folder) and PostgreSQL (a private
server started for the run, as the tests start theirs: tests/pg.py), each measured against its own baseline.
For each, it builds (in a temporary folder, about a minute on 2 cores) a demo repository grown to 20,000 collections
(RUN collections under per-user chains, as ``pipetask -o`` leaves them) and 50,000 validity ranges of ``bias``
in one CALIBRATION collection (16 cameras x 3,125 consecutive 1-day ranges), then measures, each as the median of
``--repeat`` runs:

* cold: a fresh Python process that imports pfstui, opens a read-only ``ButlerGateway`` and fetches the first
  page (50) of collections, then the first page (500) of validity ranges — what the operator waits for
  (the Butler import alone is about 1.2 s of it);
* warm: the same pages in this process with the gateway already open (what a refresh costs);
* the baseline, in the same run: ``butler query-collections REPO`` (the LSST tool, which prints all of them),
  and, for the ranges, ``registry.queryDatasetAssociations`` over the whole collection (what
  butlerListCalibrations.py does) in this process.

Ratios are printed as gateway / baseline (lower is better), one set per database.  This is a script, not a
test; it takes about two and a half minutes per database on 2 cores.

Usage: python bench/gateway.py [--registry both|sqlite|postgresql] [--collections N] [--associations N] [--repeat N]
       [--baseline-repeat N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pg import running_server  # noqa: E402 - the private server lives with the tests

BIN = Path(sys.executable).parent
CALIB = "PFS/calib"
CAMERAS = [(arm, sm) for arm in "brnm" for sm in (1, 2, 3, 4)]
DAY_NS = 86400 * 10**9
BASE_NS = 1735689600 * 10**9  # 2025-01-01T00:00:00 TAI

COLD = r"""
import json, sys, time
t0 = time.perf_counter()
from pfstui.butler.gateway import ButlerGateway
gw = ButlerGateway(sys.argv[1], read_only=True)
rows = gw.collections(limit=50)
t1 = time.perf_counter()
page = next(gw.associations(sys.argv[2], "bias", page_size=500))
t2 = time.perf_counter()
print(json.dumps({"collections": t1 - t0, "associations": t2 - t1, "n_rows": len(rows), "n_page": len(page)}))
"""


def build(repo: Path, n_collections: int, n_associations: int, registry: str | None) -> dict[str, float]:
    """Grow the demo repository (its registry on ``registry``, else SQLite) to the requested size; returns the
    seconds each step took."""
    import numpy as np
    from lsst.daf.butler import Butler, CollectionType, DatasetType, Timespan

    from pfstui.demo.builder import ensure_demo_repo

    steps: dict[str, float] = {}
    t = time.perf_counter()
    ensure_demo_repo(repo, registry=registry)
    steps["demo repository"] = time.perf_counter() - t
    with Butler.from_config(str(repo), writeable=True) as butler:
        existing = len(butler.collections.query("*"))
        n_runs_bias = 10
        n_new = max(0, n_collections - existing - n_runs_bias)
        per_chain = 9
        n_chains = n_new // (per_chain + 1)
        n_runs = n_new - n_chains
        t = time.perf_counter()
        with butler.transaction():
            for i in range(n_runs):
                user, step = i % 50, (i // 50) % n_chains if n_chains else 0
                butler.collections.register(f"u/user{user:02d}/step{step:04d}/{i:06d}", doc="bench run")
            for c in range(n_chains):
                chain = f"u/chain/step{c:04d}"
                butler.collections.register(chain, CollectionType.CHAINED, doc="bench chain")
                children = [f"u/user{(c * per_chain + k) % 50:02d}/step{((c * per_chain + k) // 50) % n_chains:04d}/"
                            f"{(c * per_chain + k):06d}" for k in range(per_chain) if c * per_chain + k < n_runs]
                butler.collections.redefine_chain(chain, children)
        steps[f"{n_runs} runs + {n_chains} chains"] = time.perf_counter() - t

        t = time.perf_counter()
        dt = DatasetType("bias", ("instrument", "arm", "spectrograph"), "NumpyArray", universe=butler.dimensions,
                         isCalibration=True)
        butler.registry.registerDatasetType(dt)
        refs = []
        for k in range(n_runs_bias):
            run = f"u/bench/bias/{k:02d}"
            butler.collections.register(run)
            refs.append([butler.put(np.zeros(2), dt, instrument="PFS", arm=a, spectrograph=s, run=run)
                         for a, s in CAMERAS])
        slots = n_associations // len(CAMERAS)
        with butler.transaction():
            for s in range(slots):
                span = Timespan(None, None, _nsec=(BASE_NS + s * DAY_NS, BASE_NS + (s + 1) * DAY_NS))
                butler.registry.certify(CALIB, refs[s % n_runs_bias], span)
        steps[f"{slots * len(CAMERAS)} validity ranges"] = time.perf_counter() - t
        steps["collections in repo"] = len(butler.collections.query("*"))
    return steps


def timed(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - start, out


def measure(repo: Path, args: argparse.Namespace) -> dict[str, float]:
    """Every timing of one repository (medians), with the counts the report names."""
    cold_c, cold_a, base_qc = [], [], []
    for _ in range(args.repeat):
        _, out = timed([sys.executable, "-c", COLD, str(repo), CALIB])
        res = json.loads(out.strip().splitlines()[-1])
        assert res["n_rows"] == 50 and res["n_page"] == 500, res
        cold_c.append(res["collections"])
        cold_a.append(res["associations"])
    for _ in range(max(1, args.baseline_repeat)):
        seconds, listing = timed([str(BIN / "butler"), "query-collections", str(repo)])
        base_qc.append(seconds)

    from lsst.daf.butler import CollectionType

    from pfstui.butler.gateway import ButlerGateway

    warm_c, warm_a, legacy, full = [], [], [], []
    with ButlerGateway(str(repo), read_only=True) as gw:
        gw.collections(limit=50)
        for _ in range(args.repeat):
            gw.invalidate()
            t = time.perf_counter()
            n_all = len(gw.collections())
            full.append(time.perf_counter() - t)
            gw.invalidate()
            t = time.perf_counter()
            gw.collections(limit=50)
            warm_c.append(time.perf_counter() - t)
            t = time.perf_counter()
            next(gw.associations(CALIB, "bias", page_size=500))
            warm_a.append(time.perf_counter() - t)
            t = time.perf_counter()
            n_assoc = sum(1 for _ in gw.butler.registry.queryDatasetAssociations(
                "bias", [CALIB], collectionTypes=[CollectionType.CALIBRATION]))
            legacy.append(time.perf_counter() - t)
    med = statistics.median
    return {"qc": med(base_qc), "legacy": med(legacy), "cold_c": med(cold_c), "cold_a": med(cold_a),
            "warm_c": med(warm_c), "warm_a": med(warm_a), "full": med(full), "n_listed": len(listing.splitlines()) - 2,
            "n_assoc": n_assoc, "n_all": n_all, "qc_runs": len(base_qc)}


def report(database: str, r: dict[str, float], repeat: int) -> None:
    qc = r["qc"]
    print(f"\n{database}:")
    print(f"baseline  butler query-collections REPO ({r['n_listed']} lines, cold process): {qc:7.3f} s")
    print(f"baseline  registry.queryDatasetAssociations, all {r['n_assoc']} ranges (warm):   {r['legacy']:7.3f} s")
    print(f"gateway   first page of 50 collections, cold process (imports included): {r['cold_c']:7.3f} s"
          f"  = {r['cold_c'] / qc:.3f} x query-collections")
    print(f"gateway   first page of 500 validity ranges, same cold process:          {r['cold_a']:7.3f} s"
          f"  = {r['cold_a'] / qc:.3f} x query-collections")
    print(f"gateway   first page of 50 collections, warm (after invalidate):         {r['warm_c']:7.3f} s"
          f"  = {r['warm_c'] / qc:.4f} x query-collections")
    print(f"gateway   first page of 500 validity ranges, warm:                       {r['warm_a']:7.3f} s"
          f"  = {r['warm_a'] / qc:.4f} x query-collections, "
          f"{r['warm_a'] / r['legacy']:.3f} x queryDatasetAssociations")
    print(f"gateway   all {r['n_all']} collections with doc/children/parents, warm:        {r['full']:7.3f} s"
          f"  = {r['full'] / qc:.4f} x query-collections")
    print(f"(median of {repeat} runs each; query-collections: {r['qc_runs']} run(s))")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", choices=("both", "sqlite", "postgresql"), default="both")
    parser.add_argument("--collections", type=int, default=20_000)
    parser.add_argument("--associations", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each gateway measurement (median)")
    parser.add_argument("--baseline-repeat", type=int, default=1,
                        help="runs of butler query-collections (about 40 s each at 20,000 collections)")
    parser.add_argument("--keep", type=Path, help="build the repositories in this folder and keep them (must not "
                                                  "exist; a PostgreSQL registry goes with its server)")
    args = parser.parse_args()
    databases = ("sqlite", "postgresql") if args.registry == "both" else (args.registry,)

    results: dict[str, dict[str, float]] = {}
    with contextlib.ExitStack() as stack:
        if args.keep:
            base = args.keep.absolute()
            base.mkdir(parents=True)
        else:
            base = Path(tempfile.mkdtemp(prefix="pfstui-bench-"))
            stack.callback(shutil.rmtree, base, ignore_errors=True)
        for database in databases:
            registry = None
            if database == "postgresql":
                registry = stack.enter_context(running_server()).create_database("bench")
            repo = base / database
            t = time.perf_counter()
            steps = build(repo, args.collections, args.associations, registry)
            print(f"built {repo} ({database}) in {time.perf_counter() - t:.1f} s: "
                  + ", ".join(f"{k} {v:.1f} s" if isinstance(v, float) else f"{k} {v}" for k, v in steps.items()),
                  flush=True)
            results[database] = measure(repo, args)
    for database, r in results.items():
        report(database, r, args.repeat)
    if len(results) == 2:
        pg, lite = results["postgresql"], results["sqlite"]
        print("\npostgresql / sqlite: " + ", ".join(
            f"{name} {pg[key] / lite[key]:.2f} x" for name, key in
            (("query-collections", "qc"), ("cold first page of collections", "cold_c"),
             ("cold first page of ranges", "cold_a"), ("warm first page of ranges", "warm_a"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
