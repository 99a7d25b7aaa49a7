"""The ``pfstui`` command: the app, the demo, and headless subcommands for scripts and tests.

Every subcommand reports bad input as one line naming the problem and the fix (exit status 2) and
never shows a traceback; an unexpected error is summarised in one line with the path of a file that
holds the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from . import __version__

EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _demo_dir() -> Path:
    return Path(__file__).parent / "demo"


def ensure_demo_env() -> None:
    """Set PFSTUI_DEMO_DIR (as EUPS sets $DRP_STELLA_DIR) so demo plans find their pipelines."""
    os.environ.setdefault("PFSTUI_DEMO_DIR", str(_demo_dir()))


def default_demo_repo() -> Path:
    base = os.environ.get("PFSTUI_DATA_DIR")
    if not base:
        from platformdirs import user_data_dir

        base = user_data_dir("pfstui")
    return Path(base) / "demo-repo"


# --- subcommands ---------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from .demo.builder import DemoRepoError, ensure_demo_repo

    repo = Path(args.repo).expanduser() if args.repo else default_demo_repo()
    if not args.build_only:
        print(f"Preparing the demo repository at {repo} ...", flush=True)
    try:
        report = ensure_demo_repo(repo, fresh=args.fresh)
    except DemoRepoError as exc:
        raise CliError(str(exc)) from None
    for line in report.lines():
        print(line)
    if args.build_only:
        return 0
    ensure_demo_env()
    plan = demo_plan(report.repo)
    print(f"Demo plan: {plan} (the queue opens paused: press r in the Queue pane to run it)")
    return _run_app(repo=str(report.repo), plan=str(plan), read_only=False, demo=True)


def demo_plan(repo: Path) -> Path:
    """The demo plan beside the demo repository, written from the demo template when missing."""
    import getpass

    from .core.templates import plan_new

    path = Path(repo).parent / f"{Path(repo).name}-plan.yaml"
    if not path.exists():
        plan_new("demo", str(repo), f"u/{getpass.getuser()}", path)
    return path


def cmd_app(args: argparse.Namespace) -> int:
    ensure_demo_env()
    return _run_app(repo=args.repo, plan=args.plan, read_only=args.read_only, demo=False)


def _run_app(*, repo: str | None, plan: str | None, read_only: bool, demo: bool) -> int:
    if not sys.stdout.isatty():
        raise CliError("the pfstui app needs a terminal; use the headless subcommands (pfstui --help) in scripts")
    if os.environ.get("SSH_CONNECTION") and "TEXTUAL_FPS" not in os.environ:
        # Over SSH, 60 frames a second is wasted on the wire; Textual reads this when it is imported.
        from .core.config import load_settings

        os.environ["TEXTUAL_FPS"] = str(load_settings()[0].ssh_fps)
    from .ui.app import PfsTuiApp

    app = PfsTuiApp(repo=repo, plan=plan, read_only=read_only, demo=demo)
    app.run()
    return app.return_code or 0


def cmd_define_profiles(args: argparse.Namespace) -> int:
    from .core.pfsactions import define_profiles

    result = define_profiles(args.repo, args.instrument, args.name, args.bright or [], args.dark or [], update=args.update)
    for line in result.summary:
        print(line)
    _journal(args.repo, result)
    return 0


def cmd_certify_detectormaps(args: argparse.Namespace) -> int:
    from .core.pfsactions import certify_detector_maps

    result = certify_detector_maps(
        args.repo, args.collection, args.target, instrument=args.instrument, dataset_type=args.datasetType,
        begin=args.begin_date, end=args.end_date,
    )
    for line in result.summary:
        print(line)
    _journal(args.repo, result)
    return 0


def _journal(repo: str, result) -> None:
    """Record a Butler change in the action journal."""
    from .core.journal import default_journal

    default_journal().append({"kind": "butler", "action": result.action, "repository": str(Path(repo).absolute()),
                               "effect": result.effect})


# --- parser --------------------------------------------------------------------------------------------
def build_parser(want_subcommands: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pfstui",
        description="Build Subaru PFS calibration products with the LSST middleware: a terminal UI and its tools.",
    )
    parser.add_argument("--version", action="version", version=f"pfstui {__version__}")
    parser.add_argument("--repo", help="Butler repository to open")
    parser.add_argument("--plan", help="calibration plan (YAML) to load into the queue")
    parser.add_argument("--read-only", action="store_true", help="refuse every change to the repository and queue")
    parser.set_defaults(func=cmd_app)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("demo", help="build the demo repository (if missing) and open the app on it")
    p.add_argument("--repo", help="where the demo repository lives (default: the user's data dir)")
    p.add_argument("--fresh", action="store_true", help="rebuild the demo repository from scratch")
    p.add_argument("--build-only", action="store_true", help="build it, print what was made, and exit")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("define-profiles", help="define a fiber-profiles run (as defineFiberProfilesInputs.py)")
    p.add_argument("repo")
    p.add_argument("instrument", help="instrument short name, e.g. PFS")
    p.add_argument("name", help="profiles_run name, e.g. run18_brn")
    p.add_argument("--bright", action="append", metavar="LIST", help="bright visits of one group, e.g. 113855..113863")
    p.add_argument("--dark", action="append", metavar="LIST", help="dark visits of the same group")
    p.add_argument("--update", action="store_true", help="allow redefining an existing run")
    p.set_defaults(func=cmd_define_profiles)

    p = sub.add_parser("certify-detectormaps", help="copy detectorMap_candidate to detectorMap_calib and certify it")
    p.add_argument("repo")
    p.add_argument("collection", help="collection holding detectorMap_candidate (e.g. u/me/detectorMap)")
    p.add_argument("target", help="CALIBRATION collection to certify into (e.g. PFS/calib)")
    p.add_argument("--instrument", default="PFS")
    p.add_argument("--datasetType", default="detectorMap_candidate")
    p.add_argument("--begin-date", help="TAI ISO start of validity (open if omitted)")
    p.add_argument("--end-date", help="TAI ISO end of validity (open if omitted)")
    p.set_defaults(func=cmd_certify_detectormaps)

    if want_subcommands:
        from . import cli_butler, cli_queue

        cli_queue.add_subcommands(sub)
        cli_butler.add_subcommands(sub)
    return parser


QUEUE_COMMANDS = {"plan", "run", "status", "queue"}
BUTLER_COMMANDS = {"certify", "decertify", "clean", "calibs", "journal", "undo", "remove-runs", "remove-collections"}


def _needs_subcommands(argv: list[str]) -> bool:
    """Opening the app needs none of the headless subcommands: skip their imports (start-up time)."""
    return any(a in QUEUE_COMMANDS | BUTLER_COMMANDS or a in ("-h", "--help") for a in argv)


def _user_errors() -> tuple[type[BaseException], ...]:
    from .core.pfsactions import ActionError
    from .core.tai import DateError
    from .core.visitlist import VisitListError

    from .cli_butler import USER_ERRORS
    from .cli_queue import user_errors

    return (CliError, ActionError, DateError, VisitListError, *user_errors(), *USER_ERRORS)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_needs_subcommands(argv))
    args = parser.parse_args(argv)
    return run_guarded(args, _user_errors)


def run_guarded(args: argparse.Namespace, user_errors: Callable[[], tuple[type[BaseException], ...]]) -> int:
    """Run ``args.func``: a user error is one line on stderr (exit 2), anything else one line naming a file
    that holds the traceback (exit 1); never a traceback on screen.  ``user_errors`` is called only when
    something went wrong, so their modules are not imported on the way in."""
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("pfstui: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into messages
        if isinstance(exc, user_errors()):
            print(f"pfstui: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        fd, path = tempfile.mkstemp(prefix="pfstui-error-", suffix=".txt")
        with os.fdopen(fd, "w") as fh:
            traceback.print_exc(file=fh)
        print(f"pfstui: unexpected error: {type(exc).__name__}: {exc} (traceback in {path})", file=sys.stderr)
        return 1

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
