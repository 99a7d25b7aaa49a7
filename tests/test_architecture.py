"""Architecture rules: the core and the demo never import the UI (import-linter contracts)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ("infra", "values", "plan", "queue", "process", "bps", "pipetask_log", "logfile", "butler")


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is part of the test extra"
    out = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "The core is free of the UI KEPT" in out.stdout


def test_no_textual_in_core_source():
    """A second, dependency-free check: no module under pfstui/core mentions textual in an import."""
    offenders = []
    for path in (p for pkg in CORE for p in (ROOT / "pfstui" / pkg).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "textual" or n.startswith("pfstui.ui")]
    assert offenders == []


def test_no_shell_true_anywhere():
    hits = [str(p) for p in (ROOT / "pfstui").rglob("*.py") if "shell=True" in p.read_text()]
    assert hits == []
