"""A live, virtualised view of one log file: the LOGS pane's widget (also the queue's side log).

Why this shape: a stage log can be gigabytes and grows by thousands of lines a second, and an operator
watches several at once over SSH.  So:

* :class:`LogView` is a ``ScrollView`` that renders only visible rows through ``render_line``, reading
  them from a :class:`pfstui.logfile.index.LogIndex` (backwards from the end first, a compact index
  built in the background), with an LRU of rendered rows (:mod:`pfstui.ui.render.log_lines`).  The UI
  thread reads only the rows on screen (from cached blocks of at most 128 KiB); opening, indexing,
  filtering and searching run in threads.
* One thread polls every view's file (:class:`~pfstui.ui.widgets.log_watcher.LogWatchHub`, one
  :class:`~pfstui.ui.widgets.log_watcher.LogWatcher` per view), never the shared worker pool, and each view
  posts at most ONE pending ``Updated`` message (a flag stays set until the UI has handled it): a slow
  UI coalesces batches instead of queueing them.
* Follow mode scrolls to the end on each batch (and hides the scrollbar, which would otherwise repaint
  every batch); scrolled away, a badge on the bottom row says "N new lines" and only that row repaints.
* ``/`` filter (regex; a leading ``!`` or the ``!`` key inverts), ``]``/``[`` next/previous ERROR or
  failed quantum, ``:`` go to line (``-N`` from the end), ``enter`` structured view of a record:
  :class:`~pfstui.ui.widgets.log_commands.LogCommands`.  Level colours through component classes
  (``logview--error`` etc., themable in TCSS).
* ``--long-log`` record heads are shown compact (``HH:MM:SS L logger: message``); ``c`` shows the full
  lines; the record view (``enter``) always has every field.

Use: mount ``LogView(path, title)``, or let :class:`pfstui.ui.panes.logs.LogsPanel` hold several.  Every
Binding has an ``id`` (``logs.*``) so the app can rebind keys with ``set_keymap``.

Measured (bench/logview.py, keypress-to-repaint while following 8 busy logs): the slow key presses were
full GC passes.  Each repainted row used to become cyclic garbage (Textual's strips cache themselves when
divided at their own width; see :class:`~pfstui.ui.render.log_lines.NoCache`) and the row caches were
rings of GC-tracked lists (see :mod:`pfstui.infra.lru`); with both gone, and the app freezing its
start-up objects (``pfstui.ui.app.settle_gc``), full passes are rare and short.  A cursor move repaints
its two rows and the status row only, and batches of new lines wait ``_INPUT_GRACE`` after a key so its
repaint goes out first.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from pfstui.logfile.index import LogIndex
from pfstui.logfile.search import FilterScan, FilterSnapshot, LineFilter
from pfstui.logfile.snapshot import LogSnapshot
from pfstui.ui.keymap import key_for
from pfstui.ui.render.log_lines import (
    MAX_CELLS,
    NO_CACHE,
    LogRows,
    error_row,
    note_strip,
    paint_row,
    role_styles,
    status_text,
    with_badge,
)
from pfstui.ui.widgets.log_commands import LogCommands
from pfstui.ui.widgets.log_watcher import LogWatcher, LogWatchHub
from pfstui.ui.widgets.quiet import set_border_subtitle, set_virtual_size

__all__ = ["LogView"]

#: After a key press in a log view, batches of new lines wait this long (seconds): the key's own repaint
#: goes out first, in a frame of its own, instead of sharing it with the repaint of every followed view.
_INPUT_GRACE = 0.06


class _ViewMessage(Message):
    """A message about one :class:`LogView` (its ``control``)."""

    def __init__(self, log_view: LogView) -> None:
        super().__init__()
        self.log_view = log_view

    @property
    def control(self) -> LogView:
        return self.log_view


class LogView(LogCommands, ScrollView, can_focus=True):
    """A live, virtualised view of one log file (see the module docstring)."""

    DEFAULT_CSS = """
    LogView {
        background: $surface;
        color: $text;
        border: round $panel-lighten-2;
        border-title-color: $text;
        border-subtitle-color: $text-muted;
        overflow-x: hidden;
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
        &:focus { border: round $accent; }
        /* Following, the view is pinned to the end: no scrollbar to repaint on every batch. */
        &.-following { scrollbar-size-vertical: 0; }
        & > .logview--cursor { background: $accent 30%; }
        & > .logview--critical { color: $error; text-style: bold reverse; }
        & > .logview--error { color: $error; }
        & > .logview--warning { color: $warning; }
        & > .logview--debug { color: $text-muted; text-style: dim; }
        & > .logview--failed { color: $error; text-style: bold; }
        & > .logview--match { text-style: bold underline; }
        & > .logview--badge { background: $warning; color: $background; text-style: bold; }
        & > .logview--note { color: $text-muted; text-style: italic; }
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "logview--cursor", "logview--critical", "logview--error", "logview--warning", "logview--debug",
        "logview--failed", "logview--match", "logview--badge", "logview--note",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "toggle_follow", "Follow", id="logs.follow"),
        Binding("slash", "filter", "Filter", id="logs.filter", tooltip="Filter the log's lines (regex; ! inverts)"),
        Binding("exclamation_mark", "invert_filter", "Invert filter", show=False, id="logs.filter_invert"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="logs.filter_clear"),
        # ] and [ (vim's next/previous thing): n is "no" (confirmations, rejecting an approval)
        Binding("right_square_bracket", "next_error", "Next error", id="logs.next_error",
                tooltip="Next ERROR or failed quantum"),
        Binding("left_square_bracket", "prev_error", "Prev error", show=False, id="logs.prev_error",
                tooltip="Previous ERROR or failed quantum"),
        # : as in vim and less; g is the first line, as in every list
        Binding("colon", "goto", "Go to line", id="logs.goto"),
        Binding("enter", "record", "Record", show=False, id="logs.record", tooltip="Fields of the record"),
        Binding("up,k", "cursor(-1)", "Up", show=False, id="logs.cursor_up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="logs.cursor_down"),
        Binding("pageup,b", "page(-1)", "Page up", show=False, id="logs.page_up"),
        Binding("pagedown,space", "page(1)", "Page down", show=False, id="logs.page_down"),
        Binding("home,g", "top", "Top", show=False, id="logs.top"),
        Binding("end,G", "bottom", "Bottom", show=False, id="logs.bottom", tooltip="Last line, following"),
        # arrows only, as in less: l opens a log (Queue), h is free
        Binding("left", "scroll_cols(-8)", "Left", show=False, id="logs.left"),
        Binding("right", "scroll_cols(8)", "Right", show=False, id="logs.right"),
        Binding("c", "toggle_compact", "Full/compact", show=False, id="logs.compact"),
    ]

    class Updated(Message, bubble=False):
        """Posted by the watcher thread: the file or an index/filter scan moved on (coalesced)."""

    class FollowChanged(_ViewMessage):
        """Follow mode was turned on or off."""

        def __init__(self, log_view: LogView, follow: bool) -> None:
            super().__init__(log_view)
            self.follow = follow

    class StatusChanged(_ViewMessage):
        """The one-line status (follow, position, filter, indexing) changed."""

        def __init__(self, log_view: LogView, status: str) -> None:
            super().__init__(log_view)
            self.status = status

    def __init__(
        self,
        path: str | Path,
        title: str | None = None,
        *,
        poll_interval: float = 0.2,
        follow: bool = True,
        compact: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.path = Path(path)
        self.title = title or self.path.name
        self._watcher = LogWatcher(self.path, poll_interval, post=self._post, on_missing=self._file_missing)
        self._follow = follow
        self._generation = -1
        self._snap: LogSnapshot | FilterSnapshot | None = None
        self._filter: LineFilter | None = None
        self.cursor = 0
        self._new_lines = 0
        self._width_scheduled = False
        #: The rendered rows; ``--long-log`` heads shown shortened when ``compact`` (``c`` toggles).
        self._rows = LogRows(self._wider, compact=compact)
        self._style_cache: dict[str, Style] | None = None
        self._rows_styles: dict[str, Style] | None = None  # the styles the cached rows were made with
        self._pending = threading.Event()
        self._stale = False
        self._last_vsize = 0.0
        self._status = ""
        self._note: str | None = None  # transient inline note (e.g. "no more errors")
        self._pending_goto: int | None = None
        #: A byte offset to show once the first snapshot exists (a failed quantum's line, from the queue).
        self._pending_offset: int | None = None
        self._pending_anchor: int | None = None  # byte offset to put the cursor on once the filter finds it
        self._searching = False
        #: Monotonic time of the last batch shown (benchmarks read it).
        self.last_update = 0.0
        self.border_title = Content(self.title)  # plain text, not markup

    # -- public state ----------------------------------------------------------------------------

    @property
    def follow(self) -> bool:
        return self._follow

    @property
    def new_lines(self) -> int:
        """Lines arrived since follow was turned off (the badge)."""
        return self._new_lines

    @property
    def rows(self) -> int:
        return self._snap.rows if self._snap is not None else 0

    @property
    def index(self) -> LogIndex | None:
        return self._watcher.index

    @property
    def problem(self) -> str | None:
        """Why the file is not shown (missing, unreadable), or None."""
        return self._watcher.problem

    @property
    def poll_interval(self) -> float:
        """Seconds between two looks at the file (the watcher's clock)."""
        return self._watcher.poll_interval

    @property
    def line_filter(self) -> LineFilter | None:
        return self._filter

    @property
    def status(self) -> str:
        return self._status

    def row_text(self, row: int) -> str:
        """Text of a view row (a filtered view's rows are the matching lines)."""
        return self._row_info(row)[1]

    def visible_rows(self) -> list[str]:
        """Texts of the rows currently in the viewport (tests and benchmarks use it)."""
        top = int(self.scroll_y)
        return [self.row_text(r) for r in range(top, min(self.rows, top + self._page()))]

    # -- lifecycle -------------------------------------------------------------------------------

    def on_mount(self) -> None:
        super().on_mount()
        self.set_class(self._follow, "-following")
        self._watch()

    def on_unmount(self) -> None:
        self._watcher.stop.set()

    def close(self) -> None:
        """Stop the watcher thread and close the file (the panel calls it before removing the view)."""
        self._watcher.stop.set()

    def _page(self) -> int:
        return max(1, self.container_size.height - self.scrollbar_size_horizontal)

    # -- the watcher thread ----------------------------------------------------------------------

    def _watch(self) -> None:
        """Hand the watcher to the one log-watching thread (:class:`LogWatchHub`): it posts
        :class:`Updated` batches; closing the view sets ``stop`` and the hub drops it."""
        warm = max(200, 3 * max(24, self.container_size.height))
        LogWatchHub.shared().add(self._watcher, warm=warm)

    def _post(self) -> bool:
        """Post one Updated unless one is still pending (back-pressure: never queue batches)."""
        if self._pending.is_set():
            return False
        self._pending.set()
        try:
            self.post_message(self.Updated())
        except Exception:  # the app is closing
            return False
        return True

    def _file_missing(self) -> bool:
        """Called by the watcher thread: the path is gone; say so unless another note is up."""
        if self._note is not None:
            return False
        self._note = "the file was deleted or moved: showing what was read"
        return True

    # -- applying batches (UI thread) ------------------------------------------------------------

    #: Monotonic time of the last key press in any log view (see _INPUT_GRACE).
    _input_at: ClassVar[float] = 0.0

    def on_key(self, event: events.Key) -> None:
        LogView._input_at = time.monotonic()

    def on_log_view_updated(self, event: Updated) -> None:
        event.stop()
        if not self.region:
            self._pending.clear()
            self._stale = True  # hidden: catch up when shown
            # ... or once laid out: a view just mounted has no region yet, and its Show may already be past
            # (a finished log posts nothing more, and showed no line until the next index step).
            self.call_after_refresh(self._catch_up)
            return
        wait = LogView._input_at + _INPUT_GRACE - time.monotonic()
        if wait > 0:
            # A key was just pressed: let its repaint go first.  The batch stays pending (the watcher
            # posts no other meanwhile), so nothing is lost, only coalesced.
            self.set_timer(wait, self._apply_batch)
            return
        self._apply_batch()

    def _apply_batch(self) -> None:
        self._pending.clear()
        if not self.is_mounted:
            return
        if not self.region:
            self._stale = True
            return
        self._resync()

    def on_show(self) -> None:
        self._catch_up()

    def _catch_up(self) -> None:
        if self._stale and self.region and self.is_mounted:
            self._stale = False
            self._resync()

    def _take_snapshot(self) -> LogSnapshot | FilterSnapshot | None:
        watcher = self._watcher
        index = watcher.index
        if index is None:
            return None
        if self._filter is not None:
            if watcher.scan is None or watcher.scan.generation != index.generation:
                watcher.scan = FilterScan(index, self._filter)
            return watcher.scan.snapshot()
        return index.snapshot(min_tail=0)

    @staticmethod
    def _shift(old: LogSnapshot | FilterSnapshot | None, new: LogSnapshot | FilterSnapshot) -> int:
        """Rows inserted above the old first row; view positions move down by it."""
        if old is None or type(old) is not type(new):
            return 0
        return new.rows_inserted_since(old)  # type: ignore[arg-type]

    def _resync(self, *, rebuild: bool = False) -> None:
        """Take a new snapshot and move the view: follow the end, or keep its lines and count new ones."""
        index = self._watcher.index
        if index is not None and index.generation != self._generation:
            # First open, or the file was truncated/replaced: start again at the end.
            self._generation = index.generation
            self._snap = None
            self._watcher.scan = None
            self._rows.restart()
            self._new_lines = 0
            rebuild = True
        old = None if rebuild else self._snap
        new = self._take_snapshot()
        if new is None:
            self._snap = None
            self.virtual_size = Size(0, 0)
            self._update_status()
            self.refresh()
            return
        shift = self._shift(old, new)
        appended = new.rows - (old.rows if old is not None else new.rows) - shift
        self._snap = new
        self.last_update = time.monotonic()
        rows = new.rows
        if self._follow:
            self.cursor = max(0, rows - 1)
            self._set_virtual_size(rows)
            self.scroll_to(y=self.max_scroll_y, animate=False)
            self.refresh()
        else:
            if shift:
                self.cursor += shift
                self._set_virtual_size(rows)
                self.scroll_to(y=self.scroll_y + shift, animate=False)
                self.refresh()
            else:
                self._set_virtual_size(rows, throttle=not rebuild)
            self.cursor = min(self.cursor, max(0, rows - 1))
            if appended > 0:
                self._new_lines += appended
                self._refresh_badge()
        self._reach_pending(new)
        if not self._follow and isinstance(new, LogSnapshot) and not new.exact and self.scroll_y < self._page():
            self._ask_back(self._page())
        self._update_status()

    def _set_virtual_size(self, rows: int, *, throttle: bool = False) -> None:
        """Set the scrollable size.  Paused views update it at most once a second: a change repaints the
        whole widget, and the rows it adds are below the viewport anyway."""
        width = min(self._rows.max_width, MAX_CELLS)
        now = time.monotonic()
        size = Size(width, rows)
        if size == self.virtual_size:
            return
        if throttle and rows > self.virtual_size.height and now - self._last_vsize < 1.0:
            return
        self._last_vsize = now
        set_virtual_size(self, size)

    def _ask_back(self, page: int) -> None:
        """In tail mode near the top: ask the watcher for lines further back (a few pages' worth)."""
        self._watcher.want_back = max(self._watcher.want_back, 4 * page + 200)

    def _refresh_badge(self) -> None:
        page = self._page()
        self.refresh_line(int(self.scroll_y) + page - 1)

    def _update_status(self) -> None:
        watcher = self._watcher
        status = status_text(follow=self._follow, cursor=self.cursor, snap=self._snap, index=watcher.index,
                             line_filter=self._filter, scan=watcher.scan, searching=self._searching,
                             problem=watcher.problem)
        if status != self._status:
            self._status = status
            set_border_subtitle(self, status)  # repaints that row only
            self.post_message(self.StatusChanged(self, status))

    # -- rendering -------------------------------------------------------------------------------

    def _row_info(self, row: int) -> tuple[Any, str]:
        snap = self._snap
        if snap is None:
            raise IndexError(row)
        if isinstance(snap, FilterSnapshot):
            off = snap.offset(row)
            return (self._generation, "f", off), snap.text(row)
        start, stop = snap.span(row)
        return (self._generation, start, stop), snap.text(row)

    def _wider(self, width: int) -> None:
        """A row wider than any before was rendered: widen the scrollable area after this frame."""
        if not self._width_scheduled and min(width, MAX_CELLS) > self.virtual_size.width:
            self._width_scheduled = True
            self.call_after_refresh(self._apply_width)

    def _styles(self) -> dict[str, Style]:
        """Rich styles per role, computed once per style change (``rich_style`` walks the DOM: costly)."""
        styles = self._style_cache
        if styles is None:
            styles = self._style_cache = role_styles(self)
            if styles != self._rows_styles:
                # The rows cached so far carry the old styles.  A style update that changes no colour
                # (the -following class, focus) keeps them: no row is rendered again for it.
                self._rows.restyle()
                self._rows_styles = styles
        return styles

    def render_lines(self, crop):  # type: ignore[no-untyped-def]
        strips = super().render_lines(crop)
        for strip in strips:
            # See NoCache: no self-referencing divide cache, so a replaced row is freed at once.
            strip._divide_cache = NO_CACHE  # type: ignore[assignment]
        return strips

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        row = scroll_y + y
        styles = self._styles()  # first: a change of styles drops the cached rows
        snap = self._snap
        if snap is None or row >= snap.rows:
            problem = self._watcher.problem
            if y == 0 and (problem or snap is None or snap.rows == 0):
                # "(empty log)" only once a read found no line: until the first read is shown, "loading…".
                note = problem or ("loading…" if snap is None else "no matching lines yet"
                                   if self._filter is not None else "(empty log)")
                strip = note_strip(note, width, styles)
            else:
                strip = Strip.blank(width, styles["base"])
        else:
            if not self._watcher.first_paint.is_set():
                self._watcher.first_paint.set()
            try:
                r = self._rows.render(row, self._row_info, styles, self._filter)
            except Exception as exc:  # a read error must never become a traceback on screen
                r = error_row(exc, styles)
            strip = paint_row(r, width, scroll_x, styles, row == self.cursor and not self._follow)
        if y == self._page() - 1:
            label = None
            if not self._follow and self._new_lines:
                label = (f" ↓ {self._new_lines:,} new line{'s' if self._new_lines != 1 else ''} · "
                         f"{key_for(self, 'logs.follow')} follow ")
            elif self._note:
                label = f" {self._note} "
            if label is not None:
                strip = with_badge(strip, label, width, styles["badge"])
        return strip

    def _apply_width(self) -> None:
        """A wider line was rendered: widen the scrollable area (once per frame, not during render)."""
        self._width_scheduled = False
        self._set_virtual_size(self.rows)
        if self._follow:
            self.scroll_to(y=self.max_scroll_y, animate=False)

    def on_resize(self, event: events.Resize) -> None:
        if self._follow and self._snap is not None:
            self.call_after_refresh(self._scroll_to_end)

    def _scroll_to_end(self) -> None:
        if self._follow:
            self.scroll_to(y=self.max_scroll_y, animate=False)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_cache = None  # recomputed on the next render; the rows are dropped if they changed

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # Any move up away from the end (wheel, scrollbar drag, keys) stops following.
        if self._follow and new_value < old_value and new_value < self.max_scroll_y:
            self._set_follow(False)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        # The wheel brought the view back to the very end: follow again (as `tail -f` users expect).
        if not self._follow and self._snap is not None and self.is_vertical_scroll_end:
            self._set_follow(True)

    def _set_follow(self, follow: bool) -> None:
        if follow == self._follow:
            return
        self._follow = follow
        self.set_class(follow, "-following")
        if follow:
            self._new_lines = 0
            self.cursor = max(0, self.rows - 1)
            self._set_virtual_size(self.rows)
            self.scroll_to(y=self.max_scroll_y, animate=False)
        self.refresh()
        self._update_status()
        self.post_message(self.FollowChanged(self, follow))

    # -- cursor & navigation ---------------------------------------------------------------------

    def _move_cursor(self, row: int, *, center: bool = False) -> None:
        rows = self.rows
        if rows == 0:
            return
        row = max(0, min(rows - 1, row))
        old = self.cursor
        if row < rows - 1 or not self._follow:
            if self._follow:
                self._set_follow(False)
        self.cursor = row
        self._note = None
        self._set_virtual_size(rows)
        page = self._page()
        top = int(self.scroll_y)
        if center and not top <= row < top + page:
            self.scroll_to(y=max(0, row - page // 2), animate=False)
        elif row < top:
            self.scroll_to(y=row, animate=False)
        elif row >= top + page:
            self.scroll_to(y=row - page + 1, animate=False)
        self.refresh_line(old)
        self.refresh_line(row)
        self._refresh_badge()
        snap = self._snap
        if isinstance(snap, LogSnapshot) and not snap.exact and row < page:
            self._ask_back(page)
        self._update_status()

    @property
    def compact(self) -> bool:
        """Whether ``--long-log`` heads are shown shortened (:func:`.formats.compact_line`)."""
        return self._rows.compact

    def on_click(self, event: events.Click) -> None:
        if self._snap is None:
            return
        offset = event.get_content_offset(self)
        if offset is not None:
            self._move_cursor(int(self.scroll_y) + offset.y)
