"""pipetask_log.formats: the record layouts, levels, failed-quantum and attention lines, compact heads.

On real captured logs (``tests/data/logs``): the three layouts (default, ``--long-log``, ``--log-file
X.json``), and the agreement between the line tests and the bytes pattern the log view scans files with.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pfstui.pipetask_log.formats import (
    ATTENTION_RE,
    LEVEL_RANK,
    LEVELS,
    compact_line,
    detect_level,
    failed_quantum,
    is_attention,
    is_failed_quantum,
    parse_head,
    parse_record,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "logs"


def real_lines(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


def test_levels_in_the_three_formats():
    long = real_lines("v30_long_j1_fail.log")
    assert detect_level(long[0]) == "INFO"
    errors = [x for x in long if detect_level(x) == "ERROR"]
    assert len(errors) == 4 and all(x.startswith("ERROR 2026-") for x in errors)
    assert [detect_level(x) for x in long if x.startswith("WARNING ")] == ["WARNING"]
    # Continuation lines (tracebacks) have no level of their own.
    assert detect_level("Traceback (most recent call last):") is None
    assert detect_level('  File "x.py", line 3, in f') is None
    default = real_lines("bias-fail-j2-default.log")
    assert detect_level(default[0]) == "INFO"
    assert sum(detect_level(x) == "ERROR" for x in default) == 7
    assert detect_level("lsst.utils.packages WARNING: Unable to import eups") == "WARNING"
    js = real_lines("v30_jsonlog_j1_fail.log.json")
    assert all(detect_level(x) is not None for x in js)
    assert sum(detect_level(x) == "ERROR" for x in js) == 4
    assert detect_level("pfs.isr DEBUG: detail") == "DEBUG"
    assert detect_level("VERBOSE 2026-11-25T09:45:28.635+00:00 pfs.isr ()(a.py:1) - v") == "VERBOSE"


@pytest.mark.parametrize("name, kinds", [
    ("v30_long_j1_fail.log", {"exception": 1, "single-process": 1}),
    ("bias-fail-j2-default.log", {"exception": 1, "multiprocess": 1}),
    ("v30_long_j2_fail_kill.log", {"exception": 1, "multiprocess": 2}),
    ("v30_long_j2_timeout.log", {"timeout": 2}),
    ("v30_jsonlog_j1_fail.log.json", {"exception": 1, "single-process": 1}),
    ("bias-v30-longlog.log", {}),
])
def test_failed_quantum_lines_in_real_logs(name, kinds):
    found: dict[str, int] = {}
    for line in real_lines(name):
        fq = failed_quantum(line)
        if fq:
            found[fq.kind] = found.get(fq.kind, 0) + 1
            assert fq.task == "isr" and fq.data_id.startswith("{") and "visit" in fq.data_id
    assert found == kinds


def test_blocked_quanta_are_not_failures():
    for line in real_lines("v30_long_j2_fail_kill.log") + real_lines("v30_long_j1_fail.log"):
        if "Upstream job failed" in line:
            assert not is_failed_quantum(line)
            assert is_attention(line)  # but it is an ERROR record: `n` stops there


def test_attention_regex_agrees_with_the_line_test():
    for name in ("v30_long_j2_fail_kill.log", "bias-fail-j2-default.log", "v30_jsonlog_j1_fail.log.json",
                 "v30_long_j1_failfast.log", "dark-v30-longlog.log", "v30_long_j2_timeout.log",
                 "v30_default_j2_fail.log", "v29_seed_excerpt.log"):
        data = (DATA / name).read_bytes()
        starts = {data.rfind(b"\n", 0, m.start()) + 1 for m in ATTENTION_RE.finditer(data)}
        by_line, pos = set(), 0
        for line in data.decode().split("\n"):
            if is_attention(line):
                by_line.add(pos)
            pos += len(line.encode()) + 1
        assert starts == by_line, name


def test_parse_record_json_and_text():
    js = real_lines("v30_jsonlog_j1_fail.log.json")
    failed = next(x for x in js if "failed. Exception" in x)
    kind, fields = parse_record(failed)
    assert kind == "json"
    assert fields["levelname"] == "ERROR" and fields["name"] == "lsst.pipe.base.single_quantum_executor"
    assert "\n(second line of message)" in fields["message"]
    assert isinstance(fields["MDC"], dict) and fields["MDC"]["LABEL"].startswith("isr:")
    kind, fields = parse_record(real_lines("v30_long_j1_fail.log")[0])
    assert kind == "long" and fields["levelname"] == "INFO" and isinstance(fields["lineno"], int)
    kind, fields = parse_record(real_lines("bias-fail-j2-default.log")[0])
    assert kind == "default" and fields["name"] == "lsst.pipe.base.quantum_graph_builder"
    assert parse_record("Traceback (most recent call last):") is None
    assert parse_record('{"not": "a record"}') is None
    assert parse_record('{"message": "trunc') is None


def test_compact_line_shortens_long_log_heads_only():
    head = ("INFO 2026-11-25T12:00:00.123+00:00 lsst.isr (isr:{instrument: 'PFS', visit: (1)})(module.py:123)"
            " - Processing visit 1")
    assert compact_line(head) == "12:00:00 I isr{visit=1}: Processing visit 1"
    assert compact_line(head.replace("INFO", "ERROR", 1)).startswith("12:00:00 E isr{visit=1}: ")
    assert compact_line("WARNING 2026-11-25T12:00:01.5+00:00 lsst.a.b ()(x.py:1) - m - n") == "12:00:01 W b: m - n"
    for other in ("lsst.isr INFO: Processing visit 1",  # default format
                  '{"levelname": "INFO", "message": "x"}',  # --log-file X.json
                  "Traceback (most recent call last):", "INFO something that is not a head", ""):
        assert compact_line(other) == other


def test_levels_are_the_ones_pipetask_accepts_and_logging_numbers():
    from lsst.daf.butler.cli.opt.options import logLevelChoices
    from lsst.utils.logging import TRACE, VERBOSE

    assert LEVELS == tuple(logLevelChoices)
    numbers = {**logging.getLevelNamesMapping(), "VERBOSE": VERBOSE, "TRACE": TRACE}
    assert LEVEL_RANK == {name: numbers[name] for name in LEVEL_RANK}
    assert {"FATAL", "WARN"} <= set(LEVEL_RANK)


@pytest.mark.parametrize("word, level", [("FATAL", "CRITICAL"), ("WARN", "WARNING"), ("Level 25", "Level 25")])
def test_every_level_word_is_known_to_every_reader(word, level):
    """One list of level words: the parser, the colours, the jumps, the compact form and the record view."""
    long = f"{word} 2026-11-25T12:00:00.123+00:00 lsst.isr (isr:{{visit: 1}})(isr.py:12) - a message"
    default = f"lsst.isr {word}: a message"
    js = f'{{"name": "lsst.isr", "levelname": "{word}", "message": "a message"}}'
    for line in (long, default, js):
        assert detect_level(line) == level, line
        head = parse_head(line)
        assert head is not None and head.level == word and head.message == "a message", line
        assert parse_record(line)[1]["levelname"] == word
    assert compact_line(long) == f"12:00:00 {word[0]} isr{{visit=1}}: a message"
    error_like = level in ("CRITICAL", "ERROR")
    for line in (long, default, js):
        assert is_attention(line) == error_like == bool(ATTENTION_RE.search(line.encode())), line
