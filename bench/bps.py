#!/usr/bin/env python
"""Wall time of the demo bias pipeline through pfstui's supervisor: backend local against backend bps.

Each variant is a one-stage plan (the demo bias pipeline, 16 quanta, no demoDelay) on a fresh copy of one
freshly built demo repository, loaded into a supervisor (``load_plan``) and timed from ``run`` until the
stage is done:

1. ``backend: local``: ``pipetask run -j 1`` (the baseline);
2. ``backend: bps``, one job per quantum, Parsl local site with ``cores: 2`` (a ``bps_sites`` entry);
3. ``backend: bps``, one job per camera (``cluster_by: [arm, spectrograph]``), the same site.

Figures are seconds and ratios against (1), measured in the same run.  Every stage must end ``done`` and
the bps outputs must have the same dataset counts as the local ones, or the script fails.  Everything
(state, data, config) lives in a private temporary folder, removed at the end (also on Ctrl-C).

Needs the bps extra (``pip install '.[bps]'``).

Usage: python bench/bps.py [--repeat N] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pfstui.queue.requests import KillStage, LoadPlan, PauseQueue, Run  # noqa: E402 - with the harness's path
from tests.faults import FINISHED, Session, fault_env  # noqa: E402 - the harness lives with the tests

QUERY = "instrument='PFS' AND visit.target_name = 'BIAS'"
OUTPUT = "u/bench/bias"
SITE = "bps_sites:\n  local: {class: lsst.ctrl.bps.parsl.sites.Local, cores: 2}\n"
#: label -> the stage's backend lines
VARIANTS = {
    "local, pipetask run -j 1": "",
    "bps, one job per quantum, Parsl 2 cores": "    backend: bps\n    bps: {site: local}\n",
    "bps, one job per camera, Parsl 2 cores":
        "    backend: bps\n    bps: {site: local, cluster_by: [arm, spectrograph]}\n",
}


class BenchError(Exception):
    """A run did not do what it should: the figures would mean nothing."""


def interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a closed terminal, ``kill``) cleans up like Ctrl-C."""
    raise KeyboardInterrupt


def write_plan(path: Path, repo: Path, backend: str) -> Path:
    path.write_text(f"""version: 1
repository: {repo}
instrument: pfstui.demo.instrument.DemoPrimeFocusSpectrograph
rerun: u/bench
defaults: {{processes: 1}}
{SITE}stages:
  - name: bias
    kind: pipetask
    pipeline: ${{PFSTUI_DEMO_DIR}}/pipelines/bias.yaml
    inputs: [PFS/raw/sps, PFS/calib]
    output: bias
    query: "{QUERY}"
{backend}""")
    return path


def dataset_counts(repo: Path) -> Counter[str]:
    """Datasets per type in the output's own runs (not its inputs)."""
    from lsst.daf.butler import Butler

    with Butler.from_config(str(repo)) as butler:
        runs = [c for c in butler.collections.get_info(OUTPUT).children if c.startswith(OUTPUT + "/")]
        return Counter(ref.datasetType.name for ref in butler.query_all_datasets(runs, limit=None))


def stop(session: Session) -> None:
    """Stop the queue, kill a stage still running (Ctrl-C) and its Parsl worker pools, then the supervisor."""
    from pfstui.bps.pools import worker_pools

    try:
        with session.client(autostart=False, timeout=5) as client:
            client.request(PauseQueue())  # nothing new starts while we look
            running = [s["id"] for s in session.state().get("stages", []) if s["status"] in ("running", "paused")]
            for sid in running:
                client.request(KillStage(stage=sid))
        if running:
            session.wait(session.finished, timeout=30, what="the killed stage to end")
    except Exception as exc:  # noqa: BLE001 - best effort cleanup (no supervisor: nothing to stop); say why
        print(f"  (stopping {session.dir.name}: {exc})", file=sys.stderr)
    for stage in session.state().get("stages", []):
        for attempt in stage["attempts"]:
            for pgid in worker_pools((attempt.get("bps") or {}).get("workdir") or attempt["cwd"]):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
    session.shutdown()


