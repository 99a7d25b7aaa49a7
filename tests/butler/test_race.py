"""Two operators certify into one CALIBRATION collection at the same instant, on SQLite and on PostgreSQL.

Each operator is a real process with its own gateway (tests/butler/racer.py).  In each round both preview, and
only when both have previewed do both apply, at once: the worst case, where neither preview saw the other's
ranges.  Overlapping ranges (two datasets of the same cameras): exactly one wins and the other is refused with
pfstui's own conflict (TAI dates, the dataset and RUN that hold the range), never the Butler's constraint error;
disjoint ranges (the same cameras, other dates): both win.  The registry is checked for overlaps at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pfstui.butler.gateway import ButlerGateway
from tests.butler.test_gateway import CAMERAS, NEW_RUN, OLD_RUN
from tests.pg import REGISTRIES

ROUNDS = 20
RACER = Path(__file__).with_name("racer.py")
DAY = timedelta(days=1)
#: (first operator's window, second operator's window) in days from the round's start.
CASES = {"overlapping": ((0, 2), (1, 3)), "disjoint": ((0, 1), (2, 3))}


class Racer:
    """One operator's process: send a command, read its one-line answer."""

    def __init__(self, repo: Path, state: Path) -> None:
        env = {**os.environ, "PFSTUI_STATE_DIR": str(state)}
        self.proc = subprocess.Popen([sys.executable, str(RACER), str(repo)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        assert self.read().get("ready")

    def send(self, **cmd: str) -> None:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        assert line, f"racer {self.proc.pid} died (exit {self.proc.wait()})"
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def iso(day: datetime) -> str:
    return day.strftime("%Y-%m-%dT%H:%M:%S")


def race_round(racers: list[Racer], start: datetime, windows) -> list[dict]:
    """Both preview (each its own RUN's bias), then both apply at once; the two apply answers."""
    for racer, run, (b, e) in zip(racers, (NEW_RUN, OLD_RUN), windows):
        racer.send(op="preview", input=run, begin=iso(start + b * DAY), end=iso(start + e * DAY))
    previews = [r.read() for r in racers]
    assert all(p["ok"] and not p["blocked"] for p in previews), previews
    for racer in racers:
        racer.send(op="apply")
    return [r.read() for r in racers]


def judge(case: str, answers: list[dict], windows, start: datetime) -> tuple[int, int, int]:
    """(wins, losses, inconsistent) of one round: a loss is only pfstui's conflict naming the winner's range."""
    wins = sum(a["ok"] for a in answers)
    if case == "disjoint":
        return wins, 0, 2 - wins
    if wins != 1:
        return wins, 0, 2 - wins
    winner = 0 if answers[0]["ok"] else 1
    lost = answers[1 - winner]
    b, e = windows[winner]
    held = f"[{iso(start + b * DAY)}, {iso(start + e * DAY)}) held by dataset …"
    good = (lost["error"] == "ConflictError" and held in lost["message"]
            and f"(run {(NEW_RUN, OLD_RUN)[winner]})" in lost["message"])
    return 1, int(good), int(not good)


def overlaps(repo: Path) -> tuple[list[tuple], int]:
    """Pairs of validity ranges of one camera that overlap (must be none), and how many ranges there are."""
    with ButlerGateway(str(repo), read_only=True) as gw:
        rows = gw.all_associations("PFS/calib", "bias")
    found = []
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            if a.data_id_key() == b.data_id_key() and a.overlaps_nsec(b.nsec):
                found.append((a.key(), b.key()))
    return found, len(rows)


@pytest.mark.parametrize("seeded_repo", REGISTRIES, indirect=True)
def test_two_operators_certify_at_once(seeded_repo: Path, tmp_path: Path, request, record_property):
    repo = seeded_repo
    database = request.node.callspec.params["seeded_repo"]
    racers = [Racer(repo, tmp_path / f"operator{i}") for i in (1, 2)]
    counts = {}
    try:
        for k, (case, windows) in enumerate(CASES.items()):
            total = [0, 0, 0]
            for i in range(ROUNDS):
                start = datetime(2030 + k, 1, 1) + i * 10 * DAY
                verdict = judge(case, race_round(racers, start, windows), windows, start)
                total = [t + v for t, v in zip(total, verdict)]
            counts[case] = tuple(total)
            line = f"race {database} {case}: {total[0]} wins / {total[1]} losses / {total[2]} inconsistent"
            print(line)
            record_property("race", line)
    finally:
        for racer in racers:
            racer.close()
    found, n = overlaps(repo)
    assert not found
    assert n == len(CAMERAS) * ROUNDS * 3  # one overlapping certify and two disjoint ones per round
    assert counts == {"overlapping": (ROUNDS, ROUNDS, 0), "disjoint": (2 * ROUNDS, 0, 0)}
