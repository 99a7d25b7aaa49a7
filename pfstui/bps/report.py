"""The verdict of a finished bps attempt: ``pipetask report`` on the submitted graph, read and judged.

``bps submit`` exits 0 when jobs fail, so a bps stage is judged by the report once the bps process (and
with it the final job that ingests the outputs) has exited, never by its exit code alone.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pfstui.infra.private import open_private
from pfstui.pipetask_log.progress import Failure

__all__ = ["REPORT_FILE", "REPORT_LOG", "TaskReport", "read_report", "report_argv", "start_report", "verdict"]

REPORT_FILE = "pipetask-report.yaml"
REPORT_LOG = "pipetask-report.log"


def report_argv(pipetask: list[str], repo: str, qgraph: Path | str, out: Path | str) -> list[str]:
    return [*pipetask, "report", repo, str(qgraph), "--full-output-filename", str(out)]



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
    log = open_private(Path(attempt_dir) / REPORT_LOG, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)  # the child's
    try:
        return subprocess.Popen(report_argv(pipetask, repo, graphs[0], out), cwd=str(attempt_dir),  # noqa: S603
                                env=dict(env), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
    finally:
        os.close(log)
