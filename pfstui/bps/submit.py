"""The ``bps`` backend: one pipetask stage run through BPS (lsst-ctrl-bps) with the Parsl plugin.

A bps stage is the same queue entry as a local one: the supervisor launches ``bps submit FILE`` detached
through the runner (own session, log file, exit-status file), in a working folder of its own, because
Parsl writes ``runinfo/`` (and ``bps restart`` looks for its checkpoints) in the current folder.

What ``bps`` itself does not give us, and how this module makes up for it (pfs-domain.md section 7):

* ``bps report``/``cancel`` are not implemented for Parsl.  Progress comes from the per-job logs (each
  job is a ``pipetask run-qbb``, whose ``--long-log`` lines the ordinary :class:`LogParser` reads), the
  quantum-graph build log (per-task totals) and the Parsl monitoring database (job states, for
  running and dependency-failed jobs).
* ``bps submit`` exits 0 when jobs fail.  The verdict comes from ``pipetask report`` on the submitted
  graph once the bps process (and with it the final job that ingests the outputs) has exited.
* SIGINT is not a cancel and the Parsl worker pool lives in its own process group: :func:`worker_pools`
  finds it by its ``--logdir`` inside the stage's working folder so the supervisor can signal it too.
* ``bps restart`` must run in the submission's folder: :func:`restart_argv` is used with that ``cwd``.

Nothing here imports the LSST middleware: everything goes through files and subprocesses.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pfstui.errors import UserError
from pfstui.infra.atomic import atomic_write_text
from pfstui.pipetask_log.events import (
    EmptyQuery,
    GraphSummary,
    LogMessage,
    QuantumEvent,
    TaskException,
    TaskQuantaGenerated,
)
from pfstui.pipetask_log.parser import LogParser
from pfstui.pipetask_log.progress import Failure, StageProgress
from pfstui.pipetask_log.scan import LogParseError, scan_file
from pfstui.plan.model import BpsOptions, PipetaskStage, Plan

__all__ = [
    "PARSL_SERVICE",
    "BpsError",
    "BpsMonitor",
    "bps_env",
    "pipeline_labels",
    "read_report",
    "restart_argv",
    "submit_argv",
    "submit_config",
    "worker_pools",
    "write_submit",
]

PARSL_SERVICE = "lsst.ctrl.bps.parsl.ParslService"
LOCAL_SITE_CLASS = "lsst.ctrl.bps.parsl.sites.Local"
SUBMIT_FILE = "bps-submit.yaml"
MONITOR_DB = "monitor.sqlite"
REPORT_FILE = "pipetask-report.yaml"
REPORT_LOG = "pipetask-report.log"
#: Job logs that are not quanta: the init job and the final (ingest) job.
_SERVICE_JOBS = ("pipetaskInit", "finalJob")
_PHASE_RE = re.compile(r"Starting (acquire|cluster|transform|prepare|submit) stage")
_TASK_RE = re.compile(r"parsl\.dataflow\.dflow \w+: Task (\d+) (completed|failed)")
_ERROR_RE = re.compile(r"^(?:[\w.]+ (?:ERROR|CRITICAL): |[\w.]*(?:Error|Exception): )(.+)$")
#: bps relays the graph build's output through this logger; ``Error: X`` there is pipetask's own message.
_QGRAPH_ERROR_RE = re.compile(r"^lsst\.ctrl\.bps\.pre_transform \w+: Error: (.+)$")
_LOGGER_LINE_RE = re.compile(r"^[\w.]+ [A-Z]+: ")


class BpsError(UserError):
    """A bps stage cannot be prepared; ``str()`` names the problem and the fix."""


# --------------------------------------------------------------------------------------------------
# Submission
# --------------------------------------------------------------------------------------------------


def pipeline_labels(pipeline: str) -> list[str]:
    """Task labels of a pipeline file (``#a,b`` subsets honoured), read as YAML without the middleware.

    Clustering needs them (``cluster.<name>.pipetasks``).  A pipeline built from ``imports`` only has no
    labels of its own here: :class:`BpsError` asks for ``bps.extra.cluster`` instead.
    """
    path, _, subset = pipeline.partition("#")
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BpsError(f"cannot read pipeline {path}: {exc.strerror}; check the stage's pipeline path") from None
    except yaml.YAMLError as exc:
        raise BpsError(f"pipeline {path} is not valid YAML ({exc}); fix the file") from None
    tasks = data.get("tasks") if isinstance(data, dict) else None
    labels = list(tasks) if isinstance(tasks, dict) else []
    if subset:
        wanted = [s.strip() for s in subset.split(",") if s.strip()]
        labels = [label for label in labels if label in wanted] or wanted
    if not labels:
        raise BpsError(f"pipeline {path} lists no tasks of its own (imports only), so pfstui cannot cluster it; "
                       "write the clusters yourself in the stage's bps.extra.cluster")
    return labels


def site_config(plan: Plan, options: BpsOptions, workdir: Path) -> tuple[str, dict[str, Any]]:
    """``(computeSite, its site block)``: the plan's site (or the built-in local one) plus monitoring."""
    name = options.site
    if name in plan.bps_sites:
        cfg = dict(plan.bps_sites[name])
    elif name == "local":
        cfg = {"class": LOCAL_SITE_CLASS, "cores": os.cpu_count() or 1}
    else:
        raise BpsError(f"unknown bps site '{name}'; define it under bps_sites in the plan")
    cfg.setdefault("retries", options.retries)
    # Monitoring is how pfstui follows the jobs: always on, with an absolute database path (``{submitPath}``
    # expands to nothing in the site section) and a float interval (an int is refused).
    cfg["monitorEnable"] = True
    cfg["monitorInterval"] = float(cfg.get("monitorInterval", 2.0))
    cfg["monitorFilename"] = str(workdir / MONITOR_DB)
    return name, cfg


def _operator() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = "pfstui"
    return re.sub(r"[^A-Za-z0-9_]", "_", user) or "pfstui"


def submit_config(
    plan: Plan,
    stage: PipetaskStage,
    *,
    workdir: Path | str,
    skip_existing_in: list[str] | None = None,
) -> dict[str, Any]:
    """The BPS submit file (as a dict) that runs ``stage`` like ``pipetask run`` would.

    ``skip_existing_in`` (full collection names) is added to the graph build: a resubmission after a fix
    then runs only the quanta whose outputs are missing.
    """
    if stage.backend != "bps":
        raise BpsError(f"stage '{stage.name}' has backend {stage.backend}; only bps stages have a submit file")
    workdir = Path(workdir).absolute()
    options = stage.bps or BpsOptions()
    qgraph = ["--instrument", plan.instrument]
    for item in stage.config:
        qgraph += ["-c", item]
    for item in stage.config_files:
        qgraph += ["-C", item]
    skip = [plan.collection(c) for c in stage.skip_existing_in] + list(skip_existing_in or [])
    if skip:
        qgraph += ["--skip-existing-in", ",".join(dict.fromkeys(skip))]
    site_name, site = site_config(plan, options, workdir)
    config: dict[str, Any] = {
        "pipelineYaml": stage.pipeline,
        "operator": _operator(),
        "payload": {
            "payloadName": stage.name,
            "butlerConfig": plan.repository,
            "inCollection": ",".join(stage.inputs),
            "output": plan.collection(stage.output),
            "dataQuery": stage.query,
        },
        "defaultPreCmdOpts": f"--long-log --log-level {shlex.quote(plan.defaults.log_level)}",
        "extraQgraphOptions": shlex.join(qgraph),
        "wmsServiceClass": PARSL_SERVICE,
        "computeSite": site_name,
        "site": {site_name: site},
        "submitPath": str(workdir / "submit"),
        "requestCpus": options.request_cpus,
        "requestMemory": options.request_memory,
        "finalJob": {"requestCpus": options.final_cpus, "requestMemory": options.final_memory},
    }
    if options.cluster_by:
        labels = pipeline_labels(stage.pipeline)
        name = "per_" + "_".join(options.cluster_by)
        config["clusterAlgorithm"] = "lsst.ctrl.bps.quantum_clustering_funcs.dimension_clustering"
        config["cluster"] = {name: {"pipetasks": ", ".join(labels), "dimensions": ", ".join(options.cluster_by)}}
    for key, value in options.extra.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def write_submit(config: Mapping[str, Any], workdir: Path | str) -> Path:
    """Write the submit file into ``workdir`` (atomically) and return its path."""
    path = Path(workdir) / SUBMIT_FILE
    header = ("# BPS submit file written by pfstui for one attempt of a stage; `bps submit` reads it from this\n"
              "# folder (Parsl's runinfo/ and the monitoring database live here too).\n")
    body = yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False, width=1 << 16)
    atomic_write_text(path, header + body)
    return path


