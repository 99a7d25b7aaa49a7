"""The footer: the focused pane's keys, then always ``q Quit`` and ``? Keys``.

Why: Textual's footer lists the pane's bindings first and the app's last, and cuts the row at the screen's
edge: at 80 and 100 columns ``q Quit`` and ``? Keys`` (how to leave, and how to find every other key) were the
keys that fell off.  This footer drops the pane keys that do not fit, from the last, and always shows the
app's own keys (:data:`ALWAYS`) at the end of the row.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

__all__ = ["ALWAYS", "KeysFooter"]

#: The binding ids that must stay visible at any width.
ALWAYS = ("app.quit", "app.help")
#: Cells the command palette key takes at the right end (``▏^p palette`` and its padding).
_PALETTE = 13


class KeysFooter(Footer):
    """A footer that keeps :data:`ALWAYS` visible (see the module docstring)."""

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        app = self.app
        seen: set[str] = set()
        keys: list[tuple[object, bool, str]] = []
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in seen:
                seen.add(binding.action)
                keys.append((binding, enabled, tooltip))
        fixed = [k for k in keys if k[0].id in ALWAYS]
        pane = [k for k in keys if k[0].id not in ALWAYS]
        room = (self.size.width or app.size.width) - _PALETTE - sum(self._cells(k[0]) for k in fixed)
        shown = []
        for key in pane:
            room -= self._cells(key[0])
            if room < 0:
                break
            shown.append(key)
        for binding, enabled, tooltip in shown + fixed:
            yield FooterKey(binding.key, app.get_key_display(binding), binding.description, binding.action,
                            disabled=not enabled, tooltip=tooltip).data_bind(compact=Footer.compact)
        yield from self._palette_key()

    def _cells(self, binding) -> int:
        """Cells one key takes: `` k Description `` (padding) and its right margin."""
        return cell_len(self.app.get_key_display(binding)) + cell_len(binding.description) + 3 + (
            1 if self.compact else 0)

    def _palette_key(self) -> ComposeResult:
        if not (self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE):
            return
        found = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        if found is None:
            return
        _node, binding, enabled, _tooltip = found
        yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                        classes="-command-palette", disabled=not enabled, tooltip=binding.tooltip or binding.description)

    _composed_width = 0

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._composed_width:
            self._composed_width = event.size.width
            self.call_after_refresh(self.recompose)
