"""The LOGS pane building blocks: a virtualised live log view and a panel of several of them.

Why this shape: a stage log can be gigabytes and grows by thousands of lines a second, and an operator
watches several at once over SSH.  So:

* :class:`LogView` is a ``ScrollView`` that renders only visible rows through ``render_line``, reading
  them from a :class:`pfstui.logfile.index.LogIndex` (backwards from the end first, a compact index
  built in the background), with an LRU of rendered rows.  The UI thread reads only the rows on screen
  (from cached blocks of at most 128 KiB); opening, indexing, filtering and searching run in threads.
* One watcher thread per view polls its file (default 5 times a second, no inotify), refreshes the index,
  advances the background index and the filter scan, and posts at most ONE pending ``Updated`` message
  (a flag stays set until the UI has handled it): a slow UI coalesces batches instead of queueing them.
  Watchers wake on a common clock, so the batches of all visible views land in one frame.
* Follow mode scrolls to the end on each batch (and hides the scrollbar, which would otherwise repaint
  every batch); scrolled away, a badge on the bottom row says "N new lines" and only that row repaints.
* ``/`` filter (regex; a leading ``!`` or the ``!`` key inverts), ``n``/``N`` (``]``/``[``) next/previous
  ERROR or failed quantum, ``g`` go to line (``-N`` from the end), ``enter`` structured view of a record
  (``--log-file X.json`` records and text heads), level colours through component classes
  (``logview--error`` etc., themable in TCSS).
* ``--long-log`` record heads are shown compact (``HH:MM:SS L logger: message``, :func:`compact_line`);
  ``c`` shows the full lines; the record view (``enter``) always has every field.
* :class:`LogsPanel`: tabs of LogViews plus a split of 2 or 4 at once (``s`` cycles 1/2/4); hidden views
  keep their watcher (cheap) but do not repaint until shown.

Use: ``yield LogsPanel()`` in a pane, then ``await panel.add_log(path, title)`` for each running stage and
``await panel.remove_log(path)`` when done; or mount a single ``LogView(path, title)``.
Every Binding has an ``id`` (``logs.*``) so the app can rebind keys with ``set_keymap``.

Measured (bench/logview.py, keypress-to-repaint while following 8 busy logs): the slow key presses were
full GC passes.  Each repainted row used to become cyclic garbage (Textual's strips cache themselves when
divided at their own width; see :class:`_NoCache`) and the row caches were rings of GC-tracked lists (see
:class:`_LRU`); with both gone, and the app freezing its start-up objects (``pfstui.ui.app.settle_gc``),
full passes are rare and short.  A cursor move repaints its two rows and the status row only, and batches
of new lines wait ``_INPUT_GRACE`` after a key so its repaint goes out first.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from rich.cells import cell_len
from rich.console import Group
from rich.pretty import Pretty
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical, VerticalScroll
from textual.geometry import Region, Size
from textual.message import Message
from textual.screen import ModalScreen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input, Label, Static, Tab, Tabs
from textual.worker import get_current_worker

from pfstui.logfile.index import (
    ATTENTION_RE,
    FilterError,
    FilterScan,
    FilterSnapshot,
    LineFilter,
    LogIndex,
    LogIndexError,
    LogSnapshot,
    detect_level,
    is_attention,
    is_failed_quantum,
    parse_record,
    search,
)

__all__ = ["LogPrompt", "LogView", "LogsPanel", "RecordScreen", "compact_line"]

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_MISSING = object()
#: Rows looked back to colour a continuation line (a traceback) like its record head.
_LEVEL_LOOKBACK = 64
#: Longest rendered line (cells); longer lines are cut (the full line is in the record view).
_MAX_CELLS = 4000
_LEVEL_STYLE = {"CRITICAL": "critical", "ERROR": "error", "WARNING": "warning", "DEBUG": "debug", "TRACE": "debug",
                "VERBOSE": "debug"}
#: A ``--long-log`` record head, ``LEVEL asctime name (MDC label)(file:line) - message`` (the layout that
#: ``pfstui.pipetask_log.parser`` parses, daf_butler ``cliLog``): its prefix up to the message.
_LONG_PREFIX = re.compile(
    r"(CRITICAL|FATAL|ERROR|WARNING|WARN|INFO|VERBOSE|DEBUG|TRACE) (\S+) (\S+) \(.*?\)\([^()]*?:\d+\) - "
)


def compact_line(text: str) -> str:
    """A ``--long-log`` record head shortened for the screen: ``HH:MM:SS L logger: message``.

    Why: the long prefix (``INFO 2026-11-25T12:00:00.123+00:00 lsst.pipe.base.mp_graph_executor
    (isr:{instrument: 'PFS', ...})(mp_graph_executor.py:757) - ``) fills most of an 80-column terminal
    before the message starts.  The level stays as its letter (and the row's colour), the logger as its
    last component; the date, MDC label and source line are dropped here and shown in the record view
    (``enter``).  Any other line (default format, JSON, continuation lines) is returned unchanged.
    """
    if text[:1] not in "CFEWIVDT":
        return text
    m = _LONG_PREFIX.match(text)
    if m is None:
        return text
    level, when, name = m.group(1, 2, 3)
    if len(when) >= 19 and when[10] in "T " and when[13] == ":":
        when = when[11:19]
    return f"{when} {level[0]} {name.rpartition('.')[2]}: {text[m.end():]}"


class _Row(NamedTuple):
    """A rendered row: its segments and cell width, or (``segments`` None) ``fast``, its text when it is a
    single ASCII segment in ``style`` — one tracked object per cached row, which keeps GC passes short."""

    segments: list[Segment] | None
    width: int
    fast: str | None
    style: Style


class _NoCache:
    """Stands in for a ``Strip``'s divide cache on the lines a LogView hands to the compositor.

    Why: Textual's compositor calls ``strip.divide([width])`` on every line it paints, and a strip
    divided at its own width caches ``[self]`` in itself — a reference cycle.  Each repainted row thus
    became cyclic garbage that only a full GC pass frees; following 8 busy logs, those passes (30-60 ms
    of CPU each, every few seconds) were most of the slow key presses.  Without the cycle a replaced row
    is freed at once by reference counting.  Dividing at the full width is trivial, so nothing is lost.
    """

    __slots__ = ()

    def get(self, key: object, default: object = None) -> object:
        return default

    def __setitem__(self, key: object, value: object) -> None:
        pass


_NO_CACHE = _NoCache()

#: After a key press in a log view, batches of new lines wait this long (seconds): the key's own repaint
#: goes out first, in a frame of its own, instead of sharing it with the repaint of every followed view.
_INPUT_GRACE = 0.06


class _LRU:
    """A small LRU of rendered rows / row levels (UI thread only).

    Why not ``textual.cache.LRUCache``: it links its entries in a ring of Python lists, one GC-tracked
    object per entry, and ``clear()`` turns the ring into cyclic garbage; an ``OrderedDict`` keeps its
    links in C, so a busy view adds nothing for the garbage collector to walk.
    """

    __slots__ = ("_data", "_maxsize")

    def __init__(self, maxsize: int) -> None:
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._maxsize = maxsize

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            value = self._data[key]
        except KeyError:
            return default
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        data = self._data
        data[key] = value
        data.move_to_end(key)
        if len(data) > self._maxsize:
            data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()


def _sanitize(text: str) -> str:
    if "\t" in text:
        text = text.expandtabs(4)
    return _CONTROL.sub("\ufffd", text) if _CONTROL.search(text) else text


# --------------------------------------------------------------------------------------------------
# Modal helpers: a one-line prompt (filter, go to line) and the structured record view
# --------------------------------------------------------------------------------------------------


class LogPrompt(ModalScreen[str | None]):
    """A one-line prompt at the bottom of the screen; ``validate`` returning a message keeps it open."""

    DEFAULT_CSS = """
    LogPrompt {
        align: center bottom;
        background: $background 20%;
    }
    LogPrompt > Vertical {
        height: auto;
        width: 100%;
        background: $panel;
        border-top: tall $accent;
        padding: 0 1;
    }
    LogPrompt Label { width: 100%; color: $text-muted; }
    LogPrompt #prompt-error { color: $error; height: auto; }
    LogPrompt Input { border: none; height: 1; padding: 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="logs.prompt.cancel"),
    ]

    def __init__(self, label: str, *, value: str = "", placeholder: str = "", validate=None) -> None:
        super().__init__()
        self._label = label
        self._value = value
        self._placeholder = placeholder
        self._validate = validate

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._label)
            yield Input(value=self._value, placeholder=self._placeholder, id="prompt-input")
            yield Static("", id="prompt-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value
        if self._validate is not None:
            problem = self._validate(value)
            if problem:
                self.query_one("#prompt-error", Static).update(problem)
                return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class RecordScreen(ModalScreen[None]):
    """The fields of one log record, pretty-printed (JSON records show every field they carry)."""

    DEFAULT_CSS = """
    RecordScreen { align: center middle; background: $background 40%; }
    RecordScreen > VerticalScroll {
        width: 90%;
        height: 80%;
        background: $panel;
        border: round $accent;
        padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,enter", "close", "Close", id="logs.record.close"),
    ]

    #: Field order shown first; the rest follow alphabetically.
    ORDER = ("levelname", "asctime", "name", "message", "MDC", "filename", "lineno", "funcName", "pathname",
             "process", "processName", "levelno", "exc_info")

    def __init__(self, kind: str, fields: dict[str, Any], title: str = "") -> None:
        super().__init__()
        self.kind = kind
        self.fields = fields
        self._title = title

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        keys = [k for k in self.ORDER if k in self.fields] + sorted(k for k in self.fields if k not in self.ORDER)
        for key in keys:
            value = self.fields[key]
            if isinstance(value, str):
                cell: Any = Text(value)
            elif isinstance(value, dict | list):
                cell = Pretty(value) if value else Text("{}" if isinstance(value, dict) else "[]", style="dim")
            else:
                cell = Text(json.dumps(value))
            table.add_row(key, cell)
        with VerticalScroll() as vs:
            vs.border_title = f"{self._title} — {self.kind} record"
            vs.border_subtitle = "esc close"
            yield Static(Group(table), id="record-fields")

    def action_close(self) -> None:
        self.dismiss(None)


# --------------------------------------------------------------------------------------------------
# The log view
# --------------------------------------------------------------------------------------------------


class LogView(ScrollView, can_focus=True):
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
        Binding("slash", "filter", "Filter", id="logs.filter"),
        Binding("exclamation_mark", "invert_filter", "Invert filter", show=False, id="logs.filter_invert"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="logs.filter_clear"),
        Binding("n,right_square_bracket", "next_error", "Next error", id="logs.next_error"),
        Binding("N,left_square_bracket", "prev_error", "Prev error", show=False, id="logs.prev_error"),
        Binding("g", "goto", "Go to line", id="logs.goto"),
        Binding("enter", "record", "Record", show=False, id="logs.record"),
        Binding("up,k", "cursor(-1)", "Up", show=False, id="logs.cursor_up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="logs.cursor_down"),
        Binding("pageup,b", "page(-1)", "Page up", show=False, id="logs.page_up"),
        Binding("pagedown,space", "page(1)", "Page down", show=False, id="logs.page_down"),
        Binding("home", "top", "Top", show=False, id="logs.top"),
        Binding("end,G", "bottom", "End", show=False, id="logs.bottom"),
        Binding("left,h", "scroll_cols(-8)", "Left", show=False, id="logs.left"),
        Binding("right,l", "scroll_cols(8)", "Right", show=False, id="logs.right"),
        Binding("c", "toggle_compact", "Full/compact", show=False, id="logs.compact"),
    ]

    class Updated(Message, bubble=False):
        """Posted by the watcher thread: the file or an index/filter scan moved on (coalesced)."""

    class FollowChanged(Message):
        """Follow mode was turned on or off."""

        def __init__(self, log_view: LogView, follow: bool) -> None:
            super().__init__()
            self.log_view = log_view
            self.follow = follow

        @property
        def control(self) -> LogView:
            return self.log_view

    class StatusChanged(Message):
        """The one-line status (follow, position, filter, indexing) changed."""

        def __init__(self, log_view: LogView, status: str) -> None:
            super().__init__()
            self.log_view = log_view
            self.status = status

        @property
        def control(self) -> LogView:
            return self.log_view

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
        self.poll_interval = poll_interval
        self._follow = follow
        #: Show ``--long-log`` heads shortened (see :func:`compact_line`); ``c`` toggles.
        self._compact = compact
        self._index: LogIndex | None = None
        self._problem: str | None = None
        self._generation = -1
        self._snap: LogSnapshot | FilterSnapshot | None = None
        self._filter: LineFilter | None = None
        self._fscan: FilterScan | None = None
        self.cursor = 0
        self._new_lines = 0
        self._max_width = 0
        self._width_scheduled = False
        self._style_cache: dict[str, Style] | None = None
        self._rows_styles: dict[str, Style] | None = None  # the styles the cached rows were made with
        self._strips = _LRU(512)
        self._levels = _LRU(2048)
        self._stop = threading.Event()
        self._pending = threading.Event()
        self._first_paint = threading.Event()  # set once rows are painted: background work may start
        self._want_back = 0  # lines the UI asks the watcher to read backwards (tail mode)
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
        self.border_title = self.title

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
        return self._index

    @property
    def problem(self) -> str | None:
        """Why the file is not shown (missing, unreadable), or None."""
        return self._problem

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
        self._stop.set()

    def close(self) -> None:
        """Stop the watcher thread and close the file (the panel calls it before removing the view)."""
        self._stop.set()

    def _page(self) -> int:
        return max(1, self.container_size.height - self.scrollbar_size_horizontal)

    # -- the watcher thread ----------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="logview-watch", description="log watcher")
    def _watch(self) -> None:
        """Poll the file, refresh the index, advance the background index and filter; post one batch.

        Never raises: a read error becomes the view's inline message and the file is reopened later.
        """
        worker = get_current_worker()
        index: LogIndex | None = None
        last_problem: str | None = None
        last_post = 0.0
        dirty = False  # a change not yet announced to the UI
        warm = max(200, 3 * max(24, self.container_size.height))
        try:
            while not self._stop.is_set() and not worker.is_cancelled:
                try:
                    if index is None:
                        try:
                            index = LogIndex(self.path)
                        except LogIndexError as exc:
                            if str(exc) != last_problem:
                                last_problem = self._problem = str(exc)
                                self._post()
                            self._stop.wait(max(self.poll_interval, 0.5))
                            continue
                        if not index.indexed:
                            index.extend_tail(warm)
                        index.tail_lines(min(warm, 100))  # warm the line cache for the first screen
                        self._index, self._problem, last_problem = index, None, None
                        self._post()
                        last_post = time.monotonic()
                        continue
                    busy = False
                    changed = False
                    r = index.refresh()
                    if r.missing and self._note is None:
                        self._note = "the file was deleted or moved: showing what was read"
                        changed = True
                    if r.reset and not index.indexed:
                        index.extend_tail(warm)  # a new file: its last screen first, again
                    if r.changed or r.more:
                        changed = True
                        busy = busy or r.more
                    if self._want_back and not index.indexed:
                        n, self._want_back = self._want_back, 0
                        if index.extend_tail(n, max_bytes=64 * 1024 * 1024):
                            changed = True
                    if not index.indexed:
                        if not self._first_paint.is_set():
                            # The last screen first: indexing competes for the GIL with the first paint.
                            self._first_paint.wait(1.0)
                            self._stop.wait(0.05)
                        index.index_step()
                        busy = True
                        changed = True
                    scan = self._fscan
                    if scan is not None and scan.generation == index.generation:
                        before = len(scan)
                        if not scan.step():
                            busy = True
                        changed = changed or len(scan) != before or r.changed
                except Exception as exc:  # noqa: BLE001 - shown inline, then the file is reopened
                    self._problem = f"cannot read {self.path}: {exc}; retrying"
                    if index is not None:
                        index.close()
                    index = None
                    self._post()
                    self._stop.wait(1.0)
                    continue
                dirty = dirty or changed
                now = time.monotonic()
                if dirty and (not busy or now - last_post >= self.poll_interval):
                    if self._post():
                        last_post = now
                        dirty = False
                if busy:
                    self._stop.wait(0.0005)
                else:
                    # Wake on a common clock: every view's batch lands in the same frame.
                    self._stop.wait(self.poll_interval - time.monotonic() % self.poll_interval)
        finally:
            if index is not None:
                index.close()

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
        if self._stale:
            self._stale = False
            self._resync()

    def _take_snapshot(self) -> LogSnapshot | FilterSnapshot | None:
        index = self._index
        if index is None:
            return None
        if self._filter is not None:
            if self._fscan is None or self._fscan.generation != index.generation:
                self._fscan = FilterScan(index, self._filter)
            return self._fscan.snapshot()
        return index.snapshot(min_tail=0)

    @staticmethod
    def _shift(old: LogSnapshot | FilterSnapshot | None, new: LogSnapshot | FilterSnapshot) -> int:
        """Rows inserted above the old first row (tail extended backwards, index completed, older
        filter matches found); view positions move down by it so the same lines stay on screen."""
        if old is None or old.rows == 0 or type(old) is not type(new):
            return 0
        if isinstance(old, LogSnapshot):
            assert isinstance(new, LogSnapshot)
            if old.generation != new.generation or (old.exact and new.exact):
                return 0
            row = new.row_of_offset(old.offset(0))
            return row or 0
        assert isinstance(new, FilterSnapshot)
        if new.rows == 0:
            return 0
        row = new.row_of_offset(old.offset(0), after=True)
        return row if row is not None else 0

    def _resync(self, *, rebuild: bool = False) -> None:
        """Take a new snapshot and move the view: follow the end, or keep its lines and count new ones."""
        index = self._index
        if index is not None and index.generation != self._generation:
            # First open, or the file was truncated/replaced: start again at the end.
            self._generation = index.generation
            self._snap = None
            self._fscan = None
            self._strips.clear()
            self._levels.clear()
            self._new_lines = 0
            self._max_width = 0
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
        if self._pending_anchor is not None and isinstance(new, FilterSnapshot) and self._fscan is not None:
            scan = self._fscan
            if scan.done_back or scan._back_pos <= self._pending_anchor:
                anchor, self._pending_anchor = self._pending_anchor, None
                if not self._follow:
                    self._goto_offset(anchor, center=True)
        if self._pending_goto is not None and isinstance(new, LogSnapshot) and new.exact:
            target, self._pending_goto = self._pending_goto, None
            self._goto_line(target)
        if self._pending_offset is not None and isinstance(new, LogSnapshot):
            target, self._pending_offset = self._pending_offset, None
            self.goto_offset(target)
        if not self._follow and isinstance(new, LogSnapshot) and not new.exact and self.scroll_y < self._page():
            self._want_back = max(self._want_back, 4 * self._page() + 200)
        self._update_status()

    def _set_virtual_size(self, rows: int, *, throttle: bool = False) -> None:
        """Set the scrollable size.  Paused views update it at most once a second: a change repaints the
        whole widget, and the rows it adds are below the viewport anyway."""
        width = min(self._max_width, _MAX_CELLS)
        now = time.monotonic()
        size = Size(width, rows)
        if size == self.virtual_size:
            return
        if throttle and rows > self.virtual_size.height and now - self._last_vsize < 1.0:
            return
        self._last_vsize = now
        self._apply_virtual_size(size)

    def _apply_virtual_size(self, size: Size) -> None:
        """Set ``virtual_size`` without a screen re-layout when the scrollbars stay as they are.

        The reactive is declared ``layout=True``, so each assignment re-arranges the whole screen; for a
        ScrollView the layout only feeds ``_scroll_update`` (scrollbar windows, clamping).  Following 8
        logs at 5 batches/s that reflow was a third of the UI thread.  Falls back to the plain assignment
        if the (private, textual 8.x) hook is missing or a scrollbar appears/disappears.
        """
        scroll_update = getattr(self, "_scroll_update", None)
        if scroll_update is None or not self.is_mounted or not self.container_size:
            self.virtual_size = size
            return
        before = (self.show_vertical_scrollbar, self.show_horizontal_scrollbar)
        self.set_reactive(LogView.virtual_size, size)
        scroll_update(size)
        if (self.show_vertical_scrollbar, self.show_horizontal_scrollbar) != before:
            self.refresh(layout=True)

    def _refresh_badge(self) -> None:
        page = self._page()
        self.refresh_line(int(self.scroll_y) + page - 1)

    def _update_status(self) -> None:
        parts: list[str] = []
        snap = self._snap
        index = self._index
        if self._problem and snap is None:
            parts.append("not available")
        else:
            parts.append("FOLLOW" if self._follow else "PAUSED")
            if isinstance(snap, LogSnapshot) and index is not None:
                if self._follow:
                    parts.append(f"{snap.lines:,} lines" if snap.exact else "last lines")
                elif snap.exact:
                    parts.append(f"line {self.cursor + 1:,}")
            if self._filter is not None:
                scan = self._fscan
                label = f"filter /{self._filter.describe()}/"
                if scan is not None and isinstance(snap, FilterSnapshot):
                    label += f" {snap.rows:,} match{'es' if snap.rows != 1 else ''}"
                    if not scan.done_back:
                        label += f" (scanning {int(scan.scanned_fraction * 100)}%)"
                    elif scan.truncated:
                        label += " (oldest dropped)"
                parts.append(label)
            if index is not None and not index.indexed:
                parts.append(f"indexing {int(index.progress * 100)}%")
            if self._searching:
                parts.append("searching…")
        status = " · ".join(parts)
        if status != self._status:
            self._status = status
            self._show_status(status)
            self.post_message(self.StatusChanged(self, status))

    def _show_status(self, status: str) -> None:
        """Put ``status`` in the bottom border, repainting only that row.

        ``border_subtitle = ...`` repaints the whole view; a cursor move changes the status ("line N") and
        two rows, so it would repaint every row.  Same conversion as Textual's setter; falls back to it if
        the (textual 8.x) private attribute is missing or the view has no size yet.
        """
        outer = self.outer_size
        if not hasattr(self, "_border_subtitle") or not self.is_mounted or not outer.height:
            self.border_subtitle = status
            return
        self._border_subtitle = self.render_str(status).expand_tabs(4).split()[0]
        ox, oy = self.content_offset
        self.refresh(Region(-ox, outer.height - 1 - oy, outer.width, 1))

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

    def _effective_level(self, row: int, text: str | None = None) -> str | None:
        """Level of the record a row belongs to (continuation lines take their head's level)."""
        chain: list[Any] = []
        level: str | None = None
        filtered = isinstance(self._snap, FilterSnapshot)
        if text is not None:
            level = detect_level(text)
            if level is not None or filtered:
                return level
        r = row
        while r >= 0 and len(chain) < _LEVEL_LOOKBACK:
            key, text = self._row_info(r)
            cached = self._levels.get(key, _MISSING)
            if cached is not _MISSING:
                level = cached  # type: ignore[assignment]
                break
            chain.append(key)
            level = detect_level(text)
            if level is not None or filtered:
                break
            r -= 1
        for key in chain:
            self._levels[key] = level
        return level

    def _render_row(self, row: int) -> _Row:
        """The styled content of a row, cached by the bytes it shows (rows shift; lines do not)."""
        key, text = self._row_info(row)
        styles = self._styles()  # first: a change of styles drops the cached rows
        cached = self._strips.get(key)
        if cached is not None:
            return cached
        text = _sanitize(text)
        if len(text) > _MAX_CELLS:
            text = text[:_MAX_CELLS] + "…"
        level = self._effective_level(row, text)
        if is_failed_quantum(text):
            style = styles["failed"]
        else:
            style = styles.get(_LEVEL_STYLE.get(level or "", "base"), styles["base"])
        if self._compact:
            text = compact_line(text)
        segments = self._highlight(text, style, styles)
        width = cell_len(text)
        if width > self._max_width:
            self._max_width = width
            if not self._width_scheduled and min(width, _MAX_CELLS) > self.virtual_size.width:
                self._width_scheduled = True
                self.call_after_refresh(self._apply_width)
        if len(segments) == 1 and text.isascii():
            out = _Row(None, width, text, style)
        else:
            out = _Row(segments, width, None, style)
        self._strips[key] = out
        return out

    def _styles(self) -> dict[str, Style]:
        """Rich styles per role, computed once per style change (``rich_style`` walks the DOM: costly)."""
        styles = self._style_cache
        if styles is None:
            base = self.rich_style
            styles = {"base": base}
            for role in ("failed", "critical", "error", "warning", "debug", "note", "badge", "match"):
                styles[role] = base + self.get_component_rich_style(f"logview--{role}")
            styles["badge"] = self.get_component_rich_style("logview--badge")
            styles["match"] = self.get_component_rich_style("logview--match", partial=True)
            styles["cursor"] = self.get_component_rich_style("logview--cursor", partial=True)
            self._style_cache = styles
            if styles != self._rows_styles:
                # The rows cached so far carry the old styles.  A style update that changes no colour
                # (the -following class, focus) keeps them: no row is rendered again for it.
                self._strips.clear()
                self._rows_styles = styles
        return styles

    def _highlight(self, text: str, style: Style, styles: dict[str, Style]) -> list[Segment]:
        flt = self._filter
        if flt is None or flt.invert:
            return [Segment(text, style)]
        spans = [(m.start(), m.end()) for m in flt.text_regex.finditer(text) if m.end() > m.start()]
        if not spans:
            return [Segment(text, style)]
        match_style = style + styles["match"]
        out: list[Segment] = []
        pos = 0
        for a, b in spans:
            if a > pos:
                out.append(Segment(text[pos:a], style))
            out.append(Segment(text[a:b], match_style))
            pos = b
        if pos < len(text):
            out.append(Segment(text[pos:], style))
        return out

    def render_lines(self, crop):  # type: ignore[no-untyped-def]
        strips = super().render_lines(crop)
        for strip in strips:
            # See _NoCache: no self-referencing divide cache, so a replaced row is freed at once.
            strip._divide_cache = _NO_CACHE  # type: ignore[assignment]
        return strips

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        row = scroll_y + y
        styles = self._styles()
        base = styles["base"]
        snap = self._snap
        if snap is None or row >= snap.rows:
            if y == 0 and (self._problem or snap is None or snap.rows == 0):
                note = self._problem or ("no matching lines yet" if self._filter is not None
                                         else "waiting for the log…" if self._index is None else "(empty log)")
                strip = Strip([Segment(note, styles["note"])], cell_len(note)).crop_extend(0, width, base)
            else:
                strip = Strip.blank(width, base)
        else:
            if not self._first_paint.is_set():
                self._first_paint.set()
            try:
                r = self._render_row(row)
            except Exception as exc:  # a read error must never become a traceback on screen
                msg = f"(cannot read this line: {exc})"
                r = _Row([Segment(msg, styles["note"])], cell_len(msg), None, styles["note"])
            on_cursor = row == self.cursor and not self._follow
            if r.fast is not None:
                # One ASCII segment (almost every log line): slice it; one Strip, no crop copies.
                piece = r.fast[scroll_x:scroll_x + width]
                if len(piece) < width:
                    piece = piece.ljust(width)
                strip = Strip([Segment(piece, r.style + styles["cursor"] if on_cursor else r.style)], width)
            else:
                strip = Strip(r.segments or [], r.width)
                if on_cursor:
                    strip = strip.crop_extend(0, max(width + scroll_x, r.width), base)
                    strip = strip.apply_style(styles["cursor"])
                strip = strip.crop_extend(scroll_x, scroll_x + width, base)
        if y == self._page() - 1:
            label = None
            if not self._follow and self._new_lines:
                label = f" ↓ {self._new_lines:,} new line{'s' if self._new_lines != 1 else ''} · f follow "
            elif self._note:
                label = f" {self._note} "
            if label is not None:
                bw = cell_len(label)
                if bw < width:
                    badge = Strip([Segment(label, styles["badge"])], bw)
                    strip = Strip.join([strip.crop(0, width - bw), badge])
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
            self._want_back = max(self._want_back, 4 * page + 200)
        self._update_status()

    def action_cursor(self, delta: int) -> None:
        self._move_cursor(self.cursor + delta)

    def action_page(self, delta: int) -> None:
        self._move_cursor(self.cursor + delta * self._page())

    def action_top(self) -> None:
        self._move_cursor(0)

    def action_bottom(self) -> None:
        self._set_follow(True)

    def action_scroll_cols(self, delta: int) -> None:
        self._set_virtual_size(self.rows)
        self.scroll_to(x=max(0, self.scroll_x + delta), animate=False, force=True)

    def action_toggle_follow(self) -> None:
        self._set_follow(not self._follow)

    @property
    def compact(self) -> bool:
        """Whether ``--long-log`` heads are shown shortened (:func:`compact_line`)."""
        return self._compact

    def action_toggle_compact(self) -> None:
        """Full ``--long-log`` lines or compact ones (``c``); the rows are re-rendered, the cursor stays."""
        self._compact = not self._compact
        self._strips.clear()
        self._max_width = 0
        self._set_virtual_size(self.rows)
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        if self._snap is None:
            return
        offset = event.get_content_offset(self)
        if offset is not None:
            self._move_cursor(int(self.scroll_y) + offset.y)

    # -- filter ----------------------------------------------------------------------------------

    def set_filter(self, line_filter: LineFilter | None) -> None:
        """Show only lines matching ``line_filter`` (None: all lines); keeps the cursor's line in view."""
        anchor = self._cursor_offset()
        self._filter = line_filter
        self._fscan = None
        self._strips.clear()
        self._levels.clear()
        self._pending_anchor = None
        self._resync(rebuild=True)
        if not self._follow and anchor is not None:
            if line_filter is None:
                self._goto_offset(anchor, center=True)
            else:  # the scan runs from the end backwards: go there once it has passed the anchor
                self._pending_anchor = anchor
                self._resync()

    def _cursor_offset(self) -> int | None:
        snap = self._snap
        if snap is None or snap.rows == 0:
            return None
        row = min(self.cursor, snap.rows - 1)
        return snap.offset(row) if isinstance(snap, FilterSnapshot) else snap.span(row)[0]

    def action_filter(self) -> None:
        current = self._filter.describe() if self._filter is not None else ""

        def validate(value: str) -> str | None:
            if not value.strip():
                return None
            try:
                LineFilter.parse(value)
            except FilterError as exc:
                return str(exc)
            return None

        def done(value: str | None) -> None:
            if value is None:
                return
            self.set_filter(LineFilter.parse(value) if value.strip() else None)

        self.app.push_screen(
            LogPrompt("Filter (regex; leading ! shows lines NOT matching; empty clears)", value=current,
                      placeholder="e.g. ERROR|failed   or   !single_quantum_executor", validate=validate),
            done)

    def action_invert_filter(self) -> None:
        f = self._filter
        if f is not None:
            self.set_filter(LineFilter(f.pattern, not f.invert, f.regex, f.text_regex))

    def action_clear_filter(self) -> None:
        self.set_filter(None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return self._filter is not None
        if action == "invert_filter":
            return self._filter is not None
        return True

    # -- go to line ------------------------------------------------------------------------------

    def action_goto(self) -> None:
        def validate(value: str) -> str | None:
            v = value.strip()
            if v in ("$", "") or re.fullmatch(r"[+-]?\d[\d,_]*", v):
                return None
            return "type a line number (1 is the first line), -N for N lines before the end, or $ for the end"

        def done(value: str | None) -> None:
            if value is None or not value.strip():
                return
            v = value.strip().replace(",", "").replace("_", "")
            if v == "$":
                self._set_follow(True)
            elif v.startswith("-"):
                self._move_cursor(self.rows - int(v[1:]), center=True)
            else:
                self._goto_line(int(v.lstrip("+")))

        self.app.push_screen(LogPrompt("Go to line (N, -N from the end, $ end)", validate=validate), done)

    def goto_offset(self, offset: int) -> None:
        """Stop following and put the cursor on the line holding byte ``offset`` (e.g. a failed quantum)."""
        if self._index is None or self._snap is None:
            self._pending_offset = offset
            return
        self._set_follow(False)
        self._goto_offset(offset, center=True)

    def goto_line(self, number: int) -> None:
        """Put the cursor on line ``number`` (1-based); waits for the index if it is still being built."""
        self._goto_line(number)

    def _goto_line(self, number: int) -> None:
        index = self._index
        snap = self._snap
        if index is None or snap is None:
            return
        n = max(0, number - 1)
        if isinstance(snap, LogSnapshot) and snap.exact:
            self._move_cursor(min(n, snap.rows - 1), center=True)
            return
        if index.indexed or n < index.line_count:
            try:
                offset = index.line_offset(min(n, index.line_count - 1))
            except IndexError:
                offset = index.end
            self._goto_offset(offset, center=True)
            return
        self._pending_goto = number
        self._note = f"indexing {int(index.progress * 100)}%: will go to line {number:,} when done"
        self._refresh_badge()

    def _goto_offset(self, offset: int, *, center: bool = True, after: bool = True) -> None:
        snap = self._snap
        if snap is None:
            return
        if isinstance(snap, FilterSnapshot):
            row = snap.row_of_offset(offset, after=after)
            if row is None:
                row = snap.rows - 1 if after else 0
        else:
            row = snap.row_of_offset(offset)
            if row is None:  # before the known tail: read back to it (bounded), then retry
                self._extend_to(offset)
                return
        self._move_cursor(row, center=center)

    @work(thread=True, exclusive=True, group="logview-extend", exit_on_error=False)
    def _extend_to(self, offset: int) -> None:
        index = self._index
        if index is None:
            return
        index.extend_tail(1, until=offset, max_bytes=256 * 1024 * 1024)
        self.app.call_from_thread(self._after_extend, offset)

    def _after_extend(self, offset: int) -> None:
        self._resync()
        snap = self._snap
        if isinstance(snap, LogSnapshot) and snap.row_of_offset(offset) is not None:
            self._goto_offset(offset)
        else:
            self._note = "that line is far back: it can be reached once indexing finishes"
            self._refresh_badge()

    # -- next / previous error -------------------------------------------------------------------

    def action_next_error(self) -> None:
        self._jump(forward=True)

    def action_prev_error(self) -> None:
        self._jump(forward=False)

    def _jump(self, *, forward: bool) -> None:
        snap = self._snap
        if snap is None or snap.rows == 0:
            return
        row = min(self.cursor, snap.rows - 1)
        self._searching = True
        self._update_status()
        self._jump_worker(snap, row, forward)

    @work(thread=True, exclusive=True, group="logview-jump", exit_on_error=False)
    def _jump_worker(self, snap: LogSnapshot | FilterSnapshot, row: int, forward: bool) -> None:
        worker = get_current_worker()
        target: tuple[str, int] | None = None
        try:
            target = self._find_attention(worker, snap, row, forward)
        except Exception:  # noqa: BLE001 - the file changed under the search: report "none found"
            target = None
        if not worker.is_cancelled:  # a cancelled search was replaced by a newer one
            self.app.call_from_thread(self._jump_done, target, forward)

    def _find_attention(self, worker, snap: LogSnapshot | FilterSnapshot, row: int,
                        forward: bool) -> tuple[str, int] | None:
        target: tuple[str, int] | None = None
        if isinstance(snap, FilterSnapshot):
            rng = range(row + 1, snap.rows) if forward else range(row - 1, -1, -1)
            for i, r in enumerate(rng):
                if i % 4096 == 0 and worker.is_cancelled:
                    return None
                if is_attention(snap.text(r)):
                    target = ("row", r)
                    break
        else:
            index = snap.index
            start, stop = snap.span(row)
            pos: int | None = stop if forward else start
            if forward and stop > snap.end:
                pos = None
            while pos is not None and not worker.is_cancelled:
                res = search(index, ATTENTION_RE, pos, backward=not forward, limit=1,
                             stop=snap.end if forward else None)
                if res.offsets:
                    target = ("offset", res.offsets[0])
                    break
                pos = res.resume
        return target

    def _jump_done(self, target: tuple[str, int] | None, forward: bool) -> None:
        self._searching = False
        if target is None:
            self._note = f"no {'later' if forward else 'earlier'} ERROR or failed quantum"
            self._refresh_badge()
            self._update_status()
            return
        kind, value = target
        if kind == "row":
            self._move_cursor(value, center=True)
        else:
            self._goto_offset(value, center=True)
        self._update_status()

    # -- structured record view ------------------------------------------------------------------

    def action_record(self) -> None:
        snap = self._snap
        index = self._index
        if snap is None or index is None or snap.rows == 0:
            return
        row = min(self.cursor, snap.rows - 1)
        offset = snap.offset(row) if isinstance(snap, FilterSnapshot) else snap.span(row)[0]
        try:
            line = index.read_full_line(offset)
        except LogIndexError as exc:
            self.notify(str(exc), severity="error")
            return
        parsed = parse_record(line)
        if parsed is None:
            self.notify("This line is not the start of a log record (no level/JSON fields to show).",
                        severity="warning", timeout=3)
            return
        kind, fields = parsed
        self.app.push_screen(RecordScreen(kind, fields, title=self.title))


# --------------------------------------------------------------------------------------------------
# The panel: tabs and a split of 1, 2 or 4 views
# --------------------------------------------------------------------------------------------------


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
        Binding("s", "cycle_split", "Split 1/2/4", id="logs.split"),
        Binding("greater_than_sign", "tab(1)", "Next log", id="logs.next_tab"),
        Binding("less_than_sign", "tab(-1)", "Prev log", show=False, id="logs.prev_tab"),
        Binding("x", "close_log", "Close log", show=False, id="logs.close"),
    ]

    SPLITS = (1, 2, 4)

    class LogRemoved(Message):
        """A log was closed from the panel (``x``)."""

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
        await tabs.add_tab(Tab(view.title, id=tab_id))
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
        if view is not None:
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
