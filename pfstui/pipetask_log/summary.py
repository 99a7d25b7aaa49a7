"""Read a ``pipetask run --summary FILE.json`` report (a pipe_base ``Report``) into what pfstui shows.

Why this exists: the report is the run's own final word (per-task counts, failed quanta, the exception
it exited with), and it survives when the log does not; a missing or half-written file gives ``None``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pfstui.pipetask_log.progress import Failure, StageProgress

__all__ = ["RunSummary", "SummaryTaskCounts", "read_summary"]


@dataclass
class SummaryTaskCounts:
    """Per-task counts from a --summary report.  ``blocked`` are the 'skipped' (upstream failed) quanta."""

    total: int | None = None
    succeeded: int = 0
    failed: int = 0
    blocked: int = 0
    timed_out: int = 0

    @property
    def reported(self) -> int:
        return self.succeeded + self.failed + self.blocked + self.timed_out


@dataclass
class RunSummary:
    """The parts of a pipe_base ``Report`` (``pipetask run --summary``) that pfstui shows."""

    status: str
    exit_code: int | None
    exception_class: str | None
    exception_message: str | None
    tasks: dict[str, SummaryTaskCounts]
    failures: list[Failure]
    output_run: str | None = None
    output_collection: str | None = None
    graph_id: str | None = None

    @property
    def total(self) -> int | None:
        totals = [t.total for t in self.tasks.values()]
        return sum(totals) if totals and all(t is not None for t in totals) else None  # type: ignore[misc]

    def to_progress(self) -> StageProgress:
        """A StageProgress carrying this report's final counts (e.g. for a run whose log was lost)."""
        sp = StageProgress()
        for label, c in self.tasks.items():
            tp = sp.task(label)
            tp.total, tp.done, tp.blocked = c.total, c.succeeded, c.blocked
        for f in self.failures:
            sp._fail(f.task, f.data_id, f.offset, exception_class=f.exception_class, message=f.message,
                     exit_code=f.exit_code, signal=f.signal, quantum_id=f.quantum_id, timed_out=f.timed_out)
        sp.graph_total = self.total
        sp.graph_id = self.graph_id
        if self.exception_class:
            sp.fatal = {"exception_class": self.exception_class, "message": self.exception_message or "",
                        "offset": None}
        return sp


def read_summary(path: str | os.PathLike[str]) -> RunSummary | None:
    """Read a ``pipetask run --summary`` JSON report; None when missing, empty, half-written or not a Report.

    pipetask writes the report once at exit, so a reader racing it may see a truncated file: that, and
    any malformed content, yields None rather than an exception.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
        d = json.loads(text)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(d, dict) or "quantaReports" not in d and "qgraphSummary" not in d:
        return None
    try:
        return _summary_from_dict(d)
    except (TypeError, ValueError, AttributeError, KeyError):
        return None


def _summary_from_dict(d: dict[str, Any]) -> RunSummary:
    qg = d.get("qgraphSummary") or {}
    tasks: dict[str, SummaryTaskCounts] = {}
    for label, ts in (qg.get("qgraphTaskSummaries") or {}).items():
        n = ts.get("numQuanta") if isinstance(ts, dict) else None
        tasks[str(label)] = SummaryTaskCounts(total=int(n) if n is not None else None)
    failures: list[Failure] = []
    for q in d.get("quantaReports") or []:
        if not isinstance(q, dict):
            continue
        label = str(q.get("taskLabel") or "?")
        c = tasks.setdefault(label, SummaryTaskCounts())
        status = q.get("status", "success")
        did = q.get("dataId") if isinstance(q.get("dataId"), dict) else {}
        if status == "success":
            c.succeeded += 1
        elif status == "skipped":
            c.blocked += 1
        else:
            if status == "timeout":
                c.timed_out += 1
            else:
                c.failed += 1
            exc = q.get("exceptionInfo") if isinstance(q.get("exceptionInfo"), dict) else {}
            code = q.get("exitCode")
            code = int(code) if isinstance(code, int) else None
            failures.append(
                Failure(
                    task=label,
                    data_id=dict(did),
                    exception_class=exc.get("className"),
                    message=str(exc.get("message", "")) or (
                        f"killed by signal {-code}" if code is not None and code < 0
                        else f"exit code={code}" if code else ""
                    ),
                    exit_code=code,
                    signal=-code if code is not None and code < 0 else None,
                    quantum_id=str(q["quantumId"]) if q.get("quantumId") else None,
                    timed_out=status == "timeout",
                )
            )
    exc = d.get("exceptionInfo") if isinstance(d.get("exceptionInfo"), dict) else {}
    gid = qg.get("graphID")
    return RunSummary(
        status=str(d.get("status", "success")),
        exit_code=d.get("exitCode") if isinstance(d.get("exitCode"), int) else None,
        exception_class=exc.get("className"),
        exception_message=exc.get("message"),
        tasks=tasks,
        failures=failures,
        output_run=qg.get("outputRun"),
        output_collection=qg.get("outputCollection"),
        graph_id=str(gid) if gid is not None else None,
    )
