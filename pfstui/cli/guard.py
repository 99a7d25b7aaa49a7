"""The one place where an error becomes a message: :func:`run_guarded` runs a subcommand.

A :class:`~pfstui.errors.UserError` is one line on stderr (exit 2); anything else is one line naming a
file that holds the traceback (exit 1).  Never a traceback on screen.
"""

from __future__ import annotations

import argparse
import os
import sys

from pfstui.errors import UserError

__all__ = ["CliError", "EXIT_USAGE", "run_guarded", "say"]

EXIT_USAGE = 2


class CliError(UserError):
    """A user-facing error of the command line itself: printed as one line, exit status 2."""


def say(text: object, *, file=None, flush: bool = False) -> None:
    """Print one line that may hold text from outside (names, journal summaries, log messages, paths) with its
    control characters escaped: a ``\x1b[2J`` in a collection name must not drive the operator's terminal."""
    from pfstui.values.names import shown  # here: the app's start prints nothing and need not import it

    print(shown(str(text), None), file=file or sys.stdout, flush=flush)


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Columns as wide as their widest cell, a rule under the header; cells are shown as :func:`say` shows them."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*header).rstrip())
    print(fmt.format(*("-" * w for w in widths)).rstrip())
    for r in rows:
        say(fmt.format(*r).rstrip())


def run_guarded(args: argparse.Namespace) -> int:
    """Run ``args.func`` and turn what it raises into one line (see the module docstring)."""
    from pfstui.cli.readonly import refuse

    try:
        refuse(args)  # --read-only: before the command opens anything
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("pfstui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`pfstui status | head`): stop quietly, as a shell tool does, and keep Python's
        # exit-time flush of stdout from raising again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except UserError as exc:
        say(f"pfstui: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - the one place that turns unexpected errors into messages
        import tempfile  # here, not at the top: ~8 ms of every start, needed only when something went wrong
        import traceback

        fd, path = tempfile.mkstemp(prefix="pfstui-error-", suffix=".txt")
        with os.fdopen(fd, "w") as fh:
            traceback.print_exc(file=fh)
        say(f"pfstui: unexpected error: {type(exc).__name__}: {exc} (traceback in {path})", file=sys.stderr)
        return 1
