"""The pipetask log parser: real captured logs, lines made by the installed LSST code, and the file reader.

Three sources of truth, in order of preference:

* logs captured from real ``pipetask run`` commands (``tests/data/logs/``); each has ONE line in
  ``CASES`` below stating what an operator should see -- adding a capture means adding a file and a line;
* lines produced by the installed LSST code itself (``summarize_quantum_graph``, ``_Job.failMessage``)
  or by the format strings read out of the installed sources with ``ast``, formatted through the real
  ``CliLog`` formats and ``ButlerMDC``, so a wording change in a future stack fails here;
* the seed document's v29 example.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from pfstui.pipetask_log.data_id import data_id_key, parse_data_id
from pfstui.pipetask_log.events import (
    CliError,
    EmptyQuery,
    FailedJobs,
    FatalError,
    GraphSummary,
    LogMessage,
    NoQuanta,
    Progress,
    QuantumBlocked,
    QuantumFailed,
    QuantumFinished,
    QuantumNoWork,
    QuantumPrepared,
    TaskDropped,
    TaskException,
    TaskQuantaGenerated,
)
from pfstui.pipetask_log.formats import parse_json_record
from pfstui.pipetask_log.parser import LogParser
from pfstui.pipetask_log.progress import ProgressStateError, StageProgress
from pfstui.pipetask_log.scan import LogParseError, scan_file
from pfstui.pipetask_log.summary import read_summary

LOGS = Path(__file__).resolve().parent.parent / "data" / "logs"
SEED = Path("/work/shared/seeds/000_50b44a2efe077d93.txt")


# ==================================================================================================
# Captured logs: one line per file
# ==================================================================================================


@dataclass(frozen=True)
class Case:
    """What the log of one real run must yield.  ``fatal`` is the final exception's class name (last
    dotted part) or None; ``summary`` names the --summary JSON of the same run, if captured."""

    log: str
    total: int | None
    done: int
    failed: int
    blocked: int
    fatal: str | None = None
    summary: str | None = None
    tasks: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # label: total, done, failed, blocked
    empty: bool = False


CASES = [
    # Seed document (helpdesk tutorial), v29 cmdLineFwk summary with a graph ID (mangled by copy-paste there).
    Case("v29_seed_excerpt.log", 12, 0, 0, 0, tasks={"isr": (12 - 2, 0, 0, 0), "cpBiasCombine": (2, 0, 0, 0)}),
    # Captured here with a throw-away two-task pipeline on the demo repository (LSST 30.0.11).
    Case("v30_long_j1_fail.log", 16, 14, 1, 1, "MPGraphExecutorError", "v30_long_j1_fail.summary.json",
         {"isr": (12, 11, 1, 0), "cpBiasCombine": (4, 3, 0, 1)}),
    Case("v30_long_j2_fail_kill.log", 16, 12, 2, 2, "MPGraphExecutorError", "v30_long_j2_fail_kill.summary.json",
         {"isr": (12, 10, 2, 0), "cpBiasCombine": (4, 2, 0, 2)}),
    Case("v30_long_j2_timeout.log", 4, 0, 2, 2, "MPGraphExecutorError", "v30_long_j2_timeout.summary.json"),
    Case("v30_long_j1_failfast.log", 16, 7, 1, 0, "MPGraphExecutorError"),
    Case("v30_long_import_error.log", None, 0, 0, 0, "AttributeError"),
    Case("v30_default_j1_ok.log", 16, 16, 0, 0, None, "v30_default_j1_ok.summary.json"),
    Case("v30_default_j2_fail.log", 16, 14, 1, 1, "MPGraphExecutorError"),
    Case("v30_default_empty_query.log", None, 0, 0, 0, empty=True),
    Case("v30_jsonlog_j1_fail.log.json", 16, 14, 1, 1, "MPGraphExecutorError"),
    Case("v30_default_j1_fail_jsonlog_stderr.log", 16, 14, 1, 1, "MPGraphExecutorError"),  # stderr of that run
    # Captured by the lead from the demo pipelines (pfstui/demo/pipelines).
    Case("bias-v30-longlog.log", 16, 16, 0, 0, None, "bias-v30.summary.json"),
    Case("bias-fail-j1-longlog.log", 16, 14, 1, 1, "MPGraphExecutorError", "bias-fail-j1.summary.json"),
    Case("bias-fail-j2-default.log", 16, 14, 1, 1, "MPGraphExecutorError", "bias-fail-j2.summary.json"),
    Case("bias-failfast-j1-longlog.log", 16, 7, 1, 0, "MPGraphExecutorError"),
    Case("dark-v30-longlog.log", 28, 28, 0, 0, None, tasks={"isr": (12, 12, 0, 0), "dark": (12, 12, 0, 0)}),
    Case("fiberNorms-v30-longlog.log", 26, 26, 0, 0),
    Case("fitFiberProfiles-v30-longlog.log", 108, 108, 0, 0),
    # Captured by this test's author from the demo bias.yaml with --long-log -j 2 and demoFailOn.
    Case("bias-demo-j2-fail-longlog.log", 16, 14, 1, 1, "MPGraphExecutorError", "bias-demo-j2-fail.summary.json",
         {"isr": (12, 11, 1, 0), "cpBiasCombine": (4, 3, 0, 1)}),
]


def _log_files() -> list[str]:
    return sorted(p.name for p in LOGS.iterdir() if p.name.endswith(".log") or p.name.endswith(".log.json"))


def _progress_of(path: Path, **kw) -> tuple[StageProgress, list]:
    events, end = scan_file(path, final=True, **kw)
    assert end == path.stat().st_size
    sp = StageProgress()
    sp.apply_all(events)
    return sp, events


def test_every_captured_log_has_a_case() -> None:
    missing = set(_log_files()) - {c.log for c in CASES}
    assert not missing, f"add a Case line to CASES for: {sorted(missing)}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.log)
def test_captured_log(case: Case) -> None:
    path = LOGS / case.log
    sp, events = _progress_of(path)
    assert (sp.total, sp.done, sp.failed, sp.blocked) == (case.total, case.done, case.failed, case.blocked)
    assert sp.running == 0
    for label, expected in case.tasks.items():
        t = sp.tasks[label]
        assert (t.total, t.done, t.failed, t.blocked) == expected, label
    if case.fatal is None:
        assert sp.fatal is None
    else:
        assert sp.fatal is not None and sp.fatal["exception_class"].split(".")[-1] == case.fatal
    assert sp.empty_graph is case.empty
    if case.total is not None and not case.empty:
        assert sum(1 for e in events if isinstance(e, GraphSummary)) == 1
    # Every failure points at the log line that reported it.
    data = path.read_bytes()
    for f in sp.failures:
        assert f.offset is not None and (f.offset == 0 or data[f.offset - 1 : f.offset] == b"\n")
        line = data[f.offset : data.index(b"\n", f.offset)].decode()
        assert f.task in line
        assert f.message, f
    if case.summary:
        summary = read_summary(LOGS / case.summary)
        assert summary is not None
        for label, c in summary.tasks.items():
            t = sp.tasks[label]
            assert (c.total, c.succeeded, c.failed + c.timed_out, c.blocked) == (t.total, t.done, t.failed, t.blocked)
        assert {f.task for f in summary.failures} == {f.task for f in sp.failures}
        assert len(summary.failures) == sp.failed


@pytest.mark.parametrize("name", _log_files())
def test_chunking_and_live_growth_do_not_change_the_result(name: str, tmp_path: Path) -> None:
    """Whatever the read size, and however the file grows while it is followed, the events are the same."""
    src = LOGS / name
    whole, _ = scan_file(src, final=True)
    expected = [e.to_dict() for e in whole]
    for chunk in (7, 100, 4096):
        events, _ = scan_file(src, final=True, chunk_size=chunk)
        assert [e.to_dict() for e in events] == expected, chunk

    data = src.read_bytes()
    rng = random.Random(name)
    cuts = sorted(rng.sample(range(1, len(data)), min(25, len(data) - 1)))
    for stateful in (False, True):
        live = tmp_path / f"live-{stateful}.log"
        live.write_bytes(b"")
        parser = LogParser() if stateful else None
        got, offset, prev = [], 0, 0
        for cut in [*cuts, len(data)]:
            with open(live, "ab") as fh:
                fh.write(data[prev:cut])
            prev = cut
            events, offset = scan_file(live, offset, parser=parser, chunk_size=512)
            got.extend(events)
        events, offset = scan_file(live, offset, parser=parser, final=True)
        got.extend(events)
        assert offset == len(data)
        assert [e.to_dict() for e in got] == expected, f"stateful={stateful}"


def _running_over_time(path: Path) -> tuple[list[int], StageProgress]:
    parser, sp, seen = LogParser(), StageProgress(), []
    offset = 0
    for raw in path.read_bytes().splitlines(keepends=True):
        sp.apply_all(parser.feed(raw.decode(), offset))
        offset += len(raw)
        seen.append(sp.running)
    sp.apply_all(parser.flush())
    return seen, sp


def test_running_count_follows_a_multiprocess_run() -> None:
    """-j 2 with two slow quanta: both are seen running at once; both time out; none run at the end."""
    seen, sp = _running_over_time(LOGS / "v30_long_j2_timeout.log")
    assert max(seen) == 2 and seen[-1] == 0 and sp.running == 0
    assert sp.tasks["isr"].running == 0 and sp.tasks["isr"].failed == 2


def test_multiprocess_kill_and_exception() -> None:
    """-j 2, one child killed by SIGKILL, one raising: the kill has no exception, the raise has its text."""
    seen, sp = _running_over_time(LOGS / "v30_long_j2_fail_kill.log")
    # Tiny quanta: a child spends ~1.3 s importing and ~30 ms in its quantum, so they never overlap in the log.
    assert max(seen) == 1 and sp.running == 0
    killed = next(f for f in sp.failures if f.signal is not None)
    assert (killed.signal, killed.exception_class, killed.data_id["visit"]) == (9, None, 13)
    assert "killed by signal 9" in killed.message
    raised = next(f for f in sp.failures if f.signal is None)
    assert (raised.exception_class, raised.exit_code, raised.data_id["visit"]) == ("RuntimeError", 1, 12)
    # The child's own error line comes first; that is where the failure is reported.
    assert raised.message == "Saturated amplifier in r1: cannot remove signature\n(second line of message)"


def test_progress_counts_midway_through_a_failing_run() -> None:
    """After the first progress line that counts the failure: 7 ok, 1 failed, 1 blocked, 7 left."""
    path = LOGS / "v30_long_j1_fail.log"
    parser, sp, offset = LogParser(), StageProgress(), 0
    for raw in path.read_bytes().splitlines(keepends=True):
        for ev in parser.feed(raw.decode(), offset):
            sp.apply(ev)
            if isinstance(ev, Progress) and ev.failed:
                assert (ev.succeeded, ev.failed, ev.remaining, ev.total) == (7, 2, 7, 16)
                assert (sp.done, sp.failed, sp.blocked, sp.remaining, sp.running) == (7, 1, 1, 7, 0)
                assert sp.tasks["cpBiasCombine"].blocked == 1
                assert sp.summary_line() == "7/16 done, 1 failed, 1 blocked, 0 running"
                return
        offset += len(raw)
    pytest.fail("no progress line with a failure")


def test_timeout_run() -> None:
    sp, events = _progress_of(LOGS / "v30_long_j2_timeout.log")
    assert all(f.timed_out for f in sp.failures) and len(sp.failures) == 2
    timeouts = [e for e in events if isinstance(e, QuantumFailed) and e.form == "timeout"]
    assert [e.timeout for e in timeouts] == [3.0, 3.0]
    (jobs,) = [e for e in events if isinstance(e, FailedJobs)]
    assert sorted(j.state for j in jobs.jobs) == ["FAILED_DEP", "FAILED_DEP", "TIMED_OUT", "TIMED_OUT"]


def test_empty_graph_run() -> None:
    sp, events = _progress_of(LOGS / "v30_default_empty_query.log")
    kinds = [type(e) for e in events]
    assert EmptyQuery in kinds and NoQuanta in kinds and CliError in kinds
    empty = next(e for e in events if isinstance(e, EmptyQuery))
    assert "To reproduce this query for debugging purposes, run:" in empty.explanation
    assert any("print(query.any())" in ln for ln in empty.explanation)
    assert sp.cli_error == "QuantumGraph was empty; ERROR logs above should provide details."
    assert [e.task for e in events if isinstance(e, TaskDropped)] == ["isr", "cpBiasCombine"]


def test_fail_fast_names_the_quantum_in_the_final_exception() -> None:
    sp, events = _progress_of(LOGS / "v30_long_j1_failfast.log")
    ff = [e for e in events if isinstance(e, QuantumFailed)]
    assert [e.form for e in ff] == ["fail_fast"]
    (f,) = sp.failures
    assert f.quantum_id == ff[0].quantum_id and f.exception_class == "RuntimeError"
    fatal = next(e for e in events if isinstance(e, FatalError))
    assert fatal.message.startswith(f"Quantum {f.quantum_id} (isr@{{instrument: 'PFS'")


def test_json_log_matches_text_log_of_the_same_run() -> None:
    """--log-file X.json: the same events as the text output of that run (apart from offsets/times)."""
    def strip(events):
        skip = ("offset", "time", "mdc_label", "traceback", "lines")
        return [{k: v for k, v in e.to_dict().items() if k not in skip} for e in events]

    json_events, _ = scan_file(LOGS / "v30_jsonlog_j1_fail.log.json", final=True)
    text_events, _ = scan_file(LOGS / "v30_default_j1_fail_jsonlog_stderr.log", final=True)
    sp = StageProgress()
    sp.apply_all(json_events)
    fail = next(e for e in json_events if isinstance(e, QuantumFailed))
    assert fail.exception_class == "RuntimeError" and fail.form == "single"
    assert fail.mdc_label.startswith("isr:{instrument: 'PFS', arm: 'r', spectrograph: 1, visit: 12")
    assert strip(json_events) == strip(text_events)


# ==================================================================================================
# parse_data_id / parse_json_record
# ==================================================================================================


def _universe():
    from lsst.daf.butler import DimensionConfig, DimensionUniverse

    import pfstui.demo

    return DimensionUniverse(DimensionConfig(str(Path(pfstui.demo.__file__).parent / "dimensions.yaml")))


def test_parse_data_id_round_trips_real_data_coordinates() -> None:
    from lsst.daf.butler import DataCoordinate

    u = _universe()
    group = u.conform(["instrument", "arm", "spectrograph", "visit"])
    full = DataCoordinate.from_full_values(group, ("PFS", "r", 1, 123, 2000, 305441741))
    assert parse_data_id(str(full)) == {
        "instrument": "PFS", "arm": "r", "spectrograph": 1, "visit": 123, "dither": 2000, "pfs_design_id": 305441741
    }
    odd = DataCoordinate.standardize(
        instrument="PFS", arm="b", spectrograph=2, profiles_run="it's, {odd}: x", profiles_group=1, universe=u
    )
    assert parse_data_id(str(odd)) == dict(odd.required)
    assert parse_data_id("{}") == {}
    assert parse_data_id("{a: -3, b: 1.5, c: None, d: 'x'}") == {"a": -3, "b": 1.5, "c": None, "d": "x"}
    with pytest.raises(ValueError, match="not a data ID"):
        parse_data_id("instrument: 'PFS'")


def test_parse_json_record() -> None:
    lines = (LOGS / "v30_jsonlog_j1_fail.log.json").read_text().splitlines()
    rec = parse_json_record(lines[0], 5)
    assert rec is not None
    assert (rec.offset, rec.level, rec.logger, rec.lineno) == (5, "INFO", "lsst.pipe.base.quantum_graph_builder", 435)
    assert rec.message == "Processing pipeline subgraph 1 of 1 with 2 task(s)."
    assert rec.time == "2026-11-25T09:47:18.769849Z" and rec.extra == []
    with_tb = next(parse_json_record(ln) for ln in lines if '"exc_info"' in ln)
    assert with_tb.extra and with_tb.extra[0] == "Traceback (most recent call last):"
    assert with_tb.mdc_label.startswith("isr:{")
    for bad in (lines[0][:-5], "", "{}", '{"message": 3}', "not json", "[1, 2]"):
        assert parse_json_record(bad) is None


# ==================================================================================================
# Lines produced by the installed LSST code
# ==================================================================================================


def _source_formats(module) -> list[str]:
    """Every literal format string passed to a logging call in ``module``'s source."""
    tree = ast.parse(inspect.getsource(module))
    out = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"info", "error", "warning", "fatal", "critical", "exception", "verbose", "debug"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            out.append(node.args[0].value)
    return out


