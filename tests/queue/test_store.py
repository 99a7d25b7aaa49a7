"""Session state document: versioned, atomic, damage moved aside with previous good copy used; session lock; paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import pfstui.infra.paths as paths
from pfstui.infra.atomic import StateWriteError
from pfstui.queue.model import AttemptStatus, StageStatus
from pfstui.queue.state import (
    SCHEMA_VERSION,
    Attempt,
    BpsAttempt,
    Progress,
    Quanta,
    QueueState,
    Stage,
    StageExtra,
    TaskCounts,
)
from pfstui.queue.store import SessionLock, SessionStore, StateError, StateLockedError


def _state(label: str = "bias") -> QueueState:
    attempt = Attempt(number=1, argv=["pipetask", "run", "-j", "2"], pid=123, start_time=1764000000.5, pgid=123,
                      waiter_pid=122, waiter_start_time=1764000000.4, log_path="/tmp/a.log",
                      status_path="/tmp/a.status.json", status="failed", exit_code=1,
                      quanta=Quanta(offset=900, progress=Progress(tasks={"isr": TaskCounts(total=6, done=5, failed=1)})),
                      started_at="2026-11-25T10:00:00+00:00", ended_at="2026-11-25T10:05:00+00:00")
    stage = Stage(id=f"{label}-1", name=label, argv=attempt.argv, status="failed", attempts=[attempt],
                  extra=StageExtra(kind="pipetask", overrides={"query": label}))
    return QueueState(repo="/data/repo", plan="/data/plan.yaml", queue_paused=True,
                      pipelines={"bias.yaml", "dark.yaml"}, stages=[stage])


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_empty_session_loads_as_empty_queue(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s")
    state = store.load()
    assert state == QueueState() and state.schema_version == SCHEMA_VERSION
    assert store.last_problem is None


def test_roundtrip_and_previous_good_copy(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    first = _state("bias")
    store.save(first)
    assert not store.prev_path.exists()
    on_disk = json.loads(store.path.read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION
    assert on_disk["pipelines"] == ["bias.yaml", "dark.yaml"]  # a set, stored sorted
    assert on_disk["stages"][0]["attempts"][0]["quanta"]["progress"]["tasks"]["isr"]["failed"] == 1
    assert on_disk["stages"][0]["status"] == "failed" and on_disk["stages"][0]["attempts"][0]["status"] == "failed"

    loaded = store.load()
    assert loaded == first
    assert loaded.stage("bias-1").last_attempt.exit_code == 1  # type: ignore[union-attr]
    assert loaded.stage("bias-1").next_attempt_number() == 2  # type: ignore[union-attr]

    second = _state("dark")
    store.save(second)
    assert store.load().stages[0].id == "dark-1"
    assert json.loads(store.prev_path.read_text())["stages"][0]["id"] == "bias-1"
    assert _files(tmp_path) == ["state.json", "state.json.prev"]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda good: good[: len(good) // 2], "invalid JSON"),  # truncated
        (lambda good: b"", "empty"),
        (lambda good: b"\x89PNG\r\n\x1a\n\x00\x00garbage", "not UTF-8"),
        (lambda good: b"[1, 2, 3]", "not an object"),
        (lambda good: good.replace(b'"queue_paused": true', b'"queue_paused": "maybe"'), "queue_paused"),
        (lambda good: good.replace(b'"schema_version": 1', b'"schema_version": 7'), "newer pfstui (schema 7"),
    ],
    ids=["truncated", "empty", "binary", "not-object", "wrong-type", "future-schema"],
)
def test_damaged_state_is_moved_aside_and_previous_good_used(tmp_path: Path, damage, reason: str) -> None:
    store = SessionStore(tmp_path)
    store.save(_state("bias"))
    store.save(_state("dark"))  # prev = bias, current = dark
    damaged = damage(store.path.read_bytes())
    store.path.write_bytes(damaged)

    result = store.load_report()
    assert result.state.stages[0].id == "bias-1"
    assert result.recovered_from == store.prev_path
    problem = result.problem
    assert isinstance(problem, StateError) and store.last_problem is problem
    message = str(problem)
    assert str(store.path) in message and reason in message and "previous good copy" in message
    assert "\n" not in message
    assert problem.moved_to is not None and problem.moved_to.name.startswith("state.json.damaged-")
    assert problem.moved_to.read_bytes() == damaged  # kept byte for byte, not overwritten
    assert not store.path.exists()

    # The next save writes a fresh state.json; the damaged copy stays where it is.
    store.save(result.state)
    assert problem.moved_to.read_bytes() == damaged
    assert store.load().stages[0].id == "bias-1" and store.last_problem is None


def test_damaged_state_without_previous_copy_raises(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    store.path.write_text('{"schema_version": 1, "stages": [')
    with pytest.raises(StateError) as info:
        store.load()
    message = str(info.value)
    assert str(store.path) in message and "no previous good copy" in message and "empty queue" in message
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("state.json.damaged-")]
    assert len(moved) == 1 and moved[0].read_text() == '{"schema_version": 1, "stages": ['
    assert store.load() == QueueState()  # after moving aside, a fresh start is possible


def test_two_damaged_copies_never_overwrite_each_other(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    for text in ("garbage one", "garbage two"):
        store.path.write_text(text)
        with pytest.raises(StateError):
            store.load()
    kept = sorted(p.read_text() for p in tmp_path.iterdir() if p.name.startswith("state.json.damaged-"))
    assert kept == ["garbage one", "garbage two"]


def test_save_never_promotes_a_damaged_file_to_prev(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    store.save(_state("bias"))
    store.path.write_text("{ half")
    store.save(_state("dark"))
    assert not store.prev_path.exists()  # bias was only ever in the (now damaged) current file
    assert any(p.read_text() == "{ half" for p in tmp_path.iterdir() if p.name.startswith("state.json.damaged-"))
    assert store.load().stages[0].id == "dark-1"


def test_failed_save_leaves_state_and_prev_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SessionStore(tmp_path)
    store.save(_state("bias"))
    store.save(_state("dark"))
    before = {name: (tmp_path / name).read_bytes() for name in _files(tmp_path)}
    real_replace = os.replace

    def full_disk(src: str, dst: str) -> None:
        if str(dst).endswith("state.json"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(StateWriteError, match=r"state\.json: No space left on device; the disk is full"):
        store.save(_state("flat"))
    monkeypatch.undo()
    assert store.load().stages[0].id == "dark-1"
    assert _files(tmp_path) == sorted(before)


def test_a_state_file_written_before_the_typed_records_loads(tmp_path: Path) -> None:
    """Schema 1 as pfstui wrote it with free dicts: a stage's ``extra`` held only what was set, an attempt's
    ``quanta`` only what its tracker saved (the parser's progress, with fields the queue does not name)."""
    progress = {"schema": 1, "tasks": {"isr": {"total": 12, "done": 5, "failed": 0, "blocked": 0, "running": 1,
                                               "skipped": 0}},
                "graph_total": 16, "failures": [{"task": "isr", "data_id": {"visit": 12}, "message": "boom",
                                                 "offset": 40, "exit_code": None, "timed_out": False}],
                "running": [["isr:12", "isr"]], "warnings": 2}
    old = {"schema_version": 1, "repo": "/r", "plan": "/p.yaml", "queue_paused": False, "parallel": 1,
           "pipelines": [], "saved_at": None, "stages": [
               {"id": "bias", "name": "bias", "argv": [], "status": "running", "depends_on": [],
                "extra": {"kind": "pipetask", "kill_requested": True, "kill_escalate_at": 1764000000.5},
                "created_at": "2026-11-25T10:00:00+00:00",
                "attempts": [{"number": 1, "argv": ["bps", "submit", "f"], "status": "running",
                              "quanta": {"progress": progress, "bps": {"phase": "submit", "jobs": {"exec_done": 2},
                                                                      "error": None}},
                              "bps": {"workdir": "/w", "submit_dir": "/w/submit", "submit_file": "/w/f",
                                      "mode": "submit", "overrides": {}}}]},
               {"id": "dark", "name": "dark", "status": "queued", "extra": {"kind": "pipetask"},
                "attempts": [{"number": 1, "argv": ["x"], "status": "spawn_failed", "quanta": {}}]}]}
    store = SessionStore(tmp_path)
    store.path.write_text(json.dumps(old))
    state = store.load()
    bias, dark = state.stages
    assert bias.status is StageStatus.RUNNING and bias.extra.kill_requested and bias.extra.overrides == {}
    attempt = bias.attempts[0]
    assert attempt.bps == BpsAttempt(workdir="/w", submit_dir="/w/submit", submit_file="/w/f", mode="submit")
    assert attempt.quanta.bps.jobs == {"exec_done": 2} and attempt.quanta.bps.step is None
    assert attempt.progress.totals() == (5, 0, 0, 12)
    assert dark.attempts[0].status is AttemptStatus.SPAWN_FAILED and dark.attempts[0].quanta == Quanta()
    # what the queue does not name is kept for the parser, unchanged
    store.save(state)
    again = json.loads(store.path.read_text())["stages"][0]["attempts"][0]["quanta"]["progress"]
    assert again["running"] == [["isr:12", "isr"]] and again["tasks"]["isr"]["running"] == 1
    assert again["failures"][0]["exit_code"] is None and again["failures"][0]["offset"] == 40


def test_unknown_field_is_rejected_as_damage(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    data = json.loads(_state().model_dump_json())
    data["stages"][0]["surprise"] = 1
    store.path.write_text(json.dumps(data))
    with pytest.raises(StateError, match=r"stages\.0\.surprise"):
        store.load()


# ------------------------------------------------------------------------------------------ lock


def test_lock_is_exclusive_within_and_across_processes(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    first, second = store.lock(), store.lock()
    assert first.try_acquire() is True
    assert second.try_acquire() is False
    with pytest.raises(StateLockedError, match=f"in use by pid {os.getpid()}"):
        second.acquire_or_raise()
    t0 = time.monotonic()
    with pytest.raises(StateLockedError):
        second.acquire(timeout=0.2)
    assert time.monotonic() - t0 >= 0.2

    probe = textwrap.dedent(
        """
        import sys
        from pfstui.queue.store import SessionLock
        print(SessionLock(sys.argv[1]).try_acquire())
        """
    )
    other = subprocess.run([sys.executable, "-c", probe, str(store.lock_path)], capture_output=True, text=True,
                           timeout=30, check=True)
    assert other.stdout.strip() == "False"
    first.release()
    other = subprocess.run([sys.executable, "-c", probe, str(store.lock_path)], capture_output=True, text=True,
                           timeout=30, check=True)
    assert other.stdout.strip() == "True"
    with second:
        assert second.held and not SessionLock(store.lock_path).try_acquire()
    assert not second.held


def test_lock_is_freed_when_its_holder_dies(tmp_path: Path) -> None:
    holder = textwrap.dedent(
        """
        import sys, time
        from pfstui.queue.store import SessionLock
        lock = SessionLock(sys.argv[1]); assert lock.try_acquire(); print("held", flush=True); time.sleep(30)
        """
    )
    lock_path = tmp_path / "lock"
    proc = subprocess.Popen([sys.executable, "-c", holder, str(lock_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"  # type: ignore[union-attr]
        mine = SessionLock(lock_path)
        assert mine.try_acquire() is False
        assert mine.holder()["pid"] == proc.pid  # type: ignore[index]
        proc.kill()
        proc.wait(timeout=5)
        mine.acquire(timeout=2)
        assert mine.held
        mine.release()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------ paths


def test_paths_follow_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PFSTUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PFSTUI_CONFIG_DIR", str(tmp_path / "config"))
    assert paths.state_dir() == tmp_path / "state"
    assert paths.data_dir() == tmp_path / "data"
    assert paths.config_dir() == tmp_path / "config"
    assert paths.demo_repo_dir() == tmp_path / "data" / "demo-repo"
    monkeypatch.delenv("PFSTUI_STATE_DIR")
    assert paths.state_dir().name == "pfstui" and paths.state_dir().is_absolute()


def test_session_dir_name_is_readable_stable_and_distinct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo_a, repo_b = tmp_path / "a" / "My Repo", tmp_path / "b" / "My Repo"
    plan = tmp_path / "weekly plan.yaml"
    name = paths.session_dir_name(repo_a, plan)
    assert name.startswith("my-repo-weekly-plan-") and len(name.rsplit("-", 1)[1]) == 12
    monkeypatch.chdir(tmp_path)
    assert paths.session_dir_name(Path("a") / "My Repo", "weekly plan.yaml") == name  # relative = absolute
    assert paths.session_dir_name(repo_b, plan) != name  # same basename, other place
    assert paths.session_dir_name(repo_a, tmp_path / "other.yaml") != name
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "st"))
    assert paths.session_dir(repo_a, plan) == tmp_path / "st" / "sessions" / name
