"""Collections pane: the repository's collections as a tree, a filter, and the selected one's detail."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.markup import escape
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Static, Tree

from pfstui.errors import UserError
from pfstui.ui.widgets.lists import ListTree
from pfstui.ui.workers import RepositoryWork

TIMESTAMP = re.compile(r"/(\d{8}T\d{6})Z?$")
#: Said after the counts when Escape stopped a refresh (the list shown is the one read before).
CANCELLED = " [dim]· refresh cancelled (r reads again)[/]"


class PatternError(UserError, ValueError):
    """A Collections filter that is meant as a regex but does not compile; str() says what to fix."""


#: Characters only a regex uses: a pattern holding one of them (or ``.*``, ``.+``, ``.?``) is a regex.
REGEX_ONLY = re.compile(r"[\^$()|+{}\\]|\.[*+?]")


def matcher(pattern: str):
    """A name filter from what the operator typed.  How a regex is told from a glob:

    * ``re:PATTERN`` is a regex, always;
    * a pattern with a character only regexes use (``^ $ ( ) | + { } \\``, or ``.*``, ``.+``, ``.?``) is a
      regex: ``step[34]$``, ``^u/me/``, ``bias|dark``;
    * else one with ``*``, ``?`` or ``[`` is a glob matched against the whole name, as ``butler
      query-collections`` does: ``u/me/*``, ``PFS/raw/[as]*``;
    * else a substring: ``calib``.

    A regex is searched anywhere in the name (anchor it with ``^``/``$``).  A bad regex raises
    :class:`PatternError` naming the fix.
    """
    pattern = pattern.strip()
    if not pattern:
        return lambda name: True
    regex = pattern[3:] if pattern.startswith("re:") else pattern if REGEX_ONLY.search(pattern) else None
    if regex is None and any(ch in pattern for ch in "*?["):
        return lambda name: fnmatch.fnmatchcase(name, pattern)
    if regex is None:
        return lambda name: pattern in name
    try:
        rx = re.compile(regex)
    except re.error as exc:
        raise PatternError(f"not a valid regex {regex!r}: {exc}",
                           "escape special characters with \\ (e.g. \\( or \\$), or write a glob: u/me/*") from None
    return lambda name: rx.search(name) is not None


class CollectionsPane(RepositoryWork, Widget):
    """Browse collections; reads run on the app's Butler lane (the Butler is never called on the UI thread)."""

    BINDINGS = [
        Binding("slash", "focus_filter", "Filter", id="collections.filter",
                tooltip="Filter collections: glob (u/me/*), regex (step[34]$, re:...) or substring"),
        # escape: cancel a running read first; with nothing running it passes on to clear the filter
        Binding("escape", "cancel_work", "Cancel", id="collections.cancel", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="collections.filter_clear"),
        Binding("ctrl+r", "refresh", "Refresh", id="collections.refresh", tooltip="Read the collections again"),
    ]
    WORKING = {"collections": "reading the collections", "collection-detail": "reading the collection"}
    CANCELLABLE = frozenset(WORKING)

    @dataclass
    class Loaded(Message):
        rows: list

    @dataclass
    class DetailLoaded(Message):
        detail: object

    @dataclass
    class Failed(Message):
        text: str

    @dataclass
    class RangesLoaded(Message):
        collection: str
        assocs: list
        more: bool

    def __init__(self, gateway_factory, **kwargs) -> None:
        super().__init__(**kwargs)
        self._gateway_factory = gateway_factory
        self._gateway = None
        self._rows: list = []
        self._shown = None  # the CollectionDetail shown, and its validity ranges once loaded
        self._ranges_shown = None
        #: Plain text of what the detail view shows (for tests and copy).
        self.detail_plain = ""
        self._wanted: str | None = None
        #: What the status line says when nothing is taking long (counts, or the last failure).
        self._status = "Loading collections…"

    def compose(self) -> ComposeResult:
        with Vertical(id="collections-left"):
            yield Input(placeholder="/ filter: glob u/me/*, regex b.*$", id="collection-filter")
            yield ListTree("collections", id="collection-tree")
            yield Static("Loading collections…", id="collections-status", classes="status-line")
        with VerticalScroll(id="collection-detail"):
            yield Static("Select a collection to see its type, chain, dataset types and validity ranges.",
                         id="collection-detail-body")

    def on_mount(self) -> None:
        tree = next(self.query(Tree).results(Tree), None)
        if tree is None:  # the app closed while this pane was being mounted (after the first frame)
            return
        tree.show_root = False
        # After the first frame, however slow the host: the worker imports the Butler (over a second of CPU
        # under the GIL), which would otherwise compete with drawing that frame.
        self.call_after_refresh(self.set_timer, 0.05, self.load)

    # --- workers ---------------------------------------------------------------------------------------
    def gateway(self):
        if self._gateway is None:
            self._gateway = self._gateway_factory()
        return self._gateway

    @work(exclusive=True, group="collections", exit_on_error=False, description="Cannot list collections")
    async def load(self, refresh: bool = False) -> None:
        self.post_message(self.Loaded(await self.in_butler(self._read_collections, refresh)))
        if refresh and self._wanted:
            self.load_detail(self._wanted)  # after the registry's caches were re-read

    def _read_collections(self, refresh: bool) -> list:
        if refresh:
            self.gateway().invalidate()
        return self.gateway().collections()

    @work(exclusive=True, group="collection-detail", exit_on_error=False, description="Cannot read that collection")
    async def load_detail(self, name: str) -> None:
        detail = await self.in_butler(lambda: self.gateway().collection_detail(name))
        self.post_message(self.DetailLoaded(detail))
        if detail.row.type == "CALIBRATION":
            assocs, more = await self.in_butler(self._read_ranges, name)
            self.post_message(self.RangesLoaded(name, assocs, more))

    def _read_ranges(self, name: str) -> tuple[list, bool]:
        """The first validity ranges of ``name``: enough for a screen, never everything."""
        assocs: list = []
        for page in self.gateway().associations(name, page_size=500):
            assocs.extend(page)
            if len(assocs) >= 2000:
                return assocs, True
        return assocs, False

    def worker_failed(self, worker, text: str) -> None:
        self.post_message(self.Failed(text))

    def show_working(self, line: str | None) -> None:
        self.query_one("#collections-status", Static).update(f"[b]{escape(line)}[/]" if line else self._status)

    def work_cancelled(self, groups: set[str]) -> None:
        if "collections" in groups:
            self._set_status(self._status.removesuffix(CANCELLED) + CANCELLED)

    # --- handlers --------------------------------------------------------------------------------------
    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        # Imported here, not on the first frame's path.
        from pfstui.ui.render.collection_detail import TYPE_STYLE

        self._type_style = TYPE_STYLE
        self._rows = message.rows
        self._rebuild(self.query_one("#collection-filter", Input).value)

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self._set_status(f"[red]{escape(message.text)}[/]")

    def _set_status(self, markup: str) -> None:
        """The status line's own text (shown unless the working line is)."""
        self._status = markup
        if not self.working:
            self.query_one("#collections-status", Static).update(markup)

    @on(DetailLoaded)
    def _detail(self, message: DetailLoaded) -> None:
        if message.detail.row.name != self._wanted:
            return  # a slower answer for a collection the operator has already moved past
        self._shown, self._ranges_shown = message.detail, None
        self._show_detail()

    @on(RangesLoaded)
    def _ranges(self, message: RangesLoaded) -> None:
        if message.collection != self._wanted or self._shown is None:
            return
        from pfstui.ui.render.collection_detail import Ranges

        self._ranges_shown = Ranges(message.assocs, message.more)
        self._show_detail()

    def _show_detail(self) -> None:
        """Render the shown collection at the detail view's width (again after a resize)."""
        # Imported here: the Butler's value types are not needed for the first frame.
        from pfstui.ui.render.collection_detail import detail_view

        if self._shown is None:
            return
        scroll = self.query_one("#collection-detail", VerticalScroll)
        width = scroll.scrollable_content_region.width or 80
        renderable, self.detail_plain = detail_view(self._shown, self._ranges_shown, max(20, width))
        self.query_one("#collection-detail-body", Static).update(renderable)

    def on_resize(self) -> None:
        if self._shown is not None:
            self.call_after_refresh(self._show_detail)

    @on(Input.Changed, "#collection-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._rebuild(event.value)

    @on(Tree.NodeHighlighted)
    def _highlight(self, event: Tree.NodeHighlighted) -> None:
        if event.node.data:
            self._wanted = event.node.data
            self.load_detail(event.node.data)

    @on(Input.Submitted, "#collection-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.focus_main()

    def _rebuild(self, pattern: str) -> None:
        try:
            keep = matcher(pattern)
        except PatternError as exc:
            self.query_one("#collections-status", Static).update(Text(str(exc), "red"))
            return
        tree = self.query_one(Tree)
        tree.clear()
        by_name = {r.name: r for r in self._rows}
        shown = [r for r in self._rows if keep(r.name)]
        # A RUN named under its own output chain (u/me/bias/20250101T000000Z under u/me/bias) is shown
        # inside that chain; everything else is listed at the top, chains expandable.
        nested = {c for r in self._rows if r.type == "CHAINED" for c in r.children if c.startswith(r.name + "/")}
        roots = [r for r in shown if pattern.strip() or r.name not in nested]
        for row in sorted(roots, key=lambda r: r.name):
            self._add(tree.root, row, by_name, depth=0)
        self._set_status(escape(f"{len(shown)} of {len(self._rows)} " + (  # fits the tree's width at 80 columns
            f"match {pattern!r}" if pattern.strip() else "collections")))

    def _add(self, parent, row, by_name, depth: int) -> None:
        label = f"{escape(row.name)} [{self._type_style.get(row.type, 'white')}]{row.type}[/]"
        stamp = TIMESTAMP.search(row.name)
        if stamp and row.type == "RUN":
            d = stamp.group(1)
            label += f" [dim]{d[:4]}-{d[4:6]}-{d[6:8]} {d[9:11]}:{d[11:13]}:{d[13:15]}Z[/]"
        if row.children and depth < 8:
            node = parent.add(label, data=row.name, expand=False)
            for child in row.children:
                if child in by_name:
                    self._add(node, by_name[child], by_name, depth + 1)
        else:
            parent.add_leaf(label, data=row.name)

    def focus_main(self) -> None:
        self.query_one(Tree).focus()

    def action_focus_filter(self) -> None:
        self.query_one("#collection-filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#collection-filter", Input).value = ""  # Input.Changed rebuilds the tree

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":  # escape in the tree; else it goes on to the app (leave an input)
            box = next(self.query("#collection-filter").results(Input), None)
            return box is not None and bool(box.value.strip()) and not box.has_focus
        return True

    def action_refresh(self) -> None:
        self.refresh_all()

    def refresh_all(self) -> None:
        """Reload after a change to the registry (ours or anyone's): the caches are re-read on the lane too."""
        self.load(refresh=True)
