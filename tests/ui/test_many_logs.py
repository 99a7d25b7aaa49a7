"""Eight busy logs open, and repository work still finishes (issue: the app never hangs with many logs open).

Before, each open log ran its watcher as a Textual thread worker from the event loop's default executor
(6 threads on 2 cores): with four or five logs open the certify preview stayed at "Computing the preview..."
and a Collections refresh showed nothing new.  Now one thread follows every log, and repository work runs on
the app's own Butler lane: even with the shared default executor full (of anything: log searches, requests
to a stopped supervisor), the preview and the refresh finish.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from pfstui.ui.app import PfsTuiApp
from pfstui.ui.panes.certify import CertifyPane
from pfstui.ui.panes.collections import CollectionsPane
from pfstui.ui.panes.logs import LogsPanel
from pfstui.ui.widgets.log_watcher import LogWatchHub

from . import wait_until
from .test_app import certify_a_bias
from .test_certify_pane import fill, second_bias_run

LOGS = 8


def grow(paths: list[Path], stop: threading.Event) -> None:
    """Append pipetask-like lines to every log, about 2,000 a second each, until ``stop``."""
    n = 0
    while not stop.is_set():
        for path in paths:
            with path.open("a") as fh:
                fh.writelines(f"INFO 2026-12-06T00:00:00.000+00:00 lsst.demo ()(x.py:1) - line {n + i}\n"
                              for i in range(100))
        n += 100
        time.sleep(0.05)


def fill_default_executor(loop: asyncio.AbstractEventLoop, gate: threading.Event) -> None:
    """Hold every thread of the loop's default executor (at most 32) until ``gate`` is set."""
    for _ in range(40):
        loop.run_in_executor(None, gate.wait)


async def test_eight_following_logs_leave_the_butler_work_room(demo_repo: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    certify_a_bias(demo_repo)
    run = second_bias_run(demo_repo)
    paths = [tmp_path / f"stage{i}.log" for i in range(LOGS)]
    for path in paths:
        path.write_text("INFO 2026-12-06T00:00:00.000+00:00 lsst.demo ()(x.py:1) - start\n")
    stop = threading.Event()
    writer = threading.Thread(target=grow, args=(paths, stop), daemon=True)
    writer.start()
    gate = threading.Event()
    app = PfsTuiApp(repo=str(demo_repo), connect=False)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            fill_default_executor(asyncio.get_running_loop(), gate)
            for path in paths:
                await app.open_log(path.stem, str(path))
            assert len(app.query_one(LogsPanel).query("LogView")) == LOGS
            await pilot.pause(1.0)
            threads = {t.name for t in threading.enumerate()}
            assert sum(name == "pfstui-log-watch" for name in threads) == 1, threads
            assert len(LogWatchHub.shared()) >= LOGS
            # the certify preview completes
            await pilot.press("4")
            pane = app.query_one(CertifyPane)
            await fill(pilot, pane, input=run, dataset_type="bias", begin="2020-01-01T00:00:00",
                       end="2024-01-01T00:00:00")
            await pilot.press("ctrl+e")
            await wait_until(pilot, lambda: pane.preview is not None, timeout=60)
            # a collection made meanwhile shows after a Collections refresh
            from lsst.daf.butler import Butler, CollectionType

            with Butler.from_config(str(demo_repo), writeable=True) as butler:
                butler.collections.register("u/new/while-following", CollectionType.RUN)
            await pilot.press("1")
            collections = app.query_one(CollectionsPane)
            collections.action_refresh()
            await wait_until(pilot, lambda: any(r.name == "u/new/while-following" for r in collections._rows),
                             timeout=60)
            assert app.butler_lane.threads == 2
            assert sum(t.name.startswith("pfstui-butler") for t in threading.enumerate()) <= 2
    finally:
        gate.set()
        stop.set()
        writer.join()


@pytest.mark.integration
async def test_the_supervisor_link_and_requests_need_no_shared_thread(demo_repo: Path, tmp_path: Path, state_env):
    from pfstui.ui.link import contract
    from pfstui.ui.messages import QueueRequest
    from pfstui.ui.panes.queue import QueuePane

    from .test_app import write_plan

    plan = write_plan(tmp_path, demo_repo)
    gate = threading.Event()
    fill_default_executor(asyncio.get_running_loop(), gate)  # before the app starts its link
    app = PfsTuiApp(repo=str(demo_repo), plan=str(plan))
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.query_one(QueuePane)
            await wait_until(pilot, lambda: len(pane.stages()) == 2, timeout=60, what="the queue from the link")
            app.post_message(QueueRequest(contract().Status(), "status answered"))
            await wait_until(pilot, lambda: any(n.message == "status answered" for n in app._notifications),
                             timeout=30, what="the reply to a request")
    finally:
        gate.set()
