"""A second operator on the same host, in the same group, tries the issue's attacks on alice's queue.

Reproduced as real users (``tests/security/users.py``; root only, skipped elsewhere, saying why): (a) bob
swaps a crafted ``state.json`` into alice's session; (b) bob connects to alice's supervisor socket in a loop while
it starts; (c) bob squats the socket's fallback folder; (d) with umask 022, bob reads alice's files.  Each test
prints its counts (attempts, successes) for the record.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path

import psutil
import pytest

from pfstui.queue.state import QueueState, Stage
from tests.security.users import TwoUsers, two_users

#: As alice: open (starting its supervisor) the session in argv[1], point `pfstui status` at it, print where the
#: socket is; argv[2] == "stop" shuts the supervisor down afterwards.
START = """
import sys
from pathlib import Path
from pfstui.infra.atomic import atomic_write_text
from pfstui.infra.paths import state_dir
from pfstui.queue import protocol
from pfstui.queue.requests import Shutdown, Status
s = Path(sys.argv[1])
c = protocol.SupervisorClient(s, timeout=60).connect()
c.request(Status())
atomic_write_text(state_dir() / "current-session", f"{s}\\n")
print(protocol.socket_path(s))
if sys.argv[2] == "stop":
    c.request(Shutdown())
"""

#: As alice: shut down the supervisor of the session in argv[1].
STOP = """
import sys
from pfstui.queue import protocol
from pfstui.queue.requests import Shutdown
protocol.SupervisorClient(sys.argv[1], autostart=False).connect().request(Shutdown())
"""

#: As bob: each operation in argv[1] (JSON [[op, path, arg]]) is tried; prints how many succeeded.
ATTEMPTS = """
import json, os, sys
done = []
for op, path, arg in json.loads(sys.argv[1]):
    try:
        if op == "read":
            open(path, "rb").read()
        elif op == "list":
            os.listdir(path)
        elif op == "write":
            open(path, "ab").write(b"x")
        elif op == "replace":
            open(arg, "w").write(sys.argv[2]); os.replace(arg, path)
        elif op == "create":
            open(path, "x").write("x")
        done.append(op + " " + path)
    except OSError:
        pass
print(json.dumps(done))
"""

#: As bob: connect to the socket argv[1] until the file argv[2] exists; a connection is usable when a hello
#: gets a reply.  Prints {attempts, connected, usable}.
RACE = """
import json, os, socket, sys, time
path, stop = sys.argv[1], sys.argv[2]
counts = {"attempts": 0, "connected": 0, "usable": 0}
deadline = time.monotonic() + 300
while not os.path.exists(stop) and time.monotonic() < deadline:
    counts["attempts"] += 1
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        counts["connected"] += 1
        s.settimeout(2)
        s.sendall(b'{"id": 1, "protocol": 2, "cmd": "hello", "args": {}}\\n')
        if b'"ok"' in s.recv(4096):
            counts["usable"] += 1
    except OSError:
        pass
    finally:
        s.close()
