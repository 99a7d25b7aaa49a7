"""A finished stage whose log was truncated or deleted keeps the counts read from it, with a warning.

The log is a real ``pipetask run`` log (``tests/data/logs``) copied as a stage's log; the tracker reads it
as the supervisor does at each tick, then the file is cut or removed before the final read (a cleanup or a
full disk while nobody watched).  It used to start over from zero: a done stage with wrong counts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pfstui.queue.state import Attempt
from pfstui.queue.trackers import Tracker

LOG = Path(__file__).resolve().parents[1] / "data" / "logs" / "bias-v30-longlog.log"


def counts(tracker: Tracker) -> dict[str, tuple]:
    return {label: (t.done, t.failed, t.total) for label, t in tracker.progress.tasks.items()}


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_counts_are_kept_and_a_warning_is_shown(tmp_path: Path, damage: str) -> None:
    log = tmp_path / "stage.log"
    shutil.copy(LOG, log)
    attempt = Attempt(number=1, argv=["pipetask", "run"], log_path=str(log))
    tracker = Tracker(attempt, "bias")
    assert tracker.update()
    before = counts(tracker)
    assert before and any(done for done, _, _ in before.values())
    saved = attempt.quanta.model_dump()
    if damage == "truncated":
        log.write_bytes(log.read_bytes()[:200])
    else:
        log.unlink()
    assert tracker.update(final=True), "the warning is a change to save"
    assert counts(tracker) == before and attempt.quanta.model_dump() == saved
    assert attempt.detail.startswith(f"warning: its log {log} was truncated or deleted")
    assert not tracker.update(final=True), "said once"
    # A new supervisor (a tracker built from the saved record) goes on the same way.
    again = Tracker(attempt, "bias")
    assert not again.update(final=True) and counts(again) == before and attempt.detail.count("warning") == 1
