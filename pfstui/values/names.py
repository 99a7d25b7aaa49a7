"""The names an operator writes: stages, collections and their globs, reruns, profiles runs, instruments.

Why one place: the same names are written in a plan file, given on the command line and shown in the
app, and the Butler and the pipetask logs keep them.  Each rule (a stage name names log files, a
collection has no spaces or commas, a rerun is a prefix without a leading '/') and the fix that goes
with it is written once, here; each caller says where the name was written (the plan loader adds the
file, line and field).

Every check returns the name unchanged or raises :class:`NameSyntaxError`.
"""

from __future__ import annotations

import re

from pfstui.errors import UserError

__all__ = [
    "MAX_COLLECTION_LENGTH",
    "MAX_STAGE_NAME_LENGTH",
    "NameSyntaxError",
    "shown",
    "check_collection",
    "check_collection_glob",
    "check_instrument_name",
    "check_profiles_run",
    "check_rerun",
    "check_stage_name",
]

_STAGE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_INSTRUMENT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_GLOB_CHARACTERS = "*?[]"
#: What a collection name may hold besides letters and digits.  Quotes, '$', '`', ';', parentheses, braces,
#: backslashes and control characters are refused: a name travels into logs, journals, terminals, argv of
#: other tools and BPS submit files, and none of those should ever read it as anything but a name.
_COLLECTION_EXTRA = "_.-/+@:="
#: The Butler's own limit (daf_butler ``COLLECTION_NAME_MAX_LENGTH``); PostgreSQL enforces it, SQLite does not.
MAX_COLLECTION_LENGTH = 64
#: A stage name names log files and folders (255 bytes per path component, with room for suffixes).
MAX_STAGE_NAME_LENGTH = 64


def shown(text: str, limit: int | None = 60) -> str:
    """``text`` safe to print on a terminal: control characters escaped, cut to ``limit`` characters (None: whole).

    Why: a name, a journal summary or a log message holding ``\x1b[...`` would otherwise drive the operator's
    terminal (move the cursor, rewrite earlier lines).  Only what is not printable is escaped, so "∞" stays.
    """
    text = str(text)
    cut = text if limit is None or len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"
    if cut.isprintable():
        return cut
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in cut)


def _check_length(name: str, limit: int, what: str) -> None:
    if len(name) > limit:
        raise NameSyntaxError(f"{what} '{shown(name)}' is longer than {limit} characters", f"shorten it to {limit}")


def _check_characters(name: str, what: str, extra: str) -> None:
    bad = sorted({c for c in name if not (c.isascii() and c.isalnum()) and c not in extra})
    if bad:
        listed = " ".join(repr(c) for c in bad[:5])
        raise NameSyntaxError(f"{what} '{shown(name)}' contains {listed}",
                              f"use letters, digits and {' '.join(extra)}")


def _lists_several(text: str) -> bool:
    """Spaces or commas: what the Butler's command line would read as more than one name."""
    return any(c.isspace() for c in text) or "," in text


class NameSyntaxError(UserError, ValueError):
    """A name breaks its rule: ``problem`` says how, ``fix`` how to write it."""

    title = "Name"

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem, fix)
        self.problem = problem


def check_stage_name(name: str) -> str:
    _check_length(name, MAX_STAGE_NAME_LENGTH, "stage name")
    if not _STAGE_NAME_RE.match(name):
        raise NameSyntaxError(
            f"'{shown(name)}' is not a valid stage name",
            "use letters, digits, '_', '-' and '.', starting with a letter or digit; it names log files",
        )
    return name


def check_collection(name: str) -> str:
    """One collection name, written in full or rerun-relative (a leading '/' is allowed)."""
    if not name.strip("/"):
        raise NameSyntaxError("collection name is empty", "write a collection name such as PFS/calib")
    if _lists_several(name):
        raise NameSyntaxError(
            f"collection name '{shown(name)}' contains spaces or commas",
            "write one collection per list item, without spaces",
        )
    if any(c in name for c in _GLOB_CHARACTERS):
        raise NameSyntaxError(
            f"collection name '{shown(name)}' contains a glob character",
            "only a clean stage's 'glob' may use * ? [ ]",
        )
    _check_length(name.strip("/"), MAX_COLLECTION_LENGTH, "collection name")
    _check_characters(name, "collection name", _COLLECTION_EXTRA)
    return name


def check_collection_glob(glob: str) -> str:
    """A glob over RUN collections (``bias/*``): glob characters allowed, a list is not."""
    if not glob.strip("/"):
        raise NameSyntaxError("glob is empty", "write e.g. glob: 'bias/*' (the RUNs under <rerun>/bias)")
    if _lists_several(glob):
        raise NameSyntaxError(f"glob '{shown(glob)}' contains spaces or commas", "write a single collection glob")
    _check_length(glob.strip("/"), MAX_COLLECTION_LENGTH, "glob")
    _check_characters(glob, "glob", _COLLECTION_EXTRA + _GLOB_CHARACTERS)
    return glob


def check_rerun(prefix: str) -> str:
    """The prefix of every collection a plan writes (``u/<user>``): a collection name without edge '/'."""
    if not prefix or prefix.startswith("/") or prefix.endswith("/") or "//" in prefix:
        raise NameSyntaxError(
            f"'{shown(prefix)}' is not a collection prefix",
            "write it like u/<user> or <user>/<ticket>, without leading or trailing '/'",
        )
    return check_collection(prefix)


def check_profiles_run(name: str) -> str:
    """A ``profiles_run`` dimension value (``run18_brn``): same characters as a stage name."""
    _check_length(name, MAX_STAGE_NAME_LENGTH, "profiles_run name")
    if not _STAGE_NAME_RE.match(name):
        raise NameSyntaxError(
            f"'{shown(name)}' is not a profiles_run name", "use letters, digits, '_', '-' and '.', e.g. run18_brn"
        )
    return name


def check_instrument_name(name: str) -> str:
    """An instrument's short name (``PFS``), as in data IDs, not its class path."""
    if not _INSTRUMENT_NAME_RE.match(name):
        raise NameSyntaxError(
            f"'{shown(name)}' is not an instrument short name", "write the short name, e.g. PFS, not the class path"
        )
    return name