print(json.dumps(counts))
"""


@pytest.fixture(scope="module")
def users():
    with two_users() as made:
        yield made


@pytest.fixture(autouse=True)
def _no_leftovers(users: TwoUsers):
    yield
    users.stop_processes()


def bob_tries(users: TwoUsers, ops: list[tuple[str, Path, str]], payload: str = "") -> list[str]:
    done = users.py(users.bob, ATTEMPTS, json.dumps([[op, str(p), a] for op, p, a in ops]), payload)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def start(users: TwoUsers, session: Path, *, stop: bool = True, **env: str) -> Path:
    done = users.py(users.alice, START, str(session), "stop" if stop else "keep", **env)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


def supervisors_of(uid: int) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["uids", "cmdline"]):
        if proc.info["uids"] and proc.info["uids"].real == uid and "pfstui.queue.supervisor" in (
                proc.info["cmdline"] or []):
            out.append(proc)
    return out


def wait_gone(uid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while supervisors_of(uid) and time.monotonic() < deadline:
        time.sleep(0.1)


def test_a_group_member_cannot_swap_in_a_crafted_state(users: TwoUsers) -> None:
    alice, bob = users.alice, users.bob
    state = alice.home / "state-a"  # made loose below: no other test uses it
    session = state / "sessions" / "night"
    start(users, session, PFSTUI_STATE_DIR=str(state))
    crafted = QueueState(plan=str(bob.home / "evil.yaml"), queue_paused=False,
                         stages=[Stage(id="evil", name="evil")]).model_dump_json()
    staging = bob.home / "crafted.json"
    ops = [("replace", session / "state.json", str(staging)), ("write", session / "state.json", ""),
           ("create", session / "state.json.prev", ""), ("replace", state / "current-session", str(staging))]
    private = bob_tries(users, ops, crafted)
    assert private == [], private

    # A session left group-writable (as pfstui made them before): bob's swap now lands ...
    wait_gone(alice.uid)
    loosen = "import os, sys\nfor p in sys.argv[1:]: os.chmod(p, 0o775)"
    assert users.py(alice, loosen, str(state), str(session.parent), str(session)).returncode == 0
    legacy = bob_tries(users, ops[:1], crafted)
    assert len(legacy) == 1
    # ... and alice's `pfstui status` refuses it, in one line, running nothing.
    status = users.run(alice, [users.python, "-m", "pfstui", "status"], PFSTUI_STATE_DIR=str(state))
    assert status.returncode == 2, (status.stdout, status.stderr)
    assert status.stderr.count("\n") == 1 and "can be changed by your group" in status.stderr, status.stderr
    assert supervisors_of(alice.uid) == [] and not (session / "stages").exists()
    assert (session / "state.json").read_text() == crafted, "the crafted file is left for inspection, unread"
    print(f"\n(a) group takeover: private session {len(ops)} attempts, {len(private)} succeeded; legacy "
          f"group-writable session: bob's swap landed, alice's status refused it: {status.stderr.strip()}")


def test_bob_never_gets_a_usable_connection_to_alices_socket(users: TwoUsers) -> None:
    """The site opened alice's folders to the group (read-only): bob can reach the socket's path, and races
    each supervisor start to connect before it is private."""
    alice, bob = users.alice, users.bob
    session = alice.home / "state-race" / "sessions" / "race"
    stop = users.base / "race.stop"
    racer = users.popen(bob, RACE, str(session / "supervisor.sock"), str(stop))
    starts = 20
    try:
        for _ in range(starts):
            start(users, session, PFSTUI_GROUP_ACCESS="1", PFSTUI_STATE_DIR=str(session.parents[1]))
            wait_gone(alice.uid)
    finally:
        stop.touch()
        out, err = racer.communicate(timeout=120)
    counts = json.loads(out)
    assert stat.S_IMODE(os.stat(session).st_mode) == 0o750, "the group may enter: the socket itself must hold"
    assert counts["attempts"] > starts and counts["connected"] == 0 and counts["usable"] == 0, (counts, err)
    print(f"\n(b) socket race: {starts} supervisor starts, bob {counts['attempts']} connection attempts, "
          f"{counts['connected']} connected, {counts['usable']} usable")


def test_a_peer_of_another_uid_is_refused(users: TwoUsers) -> None:
    """Even a socket opened to everyone by mistake serves no one else: SO_PEERCRED, one line in the log."""
    alice, bob = users.alice, users.bob
    state = alice.home / "state-peer"  # opened to everyone below: no other test uses it
    session = state / "sessions" / "peer"
    sock = start(users, session, stop=False, PFSTUI_SUPERVISOR_IDLE="60", PFSTUI_STATE_DIR=str(state))
    opened = "import os, sys\nfor p in sys.argv[1:]: os.chmod(p, 0o755)\nos.chmod(sys.argv[-1], 0o777)"
    assert users.py(alice, opened, str(state), str(session.parent), str(session), str(sock)).returncode == 0
    race = users.py(bob, RACE.replace("not os.path.exists(stop) and", "counts['attempts'] < 5 and"),
                    str(sock), "-")
    counts = json.loads(race.stdout)
    log = (session / "supervisor.log").read_text()
    assert counts == {"attempts": 5, "connected": 5, "usable": 0}, (counts, race.stderr)
    assert f"refused a connection from {bob.name} (uid {bob.uid})" in log
    print(f"\n(b') SO_PEERCRED: bob connected {counts['connected']} times to an opened socket, "
          f"{counts['usable']} usable; log: {log.splitlines()[-1]}")


def started_privately(users: TwoUsers, session: Path, squatted: tuple[Path, ...], **env: str) -> Path:
    """Start alice's supervisor; its socket must be in a folder of hers that nobody else can enter."""
    sock = start(users, session, stop=False, **env)
    try:
        assert sock.parent not in squatted and os.stat(sock.parent).st_uid == users.alice.uid
        assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700 and sock.is_socket()
    finally:
        users.py(users.alice, STOP, str(session), **env)
        wait_gone(users.alice.uid)
    return sock