def _fmt(module, prefix: str) -> str:
    found = [f for f in _source_formats(module) if f.startswith(prefix)]
    assert found, (f"{module.__name__} no longer logs a message starting {prefix!r}: "
                   "update pfstui.pipetask_log.parser")
    return found[0]


class _RealLog:
    """Emit records through real loggers formatted with the real CliLog format (default or --long-log)."""

    def __init__(self, long: bool) -> None:
        from lsst.daf.butler.cli.cliLog import CliLog, PrecisionLogFormatter

        self.long = long
        self.buf = io.StringIO()
        self.handler = logging.StreamHandler(self.buf)
        if long:
            self.handler.setFormatter(PrecisionLogFormatter(fmt=CliLog.pylog_longLogFmt, style="{"))
        else:
            self.handler.setFormatter(logging.Formatter(fmt=CliLog.pylog_normalFmt, style="{"))
        self._saved: dict[str, tuple] = {}

    def log(self, name: str, level: int, fmt: str, *args, label: str = "", exc_info=None) -> None:
        from lsst.daf.butler.logging import ButlerMDC

        logger = logging.getLogger(name)
        if name not in self._saved:
            self._saved[name] = (logger.level, logger.propagate)
            logger.addHandler(self.handler)
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
        if label:
            ButlerMDC.MDC("LABEL", label)
        else:
            ButlerMDC.MDCRemove("LABEL")
        logger.log(level, fmt, *args, exc_info=exc_info)

    def close(self) -> None:
        from lsst.daf.butler.logging import ButlerMDC

        for name, (level, propagate) in self._saved.items():
            logger = logging.getLogger(name)
            logger.removeHandler(self.handler)
            logger.setLevel(level)
            logger.propagate = propagate
        ButlerMDC.MDCRemove("LABEL")

    def events(self) -> list:
        parser, out, offset = LogParser(), [], 0
        for line in self.buf.getvalue().splitlines(keepends=True):
            out.extend(parser.feed(line, offset))
            offset += len(line.encode())
        return out + parser.flush()


