"""The queue explains itself (issue 15): why each stage that has not started is not running, the queue's
phase, a paused stage's stopped clock, and one-line answers to bad restart options.

The rules are pure functions; the rest goes through a real supervisor running real ``pipetask`` and
``butler`` stages on a copy of the demo repository, and through the ``pfstui`` command.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import pfstui.cli.main as cli
from pfstui.queue import rules
from pfstui.queue.model import StageStatus
from pfstui.queue.protocol import SupervisorClient, SupervisorError
from pfstui.queue.requests import (
    KillStage,
    PauseQueue,
    PauseStage,
    RestartStage,
    ResumeStage,
    Run,
    SetParallel,
    Shutdown,
    Status,
)
from pfstui.queue.state import Attempt, QueueState, Stage
from pfstui.queue.store import SessionStore
from tests.queue.test_rules import make
from tests.queue.test_supervisor import (  # noqa: F401 - session: the fixture, used by name
    CERTIFY_BIAS,
    bias_stage,
    session,
    stage_of,
    wait_for,
    write_plan,
)


# --- the rules -------------------------------------------------------------------------------------------------
def kinds(state: QueueState) -> dict[str, list[str]]:
    return {sid: [w.kind for w in ws] for sid, ws in rules.waits(state, state.parallel).items()}


def test_each_waiting_stage_gets_its_reasons_most_pressing_first():
    st = make(("a", [], "running"), ("b", ["a"], "queued"), ("c", [], "queued"), ("d", ["b", "c"], "queued"),
              ("e", ["gone"], "queued"), ("f", [], "done"))
    assert kinds(st) == {"b": ["dependency"], "c": ["parallel"], "d": ["dependency"], "e": ["dependency"]}
    waits = rules.waits(st, 1)
    assert waits["b"][0].text == "waits for a (running)" and waits["b"][0].label == "after a"
    assert waits["d"][0].text == "waits for b (queued) and c (queued)" and waits["d"][0].label == "after 2 stages"
    assert waits["e"][0].text == "waits for gone (not in the queue)"
    assert waits["c"][0].stages == ("a",) and "(1 at once) is reached: a running" in waits["c"][0].text
    st.queue_paused = True
    assert kinds(st)["b"] == ["dependency", "paused"] and kinds(st)["c"] == ["paused"]


def test_the_parallel_reason_follows_what_ready_starts():
    """With room for two, the first ready stage starts at the next tick and the second waits for the limit."""
    st = make(("a", [], "running"), ("b", [], "queued"), ("c", [], "queued"), parallel=2)
    assert rules.ready(st, 2) == ["b"]
    waits = rules.waits(st, 2)
    assert waits["b"][0].kind == "starting"
    assert waits["c"][0].kind == "parallel" and waits["c"][0].stages == ("a", "b")
    assert "a running, b starting" in waits["c"][0].text


def test_a_long_dependency_name_keeps_the_label_short():
    name = "certify-fiberProfiles"
    st = make((name, [], "running"), ("fiberNorms", [name], "queued"))
    wait = rules.waits(st, 1)["fiberNorms"][0]
    assert wait.label == "after 1 stage" and name in wait.text


def test_a_stage_being_launched_says_so():
    st = make(("a", [], "queued"))
    st.stage("a").attempts.append(Attempt(number=1, argv=["pipetask"], status="starting"))
    assert rules.waits(st, 1)["a"][0].kind == "starting" and "runs once" in rules.waits(st, 1)["a"][0].text


def test_the_phase_of_the_queue():
    assert rules.phase(make(("a", [], "done"), ("b", [], "skipped"))) == "finished"
    assert rules.phase(make(("a", [], "done"), ("b", [], "skipped"), paused=True)) == "finished"
    assert rules.phase(make(("a", [], "done"), ("b", ["a"], "failed"))) == "idle"
    assert rules.phase(make(("a", [], "failed"), ("b", ["a"], "queued"), paused=True)) == "paused"
    assert rules.phase(make(("a", [], "running"))) == "running"
    assert rules.phase(make()) == "empty"


def test_a_paused_attempt_does_not_count_its_pause():
    start = datetime(2030, 1, 1, tzinfo=UTC)
    a = Attempt(number=1, argv=["x"], started_at=start.isoformat(),
                paused_at=(start + timedelta(seconds=30)).isoformat(), paused_seconds=5)
    assert a.run_seconds(start + timedelta(hours=2)) == 25
    a.ended_at = (start + timedelta(seconds=90)).isoformat()  # killed while paused
    assert a.run_seconds() == 25


# --- through the supervisor ------------------------------------------------------------------------------------
OTHER = """  - name: other
    kind: certify
    input: nothing
    target: PFS/calib
    dataset_type: bias
    begin: 2000-01-01T00:00:00