def test_a_squatted_socket_fallback_is_never_used(users: TwoUsers) -> None:
    alice, bob = users.alice, users.bob
    session = alice.state / ("s" * 50) / ("t" * 50)  # too long for a socket address: the fallback is used
    old_name = Path("/tmp") / f"pfstui-{alice.uid}"  # the fixed name pfstui used before
    bob_run = bob.home / "run"
    squat = ("import os, sys\nos.symlink('/nonexistent', sys.argv[1])\nos.mkdir(sys.argv[2])\n"
             "os.chmod(sys.argv[2], 0o777)")
    try:
        assert users.py(bob, squat, str(old_name), str(bob_run)).returncode == 0
        sockets = [started_privately(users, session, (old_name, bob_run))]
        os.unlink(old_name)
        assert users.py(bob, "import os, sys\nos.mkdir(sys.argv[1], 0o777)", str(old_name)).returncode == 0
        sockets.append(started_privately(users, session, (old_name, bob_run), XDG_RUNTIME_DIR=str(bob_run)))
    finally:
        record = session / "socket-dir"
        if record.exists():
            shutil.rmtree(record.read_text().strip(), ignore_errors=True)
        if old_name.is_symlink():
            old_name.unlink()
        elif old_name.exists():
            shutil.rmtree(old_name)
    print(f"\n(c) squatting: 3 squats (a dangling symlink and a folder at {old_name}, a runtime folder of bob's); "
          f"alice's supervisor started {len(sockets)} of 2 times, at {sockets[-1]}")


def test_bob_cannot_read_alices_files_even_with_umask_022(users: TwoUsers) -> None:
    alice = users.alice
    state = alice.home / "state-read"
    session = state / "sessions" / "read"
    start(users, session, umask="022", PFSTUI_STATE_DIR=str(state))
    stage = ("import sys\nfrom pathlib import Path\nfrom pfstui.process import runner\n"
             "from pfstui.infra.journal import default_journal\n"
             "default_journal().append({'kind': 'command', 'event': 'start', 'stage': 'bias'})\n"
             "a = Path(sys.argv[1])\nh = runner.launch(['echo', 'secret'], cwd=a.parents[2], log_path=a / 'stage.log',"
             " status_path=a / 'status.json')\nrunner.wait(h, timeout=60)\n"
             "open(Path.home() / 'notes.txt', 'w').write('plain file')")
    adir = session / "stages" / "bias" / "attempt-1"
    made = users.py(alice, stage, str(adir), umask="022", PFSTUI_STATE_DIR=str(state))
    assert made.returncode == 0, made.stderr
    files = [state / "journal.jsonl", session / "state.json", session / "supervisor.log", session / "lock",
             adir / "stage.log", adir / "status.json"]
    assert all(f.exists() for f in files), [f for f in files if not f.exists()]
    ops = [("read", f, "") for f in files] + [("list", d, "") for d in (state, session, adir)]
    read = bob_tries(users, ops)
    control = bob_tries(users, [("read", alice.home / "notes.txt", "")])
    assert read == [], read
    assert len(control) == 1, "a plain file alice writes under umask 022 is readable: the attempt is real"
    print(f"\n(d) reading under umask 022: {len(ops)} attempts on alice's journal, state, logs and folders, "
          f"{len(read)} succeeded (a plain file of hers: {len(control)} of 1)")
