"""Progress of a running bps attempt, from the files bps and Parsl write (``bps report`` is not
implemented for Parsl).

Progress comes from the per-job logs (each job is a ``pipetask run-qbb``, whose ``--long-log`` lines the
ordinary :class:`LogParser` reads), the quantum-graph build log (per-task totals) and the Parsl
monitoring database (job states, for running and dependency-failed jobs).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from pfstui.bps.report import TaskReport
from pfstui.bps.submit import MONITOR_DB
from pfstui.pipetask_log.events import (
    EmptyQuery,
    GraphSummary,
    LogMessage,
    QuantumEvent,
    TaskException,
    TaskQuantaGenerated,
)
from pfstui.pipetask_log.formats import parse_head
from pfstui.pipetask_log.parser import LogParser
from pfstui.pipetask_log.progress import StageProgress
from pfstui.pipetask_log.scan import LogParseError, scan_file

__all__ = ["BpsMonitor"]

#: Job logs that are not quanta: the init job and the final (ingest) job.
_SERVICE_JOBS = ("pipetaskInit", "finalJob")
#: Parsl job states that are over (the rest are pending, launched or running).
_JOB_ENDED = frozenset({"exec_done", "memo_done", "failed", "dep_fail", "running_ended"})
_PHASE_RE = re.compile(r"Starting (acquire|cluster|transform|prepare|submit) stage")
#: bps relays the graph build's output through this logger; ``Error: X`` there is pipetask's own message.
#: bps relays the graph build's own error through this logger, as "Error: <what the graph builder said>".
_GRAPH_LOGGER = "lsst.ctrl.bps.pre_transform"
_GRAPH_ERROR = "Error: "
_ERROR_LEVELNO = 40  # logging.ERROR: bps's own ERROR and CRITICAL lines say why it stopped


def _latest_states(db: Path) -> list[tuple[str, str, str | None]]:
    """``(job label, state, stdout path)`` per Parsl task, from the monitoring database (read-only)."""
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5)
    except sqlite3.Error:
        return []
    try:
        rows = con.execute(
            "SELECT t.task_func_name, s.task_status_name, t.task_stdout FROM task t "
            "JOIN status s ON s.task_id = t.task_id AND s.run_id = t.run_id "
            "WHERE s.timestamp = (SELECT MAX(s2.timestamp) FROM status s2 "
            "                     WHERE s2.task_id = t.task_id AND s2.run_id = t.run_id) "
            "AND t.run_id = (SELECT run_id FROM workflow ORDER BY time_began DESC LIMIT 1)"
        ).fetchall()
    except sqlite3.Error:
        return []  # not created yet, or being written: next tick
    finally:
        con.close()
    return [(str(a), str(b), c) for a, b, c in rows]


class BpsMonitor:
    """Progress of one bps attempt, in the same :class:`StageProgress` shape as a local stage's.

    ``workdir`` is the submission's working folder (shared by ``bps restart`` attempts); the bps process's
    own output is ``log_path``.  Job logs are re-read from the start when the monitor is recreated (they
    are small), so nothing of it needs saving except the resulting counts.
    """

    def __init__(self, workdir: Path | str, log_path: Path | str | None) -> None:
        self.workdir = Path(workdir)
        self.submit_dir = self.workdir / "submit"
        self.log_path = Path(log_path) if log_path else None
        self.phase: str | None = None
        self.error: str | None = None
        self.graph_error: str | None = None
        self._empty_query: str | None = None  # None: not read yet
        self._plain: list[str] = []
        self.jobs: dict[str, int] = {}
        self._log_offset = 0
        self._sizes: dict[Path, int] = {}
        self._parsers: dict[Path, tuple[LogParser, int]] = {}
        self._totals: dict[str, int] = {}
        self._totals_read = False
        self.progress = StageProgress()

    # -- sources ---------------------------------------------------------------------------------
    def _read_bps_log(self) -> bool:
        if self.log_path is None:
            return False
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_offset)
                data = fh.read(4 << 20)
        except OSError:
            return False
        end = data.rfind(b"\n") + 1
        if not end:
            return False
        self._log_offset += end
        for line in data[:end].decode("utf-8", errors="replace").splitlines():
            if m := _PHASE_RE.search(line):
                self.phase = m[1]
            elif (head := parse_head(line)) is not None:
                if head.logger == _GRAPH_LOGGER and head.message.startswith(_GRAPH_ERROR):
                    self.graph_error = head.message[len(_GRAPH_ERROR):].strip()[:500]
                    continue
                self._plain = []
                if head.levelno >= _ERROR_LEVELNO and "parsl" not in head.logger:
                    self.error = head.message.strip()[:500]
            elif line.strip() and not line.startswith((" ", "\t", "Traceback")):
                # bps's last words (the exception it exits with) come as plain lines after its log lines.
                self._plain.append(line.strip())
        return True

    def failure_detail(self) -> str | None:
        """Why bps itself failed, the most specific first: the graph build's own error, then bps's."""
        parts = [self.graph_error, " ".join(self._plain[:2])[:500], self.error]
        out = self.submit_dir / "quantumGraphGeneration.out"
        if self.graph_error and self._empty_query is None and out.exists():
            # The graph build has ended when bps relays its error: read its output once.
            events, _ = scan_file(out, 0, final=True)
            query = next((ev for ev in events if isinstance(ev, EmptyQuery)), None)
            self._empty_query = query.message if query is not None else ""
        if self._empty_query:
            parts.insert(0, self._empty_query)
        return "; ".join(dict.fromkeys(p.rstrip(". ") for p in parts if p)) or None

    def _read_totals(self) -> None:
        out = self.submit_dir / "quantumGraphGeneration.out"
        if self._totals_read or not out.exists() or self.phase in (None, "acquire"):
            return
        events, _ = scan_file(out, 0, final=True)
        for ev in events:
            if isinstance(ev, TaskQuantaGenerated):
                self._totals[ev.task] = ev.count
            elif isinstance(ev, GraphSummary):
                self._totals.update(ev.tasks)
        self._totals_read = True

    def _job_logs(self) -> list[Path]:
        logs = self.submit_dir / "logs"
        if not logs.is_dir():
            return []
        return [p for p in logs.rglob("*.stderr") if p.parts[len(logs.parts)] not in _SERVICE_JOBS]

    def _scan_jobs(self, final: bool) -> bool:
        changed = False
        for path in self._job_logs():
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if self._sizes.get(path) == size and not final:
                continue
            self._sizes[path] = size
            parser, offset = self._parsers.get(path) or (LogParser(), 0)
            try:
                events, end = scan_file(path, offset, parser=parser, final=final)
            except LogParseError:
                parser, events, end = LogParser(), *scan_file(path, 0, final=final)
            self._parsers[path] = (parser, end)
            before = len(self.progress.failures)
            for ev in events:
                # A job's own "Executed 1 quanta" and closing traceback describe that job, not the stage.
                if isinstance(ev, QuantumEvent | TaskException | LogMessage):
                    self.progress.apply(ev)
            for f in self.progress.failures[before:]:
                f.log_path = str(path)
            changed = changed or bool(events)
        return changed

    # -- the aggregate ---------------------------------------------------------------------------
    def update(self, *, final: bool = False) -> bool:
        changed = self._read_bps_log()
        self._read_totals()
        changed = self._scan_jobs(final) or changed
        states = _latest_states(self.workdir / MONITOR_DB)
        jobs: dict[str, int] = {}
        blocked: dict[str, int] = {}
        for label, state, _stdout in states:
            jobs[state] = jobs.get(state, 0) + 1
            if state == "dep_fail":
                blocked[label] = blocked.get(label, 0) + 1
        if jobs != self.jobs:
            self.jobs, changed = jobs, True
        sp = self.progress
        for label, n in self._totals.items():
            sp.task(label).total = n
        if self._totals:
            sp.graph_total = sum(self._totals.values())
        for label, n in blocked.items():
            if label in sp.tasks or label in self._totals:
                sp.task(label).blocked = n
        return changed

    def apply_report(self, report: dict[str, TaskReport]) -> None:
        """Replace the live counts by ``pipetask report``'s, keeping each failure's job-log position."""
        live = list(self.progress.failures)
        by_qid = {p.name.split("_", 1)[0]: str(p) for p in self._sizes}
        sp = StageProgress()
        for label, rep in report.items():
            tp = sp.task(label)
            tp.total, tp.done, tp.blocked = rep.expected, rep.succeeded, rep.blocked
            for f in rep.failures:
                # The report's data ID holds only the task's dimensions; the log's has the implied ones too.
                log = by_qid.get(f.quantum_id or "")
                seen = next((x for x in live if log and x.log_path == log), None) or next(
                    (x for x in live if x.task == f.task
                     and all(x.data_id.get(k) == v for k, v in f.data_id.items())), None)
                sp._fail(f.task, f.data_id, seen.offset if seen else None, exception_class=f.exception_class,
                         message=f.message, quantum_id=f.quantum_id)
                sp.failures[-1].log_path = (seen.log_path if seen else None) or log
        sp.graph_total = sum(r.expected for r in report.values())
        sp.warnings, sp.errors = self.progress.warnings, self.progress.errors
        self.progress = sp

    def step(self) -> str:
        """Where the attempt is, in one word: graph (building the quantum graph), prepare, jobs, or ingest (every
        job is over: the final job is putting the outputs in the registry, then pipetask report)."""
        if self.phase in (None, "acquire"):
            return "graph"
        if self.phase != "submit":
            return "prepare"
        if self.jobs and all(word in _JOB_ENDED for word in self.jobs):
            return "ingest"
        return "jobs"
