"""Two pfstui at once on one state dir (issue 7, point 6): one queue, serialized changes, no lost update.

Two real apps in their own terminals start at the same instant with no supervisor running, together with
headless clients: exactly one supervisor serves them all.  Both apps skip the same stage at the same moment:
one wins, the other is told why it was refused.  Concurrent CLI processes conflict the same way, and
concurrent distinct changes from many clients all land.  Both apps then show the same queue as the file.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pfstui.queue.requests import Hello, SkipStage, Status
from tests.faults import Session, apply_env, fault_env, write_plan
from tests.faults.ptyapp import TmuxApp, pfstui_argv, queue_rows

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux to read the apps' screens"),
]

IDS = [f"c{i}" for i in range(8)]
STAGES = "".join(f"  - name: {sid}\n    kind: certify\n    input: nothing-{sid}\n    target: PFS/calib\n"
                 "    dataset_type: bias\n" for sid in IDS)


def test_two_apps_one_queue_serialized_conflicts_and_no_lost_update(demo_repo: Path, tmp_path: Path, monkeypatch):
    env = fault_env(tmp_path, idle=20)
    apply_env(env, monkeypatch.setenv)
    session = Session(demo_repo, write_plan(tmp_path / "plan.yaml", demo_repo, STAGES))
    argv = pfstui_argv(demo_repo, session.plan)
    apps: list[TmuxApp] = []
    try:
        # Everybody at once, no supervisor yet: two apps and four headless clients race to start one.
        hellos: list[int] = []

        def hello() -> None:
            with session.client(timeout=30) as c:
                hellos.append(c.request(Hello()).pid)

        threads = [threading.Thread(target=hello) for _ in range(4)]
        apps = [TmuxApp(argv, env, size=(120, 30)) for _ in range(2)]
        for app in apps:
            app.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for app in apps:
            app.wait_screen(lambda s: "connected" in s and len(queue_rows(s, IDS)) == 8, timeout=30)
        time.sleep(0.5)  # losers of the race exit at once; give them the time to
        pids = session.supervisor_pids()
        assert len(pids) == 1 and set(hellos) == set(pids), (pids, hellos)

        # Both operators skip c0 at the same moment: one wins, the other is told why not.
        for app in apps:
            app.send_keys("s")
        for app in apps:
            app.wait_screen(lambda s: "Skip c0?" in s, timeout=10)
        for app in apps:
            app.send_keys("y")
        screens = [app.wait_screen(lambda s: "Skipped c0" in s or "skip refused" in s, timeout=10) for app in apps]
        assert sorted("skip refused" in s for s in screens) == [False, True], screens
        refused = next(s for s in screens if "skip refused" in s)
        assert "is skipped" in refused

        # The same conflict from separate CLI processes.
        cli = [sys.executable, "-m", "pfstui", "queue", "skip", "c1", "--plan", str(session.plan),
               "--repo", str(demo_repo)]
        procs = [subprocess.Popen(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        results = [(p.wait(60), p.stderr.read()) for p in procs]
        assert sorted(rc for rc, _ in results) == [0, 2, 2, 2], results
        assert all("stage 'c1' is skipped" in err for rc, err in results if rc), results

        # Distinct changes from many clients at once: none is lost.
        errors: list[str] = []

        def skip(sid: str) -> None:
            try:
                with session.client(timeout=30) as c:
                    c.request(SkipStage(stage=sid))
                    c.request(Status())
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(f"{sid}: {exc}")

        threads = [threading.Thread(target=skip, args=(sid,)) for sid in IDS[2:]]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        state = session.state()
        assert {s["id"]: s["status"] for s in state["stages"]} == dict.fromkeys(IDS, "skipped")

        # Both apps show that same queue.
        for app in apps:
            screen = app.wait_screen(lambda s: all(v[0] == "skipped" for v in queue_rows(s, IDS).values())
                                     and len(queue_rows(s, IDS)) == 8, timeout=10)
            assert {sid: row[0] for sid, row in queue_rows(screen, IDS).items()} == dict.fromkeys(IDS, "skipped")
        assert session.supervisor_pids() == pids, "still the one supervisor"
    finally:
        for app in apps:
            app.stop()
        session.shutdown()