@pytest.fixture(params=["default", "long"])
def real_log(request):
    from lsst.daf.butler.logging import ButlerMDC

    ButlerMDC.add_mdc_log_record_factory()
    rl = _RealLog(request.param == "long")
    try:
        yield rl
    finally:
        rl.close()
        ButlerMDC.restore_log_record_factory()


def test_quantum_graph_summary_from_the_real_function(real_log: _RealLog) -> None:
    from lsst.ctrl.mpexec.cli import utils as cli_utils

    logger = cli_utils._LOG  # an LsstLogAdapter around the module's logger
    real_log.log(logger.name, logging.DEBUG, "warm-up")  # attach the handler to that logger
    cli_utils.summarize_quantum_graph(SimpleNamespace(quanta_by_task={"isr": [0] * 10, "cpBiasCombine": [0, 1]}))
    cli_utils.summarize_quantum_graph(SimpleNamespace(quanta_by_task={"bootstrap": [0]}))
    cli_utils.summarize_quantum_graph(SimpleNamespace(quanta_by_task={"isr": []}))
    events = real_log.events()
    summaries = [e for e in events if isinstance(e, GraphSummary)]
    assert [(s.total, s.task_count, s.tasks, s.graph_id) for s in summaries] == [
        (12, 2, {"isr": 10, "cpBiasCombine": 2}, None),
        (1, 1, {"bootstrap": 1}, None),
    ]
    assert summaries[0].logger == "lsst.ctrl.mpexec.cli.utils"
    assert sum(isinstance(e, NoQuanta) for e in events) == 1


