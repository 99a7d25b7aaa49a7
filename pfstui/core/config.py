"""Operator settings: ``<config dir>/config.yaml`` (``PFSTUI_CONFIG_DIR`` or the XDG config folder).

Example::

    theme: light            # dark (default) or light
    bell: failures          # failures (default), always, never: ring the terminal bell when a stage ends
    ssh_fps: 15             # frame rate over SSH (SSH_CONNECTION set); default 20
    keymap:                 # rebind keys by binding id (see `?` in the app for the ids)
      queue.kill: ctrl+k
      pane.logs: l,3

A bad file never stops the app: the defaults are used and the message names the file, the field and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .paths import config_dir


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    theme: Literal["dark", "light"] = "dark"
    bell: Literal["failures", "always", "never"] = "failures"
    ssh_fps: int = Field(default=20, ge=1, le=120)
    keymap: dict[str, str] = Field(default_factory=dict)


def config_path() -> Path:
    return config_dir() / "config.yaml"


def load_settings(path: Path | None = None) -> tuple[Settings, str | None]:
    """The settings and, when the file was unusable, a one-line message (the defaults are then used)."""
    path = path or config_path()
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return Settings(), None
    except OSError as exc:
        return Settings(), f"cannot read {path}: {exc.strerror}; using the default settings"
    try:
        data = yaml.safe_load(raw) or {}
        if not isinstance(data, dict):
            raise ValueError("the file must hold 'key: value' settings")
        return Settings.model_validate(data), None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        return Settings(), f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)}); using the defaults"
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top)"
        return Settings(), f"{path}: {field}: {err['msg']}; fix it or remove the line (defaults used)"
    except ValueError as exc:
        return Settings(), f"{path}: {exc}; using the defaults"
