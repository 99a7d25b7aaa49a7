"""Small CLI mistakes an operator makes: each is one line naming the problem and the fix, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pfstui.cli.main as cli
from pfstui.plan.loader import load_plan


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_a_misspelt_command_lists_every_command(capsys) -> None:
    code, _, err = run(capsys, "certfy")
    assert code == 2 and "'certfy'" in err
    for name in ("certify", "decertify", "status", "queue", "journal", "demo"):
        assert f"'{name}'" in err


def test_journal_limit_must_be_a_count(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path))
    code, _, err = run(capsys, "journal", "--limit", "-5")
    assert code == 2 and "-5 is out of range" in err


def test_plan_new_does_not_create_folders(capsys, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "plan.yaml"
    code, _, err = run(capsys, "plan", "new", "--template", "demo", "--repo", str(tmp_path), "-o", str(target))
    assert code == 2 and "does not exist" in err and err.count("\n") == 1
    assert not (tmp_path / "no").exists()


def test_plan_new_keeps_a_dollar_in_the_repository_path(capsys, tmp_path: Path) -> None:
    repo = tmp_path / "repo$b"
    out = tmp_path / "plan.yaml"
    code, _, err = run(capsys, "plan", "new", "--template", "demo", "--repo", str(repo), "-o", str(out))
    assert code == 0, err
    assert load_plan(out).repository == str(repo)


def test_demo_into_a_file_is_one_line(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PFSTUI_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "afile").write_text("")
    code, _, err = run(capsys, "demo", "--repo", str(tmp_path / "afile" / "sub"), "--build-only")
    assert code == 2 and "cannot build the demo repository" in err and "traceback" not in err


def test_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """`pfstui plan show PLAN | head -1`: no BrokenPipeError, no "unexpected error"."""
    plan = tmp_path / "plan.yaml"
    assert cli.main(["plan", "new", "--template", "demo", "--repo", str(tmp_path), "-o", str(plan)]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "pfstui", "plan", "show", str(plan)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PFSTUI_STATE_DIR": str(tmp_path)})
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141)
    assert "Error" not in err and "unexpected" not in err, err


@pytest.mark.parametrize("value", ["0", "-3", "1e22", "x"])
def test_parallel_must_be_positive(capsys, tmp_path: Path, value: str) -> None:
    code, _, err = run(capsys, "run", str(tmp_path / "plan.yaml"), "--parallel", value)
    assert code == 2 and "--parallel" in err and "pydantic" not in err.lower()


@pytest.mark.parametrize("value", ["1e22", "0", "1001", "2.5", "-3", "four"])
def test_queue_parallel_is_a_whole_number_from_1_to_1000(capsys, tmp_path, monkeypatch, value: str) -> None:
    """Checked before any session is looked up or supervisor started (set_parallel 1e22 was accepted)."""
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    code, _, err = run(capsys, "queue", "parallel", value)
    assert code == 2 and err.count("\n") == 1 and "is not a whole number from 1 to 1000" in err, err
    assert not (tmp_path / "state").exists()
    code, _, err = run(capsys, "run", "plan.yaml", "--parallel", value)
    assert code == 2 and "--parallel" in err and "Traceback" not in err


def test_full_is_an_option_of_restart_alone(capsys, tmp_path, monkeypatch) -> None:
    """``--full`` (run every quantum again) means nothing to kill or skip: said in one line, nothing started."""
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    code, _, err = run(capsys, "queue", "kill", "bias", "--full")
    assert code == 2 and err.count("\n") == 1 and "--full is an option of `pfstui queue restart`" in err, err
    assert not (tmp_path / "state").exists()


def test_a_huge_visit_range_is_refused_before_it_is_expanded(capsys, cli_repo: Path) -> None:
    """`--bright 1..99999999999999999999` grew to 4 GB; now one line, at once."""
    code, _, err = run(capsys, "define-profiles", str(cli_repo), "PFS", "run1", "--bright", "1..99999999999999999999",
                       "--dark", "2", "--yes")
    assert code == 2 and "more than 100,000 visits" in err and err.count("\n") == 1
