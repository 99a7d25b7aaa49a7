"""The ``pfstui`` command: the app, the demo, and headless subcommands for scripts and tests.

Every subcommand reports bad input as one line naming the problem and the fix (exit status 2) and
never shows a traceback; an unexpected error is summarised in one line with the path of a file that
holds the traceback.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

import pfstui.demo
from pfstui import __version__
from pfstui.cli import demo as cli_demo
from pfstui.cli import pfs as cli_pfs
from pfstui.cli.app import run_app
from pfstui.cli.guard import run_guarded
from pfstui.cli.readonly import HELP as READ_ONLY_HELP
from pfstui.cli.readonly import accept_everywhere


def cmd_app(args: argparse.Namespace) -> int:
    cli_demo.ensure_demo_env()
    return run_app(repo=args.repo, plan=args.plan, read_only=args.read_only, demo=False)


# --- parser --------------------------------------------------------------------------------------------
def build_parser(want_subcommands: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pfstui",
        description="Build Subaru PFS calibration products with the LSST middleware: a terminal UI and its tools.",
    )
    parser.add_argument("--version", action="version", version=f"pfstui {__version__}")
    parser.add_argument("--repo", help="Butler repository to open")
    parser.add_argument("--plan", help="calibration plan (YAML) to load into the queue")
    parser.add_argument("--read-only", action="store_true", help=READ_ONLY_HELP)
    parser.set_defaults(func=cmd_app)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    cli_demo.add_subcommands(sub)
    cli_pfs.add_subcommands(sub)

    if want_subcommands:
        import pfstui.cli.butler as cli_butler
        import pfstui.cli.queue as cli_queue
        import pfstui.cli.verify as cli_verify

        cli_queue.add_subcommands(sub)
        cli_butler.add_subcommands(sub)
        cli_verify.add_subcommands(sub)
    accept_everywhere(sub)
    return parser


#: Commands the light parser has (registered above); any other command needs the full one.
LIGHT_COMMANDS = {"demo", "define-profiles", "certify-detectormaps"}
_APP_OPTIONS_WITH_VALUE = {"--repo", "--plan"}


def _needs_subcommands(argv: list[str]) -> bool:
    """Opening the app needs none of the headless subcommands: skip their imports (start-up time).

    Any other command, a misspelt one included, gets the full parser, so argparse lists every choice.
    """
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-h", "--help"):
            return True
        elif arg in _APP_OPTIONS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg not in LIGHT_COMMANDS  # the first positional word is the command
    return False


def _apply_group_access() -> None:
    """The site setting ``group_access: true`` reaches every folder and file pfstui makes, in this process and
    the supervisor, waiters and stages it starts, through the environment :mod:`pfstui.infra.private` reads."""
    from pfstui.config import load_settings
    from pfstui.infra.private import GROUP_ACCESS_ENV

    if load_settings()[0].group_access:
        os.environ.setdefault(GROUP_ACCESS_ENV, "1")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cli_demo.ensure_demo_env()  # before any plan is read or process started: they inherit it
    _apply_group_access()
    headless = _needs_subcommands(argv)
    if headless:
        pfstui.demo.register()  # the demo's plan template for `plan new`; the app registers it when `a` needs it
    parser = build_parser(headless)
    args = parser.parse_args(argv)
    if args.func is not cmd_app:
        # Off while the modules were imported (pfstui.__main__).  The app keeps it off until its first frame:
        # switched on here, its first pass would walk every object made so far.
        gc.enable()
    return run_guarded(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
