"""Data IDs as pipetask prints them, read back into values, and the key that names one quantum.

Why this exists: every quantum a log talks about is named by its task label and its printed
``DataCoordinate`` (``{instrument: 'PFS', arm: 'r', ...}``).  The same quantum is reported up to three
times (task exception, executor failure, final ``Failed jobs:`` list), so the events, the progress and
the failures all need the same parse and the same key to meet.
"""

from __future__ import annotations

import ast
import re
from typing import Any

__all__ = ["DataIdValue", "QuantumKey", "data_id_key", "parse_data_id", "safe_data_id", "task_label"]

DataIdValue = int | float | str | bool | None


def parse_data_id(text: str) -> dict[str, DataIdValue]:
    """Parse a printed DataCoordinate such as ``{instrument: 'PFS', arm: 'r', spectrograph: 1}``.

    The middleware prints data IDs as ``{key: repr(value), ...}`` (daf_butler ``_coordinate.py``), which
    is not JSON nor a Python literal (keys are bare).  Values are read as Python literals (ints, floats,
    quoted strings with escapes); anything unreadable is kept as its raw text rather than failing, since a
    log line must never break the parser.  ``{}`` gives an empty dict.
    """
    s = text.strip()
    if not (s.startswith("{") and s.endswith("}")):
        raise ValueError(f"not a data ID (expected '{{key: value, ...}}'): {text!r}")
    out: dict[str, DataIdValue] = {}
    i, n = 1, len(s) - 1
    while i < n:
        while i < n and s[i] in " ,":
            i += 1
        if i >= n:
            break
        colon = s.find(":", i)
        if colon < 0:
            raise ValueError(f"not a data ID (a key has no ':'): {text!r}")
        key = s[i:colon].strip()
        i = colon + 1
        while i < n and s[i] == " ":
            i += 1
        if i < n and s[i] in "'\"":
            quote = s[i]
            j = i + 1
            while j < n and s[j] != quote:
                j += 2 if s[j] == "\\" else 1
            raw = s[i : j + 1]
            i = j + 1
        else:
            j = i
            while j < n and s[j] != ",":
                j += 1
            raw = s[i:j].strip()
            i = j
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = raw
        if not isinstance(value, int | float | str | bool | type(None)):
            value = raw
        out[key] = value
    return out


def data_id_key(task: str, data_id: dict[str, Any]) -> str:
    """A stable string identifying one quantum (task label + data ID), used to de-duplicate reports.

    The same failure is reported up to three times (task exception, executor failure, final
    ``Failed jobs:`` list); all print the same ``quantum.dataId`` so the keys agree.
    """
    return task + "@" + ",".join(f"{k}={data_id[k]!r}" for k in sorted(data_id))


def safe_data_id(text: str) -> dict[str, DataIdValue]:
    """:func:`parse_data_id`, or ``{"_raw": text}`` when it is not one: a log line never breaks a reader."""
    try:
        return parse_data_id(text)
    except ValueError:
        return {"_raw": text}


def task_label(text: str) -> str:
    """Task label from ``<label dataId=...>``; very old stacks printed a TaskDef repr there."""
    text = text.strip()
    if text.startswith("TaskDef("):
        m = re.search(r"label=([^,)\s]+)", text)
        if m:
            return m.group(1)
    return text


class QuantumKey:
    """Mixin for a record naming one quantum by ``task`` and ``data_id``: gives its :func:`data_id_key`."""

    task: str
    data_id: dict[str, DataIdValue]

    @property
    def key(self) -> str:
        return data_id_key(self.task, self.data_id)
