"""Shared fixtures: the demo repository is built once per test session and copied per test.

A SQLite Butler repository is a folder whose configuration refers to ``<butlerRoot>``, so a copy is a
complete, independent repository.  The same repositories exist with their registry on a private PostgreSQL
server (tests/pg.py): a test takes one by parametrising its repository fixture over
:data:`tests.pg.REGISTRIES` with ``indirect=True``; unparametrised, it gets SQLite.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.pg import PgServer, ServerUnavailable, copy_repo, on_registry

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def _group_access_stays_in_its_test():
    """``pfstui.cli.main`` puts the site's ``group_access`` into ``os.environ`` for the processes it starts; a
    test that calls it in-process must not leave it to the next test of its worker (whose files would then be
    group-readable: the open-logs file test saw mode 0640 after the group-access test)."""
    from pfstui.infra.private import GROUP_ACCESS_ENV

    before = os.environ.get(GROUP_ACCESS_ENV)
    yield
    if before is None:
        os.environ.pop(GROUP_ACCESS_ENV, None)
    else:
        os.environ[GROUP_ACCESS_ENV] = before


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
def pg_server():
    """A private PostgreSQL server for this test session (one per xdist worker); CI must have one."""
    try:
        server = PgServer.start()
    except ServerUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the PostgreSQL tests must run in CI: {exc}")
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_demo_template(pg_server, tmp_path_factory) -> Path:
    """The demo repository built by ``pfstui demo --registry``'s builder, its registry on ``pg_server``."""
    from pfstui.demo.builder import ensure_demo_repo

    root = tmp_path_factory.mktemp("pg-demo-template") / "repo"
    ensure_demo_repo(root, registry=pg_server.create_database("demo_template"))
    return root


def _seeded(template: Path, tmp_path_factory) -> Path:
    from tests.butler.test_gateway import seed_bias_repo

    root = copy_repo(template, tmp_path_factory.mktemp("seeded") / "repo")
    seed_bias_repo(root)
    return root


@pytest.fixture(scope="session")
def seeded_template(demo_repo_template: Path, tmp_path_factory) -> Path:
    """The demo repository plus two bias reruns chained under u/me/bias (see tests/butler/test_gateway.py).

    Shared read-only by the gateway, action and CLI tests: each copies it before changing anything.
    """
    return _seeded(demo_repo_template, tmp_path_factory)


@pytest.fixture(scope="session")
def pg_seeded_template(pg_demo_template: Path, tmp_path_factory) -> Path:
    """:func:`seeded_template` with its registry on PostgreSQL."""
    return _seeded(pg_demo_template, tmp_path_factory)


@pytest.fixture
def seeded_repo(request, tmp_path: Path) -> Path:
    """A fresh copy of the seeded repository for one test."""
    return copy_repo(on_registry(request, "seeded_template", "pg_seeded_template"), tmp_path / "repo")


@pytest.fixture
def cli_repo(seeded_repo: Path, monkeypatch) -> Path:
    """A copy of the seeded repository as the CLI tests use it: a private state folder, stdin not a terminal
    (so nothing is applied without ``--yes``)."""
    import io

    dest = seeded_repo
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(dest.parent / "state"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    return dest


@pytest.fixture
def demo_repo(request, tmp_path: Path) -> Path:
    """A fresh copy of the demo repository for one test."""
    return copy_repo(on_registry(request, "demo_repo_template", "pg_demo_template"), tmp_path / "repo")


@pytest.fixture
def tool_env(tmp_path: Path) -> dict[str, str]:
    """Environment for real pipetask/butler subprocesses: the venv's bin first, the demo dir set."""
    import pfstui.demo

    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PFSTUI_DEMO_DIR"] = str(Path(pfstui.demo.__file__).parent)
    env.setdefault("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    return env


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the figures tests recorded with ``record_property("race", line)`` (the race test's counts).

    Why here: under xdist a test's own output is lost, but its recorded properties travel with its report."""
    lines = [value for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
             for key, value in getattr(report, "user_properties", ()) if key == "race"]
    if lines:
        terminalreporter.section("operators at once")
        for line in sorted(set(lines)):
            terminalreporter.write_line(line)
