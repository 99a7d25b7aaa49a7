"""The key map (issue 15): one meaning per key across panes, an id on every binding, `?` showing the ids,
every action in the command palette, keymap problems found at start, and the README's key map true."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
from textual.binding import Binding
from textual.command import CommandPalette
from textual.keys import _normalize_key_list
from textual.screen import Screen

import pfstui.ui
from pfstui.ui.app import PfsTuiApp
from pfstui.ui.keymap import binding_scopes, check_keymap, key_text, sections
from pfstui.ui.palette import palette_entries
from pfstui.ui.screens.keys import KeysScreen
from tests.ui import wait_until
from tests.ui.test_inputs import recorded_queue, screen_text

ROOT = Path(__file__).resolve().parents[2]
PANES = ("Everywhere", "Lists (Queue, journal, Collections)", "Queue", "Logs", "Collections", "Certify")


def pane_bindings() -> list[tuple[str, Binding]]:
    """(section, binding) of the panes, the lists and the app (not the dialogs, which have their own keys)."""
    return [(s.title, b) for s in sections(PfsTuiApp) if s.title in PANES for cls in s.classes
            if not issubclass(cls, Screen) for b in cls.__dict__.get("BINDINGS", [])]


def test_every_binding_has_an_id():
    """Every key of pfstui can be rebound by id (Collections' bindings had none)."""
    missing = []
    for info in pkgutil.walk_packages(pfstui.ui.__path__, "pfstui.ui."):
        module = importlib.import_module(info.name)
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            for b in cls.__dict__.get("BINDINGS", []):
                if not isinstance(b, Binding) or not b.id:
                    missing.append(f"{cls.__name__}: {b}")
    assert not missing, missing


def test_one_meaning_per_key_across_panes():
    """x was failures (Queue) and close log (Logs), s skip and split, l open log and scroll right, k kill and
    up, g go-to-line and top: a key now does one thing wherever it works."""
    meanings: dict[str, set[str]] = {}
    for _section, b in pane_bindings():
        for key in _normalize_key_list(b.key).split(","):
            meanings.setdefault(key, set()).add(b.description)
    # escape backs out (of a field, of a running repository read, then of a filter); enter opens what is selected
    layered = {"escape": {"Back to the pane", "Cancel", "Clear filter"}, "enter": {"Details", "Record"}}
    for key, found in meanings.items():
        assert found == layered[key] if key in layered else len(found) == 1, (key, found)
    # y/n are yes/no (confirmations, the Queue's approvals), e edits a stage, +/- the parallel limit: Queue only
    for section, b in pane_bindings():
        reserved = {"y", "n", "e", "plus", "minus"} & set(_normalize_key_list(b.key).split(","))
        assert not reserved or section == "Queue", (section, b.id, reserved)


def test_the_defaults_have_no_collision():
    """Within what is active together, a key has one of pfstui's bindings, but escape, which backs out of
    the innermost thing first."""
    for scope in binding_scopes(PfsTuiApp):
        owners: dict[str, set[str]] = {}
        for b in scope:
            if b.id:
                owners.setdefault(b.key, set()).add(b.id)
        clashes = {k: ids for k, ids in owners.items() if len(ids) > 1 and k != "escape"}
        assert not clashes, clashes
    assert check_keymap({}, binding_scopes(PfsTuiApp)).message() is None


def test_keymap_checks_lists_and_dialogs():
    """A key given to a pane's action collides with its list's keys; a dialog's id can be rebound (it was
    "unknown": the check knew only the panes)."""
    scopes = binding_scopes(PfsTuiApp)
    check = check_keymap({"queue.kill": "j", "confirm.yes": "Y", "collections.refresh": "ctrl+x"}, scopes)
    assert "j (list.down, queue.kill)" in check.message()
    assert check.usable == {"confirm.yes": "Y", "collections.refresh": "ctrl+x"}
    assert not check.unknown


async def test_a_rebound_dialog_key_works(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PFSTUI_CONFIG_DIR", str(tmp_path))
    (tmp_path / "config.yaml").write_text("keymap:\n  queue.skip: S\n  confirm.yes: Y\n  list.top: t\n")
    app, snapshot = recorded_queue(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert not [n for n in app._notifications if "keymap" in n.message]
        pane = app.query_one("QueuePane")
        pane.update_snapshot(snapshot)
        await pilot.press("G", "t")
        assert pane.selected().id == "bias"
        await pilot.press("S")
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("y")  # no longer the dialog's key
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("Y")
        assert type(app.screen).__name__ != "ConfirmScreen"


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_help_shows_the_binding_ids(tmp_path: Path, monkeypatch, size):
    """`?` showed Textual's help panel, without the ids the README and the keymap warning point to."""
    monkeypatch.setenv("PFSTUI_CONFIG_DIR", str(tmp_path))
    (tmp_path / "config.yaml").write_text("keymap:\n  queue.skip: S\n")
    app, _snapshot = recorded_queue(tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, KeysScreen)
        await pilot.pause()
        shown = screen_text(app)
        # the Queue's keys first (the pane shown), as rebound
        assert re.search(r"ctrl\+k +Kill the selected stage +queue\.kill", shown), shown
        assert re.search(r"\bS +Skip the selected stage +queue\.skip", shown), shown
        body = app.screen.query_one("#keys-body")
        text = "\n".join(line.text for line in body.render_lines(body.region.reset_offset))
        assert all(ident in text for ident in ("app.help", "list.top", "logs.goto", "collections.refresh",
                                               "certify.preview", "confirm.yes"))
        await pilot.press("question_mark")
        assert not isinstance(app.screen, KeysScreen)


def test_the_palette_has_every_action():
    texts = [text for text, *_ in palette_entries(PfsTuiApp(repo=None, connect=False))]
    for wanted in ("Queue: Kill", "Queue: Run queue", "Queue: Pause", "Queue: Restart", "Queue: Skip",
                   "Queue: Open the selected stage's log", "Queue: Failed quanta", "Queue: Add a stage",
                   "Queue: Filter", "Logs: Follow", "Logs: Filter", "Logs: Close the shown log",
                   "Certify: Preview", "Certify: Apply", "Certify: Undo", "Certify: Read the journal again",
                   "Collections: Read the collections again", "pfstui: Show the Queue pane", "pfstui: Every key"):
        assert any(t.startswith(wanted) for t in texts), wanted


async def test_palette_finds_and_runs_an_action(tmp_path: Path, monkeypatch):
    """`kill` in the palette found nothing ("No matches found"): it listed the focused widget's bindings,
    asked while the palette itself had the focus."""
    monkeypatch.setenv("PFSTUI_CONFIG_DIR", str(tmp_path))
    app, snapshot = recorded_queue(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one("QueuePane").update_snapshot(snapshot)
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"kill")

        def first_hit() -> str:
            results = app.screen.query_one("CommandList")
            return str(results.get_option_at_index(0).prompt) if results.option_count else ""

        await wait_until(pilot, lambda: "Queue: Kill the selected stage" in first_hit(), timeout=10)
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("Select a running stage to kill" in n.message
                                            for n in app._notifications), timeout=10)
        await pilot.press("ctrl+p", *"show logs")
        await wait_until(pilot, lambda: "Show the Logs pane" in first_hit(), timeout=10)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.query_one("TabbedContent").active == "logs", timeout=10)


def readme_key_rows() -> list[str]:
    text = (ROOT / "README.md").read_text()
    keys = text.split("\n## Keys\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in keys.splitlines() if line.startswith("| `")]


def test_the_readme_key_map_is_the_app_s():
    """Each binding id of the panes is in a row of the README's key map, with its keys."""
    rows = readme_key_rows()
    for section, b in pane_bindings():
        row = next((r for r in rows if f"`{b.id}`" in r), None)
        assert row is not None, f"{section}: {b.id} is not in the README's key map"
        keys_cell = row.split("|")[1]
        for key in key_text(b.key).split():
            assert f"`{key}`" in keys_cell, (b.id, key, keys_cell)