def test_executor_messages_from_the_installed_sources(real_log: _RealLog) -> None:
    from lsst.daf.butler import DataCoordinate
    from lsst.pipe.base import mp_graph_executor as mpe
    from lsst.pipe.base import single_quantum_executor as sqe

    u = _universe()
    isr_id = DataCoordinate.from_full_values(
        u.conform(["instrument", "arm", "spectrograph", "visit"]), ("PFS", "r", 1, 123, 0, 305441741)
    )
    comb_id = DataCoordinate.standardize(instrument="PFS", arm="r", spectrograph=1, universe=u)
    label = f"isr:{isr_id}"
    S, M = sqe._LOG.name, mpe._LOG.name
    uuid1, uuid2 = "01a21219-3f7c-7024-8142-0a52223a2d3c", "01a21219-3f7d-7340-adba-8c7dab9b9a58"

    real_log.log(S, logging.INFO, _fmt(sqe, "Preparing execution of quantum"), "isr", isr_id, label=label)
    real_log.log(S, logging.INFO, _fmt(sqe, "Constructing task and executing"), "isr", isr_id, label=label)
    real_log.log(S, logging.INFO, _fmt(sqe, "Task '%s' on quantum %s exited early"), "isr", isr_id, "no lamps",
                 label=label)
    real_log.log(S, logging.INFO, _fmt(sqe, "Execution of task '%s' on quantum %s took"), "isr", isr_id, 1.25,
                 label=label)
    real_log.log(M, logging.INFO, _fmt(mpe, "Executed %d quanta successfully"), 1, 0, 3, 4)
    real_log.log(S, logging.INFO, _fmt(sqe, "Skipping already-successful"), "isr", isr_id, label=label)
    real_log.log(S, logging.INFO, _fmt(sqe, "Nothing to do for task"), "isr", isr_id, "No inputs", label=label)
    try:
        raise ValueError("bad overscan\nsecond line")
    except ValueError as exc:
        real_log.log(S, logging.ERROR, _fmt(sqe, "Execution of task '%s' on quantum %s failed"), "isr", isr_id,
                     type(exc).__name__, str(exc), label=label)
        real_log.log(M, logging.ERROR, _fmt(mpe, "%s (%s@%s) failed; processing will continue"), uuid1, "isr",
                     isr_id, exc_info=exc, label=label)
    real_log.log(M, logging.ERROR, _fmt(mpe, "Upstream job failed for task %s (%s@%s)"), uuid2, "cpBiasCombine",
                 comb_id)
    real_log.log(M, logging.WARNING, _fmt(mpe, "Caught repeatable quantum error for %s (%s@%s):"), uuid1, "isr",
                 isr_id, label=label)
    events = real_log.events()

    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "QuantumPrepared", "QuantumStarted", "QuantumNoWork", "QuantumFinished", "Progress", "QuantumSkipped",
        "QuantumNoWork", "TaskException", "QuantumFailed", "QuantumBlocked", "LogMessage",
    ]
    want_id = {"instrument": "PFS", "arm": "r", "spectrograph": 1, "visit": 123, "dither": 0,
               "pfs_design_id": 305441741}
    for e in events[:4]:
        assert (e.task, e.data_id) == ("isr", want_id)
    assert isinstance(events[2], QuantumNoWork) and not events[2].terminal and events[2].reason == "no lamps"
    assert isinstance(events[3], QuantumFinished) and events[3].seconds == 1.25
    assert isinstance(events[6], QuantumNoWork) and events[6].terminal and events[6].reason == "No inputs"
    exc_ev = events[7]
    assert isinstance(exc_ev, TaskException)
    assert (exc_ev.exception_class, exc_ev.message) == ("ValueError", "bad overscan\nsecond line")
    failed = events[8]
    assert isinstance(failed, QuantumFailed)
    assert (failed.form, failed.quantum_id, failed.exception_class) == ("single", uuid1, "ValueError")
    assert failed.message == "bad overscan\nsecond line"
    blocked = events[9]
    assert isinstance(blocked, QuantumBlocked) and blocked.quantum_id == uuid2
    assert blocked.data_id == {"instrument": "PFS", "arm": "r", "spectrograph": 1}
    assert events[10].level == "WARNING"

    sp = StageProgress()
    sp.apply_all(events)
    assert (sp.tasks["isr"].done, sp.tasks["isr"].skipped, sp.failed, sp.blocked, sp.running) == (3, 2, 1, 1, 0)
    assert sp.failures[0].quantum_id == uuid1 and sp.failures[0].exception_class == "ValueError"
    if real_log.long:
        assert events[0].mdc_label == label and events[0].time is not None
        assert events[10].task == "isr" and events[10].data_id == want_id


