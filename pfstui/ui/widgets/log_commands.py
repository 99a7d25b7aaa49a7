"""What the keys of a log view do: move, follow, filter, go to line, next/previous error, record view.

Why a mixin: these are the operator's commands to a :class:`~pfstui.ui.widgets.log_view.LogView`
(arrows, ``f``, ``c``, ``/`` ``!`` ``esc``, ``:``, ``]``/``[``, ``enter``), built on the view's own
primitives; kept apart so the widget's file holds what it is (rows, batches, painting, following) and
this one what it is asked to do.  :class:`LogCommands` is only ever mixed into ``LogView`` (Textual reads
``BINDINGS`` from widget classes only, so the bindings stay there): it uses the view's snapshot (``_snap``),
filter, cursor moves (``_move_cursor``, ``_set_follow``), note and status, and its watcher (the index
and the filter scan).  What counts as an error line is :mod:`pfstui.pipetask_log.formats`'s answer; the
search itself (:func:`pfstui.logfile.search.find_line`) knows nothing of pipetask.
"""

from __future__ import annotations

import re

from textual import work
from textual.worker import get_current_worker

from pfstui.logfile.reader import LogIndexError
from pfstui.logfile.search import FilterError, FilterSnapshot, LineFilter, find_line
from pfstui.logfile.snapshot import LogSnapshot
from pfstui.pipetask_log.formats import ATTENTION_RE, is_attention, parse_record
from pfstui.ui.screens.log_prompt import LogPrompt
from pfstui.ui.screens.record import RecordScreen

__all__ = ["LogCommands"]


class LogCommands:
    """The key actions of :class:`LogView` (see the module docstring)."""

    # -- moving ----------------------------------------------------------------------------------

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

    def action_toggle_compact(self) -> None:
        """Full ``--long-log`` lines or compact ones (``c``); the rows are re-rendered, the cursor stays."""
        self._rows.set_compact(not self._rows.compact)
        self._set_virtual_size(self.rows)
        self.refresh()

    # -- filter ----------------------------------------------------------------------------------

    def set_filter(self, line_filter: LineFilter | None) -> None:
        """Show only lines matching ``line_filter`` (None: all lines); keeps the cursor's line in view."""
        anchor = self._cursor_offset()
        self._filter = line_filter
        self._watcher.scan = None
        self._rows.forget()
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
        return snap.offset(min(self.cursor, snap.rows - 1))

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

        hint = (f"now /{current}/: ↑ edits it, enter clears it" if current
                else "e.g. ERROR|failed   or   !single_quantum_executor")
        self.app.push_screen(
            LogPrompt("Filter (regex; leading ! shows lines NOT matching; empty clears)", placeholder=hint,
                      validate=validate, recall=current),
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
        if self._watcher.index is None or self._snap is None:
            self._pending_offset = offset
            return
        self._set_follow(False)
        self._goto_offset(offset, center=True)

    def goto_line(self, number: int) -> None:
        """Put the cursor on line ``number`` (1-based); waits for the index if it is still being built."""
        self._goto_line(number)

    def _goto_line(self, number: int) -> None:
        index = self._watcher.index
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
        index = self._watcher.index
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

    def _reach_pending(self, new: LogSnapshot | FilterSnapshot) -> None:
        """After a new snapshot: go where a command asked before it could (the filter's scan has passed
        the cursor's line, the index has line numbers, the first snapshot exists)."""
        scan = self._watcher.scan
        if self._pending_anchor is not None and isinstance(new, FilterSnapshot) and scan is not None:
            if scan.passed(self._pending_anchor):
                anchor, self._pending_anchor = self._pending_anchor, None
                if not self._follow:
                    self._goto_offset(anchor, center=True)
        if self._pending_goto is not None and isinstance(new, LogSnapshot) and new.exact:
            target, self._pending_goto = self._pending_goto, None
            self._goto_line(target)
        if self._pending_offset is not None and isinstance(new, LogSnapshot):
            target, self._pending_offset = self._pending_offset, None
            self.goto_offset(target)

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
            target = find_line(snap, row, forward=forward, regex=ATTENTION_RE, test=is_attention,
                               cancelled=lambda: worker.is_cancelled)
        except Exception:  # noqa: BLE001 - the file changed under the search: report "none found"
            target = None
        if not worker.is_cancelled:  # a cancelled search was replaced by a newer one
            self.app.call_from_thread(self._jump_done, target, forward)

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
        index = self._watcher.index
        offset = self._cursor_offset()
        if index is None or offset is None:
            return
        try:
            line = index.read_full_line(offset)
        except LogIndexError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        parsed = parse_record(line)
        if parsed is None:
            self.notify("This line is not the start of a log record (no level/JSON fields to show).",
                        severity="warning", timeout=3)
            return
        kind, fields = parsed
        self.app.push_screen(RecordScreen(kind, fields, title=self.title))
