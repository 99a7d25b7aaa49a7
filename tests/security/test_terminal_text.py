"""Text from outside (journal summaries, collection names, paths, error messages) never drives the terminal.

A journal line is written by any pfstui of the user (and, with group access, read by others); a summary or
repository holding ``ESC [ 2 J`` (clear screen) or the C1 CSI must be printed escaped, by ``pfstui journal``
(text and ``--json``) and by every one-line error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pfstui.cli.main as cli
from pfstui.infra.journal import default_journal

HOSTILE = "certified \x1b[2J\x1b[31mred\x07 \x9b6n ∞"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def controls(text: str) -> list[str]:
    return [c for c in text if not c.isprintable() and c != "\n"]


def test_journal_lines_escape_control_characters(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    default_journal().append({"kind": "butler", "action": "certify\x1b[1A", "repository": "/r\x1b]0;title\x07",
                              "summary": HOSTILE, "undoable": False})
    code, out, err = run(capsys, "journal")
    assert code == 0 and controls(out + err) == [], repr(out)
    assert "\\x1b[2J\\x1b[31mred\\x07 \\x9b6n ∞" in out, "escaped where it was, the rest kept (∞)"
    code, out, _ = run(capsys, "journal", "--json")
    assert code == 0 and controls(out) == [], repr(out)
    assert json.loads(out)["summary"] == HOSTILE, "still the exact text for a program reading it"


def test_an_error_naming_a_path_escapes_it(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "plan", "show", str(tmp_path / "a\x1b[2Jb.yaml"))
    assert code == 2 and controls(err) == [] and "a\\x1b[2Jb.yaml" in err, repr(err)
