"""The logs open in the Logs pane, remembered per queue so that a reopened pfstui shows them again.

Why: an operator who closes pfstui (or loses the SSH link) while following four stages came back to an empty
Logs pane and had to find each log again.  The list lives in the queue's session folder (private to its user,
like everything there), written atomically; a missing, unreadable or foreign file is simply no list.  The
app reads and writes it from worker threads, never the UI thread.
"""

from __future__ import annotations

import json
from pathlib import Path

from pfstui.infra.atomic import atomic_write_json

__all__ = ["FILE", "read_open_logs", "write_open_logs"]

#: The file in the session folder.
FILE = "open-logs.json"
#: More than anyone follows; a longer list is cut (the newest tabs are the last).
MAX_LOGS = 32


def read_open_logs(session_dir: Path) -> list[tuple[str, str]]:
    """The ``(title, path)`` of each log that was open, in tab order, leaving out files that are gone."""
    try:
        data = json.loads((session_dir / FILE).read_text(encoding="utf-8"))
        entries = data["logs"] if data.get("version") == 1 else []
        logs = [(str(e["title"]), str(e["path"])) for e in entries]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return []
    return [(title, path) for title, path in logs[-MAX_LOGS:] if Path(path).is_file()]


def write_open_logs(session_dir: Path, logs: list[tuple[str, str]]) -> None:
    """Remember ``logs`` (``(title, path)`` in tab order) for this session, atomically."""
    entries = [{"title": title, "path": path} for title, path in logs[-MAX_LOGS:]]
    atomic_write_json(session_dir / FILE, {"version": 1, "logs": entries}, make_parents=False)
