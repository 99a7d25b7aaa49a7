"""Certify pane: certify, decertify and clean forms with inline validation, a preview of the exact
effect (from the gateway), one confirmation, and the action journal with undo.

Nothing here decides what a change does: previews and applies come from `pfstui.butler` (certify, removal,
undo, apply), run on the app's Butler lane (:mod:`pfstui.ui.workers`); this pane only collects input, shows
the preview and asks once.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Select, Static

from pfstui.ui.messages import RegistryChanged
from pfstui.ui.screens.confirm import ConfirmScreen
from pfstui.ui.widgets.tables import ListTable
from pfstui.ui.workers import RepositoryWork

ACTIONS = [("Certify", "certify"), ("Decertify", "decertify"), ("Clean", "clean")]
FIELDS = {
    "certify": ["input", "target", "dataset_type", "begin", "end", "data_ids", "override", "search_all"],
    "decertify": ["collection", "dataset_type", "begin", "end", "data_ids"],
    "clean": ["glob", "dataset_types", "where"],
}
ORDER = ["input", "collection", "glob", "target", "dataset_type", "dataset_types", "begin", "end", "data_ids",
         "override", "where", "search_all"]
#: (short label, placeholder with an example); the examples that depend on the repository (its instrument and
#: CALIBRATION collections) are filled in once it is read (:meth:`CertifyPane._names`).
LABELS = {
    "input": ("Input", "collection holding the product, e.g. u/me/bias"),
    "target": ("Target", "a CALIBRATION collection of this repository"),
    "collection": ("Collection", "a CALIBRATION collection of this repository"),
    "dataset_type": ("Dataset type", "e.g. bias, dark, fiberFlat"),
    "begin": ("Begin (TAI)", "2025-03-01T00:00:00 (empty: open)"),
    "end": ("End (TAI)", "2050-12-31T23:59:59 (empty: open)"),
    "data_ids": ("Data IDs", "key=value … ; … (empty: all)"),
    "override": ("Override", "certify a camera that failed verification: CAMERA=REASON ; …"),
    "glob": ("RUN glob", "u/me/bias/*"),
    "dataset_types": ("Types", "biasProc (space separated)"),
    "where": ("Where", "optional: e.g. visit IN (11, 12)"),
}


@dataclass(frozen=True)
class JournalRow:
    """One journal entry as the pane lists it: whether and by which entry it was undone, where, by whom."""

    entry: object
    undone_by: str | None

    def cells(self) -> tuple[str, ...]:
        e = self.entry
        undo = "undone" if self.undone_by else "yes" if e.get("undoable") else "no"
        what = str(e.get("summary", ""))
        origin = e.get("origin") or {}
        if origin.get("stage"):
            what += f" (stage {origin['stage']}#{origin.get('attempt', '?')})"
        if self.undone_by:
            what += f" — undone by {self.undone_by}"
        repo = str(e.get("repository") or "")
        return (e.ts[:19].replace("T", " "), str(e.get("action")), undo, repo.rstrip("/").rsplit("/", 1)[-1], what)


def journal_rows(entries: list, repo: str | None) -> list[JournalRow]:
    """The rows of ``entries`` (oldest first) on ``repo`` (None: every repository), each marked if undone."""
    from pfstui.butler.undo import undone_by
    from pfstui.butler.values import same_repo

    undone = undone_by(entries)
    return [JournalRow(e, undone.get(e.id)) for e in entries
            if repo is None or same_repo(str(e.get("repository") or ""), repo)]


JOURNAL_TITLE = "[b]Journal[/b] (newest first; ctrl+z undoes)"


def split_data_ids(text: str) -> list[dict[str, str]]:
    from pfstui.butler.values import parse_data_id

    return [parse_data_id(part) for part in text.split(";") if part.strip()]


def split_overrides(text: str) -> dict[str, str]:
    """The Override field (``CAMERA=REASON ; CAMERA=REASON``) as ``{camera: reason}``, as ``--override`` takes them."""
    from pfstui.verify.gate import parse_overrides

    return parse_overrides(part for part in text.split(";") if part.strip())


class CertifyPane(RepositoryWork, Widget):
    DEFAULT_CSS = """
    CertifyPane #journal-head { height: 1; }
    CertifyPane #journal-head Static { width: 1fr; }
    CertifyPane #journal-all { height: 1; width: auto; border: none; padding: 0 1; }
    """
    # priority: the pane's keys work with the cursor in a field (an Input takes ctrl+e as end-of-line),
    # and the footer keeps showing them there.
    BINDINGS = [
        Binding("ctrl+e", "preview", "Preview", id="certify.preview", priority=True,
                tooltip="Preview the exact effect of the form"),
        Binding("ctrl+y", "apply", "Apply", id="certify.apply", priority=True, tooltip="Apply the preview"),
        Binding("ctrl+z", "undo", "Undo selected", id="certify.undo", priority=True,
                tooltip="Undo the selected journal entry"),
        Binding("ctrl+r", "refresh_journal", "Refresh", id="certify.journal", show=False, priority=True,
                tooltip="Read the journal again"),
        Binding("escape", "cancel_work", "Cancel", id="certify.cancel", show=False),
        Binding("ctrl+t", "verify", "Verify", id="certify.verify", priority=True,
                tooltip="Verify the Input's product against the Target, with pictures"),
    ]
    #: The preview box says when a preview or an apply runs; the journal's title line says this.
    WORKING = {"certify-journal": "reading the journal"}
    CANCELLABLE = frozenset({"certify-preview", "certify-journal", "certify-names"})

    @dataclass
    class Previewed(Message):
        preview: object
        form: dict | None = None  #: the form values it was computed from (None for an undo)
        then_apply: bool = False

    @dataclass
    class Failed(Message):
        text: str

    @dataclass
    class Applied(Message):
        summary: str

    @dataclass
    class JournalLoaded(Message):
        entries: list
        warnings: list | None = None  #: one line per pending entry pfstui could not decide (uncertain)

    @dataclass
    class Names(Message):
        collections: list
        dataset_types: list
        calibrations: list  #: the CALIBRATION collections
        instruments: list
        dimensions: list  #: what the calibration types are per, besides the instrument

    def __init__(self, gateway_factory, *, read_only: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self._gateway_factory = gateway_factory
        self._gateway = None
        self.read_only = read_only
        self.preview = None
        self._preview_form: dict | None = None
        self.journal_entries: list = []
        self._undone: dict[str, str] = {}  #: entry id -> the id of the undo that undid it

    # --- layout ----------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with VerticalScroll(id="certify-form"):
            if self.read_only:
                yield Static("[b yellow]Read-only mode[/]: previews work, applying and undo are disabled "
                             "(restart pfstui without --read-only to change the repository).", id="certify-ro")
            yield Select(ACTIONS, value="certify", allow_blank=False, id="certify-action")
            for name in ORDER:
                if name == "search_all":
                    yield Checkbox("Search all inputs (not only the newest RUN of a chain)", id="f-search_all")
                    continue
                label, hint = LABELS[name]
                with Horizontal(id=f"row-{name}", classes="field-row"):
                    yield Label(label, classes="field-label")
                    yield Input(id=f"f-{name}", placeholder=hint)
                yield Static("", id=f"e-{name}", classes="field-error")
            with Horizontal(id="certify-buttons"):
                yield Button("Preview (ctrl+e)", id="b-preview", variant="primary")
                yield Button("Apply… (ctrl+y)", id="b-apply", variant="warning", disabled=True)
            yield Static("Fill the form and preview: nothing is written before you confirm.", id="certify-preview")
        with Vertical(id="certify-journal"):
            with Horizontal(id="journal-head"):
                yield Static(JOURNAL_TITLE, id="journal-title", classes="status-line")
                yield Checkbox("All repositories", id="journal-all")
            yield ListTable(id="journal-table", cursor_type="row")

    def on_mount(self) -> None:
        tables = self.query("#journal-table").results(DataTable)
        table = next(tables, None)
        if table is None:  # the app closed while this pane was being mounted (after the first frame)
            return
        self._journal_columns(table, 10)
        self._show_fields("certify")
        self.set_timer(0.3, self.load_names)  # after the first frame (the Butler import is heavy)
        self.load_journal()

    def focus_main(self) -> None:
        self.query_one("#certify-action", Select).focus()

    def gateway(self):
        if self._gateway is None:
            self._gateway = self._gateway_factory()
        return self._gateway

    def action_kind(self) -> str:
        return str(self.query_one("#certify-action", Select).value)

    def _show_fields(self, kind: str) -> None:
        wanted = set(FIELDS[kind])
        for name in {f for fs in FIELDS.values() for f in fs}:
            for prefix in ("row-", "f-"):
                for w in self.query(f"#{prefix}{name}"):
                    w.display = name in wanted
            for w in self.query(f"#e-{name}"):
                w.display = False  # shown again by validation when there is something to say
        self._set_preview(None, "Fill the form and preview: nothing is written before you confirm.")

    @on(Select.Changed, "#certify-action")
    def _action_changed(self, event: Select.Changed) -> None:
        if self.preview is None or self._preview_form is None or self._preview_form["kind"] != str(event.value):
            self._show_fields(str(event.value))

    # --- inline validation -------------------------------------------------------------------------------
    def _value(self, name: str) -> str:
        return self.query_one(f"#f-{name}", Input).value.strip()

    def _validate(self, name: str) -> str | None:
        from pfstui.butler.errors import InputError
        from pfstui.values.tai import DateError, check_tai, make_timespan

        value = self._value(name)
        try:
            if name in ("begin", "end"):
                check_tai(value, name)
                if self._value("begin") and self._value("end"):
                    make_timespan(self._value("begin"), self._value("end"))
            elif name == "data_ids" and value:
                split_data_ids(value)
            elif name == "override" and value:
                split_overrides(value)
        except (DateError, InputError) as exc:
            return str(exc)
        return None

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        name = (event.input.id or "")[2:]
        if name in ("begin", "end", "data_ids", "override"):
            for n in ("begin", "end") if name in ("begin", "end") else (name,):
                err = self._validate(n) or ""
                box = self.query_one(f"#e-{n}", Static)
                box.update(err)
                box.display = bool(err)
        if self.preview is not None and self._preview_form is not None and self._form() != self._preview_form:
            self._set_preview(None, "The form changed: preview again (ctrl+e).")

    def _errors(self) -> list[str]:
        kind = self.action_kind()
        errs = []
        required = {"certify": ["input", "target", "dataset_type"], "decertify": ["collection", "dataset_type"],
                    "clean": ["glob", "dataset_types"]}[kind]
        for name in required:
            if not self._value(name):
                errs.append(f"{LABELS[name][0]} is required")
        for name in ("begin", "end", "data_ids", "override"):
            if name in FIELDS[kind]:
                err = self._validate(name)
                if err:
                    errs.append(err)
        return errs

    # --- names for completion ------------------------------------------------------------------------------
    @work(exclusive=True, group="certify-names", exit_on_error=False, description="Cannot read the repository")
    async def load_names(self) -> None:
        def names() -> tuple:
            gw = self.gateway()
            return (gw.collection_names(), gw.dataset_type_names(), gw.collection_names(collection_type="CALIBRATION"),
                    gw.instrument_names(), gw.calibration_dimensions())

        self.post_message(self.Names(*await self.in_butler(names)))

    @on(Names)
    def _names(self, message: Names) -> None:
        collections = SuggestFromList(message.collections, case_sensitive=True)
        types = SuggestFromList(message.dataset_types, case_sensitive=True)
        for name in ("input", "target", "collection", "glob"):
            self.query_one(f"#f-{name}", Input).suggester = collections
        self.query_one("#f-dataset_type", Input).suggester = types
        self._prefill(message.calibrations, message.instruments, message.dimensions)

    def _prefill(self, calibrations: list[str], instruments: list[str], dimensions: list[str]) -> None:
        """Examples and defaults from the open repository, not from PFS: its CALIBRATION collection (the
        instrument's ``<instrument>/calib`` first) and its instrument in the data ID and where hints."""
        instrument = instruments[0] if len(instruments) == 1 else None
        preferred = f"{instrument}/calib" if instrument and f"{instrument}/calib" in calibrations else None
        target = preferred or (calibrations[0] if len(calibrations) == 1 else None)
        for name in ("target", "collection"):
            field = self.query_one(f"#f-{name}", Input)
            field.placeholder = (f"CALIBRATION collection, e.g. {calibrations[0]}" if calibrations
                                 else "CALIBRATION collection (this repository has none yet)")
            if target and not field.value:
                field.value = target
        keys = " ".join(f"{d}=…" for d in dimensions[:3])
        if instrument:
            self.query_one("#f-data_ids", Input).placeholder = f"instrument={instrument} {keys} ; … (empty: all)"
            self.query_one("#f-where", Input).placeholder = f"optional: instrument='{instrument}' AND visit IN (11, 12)"
        elif keys:
            self.query_one("#f-data_ids", Input).placeholder = f"{keys} ; … (empty: all)"

    # --- preview / apply -------------------------------------------------------------------------------------
    def _set_preview(self, preview, text: str | Text | None = None) -> None:
        self.preview = preview
        apply_ok = preview is not None and not preview.blocked and not self.read_only and not preview.is_noop
        self.query_one("#b-apply", Button).disabled = not apply_ok
        if text is not None:
            box = self.query_one("#certify-preview", Static)
            box.update(text)
            if preview is not None or isinstance(text, Text):
                self.call_after_refresh(box.scroll_visible)

    def action_verify(self) -> None:
        """Look before certifying: the verification of the form's Input and Dataset type against its Target, at
        its Begin date (the product certified then is the one the new one would replace)."""
        from pfstui.ui.screens.verification import VerificationScreen

        if self.action_kind() != "certify" or not self._value("input") or not self._value("dataset_type"):
            self.app.notify("Verify reads the certify form's Input and Dataset type: fill them first.",
                            severity="warning")
            return
        self.app.push_screen(VerificationScreen(self.gateway, self._value("input"), self._value("dataset_type"),
                                                against=self._value("target") or None,
                                                at=self._value("begin") or None))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "b-preview":
            self.action_preview()
        elif event.button.id == "b-apply":
            self.action_apply()

    def action_preview(self) -> None:
        errs = self._errors()
        if errs:
            self._set_preview(None, Text("\n".join(errs), "red"))
            return
        self._set_preview(None, "Computing the preview… (esc cancels)")
        form = self._form()
        self.compute_preview(form["kind"], form["values"], form["search_all"], form)

    def _form(self) -> dict:
        kind = self.action_kind()
        return {"kind": kind, "values": {n: self._value(n) for n in FIELDS[kind] if n != "search_all"},
                "search_all": self.query_one("#f-search_all", Checkbox).value}

    @work(exclusive=True, group="certify-preview", exit_on_error=False)
    async def compute_preview(self, kind: str, v: dict, search_all: bool, form: dict) -> None:
        self.post_message(self.Previewed(await self.in_butler(self._preview, kind, v, search_all), form))

    def _preview(self, kind: str, v: dict, search_all: bool):
        from pfstui.butler.certify import preview_certify, preview_decertify
        from pfstui.butler.removal import preview_clean

        gw = self.gateway()
        ids = split_data_ids(v.get("data_ids", "")) or None
        if kind == "certify":
            p = preview_certify(gw, v["input"], v["target"], v["dataset_type"], begin=v["begin"] or None,
                                end=v["end"] or None, data_ids=ids, search_all_inputs=search_all,
                                overrides=split_overrides(v["override"]))
        elif kind == "decertify":
            p = preview_decertify(gw, v["collection"], v["dataset_type"], begin=v["begin"] or None,
                                  end=v["end"] or None, data_ids=ids)
        else:
            p = preview_clean(gw, v["glob"], v["dataset_types"].split(), where=v["where"])
        return p

    @on(Previewed)
    def _previewed(self, message: Previewed) -> None:
        p = message.preview
        text = Text("\n".join(p.lines()) + "\n")
        if p.blocked:
            text.append("Blocked: ", "bold red")
            text.append(p.blocker_text())
        elif self.read_only:
            text.append("Read-only mode: this preview cannot be applied.", "yellow")
        else:
            text.append("ctrl+y applies it (you confirm once).", "bold")
        self._set_preview(p, text)
        self._preview_form = message.form
        if message.then_apply:
            self.action_apply()

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self._set_preview(None, Text(message.text, "red"))

    def action_apply(self) -> None:
        p = self.preview
        if p is None:
            self.app.notify("Preview first: ctrl+e.", severity="warning")
            return
        if self.read_only:
            self.app.notify("Read-only mode: apply refused; restart pfstui without --read-only to change the repository.",
                            severity="warning")
            return
        if p.blocked:
            self.app.notify(p.blocker_text(), severity="error", markup=False)
            return
        note = "" if p.undoable else "\n\nThis cannot be undone: the files are deleted."
        self.app.push_screen(ConfirmScreen(f"Apply: {p.summary}", "\n".join(p.lines()) + note, ok_label="Apply"),
                             lambda ok: ok and self._start_apply(p))

    def _start_apply(self, preview) -> None:
        """Apply once: the preview is cleared (a second ctrl+y has nothing to apply) until it is done."""
        self._set_preview(None, "Applying…")
        self.run_apply(preview)

    @work(group="certify-apply", exit_on_error=False)
    async def run_apply(self, preview) -> None:
        done = await self.in_butler(self._apply, preview)
        self.post_message(self.Applied(done.summary if isinstance(done.summary, str) else " ".join(done.summary)))

    def _apply(self, preview):
        from pfstui.butler.apply import apply
        from pfstui.infra.journal import default_journal

        return apply(self.gateway(), preview, journal=default_journal())

    @on(Applied)
    def _applied(self, message: Applied) -> None:
        self._set_preview(None, Text.assemble(("Done: ", "green"), message.summary))
        self.app.notify(message.summary, title="Applied", markup=False)
        self.post_message(RegistryChanged())
        self.load_journal()

    # --- journal and undo ---------------------------------------------------------------------------------
    def action_refresh_journal(self) -> None:
        self.load_journal()

    @on(Checkbox.Changed, "#journal-all")
    def _journal_scope(self, event: Checkbox.Changed) -> None:
        self.load_journal()

    @work(exclusive=True, group="certify-journal", exit_on_error=False, description="Cannot read the journal")
    async def load_journal(self) -> None:
        every = self._every_repository()  # read on the UI thread: widgets are not for the Butler's threads
        self.post_message(self.JournalLoaded(*await self.in_butler(self._read_journal, every)))

    def _read_journal(self, every: bool) -> tuple[list, list]:
        from pfstui.butler.reconcile import reconcile
        from pfstui.infra.journal import default_journal

        journal = default_journal()
        # What a killed pfstui left pending on this repository is decided first (no Butler call unless
        # there is such an entry), so the list shows only changes that happened.
        orphans = journal.orphans()
        outcomes = reconcile(journal, self.gateway(), orphans) if orphans else []
        warnings = [o.message() for o in outcomes if o.state == "uncertain"]
        entries = [e for e in journal.read() if e.get("kind") == "butler"]
        rows = journal_rows(entries, None if every else self.gateway().repo)
        return rows[::-1][:500], warnings

    def _every_repository(self) -> bool:
        boxes = self.query("#journal-all").results(Checkbox)
        box = next(boxes, None)
        return box is not None and box.value

    @on(JournalLoaded)
    def _journal(self, message: JournalLoaded) -> None:
        for text in message.warnings or ():
            self.app.notify(text, title="Journal", severity="warning", markup=False, timeout=30)
        self.journal_entries = [row.entry for row in message.entries]
        self._undone = {row.entry.id: row.undone_by for row in message.entries if row.undone_by}
        table = self.query_one("#journal-table", DataTable)
        table.clear()
        # The Action column as wide as its longest word (certify-detectormaps), never cut.
        self._journal_columns(table, max([6] + [len(str(row.entry.get("action"))) for row in message.entries]))
        for row in message.entries:
            table.add_row(*row.cells(), key=row.entry.id)

    def _journal_columns(self, table: DataTable, action_width: int) -> None:
        if table.columns and table.columns["action"].width == action_width:
            return
        table.clear(columns=True)
        table.add_column("When", key="ts", width=19)
        table.add_column("Action", key="action", width=action_width)
        table.add_column("Undo", key="undo", width=6)
        table.add_column("Repository", key="repository", width=12)
        table.add_column("What", key="summary")

    def action_undo(self) -> None:
        if self.read_only:
            self.app.notify("Read-only mode: undo refused; restart pfstui without --read-only to change the repository.",
                            severity="warning")
            return
        table = self.query_one("#journal-table", DataTable)
        if not self.journal_entries or table.cursor_row is None:
            return
        entry = self.journal_entries[table.cursor_row]
        if not entry.get("undoable"):
            self.app.notify(f"{entry.get('action')} cannot be undone (files were deleted).", severity="warning",
                            markup=False)
            return
        if entry.id in self._undone:
            self.app.notify(f"Already undone by entry {self._undone[entry.id]}: undo that entry to redo it.",
                            severity="warning", markup=False)
            return
        self._set_preview(None, "Computing what undoing it would change… (esc cancels)")
        self.undo_preview(entry.id)

    @work(exclusive=True, group="certify-preview", exit_on_error=False)
    async def undo_preview(self, entry_id: str) -> None:
        self.post_message(self.Previewed(await self.in_butler(self._undo_preview, entry_id), None, then_apply=True))

    def _undo_preview(self, entry_id: str):
        from pfstui.butler.undo import preview_undo
        from pfstui.infra.journal import default_journal

        return preview_undo(self.gateway(), entry_id, journal=default_journal())

    def worker_failed(self, worker, text: str) -> None:
        """Every worker's failure, once: a refused apply says nothing was written (unless it was)."""
        from pfstui.butler.errors import UnjournaledError

        if worker.group == "certify-apply" and not isinstance(worker.error, UnjournaledError):
            text = f"Not applied: {text}"
        self.post_message(self.Failed(text))

    def show_working(self, line: str | None) -> None:
        self.query_one("#journal-title", Static).update(f"[b]Journal[/b]: {escape(line)}" if line else JOURNAL_TITLE)

    def work_cancelled(self, groups: set[str]) -> None:
        if "certify-preview" in groups:
            self._set_preview(None, "Preview cancelled: nothing was changed (ctrl+e computes it again).")
