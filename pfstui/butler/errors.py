"""Every error the butler package raises, and the translation of the Butler's own user errors into them.

Why one module: the CLI, the panes and the queue all need to tell "the operator can fix this" (one line with the
fix) from a real bug, and a caller should not have to import the gateway or an action module just to catch one.
All of them are :class:`~pfstui.errors.UserError` through :class:`GatewayError`.
"""

from __future__ import annotations

import errno
import os
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


def _disk_full(exc: BaseException) -> str | None:
    """The reason when ``exc`` (or what caused it) is the disk refusing a write, else None.

    Why walk the chain: the datastore wraps the ENOSPC of a file write in a RuntimeError ("Failed to serialize
    dataset ..."), and SQLAlchemy wraps SQLite's "database or disk is full"; both were "unexpected error".
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in _DISK_ERRNOS:
            return os.strerror(cur.errno) + (f" ({cur.filename})" if cur.filename else "")
        text = str(cur).lower()
        for message in _DISK_MESSAGES:
            if message in text:
                return message
        cur = cur.__cause__ or cur.__context__
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

