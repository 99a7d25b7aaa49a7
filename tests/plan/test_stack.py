"""The plan's ``stack``: where pipetask/butler/bps stages get their programs (issue 16 item 4).

Why these tests: production runs pipetask from the LSST stack set up with eups, not from pfstui's venv.  The
setup text runs in a fixed script, and the stage's argv must arrive as separate words whatever it holds.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pfstui.plan.argv import STACK_SCRIPT, Tools, build_argv, env_line, stack_setup
from pfstui.plan.issues import PlanError
from pfstui.plan.loader import parse_plan
from pfstui.plan.writer import dump_plan
from pfstui.queue import launch

TOOLS = Tools(pipetask=("/v/bin/pipetask",), butler=("/v/bin/butler",), pfstui=("/v/bin/pfstui",),
              bps=("/v/bin/bps",))
ENV = {"PATH": "/usr/bin:/bin"}


def plan_text(stack: str = "", query: str = "instrument='PFS' AND visit.target_name = 'BIAS'") -> str:
    return f"""version: 1
repository: /data/repo
instrument: lsst.obs.pfs.PrimeFocusSpectrograph
rerun: u/me
{stack}
stages:
  - name: bias
    kind: pipetask
    pipeline: /p/bias.yaml
    inputs: [PFS/raw/sps]
    output: bias
    query: {json.dumps(query)}
  - name: certify-bias
    kind: certify
    after: [bias]
    input: bias
    target: PFS/calib
    dataset_type: bias
