"""Shared fixtures: the demo repository is built once per test session and copied per test.

A SQLite Butler repository is a folder whose configuration refers to ``<butlerRoot>``, so a copy is a
complete, independent repository.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent


def pytest_configure(config: pytest.Config) -> None:
    """Register the demo as the CLI does at every start (``pfstui.demo.register``): the tests use the
    product without the CLI.  Done before collection, as some test modules render the demo template
    when they are imported; each xdist worker runs this too."""
    import pfstui.demo

    pfstui.demo.register()


@pytest.fixture(scope="session")
def demo_repo_template(tmp_path_factory) -> Path:
    from pfstui.demo.builder import ensure_demo_repo

    root = tmp_path_factory.mktemp("demo-template") / "repo"
    ensure_demo_repo(root)
    return root


@pytest.fixture(scope="session")
def seeded_template(demo_repo_template: Path, tmp_path_factory) -> Path:
    """The demo repository plus two bias reruns chained under u/me/bias (see tests/butler/test_gateway.py).

    Shared read-only by the gateway, action and CLI tests: each copies it before changing anything.
    """
    from tests.butler.test_gateway import seed_bias_repo

    root = tmp_path_factory.mktemp("seeded") / "repo"
    shutil.copytree(demo_repo_template, root)
    seed_bias_repo(root)
    return root


@pytest.fixture
def cli_repo(seeded_template: Path, tmp_path: Path, monkeypatch) -> Path:
    """A copy of the seeded repository as the CLI tests use it: a private state folder, stdin not a terminal
    (so nothing is applied without ``--yes``)."""
    import io

    dest = tmp_path / "repo"
    shutil.copytree(seeded_template, dest)
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    return dest


@pytest.fixture
def demo_repo(demo_repo_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the demo repository for one test."""
    dest = tmp_path / "repo"
    shutil.copytree(demo_repo_template, dest)
    return dest


@pytest.fixture
def tool_env(tmp_path: Path) -> dict[str, str]:
    """Environment for real pipetask/butler subprocesses: the venv's bin first, the demo dir set."""
    import pfstui.demo

    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PFSTUI_DEMO_DIR"] = str(Path(pfstui.demo.__file__).parent)
    env.setdefault("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    return env