def submit_argv(bps: list[str], submit_file: Path | str) -> list[str]:
    return [*bps, "submit", str(submit_file)]


def restart_argv(bps: list[str], submit_dir: Path | str) -> list[str]:
    """``bps restart`` of a Parsl submission; run it with ``cwd`` = the submission's working folder."""
    return [*bps, "restart", "--wms-service-class", PARSL_SERVICE, "--id", str(submit_dir)]


def report_argv(pipetask: list[str], repo: str, qgraph: Path | str, out: Path | str) -> list[str]:
    return [*pipetask, "report", repo, str(qgraph), "--full-output-filename", str(out)]


def bps_env(env: Mapping[str, str], python: str | None = None) -> dict[str, str]:
    """The environment BPS expects from EUPS: ``bps_defaults.yaml`` runs ``${CTRL_MPEXEC_DIR}/bin/pipetask``
    and ``${DAF_BUTLER_DIR}/bin/butler``; here both live in this virtual environment's ``bin``."""
    out = dict(env)
    root = str(Path(python or sys.executable).parent.parent)
    out.setdefault("CTRL_MPEXEC_DIR", root)
    out.setdefault("DAF_BUTLER_DIR", root)
    return out


# --------------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------------


def worker_pools(workdir: Path | str) -> list[int]:
    """Process-group ids of the Parsl worker pools of the submission in ``workdir``.

    The pool (``process_worker_pool.py``) starts in a session of its own, so killing the bps group leaves
    it running jobs; it is recognised by a ``--logdir`` under ``<workdir>/runinfo`` (resolved against the
    pool's own working folder when relative).
    """
    import psutil

    root = (Path(workdir).absolute() / "runinfo").as_posix()
    groups: set[int] = set()
    for proc in psutil.process_iter(["cmdline", "pid"]):
        try:
            cmd = proc.info.get("cmdline") or []
            logdir = next((a.split("=", 1)[1] for a in cmd if a.startswith("--logdir=")), None)
            if logdir is None and "--logdir" in cmd:
                i = cmd.index("--logdir")
                logdir = cmd[i + 1] if i + 1 < len(cmd) else None
            if not logdir:
                continue
            path = Path(logdir)
            if not path.is_absolute():
                path = Path(proc.cwd()) / path
            if os.path.normpath(path).startswith(root):
                groups.add(os.getpgid(proc.pid))
        except (psutil.Error, OSError, StopIteration):
            continue
    groups.discard(os.getpgid(0))
    return sorted(groups)