"""


@pytest.mark.integration
def test_the_snapshot_says_why_and_the_clock_stops_while_paused(session, demo_repo: Path, tmp_path: Path):  # noqa: F811
    plan = write_plan(tmp_path, demo_repo, bias_stage(["isr:demoDelay=60"]) + CERTIFY_BIAS + OTHER)
    client, sdir = session(plan, demo_repo)
    snap = client.request(Status())
    assert {sid: [w.kind for w in ws] for sid, ws in snap.waiting.items()} == {
        "bias": ["paused"], "certify-bias": ["dependency", "paused"], "other": ["paused"]}
    assert snap.waiting["certify-bias"][0].text == "waits for bias (queued)"
    client.request(Run())
    wait_for(sdir, lambda s: stage_of(s, "bias")["status"] == "running")
    snap = client.request(Status())
    assert "bias" not in snap.waiting
    assert snap.waiting["certify-bias"][0].text == "waits for bias (running)"
    assert snap.waiting["other"][0].kind == "parallel" and snap.waiting["other"][0].stages == ("bias",)

    client.request(PauseStage(stage="bias"))
    paused = client.request(Status()).state.stage("bias").last_attempt
    assert paused.paused_at is not None
    assert paused.run_seconds() == paused.run_seconds(datetime.now(UTC) + timedelta(hours=1)), "its clock stopped"
    client.request(ResumeStage(stage="bias"))
    resumed = client.request(Status()).state.stage("bias").last_attempt
    assert resumed.paused_at is None and resumed.paused_seconds >= 0
    assert resumed.run_seconds(datetime.now(UTC) + timedelta(hours=1)) > 3000, "it counts again"

    client.request(SetParallel(parallel=2))  # `+` in the Queue pane, `pfstui queue parallel 2`
    wait_for(sdir, lambda s: stage_of(s, "other")["status"] != "queued")
    client.request(PauseQueue())
    client.request(KillStage(stage="bias"))
    wait_for(sdir, lambda s: stage_of(s, "bias")["status"] == "killed", timeout=40)


def one_line(capsys, *argv: str) -> str:
    assert cli.main([str(a) for a in argv]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("pfstui: error: ") and "validation error" not in err, err
    assert "pydantic" not in err and "unexpected" not in err, err
    return err


@pytest.mark.integration
def test_bad_restart_options_are_one_line_naming_the_field_and_the_fix(session, demo_repo: Path,  # noqa: F811
                                                                     tmp_path: Path, capsys):
    plan = write_plan(tmp_path, demo_repo, bias_stage() + CERTIFY_BIAS)
    client, _ = session(plan, demo_repo)
    err = one_line(capsys, "queue", "restart", "bias", "--set", "config=[isr:doCrosstalk=False]", "--plan", plan)
    assert "config starts like a list but is not JSON" in err
    assert """--set 'config=["isr:doCrosstalk=False"]'""" in err and "--set config+=isr:doCrosstalk=False" in err
    err = one_line(capsys, "queue", "restart", "bias", "--set", "processes=abc", "--plan", plan)
    assert "stage 'bias': processes: must be a whole number, got str 'abc'" in err
    err = one_line(capsys, "queue", "restart", "bias", "--set", "pipline=x.yaml", "--plan", plan)
    assert "unknown field 'pipline' (did you mean 'pipeline'?)" in err
    with pytest.raises(SupervisorError) as caught:  # the restart editor's path: the same words
        client.request(RestartStage(stage="bias", overrides={"config": "isr:doCrosstalk=False"}))
    assert str(caught.value).count("\n") == 0 and "config: must be a list" in str(caught.value)


@pytest.mark.integration
def test_status_prints_each_event_time_and_the_phase(session, demo_repo: Path, tmp_path: Path, capsys):  # noqa: F811
    plan = write_plan(tmp_path, demo_repo, bias_stage() + CERTIFY_BIAS)
    client, sdir = session(plan, demo_repo)
    client.request(Shutdown())
    client.close()
    wait_gone(sdir)
    state = QueueState.model_validate_json((sdir / "state.json").read_text())
    ended = {"bias": datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC),
             "certify-bias": datetime(2001, 2, 3, 4, 7, 8, tzinfo=UTC)}
    for stage in state.stages:
        stage.status = StageStatus.DONE
        stage.attempts = [Attempt(number=1, argv=["x"], status="succeeded", exit_code=0,
                                  started_at=(ended[stage.id] - timedelta(minutes=1)).isoformat(),
                                  ended_at=ended[stage.id].isoformat())]
    SessionStore(sdir).save(state)
    assert cli.main(["status", "--plan", str(plan)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "queue finished  parallel 1" in lines[0], lines[0]
    for sid, when in ended.items():
        line = next(line for line in lines if f" {sid} " in line)
        assert line.startswith(when.astimezone().strftime("%m-%d %H:%M:%S ")), line

    state.stages.append(Stage(id="later", depends_on=["gone"]))
    client = SupervisorClient(sdir).connect()
    client.request(Shutdown())
    client.close()
    wait_gone(sdir)
    SessionStore(sdir).save(state)
    assert cli.main(["status", "--plan", str(plan)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "queue PAUSED  parallel 1" in lines[0], lines[0]
    at = next(n for n, line in enumerate(lines) if line.startswith(" " * 15 + "later "))
    assert lines[at + 1:at + 3] == ["    waiting: waits for gone (not in the queue)",
                                    "    waiting: the queue is paused: nothing new starts until it runs again"]
    assert cli.main(["status", "--plan", str(plan), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    later = next(s for s in doc["stages"] if s["id"] == "later")
    assert doc["phase"] == "paused" and later["waiting"][0]["kind"] == "dependency"


def wait_gone(sdir: Path) -> None:
    """Until the supervisor told to shut down has let go of the session (its next one reads our state)."""
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            SupervisorClient(sdir, autostart=False, timeout=1).connect().close()
        except Exception:  # noqa: BLE001 - nobody listening: gone
            return
        time.sleep(0.05)
    raise AssertionError("the supervisor did not exit")
