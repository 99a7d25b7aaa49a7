"""The one environment a plan is read in and its stages run in, and how a plan's ``$VAR`` come from it.

Why one function: the plan's ``${VAR}`` references are resolved from it, and the stages the supervisor
starts get it, so a plan that loads in the app, the CLI or the supervisor resolves to the same commands.
It is ours (``os.environ``) with our interpreter's ``bin`` first on ``PATH``, so ``pipetask`` and ``butler``
are those beside pfstui's Python.  Nothing here knows the demo: the CLI sets ``$PFSTUI_DEMO_DIR`` for it
(``pfstui.cli.demo.ensure_demo_env``), as EUPS sets ``$DRP_STELLA_DIR``, and every process inherits it.

Variables.  Every string value of a plan may use ``${NAME}`` or ``$NAME`` (e.g. ``$DRP_STELLA_DIR``,
``${PFSTUI_DEMO_DIR}``); ``$$`` is a literal ``$``.  They are resolved when the plan is loaded, from the
environment mapping passed in (default: :func:`stage_env`).  No name is special: ``${RERUN}`` is just an
environment variable like any other.  An unset variable is a load error.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["BadVariable", "UnsetVariable", "expand_vars", "stage_env"]


def stage_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) with the running interpreter's ``bin`` first on ``PATH``."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


_VAR_RE = re.compile(r"\$(?:\$|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*)|)")
_VAR_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class UnsetVariable(Exception):
    """A ``$NAME`` whose NAME the environment does not have (the loader names the fix)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class BadVariable(Exception):
    """A ``$`` reference that is not ``${NAME}``, ``$NAME`` or ``$$``."""


def expand_vars(text: str, env: Mapping[str, str]) -> str:
    """Replace ``${NAME}`` / ``$NAME`` from ``env``; ``$$`` is a literal ``$``; a lone ``$`` stays.

    Raises KeyError-like ``UnsetVariable`` for a missing name; callers turn it into a PlanError.
    """

    def repl(m: re.Match[str]) -> str:
        whole = m.group(0)
        if whole == "$$":
            return "$"
        if whole == "$":
            if m.end() < len(text) and text[m.end()] == "{":
                raise BadVariable("'${' without a closing '}'")
            return "$"
        name = m.group(1) if m.group(1) is not None else m.group(2)
        if not _VAR_NAME_RE.match(name):
            raise BadVariable(f"'${{{name}}}' is not a valid variable reference")
        if name not in env:
            raise UnsetVariable(name)
        return str(env[name])

    return _VAR_RE.sub(repl, text)
