"""The Queue pane's words: each stage's row (status, quanta bar or why it waits, time, attempt) and the
header that sums the queue up.

Pure functions of the supervisor's snapshot, no widget: the pane puts them on screen and repaints only the
cells whose text changed (:func:`pfstui.ui.widgets.quiet.set_rows`).  The reasons a stage waits are the
supervisor's (:func:`pfstui.queue.rules.waits`), shown as they come.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.markup import escape

from pfstui.queue import rules
from pfstui.queue.model import WAITS, StageStatus, Wait

if TYPE_CHECKING:
    from pfstui.queue.requests import Snapshot
    from pfstui.queue.state import Stage

__all__ = ["COLUMNS", "bar", "elapsed", "header", "row_cells"]

S = StageStatus
STATUS_STYLE = {
    S.QUEUED: "dim", S.RUNNING: "bold cyan", S.PAUSED: "yellow", S.DONE: "green", S.FAILED: "bold red",
    S.KILLED: "red", S.DEPENDENCY_FAILED: "magenta", S.SKIPPED: "dim italic", S.LOST: "bold magenta",
    S.WAITING: "bold yellow",
}
#: (title, key, width): fixed widths that fit 80 columns; the longest status word is "dependency-failed".
COLUMNS = (("Stage", "stage", 21), ("Status", "status", 17), ("Quanta", "quanta", 20), ("Time", "time", 7),
           ("Try", "attempt", 3))


def bar(done: int, failed: int, blocked: int, total: int | None, width: int = 8) -> Text:
    """A progress bar of the quanta done (green; full only when every quantum is done), then the counts, the
    failed (✗, red) and blocked (⊘, magenta) ones as numbers.

    Why only the done part is drawn: a failed ``37/40 ✗1 ⊘2`` stage drew a full bar, which reads as finished."""
    text = Text()
    if not total:
        text.append("·" * width, "dim")
        return text
    cells = min(width, width * done // total)
    text.append("█" * cells, "green")
    text.append("░" * (width - cells), "dim")
    text.append(f" {done}/{total}")
    if failed:
        text.append(f" ✗{failed}", "red")
    if blocked:
        text.append(f" ⊘{blocked}", "magenta")
    return text


def elapsed(stage: Stage, now: datetime | None = None) -> str:
    """The last attempt's running time, its pauses left out: ``m:ss``, or ``h:mm:ss`` from an hour."""
    a = stage.last_attempt
    secs = a.run_seconds(now) if a is not None else None
    if secs is None:
        return ""
    return f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}" if secs >= 3600 else f"{secs // 60}:{secs % 60:02d}"


def row_cells(stage: Stage, waits: list[Wait], now: datetime | None = None) -> tuple[str, Text, Text, str, str]:
    """One row: a stage that has not started shows why it waits where the quanta bar would be, and no time."""
    a = stage.last_attempt
    word = str(stage.status)
    if stage.status == S.RUNNING and a is not None and a.bps is not None:
        step = a.quanta.bps.step if a.quanta.bps else None
        word = f"running ({step or 'graph'})"
    waiting = stage.status in WAITS
    if waiting:
        quanta = Text(waits[0].label, "italic") if waits else Text("")
    elif stage.progress.tasks:
        quanta = bar(*stage.progress.totals())
    else:
        quanta = Text("")
    time = "" if waiting else elapsed(stage, now)
    return stage.id, Text(word, STATUS_STYLE.get(stage.status, "")), quanta, time, str(a.number) if a else ""


#: What the header says for each of the queue's phases (:func:`pfstui.queue.rules.phase`).
PHASES = {"finished": "[green]queue finished[/]", "empty": "queue empty",
          "paused": "[yellow]queue PAUSED — r runs it[/]", "idle": "[yellow]queue idle: nothing more can run[/]",
          "running": "queue running", "waiting": "[bold yellow]queue waits for an approval[/]"}


def header(snapshot: Snapshot) -> str:
    """The Queue pane's status line (markup): the queue's phase, its parallel limit, stages per status, and
    what the supervisor has to say about the plan and the state file."""
    counts: dict[str, int] = {}
    for st in snapshot.stages:
        counts[st.status] = counts.get(st.status, 0) + 1
    parts = [PHASES[rules.phase(snapshot.state)], f"parallel {snapshot.state.parallel}",
             *(f"{n} {word}" for word, n in counts.items())]
    waiting = [st.id for st in snapshot.stages if st.status == StageStatus.WAITING]
    if waiting:  # what waits, and how to let it go on
        parts.append(f"[bold yellow]{escape(waiting[0])}{f' +{len(waiting) - 1}' if len(waiting) > 1 else ''} "
                     "waits for approval: y approves, n rejects[/]")
    problems = " ".join(f"[red]{escape(p)}[/]" for p in (snapshot.plan_error, snapshot.state_problem) if p)
    return f"{' · '.join(parts)} {problems}".strip()
