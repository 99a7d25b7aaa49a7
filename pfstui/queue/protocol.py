"""The supervisor protocol: JSON lines over a Unix socket in the session folder, and its client.

Request:  ``{"id": 1, "protocol": 3, "cmd": "restart", "args": {"stage": "dark"}}``
Reply:    ``{"id": 1, "ok": true, "result": {...}}`` or ``{"id": 1, "ok": false, "error": "one line"}``
Event:    ``{"event": "state", "snapshot": {...}}`` (to subscribed clients, after each change)

What goes in ``args`` and ``result`` is typed in :mod:`pfstui.queue.requests`: a client sends a request
object and gets its reply model back.  Mutations are serialised by the supervisor (one event loop), so two
clients never race.

Versions: every request carries :data:`~pfstui.queue.requests.PROTOCOL`.  The supervisor answers ``hello``
whatever the version (so a client can tell) and refuses anything else from another version with one line
saying so; the client checks the version ``hello`` reports when it connects.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from pfstui.errors import UserError
from pfstui.infra.atomic import atomic_write_text
from pfstui.infra.private import (
    UnsafePathError,
    check_trusted,
    open_private,
    owner_name,
)
from pfstui.queue.requests import (
    PROTOCOL,
    REQUESTS,
    Hello,
    HelloReply,
    Request,
    Snapshot,
)
from pfstui.queue.store import check_session

SOCKET_NAME = "supervisor.sock"
LOG_NAME = "supervisor.log"
SOCKET_RECORD = "socket-dir"  # where the socket is when the session folder's path is too long for one


class SupervisorError(UserError):
    """The supervisor refused a request, or could not be reached; the message says why."""


class ProtocolError(SupervisorError):
    """A malformed request or reply; the message names the field."""


class UnsafeSessionError(SupervisorError):
    """The session folder, its state or the socket's server could be another user's: nothing is started."""


class ProtocolMismatchError(SupervisorError):
    """The supervisor speaks another protocol version (it was started by another pfstui)."""


def socket_path(session_dir: Path | str, *, create: bool = False) -> Path | None:
    """Where the supervisor of ``session_dir`` listens; None when that place is not made yet.

    ``<session>/supervisor.sock`` when that path fits a Unix socket address (108 bytes on Linux).  Otherwise
    somewhere no other user can make or replace first: ``$XDG_RUNTIME_DIR`` when it is a private folder of
    yours, else a private folder of a random name under /tmp, recorded in the (private) session folder.  A fixed
    name such as ``/tmp/pfstui-<uid>`` let another user block the queue by creating it, or a symlink, first.
    Only the supervisor (``create=True``, holding the session lock) makes that folder.
    """
    session_dir = Path(session_dir).absolute()
    path = session_dir / SOCKET_NAME
    if _fits(path):
        return path
    runtime = _private_folder(os.environ.get("XDG_RUNTIME_DIR", ""))
    digest = hashlib.sha256(os.fsencode(session_dir)).hexdigest()[:20]
    if runtime is not None and _fits(runtime / f"pfstui-{digest}.sock"):
        return runtime / f"pfstui-{digest}.sock"
    try:
        folder = _private_folder((session_dir / SOCKET_RECORD).read_text(encoding="utf-8").strip())
    except OSError:
        folder = None
    if folder is None and create:
        folder = _new_socket_folder(session_dir)
    return None if folder is None else folder / SOCKET_NAME


def _fits(path: Path) -> bool:
    return len(os.fsencode(path)) < 100


def _private_folder(value: str) -> Path | None:
    """``value`` when it is a folder of yours that nobody else can enter; None otherwise (never followed)."""
    if not value or not os.path.isabs(value):
        return None
    try:
        check_trusted(value, "socket folder")
        st = os.lstat(value)
    except (OSError, UnsafePathError):
        return None
    return Path(value) if stat.S_ISDIR(st.st_mode) and not st.st_mode & 0o077 else None


def _new_socket_folder(session_dir: Path) -> Path:
    """A fresh private folder (mkdtemp: random name, 0700, never an existing one), recorded in the session."""
    base = tempfile.gettempdir()
    if not _fits(Path(base) / "pfstui-xxxxxxxx" / SOCKET_NAME):
        base = "/tmp"
    folder = Path(tempfile.mkdtemp(prefix="pfstui-", dir=base))
    atomic_write_text(session_dir / SOCKET_RECORD, f"{folder}\n")
    return folder


def bind_private(path: Path) -> socket.socket:
    """A Unix socket bound at ``path`` and 0600 from its first instant.

    Why: binding with the usual umask and chmod-ing afterwards left a window in which another user connected
    (13 of 25 starts).  The umask is set only around the bind, in the supervisor, never for a stage.
    """
    if path.exists() or path.is_symlink():
        path.unlink()  # the caller holds the session lock, so it is stale
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old)
    return sock


def release_socket(path: Path, session_dir: Path) -> None:
    """Remove the socket, and the random folder made for it (a new one is made at the next start)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    if path.parent != Path(session_dir).absolute() and path.name == SOCKET_NAME:
        with contextlib.suppress(OSError):
            path.parent.rmdir()


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket, from the kernel (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def encode(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def encode_request(rid: int, request: Request) -> bytes:
    """Fields left at their default are not sent: a supervisor that predates one (``hello``'s ``read_only``)
    still understands a client that does not use it."""
    args = request.model_dump(mode="json", exclude_defaults=True)
    return encode({"id": rid, "protocol": PROTOCOL, "cmd": request.cmd, "args": args})


def encode_reply(rid: Any, result: BaseModel | None = None, error: str | None = None) -> bytes:
    if error is not None:
        return encode({"id": rid, "ok": False, "error": error})
    return encode({"id": rid, "ok": True, "result": None if result is None else result.model_dump(mode="json")})


def encode_event(snapshot: Snapshot) -> bytes:
    return encode({"event": "state", "snapshot": snapshot.model_dump(mode="json")})


def one_line(exc: ValidationError) -> str:
    """The first problem of a validation error, on one line: ``field: what is wrong``."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "(top level)"
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {msg}"


def decode_request(message: Any, *, peer: str) -> Request:
    """The request in one message from a client; ProtocolError (one line) when it is not one of ours.

    ``peer`` names this supervisor in the version message (which pfstui to use, or to let it exit).
    """
    if not isinstance(message, dict):
        raise ProtocolError(f"a request must be a JSON object, not {type(message).__name__}")
    cmd = message.get("cmd")
    kind = REQUESTS.get(cmd) if isinstance(cmd, str) else None
    if kind is None:
        raise ProtocolError(f"unknown command {cmd!r} (known: {', '.join(REQUESTS)})")
    version = message.get("protocol", 1)  # version 1 did not say
    if version != PROTOCOL and kind is not Hello:
        raise ProtocolError(f"this client speaks queue protocol {version} and {peer} speaks {PROTOCOL}: use the "
                            "pfstui that started the supervisor, or let it exit (it does when idle) and retry")
    try:
        return kind.model_validate(message.get("args") or {})
    except ValidationError as exc:
        raise ProtocolError(f"bad {cmd} request: {one_line(exc)}") from None


def spawn_supervisor(session_dir: Path) -> subprocess.Popen[bytes]:
    """Start a detached supervisor for ``session_dir`` (its own session; output to supervisor.log, 0600)."""
    check_session(session_dir)
    log = open_private(session_dir / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "pfstui.queue.supervisor", str(session_dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
            cwd=str(session_dir), env=dict(os.environ),
        )
    finally:
        os.close(log)


def check_private_session(session_dir: Path) -> None:
    """Refuse (one line, nothing started) a session folder or state another user could have written."""
    try:
        check_session(session_dir)
    except UnsafePathError as exc:
        raise UnsafeSessionError(str(exc)) from None


def check_peer(sock: socket.socket, path: Path) -> None:
    """Talk only to a supervisor of our own uid: a socket served by anyone else is refused, not used."""
    uid = peer_uid(sock)
    if uid != os.getuid():
        raise UnsafeSessionError(f"the socket {path} is served by {owner_name(uid)}, not by you; pfstui talks "
                                 "only to its own supervisor: remove that socket")


class SupervisorClient:
    """A blocking client (use it from a worker thread in the UI). Starts the supervisor when needed."""

    def __init__(self, session_dir: Path | str, *, autostart: bool = True, timeout: float = 10.0,
                 read_only: bool = False) -> None:
        self.dir = Path(session_dir)
        self.autostart = autostart
        #: Said in the hello: the supervisor then refuses every change asked on this connection.
        self.read_only = read_only
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    # --- connection ------------------------------------------------------------------------------------
    def connect(self) -> SupervisorClient:
        """Connect, starting a supervisor when none answers.

        An idle supervisor may be exiting just as we arrive: it still holds the session lock, so the one we
        start gives way and exits, and then the old one is gone too.  So a spawned supervisor that has
        exited without serving is spawned again (at most once a second) until the deadline.
        """
        if self.autostart or os.path.lexists(self.dir):
            check_private_session(self.dir)
        deadline = time.monotonic() + self.timeout
        spawned: subprocess.Popen[bytes] | None = None
        spawned_at = 0.0
        last: Exception | None = None
        while time.monotonic() < deadline:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                path = socket_path(self.dir)
                if path is None:
                    raise FileNotFoundError(f"no socket folder recorded in {self.dir} yet")
                sock.connect(str(path))
                check_peer(sock, path)
                self._sock = sock
                self._check(self.request(Hello(read_only=self.read_only)))
                return self
            except (ProtocolMismatchError, UnsafeSessionError):
                sock.close()
                self.close()
                raise
            except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, BrokenPipeError,
                    SupervisorError) as exc:
                # SupervisorError here: the connection was accepted, then closed (a supervisor shutting down).
                sock.close()
                self._sock, self._buf = None, b""
                last = exc
                if not self.autostart:
                    break
                now = time.monotonic()
                if spawned is None or (spawned.poll() is not None and now - spawned_at >= 1.0):
                    spawned, spawned_at = spawn_supervisor(self.dir), now
                time.sleep(0.1)
        raise SupervisorError(
            f"cannot reach the supervisor of {self.dir} ({last}); see {self.dir / LOG_NAME}"
        )

    def _check(self, hello: HelloReply) -> None:
        if hello.protocol != PROTOCOL:
            raise ProtocolMismatchError(
                f"the supervisor of {self.dir} (pid {hello.pid}) speaks queue protocol {hello.protocol} and this "
                f"pfstui {PROTOCOL}: use the pfstui that started it, or let it exit (it does when idle) and retry")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> SupervisorClient:
        return self.connect() if self._sock is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- messages --------------------------------------------------------------------------------------
    def _read_message(self, timeout: float | None) -> dict[str, Any] | None:
        assert self._sock is not None
        while b"\n" not in self._buf:
            self._sock.settimeout(timeout)
            try:
                chunk = self._sock.recv(1 << 16)
            except TimeoutError:
                return None
            if not chunk:
                raise SupervisorError("the supervisor closed the connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError as exc:
            raise ProtocolError(f"bad message from the supervisor: {exc}") from None

    def request[R: BaseModel](self, request: Request[R]) -> R:
        """Send ``request`` and return its typed reply; SupervisorError (one line) when it is refused."""
        if self._sock is None:
            self.connect()
        self._next_id += 1
        rid = self._next_id
        assert self._sock is not None
        self._sock.sendall(encode_request(rid, request))
        while True:
            msg = self._read_message(self.timeout)
            if msg is None:
                raise SupervisorError(f"no reply from the supervisor to {request.cmd!r} within {self.timeout:.0f} s")
            if "event" in msg:
                self._events.append(msg)
                continue
            if msg.get("id") != rid:
                continue
            if not msg.get("ok"):
                raise SupervisorError(msg.get("error") or "request refused")
            try:
                return request.reply.model_validate(msg.get("result"))  # type: ignore[return-value]
            except ValidationError as exc:
                raise ProtocolError(f"bad reply to {request.cmd} from the supervisor: {one_line(exc)}") from None

    def events(self, timeout: float | None = None) -> Iterator[Snapshot | None]:
        """Yield each state event's snapshot as it comes (after ``subscribe``); None when ``timeout`` passes
        quietly."""
        while True:
            while self._events:
                yield self._snapshot(self._events.pop(0))
            msg = self._read_message(timeout)
            if msg is None:
                yield None
            elif msg.get("event") == "state":
                yield self._snapshot(msg)

    @staticmethod
    def _snapshot(event: dict[str, Any]) -> Snapshot:
        try:
            return Snapshot.model_validate(event.get("snapshot"))
        except ValidationError as exc:
            raise ProtocolError(f"bad state event from the supervisor: {one_line(exc)}") from None