def run_variant(template: Path, work: Path, backend: str, live: list[Session]) -> tuple[float, Counter[str]]:
    """Seconds from ``run`` to the stage's end, and the output's dataset counts.  ``live`` holds the session
    while its supervisor may be up, so an interrupted run is cleaned up by the caller."""
    work.mkdir()
    repo = work / "repo"
    shutil.copytree(template, repo)
    session = Session(repo, write_plan(work / "plan.yaml", repo, backend))
    live.append(session)
    with session.client() as client:
        client.request(LoadPlan(path=str(session.plan)))
        start = time.perf_counter()
        client.request(Run())
        state = session.wait(session.finished, timeout=1800, what="the bias stage to finish")
        seconds = time.perf_counter() - start
    stop(session)
    live.remove(session)
    stage = Session.stage(state, "bias")
    if stage["status"] != "done":
        attempt = stage["attempts"][-1]
        raise BenchError(f"the bias stage ended {stage['status']}: {attempt.get('detail') or ''} "
                         f"(log: {Path(attempt['cwd']) / 'stage.log'})")
    return seconds, dataset_counts(repo)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    signal.signal(signal.SIGTERM, interrupt)
    try:
        import lsst.ctrl.bps.parsl  # noqa: F401
    except ImportError:
        print("bench/bps.py needs the bps extra: pip install '.[bps]'", file=sys.stderr)
        return 2
    from pfstui.demo.builder import ensure_demo_repo

    print("Demo bias pipeline (16 quanta) through pfstui's supervisor, load_plan -> run -> stage done;")
    print(f"fresh demo repository copy per run; machine: {os.cpu_count()} CPUs "
          f"({len(os.sched_getaffinity(0))} usable), load average {os.getloadavg()[0]:.2f} at the start.")
    tmp = Path(tempfile.mkdtemp(prefix="pfstui-bench-bps-"))
    env = fault_env(tmp, idle=60.0)
    env.update(PFSTUI_DATA_DIR=str(tmp / "data"), PFSTUI_CONFIG_DIR=str(tmp / "config"))
    for key in ("PATH", "PFSTUI_DEMO_DIR", "PFSTUI_STATE_DIR", "PFSTUI_SUPERVISOR_IDLE", "PFSTUI_DATA_DIR",
                "PFSTUI_CONFIG_DIR"):
        os.environ[key] = env[key]
    times: dict[str, list[float]] = {label: [] for label in VARIANTS}
    live: list[Session] = []
    try:
        template = tmp / "template"
        t0 = time.perf_counter()
        ensure_demo_repo(template)
        print(f"demo repository built in {time.perf_counter() - t0:.1f} s", flush=True)
        for i in range(args.repeat):
            expected: Counter[str] | None = None
            for n, (label, backend) in enumerate(VARIANTS.items()):
                seconds, counts = run_variant(template, tmp / f"run{i}-{n}", backend, live)
                print(f"  run {i + 1}: {label}: {seconds:.2f} s, {sum(counts.values())} datasets", flush=True)
                if expected is None:
                    if not counts.get("bias") or not counts.get("biasProc"):
                        raise BenchError(f"the local run wrote no bias/biasProc datasets: {dict(counts)}")
                    expected = counts
                elif counts != expected:
                    raise BenchError(f"{label}: dataset counts {dict(sorted(counts.items()))} differ from "
                                     f"local {dict(sorted(expected.items()))}")
                times[label].append(seconds)
    except BenchError as exc:
        print(f"bench/bps.py FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not leave anything behind
            signal.signal(sig, signal.SIG_IGN)
        for session in live:
            stop(session)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    base = statistics.median(times[next(iter(VARIANTS))])
    for label, values in times.items():
        t = statistics.median(values)
        print(f"{label + ':':42s} {t:7.2f} s  = {t / base:.2f} x local")
    print(f"(median of {args.repeat} run{'s' if args.repeat > 1 else ''} each; same dataset counts in all; "
          f"load average {os.getloadavg()[0]:.2f} at the end: other work on the machine skews the ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
