"""Fixtures of the butler package's tests: a writable gateway on the module's ``repo`` and a private journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfstui.butler.gateway import ButlerGateway
from pfstui.infra.journal import Journal


@pytest.fixture
def gw(repo: Path):
    """A writable gateway on ``repo`` (each test module says which repository that is)."""
    g = ButlerGateway(str(repo))
    yield g
    g.close()


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.jsonl")
