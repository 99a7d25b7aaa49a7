"""What a pipetask log looks like: the one place that knows its layouts.

Why one module: the parser, the log view's colours and jumps, its compact rendering and its record view
all have to recognise the same record heads.  When each kept its own copy of the level words, the copies
drifted (one knew ``Level 25``, the others did not).  Everything that depends on how the LSST middleware
(daf_butler ``cli/cliLog.py``, ``ButlerLogRecord``) writes a record is here; the other modules ask.

The layouts, in the order a line is tried (a cheap test of its first character picks the candidates, so
a line costs one or two regex matches whatever the log):

* ``--log-file X.json``: one JSON ``ButlerLogRecord`` per line, ``{"name": ..., "levelname": ...}``;
* ``--long-log``: ``{levelname} {asctime} {name} ({MDC[LABEL]})({filename}:{lineno}) - {message}``;
* default: ``{name} {levelname}: {message}``.

A record can span several lines (tracebacks, tables, multi-line messages); a line that is no head
continues the record before it.  The level words are one list (:data:`LEVELS` plus the aliases Python
logging also prints, ``FATAL`` and ``WARN``, and ``Level N`` for a level without a name); every pattern
below is built from it.  Besides the heads: which lines report a failed quantum (wording of pipe_base
30.0.11 ``single_quantum_executor`` / ``mp_graph_executor`` and of v29), which lines deserve attention
(the ``]`` jumps), the structured fields of a head (the record view) and the compact form of a
``--long-log`` head (the screen).

Pure functions and compiled patterns only: no file access, no UI.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pfstui.pipetask_log.data_id import DataIdValue, safe_data_id

__all__ = [
    "ATTENTION_RE",
    "ERROR_LEVELS",
    "LEVELS",
    "LEVEL_ALIASES",
    "LEVEL_RANK",
    "FailedQuantum",
    "LogRecordHead",
    "compact_line",
    "detect_level",
    "failed_quantum",
    "is_attention",
    "is_failed_quantum",
    "normal_level",
    "parse_head",
    "parse_json_record",
    "parse_record",
    "split_mdc_label",
]

# --------------------------------------------------------------------------------------------------
# Levels
# --------------------------------------------------------------------------------------------------

#: The level names pipetask accepts (``--log-level``) and prints, most severe first.
LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "VERBOSE", "DEBUG", "TRACE")
#: Other names Python logging prints for two of them (``logging.FATAL``, ``logging.WARN``).
LEVEL_ALIASES = {"FATAL": "CRITICAL", "WARN": "WARNING"}
#: Levels whose records the ``]``/``[`` jumps stop at.
ERROR_LEVELS = ("CRITICAL", "ERROR")
_NUMBERS = {"CRITICAL": 50, "ERROR": 40, "WARNING": 30, "INFO": 20, "VERBOSE": 15, "DEBUG": 10, "TRACE": 5}
#: Numeric value of every level word (LSST adds VERBOSE and TRACE to Python's levels).
LEVEL_RANK = {**_NUMBERS, **{alias: _NUMBERS[name] for alias, name in LEVEL_ALIASES.items()}}
#: How Python logging names a level that has no name.
_UNNAMED = r"Level \d+"


def _words(levels: tuple[str, ...]) -> str:
    """A regex alternation of ``levels`` and their aliases (longest first: WARNING before WARN)."""
    names = [*levels, *(alias for alias, name in LEVEL_ALIASES.items() if name in levels)]
    return "|".join(sorted(names, key=len, reverse=True))


#: Every level word a record head can carry, as a regex group.
_LEVEL_WORDS = rf"(?:{_words(LEVELS)}|{_UNNAMED})"
_ERROR_WORDS = rf"(?:{_words(ERROR_LEVELS)})"
#: First characters of a level word: only such a line can be a ``--long-log`` head.
_LEVEL_FIRST = frozenset(word[0] for word in (*LEVELS, *LEVEL_ALIASES, _UNNAMED))
_LOGGER = r"[A-Za-z_][\w.\-]*"


def normal_level(level: str) -> str:
    """The name a level word stands for: ``FATAL`` is ``CRITICAL``, ``WARN`` is ``WARNING``."""
    return LEVEL_ALIASES.get(level, level)


def _level_number(level: str) -> int:
    if level.startswith("Level "):
        try:
            return int(level[6:])
        except ValueError:
            return 0
    return LEVEL_RANK.get(level, 0)


# The start of a head in each layout, up to its level: enough to know a line's level (str patterns) and,
# restricted to the error words, to find error records in a whole buffer at C speed (ATTENTION_RE).
def _long_start(words: str) -> str:
    return rf"^({words}) \d{{4}}-\d\d-\d\d[T ]"


def _default_start(words: str) -> str:
    return rf"^{_LOGGER} ({words}): "


def _json_level(words: str) -> str:
    return rf'"levelname":\s*"({words})"'


_LONG_LEVEL = re.compile(_long_start(_LEVEL_WORDS))
_DEFAULT_LEVEL = re.compile(_default_start(_LEVEL_WORDS))
_JSON_LEVEL = re.compile(_json_level(_LEVEL_WORDS))

# A whole head, every field named as Python logging names it; the --long-log one also without its
# message (all the compact form needs: the message is not scanned).
_LONG_PREFIX = (rf"^(?P<levelname>{_LEVEL_WORDS}) (?P<asctime>\S+) (?P<name>\S+) \((?P<label>.*?)\)"
                r"\((?P<filename>[^()]*?):(?P<lineno>\d+)\) - ")
_LONG_RE = re.compile(_LONG_PREFIX + r"(?P<message>.*)$")
_LONG_HEAD = re.compile(_LONG_PREFIX)
_DEFAULT_RE = re.compile(rf"^(?P<name>{_LOGGER}) (?P<levelname>{_LEVEL_WORDS}): (?P<message>.*)$")


def detect_level(line: str) -> str | None:
    """Level of a record's first line, in any layout; None for continuation lines.

    ``FATAL``/``WARN`` come back as ``CRITICAL``/``WARNING``; an unnamed level as ``Level N``.  A
    ``--long-log`` head counts as one from its level and date on (the view colours it even when the rest
    is cut).
    """
    c = line[:1]
    if c == "{":
        m = _JSON_LEVEL.search(line)
        return normal_level(m.group(1)) if m else None
    if c in _LEVEL_FIRST:
        m = _LONG_LEVEL.match(line)
        if m:
            return normal_level(m.group(1))
    m = _DEFAULT_LEVEL.match(line)
    return normal_level(m.group(1)) if m else None


# --------------------------------------------------------------------------------------------------
# Record heads
# --------------------------------------------------------------------------------------------------


@dataclass
class LogRecordHead:
    """The first line of one log record, split into its fields (``message`` is that line's text)."""

    offset: int
    level: str
    logger: str
    message: str
    time: str | None = None
    mdc_label: str = ""
    filename: str | None = None
    lineno: int | None = None
    #: Extra lines already known (JSON records carry their whole message and traceback).
    extra: list[str] | None = None

    @property
    def levelno(self) -> int:
        return _level_number(self.level)


def parse_head(line: str, offset: int = 0) -> LogRecordHead | None:
    """The record head on ``line`` (one line, no newline), whatever its layout; None if it starts none."""
    c = line[:1]
    if c == "{":
        return parse_json_record(line, offset) if '"levelname"' in line else None
    if c in _LEVEL_FIRST:
        m = _LONG_RE.match(line)
        if m:
            return LogRecordHead(
                offset=offset,
                level=m["levelname"],
                logger=m["name"],
                message=m["message"],
                time=m["asctime"],
                mdc_label=m["label"],
                filename=m["filename"],
                lineno=int(m["lineno"]),
            )
    m = _DEFAULT_RE.match(line)
    if m:
        return LogRecordHead(offset=offset, level=m["levelname"], logger=m["name"], message=m["message"])
    return None


def _json_object(line: str) -> dict[str, Any] | None:
    """The JSON object on ``line``, or None (not JSON, half-written, or not an object)."""
    s = line.strip()
    if not s.startswith("{"):
        return None
    try:
        d = json.loads(s)
    except (ValueError, RecursionError):
        return None
    return d if isinstance(d, dict) else None


def parse_json_record(line: str, offset: int = 0) -> LogRecordHead | None:
    """Parse one line of a ``--log-file X.json`` log (a daf_butler ``ButlerLogRecord``).

    Returns None for anything that is not such a record (blank, truncated, or other JSON), so a
    half-written last line is simply not a record yet.  The message's extra lines and the ``exc_info``
    traceback become :attr:`LogRecordHead.extra`, exactly as the text formats would show them.
    """
    d = _json_object(line)
    if d is None or not isinstance(d.get("message"), str) or not isinstance(d.get("name"), str):
        return None
    level = d.get("levelname")
    if not isinstance(level, str):
        levelno = d.get("levelno")
        level = next((k for k, v in LEVEL_RANK.items() if v == levelno), f"Level {levelno}")
    mdc = d.get("MDC") if isinstance(d.get("MDC"), dict) else {}
    lines = d["message"].split("\n")
    extra = lines[1:]
    exc = d.get("exc_info")
    if isinstance(exc, str) and exc:
        extra.extend(exc.rstrip("\n").split("\n"))
    lineno = d.get("lineno")
    return LogRecordHead(
        offset=offset,
        level=level,
        logger=d["name"],
        message=lines[0],
        time=str(d["asctime"]) if d.get("asctime") is not None else None,
        mdc_label=str(mdc.get("LABEL", "")),
        filename=d.get("filename") if isinstance(d.get("filename"), str) else None,
        lineno=lineno if isinstance(lineno, int) else None,
        extra=extra,
    )


def split_mdc_label(label: str) -> tuple[str | None, dict[str, DataIdValue] | None]:
    """Task label and data ID of an MDC LABEL (``<taskLabel>:<dataId>`` inside a quantum)."""
    if not label:
        return None, None
    task, sep, rest = label.partition(":")
    if sep and rest.startswith("{"):
        return task, safe_data_id(rest)
    return label, None


def parse_record(line: str) -> tuple[str, dict[str, Any]] | None:
    """Structured fields of one record line: ``("json"|"long"|"default", fields)`` or None.

    JSON records (``--log-file X.json``, daf_butler ``ButlerLogRecord``) give every field as written
    (``name, asctime, message, levelno, levelname, filename, pathname, lineno, funcName, process,
    processName, exc_info, MDC``).  Text heads give what their format carries.
    """
    if line.strip().startswith("{"):
        d = _json_object(line)
        return ("json", d) if d is not None and ("message" in d or "levelname" in d) else None
    m = _LONG_RE.match(line)
    if m:
        d = m.groupdict()
        d["lineno"] = int(d["lineno"])
        d["MDC"] = {"LABEL": d.pop("label")} if d["label"] else {}
        return "long", d
    m = _DEFAULT_RE.match(line)
    if m:
        return "default", m.groupdict()
    return None


def compact_line(text: str) -> str:
    """A ``--long-log`` record head shortened for the screen: ``HH:MM:SS L task{data ID}: message``.

    Why: the long prefix (``INFO 2026-11-25T12:00:00.123+00:00 lsst.pipe.base.mp_graph_executor
    (isr:{instrument: 'PFS', ...})(mp_graph_executor.py:757) - ``) fills most of an 80-column terminal
    before the message starts.  The level stays as its letter (and the row's colour); inside a quantum the
    task label and its data ID (``isr{arm=b spectrograph=1 visit=11}``: which quantum the line is about,
    the instrument left out) take the place of the logger, which is otherwise shown as its last component;
    the date, the logger of a quantum's line and the source line are dropped here and shown in the record
    view.  Any other line (default format, JSON, continuation lines) is returned unchanged.
    """
    if text[:1] not in _LEVEL_FIRST:
        return text
    m = _LONG_HEAD.match(text)
    if m is None:
        return text
    level, when, name, label = m.group("levelname", "asctime", "name", "label")
    if len(when) >= 19 and when[10] in "T " and when[13] == ":":
        when = when[11:19]
    return f"{when} {level[0]} {_compact_source(name, label)}: {text[m.end():]}"


def _compact_source(name: str, label: str) -> str:
    """``task{k=v ...}`` for a quantum's MDC label, else the logger's last component."""
    task, data_id = split_mdc_label(label)
    if task and data_id is not None and "_raw" not in data_id:
        values = " ".join(f"{k}={v}" for k, v in data_id.items() if k != "instrument")
        return f"{task}{{{values}}}"
    return name.rpartition(".")[2]


# --------------------------------------------------------------------------------------------------
# Failed quanta and the lines that deserve attention
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedQuantum:
    """A failed quantum named on one log line: its task label and printed data ID."""

    task: str
    data_id: str
    kind: str  # "exception" | "multiprocess" | "single-process" | "timeout"


# Message texts from pipe_base 30.0.11 (single_quantum_executor, mp_graph_executor) and the v29 wording.
# Group 1 is the task label, group 2 the data ID; no part crosses a newline (ATTENTION_RE scans buffers).
_FAILED = (
    ("exception", r"Execution of task '([^'\n]+)' on quantum (\{.*?\}) failed"),
    ("multiprocess", r"Task <(\S+) dataId=(\{.*?\})> failed"),
    ("single-process", r"\(([^()\s@]+)@(\{.*?\})\) failed"),
    ("timeout", r"Timeout \(\S+ sec\) for task <(\S+) dataId=(\{.*?\})>"),
)
_FAILED_PATTERNS = [(kind, re.compile(pattern)) for kind, pattern in _FAILED]


def failed_quantum(line: str) -> FailedQuantum | None:
    """Recognise a "this quantum failed" line (task exception, multiprocess or single-process failure).

    Blocked downstream quanta ("Upstream job failed for task ...") are not failures of their own and
    are not matched.
    """
    if "failed" not in line and "Timeout" not in line:
        return None
    for kind, rx in _FAILED_PATTERNS:
        m = rx.search(line)
        if m:
            return FailedQuantum(task=m.group(1), data_id=m.group(2), kind=kind)
    return None


def is_failed_quantum(line: str) -> bool:
    return failed_quantum(line) is not None


#: Bytes regex for "error-level record or failed quantum" (the ``]``/``[`` jumps), line-anchored: the
#: same heads and failure texts as :func:`is_attention`, for scanning a file without splitting lines.
ATTENTION_RE = re.compile(
    "|".join([
        _long_start(_ERROR_WORDS),
        _default_start(_ERROR_WORDS),
        r"^\{[^\n]*" + _json_level(_ERROR_WORDS),
        *(pattern for _, pattern in _FAILED),
    ]).encode(),
    re.MULTILINE,
)


def is_attention(line: str) -> bool:
    """True for an ERROR/CRITICAL record head or a failed-quantum line (what ``]`` jumps to)."""
    return detect_level(line) in ERROR_LEVELS or is_failed_quantum(line)
