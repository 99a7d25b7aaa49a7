"""pfstui's key map: which bindings are active together, how a key is written, and checking the operator's
``keymap:`` (config.yaml) before the app applies it.

The key map follows k9s, lazygit and less, one meaning per key in every pane: ``escape`` backs out (leaves
a text field, clears a filter, closes a dialog), ``/`` filters, ``j``/``k`` and the arrows move, ``g``/``G``
(``home``/``end``) go to the first/last row, ``enter`` opens what is selected, ``ctrl+r`` reads again.
:func:`sections` groups the bindings for ``?``, the command palette and the README's key map
(tests/ui/test_keys.py checks the README against them).

Why the check: Textual's ``set_keymap`` accepts anything.  An unknown binding id did nothing, a key name with a typo
(``ctlr+k``) bound nothing, and a key given to two bindings of the same pane silently left one of them
unreachable (``queue.kill: r`` took the Queue pane's ``r`` from "run").  :func:`check_keymap` finds all three
so the app can say so in one notification at start, and returns only the entries that are safe to apply.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.binding import Binding
from textual.keys import (
    KEY_ALIASES,
    KEY_NAME_REPLACEMENTS,
    KEY_TO_UNICODE_NAME,
    Keys,
    _normalize_key_list,
    format_key,
)

if TYPE_CHECKING:
    from textual.app import App
    from textual.dom import DOMNode

__all__ = ["KeymapCheck", "Section", "binding_scopes", "bound_key", "check_keymap", "key_for", "key_text", "sections",
           "valid_key"]

MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})
#: Key names Textual knows without a modifier (``f1``, ``pageup``, ``space``, ``slash`` ...).
_NAMED = ({k.value.rpartition("+")[2] for k in Keys} | set(KEY_ALIASES) | set(KEY_NAME_REPLACEMENTS.values())
          | set(KEY_TO_UNICODE_NAME))


def valid_key(key: str) -> bool:
    """Whether Textual can ever deliver ``key`` (one key, modifiers first: ``ctrl+k``, ``f5``, ``question_mark``)."""
    *mods, base = key.split("+")
    if not base or any(m not in MODIFIERS for m in mods):
        return False
    if len(base) == 1 or base in _NAMED:
        return len(base) != 1 or base.isprintable()
    try:
        unicodedata.lookup(base.replace("_", " "))
    except KeyError:
        return False
    return True


@dataclass
class KeymapCheck:
    """What is wrong with a keymap, and what of it may be applied."""

    unknown: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    collisions: list[str] = field(default_factory=list)
    usable: dict[str, str] = field(default_factory=dict)

    def message(self) -> str | None:
        """One notification listing every problem (None when there is none)."""
        parts = []
        if self.unknown:
            parts.append(f"unknown binding id(s) {', '.join(self.unknown)} (press ? for the ids)")
        if self.invalid:
            parts.append(f"invalid key name(s) {', '.join(self.invalid)} (write e.g. ctrl+k, f5, question_mark)")
        if self.collisions:
            parts.append(f"a key bound twice in one pane: {'; '.join(self.collisions)}")
        return ("config.yaml keymap, not applied: " + " · ".join(parts)) if parts else None


def _keys(text: str) -> list[str]:
    return [k for k in _normalize_key_list(text).split(",") if k]


def check_keymap(keymap: Mapping[str, str], scopes: Sequence[Iterable[Binding]]) -> KeymapCheck:
    """Check ``keymap`` (binding id -> keys) against ``scopes``: the bindings active together (the app's and one
    pane's).  A key is a collision when, after the keymap, two ids of one scope have it and the keymap gave it to
    at least one of them (the defaults' own overlaps are by design)."""
    known = {b.id for scope in scopes for b in scope if b.id}
    check = KeymapCheck()
    check.unknown = sorted(set(keymap) - known)
    valid: dict[str, str] = {}
    for binding_id, text in keymap.items():
        bad = [k for k in _keys(text) if not valid_key(k)] or ([] if _keys(text) else [repr(text)])
        if binding_id in known and bad:
            check.invalid.append(f"{binding_id}: {', '.join(bad)}")
        elif binding_id in known:
            valid[binding_id] = text
    clashing: set[str] = set()
    for scope in scopes:
        owners: dict[str, set[str]] = {}
        for b in scope:
            ident = b.id or b.action
            for key in _keys(valid.get(b.id, b.key) if b.id else b.key):
                owners.setdefault(key, set()).add(ident)
        for key, ids in sorted(owners.items()):
            mapped = ids & set(valid)
            if len(ids) > 1 and mapped:
                text = f"{key} ({', '.join(sorted(ids))})"
                if text not in check.collisions:
                    check.collisions.append(text)
                clashing |= mapped
    check.usable = {i: t for i, t in valid.items() if i not in clashing}
    return check


def bound_key(app: App, binding: Binding) -> str:
    """How the key that runs ``binding`` is shown (``f``, ``^k``): the first key the applied keymap gives its
    id, else its own first key.  Hints built with it name the key that works after a rebinding."""
    keys = _keys(app._keymap.get(binding.id or "", "") or binding.key)  # Textual's applied keymap (set_keymap)
    return app.get_key_display(binding.with_key(keys[0]) if keys else binding)


def key_for(node: DOMNode, binding_id: str) -> str:
    """:func:`bound_key` of the binding of ``node``'s class (or a base) with id ``binding_id``."""
    binding = next(b for cls in type(node).__mro__ for b in vars(cls).get("BINDINGS", ())
                   if isinstance(b, Binding) and b.id == binding_id)
    return bound_key(node.app, binding)


# --- what is active together -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """Bindings shown together under ``title`` in ``?``, the palette and the README: a pane's (its own and
    its log views'), the lists', the app's, the dialogs'."""

    title: str
    #: The TabPane its actions act in (None: everywhere, or a dialog).
    pane: str | None
    #: The classes whose own BINDINGS it lists.
    classes: tuple[type, ...]
    #: What the palette says when the pane holds none of those widgets (no plan, no log open ...).
    missing: str = ""


def _widgets() -> dict[str, Any]:
    """The pane, list and dialog classes (imported here, when first asked: never on the first frame)."""
    from pfstui.ui.panes.certify import CertifyPane
    from pfstui.ui.panes.collections import CollectionsPane
    from pfstui.ui.panes.logs import LogsPanel
    from pfstui.ui.panes.queue import QueuePane
    from pfstui.ui.screens.add_stage import AddStageScreen
    from pfstui.ui.screens.confirm import ConfirmScreen, TextScreen
    from pfstui.ui.screens.job_logs import JobLogsScreen
    from pfstui.ui.screens.keys import KeysScreen
    from pfstui.ui.screens.log_prompt import LogPrompt
    from pfstui.ui.screens.record import RecordScreen
    from pfstui.ui.screens.stage_options import RestartEditor, StageEditor
    from pfstui.ui.screens.verification import VerificationScreen
    from pfstui.ui.widgets.lists import ListTree
    from pfstui.ui.widgets.log_view import LogView
    from pfstui.ui.widgets.tables import ListTable

    return {"queue": QueuePane, "collections": CollectionsPane, "certify": CertifyPane, "logs": LogsPanel,
            "log_view": LogView, "table": ListTable, "tree": ListTree, "log_dialogs": (LogPrompt, RecordScreen),
            "dialogs": (ConfirmScreen, TextScreen, RestartEditor, StageEditor, AddStageScreen, JobLogsScreen,
                        KeysScreen, VerificationScreen)}


def sections(app_cls: type) -> list[Section]:
    """Every binding of pfstui, grouped as an operator looks for them."""
    w = _widgets()
    no_repo = "No repository: start pfstui with --repo REPO."
    return [
        Section("Everywhere", None, (app_cls,)),
        Section("Lists (Queue, journal, Collections)", None, (w["table"],)),
        Section("Queue", "queue", (w["queue"],), "No plan: start pfstui with --plan PLAN."),
        Section("Logs", "logs", (w["logs"], w["log_view"], *w["log_dialogs"]),
                "No log is open: open one from the Queue pane (l)."),
        Section("Collections", "collections", (w["collections"],), no_repo),
        Section("Certify", "certify", (w["certify"],), no_repo),
        Section("Dialogs", None, w["dialogs"]),
    ]


def binding_scopes(app_cls: type) -> list[list[Binding]]:
    """The bindings active together, inherited ones included (a key of Textual's own widget collides too):
    the app's with each pane's and its list's, and each dialog's (a dialog has no app bindings)."""
    from textual.screen import Screen

    w = _widgets()

    def merged(*classes: type) -> list[Binding]:
        return [b for cls in classes for _key, b in cls._merged_bindings]

    return [merged(app_cls, Screen, w["queue"], w["table"]), merged(app_cls, Screen, w["collections"], w["tree"]),
            merged(app_cls, Screen, w["certify"], w["table"]), merged(app_cls, Screen, w["logs"], w["log_view"]),
            *(merged(cls) for cls in (*w["log_dialogs"], *w["dialogs"]))]


def key_text(keys: str) -> str:
    """How ``?`` and the README write a binding's keys: ``ctrl+k``, ``g home``, ``?``, ``]``, ``enter``."""
    out = []
    for key in _keys(keys):
        *mods, base = key.split("+")
        out.append("+".join([*mods, "enter" if base == "enter" else format_key(base)]))
    return " ".join(out)
