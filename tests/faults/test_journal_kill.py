"""SIGKILL of a real ``pfstui certify --yes`` at 30 points of its run: the journal never shows a certification
that did not happen and never misses one that did (issue "Safe on a shared summit host", crash safety).

Each run certifies the four biases of a fresh copy of the seeded demo repository, all runs sharing one journal.
Ten kills land exactly on the named points of :mod:`pfstui.infra.faults` (``PFSTUI_FAULT_PAUSE``): before
anything (``apply``), with the intent on disk and the registry transaction open (``intent``), after the
registry commit but before the journal's (``registry-commit``), and after both (``journal-commit``).  Twenty
more are timed from a traced reference run: eight spread over start-up and preview, twelve over apply.  After
each kill the pending intent is reconciled (by ``pfstui journal`` for the first kill at each open window,
in-process otherwise) and the journal's committed entries must match the registry exactly.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pfstui.butler.reconcile import reconcile_all
from pfstui.infra.journal import Journal
from tests.butler.test_gateway import CHAIN

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
#: Kills at each named point (10 in all).
PAUSED = {"apply": 2, "intent": 3, "registry-commit": 3, "journal-commit": 2}
EARLY, LATE = 8, 12  # timed kills: over start-up and preview, over apply


class Run:
    """One ``pfstui certify --yes`` on its own repository copy, its stderr read as it comes."""

    def __init__(self, repo: Path, env: dict[str, str], pause: str) -> None:
        argv = [sys.executable, "-m", "pfstui", "certify", str(repo), CHAIN, "PFS/calib", "bias",
                "--begin-date", "2025-01-01", "--yes"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, env={**env, "PFSTUI_FAULT_PAUSE": pause}, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(repo.parent))
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stderr, selectors.EVENT_READ)
        self._buf = b""
        self.marks: dict[str, float] = {}  # point -> seconds since the start

    def wait_for(self, point: str, timeout: float = 60.0) -> float:
        """Seconds since the start when the process reached ``point`` (reading its stderr until then)."""
        deadline = time.monotonic() + timeout
        while point not in self.marks:
            left = deadline - time.monotonic()
            assert left > 0 and self._sel.select(left), f"never reached {point}: {self._buf[-2000:]!r}"
            chunk = os.read(self.proc.stderr.fileno(), 65536)
            assert chunk, f"exited ({self.proc.wait()}) before {point}: {self._buf[-2000:]!r}"
            self._buf += chunk
            for line in self._buf.decode(errors="replace").splitlines():
                if line.startswith("pfstui-fault: "):
                    name = line.split(" (pid")[0].split()[-1]
                    self.marks.setdefault(name, time.monotonic() - self.started)
        return self.marks[point]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._sel.close()
        self.proc.stderr.close()

    def finish(self) -> float:
        self.wait_for("journal-commit")
        assert self.proc.wait(timeout=60) == 0, self._buf[-2000:]
        took = time.monotonic() - self.started
        self.kill()
        return took


def registry_ranges(repo: Path) -> set[tuple]:
    from lsst.daf.butler import Butler

    with Butler.from_config(str(repo)) as butler:
        return {(str(a.ref.id), tuple(sorted(a.ref.dataId.required.items())), tuple(a.timespan.nsec))
                for a in butler.registry.queryDatasetAssociations("bias", ["PFS/calib"])}


def journal_ranges(entry) -> set[tuple]:
    return {(a["dataset_id"], tuple(sorted(a["data_id"].items())), tuple(a["nsec"])) for a in entry["effect"]["added"]}


def test_kill_certify_at_30_points(seeded_template: Path, tmp_path: Path, capsys):
    env = dict(os.environ)
    env["PFSTUI_STATE_DIR"] = str(tmp_path / "state")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    journal = Journal(tmp_path / "state" / "journal.jsonl")
    counts: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    n = 0

    def fresh_repo() -> Path:
        nonlocal n
        n += 1
        repo = tmp_path / f"repo{n:02d}"
        shutil.copytree(seeded_template, repo)
        return repo

    def audit(repo: Path, how: str, cli: bool = False) -> None:
        if cli:  # the operator's way: pfstui journal reconciles, then lists
            out = subprocess.run([sys.executable, "-m", "pfstui", "journal"], env=env, capture_output=True,
                                 text=True, timeout=120, check=False)
            assert out.returncode == 0 and "uncertain" not in out.stdout + out.stderr, out.stderr
        else:
            assert [o for o in reconcile_all(journal) if o.state != "committed" and o.state != "aborted"] == []
        assert journal.pending() == [], "every intent of a dead process is decided"
        mine = [e for e in journal.read() if e.get("repository") == str(repo)]
        held = registry_ranges(repo)
        assert len(mine) <= 1, "journaled exactly once"
        counts["phantom"] += sum(1 for e in mine if not journal_ranges(e) <= held)
        counts["missed"] += 1 if held - {r for e in mine for r in journal_ranges(e)} else 0
        counts["committed"] += len(mine)
        counts["reconciled"] += sum(1 for e in mine if e["committed"]["reconciled"])
        outcomes[f"{how}: {'committed' if mine else 'nothing'}"] += 1
        shutil.rmtree(repo)

    # A traced reference run: its timeline places the timed kills.
    reference = Run(fresh_repo(), env, "trace")
    took = reference.finish()
    apply_at = reference.marks["apply"]
    audit(tmp_path / f"repo{n:02d}", "reference")
    counts["committed"] -= 1  # not a kill

    for point, times in PAUSED.items():
        for i in range(times):
            repo = fresh_repo()
            run = Run(repo, env, point)
            run.wait_for(point)
            run.kill()
            counts["kills"] += 1
            audit(repo, f"at {point}", cli=(i == 0 and point in ("intent", "registry-commit")))
    for i in range(EARLY):
        repo = fresh_repo()
        run = Run(repo, env, "trace")
        time.sleep(apply_at * (i + 1) / (EARLY + 1))
        run.kill()
        counts["kills"] += 1
        audit(repo, "during start-up")
    for i in range(LATE):
        repo = fresh_repo()
        run = Run(repo, env, "trace")
        run.wait_for("apply")
        time.sleep((took - apply_at) * 1.1 * i / (LATE - 1))
        run.kill()
        counts["kills"] += 1
        audit(repo, f"apply+{i}/{LATE - 1}")

    records = list(journal.records())
    counts["aborted"] = sum(1 for r in records if r.get("record") == "abort")
    with capsys.disabled():
        print(f"\njournal kill test: kills={counts['kills']} committed={counts['committed']} "
              f"(reconciled={counts['reconciled']}) aborted={counts['aborted']} phantom={counts['phantom']} "
              f"missed={counts['missed']}; reference run {took:.2f} s, apply from {apply_at:.2f} s")
        print("  " + ", ".join(f"{k} {v}" for k, v in outcomes.items()))
    assert counts["kills"] == 30
    assert counts["phantom"] == 0 and counts["missed"] == 0
    # The named points decide as they must: a kill with the transaction open aborts, after the registry
    # commit the entry is committed by the reconciler.
    assert outcomes["at intent: nothing"] == PAUSED["intent"]
    assert outcomes["at registry-commit: committed"] == PAUSED["registry-commit"]
    assert outcomes["at journal-commit: committed"] == PAUSED["journal-commit"]
    assert counts["aborted"] >= PAUSED["intent"] and counts["reconciled"] >= PAUSED["registry-commit"]
