"""Following a running attempt: its quanta progress, and (bps) the verdict that says it is done.

A local stage's progress comes from its pipetask log, read incrementally at each supervisor tick, and at
the end from its ``--summary`` report.  A bps stage's comes from the files bps and Parsl write
(:class:`pfstui.bps.monitor.BpsMonitor`), and its verdict from ``pipetask report`` run when bps has exited.
Both keep what they found in the attempt's record (``Attempt.quanta``) so a new supervisor goes on from there.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pfstui.bps.monitor import BpsMonitor
from pfstui.bps.report import REPORT_FILE, read_report, start_report
from pfstui.bps.report import verdict as report_verdict
from pfstui.pipetask_log.parser import LogParser
from pfstui.pipetask_log.progress import StageProgress
from pfstui.pipetask_log.scan import LogParseError, scan_file
from pfstui.pipetask_log.summary import read_summary
from pfstui.plan.argv import summary_file
from pfstui.process import runner
from pfstui.queue.state import Attempt, BpsJobs, Progress, Quanta

__all__ = ["BpsTracker", "Tracker"]

log = logging.getLogger(__name__)


def _dump(record: BaseModel) -> dict[str, Any]:
    """A relayed record back in its owner's plain form (every key it wrote, kept or not by the queue)."""
    return record.model_dump(mode="json")


class Tracker:
    """Incremental quanta progress of one attempt, from its log (and, at the end, its --summary)."""

    def __init__(self, attempt: Attempt, stage_name: str) -> None:
        self.attempt = attempt
        self.stage_name = stage_name
        saved = attempt.quanta
        self.offset = saved.offset
        self.parser = LogParser()
        try:
            self.progress = StageProgress.from_dict(_dump(saved.progress)) if saved.progress else StageProgress()
        except Exception:  # noqa: BLE001 - a damaged record is re-read from the start
            self.progress, self.offset = StageProgress(), 0

    def update(self, *, final: bool = False) -> bool:
        if not self.attempt.log_path:
            return False
        try:
            events, end = scan_file(self.attempt.log_path, self.offset, parser=self.parser, final=final,
                                    max_bytes=None if final else 4 << 20)
        except LogParseError:
            return self._log_lost()
        if end == self.offset and not events:
            return False
        self.offset = end
        self.progress.apply_all(events)
        self.attempt.quanta = Quanta(offset=self.offset, progress=Progress.model_validate(self.progress.to_dict()))
        return True

    def _log_lost(self) -> bool:
        """The log is shorter than what was read, or gone: keep the counts read from it and say so, once.

        Why not re-read it from the start: a finished stage whose log was deleted or truncated (a cleanup, a
        full disk) then showed "done" with zero or partial counts and no warning.  The runner only appends,
        so a shorter log never holds the full story; what was counted before is the best there is.
        """
        warning = (f"warning: its log {self.attempt.log_path} was truncated or deleted after {self.offset:,} bytes "
                   "were read; the quanta counts are those read before (see the pipetask --summary report)")
        if warning in self.attempt.detail:
            return False
        self.attempt.detail = f"{self.attempt.detail}; {warning}" if self.attempt.detail else warning
        log.warning("%s: %s", self.stage_name, warning)
        return True

    def apply_summary(self) -> None:
        """Fold the ``--summary`` report (written at exit) into the record: it tells failed from blocked."""
        if not self.attempt.cwd:
            return
        summary = read_summary(summary_file(self.attempt.cwd, self.stage_name))
        if summary is not None:
            self.attempt.quanta.summary = dataclasses.asdict(summary)


class BpsTracker:
    """Progress and verdict of one ``backend: bps`` attempt (see :mod:`pfstui.bps`).

    When the bps process has exited, ``pipetask report`` runs in the background on the submitted graph;
    the stage stays running until it answers, so "done" always means the outputs are in the registry
    and every quantum succeeded.
    """

    UPDATE_SECONDS = 1.0

    def __init__(self, attempt: Attempt, stage_name: str, repo: str | None) -> None:
        self.attempt = attempt
        self.stage_name = stage_name
        self.repo = repo
        workdir = attempt.bps.workdir if attempt.bps is not None else None
        self.monitor = BpsMonitor(workdir or attempt.cwd or ".", attempt.log_path)
        self.report_proc = None
        self.report = None
        self._last = 0.0

    def update(self, *, final: bool = False) -> bool:
        now = time.monotonic()
        if not final and now - self._last < self.UPDATE_SECONDS:
            return False
        self._last = now
        changed = self.monitor.update(final=final)
        if changed or final:
            self._save()
        return changed

    def _save(self) -> None:
        m = self.monitor
        self.attempt.quanta = Quanta(progress=Progress.model_validate(m.progress.to_dict()),
                                     bps=BpsJobs(phase=m.phase, jobs=dict(m.jobs), error=m.failure_detail(),
                                                 step=m.step()))

    def settled(self, st, tools, env, kill_requested: bool, journal=None) -> bool:
        """True once a finished attempt can be judged (its report is in, or there is none to wait for).

        Called at every tick until then; ``env`` (a callable) is built only when the report is started."""
        if st is None or st.state == runner.RunState.LOST or kill_requested or st.returncode != 0:
            return True
        if self.report_proc is None:
            if not self.repo or not self.attempt.cwd:
                return True
            try:
                self.report_proc = start_report(tools.command("pipetask"), self.repo, self.monitor.workdir,
                                                self.attempt.cwd, env())
            except Exception as exc:  # noqa: BLE001 - judged below as "no report"
                log.warning("%s: cannot start pipetask report: %s", self.stage_name, exc)
                return True
            if self.report_proc is None:
                return True
            if journal is not None:
                journal(list(self.report_proc.args))
        if self.report_proc.poll() is None:
            return False
        self.report = read_report(Path(self.attempt.cwd) / REPORT_FILE)
        return True

    def apply_summary(self) -> None:
        if self.report is not None:
            self.monitor.apply_report(self.report)
        self._save()

    def verdict(self, returncode: int | None) -> tuple[bool, str]:
        return report_verdict(self.report, returncode, self.monitor.failure_detail())
