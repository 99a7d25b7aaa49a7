"""The command palette's pfstui commands (``ctrl+p``): every action of every pane, by name.

Why a Provider: the palette used to list the bindings of the focused widget, asked while the palette itself
had the focus, so it offered none (``kill``, ``run``: "No matches found").  This provider lists every
pane's actions from the same sections as ``?`` (:func:`pfstui.ui.keymap.sections`), whatever has the focus;
running one shows its pane and runs the action there, on what is selected in it, exactly as its key would.
Moving around (cursor, pages, top/bottom) is left to the keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen

__all__ = ["ActionsProvider", "run_binding"]

#: Binding ids that only move a cursor or the palette itself: not commands.
NOT_COMMANDS = frozenset({"app.leave_input", "app.palette", "logs.cursor_up", "logs.cursor_down",
                          "logs.page_up", "logs.page_down", "logs.top", "logs.bottom", "logs.left", "logs.right"})


def palette_entries(app) -> Iterator[tuple[str, str, object, type, Binding]]:
    """``(text, help, section, class, binding)`` of every command, in the order of ``?``."""
    from pfstui.ui.keymap import key_text, sections

    keymap = getattr(app, "_keymap", {})
    for section in sections(type(app)):
        if section.title == "Dialogs":
            continue
        for cls in section.classes:
            if issubclass(cls, Screen):
                continue
            for b in cls.__dict__.get("BINDINGS", []):
                if not isinstance(b, Binding) or not b.id or b.id in NOT_COMMANDS or b.id.startswith("list."):
                    continue
                where = "pfstui" if section.pane is None else section.title
                yield (f"{where}: {b.tooltip or b.description}", f"{key_text(keymap.get(b.id, b.key))} · {b.id}",
                       section, cls, b)


def _target(app, cls: type):
    """The widget a pane's action runs on: the pane's, or the Logs pane's shown log view."""
    if cls is type(app):
        return app
    from pfstui.ui.widgets.log_view import LogView

    if issubclass(cls, LogView):
        from pfstui.ui.panes.logs import LogsPanel

        panels = app.query(LogsPanel)
        return panels.first().active_view if panels else None
    found = app.query(cls)
    return found.first() if found else None


async def run_binding(app, section, cls: type, binding: Binding) -> None:
    """Run ``binding``'s action as its key would: its pane shown first, on the widget that has it."""
    if section.pane is not None:
        app.action_show_pane(section.pane)
    target = _target(app, cls)
    if target is None:
        app.notify(section.missing or "Nothing to do that on here.", severity="warning", markup=False)
        return
    await app.run_action(binding.action, target)


class ActionsProvider(Provider):
    """pfstui's commands: "Queue: Kill the selected stage", "Certify: Preview ...", "pfstui: Show the Logs
    pane" ... (the text matches; the help line gives the key and the binding id)."""

    def _commands(self):
        app = self.app
        for text, help_text, section, cls, binding in palette_entries(app):
            yield text, help_text, partial(run_binding, app, section, cls, binding)

    async def discover(self) -> Hits:
        for text, help_text, command in self._commands():
            yield DiscoveryHit(text, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, command in self._commands():
            score = max(matcher.match(text), matcher.match(help_text.rpartition(" · ")[2]))
            if score > 0:
                yield Hit(score, matcher.highlight(text), command, text=text, help=help_text)
