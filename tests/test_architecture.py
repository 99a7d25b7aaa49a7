"""Architecture rules: the core and the demo never import the UI (import-linter contracts)."""

from __future__ import annotations

import ast
import os
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
    text = " ".join(out.stdout.split())  # import-linter wraps long contract names
    for name in ("Layers: cli > ui > queue > (bps, process) > (plan, butler, pipetask_log, logfile, verify) > config > "
                 "(infra, values) > errors", "The line index knows nothing of pipetask", "Only the CLI knows the demo",
                 "The core is free of the UI", "The demo is free of the UI"):
        assert f"{name} KEPT" in text, name


def test_the_layers_contract_catches_an_upward_import(tmp_path: Path):
    """The layers contract is not vacuous: a plan module importing the queue breaks it."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    tree = tmp_path / "src"
    shutil.copytree(ROOT / "pfstui", tree / "pfstui", ignore=shutil.ignore_patterns("__pycache__", "demo"))
    (tree / "pfstui" / "demo").mkdir()
    (tree / "pfstui" / "demo" / "__init__.py").write_text("")
    (tree / "pfstui" / "plan" / "upward.py").write_text("import pfstui.queue.supervisor\n")
    config = tmp_path / "pyproject.toml"
    config.write_text((ROOT / "pyproject.toml").read_text())
    out = subprocess.run([exe, "--config", str(config)], cwd=tree, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(tree)})
    assert out.returncode != 0
    assert "pfstui.plan.upward -> pfstui.queue.supervisor" in out.stdout


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


def _imported_modules(node: ast.AST, package: str) -> list[str]:
    """Every module ``node`` imports, in full (``from pfstui import demo`` and ``from .. import demo`` give
    ``pfstui.demo``; ``importlib.import_module("pfstui.demo")`` counts too)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join(parent + ([base] if base else []))
        return [base] + [f"{base}.{a.name}" for a in node.names]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
            return [node.args[0].value]
    return []


def test_nothing_but_the_cli_imports_the_demo():
    """The product knows nothing of the demo: the demo registers what the product must know of it
    (``pfstui.demo.register``, which the CLI calls).  Imports inside functions count too."""
    offenders = []
    for path in sorted((ROOT / "pfstui").rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[1] in ("cli", "demo"):
            continue
        package = ".".join(rel.with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            offenders += [f"{rel}: {m}" for m in _imported_modules(node, package)
                          if m == "pfstui.demo" or m.startswith("pfstui.demo.")]
    assert offenders == []