def test_multiprocess_messages_from_the_real_job_class(real_log: _RealLog) -> None:
    """_Job.__str__/failMessage are the real code that words multiprocess failures."""
    from lsst.daf.butler import DataCoordinate
    from lsst.pipe.base import mp_graph_executor as mpe

    u = _universe()

    def job(visit: int | None, code: int, label: str = "isr"):
        j = mpe._Job.__new__(mpe._Job)
        kw = {"visit": visit} if visit else {}
        j.quantum = SimpleNamespace(dataId=DataCoordinate.standardize(instrument="PFS", arm="b", spectrograph=2,
                                                                      universe=u, **kw))
        j.task_node = SimpleNamespace(label=label)
        j.process = SimpleNamespace(exitcode=code)
        return j

    M = mpe._LOG.name
    cont = _fmt(mpe, "%s; processing will continue")
    real_log.log(M, logging.ERROR, cont, job(11, 3).failMessage())
    real_log.log(M, logging.ERROR, cont, job(12, -9).failMessage())
    real_log.log(M, logging.ERROR, _fmt(mpe, "Upstream job failed for task %s, skipping this task."),
                 job(None, 0, "cpBiasCombine"))
    real_log.log(M, logging.ERROR, cont, f"Timeout (30 sec) for task {job(13, -15)}, task is killed")
    real_log.log(M, logging.ERROR, _fmt(mpe, "Failed jobs:"))
    for state, j in (("FAILED", job(11, 3)), ("FAILED_DEP", job(None, 0, "cpBiasCombine")),
                     ("TIMED_OUT", job(13, -15))):
        real_log.log(M, logging.ERROR, _fmt(mpe, "  - %s: %s"), state, j)
    from lsst.daf.butler.cli import utils as butler_cli_utils

    try:
        raise mpe.MPGraphExecutorError("One or more tasks failed or timed out during execution.")
    except mpe.MPGraphExecutorError as exc:
        real_log.log(butler_cli_utils.log.name, logging.ERROR,
                     _fmt(butler_cli_utils, "Caught an exception, details are in traceback:"), exc_info=exc)
    events = real_log.events()
    assert [type(e).__name__ for e in events] == [
        "QuantumFailed", "QuantumFailed", "QuantumBlocked", "QuantumFailed", "FailedJobs", "FatalError"]
    exit3, killed, _, timeout, jobs, fatal = events
    assert (exit3.form, exit3.exit_code, exit3.signal, exit3.message) == ("multiprocess", 3, None, "exit code=3")
    assert (killed.signal, killed.signal_name, killed.data_id["visit"]) == (9, "Killed", 12)
    assert (timeout.form, timeout.timeout, timeout.data_id["visit"]) == ("timeout", 30.0, 13)
    assert [(j.state, j.task) for j in jobs.jobs] == [
        ("FAILED", "isr"), ("FAILED_DEP", "cpBiasCombine"), ("TIMED_OUT", "isr")]
    assert fatal.exception_class == "lsst.pipe.base.mp_graph_executor.MPGraphExecutorError"
    sp = StageProgress()
    sp.apply_all(events)
    # The Failed-jobs list repeats what was already reported: nothing is counted twice.
    assert (sp.failed, sp.blocked) == (3, 1)
    assert [f.timed_out for f in sp.failures] == [False, False, True]
    assert sp.failures[0].offset == exit3.offset


