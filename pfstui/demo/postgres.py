"""The demo repository's registry on a PostgreSQL server: the URL, the ``btree_gist`` extension, its own schema.

Why a schema of its own (``pfstui_demo``): the demo must never touch a registry it did not make, as it never
touches a folder it did not make.  Its tables live in one schema, marked with a comment naming the demo folder
they belong to; anything else in that database is left alone.  As the folder is, the schema is built under a
temporary name and renamed into place only when complete, so a crash never leaves a half-built registry that
looks good.

Credentials never go into the URL (``butler.yaml`` is readable by everyone who may open the repository): the
Butler finds them in ``~/.lsst/db-auth.yaml``, as it does on a production repository.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from pfstui.butler.errors import POSTGRES_DRIVER_FIX, postgres_server

#: The schema (PostgreSQL namespace) that holds the demo's registry tables.
SCHEMA = "pfstui_demo"
_COMMENT = "pfstui demo registry of "


class RegistryError(Exception):
    """The PostgreSQL registry cannot hold the demo; the message says why and what to do."""


def check_url(url: str) -> str:
    """``url`` as the Butler will use it; refuses other databases and passwords in the URL."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - SQLAlchemy's ArgumentError and friends
        raise RegistryError(f"--registry {url!r} is not a database URL; write it like "
                            "postgresql://USER@HOST:5432/DATABASE") from None
    if parsed.get_backend_name() != "postgresql":
        raise RegistryError(f"--registry {postgres_server(url)} is not a PostgreSQL URL; leave --registry out for "
                            "SQLite (the default), or write postgresql://USER@HOST:5432/DATABASE")
    if parsed.password:
        raise RegistryError("--registry holds a password, which would be written into butler.yaml; put it in "
                            "~/.lsst/db-auth.yaml instead (the Butler reads it there) and leave it out of the URL")
    if not parsed.database:
        raise RegistryError(f"--registry {postgres_server(url)} names no database; add /DATABASE to the URL")
    return url


@contextlib.contextmanager
def connect(url: str) -> Iterator[object]:
    """A connection (autocommit) to the server of ``url``, credentials from db-auth.yaml as the Butler finds them.

    Why through the Butler's own lookup: the demo must reach the server exactly as the repository will.
    """
    import sqlalchemy
    from lsst.daf.butler.registry.connectionString import ConnectionStringFactory

    server = postgres_server(url)
    try:
        engine = sqlalchemy.create_engine(ConnectionStringFactory.fromConfig({"db": url}),
                                          poolclass=sqlalchemy.pool.NullPool, isolation_level="AUTOCOMMIT")
    except ModuleNotFoundError:
        raise RegistryError(f"cannot use the PostgreSQL server {server}: its driver is not installed; "
                            f"{POSTGRES_DRIVER_FIX}") from None
    try:
        if engine.dialect.driver != "psycopg2":
            raise RegistryError(f"SQLAlchemy {sqlalchemy.__version__} reaches {server} through "
                                f"{engine.dialect.driver}, and the Butler accepts only psycopg2; {POSTGRES_DRIVER_FIX}")
        try:
            conn = engine.connect()
        except sqlalchemy.exc.DBAPIError as exc:
            first = " ".join(str(exc.orig).split()) if exc.orig is not None else str(exc)
            raise RegistryError(f"cannot reach the PostgreSQL server {server}: {first}; check that it is up and "
                                "that ~/.lsst/db-auth.yaml holds your credentials for it") from None
        with conn:
            yield conn
    finally:
        engine.dispose()


def _schema_comment(conn, schema: str) -> str | None:
    """The comment of ``schema``, '' when it has none, None when it does not exist."""
    import sqlalchemy

    row = conn.execute(sqlalchemy.text("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace "
                                       "WHERE nspname = :s"), {"s": schema}).first()
    return None if row is None else (row[0] or "")


def check_schema(url: str, repo: Path) -> None:
    """Refuse when the demo schema exists and belongs to something else than the demo folder ``repo``."""
    with connect(url) as conn:
        comment = _schema_comment(conn, SCHEMA)
    if comment is None or comment == _COMMENT + str(repo):
        return
    owner = comment[len(_COMMENT):] if comment.startswith(_COMMENT) else None
    who = f"the demo repository at {owner}" if owner else "something pfstui did not build"
    raise RegistryError(f"schema {SCHEMA} in {postgres_server(url)} already holds {who}; it will not be touched. "
                        "Use another database for --registry" + (f", or --repo {owner} --fresh" if owner else "") + ".")


def prepare(url: str, building: str) -> None:
    """Make sure ``btree_gist`` is there and no leftover ``building`` schema is: before the Butler makes tables."""
    import sqlalchemy

    with connect(url) as conn:
        if not conn.execute(sqlalchemy.text("SELECT 1 FROM pg_extension WHERE extname = 'btree_gist'")).first():
            try:
                conn.execute(sqlalchemy.text("CREATE EXTENSION btree_gist"))
            except sqlalchemy.exc.DBAPIError:
                raise RegistryError(f"the database {postgres_server(url)} lacks the btree_gist extension the Butler "
                                    "needs, and you may not create it; ask its administrator to run "
                                    "CREATE EXTENSION btree_gist; in it") from None
        conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{building}" CASCADE'))


def install(url: str, building: str, repo: Path) -> None:
    """Replace the demo schema by the complete ``building`` one, in one transaction, and mark it as ``repo``'s."""
    import sqlalchemy

    with connect(url) as conn, conn.begin():
        conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        conn.execute(sqlalchemy.text(f'ALTER SCHEMA "{building}" RENAME TO "{SCHEMA}"'))
        comment = (_COMMENT + str(repo)).replace("'", "''")
        conn.execute(sqlalchemy.text(f"COMMENT ON SCHEMA \"{SCHEMA}\" IS '{comment}'"))


def discard(url: str, building: str) -> None:
    """Drop a half-built schema (best effort: the build already failed and says why)."""
    import sqlalchemy

    with contextlib.suppress(Exception), connect(url) as conn:
        conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{building}" CASCADE'))
