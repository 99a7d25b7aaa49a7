"""Damaged state and failing disks (issue 7, point 5), through the real supervisor and the app.

* A truncated, garbled or future-schema ``state.json``: the operator sees one message naming the file and the
  fix, the damaged file is kept aside byte for byte, the last good state (``state.json.prev``) is used, and
  with no good copy the queue starts empty and paused (never silently: the message says so).
* A full or read-only disk under a running supervisor: every snapshot says which file cannot be written and
  what to do, the files on disk stay exactly as they were, no temp file is left, and the change is saved as
  soon as the disk accepts it.  Tests run as root, for whom permission bits block nothing and no tmpfs can be
  mounted, so the supervisor process is started with ``os.open``/``os.write`` of the state writer made to fail
  with ENOSPC/EROFS (the errors a full or read-only disk gives).
* Interrupted writes: a writer process SIGKILLed at random moments, and at the two worst moments (after the
  temp file's fsync, before the rename; in the middle of the temp file's write), never leaves a state that
  does not load: the previous state loads, without a problem.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pfstui.queue.requests import LoadPlan, SkipStage, Status
from tests.faults import Session, apply_env, certify_stage, fault_env, write_plan

pytestmark = pytest.mark.integration

STAGES = "".join(certify_stage(f"c{i}", "c0", "nothing", "bias") if i else
                 "  - name: c0\n    kind: certify\n    input: nothing\n    target: PFS/calib\n    dataset_type: bias\n"
                 for i in range(3))


@pytest.fixture
def session(tmp_path: Path, monkeypatch, demo_repo: Path):
    """A session whose plan is loaded (queue paused, nothing runs) and whose supervisor is stopped."""
    env = fault_env(tmp_path, idle=20)
    apply_env(env, monkeypatch.setenv)
    s = Session(demo_repo, write_plan(tmp_path / "plan.yaml", demo_repo, STAGES))
    with s.client() as c:
        c.request(LoadPlan(path=str(s.plan)))
        c.request(SkipStage(stage="c2"))  # so that state.json (c2 skipped) differs from state.json.prev (queued)
    s.shutdown()
    yield s
    s.shutdown()


def statuses(state: dict) -> dict[str, str]:
    return {st["id"]: st["status"] for st in state["stages"]}


def truncate(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def garble(raw: bytes) -> bytes:
    return b"\x00\xff\xfe" + raw[10:40] + b"\x89PNG"


def future(raw: bytes) -> bytes:
    doc = json.loads(raw)
    doc["schema_version"] = 99
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("damage", "keep_prev", "reason", "fix"),
    [
        (truncate, True, "truncated or garbled", "previous good copy state.json.prev is used"),
        (garble, False, "not UTF-8", "queue was started empty and paused"),
        (future, True, "written by a newer pfstui (schema 99", "upgrade pfstui"),
    ],
    ids=["truncated", "garbled-no-prev", "future-schema"],
)
async def test_damaged_state_file_is_kept_named_and_the_last_good_state_used(session: Session, damage, keep_prev,
                                                                              reason: str, fix: str):
    from pfstui.ui.app import PfsTuiApp
    from pfstui.ui.panes.queue import QueuePane

    path = session.dir / "state.json"
    prev = session.dir / "state.json.prev"
    good_prev = json.loads(prev.read_text())
    assert statuses(good_prev)["c2"] == "queued" and statuses(json.loads(path.read_text()))["c2"] == "skipped"
    bad = damage(path.read_bytes())
    path.write_bytes(bad)
    if not keep_prev:
        prev.unlink()

    with session.client() as c:
        snap = c.request(Status())
    message = snap.state_problem
    assert message and str(path) in message and reason in message and fix in message, message
    kept = list(session.dir.glob("state.json.damaged-*"))
    assert len(kept) == 1 and kept[0].name in message, "the damaged file is kept aside and named"
    assert kept[0].read_bytes() == bad, "byte for byte"
    if keep_prev:
        assert statuses(snap.state.model_dump(mode="json")) == statuses(good_prev), "the last good state is used"
    else:
        assert snap.state.stages == [] and snap.state.queue_paused is True

    # The operator opening the app sees the message in the Queue pane; the queue is usable again.
    app = PfsTuiApp(repo=str(session.repo), plan=str(session.plan))
    async with app.run_test(size=(160, 40)) as pilot:
        pane = app.query_one(QueuePane)
        deadline = time.monotonic() + 30
        while not (len(pane.stages()) == 3 and kept[0].name in str(pane.query_one("#queue-status").render())):
            assert time.monotonic() < deadline, str(pane.query_one("#queue-status").render())
            await pilot.pause(0.05)
        assert pane.snapshot.state.queue_paused is True, "a recovered queue never starts on its own"
    state = session.state()
    assert len(state["stages"]) == 3 and state["schema_version"] == 1
    assert kept[0].read_bytes() == bad, "nothing overwrote the damaged copy"


FAULTY_SUPERVISOR = r"""
import errno, os, sys
from pathlib import Path
import pfstui.infra.atomic as atomic
import pfstui.infra.journal as journal
flag = Path(sys.argv[2])

class FaultyOs:
    '''os, except that creating (EROFS) or writing (ENOSPC) a file fails while the flag file names that error.'''
    def __getattr__(self, name):
        return getattr(os, name)
    def _fault(self, when):
        code = flag.read_text().strip() if flag.exists() else ""
        return getattr(errno, code) if code == when else None
    def open(self, path, flags, mode=0o777, *args, **kwargs):
        code = self._fault("EROFS") if flags & os.O_CREAT else None
        if code:
            raise OSError(code, os.strerror(code), str(path))
        return os.open(path, flags, mode, *args, **kwargs)
    def write(self, fd, data):
        code = self._fault("ENOSPC")
        if code:
            raise OSError(code, os.strerror(code))
        return os.write(fd, data)