def test_graph_builder_messages(real_log: _RealLog) -> None:
    from lsst.pipe.base import quantum_graph_builder as qgb

    name = "lsst.pipe.base.quantum_graph_builder"
    real_log.log(name, logging.INFO, _fmt(qgb, "Generated %s for task %s%s."), "1 quantum", "bootstrap", "")
    real_log.log(name, logging.INFO, _fmt(qgb, "Generated %s for task %s%s."), "12 quanta", "isr",
                 " (3 had no work to do)")
    real_log.log(name, logging.INFO, _fmt(qgb, "Dropping task %s because"), "dark", "")
    events = real_log.events()
    gen = [e for e in events if isinstance(e, TaskQuantaGenerated)]
    assert [(e.task, e.count, e.note) for e in gen] == [("bootstrap", 1, ""), ("isr", 12, "3 had no work to do")]
    assert [(e.task, e.note) for e in events if isinstance(e, TaskDropped)] == [("dark", "")]


# ==================================================================================================
# v29 wording and the seed
# ==================================================================================================


def _feed_text(text: str) -> list:
    parser, out, offset = LogParser(), [], 0
    for line in text.splitlines(keepends=True):
        out.extend(parser.feed(line, offset))
        offset += len(line.encode())
    return out + parser.flush()


def test_seed_v29_table() -> None:
    text = (LOGS / "v29_seed_excerpt.log").read_text()
    if SEED.exists():
        assert text in SEED.read_text(), "the excerpt is copied verbatim from the seed"
    (summary,) = _feed_text(text)
    assert isinstance(summary, GraphSummary)
    assert (summary.total, summary.task_count, summary.tasks) == (12, 2, {"isr": 10, "cpBiasCombine": 2})
    assert summary.logger == "lsst.ctrl.mpexec.cmdLineFwk"
    assert summary.graph_id == "1726845383.   6842682-77840"  # as mangled in the seed
    (clean,) = _feed_text(text.replace(".   ", ".").replace("''", "'"))
    assert clean.graph_id == "1726845383.6842682-77840"


def test_v29_failure_wording() -> None:
    did = "{instrument: 'PFS', arm: 'r', spectrograph: 1, visit: 123}"
    text = (
        f"lsst.ctrl.mpexec.singleQuantumExecutor ERROR: Execution of task 'isr' on quantum {did} failed. "
        "Exception RuntimeError: boom\n"
        f"lsst.ctrl.mpexec.mpGraphExecutor ERROR: Task <isr dataId={did}> failed; processing will continue for "
        "remaining tasks.\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "RuntimeError: boom\n"
        "lsst.ctrl.mpexec.mpGraphExecutor ERROR: Upstream job failed for task <cpBiasCombine dataId={instrument: "
        "'PFS', arm: 'r', spectrograph: 1}>, skipping this task.\n"
        "lsst.ctrl.mpexec.mpGraphExecutor INFO: Executed 0 quanta successfully, 2 failed and 0 remain out of "
        "total 2 quanta.\n"
        "lsst.ctrl.mpexec.mpGraphExecutor ERROR: Task <TaskDef(lsst.ip.isr.IsrTask, label=isr) dataId={visit: 9}>"
        " failed, exit code=1; processing will continue for remaining tasks.\n"
    )
    events = _feed_text(text)
    assert [type(e).__name__ for e in events] == [
        "TaskException", "QuantumFailed", "QuantumBlocked", "Progress", "QuantumFailed"]
    assert events[1].form == "v29" and events[1].exception_class == "RuntimeError"
    assert (events[4].task, events[4].data_id, events[4].exit_code) == ("isr", {"visit": 9}, 1)
    sp = StageProgress()
    sp.apply_all(events)
    assert (sp.failed, sp.blocked, sp.done, sp.total) == (2, 1, 0, 2)


# ==================================================================================================
# Multi-line records and when events come out
# ==================================================================================================


