"""``--read-only``: accepted before or after any subcommand, and refusing every command that changes something.

Why one place: ``--read-only`` was an option of the ``pfstui`` parser only, so ``pfstui run --read-only`` was a
usage error, and it was enforced only where a command happened to open a read-only Butler (``run``, ``queue
kill`` and the PFS actions went ahead).  Now each subcommand that changes the repository or the queue says so
when it is registered (:func:`changes`), every subcommand accepts the flag (:func:`accept_everywhere`), and
:func:`refuse` stops a changing command under ``--read-only`` before it opens anything, in one line.

``--dry-run`` writes nothing, so it is allowed.  ``plan new`` writes only the new plan file the operator names,
so it is allowed too, except with ``--force``: overwriting a plan could change what a queue following that
file runs next.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from pfstui.errors import UserError

__all__ = ["ReadOnlyRefused", "accept_everywhere", "changes", "refuse"]

HELP = "refuse every change to the repository and the queue (before or after the command)"

#: What a command changes: a fixed text, or a function of its arguments (None: nothing, this time).
Changes = str | Callable[[argparse.Namespace], "str | None"]


class ReadOnlyRefused(UserError):
    """A command that changes the repository or the queue was run with ``--read-only``."""


def changes(parser: argparse.ArgumentParser, command: str, what: Changes) -> None:
    """Mark ``parser``'s command (``command``: how the operator types it) as changing ``what``."""
    parser.set_defaults(command=command, changes=what)


def accept_everywhere(subparsers: argparse._SubParsersAction) -> None:
    """Let every subcommand (and sub-subcommand) take ``--read-only`` after its name.

    The default is SUPPRESS, so a subcommand without the flag keeps what ``pfstui --read-only`` set.
    """
    for parser in set(subparsers.choices.values()):
        if "--read-only" not in parser._option_string_actions:
            parser.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS, help=HELP)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                accept_everywhere(action)


def refuse(args: argparse.Namespace) -> None:
    """Raise :class:`ReadOnlyRefused` (one line) when ``args`` asks a changing command under ``--read-only``."""
    if not getattr(args, "read_only", False) or getattr(args, "dry_run", False):
        return
    what = getattr(args, "changes", None)
    if callable(what):
        what = what(args)
    if not what:
        return
    command = args.command + (f" {args.action}" if getattr(args, "action", None) else "")
    hint = "; --dry-run previews it" if "dry_run" in args else ""
    raise ReadOnlyRefused(f"--read-only refuses `pfstui {command}`: it changes {what}{hint}",
                          "run it without --read-only")
