"""The Queue pane's ``/`` filter: keep the stages whose name or status contains what the operator typed.

Why a mixin of its own: the filter is a behaviour of the pane's table (which rows it shows), not of the
queue; kept apart so ``queue.py`` holds what the Queue does to stages.  It follows the key map of every
list in pfstui: ``/`` types a filter, ``enter`` goes back to the table keeping it, ``escape`` leaves the
line (the app's ``app.leave_input``) and, in the table, clears the filter.  The filter line is made on
first use: nothing to import or lay out before the first frame, and it stays on screen only while it
filters (it says why rows are missing).  Mixed into :class:`~pfstui.ui.panes.queue.QueuePane` only, which
provides ``stages()``, ``snapshot``, ``update_snapshot`` and ``focus_main``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pfstui.queue.state import Stage

__all__ = ["QueueFilter"]

FILTER_ID = "queue-filter"


class QueueFilter:
    """The ``/`` filter of :class:`~pfstui.ui.panes.queue.QueuePane` (see the module docstring)."""

    #: What the filter keeps: stages whose name or status contains it (case-insensitive); "" keeps all.
    filter_text: str = ""

    def shown_stages(self) -> list[Stage]:
        """The stages the table shows."""
        text = self.filter_text.strip().lower()
        return [s for s in self.stages() if not text or text in s.id.lower() or text in str(s.status).lower()]

    async def action_filter(self) -> None:
        boxes = self.query(f"#{FILTER_ID}")
        if boxes:
            box = boxes.first()
        else:
            from textual.containers import Horizontal
            from textual.widgets import Input, Label

            box = Input(placeholder="stage name or status (enter: back to the table; escape twice clears)",
                        id=FILTER_ID, compact=True)
            row = Horizontal(Label("/ filter "), box, id=f"{FILTER_ID}-row")
            row.styles.height = 1
            row.styles.padding = (0, 1)
            await self.query_one("#queue-main").mount(row, after="#queue-status")
        box.parent.display = True
        box.focus()

    def _refilter(self, text: str) -> None:
        self.filter_text = text
        if self.snapshot is not None:
            self.update_snapshot(self.snapshot)

    def on_input_changed(self, event) -> None:
        if event.input.id == FILTER_ID:
            event.stop()
            self._refilter(event.value)

    def on_input_submitted(self, event) -> None:
        if event.input.id == FILTER_ID:
            event.stop()
            self.focus_main()

    def on_descendant_blur(self, event) -> None:
        if getattr(event.widget, "id", None) == FILTER_ID and not self.filter_text.strip():
            event.widget.parent.display = False

    def action_clear_filter(self) -> None:
        for box in self.query(f"#{FILTER_ID}"):
            box.value = ""
            box.parent.display = False
        self._refilter("")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return bool(self.filter_text.strip())  # else escape goes on to the app
        return super().check_action(action, parameters)
