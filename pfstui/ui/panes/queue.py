"""Queue pane: the plan's stages with status, per-task quanta progress, elapsed time and attempt.

It renders the supervisor's snapshots (`QueueUpdated`) and asks for changes with `QueueRequest`
messages; everything that kills or changes something shows the exact command or effect first.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.message import Message
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, DataTable, Static, TextArea

from pfstui.ui.link import QueueRequest
from pfstui.ui.screens.confirm import ConfirmScreen, TextScreen

STATUS_STYLE = {
    "queued": "dim", "running": "bold cyan", "paused": "yellow", "done": "green", "failed": "bold red",
    "killed": "red", "dependency-failed": "magenta", "skipped": "dim italic", "lost": "bold magenta",
}
EDITABLE = ("query", "config", "config_files", "processes", "extra_options", "begin", "end", "data_ids", "where")


def progress_of(stage: dict[str, Any]) -> dict[str, Any]:
    attempts = stage.get("attempts") or []
    if not attempts:
        return {}
    return (attempts[-1].get("quanta") or {}).get("progress") or {}


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


def elapsed(stage: dict[str, Any], now: datetime | None = None) -> str:
    attempts = stage.get("attempts") or []
    if not attempts or not attempts[-1].get("started_at"):
        return ""
    a = attempts[-1]
    try:
        start = datetime.fromisoformat(a["started_at"])
        end = datetime.fromisoformat(a["ended_at"]) if a.get("ended_at") else (now or datetime.now(UTC))
    except ValueError:
        return ""
    secs = max(0, int((end - start).total_seconds()))
    return f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}" if secs >= 3600 else f"{secs // 60}:{secs % 60:02d}"


class StageSelected(Message):
    def __init__(self, stage: dict[str, Any]) -> None:
        super().__init__()
        self.stage = stage


class OpenLog(Message):
    """Ask the Logs pane to show a stage's log (optionally at a byte offset)."""

    def __init__(self, stage_id: str, path: str, offset: int | None = None) -> None:
        super().__init__()
        self.stage_id = stage_id
        self.path = path
        self.offset = offset


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
            yield Static(f"[b]Restart {self.stage_id}[/b] with these options (YAML; ctrl+s restarts, escape cancels)")
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
            self.query_one("#restart-error", Static).update(f"Not valid YAML: {exc}".splitlines()[0])
            return
        if not isinstance(data, dict):
            self.query_one("#restart-error", Static).update("Write the options as 'field: value' lines.")
            return
        changed = {k: v for k, v in data.items() if self.options.get(k) != v}
        self.dismiss(changed)


#: Parsl job states that are over (the rest are pending, launched or running).
_JOB_ENDED = {"exec_done", "memo_done", "failed", "dep_fail", "running_ended"}


def bps_phase(attempt: dict[str, Any]) -> str:
    """Where a running bps attempt is, in one word: graph (building the quantum graph), prepare, jobs, or
    ingest (every job is over: the final job is putting the outputs in the registry, then pipetask report)."""
    state = (attempt.get("quanta") or {}).get("bps") or {}
    phase, jobs = state.get("phase"), state.get("jobs") or {}
    if phase in (None, "acquire"):
        return "graph"
    if phase != "submit":
        return "prepare"
    if jobs and all(word in _JOB_ENDED for word in jobs):
        return "ingest"
    return "jobs"


