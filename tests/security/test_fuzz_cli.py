"""A seeded fuzz of the CLI's arguments: every command with hostile values ends in a result or one line.

Each case runs ``pfstui.cli.main`` in-process on a copy of the seeded repository, with stdin not a terminal and
no ``--yes`` (so every write must stop at its preview or its refusal).  It asserts: no "unexpected error" and no
traceback on stderr, an exit status of 0, 1 or 2, a bounded time, and nothing written (the registry file and
the state folder unchanged).
"""

from __future__ import annotations

import hashlib
import io
import random
import sys
import time
from pathlib import Path

import pytest

import pfstui.cli.main as cli
from tests.butler.test_gateway import OLD_RUN

SEED = 6122026
CASES = 200
MAX_SECONDS = 20.0  # one Butler open and query: far below, even on a loaded 2-core machine

VALUES = [
    "", " ", "-", "--", "*", "?", "[", "u/*", "PFS/calib", OLD_RUN, "bias", "dark", "raw", "x" * 5000, "a\nb", "\t",
    "\x1b[31m", "$(id)", "`id`", "'\"", "../../etc/passwd", "/dev/zero", "1..99999999999999999999", "1..3:0",
    "5..1", "^", "1^2", "0", "-1", "1e22", "99999999999999999999", "2025-13-45", "2025-01-01T00:00:00",
    "2999-01-01", "1900-01-01", "instrument=PFS", "arm=r", "arm=", "=r", "visit IN (1, 2)",
    " OR ".join(["visit = 1"] * 2000), "(" * 500 + "visit = 1" + ")" * 500, "nope", "%s%n", "\u202e", "\x00",
]
COMMANDS = {
    "certify": lambda r, v: [r, v(), v(), v(), *_opt(["--begin-date", v()]), *_opt(["--end-date", v()]),
                             *_opt(["--id", v(), v()]), *_opt(["--search-all-inputs"])],
    "decertify": lambda r, v: [r, v(), v(), *_opt(["--begin-date", v()]), *_opt(["--id", v()]), *_opt(["--all"])],
    "clean": lambda r, v: [r, v(), v(), *_opt(["--where", v()])],
    "calibs": lambda r, v: [r, *_opt([v()]), *_opt([v()])],
    "journal": lambda r, v: [*_opt(["--limit", v()])],
    "undo": lambda r, v: [v()],
    "remove-runs": lambda r, v: [r, v(), *_opt(["--unlink"])],
    "remove-collections": lambda r, v: [r, v()],
    "define-profiles": lambda r, v: [r, v(), v(), "--bright", v(), "--dark", v(), *_opt(["--update"])],
    "certify-detectormaps": lambda r, v: [r, v(), v(), *_opt(["--datasetType", v()]), *_opt(["--end-date", v()])],
    "plan": lambda r, v: ["show", v()],
}
_rng = random.Random(SEED)


def _opt(args: list[str]) -> list[str]:
    return args if _rng.random() < 0.5 else []


def _fingerprint(repo: Path, state: Path) -> str:
    h = hashlib.sha256((repo / "gen3.sqlite3").read_bytes())
    for path in sorted(state.rglob("*")) if state.exists() else []:
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def repo(cli_repo: Path) -> Path:
    return cli_repo


def test_two_hundred_hostile_command_lines(repo: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    state = tmp_path / "state"
    before = _fingerprint(repo, state)
    failures: list[str] = []
    codes: dict[object, int] = {}
    for case in range(CASES):
        name = _rng.choice(sorted(COMMANDS))
        argv = [name, *COMMANDS[name](str(repo), lambda: _rng.choice(VALUES))]
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        started = time.monotonic()
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
        elapsed = time.monotonic() - started
        out, err = capsys.readouterr()
        codes[code] = codes.get(code, 0) + 1
        where = f"case {case}: pfstui {' '.join(repr(a)[:40] for a in argv)}"
        if code not in (0, 1, 2):
            failures.append(f"{where}: exit {code}")
        if "unexpected error" in err or "Traceback" in err:
            failures.append(f"{where}: {err.strip()[:300]}")
        if "\x1b" in out + err:
            failures.append(f"{where}: a raw escape reached the terminal")
        if elapsed > MAX_SECONDS:
            failures.append(f"{where}: took {elapsed:.1f} s")
    print(f"CLI fuzz: {CASES} cases, exit codes {dict(sorted(codes.items(), key=str))}, {len(failures)} failures")
    assert _fingerprint(repo, state) == before, "a refused or previewed command wrote something"
    assert not failures, f"{len(failures)} of {CASES} cases failed:\n" + "\n".join(failures[:25])
