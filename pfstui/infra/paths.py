"""Where pfstui keeps its state, data and configuration.

Why: operators run pfstui on shared login nodes over SSH; state must live in a per-user folder that survives the
session (XDG state dir via platformdirs), tests and power users must be able to redirect every folder with one
environment variable, and each (repository, plan) pair needs its own stable session folder so two plans against
the same repository, or one plan against two repositories, never share a queue.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

import platformdirs

from pfstui.infra.private import check_trusted, make_private_dir

__all__ = [
    "APP_NAME",
    "STATE_DIR_ENV",
    "DATA_DIR_ENV",
    "CONFIG_DIR_ENV",
    "state_dir",
    "data_dir",
    "config_dir",
    "demo_repo_dir",
    "sessions_dir",
    "session_dir_name",
    "session_dir",
    "make_session_dir",
]

APP_NAME = "pfstui"
STATE_DIR_ENV = "PFSTUI_STATE_DIR"
DATA_DIR_ENV = "PFSTUI_DATA_DIR"
CONFIG_DIR_ENV = "PFSTUI_CONFIG_DIR"


def _from_env(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    return Path(value).expanduser().absolute()


def state_dir() -> Path:
    """Per-user state folder (queues, journals, logs): ``$PFSTUI_STATE_DIR`` or the XDG state dir."""
    return _from_env(STATE_DIR_ENV) or Path(platformdirs.user_state_dir(APP_NAME)).absolute()


def data_dir() -> Path:
    """Per-user data folder (demo repository and the like): ``$PFSTUI_DATA_DIR`` or the XDG data dir."""
    return _from_env(DATA_DIR_ENV) or Path(platformdirs.user_data_dir(APP_NAME)).absolute()


def config_dir() -> Path:
    """Per-user configuration folder: ``$PFSTUI_CONFIG_DIR`` or the XDG config dir."""
    return _from_env(CONFIG_DIR_ENV) or Path(platformdirs.user_config_dir(APP_NAME)).absolute()


def demo_repo_dir() -> Path:
    """Default location of the demo Butler repository: ``<data dir>/demo-repo``."""
    return data_dir() / "demo-repo"


def sessions_dir() -> Path:
    """Folder holding one sub-folder per (repository, plan) session."""
    return state_dir() / "sessions"


def _canonical(path: Path | str) -> str:
    # resolve(): the same repository reached through a symlink or a relative path is the same session.
    return str(Path(path).expanduser().resolve(strict=False))


def _slug(text: str, limit: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return slug[:limit].strip("-") or "x"


def session_dir_name(repo: Path | str, plan: Path | str) -> str:
    """Readable, stable folder name for a (repository, plan) pair: ``<repo>-<plan>-<hash12>``.

    The slug is for humans (``ls`` of the sessions folder); the hash of both absolute paths is what makes the
    name unique, so two repositories called ``repo`` in different places never collide.
    """
    repo_abs = _canonical(repo)
    plan_abs = _canonical(plan)
    digest = hashlib.sha256(f"{repo_abs}\0{plan_abs}".encode()).hexdigest()[:12]
    repo_part = _slug(Path(repo_abs).name, 32)
    plan_part = _slug(Path(plan_abs).stem, 32)
    return f"{repo_part}-{plan_part}-{digest}"


def session_dir(repo: Path | str, plan: Path | str) -> Path:
    """The session folder for a (repository, plan) pair (not created)."""
    return sessions_dir() / session_dir_name(repo, plan)


def make_session_dir(path: Path | str) -> Path:
    """Create the session folder private (or check an existing one): yours, writable by you alone.

    Why the parent too: whoever can write the folder that holds the session can rename the whole session
    away and put a crafted one (state, plan pointer) in its place.  A sticky parent (``/tmp``) is safe:
    there nobody renames entries they do not own.  Raises :class:`pfstui.infra.private.UnsafePathError`.
    """
    path = Path(path).absolute()
    make_private_dir(path, what="session folder")
    parent = path.parent
    if not os.lstat(parent).st_mode & stat.S_ISVTX:
        check_trusted(parent, "folder of the session")
    return path
