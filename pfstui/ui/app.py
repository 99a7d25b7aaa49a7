"""The pfstui Textual app: four panes (Collections, Queue, Logs, Certify) over the core.

The app is a view: the queue lives in the session supervisor (a separate process that outlives the app),
the repository behind the Butler gateway (used only from worker threads: its import takes over a second
and never sits on the first frame's path), logs are read straight from the stage log files.

Threads (none of them from Textual's shared default pool, which nothing may fill): one follows every open log
(:class:`~pfstui.ui.widgets.log_watcher.LogWatchHub`), one holds the supervisor link, one sends requests to
the supervisor in order, two do repository work (:attr:`PfsTuiApp.butler_lane`); see :mod:`pfstui.ui.workers`.

Start-up time (bench/ui.py, against a bare Textual app): the panes not shown first are imported, built
and mounted after the first frame (``_mount_deferred``).  Their modules are imported inside functions,
and the messages of panes that may not be loaded yet (``OpenLog`` from the queue, ``RegistryChanged``
from the certify pane) are handled by their handler names (``on_open_log``, ``on_registry_changed``),
which need no import.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Header, Static, TabbedContent, TabPane

from pfstui.queue.model import EDITABLE, ENDED, StageStatus
from pfstui.ui.hangup import exit_with_terminal
from pfstui.ui.link import SupervisorLink, contract
from pfstui.ui.messages import (
    LinkStatus,
    QueueFailed,
    QueueReply,
    QueueRequest,
    QueueUpdated,
)
from pfstui.ui.widgets.footer import KeysFooter
from pfstui.ui.workers import Lane

if TYPE_CHECKING:
    from pfstui.queue.requests import Snapshot


def theme_css(name: str = "pfstui.tcss") -> str:
    """The stylesheet: ``themes/`` of the source checkout this code runs from, else the installed
    ``pfstui.themes`` package.

    The checkout's own first: an editable install maps ``pfstui.themes`` to the checkout it was made from,
    and code run from another checkout (a git worktree on ``PYTHONPATH``) must get the stylesheet written
    for it.  Located with ``find_spec`` rather than ``importlib.resources`` (whose import, zipfile and all,
    was a measurable part of the start-up); the package is a plain folder in both layouts.
    """
    beside = Path(__file__).resolve().parents[2] / "themes" / name
    if beside.is_file():
        return beside.read_text()
    from importlib.util import find_spec

    try:
        spec = find_spec("pfstui.themes")
    except ModuleNotFoundError:
        spec = None
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / name
        if path.is_file():
            return path.read_text()
    return beside.read_text()  # FileNotFoundError: no stylesheet anywhere


def settle_gc() -> None:
    """Take the objects made so far (Textual's DOM, stylesheets, modules) out of the GC's generations, and
    switch the collector on (the ``pfstui`` command starts without it: see :mod:`pfstui.__main__`).

    Why: a full collection walks every tracked object; with the start-up objects frozen it walks only what
    was made since.  Following 8 busy logs, full passes fell from 30-60 ms of CPU to 5-15 ms, and a key
    press that lands on one no longer waits that long (bench/logview.py, keypress-to-repaint).  Called
    once the app has started (see ``_mount_deferred``); ``gc.unfreeze()`` on exit.
    """
    gc.collect()
    gc.freeze()
    gc.enable()


CSS = theme_css()


def _actions_provider():
    from pfstui.ui.palette import ActionsProvider

    return ActionsProvider


class PfsTuiApp(App):
    """Main application."""

    CSS = CSS
    TITLE = "pfstui"
    #: Screen classes by width: at 80 columns one thing at a time, from 120 side by side.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding("1", "show_pane('collections')", "Collections", id="pane.collections", show=False,
                tooltip="Show the Collections pane"),
        Binding("2", "show_pane('queue')", "Queue", id="pane.queue", show=False, tooltip="Show the Queue pane"),
        Binding("3", "show_pane('logs')", "Logs", id="pane.logs", show=False, tooltip="Show the Logs pane"),
        Binding("4", "show_pane('certify')", "Certify", id="pane.certify", show=False,
                tooltip="Show the Certify pane"),
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "toggle_help", "Keys", id="app.help", tooltip="Every key with its binding id"),
        Binding("ctrl+p", "command_palette", "palette", show=False, priority=True, id="app.palette",
                tooltip="Every action by name"),
        # escape backs out: out of a text field to its pane's list (the panes' own escape, clearing a
        # filter, and the dialogs' come first)
        Binding("escape", "leave_input", "Back to the pane", show=False, id="app.leave_input"),
    ]
    #: pfstui's actions in the palette (imported when the palette first opens).
    COMMANDS = App.COMMANDS | {_actions_provider}

    def __init__(self, *, repo: str | None, plan: str | None = None, read_only: bool = False, demo: bool = False,
                 session_dir: Path | None = None, connect: bool = True,
                 prepare_templates: Callable[[], None] | None = None):
        super().__init__()
        #: Called once before plan templates are first used (the CLI registers the demo's there): kept off
        #: the first frame.
        self._prepare_templates = prepare_templates
        self.repo = repo
        self.plan = str(Path(plan).absolute()) if plan else None
        self.read_only = read_only
        self.demo = demo
        self.connect = connect
        self.session_dir = session_dir
        self.link: SupervisorLink | None = None
        self.link_text = "no plan"
        self._plan_model = None
        self._plan_stamp: tuple[int, int] | None = None
        if self.plan and self.session_dir is None:
            from pfstui.infra.paths import session_dir as _session_dir

            self.session_dir = _session_dir(repo or self._plan_repo(), self.plan)
        from pfstui.config import load_settings

        self.settings, self.settings_problem = load_settings()
        self._statuses: dict[str, StageStatus] = {}
        #: Repository work of every pane (threads made on first use, dropped on exit).
        self.butler_lane = Lane("pfstui-butler", 2)
        #: Requests to the supervisor, one at a time and in the order asked (a stopped supervisor holds one
        #: thread, not the shared pool).
        self.request_lane = Lane("pfstui-request", 1)
        if os.environ.get("SSH_CONNECTION"):
            self.animation_level = "none"

    # --- layout ----------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        initial = "queue" if self.plan else "collections"

        self._deferred: list[tuple[str, Callable[[], Widget]]] = []

        def lazy(pane: str, make: Callable[[], Widget]) -> Widget:
            # Panes not shown first are imported, built and mounted after the first frame (_mount_deferred).
            if pane == initial:
                return make()
            self._deferred.append((pane, make))
            return Static("", classes="pane-note")

        yield Header()
        with TabbedContent(id="panes", initial=initial):
            with TabPane("1 Collections", id="collections"):
                if self.repo:
                    yield lazy("collections", self._collections_pane)
                else:
                    yield Static("No repository: start pfstui with --repo REPO (or try `pfstui demo`).",
                                 classes="pane-note")
            with TabPane("2 Queue", id="queue"):
                if self.plan:
                    yield lazy("queue", self._queue_pane)
                else:
                    yield Static("No plan: start pfstui with --plan PLAN (write one with "
                                 "`pfstui plan new --template pfs -o plan.yaml`).", classes="pane-note")
            with TabPane("3 Logs", id="logs"):
                yield Static("Open a stage's log from the Queue pane (l).", id="logs-note", classes="pane-note")
            with TabPane("4 Certify", id="certify"):
                if self.repo:
                    yield lazy("certify", self._certify_pane)
                else:
                    yield Static("No repository: start pfstui with --repo REPO.", classes="pane-note")
        yield KeysFooter()

    def _collections_pane(self) -> Widget:
        from pfstui.ui.panes.collections import CollectionsPane

        return CollectionsPane(self._gateway)

    def _queue_pane(self) -> Widget:
        from pfstui.ui.panes.queue import QueuePane

        return QueuePane(read_only=self.read_only, plan_stage_options=self._plan_stage_options)

    def _certify_pane(self) -> Widget:
        from pfstui.ui.panes.certify import CertifyPane

        return CertifyPane(self._gateway, read_only=self.read_only)

    async def _mount_deferred(self) -> None:
        """Mount the panes that are not shown first, once the first frame is on screen."""
        try:
            if self.focused is None:
                self._focus_active_pane()
            deferred, self._deferred = self._deferred, []
            await self._mount_panes(deferred)
        finally:
            self._deferred_done.set()
        if self.plan:
            self.restore_logs()
        if self.is_running and not self.is_headless:
            # In a real terminal only: tests run many apps in one process and must get their garbage back.
            settle_gc()
            self._gc_frozen = True

    async def _mount_panes(self, deferred: list[tuple[str, Callable[[], Widget]]]) -> None:
        """Build (importing their modules) and mount deferred panes in their TabPanes."""
        for pane_id, make in deferred:
            if not self.is_running:
                return
            try:
                widget = make()
                if self._exit or not self.is_running:  # closing (the module imports took a while)
                    return
                pane = self.query_one(f"#{pane_id}", TabPane)
                await pane.remove_children()
                await pane.mount(widget)
            except Exception:  # noqa: BLE001 - the app is closing: nothing left to show
                return
            if self.query_one(TabbedContent).active == pane_id and hasattr(widget, "focus_main"):
                widget.focus_main()

    def on_mount(self) -> None:
        if not self.is_headless:
            exit_with_terminal()  # whatever state the app is in (see pfstui.ui.hangup)
        self._deferred_done = asyncio.Event()
        self.call_after_refresh(self._mount_deferred)
        self.theme = "textual-light" if self.settings.theme == "light" else "textual-dark"
        self._apply_keymap()
        if self.settings_problem:
            self.notify(self.settings_problem, title="Settings", severity="warning", timeout=10, markup=False)
        self._update_subtitle()
        if self.plan and self.connect:
            self.start_link()

    def _update_subtitle(self) -> None:
        parts = []
        if self.read_only:
            parts.append("READ-ONLY")
        parts.append(self.link_text if self.plan else "no plan")
        parts.append(f"repo {Path(self.repo).name}" if self.repo else "no repository")
        if self.plan:
            parts.append(f"plan {Path(self.plan).name}")
        self.sub_title = " · ".join(parts)

    # --- plan and gateway --------------------------------------------------------------------------------
    def _plan_repo(self) -> str:
        return self._load_plan().repository

    def _load_plan(self):
        """The plan's model, read again whenever the file changed (a stage added with `a`, an edit)."""
        if not self.plan:
            return self._plan_model
        try:
            st = os.stat(self.plan)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if self._plan_model is None or stamp != self._plan_stamp:
            from pfstui.plan.loader import load_plan
            from pfstui.plan.variables import stage_env

            self._plan_model = load_plan(self.plan, env=stage_env())
            self._plan_stamp = stamp
        return self._plan_model

    def _plan_stage_options(self, name: str) -> dict[str, Any]:
        try:
            return self._load_plan().stage(name).model_dump(mode="json")
        except Exception:  # noqa: BLE001 - the editor then starts empty
            return {}

    def _gateway(self):
        from pfstui.butler.gateway import ButlerGateway

        return ButlerGateway(self.repo, read_only=self.read_only)

    # --- supervisor link -----------------------------------------------------------------------------------
    def start_link(self) -> None:
        """The link lives on a thread of its own for the app's life (a daemon: it never holds the exit)."""
        assert self.session_dir is not None
        self.link = SupervisorLink(self.session_dir, self.post_message, read_only=self.read_only)
        threading.Thread(target=self._run_link, args=(self.link,), name="pfstui-supervisor-link",
                         daemon=True).start()

    def _run_link(self, link: SupervisorLink) -> None:
        from pfstui.queue.protocol import SupervisorClient

        try:
            with SupervisorClient(link.session_dir, read_only=self.read_only) as client:
                if not self.read_only:
                    client.request(contract().LoadPlan(path=self.plan, repo=self.repo))
        except Exception as exc:  # noqa: BLE001 - a bad plan file or a refusal: shown, not raised
            # A notification that stays: the link's next status (connected) replaces the header's line at once,
            # and the operator would see an empty queue and no reason.
            self.call_from_thread(self.notify, f"The plan was not loaded: {exc}", title="Plan", severity="error",
                                  timeout=60, markup=False)
        try:
            link.run()
        except Exception as exc:  # noqa: BLE001 - one line in the header, never a traceback on screen
            self.post_message(LinkStatus(False, f"supervisor link ended: unexpected {type(exc).__name__}: {exc}"))

    def on_unmount(self) -> None:
        if self.link is not None:
            self.link.stop.set()
        with contextlib.suppress(OSError):
            self.write_open_logs()  # a write its worker had no time for (a few hundred bytes)
        self.butler_lane.shutdown()
        self.request_lane.shutdown()
        if getattr(self, "_gc_frozen", False):
            gc.unfreeze()
            self._gc_frozen = False

    @on(LinkStatus)
    def _link_status(self, message: LinkStatus) -> None:
        self.link_text = "● connected" if message.connected else "○ supervisor unreachable"
        self._update_subtitle()
        if not message.connected:
            for status in self.query("QueuePane #queue-status").results(Static):
                status.update(Text(message.text, style="red"))

    @on(QueueUpdated)
    def _queue_updated(self, message: QueueUpdated) -> None:
        for pane in self.query("QueuePane"):
            pane.update_snapshot(message.snapshot)
        self._announce(message.snapshot)

    def _announce(self, snapshot: Snapshot) -> None:
        """A notification (and the bell, as configured) when a stage ends; never for the first snapshot."""
        first = not self._statuses
        for st in snapshot.stages:
            old, new = self._statuses.get(st.id), st.status
            self._statuses[st.id] = new
            if first or old == new or new not in ENDED:
                continue
            bad = new != StageStatus.DONE
            self.notify(f"{st.id}: {new}", title="Stage finished" if not bad else "Stage did not finish",
                        severity="error" if bad else "information", timeout=10 if bad else 4, markup=False)
            if self.settings.bell == "always" or (self.settings.bell == "failures" and bad):
                self.bell()

    # --- keys, help, palette -------------------------------------------------------------------------------
    def binding_scopes(self) -> list[list[Binding]]:
        """The bindings active together (see :func:`pfstui.ui.keymap.binding_scopes`)."""
        from pfstui.ui.keymap import binding_scopes

        return binding_scopes(type(self))

    def known_binding_ids(self) -> set[str]:
        return {b.id for scope in self.binding_scopes() for b in scope if b.id}

    def _apply_keymap(self) -> None:
        keymap = dict(self.settings.keymap)
        if not keymap:
            return  # nothing to check: the panes' modules need not be imported before the first frame
        from pfstui.ui.keymap import check_keymap

        check = check_keymap(keymap, self.binding_scopes())
        problem = check.message()
        if problem:
            self.notify(problem, title="Settings", severity="warning", timeout=15, markup=False)
        if check.usable:
            self.set_keymap(check.usable)

    def action_toggle_help(self) -> None:
        """``?``: every key with its id, the shown pane's first (see :mod:`pfstui.ui.screens.keys`)."""
        from pfstui.ui.keymap import sections
        from pfstui.ui.screens.keys import KeysScreen

        if isinstance(self.screen, KeysScreen):
            self.screen.dismiss(None)
            return
        active = self.query_one(TabbedContent).active
        ordered = sorted(sections(type(self)), key=lambda s: s.pane != active)
        self.push_screen(KeysScreen(ordered, dict(self._keymap)))

    def get_system_commands(self, screen):
        # Textual's "Keys" shows its help panel, without the ids: `?` and the pfstui commands replace it.
        for command in super().get_system_commands(screen):
            if command.title != "Keys":
                yield command

    def _input_pane(self) -> Widget | None:
        """The pane whose text field has the keyboard (None: no field has it, or it is in a dialog)."""
        # No Input exists before Textual's input module is imported: the footer asks this on the first
        # frame, and the Queue pane (first with a plan) has no Input to import it for.
        inputs = sys.modules.get("textual.widgets._input")
        node = self.focused
        if inputs is None or not isinstance(node, inputs.Input):
            return None
        while node is not None and not hasattr(node, "focus_main"):
            node = node.parent
        return node

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_input":
            return self._input_pane() is not None  # else escape is no key of the app's
        return True

    def action_leave_input(self) -> None:
        """Escape in a text field: back to its pane's list, so 1-4 and the pane's keys work again."""
        pane = self._input_pane()
        if pane is not None:
            pane.focus_main()

    @on(QueueRequest)
    def _queue_request(self, message: QueueRequest) -> None:
        self.send_request(message)

    @work(group="requests", exit_on_error=False)
    async def send_request(self, request: QueueRequest) -> None:
        try:
            link = self.link or SupervisorLink(self.session_dir, self.post_message, read_only=self.read_only)
            result = await self.request_lane.call(link.request, request)
        except Exception as exc:  # noqa: BLE001 - refused requests come back as one line
            self.post_message(QueueFailed(request, str(exc)))
            return
        self.post_message(QueueReply(request, result))

    @on(QueueReply)
    def _reply(self, message: QueueReply) -> None:
        if message.request.label:
            self.notify(message.request.label, markup=False)
        status = getattr(message.result, "status", None)
        if message.request.cmd == "edit" and status not in EDITABLE:  # it started while the editor was open
            self.notify(f"{message.request.request.stage} was already {status}: the plan file holds the edit, "
                        "which counts from its next attempt.", severity="warning", timeout=10, markup=False)

    @on(QueueFailed)
    def _failed(self, message: QueueFailed) -> None:
        self.notify(message.error, title=f"{message.request.cmd} refused", severity="error", timeout=8, markup=False)

    # Handled by name, not with @on(...): the message classes live in pane modules imported after the
    # first frame.  on_registry_changed: messages.RegistryChanged; on_open_log: messages.OpenLog.
    def on_registry_changed(self, message: Any) -> None:
        for pane in self.query("CollectionsPane"):
            pane.refresh_all()

    def prepare_templates(self) -> None:
        """Make the plan templates known (once), before the add-stage screen lists them."""
        if self._prepare_templates is not None:
            prepare, self._prepare_templates = self._prepare_templates, None
            prepare()

    async def on_open_log(self, message: Any) -> None:
        await self.open_log(message.stage_id, message.path, message.offset)

    async def _logs_panel(self):
        """The Logs pane's panel, made on first use (the pane shows a note until a log is opened)."""
        from pfstui.ui.panes.logs import LogsPanel

        # Pane switching must not race the panes still being mounted after the first frame.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._deferred_done.wait(), timeout=5)
        panels = self.query(LogsPanel)
        if panels:
            return panels.first()
        note = self.query_one("#logs-note", Static)
        panel = LogsPanel(id="logs-panel")
        await note.parent.mount(panel)
        await note.remove()
        return panel

    async def open_log(self, stage_id: str, path: str, offset: int | None = None) -> None:
        panel = await self._logs_panel()
        view = await panel.add_log(path, stage_id)
        self._remember_logs(panel)
        if offset is not None:
            goto = getattr(view, "goto_offset", None)
            if goto is not None:
                goto(offset)
        self.action_show_pane("logs")
        # Keep the keyboard in the log: a focus left elsewhere would pull the tabs back to that pane.
        self.call_after_refresh(view.focus)

    # --- open logs, remembered per queue (pfstui.ui.open_logs) ----------------------------------------------
    #: Serialises the writes of the open logs: the newest list asked for is the one left on disk.
    _open_logs_lock = threading.Lock()
    #: (how many lists were asked for, the newest list), and how many had been asked when the file was written.
    _open_logs_wanted: tuple[int, list[tuple[str, str]]] = (0, [])
    _open_logs_written = 0

    def on_logs_panel_log_removed(self, message: Any) -> None:
        for panel in self.query("LogsPanel"):
            self._remember_logs(panel)

    def _remember_logs(self, panel: Any) -> None:
        self._open_logs_wanted = (self._open_logs_wanted[0] + 1, [(v.title, str(v.path)) for v in panel.views])
        self.remember_logs()

    @work(thread=True, group="open-logs", exit_on_error=False)
    def remember_logs(self) -> None:
        try:
            self.write_open_logs()
        except OSError as exc:
            self.call_from_thread(self.notify, f"The open logs are not remembered: {exc}", severity="warning",
                                  markup=False)

    def write_open_logs(self) -> None:
        """Write the newest list of open logs, unless it is on disk already.  Why a "newest wins" rule: writer
        threads ran out of order (a closed log came back after a reopen), and the app's exit cancelled the
        last pending write (:meth:`on_unmount` writes it then)."""
        from pfstui.ui.open_logs import write_open_logs

        if self.session_dir is None or self.read_only or not self.session_dir.is_dir():
            return  # no queue to remember them for (or nothing may be written)
        with self._open_logs_lock:
            asked, logs = self._open_logs_wanted
            if asked > self._open_logs_written:
                write_open_logs(self.session_dir, logs)
                self._open_logs_written = asked

    @work(thread=True, group="open-logs-read", exit_on_error=False)
    def restore_logs(self) -> None:
        from pfstui.ui.open_logs import read_open_logs

        logs = read_open_logs(self.session_dir) if self.session_dir is not None else []
        if logs:
            self.call_from_thread(self._reopen_logs, logs)

    async def _reopen_logs(self, logs: list[tuple[str, str]]) -> None:
        """Open again, in the background tabs of the Logs pane, the logs that were open last time."""
        panel = await self._logs_panel()
        for title, path in logs:
            await panel.add_log(path, title, activate=False)

    def action_show_pane(self, pane: str) -> None:
        tabs = self.query_one(TabbedContent)
        if tabs.active == pane:  # no TabActivated follows: put the keyboard back in its list here
            self._focus_active_pane()
            return
        # Drop the focus first: TabbedContent re-activates the pane holding the focused widget, which
        # would bounce us back from a pane with nothing focusable in it (a placeholder).
        self.set_focus(None)
        tabs.active = pane

    def _focus_active_pane(self) -> None:
        tabs = self.query_one(TabbedContent)
        for widget in self.query_one(f"#{tabs.active}", TabPane).query("*"):
            if hasattr(widget, "focus_main"):
                widget.focus_main()
                return

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """Put the keyboard in the pane that was just shown (not one a late event speaks of: focusing a
        widget in another pane would pull the tabs back to it)."""
        if event.pane.id != self.query_one(TabbedContent).active:
            return
        for widget in event.pane.query("*"):
            focus_main = getattr(widget, "focus_main", None)
            if focus_main is not None:
                focus_main()
                break
