"""The typed queue contract: every request has a handler, requests and replies round-trip the wire, and a
client and a supervisor of different protocol versions refuse each other in one line."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

from pfstui.queue import protocol
from pfstui.queue.handlers import HANDLERS
from pfstui.queue.model import StageStatus
from pfstui.queue.protocol import (
    ProtocolError,
    ProtocolMismatchError,
    SupervisorClient,
    SupervisorError,
)
from pfstui.queue.requests import (
    PROTOCOL,
    REQUESTS,
    EditStage,
    Hello,
    HelloReply,
    KillStage,
    LoadPlan,
    NextRun,
    RestartStage,
    SetParallel,
    Shutdown,
    Snapshot,
    StageChanged,
    Status,
)
from pfstui.queue.state import QueueState, Stage


def test_every_request_has_one_handler():
    assert set(HANDLERS) == set(REQUESTS.values())
    assert {cls.cmd for cls in REQUESTS.values()} == {
        "hello", "status", "subscribe", "load_plan", "run", "pause_queue", "resume_queue", "pause", "resume", "kill",
        "restart", "skip", "edit", "approve", "reject", "set_parallel", "shutdown"}
    # a frozen session (unreadable state file) still answers these, and refuses every other request
    assert {cls.cmd for cls in REQUESTS.values() if not cls.changes_state} == {"hello", "status", "subscribe",
                                                                                "shutdown"}


@pytest.mark.parametrize("request_", [
    Hello(), Status(), LoadPlan(path="/p.yaml", repo="/r"), KillStage(stage="bias"),
    RestartStage(stage="bias", overrides={"config": ["isr:doCrosstalk=False"], "processes": 2}),
    RestartStage(stage="bias", full=True), EditStage(stage="bias", path="/p.yaml", fields=["config"]),
    SetParallel(parallel=3), Shutdown(),
])
def test_requests_round_trip_the_wire(request_):
    line = protocol.encode_request(7, request_)
    message = json.loads(line)
    assert message["id"] == 7 and message["protocol"] == PROTOCOL and message["cmd"] == request_.cmd
    assert protocol.decode_request(message, peer="the supervisor") == request_


def test_a_snapshot_round_trips_with_its_next_runs():
    snap = Snapshot(version=3, session="/s", supervisor_pid=12,
                    state=QueueState(stages=[Stage(id="bias", name="bias", status="failed")]),
                    next_runs={"bias": NextRun(argv=["pipetask", "run", "-c", "a b"], head=2)})
    event = json.loads(protocol.encode_event(snap))
    again = Snapshot.model_validate(event["snapshot"])
    assert again == snap and again.stages[0].status is StageStatus.FAILED
    assert event["snapshot"]["state"]["stages"][0]["status"] == "failed"  # the same word on the wire


@pytest.mark.parametrize(("message", "said"), [
    ({"protocol": PROTOCOL, "cmd": "set_parallel", "args": {"parallel": 0}},
     "bad set_parallel request: parallel: 0 is not a whole number from 1 to 1000"),
    ({"protocol": PROTOCOL, "cmd": "set_parallel", "args": {"parallel": 1e22}},
     "bad set_parallel request: parallel: 1e+22 is not a whole number from 1 to 1000"),
    ({"protocol": PROTOCOL, "cmd": "set_parallel", "args": {"parallel": 10**22}},
     "bad set_parallel request: parallel: 10000000000000000000000 is not a whole number from 1 to 1000"),
    ({"protocol": PROTOCOL, "cmd": "set_parallel", "args": {"parallel": 2.5}},
     "bad set_parallel request: parallel: 2.5 is not a whole number from 1 to 1000"),
    ({"protocol": PROTOCOL, "cmd": "set_parallel", "args": {"parallel": True}},
     "bad set_parallel request: parallel: True is not a whole number from 1 to 1000"),
    ({"protocol": PROTOCOL, "cmd": "kill", "args": {}}, "bad kill request: stage: Field required"),
    ({"protocol": PROTOCOL, "cmd": "kill", "args": {"stage": "a", "signal": 9}}, "bad kill request: signal: Extra"),
    ({"protocol": PROTOCOL, "cmd": "explode", "args": {}}, "unknown command 'explode' (known: hello, status,"),
    (["not", "an", "object"], "a request must be a JSON object, not list"),
])
def test_bad_requests_are_refused_in_one_line(message, said: str):
    with pytest.raises(ProtocolError) as err:
        protocol.decode_request(message, peer="the supervisor")
    assert str(err.value).startswith(said) and "\n" not in str(err.value)


def test_a_client_of_another_version_is_told_in_one_line():
    # A version-1 client (no version on its requests): hello is answered, so that it can tell ...
    assert protocol.decode_request({"id": 1, "cmd": "hello", "args": {}}, peer="x") == Hello()
    # ... and anything else is refused, saying what to do.
    with pytest.raises(ProtocolError) as err:
        protocol.decode_request({"id": 2, "cmd": "status", "args": {}}, peer="the supervisor of /s (pid 5)")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"this client speaks queue protocol 1 and the supervisor of /s (pid 5) speaks {PROTOCOL}")
    assert "use the pfstui that started the supervisor" in message


def _fake_supervisor(session: Path, reply_to_hello: dict) -> threading.Thread:
    """A supervisor of another version: it listens where a real one would and answers one hello."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(protocol.socket_path(session)))
    server.listen(1)

    def serve() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                request = json.loads(conn.makefile().readline())
                conn.sendall(protocol.encode({"id": request["id"], "ok": True, "result": reply_to_hello}))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_supervisor_of_another_version_is_named_at_once(tmp_path: Path):
    session = tmp_path / "s"
    session.mkdir()
    thread = _fake_supervisor(session, {"protocol": 1, "pid": 4242, "session": str(session)})
    client = SupervisorClient(session, autostart=False, timeout=10)
    with pytest.raises(ProtocolMismatchError) as err:
        client.connect()  # at once: no waiting for the timeout, no supervisor started in its place
    thread.join(5)
    message = str(err.value)
    assert "\n" not in message and isinstance(err.value, SupervisorError)
    assert f"the supervisor of {session} (pid 4242) speaks queue protocol 1 and this pfstui {PROTOCOL}" in message