def _bps_lines(attempt: dict[str, Any]) -> list[str]:
    """What a bps attempt adds to a stage's details: where it runs, its jobs, and the exact submit file."""
    bps = attempt.get("bps")
    if not bps:
        return []
    state = (attempt.get("quanta") or {}).get("bps") or {}
    jobs = ", ".join(f"{n} {word}" for word, n in sorted((state.get("jobs") or {}).items())) or "none yet"
    lines = [f"  bps {bps.get('mode')} in {bps.get('workdir')}",
             f"  phase {state.get('phase') or '-'}; jobs: {jobs}",
             f"  job logs {Path(bps.get('submit_dir') or '.') / 'logs'}  (j lists them)"]
    submit = bps.get("submit_file")
    if submit:
        try:
            text = Path(submit).read_text(encoding="utf-8")
        except OSError as exc:
            text = f"(cannot read it: {exc.strerror})"
        lines += [f"  submit file {submit}:", *("    " + line for line in text.splitlines())]
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
        self.snapshot: dict[str, Any] = {}
        self._side_path: str | None = None
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
        path = ((st or {}).get("attempts") or [{}])[-1].get("log_path") if st else None
        if path == self._side_path:
            return
        self._side_path = path
        side = self.query_one("#queue-side")
        for old in side.query("LogView"):
            old.remove()
        title = self.query_one("#queue-side-title", Static)
        if not path:
            title.update(f"{st['id']}: no log yet" if st else "Highlight a stage to follow its log here.")
            return
        from pfstui.ui.panes.logs import LogView

        title.update(f"{st['id']} · attempt {st['attempts'][-1]['number']} · {path}")
        side.mount(LogView(path, st["id"]))

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        # Fixed widths that fit 80 columns; the longest status word is "dependency-failed".
        table.add_column("Stage", key="stage", width=21)
        table.add_column("Status", key="status", width=17)
        table.add_column("Quanta", key="quanta", width=20)
        table.add_column("Time", key="time", width=7)
        table.add_column("Try", key="attempt", width=3)
        table.focus()
        self.set_interval(1.0, self._refresh_times)

    def focus_main(self) -> None:
        self.query_one(DataTable).focus()

    # --- rendering -------------------------------------------------------------------------------------
    def stages(self) -> list[dict[str, Any]]:
        return (self.snapshot.get("state") or {}).get("stages") or []

    def update_snapshot(self, snapshot: dict[str, Any]) -> None:
        self.snapshot = snapshot
        table = self.query_one(DataTable)
        keep = table.cursor_row
        stages = self.stages()
        existing = {str(k.value) for k in table.rows}
        ids = [s["id"] for s in stages]
        if existing != set(ids) or len(existing) != len(ids):
            table.clear()
            for st in stages:
                table.add_row(*self._cells(st), key=st["id"])
        else:
            for st in stages:
                for col, value in zip(("stage", "status", "quanta", "time", "attempt"), self._cells(st)):
                    table.update_cell(st["id"], col, value)
        if stages and keep is not None:
            table.move_cursor(row=min(keep, len(stages) - 1))
        self._side_log()
        state = snapshot.get("state") or {}
        counts: dict[str, int] = {}
        for st in stages:
            counts[st["status"]] = counts.get(st["status"], 0) + 1
        summary = " · ".join(f"{n} {word}" for word, n in counts.items())
        paused = "[yellow]queue PAUSED — r runs it[/]" if state.get("queue_paused") else "queue running"
        problems = " ".join(f"[red]{escape(p)}[/]" for p in (snapshot.get("plan_error"), snapshot.get("state_problem")) if p)
        self.query_one("#queue-status", Static).update(f"{paused} · {summary} {problems}".strip())

    def _cells(self, st: dict[str, Any]) -> tuple:
        p = progress_of(st)
        tasks = p.get("tasks") or {}
        if tasks:
            done = sum(t.get("done", 0) for t in tasks.values())
            failed = sum(t.get("failed", 0) for t in tasks.values())
            blocked = sum(t.get("blocked", 0) for t in tasks.values())
            totals = [t.get("total") for t in tasks.values()]
            total = sum(totals) if all(t is not None for t in totals) else p.get("graph_total")
            quanta = bar(done, failed, blocked, total)
        else:
            quanta = Text("")
        attempts = st.get("attempts") or []
        word = st["status"]
        if word == "running" and attempts and attempts[-1].get("bps"):
            word = f"running ({bps_phase(attempts[-1])})"
        return (st["id"], Text(word, STATUS_STYLE.get(st["status"], "")), quanta, elapsed(st),
                str(attempts[-1]["number"]) if attempts else "")

    def _refresh_times(self) -> None:
        table = self.query_one(DataTable)
        for st in self.stages():
            if st["status"] in ("running", "paused"):
                try:
                    table.update_cell(st["id"], "time", elapsed(st))
                except Exception:  # noqa: BLE001 - the row may have just been rebuilt
                    pass

    # --- selection -------------------------------------------------------------------------------------
    def selected(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        stages = self.stages()
        if not stages or table.cursor_row is None or table.cursor_row >= len(stages):
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return next((s for s in stages if s["id"] == key), None)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_details()

    # --- actions ---------------------------------------------------------------------------------------
    def _refuse_read_only(self, what: str = "the queue cannot be changed") -> bool:
        if self.read_only:
            self.app.notify(f"Read-only mode: {what} (restart pfstui without --read-only).",
                            severity="warning")
        return self.read_only

    def _send(self, cmd: str, label: str, **args: Any) -> None:
        self.post_message(QueueRequest(cmd, args, label))

    def action_run(self) -> None:
        if not self._refuse_read_only():
            self._send("run", "Queue running")

    def action_pause(self) -> None:
        if self._refuse_read_only():
            return
        st = self.selected()
        if st and st["status"] == "running":
            a = st["attempts"][-1]
            self.app.push_screen(
                ConfirmScreen(f"Pause {st['id']}?", f"SIGSTOP to process group {a.get('pgid')}:\n\n"
                              + shlex.join(a.get("argv") or []), ok_label="Pause", danger=False),
                lambda ok: ok and self._send("pause", f"Paused {st['id']}", stage=st["id"]),
            )
        else:
            self._send("pause_queue", "Queue paused (running stages go on)")

    def action_resume(self) -> None:
        if self._refuse_read_only():
            return
        st = self.selected()
        if st and st["status"] == "paused":
            self._send("resume", f"Resumed {st['id']}", stage=st["id"])
        else:
            self._send("resume_queue", "Queue running")

    def action_kill(self) -> None:
        if self._refuse_read_only():
            return
        st = self.selected()
        if not st or st["status"] not in ("running", "paused"):
            self.app.notify("Select a running stage to kill.", severity="warning")
            return
        a = st["attempts"][-1]
        body = (f"SIGTERM to process group {a.get('pgid')} (every process of the stage), then SIGKILL after 10 s "
                f"if any is left. The log is kept.\n\n{shlex.join(a.get('argv') or [])}")
        self.app.push_screen(ConfirmScreen(f"Kill {st['id']}?", body, ok_label="Kill"),
                             lambda ok: ok and self._send("kill", f"Killing {st['id']}", stage=st["id"]))

    def action_restart(self) -> None:
        if self._refuse_read_only():
            return
        st = self.selected()
        if not st or st["status"] not in ("failed", "killed", "lost", "dependency-failed"):
            self.app.notify("Only a failed, killed, lost or dependency-failed stage can be restarted.", severity="warning")
            return
        options = {k: v for k, v in self.plan_stage_options(st["id"]).items() if k in EDITABLE}
        options.update((st.get("extra") or {}).get("overrides") or {})

        def edited(changes: dict | None) -> None:
            if changes is None:
                return
            body = "Restart as a new attempt (the old attempt's log is kept)"
            body += (":\n\n" + yaml.safe_dump(changes, sort_keys=False)) if changes else " with the same options."
            self.app.push_screen(
                ConfirmScreen(f"Restart {st['id']}?", body, ok_label="Restart", danger=False),
                lambda ok: ok and self._send("restart", f"Restarting {st['id']}", stage=st["id"],
                                             **({"overrides": changes} if changes else {})),
            )

        self.app.push_screen(RestartEditor(st["id"], options), edited)

    def action_skip(self) -> None:
        if self._refuse_read_only():
            return
        st = self.selected()
        if not st:
            return
        self.app.push_screen(
            ConfirmScreen(f"Skip {st['id']}?", "Mark it skipped: stages that depend on it may then run.",
                          ok_label="Skip", danger=False),
            lambda ok: ok and self._send("skip", f"Skipped {st['id']}", stage=st["id"]),
        )

    def plan_path(self) -> str | None:
        """The plan file this queue runs: the one pfstui was started with, else the supervisor's."""
        return getattr(self.app, "plan", None) or (self.snapshot.get("state") or {}).get("plan")

    def action_add_stage(self) -> None:
        """Append a stage from the plan's template to the plan file, then have the supervisor reload it."""
        if self._refuse_read_only("stages cannot be added to the plan"):
            return
        path = self.plan_path()
        if not path:
            self.app.notify("No plan is loaded: start pfstui with --plan PLAN to add stages to it.", severity="warning")
            return
        from pfstui.plan.edit import read_plan_file, stage_templates
        from pfstui.plan.variables import stage_env
        from pfstui.plan.model import PlanError
        from pfstui.ui.screens.add_stage import AddStageScreen

        env = stage_env()
        try:
            plan_file = read_plan_file(path, env=env)
            stages = stage_templates(plan_file.plan, text=plan_file.text, env=env)
        except PlanError as exc:
            self.app.notify(f"{exc}", title="Cannot add a stage: fix the plan first", severity="error", timeout=10,
                            markup=False)
            return
        paused = (self.snapshot.get("state") or {}).get("queue_paused") if self.snapshot else None

        def added(result) -> None:
            if result is None:
                return
            self._send("load_plan", f"Added stage {result.stage} to {Path(result.path).name} (queued)",
                       path=str(result.path), repo=getattr(self.app, "repo", None))

        self.app.push_screen(AddStageScreen(plan_file, stages, env=env, queue_paused=paused), added)

    def action_details(self) -> None:
        st = self.selected()
        if not st:
            return
        lines = [f"status: {st['status']}", f"depends on: {', '.join(st.get('depends_on') or []) or '-'}"]
        if st["status"] == "queued":
            lines += ["", "next run:", *("  " + line for line in self._next_command(st).splitlines())]
        for a in st.get("attempts") or []:
            lines += ["", f"attempt {a['number']}: {a.get('status')}  exit {a.get('exit_code')}  {a.get('signal') or ''}",
                      f"  started {a.get('started_at')}  ended {a.get('ended_at') or '-'}",
                      f"  log {a.get('log_path')}", "", "  " + shlex.join(a.get("argv") or [])]
            if a.get("detail"):
                lines.append(f"  {a['detail']}")
            lines += _bps_lines(a)
        p = progress_of(st)
        for label, t in (p.get("tasks") or {}).items():
            lines.append(f"  {label:<24} total {t.get('total')}  done {t.get('done')}  failed {t.get('failed')}  "
                         f"blocked {t.get('blocked')}")
        self.app.push_screen(TextScreen(f"Stage {st['id']}", "\n".join(lines)))

    def _next_command(self, st: dict[str, Any]) -> str:
        """The exact command the stage's next attempt will run (from the plan, with its edited options)."""
        from pfstui.plan.argv import Tools, shell_format, with_overrides
        from pfstui.plan.model import load_plan
        from pfstui.queue.launch import display_head, is_bps, stage_argv, submit_config, submit_yaml

        state = (self.snapshot or {}).get("state") or {}
        session = (self.snapshot or {}).get("session")
        if not state.get("plan") or not session:
            return "(no plan loaded)"
        try:
            plan = load_plan(state["plan"])
            if state.get("repo"):
                plan = plan.model_copy(update={"repository": state["repo"]})
            stage = with_overrides(plan.stage(st["name"]), (st.get("extra") or {}).get("overrides"))
            pipeline = getattr(stage, "pipeline", None)
            number = len(st.get("attempts") or []) + 1
            adir = Path(session) / "stages" / st["id"] / f"attempt-{number}"
            tools = Tools.discover()
            argv = stage_argv(plan, stage, attempt_dir=adir, tools=tools,
                              first_run=pipeline is not None and pipeline not in (state.get("pipelines") or []))
            text = shell_format(argv, head=display_head(argv, stage, tools))
            if is_bps(stage):
                config = submit_config(plan, stage, workdir=adir.absolute())
                text += f"\n\n{adir / 'bps-submit.yaml'}:\n" + submit_yaml(config)
            return text
        except Exception as exc:  # noqa: BLE001 - shown, never raised: the plan may be mid-edit
            return f"(cannot build it: {exc})"

    def action_open_log(self) -> None:
        st = self.selected()
        if st and st.get("attempts") and st["attempts"][-1].get("log_path"):
            self.post_message(OpenLog(st["id"], st["attempts"][-1]["log_path"]))
        else:
            self.app.notify("This stage has no log yet.", severity="warning")

    def action_failures(self) -> None:
        st = self.selected()
        failures = progress_of(st).get("failures") if st else None
        if not failures:
            self.app.notify("No failed quanta recorded for this stage.")
            return
        first = failures[0]
        lines = []
        for f in failures:
            did = ", ".join(f"{k}={v}" for k, v in (f.get("data_id") or {}).items())
            where = f"{f['log_path']} " if f.get("log_path") else ""  # a bps job's own log
            lines.append(f"{f.get('task')} {{{did}}}\n    {f.get('exception_class') or 'error'}: {f.get('message')}\n"
                         f"    log {where}byte {f.get('offset')}")
        self.app.push_screen(TextScreen(f"Failed quanta of {st['id']}", "\n".join(lines)))
        if first.get("log_path"):
            offset = int(first["offset"]) if first.get("offset") is not None else None
            self.post_message(OpenLog(f"{st['id']}:{first.get('task')}", first["log_path"], offset))
        elif first.get("offset") is not None:
            self.post_message(OpenLog(st["id"], st["attempts"][-1]["log_path"], int(first["offset"])))

    def action_job_logs(self) -> None:
        """Pick one of a bps stage's job logs and open it in the Logs pane."""
        st = self.selected()
        bps = ((st or {}).get("attempts") or [{}])[-1].get("bps") if st else None
        if not bps:
            self.app.notify("Only bps stages have job logs; `l` opens this stage's log.", severity="warning")
            return
        from pfstui.ui.screens.job_logs import JobLogsScreen

        failed = {f["log_path"] for f in progress_of(st).get("failures") or [] if f.get("log_path")}

        def chosen(path: str | None) -> None:
            if path:
                self.post_message(OpenLog(f"{st['id']}:{Path(path).parent.name}", path))

        self.app.push_screen(JobLogsScreen(st["id"], str(Path(bps["submit_dir"]) / "logs"), failed), chosen)
