"""Every error the butler package raises, and the translation of the Butler's own user errors into them.

Why one module: the CLI, the panes and the queue all need to tell "the operator can fix this" (one line with the
fix) from a real bug, and a caller should not have to import the gateway or an action module just to catch one.
All of them are :class:`~pfstui.errors.UserError` through :class:`GatewayError`.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from pfstui.butler import daf_butler
from pfstui.errors import UserError

__all__ = [
    "GatewayError",
    "ReadOnlyError",
    "RepoError",
    "NotFoundError",
    "QueryError",
    "InputError",
    "ConflictError",
    "StalePreviewError",
    "NothingToDoError",
    "UndoError",
    "UnjournaledError",
    "butler_message",
    "open_error",
    "postgres_server",
    "POSTGRES_DRIVER_FIX",
    "translate_butler_error",
    "butler_errors",
]


class GatewayError(UserError):
    """A Butler request failed for a reason the operator can fix; ``str()`` is the explanation and the fix."""


class ReadOnlyError(GatewayError):
    """A write was asked of a gateway opened read-only."""


class RepoError(GatewayError):
    """The repository cannot be opened."""


class NotFoundError(GatewayError):
    """A collection or dataset type does not exist."""


class QueryError(GatewayError):
    """A query expression (``-d``/``--where``) is malformed or refers to unknown names."""



class InputError(GatewayError):
    """Bad arguments (dates, data IDs, collection of the wrong type); nothing was written."""


class ConflictError(GatewayError):
    """Apply was refused because the preview has conflicts or other blockers; nothing was written."""


class StalePreviewError(GatewayError):
    """The registry changed between preview and apply; nothing was written."""


class NothingToDoError(GatewayError):
    """The action matches nothing (empty glob, no datasets, no validity range in the window)."""


class UndoError(GatewayError):
    """A journal entry cannot be undone; the message says why."""


class UnjournaledError(GatewayError):
    """A change WAS applied but its journal commit could not be written; its entry stays pending until
    reconciled (the message names it and the fix)."""


def butler_message(exc: BaseException) -> str:
    """The Butler's explanation as one line (KeyError-based errors quote their message)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(text.split())
    return text.rstrip(".") or type(exc).__name__


#: What a full, over-quota or read-only disk says, through the datastore (OSError) or SQLite (its message).
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
_DISK_MESSAGES = ("database or disk is full", "attempt to write a readonly database")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it, each once: the Butler wraps driver and disk errors several levels deep."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _disk_full(exc: BaseException) -> str | None:
    """The reason when ``exc`` (or what caused it) is the disk refusing a write, else None.

    Why walk the chain: the datastore wraps the ENOSPC of a file write in a RuntimeError ("Failed to serialize
    dataset ..."), and SQLAlchemy wraps SQLite's "database or disk is full"; both were "unexpected error".
    """
    for cur in _causes(exc):
        if isinstance(cur, OSError) and cur.errno in _DISK_ERRNOS:
            return os.strerror(cur.errno) + (f" ({cur.filename})" if cur.filename else "")
        text = str(cur).lower()
        for message in _DISK_MESSAGES:
            if message in text:
                return message
    return None


def translate_butler_error(exc: BaseException, *, context: str = "") -> GatewayError | None:
    """The :class:`GatewayError` for a Butler user error, or None when ``exc`` is not one (a real bug)."""
    dafb = daf_butler()
    if isinstance(exc, GatewayError):
        return exc
    msg = butler_message(exc)
    where = f" ({context})" if context else ""
    if isinstance(exc, dafb.MissingCollectionError):
        return NotFoundError(f"{msg}{where}; check the collection name (pfstui lists them in the Collections view)")
    if isinstance(exc, dafb.MissingDatasetTypeError):
        return NotFoundError(f"{msg}{where}; check the dataset type name (e.g. bias, dark, fiberFlat)")
    if isinstance(exc, (dafb.InvalidQueryError, dafb.registry.UserExpressionError)):
        return QueryError(f"bad query{where}: {msg}; fix the expression (dimension names, quotes, "
                          "and constrain instrument='PFS')")
    full = _disk_full(exc)
    if full is not None:
        return GatewayError(f"cannot write to the repository{where}: {full}; the change was rolled back, free some "
                            "space on the repository's disk (or fix its mount) and retry")
    if isinstance(exc, RecursionError):  # the Butler's expression parser recurses once per term and parenthesis
        return QueryError(f"the query expression is too long or too deeply nested for the Butler{where}; "
                          "shorten it (list values with IN, e.g. visit IN (11..58), instead of many ORs)")
    if isinstance(exc, dafb.registry.ConflictingDefinitionError):
        return GatewayError(f"{msg}{where}; decertify the overlapping range first")
    if isinstance(exc, dafb.registry.OrphanedRecordError):
        return GatewayError(f"{msg}{where}; remove it from its parent chains first")
    if isinstance(exc, dafb.ButlerUserError):
        return GatewayError(f"{msg}{where}")
    return None


