"""Queue pane: the plan's stages with status, per-task quanta progress, elapsed time and attempt.

It renders the supervisor's snapshots (`QueueUpdated`, a :class:`pfstui.queue.requests.Snapshot`) and asks
for changes with `QueueRequest` messages; everything that kills or changes something shows the exact
command or effect first.  The command a queued stage runs next is the one the snapshot carries: the
supervisor decided it, so the pane never builds a command from the plan file itself.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, DataTable, Static, TextArea

from pfstui.queue.model import ACTIVE, RESTARTABLE, StageStatus
from pfstui.ui.link import contract
from pfstui.ui.messages import OpenLog, QueueRequest
from pfstui.ui.screens.confirm import ConfirmScreen, TextScreen

if TYPE_CHECKING:
    from pfstui.queue.requests import NextRun, Request, Snapshot
    from pfstui.queue.state import Attempt, Stage

S = StageStatus
STATUS_STYLE = {
    S.QUEUED: "dim", S.RUNNING: "bold cyan", S.PAUSED: "yellow", S.DONE: "green", S.FAILED: "bold red",
    S.KILLED: "red", S.DEPENDENCY_FAILED: "magenta", S.SKIPPED: "dim italic", S.LOST: "bold magenta",
}
#: The table's columns; on a narrow pane the Stage column gives room first, then Quanta (column, down to).
COLUMNS = {"stage": "Stage", "status": "Status", "quanta": "Quanta", "time": "Time", "attempt": "Try"}
SHRINK = (("stage", 12), ("quanta", 8))
EDITABLE = ("query", "config", "config_files", "processes", "extra_options", "begin", "end", "data_ids", "where")


def bar(done: int, failed: int, blocked: int, total: int | None, width: int = 8) -> Text:
    """A progress bar: done green, failed red, blocked magenta, remaining dim; then the counts."""
    text = Text()
    if not total:
        text.append("·" * width, "dim")
        return text
    cells = [("green", done), ("red", failed), ("magenta", blocked)]
    used = 0
    for style, n in cells:
        k = min(width - used, round(width * n / total)) if n else 0
        if n and k == 0 and used < width:
            k = 1
        text.append("█" * k, style)
        used += k
    text.append("░" * (width - used), "dim")
    text.append(f" {done}/{total}")
    if failed:
        text.append(f" ✗{failed}", "red")
    if blocked:
        text.append(f" ⊘{blocked}", "magenta")
    return text


def elapsed(stage: Stage, now: datetime | None = None) -> str:
    a = stage.last_attempt
    if a is None or not a.started_at:
        return ""
    try:
        start = datetime.fromisoformat(a.started_at)
        end = datetime.fromisoformat(a.ended_at) if a.ended_at else (now or datetime.now(UTC))
    except ValueError:
        return ""
    secs = max(0, int((end - start).total_seconds()))
    return f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}" if secs >= 3600 else f"{secs // 60}:{secs % 60:02d}"


def next_run_text(run: NextRun | None) -> str:
    """The command the next attempt runs, shell-quoted as ``plan show`` shows it (a new bps submission: with
    the submit file it will write)."""
    if run is None:
        return "(no plan loaded)"
    if run.error is not None:
        return f"(cannot build it: {run.error})"
    from pfstui.plan.argv import (
        shell_format,  # the plan's models (pydantic) stay off the first frame
    )

    text = shell_format(run.argv, head=run.head)
    if run.submit_text is not None:
        text += f"\n\n{run.submit_file}:\n{run.submit_text}"
    return text


class RestartEditor(ModalScreen[dict | None]):
    """Edit a stage's options (YAML) before restarting it."""

    DEFAULT_CSS = """
    RestartEditor { align: center middle; }
    RestartEditor > Vertical { width: 95%; height: 90%; border: thick $warning; background: $surface; padding: 0 1; }
    RestartEditor TextArea { height: 1fr; }
    RestartEditor #restart-error { color: $error; height: auto; }
    RestartEditor #restart-buttons { height: 3; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="restart.cancel"),
                Binding("ctrl+s", "save", "Restart", id="restart.save")]

    def __init__(self, stage_id: str, options: dict[str, Any]) -> None:
        super().__init__()
        self.stage_id = stage_id
        self.options = options

    def compose(self) -> ComposeResult:
        text = yaml.safe_dump(self.options, sort_keys=False, default_flow_style=False) if self.options else "{}\n"
        with Vertical():
            yield Static(Text.assemble((f"Restart {self.stage_id}", "bold"),
                                       " with these options (YAML; ctrl+s restarts, escape cancels)"))
            yield TextArea(text, id="restart-text")
            yield Static("", id="restart-error")
            with Vertical(id="restart-buttons"):
                yield Button("Restart (ctrl+s)", id="restart-ok", variant="warning")

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_save()

    def action_save(self) -> None:
        raw = self.query_one(TextArea).text
        try:
            data = yaml.safe_load(raw) or {}
        except yaml.YAMLError as exc:
            self.query_one("#restart-error", Static).update(Text(f"Not valid YAML: {exc}".splitlines()[0]))
            return
        if not isinstance(data, dict):
            self.query_one("#restart-error", Static).update("Write the options as 'field: value' lines.")
            return
        changed = {k: v for k, v in data.items() if self.options.get(k) != v}
        self.dismiss(changed)


def _bps_lines(attempt: Attempt) -> list[str]:
    """What a bps attempt adds to a stage's details: where it runs, its jobs, and the exact submit file."""
    bps = attempt.bps
    if bps is None:
        return []
    state = attempt.quanta.bps
    jobs = ", ".join(f"{n} {word}" for word, n in sorted((state.jobs if state else {}).items())) or "none yet"
    lines = [f"  bps {bps.mode} in {bps.workdir}",
             f"  phase {(state.phase if state else None) or '-'}; jobs: {jobs}",
             f"  job logs {Path(bps.submit_dir or '.') / 'logs'}  (j lists them)"]
    if bps.submit_file:
        try:
            text = Path(bps.submit_file).read_text(encoding="utf-8")
        except OSError as exc:
            text = f"(cannot read it: {exc.strerror})"
        lines += [f"  submit file {bps.submit_file}:", *("    " + line for line in text.splitlines())]
    return lines


