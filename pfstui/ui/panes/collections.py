"""Collections pane: the repository's collections as a tree, a filter, and the selected one's detail."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.markup import escape
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Static, Tree
from textual.worker import get_current_worker

from pfstui.ui.workers import WorkerErrors

TIMESTAMP = re.compile(r"/(\d{8}T\d{6})Z?$")


def matcher(pattern: str):
    """A name filter from what the operator typed: a glob when it has glob characters, else a regex/substring."""
    pattern = pattern.strip()
    if not pattern:
        return lambda name: True
    if any(ch in pattern for ch in "*?["):
        return lambda name: fnmatch.fnmatchcase(name, pattern)
    try:
        rx = re.compile(pattern)
    except re.error:
        return lambda name: pattern in name
    return lambda name: rx.search(name) is not None


class CollectionsPane(WorkerErrors, Widget):
    """Browse collections; details load in a worker thread (the Butler is never called on the UI thread)."""

    BINDINGS = [("slash", "focus_filter", "Filter"), ("r", "refresh", "Refresh")]

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

    def compose(self) -> ComposeResult:
        with Vertical(id="collections-left"):
            yield Input(placeholder="/ filter: glob (u/me/*) or regex", id="collection-filter")
            yield Tree("collections", id="collection-tree")
            yield Static("Loading collections…", id="collections-status", classes="status-line")
        with VerticalScroll(id="collection-detail"):
            yield Static("Select a collection to see its type, chain, dataset types and validity ranges.",
                         id="collection-detail-body")

    def on_mount(self) -> None:
        tree = next(self.query(Tree).results(Tree), None)
        if tree is None:  # the app closed while this pane was being mounted (after the first frame)
            return
        tree.show_root = False
        # After the first frame: the worker imports the Butler (over a second of CPU under the GIL).
        self.set_timer(0.15, self.load)

    # --- workers ---------------------------------------------------------------------------------------
    def gateway(self):
        if self._gateway is None:
            self._gateway = self._gateway_factory()
        return self._gateway

    @work(thread=True, exclusive=True, group="collections", exit_on_error=False, description="Cannot list collections")
    def load(self) -> None:
        rows = self.gateway().collections()
        if not get_current_worker().is_cancelled:
            self.post_message(self.Loaded(rows))

    @work(thread=True, exclusive=True, group="collection-detail", exit_on_error=False,
          description="Cannot read that collection")
    def load_detail(self, name: str) -> None:
        detail = self.gateway().collection_detail(name)
        self.post_message(self.DetailLoaded(detail))
        if detail.row.type == "CALIBRATION":
            assocs: list = []
            more = False
            for page in self.gateway().associations(name, page_size=500):
                assocs.extend(page)
                if len(assocs) >= 2000:  # enough for a screen; never load everything
                    more = True
                    break
            self.post_message(self.RangesLoaded(name, assocs, more))

    def worker_failed(self, worker, text: str) -> None:
        self.post_message(self.Failed(text))

    # --- handlers --------------------------------------------------------------------------------------
    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        from pfstui.ui.render.collection_detail import (
            TYPE_STYLE,  # not on the first frame's path
        )

        self._type_style = TYPE_STYLE
        self._rows = message.rows
        self._rebuild(self.query_one("#collection-filter", Input).value)

    @on(Failed)
    def _failed(self, message: Failed) -> None:
        self.query_one("#collections-status", Static).update(f"[red]{escape(message.text)}[/]")

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

    def _rebuild(self, pattern: str) -> None:
        keep = matcher(pattern)
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
        self.query_one("#collections-status", Static).update(Text(  # the pattern as typed, not markup
            f"{len(shown)} of {len(self._rows)} match {pattern!r}" if pattern.strip()
            else f"{len(self._rows)} collections"))

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

    def action_refresh(self) -> None:
        self.refresh_all()

    def refresh_all(self) -> None:
        """Reload after a change to the registry (ours or anyone's)."""
        if self._gateway is not None:
            invalidate = getattr(self._gateway, "invalidate", None)
            if invalidate is not None:
                invalidate()
        self.load()
        if self._wanted:
            self.load_detail(self._wanted)
