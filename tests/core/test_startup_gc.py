"""The ``pfstui`` command starts without the cyclic garbage collector (first frame, see pfstui.__main__) and
switches it back on: for a headless command once the command line is parsed, for the app after its first frame."""

from __future__ import annotations

import gc
import sys

import pytest

import pfstui.__main__ as entry
import pfstui.cli.main as cli_main
from pfstui.ui.app import settle_gc


@pytest.fixture
def collector_restored():
    was = gc.isenabled()
    yield
    gc.enable() if was else gc.disable()


def _collector_seen_by_the_command(monkeypatch, argv: list[str]) -> bool:
    seen: list[bool] = []
    monkeypatch.setattr(cli_main, "run_guarded", lambda args: seen.append(gc.isenabled()) or 0)
    monkeypatch.setattr(sys, "argv", ["pfstui", *argv])
    assert entry.main() == 0
    return seen[0]


def test_a_headless_command_runs_with_the_collector_on(monkeypatch, collector_restored) -> None:
    assert _collector_seen_by_the_command(monkeypatch, ["journal"]) is True


def test_the_app_starts_without_the_collector(monkeypatch, collector_restored) -> None:
    assert _collector_seen_by_the_command(monkeypatch, ["--repo", "somewhere"]) is False


def test_the_app_switches_the_collector_on_once_started(collector_restored) -> None:
    gc.disable()
    try:
        settle_gc()
        assert gc.isenabled()
    finally:
        gc.unfreeze()
