"""Hostile names and values on the command line: one line naming the problem and the fix, nothing written.

The same name rules as plans (``pfstui.values.names``) apply to what the CLI would create: a CALIBRATION
collection, a profiles run.  Before, ``pfstui certify`` created collections named with a newline, a tab, ``*``,
``$(...)``, 100,000 characters or an ANSI escape (which later reached the terminal raw through the journal).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import pfstui.cli.main as cli
from tests.butler.test_gateway import OLD_RUN

HOSTILE_NAMES = ["PFS/cal\nib", "PFS/cal\tib", "PFS/*", "PFS/$(id)", "x" * 100_000, "PFS/\x1b[31mred", "PFS/a'b\"c;d",
                 "PFS/calib`id`", ""]


@pytest.fixture
def repo(cli_repo: Path) -> Path:
    return cli_repo


def registry_bytes(repo: Path) -> bytes:
    return (repo / "gen3.sqlite3").read_bytes()


def one_line_refusal(capsys, argv: list[str], repo: Path, expected: str) -> None:
    before = registry_bytes(repo)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("pfstui: error: "), err
    assert expected in err, err
    assert "\x1b" not in err and len(err) < 400, err
    assert registry_bytes(repo) == before


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n[:12]))
def test_certify_refuses_a_hostile_target_collection(capsys, repo: Path, name: str) -> None:
    one_line_refusal(capsys, ["certify", str(repo), OLD_RUN, name, "bias", "--yes"], repo, "collection name")


@pytest.mark.parametrize("name", ["run'18", 'run"18', "run;18", "run$(id)", "run\n18", "r" * 300])
def test_define_profiles_refuses_a_hostile_run_name(capsys, repo: Path, name: str) -> None:
    one_line_refusal(capsys, ["define-profiles", str(repo), "PFS", name, "--bright", "1", "--dark", "2", "--yes"],
                     repo, "profiles_run name")


def test_an_empty_date_is_not_an_open_bound(capsys, repo: Path) -> None:
    one_line_refusal(capsys, ["certify", str(repo), OLD_RUN, "PFS/calib", "bias", "--begin-date", "", "--yes"], repo,
                     "the begin date is empty")


def test_decertify_without_a_window_or_ids_is_refused_unless_all(capsys, repo: Path) -> None:
    assert cli.main(["certify", str(repo), OLD_RUN, "PFS/calib", "bias", "--yes"]) == 0
    capsys.readouterr()
    one_line_refusal(capsys, ["decertify", str(repo), "PFS/calib", "bias", "--yes"], repo, "--all")
    assert cli.main(["decertify", str(repo), "PFS/calib", "bias", "--all", "--dry-run"]) == 0  # a preview only
    assert "decertify bias in PFS/calib" in capsys.readouterr().out
