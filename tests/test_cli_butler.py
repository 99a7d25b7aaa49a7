"""``pfstui certify|decertify|clean|calibs|journal|undo|remove-runs|remove-collections`` as an operator runs them.

Most cases call :func:`pfstui.cli.butler.main` in-process (fast); one runs the real ``python -m`` process to
check that bad input is a single stderr line without a traceback.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import pytest

import pfstui.cli.butler as cli_butler
from tests.butler.test_gateway import CHAIN, NEW_RUN, OLD_RUN


@pytest.fixture
def repo(cli_repo: Path) -> Path:
    return cli_repo


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_butler.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def ranges(repo: Path, collection: str = "PFS/calib") -> set[tuple]:
    from lsst.daf.butler import Butler

    with Butler.from_config(str(repo)) as butler:
        return {(str(a.ref.id), tuple(sorted(a.ref.dataId.required.items())), a.timespan.nsec)
                for a in butler.registry.queryDatasetAssociations("bias", [collection])}


def data_files(repo: Path) -> list[Path]:
    return sorted(p.relative_to(repo) for p in repo.rglob("*") if p.is_file() and p.suffix != ".sqlite3")


def test_subcommands_register_on_the_pfstui_parser():
    parser = argparse.ArgumentParser(prog="pfstui")
    cli_butler.add_subcommands(parser.add_subparsers())
    args = parser.parse_args(["certify", "R", "u/me/bias", "PFS/calib", "bias", "--id", "instrument=PFS", "arm=r",
                              "--id", "instrument=PFS", "arm=b", "--begin-date", "2025-01-01", "--dry-run"])
    assert args.func is cli_butler.cmd_certify and args.id == [["instrument=PFS", "arm=r"], ["instrument=PFS", "arm=b"]]
    for name in ("decertify", "clean", "calibs", "journal", "undo", "remove-runs", "remove-collections"):
        assert parser.parse_args([name, *(["x"] * {"journal": 0, "undo": 1, "decertify": 3, "clean": 3}.get(name, 2))])
    from pfstui.butler.errors import (
        ConflictError,
        GatewayError,
        InputError,
        NotFoundError,
    )
    from pfstui.errors import UserError
    from pfstui.infra.atomic import StateWriteError
    from pfstui.infra.journal import JournalError
    from pfstui.values.tai import DateError

    assert all(issubclass(t, UserError) for t in (GatewayError, InputError, NotFoundError, ConflictError, DateError,
                                                  JournalError, StateWriteError))


def test_certify_dry_run_confirmation_and_apply(repo: Path, capsys):
    code, out, _ = run(capsys, "certify", repo, CHAIN, "PFS/calib", "bias", "--begin-date", "2025-01-01", "--dry-run")
    assert code == 0 and out.count("+ add") == 4 and "Dry run: nothing written." in out
    assert ranges(repo) == set()
    code, out, err = run(capsys, "certify", repo, CHAIN, "PFS/calib", "bias", "--begin-date", "2025-01-01")
    assert code == 2 and err.strip() == ("pfstui: error: stdin is not a terminal, so pfstui cannot ask before applying "
                                         "certify; pass --yes to apply, or --dry-run to only preview")
    assert ranges(repo) == set()
    code, out, err = run(capsys, "certify", repo, CHAIN, "PFS/calib", "bias", "--begin-date", "2025-01-01", "--yes")
    assert code == 0 and "Certified 4 bias in PFS/calib for [2025-01-01T00:00:00, ∞)." in out
    assert "Journal entry " in out and "pfstui undo " in out and len(ranges(repo)) == 4
    code, out, _ = run(capsys, "calibs", repo, "PFS/calib")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:2] == ["Type", "Data"] and set(lines[1]) <= {"-", " "}
    assert len(lines) == 6 and all("2025-01-01T00:00:00" in line and NEW_RUN in line for line in lines[2:])


def test_confirmation_on_a_terminal(repo: Path, capsys, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty("n\n"))
    code, out, _ = run(capsys, "certify", repo, NEW_RUN, "PFS/calib", "bias")
    assert code == 1 and "Cancelled; nothing written." in out and ranges(repo) == set()
    monkeypatch.setattr(sys, "stdin", Tty("y\n"))
    code, out, _ = run(capsys, "certify", repo, NEW_RUN, "PFS/calib", "bias")
    assert code == 0 and len(ranges(repo)) == 4


def test_conflict_decertify_journal_and_undo(repo: Path, capsys):
    run(capsys, "certify", repo, NEW_RUN, "PFS/calib", "bias", "--begin-date", "2025-01-01", "--yes")
    before = ranges(repo)
    code, out, err = run(capsys, "certify", repo, OLD_RUN, "PFS/calib", "bias", "--end-date", "2025-02-01",
                         "--id", "instrument=PFS", "arm=b", "spectrograph=1", "--yes")
    assert code == 2 and "CONFLICT" in out and err.count("\n") == 1
    assert err.startswith("pfstui: error: certify refused, nothing written: 1 conflict") and ranges(repo) == before
    code, out, err = run(capsys, "certify", repo, OLD_RUN, "PFS/calib", "bias", "--end-date", "2025-02-01", "--dry-run")
    assert code == 1 and "would be refused" in err
    code, out, _ = run(capsys, "decertify", repo, "PFS/calib", "bias", "--begin-date", "2025-03-01",
                       "--end-date", "2025-04-01", "--id", "instrument=PFS", "arm=r", "spectrograph=2", "--yes")
    assert code == 0 and "/ split" in out and "1 range split" in out and len(ranges(repo)) == 5
    code, out, _ = run(capsys, "journal")
    assert code == 0 and len(out.splitlines()) == 2 and all("[undoable]" in line for line in out.splitlines())
    code, out, _ = run(capsys, "undo", "last", "--yes")
    assert code == 0 and "Undone " in out and ranges(repo) == before
    code, out, _ = run(capsys, "journal")
    assert "[undone by " in out.splitlines()[1] and len(out.splitlines()) == 3
    code, _, err = run(capsys, "undo", out.splitlines()[1].split()[0], "--yes")
    assert code == 2 and "was already undone by" in err


def test_clean_and_remove_runs(repo: Path, capsys):
    where = "instrument='PFS' AND visit IN (11, 12)"
    code, out, _ = run(capsys, "clean", repo, "u/me/bias/*", "biasProc", "--where", where, "--dry-run")
    assert code == 0 and "total: 16 datasets" in out and "cannot be undone" in out
    code, out, _ = run(capsys, "clean", repo, "u/me/bias/*", "biasProc", "--where", where, "--yes")
    assert code == 0 and "Cleaned 16 biasProc datasets" in out
    code, out, _ = run(capsys, "clean", repo, "u/me/bias/*", "biasProc", "--dry-run")
    assert "total: 8 datasets" in out
    code, out, err = run(capsys, "remove-runs", repo, OLD_RUN, "--yes")
    assert code == 2 and f"run {OLD_RUN} is in chain {CHAIN}; pass --unlink" in err
    code, out, err = run(capsys, "remove-runs", repo, OLD_RUN, "--unlink", "--yes")
    assert code == 0 and "Removed 1 run(s)" in out
    code, out, err = run(capsys, "remove-collections", repo, CHAIN, "--yes")
    assert code == 0 and "Removed 1 collection(s): u/me/bias" in out


def test_read_only_flag_refuses_writes(repo: Path, capsys):
    code, _, err = run(capsys, "--read-only", "certify", repo, NEW_RUN, "PFS/calib", "bias", "--yes")
    assert code == 2 and "--read-only refuses `pfstui certify`" in err and ranges(repo) == set()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["certify", "{repo}", CHAIN, "PFS/calib", "biass", "--yes"], "unknown dataset type 'biass'"),
        (["certify", "{repo}", CHAIN, OLD_RUN, "bias", "--yes"], "is a RUN collection, not CALIBRATION"),
        (["certify", "{repo}", CHAIN, "PFS/calib", "bias", "--begin-date", "2025-06-01", "--end-date", "2025-01-01",
          "--yes"], "is not before end date"),
        (["certify", "{repo}", CHAIN, "PFS/calib", "bias", "--begin-date", "2025-13-01", "--yes"],
         "is not a valid date"),
        (["certify", "{repo}", CHAIN, "PFS/calib", "bias", "--id", "instrument=PFS", "arm", "--yes"],
         "bad data ID token"),
        (["decertify", "{repo}", "PFS/calib", "bias", "--id", "--yes"], "--id needs KEY=VALUE tokens"),
        (["clean", "{repo}", "u/none/*", "biasProc", "--yes"], "no RUN collection matches 'u/none/*'"),
        (["clean", "{repo}", "u/me/bias/*", "biasProc", "--where", "visit.nope = 1", "--yes"], "bad query"),
        (["calibs", "{repo}", OLD_RUN], "holds no validity ranges"),
        (["undo", "nope"], "no journal entry 'nope'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(repo: Path, capsys, argv: list[str], needle: str):
    files_before = data_files(repo)
    code, out, err = run(capsys, *[a.format(repo=repo) for a in argv])
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("pfstui: error: ") and needle in err, err
    assert "Traceback" not in out + err
    assert ranges(repo) == set()
    assert data_files(repo) == files_before


def test_bad_input_in_a_real_process_has_no_traceback(repo: Path, tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "pfstui.cli.butler", "certify", str(repo), CHAIN, "PFS/calib",
                           "bias", "--id", "instrument=PFS", "visit=11"], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120,
                          env={**__import__("os").environ, "PFSTUI_STATE_DIR": str(tmp_path / "s")})
    assert proc.returncode == 2
    assert [line for line in proc.stderr.splitlines() if "eups" not in line] == [
        "pfstui: error: data ID key 'visit' is not a dimension of bias (instrument, arm, spectrograph); use those keys"]


def test_a_stage_argv_previews_as_json_with_dry_run_and_journals_its_stage(repo: Path, capsys):
    """What a plan's certify stage runs: ``--stage``/``--attempt`` reach the journal entry, and the same argv with
    ``--dry-run --json`` is its exact preview (what an approval shows), writing nothing."""
    import json

    from pfstui.infra.journal import default_journal

    argv = ["certify", repo, CHAIN, "PFS/calib", "bias", "--whole-product", "--stage", "certify-bias", "--attempt",
            "2", "--yes"]
    code, out, _ = run(capsys, *argv, "--dry-run", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["action"] == "certify" and doc["origin"] == {"stage": "certify-bias", "attempt": 2}
    assert len(doc["added"]) == 4 and {a["run"] for a in doc["added"]} == {NEW_RUN} and not doc["blocked"]
    assert doc["lines"][0] == doc["summary"] and ranges(repo) == set()
    code, _, err = run(capsys, *argv, "--json")
    assert code == 2 and "--json prints the preview only; add --dry-run" in err and ranges(repo) == set()
    code, out, _ = run(capsys, *argv)
    assert code == 0 and len(ranges(repo)) == 4
    assert default_journal().entries()[0][-1]["origin"] == {"stage": "certify-bias", "attempt": 2}
    code, out, _ = run(capsys, "journal")
    assert "[undoable]  certified 4 bias in PFS/calib for [-∞, ∞)  (stage certify-bias#2)" in out
    code, out, _ = run(capsys, *argv, "--dry-run", "--json")
    assert code == 0 and json.loads(out)["nothing_to_do"] is True  # a restarted stage finds it done
    for bad in (["--stage", "a b"], ["--attempt", "0"]):
        with pytest.raises(SystemExit) as exc:
            cli_butler.main([str(a) for a in argv[:5]] + bad)
        assert exc.value.code == 2


def test_the_journal_lists_the_open_repository(repo: Path, capsys, tmp_path: Path):
    import json

    import pfstui.cli.main as cli_main
    from pfstui.infra.journal import default_journal
    from pfstui.infra.paths import state_dir

    default_journal().append({"kind": "butler", "action": "certify", "repository": "/elsewhere/repo",
                              "summary": "certified elsewhere", "undoable": False})
    run(capsys, "certify", repo, NEW_RUN, "PFS/calib", "bias", "--yes")
    code, out, _ = run(capsys, "journal")  # no repository named, no session: every repository
    assert code == 0 and len(out.splitlines()) == 2
    for argv in (["journal", "--repo", str(repo)], ["--repo", str(repo), "journal"]):
        assert cli_main.main(argv) == 0
        out = capsys.readouterr().out
        assert len(out.splitlines()) == 1 and "certified 4 bias" in out, argv
    session = tmp_path / "session"
    session.mkdir()
    (session / "state.json").write_text(json.dumps({"repo": str(repo)}))
    (state_dir() / "current-session").write_text(f"{session}\n")
    code, out, err = run(capsys, "journal")
    assert code == 0 and len(out.splitlines()) == 1 and f"the journal of {repo} (the last session's" in err
    code, out, _ = run(capsys, "journal", "--all-repos")
    assert code == 0 and len(out.splitlines()) == 2