atomic.os = journal.os = FaultyOs()
from pfstui.queue.supervisor import main
sys.exit(main([sys.argv[1]]))
"""


@pytest.mark.parametrize(("code", "fix"), [("ENOSPC", "the disk is full; free some space"),
                                           ("EROFS", "the file system is read-only; point PFSTUI_STATE_DIR")])
def test_full_or_read_only_disk_is_reported_and_nothing_is_overwritten(session: Session, tmp_path: Path, code: str,
                                                                       fix: str):
    flag = tmp_path / "disk-fault"
    log = open(session.dir / "supervisor.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([sys.executable, "-c", FAULTY_SUPERVISOR, str(session.dir), str(flag)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                            cwd=str(session.dir), env=dict(os.environ))
    log.close()
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client = session.client(autostart=False, timeout=5)
                break
            except Exception:
                assert time.monotonic() < deadline and proc.poll() is None, "the supervisor did not start"
                time.sleep(0.05)
        before = {p.name: p.read_bytes() for p in (session.dir / "state.json", session.dir / "state.json.prev")}
        flag.write_text(code)
        client.request(SkipStage(stage="c1"))  # applied in memory; the disk refuses it
        snap = client.request(Status())
        path = session.dir / "state.json"
        # The file named is the first one the save writes (the previous good copy), then the state itself.
        expected = re.compile(rf"cannot write {re.escape(str(path))}(\.prev)?: "
                              rf"{re.escape(os.strerror(getattr(errno, code)))}; {re.escape(fix)}")
        assert snap.save_error and expected.match(snap.save_error), snap.save_error
        assert snap.save_error in snap.state_problem
        assert snap.state.stage("c1").status == "skipped"
        time.sleep(1.0)  # a few ticks of retries
        assert {p.name: p.read_bytes() for p in (path, session.dir / "state.json.prev")} == before, \
            "nothing on disk changed"
        assert not [p.name for p in session.dir.iterdir() if p.name.endswith(".tmp")], "no temp file left"
        # The disk accepts writes again: the change lands, the message goes away.
        flag.unlink()
        state = session.wait(lambda s: statuses(s)["c1"] == "skipped", timeout=10, what="the retried save")
        assert statuses(state)["c2"] == "skipped"
        snap = client.request(Status())
        assert snap.save_error is None and snap.state_problem is None
        client.close()
        said = (session.dir / "supervisor.log").read_text().count("cannot save state")
        assert said == 1, f"the failure is logged once, not on every retry ({said})"
    finally:
        session.shutdown()
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


WRITER = r"""
import os, signal, sys
from pathlib import Path
from pfstui.queue.state import QueueState, Stage
from pfstui.queue.store import SessionStore
import pfstui.infra.atomic as atomic
store = SessionStore(sys.argv[1])
mode = sys.argv[2]
def state(i):
    return QueueState(plan=f"v{i}", stages=[Stage(id=f"s{j}", argv=["x" * 200] * 5) for j in range(150)])
if mode != "loop":
    # Die at one precise point of the second save: SIGKILL, as a crash or a power cut would stop it.
    store.save(state(1))
    store.save(state(1))  # so that state.json.prev exists too
    moment, _, target = mode.partition(":")  # e.g. "mid-write:state.json"
    real_replace, real_write = os.replace, os.write
    def die():
        os.kill(os.getpid(), signal.SIGKILL)
    def temp_of(fd):
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name  # .state.json.<pid>.<hex>.tmp
        return name.startswith(f".{target}.") and name.count(".") == target.count(".") + 4
    class Dying:
        def __getattr__(self, name):
            return getattr(os, name)
        def replace(self, src, dst):
            if moment == "before-rename" and Path(dst).name == target:
                die()
            return real_replace(src, dst)
        def write(self, fd, data):
            if moment == "mid-write" and temp_of(fd):
                real_write(fd, bytes(data)[: len(data) // 3])
                die()
            return real_write(fd, data)
    atomic.os = Dying()
    store.save(state(2))
    sys.exit(3)  # not reached
i = 0
print("ready", flush=True)
while True:
    i += 1
    store.save(state(i))
"""


def load_clean(directory: Path):
    from pfstui.queue.store import SessionStore

    result = SessionStore(directory).load_report()
    assert result.problem is None, str(result.problem)
    return result.state


@pytest.mark.parametrize("moment", ["before-rename:state.json", "mid-write:state.json", "mid-write:state.json.prev",
                                    "before-rename:state.json.prev"])
def test_write_interrupted_at_the_worst_moment_loads_the_previous_state(tmp_path: Path, moment: str):
    done = subprocess.run([sys.executable, "-c", WRITER, str(tmp_path), moment], timeout=60)
    assert done.returncode == -signal.SIGKILL, "the writer died at that moment"
    assert load_clean(tmp_path).plan == "v1", "the previous state loads"
    assert json.loads((tmp_path / "state.json.prev").read_text())["plan"] == "v1"
    assert list(tmp_path.glob("state.json.damaged-*")) == []


def test_writer_killed_at_random_moments_never_damages_the_state(tmp_path: Path):
    rng = random.Random()
    seen = set()
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "loop"], stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        state = load_clean(tmp_path)
        assert state.plan.startswith("v") and len(state.stages) == 150
        seen.add(state.plan)
    assert list(tmp_path.glob("state.json.damaged-*")) == []
    assert len(seen) > 1, "the kills landed at different points of the writes"
