"""Queue pane: the plan's stages with status, per-task quanta progress, elapsed time and attempt.

It renders the supervisor's snapshots (`QueueUpdated`, a :class:`pfstui.queue.requests.Snapshot`) and asks
for changes with `QueueRequest` messages; everything that kills or changes something shows the exact
command or effect first.  The command a queued stage runs next is the one the snapshot carries: the
supervisor decided it, so the pane never builds a command from the plan file itself.
"""

from __future__ import annotations

import contextlib
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Static
from textual.widgets.data_table import CellDoesNotExist

from pfstui.queue.model import (
    ACTIVE,
    EDITABLE,
    MAX_PARALLEL,
    RESTARTABLE,
    WAITS,
    StageStatus,
)
from pfstui.ui.link import contract
from pfstui.ui.messages import OpenLog, QueueRequest
from pfstui.ui.panes.queue_filter import QueueFilter
from pfstui.ui.render.queue_rows import COLUMNS, elapsed, header, row_cells
from pfstui.ui.screens.confirm import ConfirmScreen, TextScreen
from pfstui.ui.screens.stage_options import RestartChoice, RestartEditor, StageEditor
from pfstui.ui.widgets.quiet import set_cell, set_rows
from pfstui.ui.widgets.tables import ListTable

if TYPE_CHECKING:
    from pfstui.queue.requests import NextRun, Request, Snapshot
    from pfstui.queue.state import Attempt, Stage

#: On a narrow pane the Stage column gives room first, then Quanta (column, down to).
SHRINK = (("stage", 12), ("quanta", 8))
EDITABLE_FIELDS = ("query", "config", "config_files", "processes", "extra_options", "begin", "end", "data_ids", "where")


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
    if run.env is not None:
        text = f"{run.env}\n{text}"
    if run.submit_text is not None:
        text += f"\n\n{run.submit_file}:\n{run.submit_text}"
    return text


def _bps_lines(attempt: Attempt) -> list[str]:
    """What a bps attempt adds to a stage's details: where it runs, its jobs, and the exact submit file."""
    bps = attempt.bps
    if bps is None:
        return []
    state = attempt.quanta.bps
    jobs = ", ".join(f"{n} {word}" for word, n in sorted((state.jobs if state else {}).items())) or "none yet"
    lines = [f"  bps {bps.mode} in {bps.workdir}",
             f"  phase {(state.phase if state else None) or '-'}; jobs: {jobs}",
             f"  job logs {Path(bps.submit_dir or '.') / 'logs'}  (L lists them)"]
    if bps.submit_file:
        try:
            text = Path(bps.submit_file).read_text(encoding="utf-8")
        except OSError as exc:
            text = f"(cannot read it: {exc.strerror})"
        lines += [f"  submit file {bps.submit_file}:", *("    " + line for line in text.splitlines())]
    return lines


