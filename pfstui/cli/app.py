"""Open the app (``pfstui [--repo REPO] [--plan PLAN] [--read-only]`` and ``pfstui demo``)."""

from __future__ import annotations

import gc
import os
import sys

from pfstui.cli.guard import CliError

__all__ = ["run_app"]


def run_app(*, repo: str | None, plan: str | None, read_only: bool, demo: bool) -> int:
    if plan and not os.path.isfile(plan):  # else the app would open on an empty queue, the reason lost
        raise CliError(f"plan {plan} does not exist",
                       f"check the path, or write one with `pfstui plan new --template pfs -o {plan}`")
    if not sys.stdout.isatty():
        raise CliError("the pfstui app needs a terminal; use the headless subcommands (pfstui --help) in scripts")
    if os.environ.get("SSH_CONNECTION") and "TEXTUAL_FPS" not in os.environ:
        # Over SSH, 60 frames a second is wasted on the wire; Textual reads this when it is imported.
        from pfstui.config import load_settings

        os.environ["TEXTUAL_FPS"] = str(load_settings()[0].ssh_fps)
    gc.disable()  # until the first frame is out (see pfstui.__main__): PfsTuiApp's settle_gc switches it on
    from pfstui.ui.app import PfsTuiApp

    app = PfsTuiApp(repo=repo, plan=plan, read_only=read_only, demo=demo, prepare_templates=_register_demo)
    app.run()
    return app.return_code or 0


def _register_demo() -> None:
    """The demo's plan template, registered when the app first needs templates (the add-stage screen)."""
    import pfstui.demo

    pfstui.demo.register()
