"""Two real local users sharing a group, and a way to run pfstui as each of them (tests/security).

Why real users: the attacks of the issue (a group member swapping in a crafted state.json, connecting to the
socket while it starts, squatting the socket's fallback folder, reading logs) only mean anything across uids;
root sees everything.  The tests run as root in CI; elsewhere they are skipped, saying why.

The users must run this checkout's Python: a pyenv interpreter under ``/root`` (mode 700) is out of their reach,
so the interpreter's install is then copied (without its test suite) to a folder they can read, with a venv whose
``.pth`` adds the project venv's site-packages.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]


def skip_reason() -> str | None:
    """Why the two-user tests cannot run here (None: they can)."""
    if os.geteuid() != 0:
        return "the two-user tests create local users: run them as root (CI does)"
    for tool in ("useradd", "userdel", "groupadd", "groupdel", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed: the two-user tests need it"
    return None


def _world_reachable(path: Path) -> bool:
    """Whether another user can reach and read ``path`` (every folder above it traversable)."""
    path = path.resolve()
    for folder in path.parents:
        if not os.stat(folder).st_mode & stat.S_IXOTH:
            return False
    return bool(os.stat(path).st_mode & stat.S_IROTH)


def _public_python(base: Path) -> tuple[str, dict[str, str]]:
    """An interpreter the test users can run, with this venv's packages, and the environment it needs."""
    if _world_reachable(Path(sys.executable)) and _world_reachable(Path(sysconfig.get_paths()["stdlib"])):
        return sys.executable, {}
    prefix = Path(sys.base_prefix)
    copy = base / "python"
    shutil.copytree(prefix, copy, symlinks=True,
                    ignore=shutil.ignore_patterns("test", "site-packages", "idlelib", "tkinter", "turtledemo"))
    venv = base / "venv"
    env = {"LD_LIBRARY_PATH": str(copy / "lib")}  # the interpreter's RUNPATH names the unreachable original
    python = copy / "bin" / Path(os.path.realpath(sys.executable)).name
    subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv)], check=True,
                   env={**os.environ, **env}, capture_output=True)
    site = Path(sysconfig.get_paths()["purelib"])
    if not _world_reachable(site):
        # The venv sits where other users cannot go (a clone under a private home): give them a copy, hard
        # links when the file system allows (instant), else a real copy.
        linked = base / "site-packages"
        if subprocess.run(["cp", "-al", str(site), str(linked)], capture_output=True).returncode != 0:
            shutil.rmtree(linked, ignore_errors=True)
            shutil.copytree(site, linked, symlinks=True)
        site = linked
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (venv / "lib" / version / "site-packages" / "pfstui_tests.pth").write_text(
        f"import site; site.addsitedir({str(site)!r})\n")
    return str(venv / "bin" / "python"), env


@dataclass
class User:
    name: str
    uid: int
    home: Path

    @property
    def state(self) -> Path:
        return self.home / "state"


@dataclass
class TwoUsers:
    """alice (the operator) and bob (another member of her group); ``run`` runs a command as either."""

    group: str
    gid: int
    base: Path
    python: str
    python_env: dict[str, str]
    alice: User = field(init=False)
    bob: User = field(init=False)

    def env(self, user: User, **extra: str) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(user.home), "USER": user.name,
               "LOGNAME": user.name, "PYTHONPATH": str(ROOT), "PFSTUI_STATE_DIR": str(user.state),
               "PFSTUI_CONFIG_DIR": str(user.home / "config"), "PFSTUI_DATA_DIR": str(user.home / "data"),
               "PFSTUI_SUPERVISOR_IDLE": "5", "PYTHONDONTWRITEBYTECODE": "1", **self.python_env}
        env.update(extra)
        return env

    def argv(self, user: User, argv: list[str], umask: str) -> list[str]:
        return ["setpriv", f"--reuid={user.uid}", f"--regid={self.gid}", "--init-groups", "--",
                "sh", "-c", f'umask {umask} && exec "$@"', "sh", *argv]

    def run(self, user: User, argv: list[str], *, umask: str = "002", timeout: float = 120,
            **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(user, argv, umask), check=False, env=self.env(user, **env), capture_output=True,
                              text=True, timeout=timeout, cwd=str(user.home))

    def py(self, user: User, code: str, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
        """Run Python ``code`` (``sys.argv[1:]`` = ``args``) as ``user`` with this checkout's pfstui."""
        return self.run(user, [self.python, "-c", code, *args], **kwargs)

    def popen(self, user: User, code: str, *args: str, umask: str = "002", **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(user, [self.python, "-c", code, *args], umask), env=self.env(user, **env),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(user.home))

    def stop_processes(self) -> None:
        """SIGKILL what the test users still run (supervisors left by a failed test): only their uids."""
        uids = {self.alice.uid, self.bob.uid}
        for proc in psutil.process_iter(["uids"]):
            with contextlib.suppress(psutil.Error):
                if proc.info["uids"] and proc.info["uids"].real in uids:
                    proc.kill()


def _add_user(name: str, group: str, home: Path) -> User:
    subprocess.run(["useradd", "-M", "-N", "-g", group, "-d", str(home), "-s", "/bin/sh", name], check=True,
                   capture_output=True)
    entry = pwd.getpwnam(name)
    home.mkdir()
    os.chmod(home, 0o755)  # a usual home on a shared host: others may enter; pfstui's own folders must hold
    os.chown(home, entry.pw_uid, grp.getgrnam(group).gr_gid)
    return User(name, entry.pw_uid, home)


@contextlib.contextmanager
def two_users():
    """Create the group and both users (random names), yield :class:`TwoUsers`, then remove everything."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    tag = secrets.token_hex(3)
    group, names = f"pfsg{tag}", (f"pfsa{tag}", f"pfsb{tag}")
    base = Path(tempfile.mkdtemp(prefix="pfstui-2u-", dir="/tmp"))
    os.chmod(base, 0o755)
    made: list[str] = []
    try:
        subprocess.run(["groupadd", group], check=True, capture_output=True)
        python, penv = _public_python(base)
        users = TwoUsers(group, grp.getgrnam(group).gr_gid, base, python, penv)
        for name in names:
            user = _add_user(name, group, base / name)
            made.append(name)
            setattr(users, "alice" if name == names[0] else "bob", user)
        yield users
    finally:
        if made:
            with contextlib.suppress(Exception):
                users.stop_processes()
        for name in made:
            subprocess.run(["userdel", name], check=False, capture_output=True)
        subprocess.run(["groupdel", group], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