def test_single_line_events_come_out_at_once_and_multi_line_ones_when_complete() -> None:
    p = LogParser()
    (prog,) = p.feed("lsst.pipe.base.mp_graph_executor INFO: Executed 1 quanta successfully, 0 failed and 1 "
                     "remain out of total 2 quanta.\n", 0)
    assert isinstance(prog, Progress)
    assert p.feed("lsst.ctrl.mpexec.cli.utils INFO: QuantumGraph contains 2 quanta for 2 tasks\n", 100) == []
    assert p.resume_offset == 100
    assert p.feed("Quanta Tasks\n", 160) == [] and p.feed("------ -----\n", 173) == []
    assert p.feed("     1   isr\n", 186) == []
    (summary,) = p.feed("     1  comb\n", 199)  # the last row closes the table: no need to wait
    assert summary.tasks == {"isr": 1, "comb": 1} and summary.offset == 100 and p.resume_offset is None
    assert p.feed("pfs.isr WARNING: Low flux\n", 212) == []
    assert p.feed("  in amplifier 3\n", 240) == []
    (warn,) = p.feed("pfs.isr INFO: next\n", 260)
    assert isinstance(warn, LogMessage) and warn.text == "Low flux\n  in amplifier 3"
    assert p.feed("pfs.isr ERROR: last words\n", 280) == []
    (err,) = p.flush()
    assert err.level == "ERROR" and err.offset == 280


def test_final_exception_is_the_last_of_a_chained_traceback() -> None:
    text = (
        "lsst.daf.butler.cli.utils ERROR: Caught an exception, details are in traceback:\n"
        "Traceback (most recent call last):\n"
        '  File "a.py", line 1, in f\n'
        "    g()\n"
        "KeyError: 'arm'\n"
        "\n"
        "The above exception was the direct cause of the following exception:\n"
        "\n"
        "Traceback (most recent call last):\n"
        '  File "b.py", line 2, in h\n'
        "    raise FileNotFoundError(msg) from e\n"
        "    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "FileNotFoundError: Not enough datasets (0) found for non-optional connection isr.bias\n"
        "(with more detail)\n"
    )
    (fatal,) = _feed_text(text)
    assert isinstance(fatal, FatalError)
    assert fatal.exception_class == "FileNotFoundError"
    assert fatal.message == "Not enough datasets (0) found for non-optional connection isr.bias\n(with more detail)"


def test_a_runaway_record_keeps_its_start_and_its_end() -> None:
    p = LogParser()
    p.feed("lsst.daf.butler.cli.utils ERROR: Caught an exception, details are in traceback:", 0)
    p.feed("Traceback (most recent call last):", 10)
    for i in range(50_000):
        p.feed(f'  File "f{i}.py", line 1, in g', 20 + i)
    p.feed("RecursionError: maximum recursion depth exceeded", 60_000)
    (fatal,) = p.flush()
    assert fatal.exception_class == "RecursionError"
    assert len(fatal.traceback) < 1100 and fatal.traceback[0] == "Traceback (most recent call last):"


# ==================================================================================================
# scan_file
# ==================================================================================================


def test_table_split_across_chunks(tmp_path: Path) -> None:
    text = (LOGS / "v29_seed_excerpt.log").read_text()
    path = tmp_path / "x.log"
    path.write_text("lsst.utils.packages WARNING: Unable to import eups\n" + text + "x INFO: after\n")
    expected = None
    for chunk in range(1, 80):
        events, end = scan_file(path, chunk_size=chunk)
        assert end == path.stat().st_size
        dicts = [e.to_dict() for e in events]
        expected = expected or dicts
        assert dicts == expected
    assert [d["type"] for d in expected] == ["LogMessage", "GraphSummary"]


