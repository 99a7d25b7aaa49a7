"""Snapshot tests of the main screens at 80x24 and 160x48 (pytest-textual-snapshot).

The Queue screen renders a queue state recorded from a real demo run (no stage running, so no clock in
the picture); the Collections screen reads a real demo repository whose collections are deterministic.
Update the pictures with `pytest tests/ui/test_snapshots.py --snapshot-update` after a deliberate change.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pfstui.queue.requests import Snapshot
from pfstui.queue.state import QueueState
from pfstui.ui.app import PfsTuiApp
from pfstui.ui.panes.queue import QueuePane

DATA = Path(__file__).resolve().parents[1] / "data"
SIZES = [(80, 24), (160, 48)]


def queue_app(tmp_path: Path) -> PfsTuiApp:
    plan = tmp_path / "demo-plan.yaml"
    plan.write_text("# stand-in: the recorded state below carries the stages\n")
    app = PfsTuiApp(repo=None, plan=str(plan), connect=False, session_dir=tmp_path / "session")
    app.link_text = "● connected"
    return app


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_queue_screen(snap_compare, tmp_path, size):
    state = QueueState.model_validate_json((DATA / "state" / "demo-run.json").read_text())
    snapshot = Snapshot(version=1, session=str(tmp_path / "session"), supervisor_pid=1, state=state)

    async def show(pilot):
        app = pilot.app
        app._update_subtitle()
        app.query_one(QueuePane).update_snapshot(snapshot)
        await pilot.pause()

    assert snap_compare(queue_app(tmp_path), terminal_size=size, run_before=show)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_collections_screen(snap_compare, demo_repo_template, tmp_path, size):
    repo = tmp_path / "demo-repo"
    shutil.copytree(demo_repo_template, repo)

    async def select(pilot):
        pane = pilot.app.query_one("CollectionsPane")
        for _ in range(100):
            if pane._rows:
                break
            await pilot.pause(0.1)
        tree = pane.query_one("Tree")
        await pilot.pause()  # let the tree's own first highlight go through
        target = next(n for n in tree.root.children if str(n.label).startswith("PFS/raw/sps"))
        for _ in range(200):
            if tree.cursor_node is not target:
                tree.move_cursor(target)
            if pane.detail_plain.startswith("PFS/raw/sps") and "Dataset types" in pane.detail_plain:
                break
            await pilot.pause(0.1)
        await pilot.pause()

    assert snap_compare(PfsTuiApp(repo=str(repo), connect=False), terminal_size=size, run_before=select)
