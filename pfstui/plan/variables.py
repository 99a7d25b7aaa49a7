"""The one environment a plan is read in and its stages run in.

Why one function: the plan's ``${VAR}`` references are resolved from it, and the stages the supervisor
starts get it, so a plan that loads in the app, the CLI or the supervisor resolves to the same commands.
It is ours (``os.environ``) with our interpreter's ``bin`` first on ``PATH``, so ``pipetask`` and ``butler``
are those beside pfstui's Python.  Nothing here knows the demo: the CLI sets ``$PFSTUI_DEMO_DIR`` for it
(``pfstui.cli.demo.ensure_demo_env``), as EUPS sets ``$DRP_STELLA_DIR``, and every process inherits it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["stage_env"]


def stage_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with the running interpreter's ``bin`` first on ``PATH``."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env