def test_replies_are_typed(tmp_path: Path):
    assert SupervisorClient._snapshot({"event": "state", "snapshot": Snapshot(
        version=1, session="/s", supervisor_pid=1, state=QueueState()).model_dump(mode="json")}).version == 1
    assert StageChanged.model_validate({"stage": "a", "status": "skipped"}).status is StageStatus.SKIPPED
    assert HelloReply.model_validate({"protocol": 2, "pid": 1, "session": "/s"}).protocol == 2


def test_a_live_supervisor_refuses_a_version_1_client(tmp_path: Path, monkeypatch):
    """An app of the untyped protocol talking to this supervisor: one line telling what to do, not a crash."""
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PFSTUI_SUPERVISOR_IDLE", "10")
    session = tmp_path / "state" / "sessions" / "old-client"
    client = SupervisorClient(session).connect()  # starts one
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as old:
            old.connect(str(protocol.socket_path(session)))
            old.sendall(b'{"id": 1, "cmd": "hello", "args": {}}\n{"id": 2, "cmd": "skip", "args": {"stage": "a"}}\n')
            lines = old.makefile()
            replies = lines.readline(), lines.readline()
        hello, skip = (json.loads(r) for r in replies)
        assert hello["ok"] and hello["result"]["protocol"] == PROTOCOL
        assert not skip["ok"] and skip["error"].startswith("this client speaks queue protocol 1 and the supervisor of")
        assert client.request(Status()).state.stages == [], "nothing was changed"
    finally:
        client.request(Shutdown())
        client.close()