def test_partial_last_line_is_not_consumed(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    line = "lsst.pipe.base.mp_graph_executor INFO: Executed {} quanta successfully, 0 failed and {} remain " \
        "out of total 4 quanta."
    first, second = line.format(1, 3) + "\n", line.format(2, 2)
    path.write_text(first + second[:40])
    events, end = scan_file(path)
    assert [e.succeeded for e in events] == [1] and end == len(first)
    events, end2 = scan_file(path, end)
    assert events == [] and end2 == end
    with open(path, "a") as fh:
        fh.write(second[40:])  # complete text, still no newline: the writer may add more to this line
    events, end3 = scan_file(path, end)
    assert events == [] and end3 == end
    events, end4 = scan_file(path, end, final=True)  # the writer exited: the line is complete
    assert [(e.succeeded, e.offset) for e in events] == [(2, len(first))] and end4 == path.stat().st_size


def test_stateless_scan_resumes_at_an_open_record(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    head = ("lsst.pipe.base.single_quantum_executor ERROR: Execution of task 'isr' on quantum {visit: 1} failed. "
            "Exception ValueError: a\n")
    path.write_text("x INFO: start\n" + head + "second line of the message\n")
    events, end = scan_file(path)
    assert events == [] and end == len("x INFO: start\n")  # the open record will be re-read whole
    with open(path, "a") as fh:
        fh.write("x INFO: next\n")
    (exc,), end = scan_file(path, end)
    assert isinstance(exc, TaskException) and exc.message == "a\nsecond line of the message"
    assert exc.offset == len("x INFO: start\n") and end == path.stat().st_size


def test_max_bytes_bounds_each_call_and_still_progresses(tmp_path: Path) -> None:
    src = LOGS / "v30_long_j1_fail.log"
    whole, _ = scan_file(src, final=True)
    parser, got, offset, calls = LogParser(), [], 0, 0
    while True:
        events, new = scan_file(src, offset, parser=parser, chunk_size=1000, max_bytes=3000)
        got.extend(events)
        calls += 1
        assert new > offset or new == src.stat().st_size
        if new == offset:
            break
        assert new - offset <= 3000 + 1000
        offset = new
    got.extend(scan_file(src, offset, parser=parser, final=True)[0])
    assert calls > 5 and [e.to_dict() for e in got] == [e.to_dict() for e in whole]
    long_line = tmp_path / "long.log"
    long_line.write_text("x INFO: " + "y" * 10_000 + "\n")
    events, end = scan_file(long_line, max_bytes=100, chunk_size=64)
    assert end == long_line.stat().st_size and events == []  # one line longer than the budget: read whole


def test_missing_and_truncated_files(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    assert scan_file(path) == ([], 0)
    with pytest.raises(LogParseError, match="missing but 10 bytes"):
        scan_file(path, 10)
    path.write_text("x INFO: a\n")
    with pytest.raises(LogParseError, match="shorter than the 100 bytes already read.*rescan it from offset 0"):
        scan_file(path, 100)


# ==================================================================================================
# StageProgress persistence
# ==================================================================================================


def test_stage_progress_round_trips_through_json_midway(tmp_path: Path) -> None:
    """Save the aggregate mid-run, reload it, continue: same result as never stopping."""
    src = LOGS / "v30_long_j2_fail_kill.log"
    data = src.read_bytes()
    half = data.index(b"\n", len(data) // 2) + 1
    live = tmp_path / "live.log"
    live.write_bytes(data[:half])
    events, offset = scan_file(live)
    sp = StageProgress()
    sp.apply_all(events)
    saved = json.loads(json.dumps(sp.to_dict()))
    assert saved["schema"] == 1
    live.write_bytes(data)
    restored = StageProgress.from_dict(saved)
    restored.apply_all(scan_file(live, offset, final=True)[0])
    straight, _ = _progress_of(src)
    assert restored.to_dict() == straight.to_dict()


def test_stage_progress_rejects_foreign_state() -> None:
    with pytest.raises(ProgressStateError, match="schema 99.*rescan the stage log"):
        StageProgress.from_dict({"schema": 99})
    with pytest.raises(ProgressStateError, match="must be a dict"):
        StageProgress.from_dict([])  # type: ignore[arg-type]
    with pytest.raises(ProgressStateError, match="malformed"):
        StageProgress.from_dict({"schema": 1, "reported": ["x"]})


def test_failures_are_merged_per_quantum() -> None:
    did = {"instrument": "PFS", "arm": "r", "spectrograph": 1, "visit": 12}
    sp = StageProgress()
    sp.apply(QuantumPrepared(offset=0, task="isr", data_id=did))
    sp.apply(QuantumFailed(offset=50, task="isr", data_id=did, form="multiprocess", exit_code=1, message="exit code=1"))
    sp.apply(TaskException(offset=90, task="isr", data_id=did, exception_class="RuntimeError", message="sat"))
    sp.apply(FailedJobs(offset=120, jobs=[]))
    (f,) = sp.failures
    assert (f.offset, f.exit_code, f.exception_class, f.message) == (50, 1, "RuntimeError", "sat")
    assert (sp.failed, sp.running, sp.tasks["isr"].failed) == (1, 0, 1)
    assert data_id_key("isr", did) == data_id_key("isr", dict(reversed(list(did.items()))))


# ==================================================================================================
# read_summary
# ==================================================================================================


def test_read_summary_real_reports() -> None:
    s = read_summary(LOGS / "v30_long_j2_fail_kill.summary.json")
    assert s is not None and s.status == "failure"
    assert s.exception_class == "lsst.pipe.base.mp_graph_executor.MPGraphExecutorError"
    assert {k: (c.total, c.succeeded, c.failed, c.blocked) for k, c in s.tasks.items()} == {
        "isr": (12, 10, 2, 0), "cpBiasCombine": (4, 2, 0, 2)}
    killed = next(f for f in s.failures if f.exit_code == -9)
    assert (killed.signal, killed.exception_class, killed.message) == (9, None, "killed by signal 9")
    raised = next(f for f in s.failures if f.exit_code == 1)
    assert raised.exception_class == "RuntimeError" and raised.data_id["visit"] == 12
    assert s.output_collection == "u/cap/j2fail"
    progress = s.to_progress()
    assert (progress.total, progress.done, progress.failed, progress.blocked) == (16, 12, 2, 2)
    t = read_summary(LOGS / "v30_long_j2_timeout.summary.json")
    assert t is not None and sum(c.timed_out for c in t.tasks.values()) == 2
    assert all(f.timed_out for f in t.failures)


def test_read_summary_tolerates_missing_and_half_written_files(tmp_path: Path) -> None:
    assert read_summary(tmp_path / "nope.json") is None
    data = (LOGS / "v30_long_j1_fail.summary.json").read_bytes()
    path = tmp_path / "s.json"
    for cut in range(0, len(data), 37):
        path.write_bytes(data[:cut])
        assert read_summary(path) is None, cut
    path.write_bytes(data)
    assert read_summary(path) is not None
    for junk in (b"[]", b'"x"', b"{}", b"\xff\xfe", b'{"quantaReports": 5}', b'{"quantaReports": [1, {"x": 2}]}'):
        path.write_bytes(junk)
        s = read_summary(path)
        assert s is None or s.failures == [], junk