def signal_pools(workdir: Path | str, sig: int) -> int:
    """Send ``sig`` to every worker-pool group of ``workdir``; how many groups got it."""
    sent = 0
    for pgid in worker_pools(workdir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
            sent += 1
    return sent


# --------------------------------------------------------------------------------------------------
# The verdict: pipetask report
# --------------------------------------------------------------------------------------------------


@dataclass
class TaskReport:
    expected: int
    succeeded: int
    blocked: int
    failures: list[Failure] = field(default_factory=list)


def read_report(path: Path | str) -> dict[str, TaskReport] | None:
    """Per-task counts from ``pipetask report --full-output-filename X.yaml``; None when absent or unreadable."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(data, dict):
        return None
    out: dict[str, TaskReport] = {}
    try:
        for label, rep in data.items():
            failures = []
            for qid, info in (rep.get("failed_quanta") or {}).items():
                errors = info.get("error") or []
                message = str(errors[-1]) if errors else ""
                m = re.search(r"Exception (\w+): (.*)$", message, re.S)
                failures.append(Failure(task=str(label), data_id=dict(info.get("data_id") or {}),
                                        exception_class=m[1] if m else None,
                                        message=(m[2] if m else message).strip(), quantum_id=str(qid)))
            out[str(label)] = TaskReport(expected=int(rep.get("n_expected", 0)),
                                         succeeded=int(rep.get("n_succeeded", 0)),
                                         blocked=int(rep.get("n_quanta_blocked", 0)), failures=failures)
    except (AttributeError, TypeError, ValueError):
        return None
    return out


# --------------------------------------------------------------------------------------------------
# Monitoring
# --------------------------------------------------------------------------------------------------


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
            elif m := _QGRAPH_ERROR_RE.match(line):
                self.graph_error = m[1].strip()[:500]
            elif _LOGGER_LINE_RE.match(line):
                self._plain = []
                if (m := _ERROR_RE.match(line)) and "parsl" not in line.split(" ", 1)[0]:
                    self.error = m[1].strip()[:500]
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

    def state(self) -> dict[str, Any]:
        return {"phase": self.phase, "jobs": dict(self.jobs), "error": self.failure_detail()}


def verdict(report: dict[str, TaskReport] | None, returncode: int | None, error: str | None) -> tuple[bool, str]:
    """(succeeded, detail) of a finished bps attempt: from the report, never from the exit code alone."""
    if returncode not in (0, None):
        return False, f"bps exited with code {returncode}" + (f": {error}" if error else "")
    if report is None:
        return False, "pipetask report could not read the submitted graph" + (f" ({error})" if error else "")
    failed = sum(len(r.failures) for r in report.values())
    blocked = sum(r.blocked for r in report.values())
    missing = sum(r.expected - r.succeeded - len(r.failures) - r.blocked for r in report.values())
    if failed or blocked or missing:
        first = next((f for r in report.values() for f in r.failures), None)
        where = ""
        if first is not None:
            did = ", ".join(f"{k}={v}" for k, v in first.data_id.items())
            where = f"; first: {first.task} {{{did}}}: {first.message[:200]}"
        return False, f"{failed} failed, {blocked} blocked, {missing} not run (bps exited 0){where}"
    return True, ""


def start_report(pipetask: list[str], repo: str, workdir: Path | str, attempt_dir: Path | str,
                 env: Mapping[str, str]) -> subprocess.Popen[bytes] | None:
    """Start ``pipetask report`` on the submission's graph (None when there is no graph to report on)."""
    graphs = sorted((Path(workdir) / "submit").glob("*.qg"))
    if not graphs:
        return None
    out = Path(attempt_dir) / REPORT_FILE
    out.unlink(missing_ok=True)
    log = open(Path(attempt_dir) / REPORT_LOG, "wb")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(report_argv(pipetask, repo, graphs[0], out), cwd=str(attempt_dir),  # noqa: S603
                                env=dict(env), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
    finally:
        log.close()
