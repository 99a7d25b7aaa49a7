"""A private PostgreSQL server for the tests, and cheap copies of repositories whose registry is on it.

Why a real server: production PFS registries are PostgreSQL, shared by several operators, and what differs from
SQLite (the driver, READ COMMITTED transactions, the exclusion constraint on validity ranges, advisory locks)
only shows on one.  The server is the Debian ``postgresql`` package's (``.ci/run`` installs it), started by
``initdb`` in a folder of its own under ``/tmp``, listening on a unix socket in that folder and on no network
port, so two xdist workers (each with its own server) never meet.  PostgreSQL refuses to run as root: as root
(CI) the server runs as the package's ``postgres`` user, through ``setpriv``, as tests/security/users.py runs
its users.

A copy of a repository whose registry is on the server is a copy of its folder plus ``CREATE DATABASE ...
TEMPLATE`` (a file copy on the server), with ``butler.yaml`` pointed at the new database: as cheap as copying
a SQLite repository, and as independent.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

#: The registry databases a test may be parametrised over (``indirect`` on the repository fixtures).
REGISTRIES = ("sqlite", "postgresql")
SERVER_USER = "postgres"


def on_registry(request: pytest.FixtureRequest, sqlite_template: str, postgres_template: str) -> Path:
    """The template fixture of the registry the test was parametrised with (``request.param``; SQLite when not)."""
    kind = getattr(request, "param", "sqlite")
    return request.getfixturevalue({"sqlite": sqlite_template, "postgresql": postgres_template}[kind])


def server_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin folder (Debian layout), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def unavailable() -> str | None:
    """Why no server can be started here (None: it can)."""
    if server_bin() is None:
        return "the postgresql server package is not installed (apt-get install postgresql; .ci/run does)"
    import importlib.util

    import sqlalchemy

    if importlib.util.find_spec("psycopg2") is None or not sqlalchemy.__version__.startswith("2.0."):
        return "the postgres extra is not installed (psycopg2, SQLAlchemy 2.0): pip install '.[test]' brings it"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER} user to run the server as"
    return None


class ServerUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


class PgServer:
    """One running cluster; ``url(db)`` is a Butler registry URL for a database on it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.bin = server_bin()

    @classmethod
    def start(cls) -> PgServer:
        """A private cluster (initdb, trust auth on its own socket only), running; :class:`ServerUnavailable` when
        this machine cannot have one (the session fixture then skips, or fails in CI)."""
        reason = unavailable()
        if reason:
            raise ServerUnavailable(reason)
        server = cls(Path(tempfile.mkdtemp(prefix="pfstui-pg-", dir="/tmp")))
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(server.base, entry.pw_uid, entry.pw_gid)
        options = (f"-c listen_addresses='' -c unix_socket_directories='{server.base}' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        try:
            server._ctl("initdb", "-D", str(server.data), "-A", "trust", "-U", SERVER_USER, "-E", "UTF8", "--no-sync")
            server._ctl("pg_ctl", "-D", str(server.data), "-l", str(server.base / "server.log"), "-w", "-t", "60",
                        "-o", options, "start")
        except BaseException:
            server.stop()
            raise
        return server

    @property
    def data(self) -> Path:
        return self.base / "data"

    def _ctl(self, tool: str, *args: str, check: bool = True) -> None:
        argv = [str(self.bin / tool), *args]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            entry = pwd.getpwnam(SERVER_USER)
            argv = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", "--", *argv]
        proc = subprocess.run(argv, check=False, capture_output=True, text=True, cwd=self.base, timeout=120)
        if check and proc.returncode != 0:
            raise ServerUnavailable(f"{tool} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")

    def stop(self) -> None:
        """Stop the server (immediately: its data is thrown away) and delete its folder."""
        if (self.data / "postmaster.pid").exists():
            self._ctl("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql://{SERVER_USER}@/{database}?host={self.base}"

    def execute(self, *statements: str, database: str = "postgres") -> None:
        execute(self.url(database), *statements)

    def create_database(self, name: str) -> str:
        """A new empty database with ``btree_gist`` (the Butler needs it); returns its URL."""
        self.execute(f'CREATE DATABASE "{name}"')
        self.execute("CREATE EXTENSION btree_gist", database=name)
        return self.url(name)


@contextlib.contextmanager
def running_server() -> Iterator[PgServer]:
    """A private server for the time of a ``with`` block (bench/gateway.py)."""
    server = PgServer.start()
    try:
        yield server
    finally:
        server.stop()


def execute(url: str, *statements: str) -> None:
    """Run SQL statements, each in autocommit, on the database of ``url``."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(sqlalchemy.text(statement))
    finally:
        engine.dispose()


def database_of(url: str) -> str:
    return url.partition("?")[0].rsplit("/", 1)[1]


def with_database(url: str, database: str) -> str:
    """``url`` naming another database on the same server (the URL is otherwise kept as written)."""
    head, sep, query = url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{database}{sep}{query}"


def registry_url(repo: Path) -> str:
    """The registry database URL in ``repo``'s butler.yaml."""
    return yaml.safe_load((Path(repo) / "butler.yaml").read_text())["registry"]["db"]


def copy_repo(src: Path, dest: Path) -> Path:
    """Copy a repository: its folder, and, when its registry is on PostgreSQL, its database."""
    shutil.copytree(src, dest)
    url = registry_url(src)
    if url.startswith("postgresql"):
        template = database_of(url)
        name = f"copy_{uuid.uuid4().hex[:16]}"
        # No session may be open on a template database: end any that a finished fixture left behind.
        execute(with_database(url, "postgres"),
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{template}' "
                "AND pid <> pg_backend_pid()",
                f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        config = dest / "butler.yaml"
        config.write_text(config.read_text().replace(url, with_database(url, name)))
    return dest
