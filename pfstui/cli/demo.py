"""``pfstui demo``: build the demo repository and open the app on it.

Only the CLI knows that the demo exists: it points ``$PFSTUI_DEMO_DIR`` at the demo's folder (as EUPS sets
``$DRP_STELLA_DIR``), so demo plans find their pipelines, and every process started from here inherits it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pfstui.demo
from pfstui.cli.guard import CliError
from pfstui.cli.readonly import changes

__all__ = ["add_subcommands", "default_demo_repo", "demo_plan", "ensure_demo_env"]


def _demo_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "demo"


def ensure_demo_env() -> None:
    """Set PFSTUI_DEMO_DIR (as EUPS sets $DRP_STELLA_DIR) so demo plans find their pipelines."""
    os.environ.setdefault("PFSTUI_DEMO_DIR", str(_demo_dir()))


def default_demo_repo() -> Path:
    base = os.environ.get("PFSTUI_DATA_DIR")
    if not base:
        from platformdirs import user_data_dir

        base = user_data_dir("pfstui")
    return Path(base) / "demo-repo"


def cmd_demo(args: argparse.Namespace) -> int:
    from pfstui.demo.builder import DemoRepoError, ensure_demo_repo

    repo = Path(args.repo).expanduser() if args.repo else default_demo_repo()
    if not args.build_only:
        print(f"Preparing the demo repository at {repo} ...", flush=True)
    try:
        report = ensure_demo_repo(repo, fresh=args.fresh, registry=args.registry)
    except DemoRepoError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:  # a file where a folder should be, no permission, a full disk
        where = exc.filename or repo
        raise CliError(f"cannot build the demo repository at {repo}: {exc.strerror} ({where})",
                       "choose another --repo (a folder you can write, or one that does not exist yet)") from None
    for line in report.lines():
        print(line)
    if args.build_only:
        return 0
    ensure_demo_env()
    plan = demo_plan(report.repo)
    print(f"Demo plan: {plan} (the queue opens paused: press r in the Queue pane to run it)")
    from pfstui.cli.app import run_app

    return run_app(repo=str(report.repo), plan=str(plan), read_only=getattr(args, "read_only", False), demo=True)


def demo_plan(repo: Path) -> Path:
    """The demo plan beside the demo repository, written from the demo template when missing."""
    import getpass

    from pfstui.plan.templates import plan_new

    path = Path(repo).parent / f"{Path(repo).name}-plan.yaml"
    if not path.exists():
        pfstui.demo.register()  # the demo template (main() has registered it too; again is harmless)
        plan_new("demo", str(repo), f"u/{getpass.getuser()}", path)
    return path


def add_subcommands(sub) -> None:
    p = sub.add_parser("demo", help="build the demo repository (if missing) and open the app on it")
    p.add_argument("--repo", help="where the demo repository lives (default: the user's data dir)")
    p.add_argument("--fresh", action="store_true", help="rebuild the demo repository from scratch")
    p.add_argument("--registry", metavar="URL",
                   help="keep the demo's registry on a PostgreSQL server, in its own schema pfstui_demo "
                        "(postgresql://USER@HOST:PORT/DATABASE; the password goes in ~/.lsst/db-auth.yaml; needs "
                        "pip install 'pfstui[postgres]'); default: SQLite inside the repository folder")
    p.add_argument("--build-only", action="store_true", help="build it, print what was made, and exit")
    p.set_defaults(func=cmd_demo)
    changes(p, "demo", lambda a: "the demo repository (rebuilt from scratch)" if a.fresh else None)
