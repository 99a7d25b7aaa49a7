"""The LOGS pane: tabs of live log views, shown one, two or four at a time.

Why: an operator follows several running stages at once, over SSH.  :class:`LogsPanel` holds one
:class:`~pfstui.ui.widgets.log_view.LogView` per stage log; hidden views keep their watcher (cheap) but
do not repaint until shown, and ``v`` cycles a split of 1, 2 or 4 views.

Use: ``yield LogsPanel()`` in a pane, then ``await panel.add_log(path, title)`` for each running stage and
``await panel.remove_log(path)`` when done.  Every Binding has an ``id`` (``logs.*``) so the app can rebind
keys with ``set_keymap``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Static, Tab, Tabs

from pfstui.ui.widgets.log_view import LogView

__all__ = ["LogsPanel"]


class LogsPanel(Vertical):
    """Tabs of :class:`LogView` (one per running stage log) shown one, two or four at a time."""

    DEFAULT_CSS = """
    LogsPanel { height: 1fr; }
    LogsPanel > Tabs { height: 2; }
    LogsPanel > #log-grid { layout: grid; height: 1fr; grid-size: 1 1; }
    LogsPanel > #log-grid.split-2 { grid-size: 1 2; }
    LogsPanel > #log-grid.split-4 { grid-size: 2 2; }
    LogsPanel > #log-grid > LogView { height: 1fr; width: 1fr; }
    LogsPanel > #logs-empty { color: $text-muted; padding: 1 2; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v", "cycle_split", "Split 1/2/4", id="logs.split", tooltip="Show 1, 2 or 4 logs at once"),
        Binding("greater_than_sign", "tab(1)", "Next log", id="logs.next_tab"),
        Binding("less_than_sign", "tab(-1)", "Prev log", show=False, id="logs.prev_tab"),
        # ctrl+w closes a tab as in a browser; x is the Queue's failures (one meaning per key)
        Binding("ctrl+w", "close_log", "Close log", show=False, id="logs.close", tooltip="Close the shown log"),
    ]

    SPLITS = (1, 2, 4)

    class LogRemoved(Message):
        """A log was closed from the panel (``ctrl+w``)."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def __init__(self, *, split: int = 1, poll_interval: float = 0.2, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        if split not in self.SPLITS:
            raise ValueError(f"split must be one of {self.SPLITS}, not {split}")
        self._split = split
        self.poll_interval = poll_interval
        self._views: dict[str, LogView] = {}  # tab id -> view, in tab order
        self._counter = 0

    def compose(self) -> ComposeResult:
        yield Tabs(id="log-tabs")
        yield Container(id="log-grid", classes=f"split-{self._split}")
        yield Static("No stage logs open: running stages add theirs here.", id="logs-empty")

    @property
    def split(self) -> int:
        return self._split

    @property
    def views(self) -> list[LogView]:
        return list(self._views.values())

    def view_for(self, path: str | Path) -> LogView | None:
        p = Path(path)
        return next((v for v in self._views.values() if v.path == p), None)

    @property
    def active_view(self) -> LogView | None:
        tabs = self.query_one(Tabs)
        return self._views.get(tabs.active) if tabs.active else None

    async def add_log(self, path: str | Path, title: str | None = None, *, activate: bool = True) -> LogView:
        """Open ``path`` in a new tab (or return the tab already showing it)."""
        existing = self.view_for(path)
        if existing is not None:
            if activate:
                self._activate(existing)
            return existing
        self._counter += 1
        tab_id = f"log-{self._counter}"
        view = LogView(path, title, poll_interval=self.poll_interval, id=f"{tab_id}-view")
        view.display = False
        self._views[tab_id] = view
        await self.query_one("#log-grid", Container).mount(view)
        tabs = self.query_one(Tabs)
        await tabs.add_tab(Tab(Content(view.title), id=tab_id))  # plain text, not markup
        self.query_one("#logs-empty").display = False
        if activate or len(self._views) == 1:
            tabs.active = tab_id
        self._layout_views()
        return view

    async def remove_log(self, path_or_view: str | Path | LogView) -> bool:
        """Close a log's tab and stop its watcher; False if it was not open."""
        view = path_or_view if isinstance(path_or_view, LogView) else self.view_for(path_or_view)
        if view is None:
            return False
        tab_id = next(k for k, v in self._views.items() if v is view)
        view.close()
        del self._views[tab_id]
        await self.query_one(Tabs).remove_tab(tab_id)
        await view.remove()
        self.query_one("#logs-empty").display = not self._views
        self._layout_views()
        return True

    def focus_main(self) -> None:
        """Give the keyboard to the log being shown (the app calls this when the Logs pane is activated)."""
        view = self.active_view
        if view is not None:
            view.focus()

    def set_split(self, split: int) -> None:
        if split not in self.SPLITS:
            raise ValueError(f"split must be one of {self.SPLITS}, not {split}")
        self._split = split
        grid = self.query_one("#log-grid", Container)
        for s in self.SPLITS:
            grid.set_class(s == split, f"split-{s}")
        self._layout_views()

    def action_cycle_split(self) -> None:
        i = self.SPLITS.index(self._split)
        self.set_split(self.SPLITS[(i + 1) % len(self.SPLITS)])

    def action_tab(self, delta: int) -> None:
        keys = list(self._views)
        if not keys:
            return
        tabs = self.query_one(Tabs)
        i = keys.index(tabs.active) if tabs.active in keys else 0
        tabs.active = keys[(i + delta) % len(keys)]

    async def action_close_log(self) -> None:
        view = self.active_view
        if view is not None:
            path = view.path
            await self.remove_log(view)
            self.post_message(self.LogRemoved(path))

    def _activate(self, view: LogView) -> None:
        for k, v in self._views.items():
            if v is view:
                self.query_one(Tabs).active = k

    @on(Tabs.TabActivated)
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        self._layout_views()
        view = self.active_view
        if view is not None and self.region:  # not while hidden: the focus would pull the app to the Logs pane
            view.focus()

    def _layout_views(self) -> None:
        """Show the active view and the next ``split - 1`` ones (in tab order); hide the rest."""
        keys = list(self._views)
        tabs = self.query_one(Tabs)
        if not keys:
            return
        start = keys.index(tabs.active) if tabs.active in keys else 0
        n = min(self._split, len(keys))
        shown = {keys[(start + i) % len(keys)] for i in range(n)}
        grid = self.query_one("#log-grid", Container)
        order = [keys[(start + i) % len(keys)] for i in range(n)]
        for k, v in self._views.items():
            v.display = k in shown
        # Keep the grid order: active first.
        for k in reversed(order):
            view = self._views[k]
            if grid.children and grid.children[0] is not view:
                grid.move_child(view, before=0)
