"""A plan's stage runs in "the stack" its ``stack.setup`` sets up, not in pfstui's own venv (issue 16 item 4).

The "stack" is a second virtual environment with the middleware and the demo tasks (a .pth file adds pfstui's
venv's site-packages to it) and its own ``bin/pipetask``, which says where it runs; its setup script puts
that ``bin`` first on ``PATH`` and sets a marker.  The supervisor runs with a ``PATH`` that does not hold
pfstui's venv, so pfstui's own pipetask cannot be what ran.
"""

from __future__ import annotations

import os
import site
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pfstui.plan.argv import STACK_SCRIPT, shell_join
from pfstui.queue.requests import Run, Status
from tests.queue.test_supervisor import bias_stage, session, stage_of, wait_for, write_plan

__all__ = ["session"]  # the fixture, used by name

pytestmark = pytest.mark.integration

VENV_BIN = str(Path(sys.executable).parent)


def make_stack(root: Path) -> Path:
    """A venv with the middleware (through a .pth) and its own pipetask; returns its setup script."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True, timeout=120)
    stack_site = next((root / "venv" / "lib").glob("python3*/site-packages"))
    ours = [p for p in site.getsitepackages() if p.startswith(str(Path(sys.executable).parent.parent))]
    (stack_site / "pfstui_test_stack.pth").write_text(f"import site; site.addsitedir({ours[0]!r})\n")
    pipetask = root / "venv" / "bin" / "pipetask"
    pipetask.write_text(f"#!{root / 'venv' / 'bin' / 'python'}\nimport sys\n"
                        "print(f'stack pipetask {sys.argv[0]} in {sys.prefix}', file=sys.stderr, flush=True)\n"
                        "from lsst.ctrl.mpexec.cli.pipetask import main\nsys.exit(main())\n")
    pipetask.chmod(pipetask.stat().st_mode | stat.S_IXUSR)
    setup = root / "loadStack.bash"
    setup.write_text(f'export PATH="{root / "venv" / "bin"}:$PATH"\nexport PFSTUI_TEST_STACK=stack-is-set-up\n'
                     'echo "marker $PFSTUI_TEST_STACK; pipetask is $(command -v pipetask)"\n')
    return setup


def test_a_stage_runs_in_the_stack_its_setup_names(session, demo_repo: Path, tmp_path: Path, monkeypatch):
    setup = make_stack(tmp_path / "stack")
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != Path(VENV_BIN)]
    monkeypatch.setenv("PATH", os.pathsep.join(path))  # the supervisor (and so the stage) starts with this PATH
    assert VENV_BIN not in os.environ["PATH"].split(os.pathsep)
    plan = write_plan(tmp_path, demo_repo, bias_stage())
    plan.write_text(plan.read_text().replace("stages:\n", f'stack: {{setup: "source {setup}"}}\nstages:\n', 1))
    client, sdir = session(plan, demo_repo)
    run = client.request(Status()).next_runs["bias"]
    assert run.error is None and run.env == f"env: stack (setup: source {setup})"
    assert run.argv[1:6] == ["-c", STACK_SCRIPT, "pfstui-stack", f"source {setup}", "pipetask"]

    status = [sys.executable, "-m", "pfstui", "status", "--plan", str(plan), "--repo", str(demo_repo)]
    text = subprocess.run(status, capture_output=True, text=True, check=True, timeout=120).stdout
    assert f"    next: {shell_join(run.argv)}\n    env: stack (setup: source {setup})" in text

    client.request(Run())
    state = wait_for(sdir, lambda s: stage_of(s, "bias")["status"] in ("done", "failed"), timeout=300)
    attempt = stage_of(state, "bias")["attempts"][0]
    log = Path(attempt["log_path"]).read_text()
    assert stage_of(state, "bias")["status"] == "done", log[-2000:]
    assert attempt["argv"] == run.argv, "the attempt ran what was shown, the wrapper included"
    stack_bin = tmp_path / "stack" / "venv" / "bin"
    assert f"marker stack-is-set-up; pipetask is {stack_bin / 'pipetask'}" in log
    assert f"stack pipetask {stack_bin / 'pipetask'} in {tmp_path / 'stack' / 'venv'}" in log
    progress = attempt["quanta"]["progress"]["tasks"]
    assert progress["cpBiasCombine"]["done"] == 4
