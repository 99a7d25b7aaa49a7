"""Inputs and disks that gave "unexpected error" and a traceback file: each is now one line naming the fix.

* ``certify-detectormaps --datasetType raw``: a type that cannot become a detectorMap_calib copy (it failed
  inside apply, after the preview had offered it);
* ``clean --where`` with 8,000 ORs or 3,000 nested parentheses (the Butler's parser raised RecursionError);
* a full repository disk during apply (the datastore's ENOSPC, wrapped in a RuntimeError), faked at the file
  write boundary in a real ``pfstui`` process; the change is rolled back.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

import pfstui.cli.main as cli

ENOSPC_PFSTUI = r"""
import builtins, errno, io, os, sys
repo = os.path.realpath(sys.argv[1])
real_open = builtins.open

def full_disk_open(file, mode="r", *args, **kwargs):
    '''open(), except that writing any file of the repository fails as a full disk does.'''
    if any(c in mode for c in "wax+") and isinstance(file, (str, os.PathLike)) \
            and os.path.realpath(file).startswith(repo + os.sep):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
    return real_open(file, mode, *args, **kwargs)

builtins.open = io.open = full_disk_open
from pfstui.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code: int, err: str) -> str:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("pfstui: error: ") and "unexpected" not in err, err
    return err


@pytest.fixture
def repo(demo_repo: Path, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    return demo_repo


def test_certify_detectormaps_of_a_raw_is_refused_before_apply(capsys, repo: Path) -> None:
    code, out, err = run(capsys, "certify-detectormaps", repo, "PFS/raw/sps", "PFS/calib", "--datasetType", "raw",
                         "--yes")
    err = one_line(code, err)
    assert "raw (NumpyArray per " in err and "cannot be copied to detectorMap_calib" in err
    assert "--datasetType" in err and out == ""


@pytest.mark.parametrize("where", [
    " OR ".join(f"visit = {i}" for i in range(8000)),
    "(" * 3000 + "visit = 11" + ")" * 3000,
], ids=["8000-ors", "3000-deep"])
def test_clean_refuses_an_expression_the_butler_cannot_parse(capsys, repo: Path, where: str) -> None:
    code, _, err = run(capsys, "clean", repo, "PFS/raw/*", "raw", "--where", where, "--dry-run")
    assert "IN (11..58" in one_line(code, err) or "parentheses 3000 deep" in err


def test_a_query_deeper_than_the_parser_is_one_line_even_below_the_bounds(repo: Path) -> None:
    """The bounds are a first line; the parser's own RecursionError is translated too (the app's views)."""
    from pfstui.butler.errors import QueryError
    from pfstui.butler.gateway import ButlerGateway

    where = " OR ".join(f"visit = {i}" for i in range(2000))
    with ButlerGateway(str(repo), read_only=True) as gw, pytest.raises(QueryError, match="too long or too deeply"):
        gw.datasets("PFS/raw/sps", "raw", where=where)


def test_a_full_repository_disk_during_apply_is_one_line_and_rolled_back(repo: Path, tmp_path: Path,
                                                                        tool_env) -> None:
    argv = ["define-profiles", str(repo), "PFS", "run18", "--bright", "11..13", "--yes"]
    proc = subprocess.run([sys.executable, "-c", ENOSPC_PFSTUI, str(repo), *argv], capture_output=True, text=True, check=False,
                          env={**tool_env, "PFSTUI_STATE_DIR": str(tmp_path / "state")}, timeout=300)
    err = one_line(proc.returncode, proc.stderr)
    assert "cannot write to the repository (define-profiles): No space left on device" in err
    assert "rolled back" in err and "free some space" in err
    # Nothing was left behind: the same command (a working disk now) defines the run afresh.
    proc = subprocess.run([sys.executable, "-m", "pfstui.cli.main", *argv[:-1], "--dry-run"], capture_output=True, check=False,
                          text=True, env={**tool_env, "PFSTUI_STATE_DIR": str(tmp_path / "state")}, timeout=300)
    assert proc.returncode == 0 and "redefining" not in proc.stdout and "already exists" not in proc.stdout, proc
    leftovers = [p for p in (repo / "PFS").rglob("*") if "fiberProfilesInputs" in str(p) and p.is_file()]
    assert leftovers == [], leftovers