class QueuePane(Widget):
    """The queue: one row per stage."""

    BINDINGS = [
        Binding("r", "run", "Run queue", id="queue.run"),
        Binding("p", "pause", "Pause", id="queue.pause"),
        Binding("u", "resume", "Resume", id="queue.resume"),
        Binding("k", "kill", "Kill", id="queue.kill"),
        Binding("R", "restart", "Restart", id="queue.restart"),
        Binding("s", "skip", "Skip", id="queue.skip"),
        Binding("l", "open_log", "Log", id="queue.log"),
        Binding("x", "failures", "Failures", id="queue.failures"),
        Binding("j", "job_logs", "Job logs", id="queue.jobs", show=False),
        Binding("a", "add_stage", "Add stage", id="queue.add"),
        Binding("enter", "details", "Details", id="queue.details", show=False),
    ]

    def __init__(self, *, read_only: bool = False, plan_stage_options=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.read_only = read_only
        self.snapshot: Snapshot | None = None
        self._side_path: str | None = None
        self._widths: dict[str, int] = {}
        self.plan_stage_options = plan_stage_options or (lambda name: {})

    def compose(self) -> ComposeResult:
        with Vertical(id="queue-main"):
            yield Static("Connecting to the supervisor…", id="queue-status", classes="status-line")
            yield DataTable(id="queue-table", cursor_type="row", zebra_stripes=False)
        # Beside the queue on a wide terminal: the log of the highlighted stage (hidden at 80 columns).
        with Vertical(id="queue-side"):
            yield Static("Highlight a stage to follow its log here.", id="queue-side-title", classes="status-line")

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._side_log()

    def _side_log(self) -> None:
        """Show the highlighted stage's newest log beside the queue (wide terminals only)."""
        if not self.screen.has_class("-wide"):
            return
        st = self.selected()
        attempt = st.last_attempt if st else None
        path = attempt.log_path if attempt else None
        if path == self._side_path:
            return
        self._side_path = path
        side = self.query_one("#queue-side")
        for old in side.query("LogView"):
            old.remove()
        title = self.query_one("#queue-side-title", Static)
        if not path:
            title.update(Text(f"{st.id}: no log yet" if st else "Highlight a stage to follow its log here."))
            return
        from pfstui.ui.widgets.log_view import LogView

        title.update(Text(f"{st.id} · attempt {attempt.number} · {path}"))
        side.mount(LogView(path, st.id))

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        self._fit_columns(table, [])
        table.focus()
        self.set_interval(1.0, self._refresh_times)

    def focus_main(self) -> None:
        if table := self._table():
            table.focus()

    def _table(self) -> DataTable | None:
        """The stage table, or None once the pane has been emptied (the app closing): snapshots and timers
        that arrive then are dropped instead of raising out of the app."""
        tables = self.query(DataTable)
        return tables.first() if tables else None

    # --- rendering -------------------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        return self.snapshot.stages if self.snapshot else []

    def update_snapshot(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        table = self._table()
        if table is None:
            return
        keep = table.cursor_row
        stages = self.stages()
        existing = {str(k.value) for k in table.rows}
        ids = [s.id for s in stages]
        rows = [self._cells(st) for st in stages]
        if self._fit_columns(table, rows) or existing != set(ids) or len(existing) != len(ids):
            table.clear()
            for st, cells in zip(stages, rows):
                table.add_row(*self._fitted(cells), key=st.id)
        else:
            for st, cells in zip(stages, rows):
                for col, value in zip(COLUMNS, self._fitted(cells)):
                    table.update_cell(st.id, col, value)
        if stages and keep is not None:
            table.move_cursor(row=min(keep, len(stages) - 1))
        self._side_log()
        counts: dict[str, int] = {}
        for st in stages:
            counts[st.status] = counts.get(st.status, 0) + 1
        summary = " · ".join(f"{n} {word}" for word, n in counts.items())
        paused = "[yellow]queue PAUSED — r runs it[/]" if snapshot.state.queue_paused else "queue running"
        problems = " ".join(f"[red]{escape(p)}[/]" for p in (snapshot.plan_error, snapshot.state_problem) if p)
        self.query_one("#queue-status", Static).update(f"{paused} · {summary} {problems}".strip())

    def _fit_columns(self, table: DataTable, rows: list[tuple]) -> bool:
        """Columns as wide as their longest cell (every stage name in full) unless the pane is truly too
        narrow; True when the widths changed (the columns were made again, the rows must be)."""
        from pfstui.ui.render.fit import fit_widths, natural_widths

        plain = [tuple(c.plain if isinstance(c, Text) else str(c) for c in row) for row in rows]
        natural = natural_widths(COLUMNS, plain)
        natural["time"] = max(natural["time"], 7)  # "1:00:00" without a jump of the columns an hour in
        # The vertical scrollbar's cells are always kept: widths must not change when it comes and goes.
        room = table.size.width - table.styles.scrollbar_size_vertical if table.size.width else 76
        widths = fit_widths(natural, room, steps=SHRINK, gap=2 * table.cell_padding)
        if widths == self._widths:
            return False
        self._widths = widths
        table.clear(columns=True)
        for key, label in COLUMNS.items():
            table.add_column(label, key=key, width=widths[key])
        return True

    def _fitted(self, cells: tuple) -> tuple:
        """A row's cells with the stage name cut (with an ellipsis) to its column, when it must be."""
        from pfstui.ui.render.fit import cut

        return (cut(cells[0], self._widths["stage"]), *cells[1:])

    def on_resize(self) -> None:
        if self.snapshot is not None:
            self.call_after_refresh(self.update_snapshot, self.snapshot)

    def _cells(self, st: Stage) -> tuple:
        p = st.progress
        if p.tasks:
            done, failed, blocked, total = p.totals()
            quanta = bar(done, failed, blocked, total)
        else:
            quanta = Text("")
        a = st.last_attempt
        word = str(st.status)
        if st.status == StageStatus.RUNNING and a is not None and a.bps is not None:
            step = a.quanta.bps.step if a.quanta.bps else None
            word = f"running ({step or 'graph'})"
        return (st.id, Text(word, STATUS_STYLE.get(st.status, "")), quanta, elapsed(st),
                str(a.number) if a else "")

    def _refresh_times(self) -> None:
        table = self._table()
        if table is None:
            return
        for st in self.stages():
            if st.status in ACTIVE:
                try:
                    table.update_cell(st.id, "time", elapsed(st))
                except Exception:  # noqa: BLE001 - the row may have just been rebuilt
                    pass

    # --- selection -------------------------------------------------------------------------------------
    def selected(self) -> Stage | None:
        table = self._table()
        stages = self.stages()
        if table is None or not stages or table.cursor_row is None or table.cursor_row >= len(stages):
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return next((s for s in stages if s.id == key), None)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_details()

    # --- actions ---------------------------------------------------------------------------------------
    def _refuse_read_only(self, what: str) -> bool:
        """Under --read-only, say in one line which key was refused (the supervisor would refuse it too)."""
        if self.read_only:
            self.app.notify(f"Read-only mode: {what} refused; restart pfstui without --read-only to change "
                            "the queue or the plan.", severity="warning", markup=False)
        return self.read_only

    def _send(self, request: Request[Any], label: str) -> None:
        self.post_message(QueueRequest(request, label))

    def action_run(self) -> None:
        if not self._refuse_read_only("run the queue"):
            self._send(contract().Run(), "Queue running")

    def action_pause(self) -> None:
        if self._refuse_read_only("pause"):
            return
        st = self.selected()
        if st and st.status == StageStatus.RUNNING:
            a = st.attempts[-1]
            self.app.push_screen(
                ConfirmScreen(f"Pause {st.id}?", f"SIGSTOP to process group {a.pgid}:\n\n" + shlex.join(a.argv),
                              ok_label="Pause", danger=False),
                lambda ok: ok and self._send(contract().PauseStage(stage=st.id), f"Paused {st.id}"),
            )
        else:
            self._send(contract().PauseQueue(), "Queue paused (running stages go on)")

    def action_resume(self) -> None:
        if self._refuse_read_only("resume"):
            return
        st = self.selected()
        if st and st.status == StageStatus.PAUSED:
            self._send(contract().ResumeStage(stage=st.id), f"Resumed {st.id}")
        else:
            self._send(contract().ResumeQueue(), "Queue running")

    def action_kill(self) -> None:
        if self._refuse_read_only("kill"):
            return
        st = self.selected()
        if not st or st.status not in ACTIVE:
            self.app.notify("Select a running stage to kill.", severity="warning")
            return
        a = st.attempts[-1]
        body = (f"SIGTERM to process group {a.pgid} (every process of the stage), then SIGKILL after 10 s "
                f"if any is left. The log is kept.\n\n{shlex.join(a.argv)}")
        self.app.push_screen(ConfirmScreen(f"Kill {st.id}?", body, ok_label="Kill"),
                             lambda ok: ok and self._send(contract().KillStage(stage=st.id), f"Killing {st.id}"))

    def action_restart(self) -> None:
        if self._refuse_read_only("restart"):
            return
        st = self.selected()
        if not st or st.status not in RESTARTABLE:
            self.app.notify("Only a failed, killed, lost or dependency-failed stage can be restarted.", severity="warning")
            return
        options = {k: v for k, v in self.plan_stage_options(st.id).items() if k in EDITABLE}
        options.update(st.extra.overrides)

        def edited(changes: dict | None) -> None:
            if changes is None:
                return
            body = "Restart as a new attempt (the old attempt's log is kept)"
            body += (":\n\n" + yaml.safe_dump(changes, sort_keys=False)) if changes else " with the same options."
            self.app.push_screen(
                ConfirmScreen(f"Restart {st.id}?", body, ok_label="Restart", danger=False),
                lambda ok: ok and self._send(contract().RestartStage(stage=st.id, overrides=changes or None),
                                             f"Restarting {st.id}"),
            )

        self.app.push_screen(RestartEditor(st.id, options), edited)

    def action_skip(self) -> None:
        if self._refuse_read_only("skip"):
            return
        st = self.selected()
        if not st:
            return
        self.app.push_screen(
            ConfirmScreen(f"Skip {st.id}?", "Mark it skipped: stages that depend on it may then run.",
                          ok_label="Skip", danger=False),
            lambda ok: ok and self._send(contract().SkipStage(stage=st.id), f"Skipped {st.id}"),
        )

    def plan_path(self) -> str | None:
        """The plan file this queue runs: the one pfstui was started with, else the supervisor's."""
        return getattr(self.app, "plan", None) or (self.snapshot.state.plan if self.snapshot else None)

    def action_add_stage(self) -> None:
        """Append a stage from the plan's template to the plan file, then have the supervisor reload it."""
        if self._refuse_read_only("add stage"):
            return
        path = self.plan_path()
        if not path:
            self.app.notify("No plan is loaded: start pfstui with --plan PLAN to add stages to it.", severity="warning")
            return
        from pfstui.plan.edit import read_plan_file, stage_templates
        from pfstui.plan.issues import PlanError
        from pfstui.plan.variables import stage_env
        from pfstui.ui.screens.add_stage import AddStageScreen

        env = stage_env()
        getattr(self.app, "prepare_templates", lambda: None)()
        try:
            plan_file = read_plan_file(path, env=env)
            stages = stage_templates(plan_file.plan, text=plan_file.text, env=env)
        except PlanError as exc:
            self.app.notify(f"{exc}", title="Cannot add a stage: fix the plan first", severity="error", timeout=10,
                            markup=False)
            return
        paused = self.snapshot.state.queue_paused if self.snapshot else None

        def added(result) -> None:
            if result is None:
                return
            self._send(contract().LoadPlan(path=str(result.path), repo=getattr(self.app, "repo", None)),
                       f"Added stage {result.stage} to {Path(result.path).name} (queued)")

        self.app.push_screen(AddStageScreen(plan_file, stages, env=env, queue_paused=paused), added)

    def action_details(self) -> None:
        st = self.selected()
        if not st:
            return
        lines = [f"status: {st.status}", f"depends on: {', '.join(st.depends_on) or '-'}"]
        if st.status == StageStatus.QUEUED or st.status in RESTARTABLE:
            run = self.snapshot.next_runs.get(st.id) if self.snapshot else None
            lines += ["", "next run:", *("  " + line for line in next_run_text(run).splitlines())]
        for a in st.attempts:
            lines += ["", f"attempt {a.number}: {a.status}  exit {a.exit_code}  {a.signal or ''}",
                      f"  started {a.started_at}  ended {a.ended_at or '-'}",
                      f"  log {a.log_path}", "", "  " + shlex.join(a.argv)]
            if a.detail:
                lines.append(f"  {a.detail}")
            lines += _bps_lines(a)
        for label, t in st.progress.tasks.items():
            lines.append(f"  {label:<24} total {t.total}  done {t.done}  failed {t.failed}  blocked {t.blocked}")
        self.app.push_screen(TextScreen(f"Stage {st.id}", "\n".join(lines)))

    def action_open_log(self) -> None:
        st = self.selected()
        if st and st.last_attempt and st.last_attempt.log_path:
            self.post_message(OpenLog(st.id, st.last_attempt.log_path))
        else:
            self.app.notify("This stage has no log yet.", severity="warning")

    def action_failures(self) -> None:
        st = self.selected()
        failures = st.progress.failures if st else None
        if not failures:
            self.app.notify("No failed quanta recorded for this stage.")
            return
        first = failures[0]
        lines = []
        for f in failures:
            did = ", ".join(f"{k}={v}" for k, v in f.data_id.items())
            where = f"{f.log_path} " if f.log_path else ""  # a bps job's own log
            lines.append(f"{f.task} {{{did}}}\n    {f.exception_class or 'error'}: {f.message}\n"
                         f"    log {where}byte {f.offset}")
        self.app.push_screen(TextScreen(f"Failed quanta of {st.id}", "\n".join(lines)))
        if first.log_path:
            self.post_message(OpenLog(f"{st.id}:{first.task}", first.log_path, first.offset))
        elif first.offset is not None:
            self.post_message(OpenLog(st.id, st.last_attempt.log_path, first.offset))

    def action_job_logs(self) -> None:
        """Pick one of a bps stage's job logs and open it in the Logs pane."""
        st = self.selected()
        bps = st.last_attempt.bps if st and st.last_attempt else None
        if not bps:
            self.app.notify("Only bps stages have job logs; `l` opens this stage's log.", severity="warning")
            return
        from pfstui.ui.screens.job_logs import JobLogsScreen

        failed = {f.log_path for f in st.progress.failures if f.log_path}

        def chosen(path: str | None) -> None:
            if path:
                self.post_message(OpenLog(f"{st.id}:{Path(path).parent.name}", path))

        self.app.push_screen(JobLogsScreen(st.id, str(Path(bps.submit_dir) / "logs"), failed), chosen)
