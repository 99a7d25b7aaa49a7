"""One home for what a pipetask log looks like: ``pfstui/pipetask_log/formats.py``.

The level words, the record heads and the failure texts were once written in three modules, and the
copies drifted.  These tests keep them in one: the line index (``pfstui/logfile``) knows nothing of
pipetask at all, and no other module spells a regex over the level words.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "pfstui"
FORMATS = ROOT / "pipetask_log" / "formats.py"
_WORD = r"(?:CRITICAL|FATAL|ERROR|WARNING|WARN|INFO|VERBOSE|DEBUG|TRACE)"
#: A regex alternation of two level words (``ERROR|CRITICAL``), or logging's unnamed level (``Level \d+``).
LEVEL_REGEX = re.compile(rf"\b{_WORD}\|{_WORD}\b|Level \\+d")
#: Modules still re-parsing log lines themselves, with who moves them onto formats.py.
NOT_YET: dict[str, str] = {}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_the_line_index_knows_nothing_of_pipetask():
    """logfile and pipetask_log are siblings: the index takes the caller's patterns, never imports them."""
    level_word = re.compile(r"\b(?:CRITICAL|FATAL|ERROR|WARNING|WARN|INFO|VERBOSE|DEBUG|TRACE)\b")
    offenders = []
    for path in sorted((ROOT / "logfile").rglob("*.py")):
        offenders += [f"{path.name} imports {n}" for n in _imports(path) if n.startswith("pfstui.pipetask_log")]
        offenders += [f"{path.name} says {m.group()}" for m in level_word.finditer(path.read_text())]
    assert offenders == []


def test_only_formats_spells_the_level_words_in_a_regex():
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path == FORMATS or rel in NOT_YET:
            continue
        offenders += [f"{rel}: {m.group()}" for m in LEVEL_REGEX.finditer(path.read_text())]
    assert offenders == []


def test_the_exceptions_are_still_needed():
    """An entry of NOT_YET that no longer re-parses must leave the list (so the rule covers it again)."""
    assert all(LEVEL_REGEX.search((ROOT / rel).read_text()) for rel in NOT_YET)