#: What makes a ``postgresql://`` registry open with the 30.0.11 middleware (daf_butler accepts only psycopg2,
#: and SQLAlchemy 2.1 maps plain ``postgresql://`` to psycopg 3).
POSTGRES_DRIVER_FIX = ("install pfstui's PostgreSQL extra, which brings psycopg2 and pins SQLAlchemy below 2.1 as "
                       "daf_butler 30.0.11 needs: pip install 'pfstui[postgres]'")


def postgres_server(url: str) -> str:
    """The server and database of a registry URL, as an operator recognises it, never with a password."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse: shown from its host on, never a password
        return url.split("@")[-1]
    where = parsed.host or parsed.query.get("host") or "localhost"
    where = where if isinstance(where, str) else ",".join(where)
    port = f":{parsed.port}" if parsed.port else ""
    user = f"{parsed.username}@" if parsed.username else ""
    return f"{user}{where}{port}/{parsed.database or ''}"


_MISSING_DRIVER = re.compile(r"(?:No module named '|import of )(psycopg2?)\b")


def _postgres_problem(exc: BaseException) -> tuple[str, str] | None:
    """(what went wrong, the fix) when ``exc`` is the PostgreSQL driver or server refusing, else None."""
    for cur in _causes(exc):
        text = butler_message(cur)
        # The Butler imports its PostgreSQL module by name and keeps only the text of the ImportError.
        missing = _MISSING_DRIVER.search(text)
        if missing:
            return f"the {missing.group(1)} driver is not installed", POSTGRES_DRIVER_FIX
        if "Only the psycopg2 driver" in text:
            return "the driver in use is not psycopg2", POSTGRES_DRIVER_FIX
        if "btree_gist" in text:
            return ("the database lacks the btree_gist extension",
                    "ask its administrator to run CREATE EXTENSION btree_gist; in that database")
        if type(cur).__module__.split(".")[0] in ("psycopg2", "psycopg") or "DbAuth" in type(cur).__name__:
            first = text.split(" (Background on this error")[0]
            return first, ("check that the server is up and reachable from here, and your credentials in "
                           "~/.lsst/db-auth.yaml (mode 600; $LSST_DB_AUTH moves it)")
    return None


def open_error(repo: str, registry_url: str | None, exc: BaseException) -> RepoError:
    """Why ``repo`` cannot be opened, in one line: a PostgreSQL registry names its server, not the path."""
    if registry_url and registry_url.startswith("postgresql"):
        problem = _postgres_problem(exc)
        if problem is not None:
            return RepoError(f"cannot open Butler repository {repo}: its registry on the PostgreSQL server "
                             f"{postgres_server(registry_url)}: {problem[0]}", problem[1])
    return RepoError(f"cannot open Butler repository {repo!r}: {butler_message(exc)}",
                     "check the path (a folder holding butler.yaml)")


@contextmanager
def butler_errors(context: str = "") -> Iterator[None]:
    """Re-raise Butler user errors as :class:`GatewayError` (one line, with the fix); leave real bugs alone."""
    try:
        yield
    except GatewayError:
        raise
    except Exception as exc:  # noqa: BLE001 - filtered by translate_butler_error
        err = translate_butler_error(exc, context=context)
        if err is None:
            raise
        raise err from None