"""


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_without_a_stack_stages_run_pfstuis_venv_and_say_so() -> None:
    plan = parse_plan(plan_text(), env=ENV)
    assert build_argv(plan, "bias", attempt_dir="/a", first_run=True, tools=TOOLS)[0] == "/v/bin/pipetask"
    assert env_line(plan, plan.stage("bias"), TOOLS) == "env: pfstui's venv (/v/bin/pipetask)"


def test_a_stack_setup_wraps_pipetask_but_not_pfstuis_own_actions() -> None:
    setup = "source /opt/lsst/loadLSST.bash && setup drp_stella"
    plan = parse_plan(plan_text(f"stack: {{setup: {json.dumps(setup)}}}"), env=ENV)
    argv = build_argv(plan, "bias", attempt_dir="/a", first_run=True, tools=TOOLS)
    assert argv[1:6] == ["-c", STACK_SCRIPT, "pfstui-stack", setup, "pipetask"] and argv[6] == "--long-log"
    assert Path(argv[0]).name == "bash" and stack_setup(argv) == setup
    certify = build_argv(plan, "certify-bias", attempt_dir="/a", first_run=True, tools=TOOLS)
    assert certify[0] == "/v/bin/pfstui" and stack_setup(certify) is None  # pfstui's Butler reads stay in pfstui
    assert env_line(plan, plan.stage("bias"), TOOLS) == f"env: stack (setup: {setup})"
    assert env_line(plan, plan.stage("certify-bias"), TOOLS) == "env: pfstui's own Python (/v/bin/pfstui)"
    assert parse_plan(dump_plan(plan), env=ENV) == plan  # a dumped plan keeps its stack


def test_explicit_tools_are_run_by_path(tmp_path: Path) -> None:
    pipetask = executable(tmp_path / "stack" / "bin" / "pipetask", "#!/bin/sh\n")
    plan = parse_plan(plan_text(f"stack: {{tools: {{pipetask: {pipetask}}}}}"), env=ENV)
    assert build_argv(plan, "bias", attempt_dir="/a", first_run=True, tools=TOOLS)[:2] == [str(pipetask), "--long-log"]
    assert env_line(plan, plan.stage("bias"), TOOLS) == f"env: stack tools (pipetask: {pipetask})"


def test_plan_show_names_each_stages_environment(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(plan_text('stack: {setup: "source /opt/lsst/loadLSST.bash && setup drp_stella"}'))
    text = launch.plan_show(path, env=ENV, tools=TOOLS)
    assert "# env: stack (setup: source /opt/lsst/loadLSST.bash && setup drp_stella)" in text
    assert "# env: pfstui's own Python (/v/bin/pfstui)" in text


@pytest.mark.parametrize(("stack", "expected"), [
    ("stack: {}", "<plan>:5: stack: names neither a setup nor tools (add setup:"),
    ("stack: {setpu: x}", "<plan>:5: unknown field 'setpu'"),
    ("stack: {setup: ''}", "<plan>:5: stack.setup: must not be empty"),
    ("stack: {tools: {pipetask: bin/pipetask}}", "<plan>:5: stack.tools.pipetask: 'bin/pipetask' is not an "
                                                 "absolute path (write the program's full path"),
    ("stack: {tools: {pipetask: /no/such/pipetask}}", "<plan>:5: stack.tools.pipetask: /no/such/pipetask is not "
                                                      "an executable file here (correct the path"),
    ("stack: {tools: {pipetsk: /bin/sh}}", "<plan>:5: unknown field 'pipetsk'"),
])
def test_a_bad_stack_is_one_line_naming_the_field_and_the_fix(stack: str, expected: str) -> None:
    with pytest.raises(PlanError) as err:
        parse_plan(plan_text(stack), env=ENV)
    assert str(err.value).startswith(expected), str(err.value)
    assert "\n" not in str(err.value)


def test_tools_without_setup_must_name_the_program_a_stage_needs(tmp_path: Path) -> None:
    pipetask = executable(tmp_path / "pipetask", "#!/bin/sh\n")
    plan = parse_plan(plan_text(f"stack: {{tools: {{pipetask: {pipetask}}}}}"), env=ENV)
    with pytest.raises(Exception, match=r"stack.tools names no bps.*add stack.tools.bps"):
        TOOLS.for_plan(plan).command("bps")


def test_the_argv_arrives_verbatim_through_the_setup(tmp_path: Path) -> None:
    """A query holding shell syntax reaches the program as one word: nothing is spliced into shell text."""
    record = tmp_path / "argv.json"
    executable(tmp_path / "stack" / "pipetask", f"#!{sys.executable}\nimport json, sys\n"
               f"json.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n")
    victim = tmp_path / "x"
    victim.write_text("keep me")
    query = f"visit = 1; rm -rf {victim} $(touch {tmp_path}/pwned) `touch {tmp_path}/pwned2` \"' \\ $HOME"
    setup = f'export PATH="{tmp_path}/stack:$PATH"; echo "$@" > {tmp_path}/positional'
    plan = parse_plan(plan_text(f"stack: {{setup: {json.dumps(setup.replace('$', '$$'))}}}",
                                query.replace("$", "$$")), env=ENV)
    argv = build_argv(plan, "bias", attempt_dir=tmp_path, first_run=True, tools=TOOLS)
    done = subprocess.run(argv, env=launch.environment(False, argv), cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(record.read_text()) == argv[6:]
    assert argv[argv.index("-d") + 1] == query
    assert victim.read_text() == "keep me" and not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    assert (tmp_path / "positional").read_text() == "\n", "the setup text does not see the stage's arguments"


def test_a_failed_setup_stops_the_stage_with_pfstuis_line(tmp_path: Path) -> None:
    plan = parse_plan(plan_text('stack: {setup: "source /no/such/loadLSST.bash"}'), env=ENV)
    argv = build_argv(plan, "bias", attempt_dir=tmp_path, first_run=True, tools=TOOLS)
    done = subprocess.run(argv, env=launch.environment(False, argv), capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "pfstui: the stack setup failed (exit status 1): source /no/such/loadLSST.bash" in done.stderr


def test_a_stack_stage_does_not_get_pfstuis_venv_on_its_path(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    plan = parse_plan(plan_text('stack: {setup: "true"}'), env=ENV)
    argv = build_argv(plan, "bias", attempt_dir="/a", first_run=True, tools=TOOLS)
    assert launch.environment(False, argv)["PATH"] == "/usr/bin:/bin"
    assert launch.environment(False, ["/v/bin/pipetask"])["PATH"].startswith(str(Path(sys.executable).parent))


def test_the_queue_details_show_the_environment_above_the_command() -> None:
    from pfstui.queue.requests import NextRun
    from pfstui.ui.panes.queue import next_run_text

    text = next_run_text(NextRun(argv=["/v/bin/pipetask", "run"], head=2, env="env: stack (setup: true)"))
    assert text.splitlines() == ["env: stack (setup: true)", "/v/bin/pipetask run"]
