"""Operator settings: ``<config dir>/config.yaml`` (``PFSTUI_CONFIG_DIR`` or the XDG config folder).

Example::

    theme: light            # dark (default) or light
    bell: failures          # failures (default), always, never: ring the terminal bell when a stage ends
    ssh_fps: 15             # frame rate over SSH (SSH_CONNECTION set); default 20
    keymap:                 # rebind keys by binding id (see `?` in the app for the ids)
      queue.kill: K
      pane.logs: f3,3
    group_access: false     # a site setting: true opens pfstui's folders and files to your group, read-only
    images: auto            # auto (default): the graphics protocol of a terminal that announces it (kitty,
                            # WezTerm, foot...), else half-blocks; or halfcell, tgp (kitty protocol), sixel

A bad file never stops the app: the defaults are used and the message names the file, the field and the fix.
A file that is not yours, or that others can write, is not read at all (the message says why).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from pfstui.errors import UserError
from pfstui.infra.paths import config_dir
from pfstui.infra.private import UnsafePathError, check_trusted

CHOICES = {"theme": ("dark", "light"), "bell": ("failures", "always", "never"),
           "images": ("auto", "halfcell", "tgp", "sixel")}


class SettingsError(UserError, ValueError):
    """One bad field: the message names it and the fix."""


@dataclass(frozen=True)
class Settings:
    """Typed settings. Plain dataclass (no pydantic) so reading them stays off the first frame's path."""

    theme: Literal["dark", "light"] = "dark"
    bell: Literal["failures", "always", "never"] = "failures"
    ssh_fps: int = 20
    keymap: dict[str, str] = field(default_factory=dict)
    #: Open pfstui's folders (0750) and files (0640) to the group; off: everything is 0700 / 0600.
    group_access: bool = False
    #: How the verification view draws images: see :mod:`pfstui.ui.images`.
    images: Literal["auto", "halfcell", "tgp", "sixel"] = "auto"

    @classmethod
    def from_dict(cls, data: dict) -> Settings:
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise SettingsError(f"{key}: unknown setting (known: {', '.join(sorted(known))})")
        for key, choices in CHOICES.items():
            if key in data and data[key] not in choices:
                raise SettingsError(f"{key}: {data[key]!r} is not one of {', '.join(choices)}")
        fps = data.get("ssh_fps", 20)
        if not isinstance(fps, int) or isinstance(fps, bool) or not 1 <= fps <= 120:
            raise SettingsError(f"ssh_fps: {fps!r} must be a whole number from 1 to 120")
        keymap = data.get("keymap") or {}
        if not isinstance(keymap, dict) or not all(isinstance(k, str) and isinstance(v, str | int)
                                                   for k, v in keymap.items()):
            raise SettingsError("keymap: write 'binding.id: key' lines, e.g. queue.kill: ctrl+k")
        group = data.get("group_access", False)
        if not isinstance(group, bool):
            raise SettingsError(f"group_access: {group!r} must be true or false")
        return cls(theme=data.get("theme", "dark"), bell=data.get("bell", "failures"), ssh_fps=fps,
                   keymap={k: str(v) for k, v in keymap.items()}, group_access=group,
                   images=data.get("images", "auto"))


def config_path() -> Path:
    return config_dir() / "config.yaml"


#: What each settings file read gave, by the file's identity: the CLI (group_access, ssh_fps) and the app
#: all ask at start, and a file read and parsed once serves them all until it changes.
_READ: dict[tuple, tuple[Settings, str | None]] = {}


def load_settings(path: Path | None = None) -> tuple[Settings, str | None]:
    """The settings and, when the file was unusable, a one-line message (the defaults are then used)."""
    path = path or config_path()
    try:
        st = os.lstat(path)
        key: tuple = (str(path), st.st_mtime_ns, st.st_size, st.st_mode, st.st_uid)
    except OSError:
        key = (str(path), None)
    if key not in _READ:
        if len(_READ) > 16:
            _READ.clear()
        _READ[key] = _read_settings(path)
    return _READ[key]


def _read_settings(path: Path) -> tuple[Settings, str | None]:
    try:
        check_trusted(path, "settings file")
        raw = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return Settings(), None
    except UnsafePathError as exc:
        return Settings(), f"{exc}; the default settings are used meanwhile"
    except OSError as exc:
        return Settings(), f"cannot read {path}: {exc.strerror}; using the default settings"
    except UnicodeDecodeError as exc:
        return Settings(), (f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 "
                            "(the default settings are used meanwhile)")
    import yaml

    try:
        data = yaml.safe_load(raw) or {}
        if not isinstance(data, dict):
            raise ValueError("the file must hold 'key: value' settings")
        return Settings.from_dict(data), None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        return Settings(), f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)}); using the defaults"
    except SettingsError as exc:
        return Settings(), f"{path}: {exc}; fix it or remove the line (defaults used)"
    except ValueError as exc:
        return Settings(), f"{path}: {exc}; using the defaults"