class QueuePane(QueueFilter, Widget):
    """The queue: one row per stage."""

    BINDINGS = [
        Binding("r", "run", "Run queue", id="queue.run"),
        Binding("p", "pause", "Pause", id="queue.pause", tooltip="Pause the selected running stage, else the queue"),
        Binding("u", "resume", "Resume", id="queue.resume",
                tooltip="Resume the selected paused stage, else the queue"),
        # ctrl+k as in k9s: k moves up in every list and log
        Binding("ctrl+k", "kill", "Kill", id="queue.kill", tooltip="Kill the selected stage"),
        Binding("R", "restart", "Restart", id="queue.restart", tooltip="Restart the selected stage (edit options)"),
        Binding("e", "edit", "Edit stage", id="queue.edit", show=False, tooltip="Edit a queued stage's options"),
        Binding("s", "skip", "Skip", id="queue.skip", tooltip="Skip the selected stage"),
        Binding("l", "open_log", "Log", id="queue.log", tooltip="Open the selected stage's log"),
        Binding("x", "failures", "Failures", id="queue.failures", tooltip="Failed quanta of the selected stage"),
        Binding("L", "job_logs", "Job logs", id="queue.jobs", show=False, tooltip="Open a bps stage's job log"),
        Binding("a", "add_stage", "Add stage", id="queue.add", tooltip="Add a stage from the plan's template"),
        Binding("slash", "filter", "Filter", id="queue.filter", show=False, tooltip="Filter stages by name or status"),
        Binding("escape", "clear_filter", "Clear filter", id="queue.filter_clear", show=False),
        Binding("enter", "details", "Details", id="queue.details", show=False,
                tooltip="Details and next command of the selected stage"),
        Binding("y", "approve", "Approve", id="queue.approve", show=False,
                tooltip="Approve the selected waiting stage, or the only one waiting (its preview is shown first)"),
        Binding("n", "reject", "Reject", id="queue.reject", show=False,
                tooltip="Reject the selected waiting stage, or the only one waiting (it is skipped)"),
        Binding("V", "verify", "Verify", id="queue.verify", show=False,
                tooltip="Verify the product of the selected stage (one pfstui verify knows), with pictures"),
        Binding("plus", "parallel(1)", "More at once", id="queue.parallel_more", show=False,
                tooltip="Let one more stage run at once"),
        Binding("minus", "parallel(-1)", "Fewer at once", id="queue.parallel_less", show=False,
                tooltip="Let one fewer stage run at once"),
    ]

    def __init__(self, *, read_only: bool = False, plan_stage_options=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.read_only = read_only
        self.snapshot: Snapshot | None = None
        self._side_path: str | None = None
        self._header = ""
        self._widths: dict[str, int] = {}
        self.plan_stage_options = plan_stage_options or (lambda name: {})

    def compose(self) -> ComposeResult:
        with Vertical(id="queue-main"):
            yield Static("Connecting to the supervisor…", id="queue-status", classes="status-line")
            yield ListTable(id="queue-table", cursor_type="row", zebra_stripes=False)
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

        title.update(Text(f"{st.id} · attempt {attempt.number} · {path}"))  # text, not markup
        side.mount(LogView(path, st.id))

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for title, key, width in COLUMNS:
            table.add_column(title, key=key, width=width)
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
        """Show a new snapshot, repainting only what changed: a cell whose text is the same, or a header
        that says the same, is not sent to the terminal again (bench/wire.py)."""
        self.snapshot = snapshot
        table = self._table()
        if table is None:
            return
        keep = table.cursor_row
        shown = self.shown_stages()
        rows = [(st.id, row_cells(st, snapshot.waiting.get(st.id, []))) for st in shown]
        self._fit_columns(table, [cells for _, cells in rows])
        rows = [(key, self._fitted(cells)) for key, cells in rows]
        if set_rows(table, rows) and shown and keep is not None:
            table.move_cursor(row=min(keep, len(shown) - 1))
        self._side_log()
        text = header(snapshot)
        if text != self._header:
            self._header = text
            self.query_one("#queue-status", Static).update(text)

    def _fit_columns(self, table: DataTable, rows: list[tuple]) -> None:
        """Columns as wide as their longest cell (every stage name in full, ``clean-fitFiberProfiles`` too)
        unless the pane is truly too narrow; made again (every row with them) only when a width changes.
        The other columns only grow: a status word that comes and goes does not rebuild the table twice."""
        from pfstui.ui.render.fit import fit_widths, natural_widths

        titles = {key: title for title, key, _width in COLUMNS}
        natural = natural_widths(titles, [tuple(c.plain if isinstance(c, Text) else str(c) for c in r) for r in rows])
        natural["time"] = max(natural["time"], 7)  # "1:00:00" without a jump of the columns an hour in
        for key in ("status", "quanta", "time"):
            natural[key] = max(natural[key], self._widths.get(key, 0))
        # The vertical scrollbar's cells are always kept: widths must not change when it comes and goes.
        room = table.size.width - table.styles.scrollbar_size_vertical if table.size.width else 76
        widths = fit_widths(natural, room, steps=SHRINK, gap=2 * table.cell_padding)
        if widths != self._widths:
            self._widths = widths
            table.clear(columns=True)
            for key, title in titles.items():
                table.add_column(title, key=key, width=widths[key])

    def _fitted(self, cells: tuple) -> tuple:
        """A row's cells with the stage name cut (an ellipsis at its end) to its column, when it must be."""
        from pfstui.ui.render.fit import cut

        return (cut(cells[0], self._widths["stage"]), *cells[1:])

    def on_resize(self) -> None:
        if self.snapshot is not None:
            self.call_after_refresh(self.update_snapshot, self.snapshot)

    def _refresh_times(self) -> None:
        """Once a second: the running stages' times (a paused stage's stands still); a cell is repainted
        only when its text changes."""
        table = self._table()
        if table is None:
            return
        for st in self.stages():
            if st.status in ACTIVE:
                with contextlib.suppress(CellDoesNotExist):  # a row not shown
                    set_cell(table, st.id, "time", elapsed(st))

    # --- selection -------------------------------------------------------------------------------------
    def selected(self) -> Stage | None:
        table = self._table()
        stages = self.stages()
        if table is None or not stages or table.cursor_row is None or table.cursor_row >= table.row_count:
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

    def action_parallel(self, step: int) -> None:
        """``+``/``-``: one stage more or fewer at once (the supervisor keeps it in the queue's state)."""
        if self._refuse_read_only("change the parallel limit") or self.snapshot is None:
            return
        limit = self.snapshot.state.parallel + step
        if not 1 <= limit <= MAX_PARALLEL:
            self.app.notify(f"The parallel limit stays {self.snapshot.state.parallel}: it goes from 1 to "
                            f"{MAX_PARALLEL}.", severity="warning", markup=False)
            return
        self._send(contract().SetParallel(parallel=limit), f"Parallel limit {limit}: up to {limit} stage"
                   f"{'s' if limit > 1 else ''} at once")

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
        if st and st.status in EDITABLE:
            self.action_edit()  # nothing to restart yet: its options are edited in the plan file
            return
        if not st or st.status not in RESTARTABLE:
            self.app.notify("Only a failed, killed, lost or dependency-failed stage can be restarted (a queued "
                            "one is edited with e).", severity="warning")
            return
        options = {k: v for k, v in self.plan_stage_options(st.id).items() if k in EDITABLE_FIELDS}
        options.update(st.extra.overrides)

        def edited(choice: RestartChoice | None) -> None:
            if choice is None:
                return
            runs = "every quantum again (full rerun)" if choice.full else "only the quanta that did not succeed"
            body = f"Restart as a new attempt running {runs} (the old attempt's log is kept)"
            changes = choice.changes
            body += (":\n\n" + yaml.safe_dump(changes, sort_keys=False)) if changes else ", with the same options."
            request = contract().RestartStage(stage=st.id, overrides=changes or None, full=choice.full)
            self.app.push_screen(ConfirmScreen(f"Restart {st.id}?", body, ok_label="Restart", danger=False),
                                 lambda ok: ok and self._send(request, f"Restarting {st.id}"))

        self.app.push_screen(RestartEditor(st.id, options), edited)

    def action_edit(self) -> None:
        """Edit a stage that has not started, in the plan file; the supervisor then reads the plan again."""
        if self._refuse_read_only("edit stage"):
            return
        st = self.selected()
        path = self.plan_path()
        if not st or st.status not in EDITABLE:
            self.app.notify("Only a queued stage can be edited (R restarts a failed one with new options).",
                            severity="warning")
            return
        if not path:
            self.app.notify("No plan is loaded: start pfstui with --plan PLAN to edit its stages.", severity="warning")
            return
        from pfstui.plan.edit import read_plan_file
        from pfstui.plan.issues import PlanError
        from pfstui.plan.stage_edit import stage_values
        from pfstui.plan.variables import stage_env

        env = stage_env()
        try:
            plan_file = read_plan_file(path, env=env)
            written = stage_values(plan_file, st.id)
        except PlanError as exc:
            self.app.notify(f"{exc}", title="Cannot edit: fix the plan first", severity="error", timeout=10,
                            markup=False)
            return
        # What runs: the file's values as written (else the plan's defaults), and over them what a restart editor
        # set; the fields edited here go into the file and replace those.
        model = self.plan_stage_options(st.id)
        options = {k: written[k] if k in written else model[k] for k in EDITABLE_FIELDS if k in written or k in model}
        options.update(st.extra.overrides)

        def saved(result) -> None:
            if result is not None:
                self._send(contract().EditStage(stage=st.id, path=str(result.path), fields=list(result.fields),
                                                repo=getattr(self.app, "repo", None)),
                           f"Saved {st.id} in {Path(result.path).name}: its next attempt runs with it")

        self.app.push_screen(StageEditor(st.id, options, plan_file, env=env), saved)

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

    def action_approve(self) -> None:
        """Show the waiting stage's preview and approve exactly it (the supervisor refuses one that changed)."""
        if self._refuse_read_only("approve"):
            return
        st = self._waiting("approve")
        preview = st.extra.preview if st else None
        if st is None or preview is None:
            return
        if preview.state == "computing":
            self.app.notify(f"{st.id}: its preview is still being computed; approve once it is shown (enter).",
                            severity="warning", markup=False)
            return
        if preview.state == "failed":  # refused with the reason; the supervisor computes the preview again
            self._send(contract().ApproveStage(stage=st.id, via="app", seen_argv=preview.argv), "")
            return
        request = contract().ApproveStage(stage=st.id, via="app", seen_argv=preview.argv, seen_digest=preview.digest)
        self.app.push_screen(
            ConfirmScreen(f"Approve {st.id} (attempt {preview.attempt})?", preview.text, ok_label="Approve",
                          danger=True),
            lambda ok: ok and self._send(request, f"Approved {st.id}: it runs exactly this"),
        )

    def action_reject(self) -> None:
        if self._refuse_read_only("reject"):
            return
        st = self._waiting("reject")
        if st is None:
            return
        self.app.push_screen(
            ConfirmScreen(f"Reject {st.id}?", "It is skipped (nothing of it runs); stages that depend on it may then "
                          "run. The journal records the rejection.", ok_label="Reject", danger=False),
            lambda ok: ok and self._send(contract().RejectStage(stage=st.id, via="app"), f"Rejected {st.id}"),
        )

    def _waiting(self, what: str) -> Stage | None:
        """The stage ``y``/``n`` acts on: the one under the cursor, or, when that one does not wait, the only stage
        that does (the header says "X waits: y approves"), with the cursor moved onto it.  The confirmation names
        the stage, so nothing is approved unseen."""
        st = self.selected()
        if st is None or st.status == StageStatus.WAITING:
            return st
        waiting = [s for s in self.stages() if s.status == StageStatus.WAITING]
        if len(waiting) == 1:
            self._move_to(waiting[0].id)
            return waiting[0]
        if waiting:
            names = ", ".join(s.id for s in waiting)
            self.app.notify(f"{len(waiting)} stages wait for approval ({names}): move the cursor to the one to {what}.",
                            severity="warning", markup=False)
        else:
            self.app.notify(f"{st.id} is {st.status}: only a stage waiting for approval can be {what}d.",
                            severity="warning", markup=False)
        return None

    def _move_to(self, stage_id: str) -> None:
        table = self._table()
        shown = [s.id for s in self.shown_stages()]
        if table is not None and stage_id in shown:
            table.move_cursor(row=shown.index(stage_id))

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
        waits = self.snapshot.waiting.get(st.id, []) if self.snapshot else []
        if st.status in WAITS:
            lines += ["", "not running because:", *(f"  - {w.text}" for w in waits)]
        preview = st.extra.preview
        if st.status == StageStatus.WAITING and preview is not None:
            lines += ["", f"preview of attempt {preview.attempt} ({preview.state}, {preview.at}):",
                      *("  " + line for line in (preview.text or "…").splitlines())]
        if st.status in (StageStatus.QUEUED, StageStatus.WAITING) or st.status in RESTARTABLE:
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
        from pfstui.ui.screens.verification import stage_request

        if (found := stage_request(st, self.stages())) is not None:
            lines += ["", f"V verifies its product: {found['dataset_type']} in {found['collection']} against "
                      f"{found['against']}, with pictures"]
        self.app.push_screen(TextScreen(f"Stage {st.id}", "\n".join(lines)))

    def action_verify(self) -> None:
        """The verification screen of the selected stage's product (see ``stage_request``)."""
        from pfstui.ui.screens.verification import VerificationScreen, stage_request

        st = self.selected()
        found = stage_request(st, self.stages()) if st else None
        if found is None or not getattr(self.app, "repo", None):
            self.app.notify("V verifies the product of a stage pfstui verify knows (a certify stage, or the pipetask "
                            "stage a certify stage takes), in the app's repository.", severity="warning")
            return
        self.app.push_screen(VerificationScreen(self.app._gateway, str(found["collection"]), str(found["dataset_type"]),
                                                against=found["against"], at=found["at"]))

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
