"""What an attempt runs, decided before anything is written: local argv, a new bps submission, or ``bps
restart`` of the last one (the same decision the snapshot shows and the supervisor then starts)."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from pfstui.bps.report import REPORT_FILE
from pfstui.plan.argv import Tools
from pfstui.plan.loader import parse_plan
from pfstui.queue import launch
from pfstui.queue.requests import NextRun
from pfstui.queue.state import Attempt, BpsAttempt
from tests.core.test_bps import BPS, TOOLS, plan_text


def test_a_local_stage_runs_its_plan_argv(tmp_path: Path):
    plan = parse_plan(plan_text())
    spec = launch.prepare(plan, plan.stage("bias"), adir=tmp_path, previous=[], overrides={}, first_run=True,
                          tools=TOOLS)
    assert spec.argv[:2] == ["/v/bin/pipetask", "--long-log"] and "--register-dataset-types" in spec.argv
    assert spec.cwd == spec.attempt_dir == tmp_path and spec.bps is None and spec.submit_text() is None
    assert launch.next_run(spec) == NextRun(argv=spec.argv, head=7)


def test_a_first_bps_attempt_is_a_new_submission(tmp_path: Path):
    plan = parse_plan(plan_text(BPS))
    spec = launch.prepare(plan, plan.stage("bias"), adir=tmp_path, previous=[], overrides={}, first_run=True,
                          tools=TOOLS)
    assert spec.argv == ["/v/bin/bps", "submit", str(tmp_path / "bps-submit.yaml")]
    assert spec.bps == BpsAttempt(workdir=str(tmp_path), submit_dir=str(tmp_path / "submit"),
                                  submit_file=str(tmp_path / "bps-submit.yaml"), mode="submit")
    assert not (tmp_path / "bps-submit.yaml").exists(), "deciding writes nothing"
    run = launch.next_run(spec)
    assert run.submit_file == spec.bps.submit_file and yaml.safe_load(run.submit_text) == spec.submit


def _bps_attempt(workdir: Path, overrides: dict, *, restartable: bool, reached: bool) -> Attempt:
    (workdir / "submit").mkdir(parents=True)
    if restartable:
        (workdir / "runinfo").mkdir()
        (workdir / "submit" / "parsl_workflow.pickle").write_bytes(b"")
    if reached:
        (workdir / REPORT_FILE).write_text("{}\n")
    return Attempt(number=1, argv=["bps"], cwd=str(workdir), status="failed",
                   bps=BpsAttempt(workdir=str(workdir), submit_dir=str(workdir / "submit"),
                                  submit_file=str(workdir / "bps-submit.yaml"), mode="submit", overrides=overrides))


def test_unchanged_options_restart_the_last_submission(tmp_path: Path):
    plan = parse_plan(plan_text(BPS))
    first = _bps_attempt(tmp_path / "attempt-1", {}, restartable=True, reached=False)
    spec = launch.prepare(plan, plan.stage("bias"), adir=tmp_path / "attempt-2", previous=[first], overrides={},
                          first_run=False, tools=TOOLS)
    assert spec.argv == ["/v/bin/bps", "restart", "--wms-service-class", "lsst.ctrl.bps.parsl.ParslService",
                         "--id", str(tmp_path / "attempt-1" / "submit")]
    assert spec.cwd == tmp_path / "attempt-1" and spec.attempt_dir == tmp_path / "attempt-2"
    assert spec.bps.mode == "restart" and spec.submit is None
    assert launch.next_run(spec).submit_text is None


def test_edited_options_resubmit_skipping_what_reached_the_registry(tmp_path: Path):
    plan = parse_plan(plan_text(BPS))
    first = _bps_attempt(tmp_path / "attempt-1", {}, restartable=True, reached=True)
    overrides = {"config": ["isr:doThing=b"]}
    stage = plan.stage("bias").model_copy(update=overrides)
    spec = launch.prepare(plan, stage, adir=tmp_path / "attempt-2", previous=[first], overrides=overrides,
                          first_run=False, tools=TOOLS)
    assert spec.argv == ["/v/bin/bps", "submit", str(tmp_path / "attempt-2" / "bps-submit.yaml")]
    assert spec.bps.overrides == overrides and spec.bps.mode == "submit"
    qgraph = shlex.split(spec.submit["extraQgraphOptions"])
    assert qgraph[qgraph.index("--skip-existing-in") + 1] == "u/me/bias" and "isr:doThing=b" in qgraph


def test_plan_show_dispatches_by_backend(tmp_path: Path):
    path = tmp_path / "plan.yaml"
    path.write_text(plan_text(BPS))
    shown = launch.plan_show(path, tools=Tools(pipetask=("pipetask",), butler=("butler",), pfstui=("pfstui",),
                                               bps=("bps",)), attempt_dir=tmp_path)
    assert f"\nbps submit {tmp_path / 'bps-submit.yaml'}\n" in shown
    assert f"#   {tmp_path / 'bps-submit.yaml'}:\n#   pipelineYaml:" in shown


def _failed(number: int, adir: Path) -> Attempt:
    return Attempt(number=number, argv=["pipetask"], cwd=str(adir), status="failed")


def _skip_existing_in(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--skip-existing-in"]


def test_a_local_restart_runs_only_the_quanta_not_done(tmp_path: Path):
    """Attempt 2 of a stage with 7 of 16 quanta done started again at 0/16: a restart is a new RUN of the same
    output chain that skips what that chain already holds (the plan's own --skip-existing-in kept, once)."""
    plan = parse_plan(plan_text("    skip_existing_in: [other, bias]\n"))
    stage, earlier = plan.stage("bias"), [_failed(1, tmp_path / "attempt-1")]
    first = launch.prepare(plan, stage, adir=tmp_path, previous=[], overrides={}, first_run=True, tools=TOOLS)
    again = launch.prepare(plan, stage, adir=tmp_path, previous=earlier, overrides={}, first_run=False, tools=TOOLS)
    full = launch.prepare(plan, stage, adir=tmp_path, previous=earlier, overrides={}, first_run=False, tools=TOOLS,
                          full=True)
    assert _skip_existing_in(first.argv) == _skip_existing_in(full.argv) == ["u/me/other,u/me/bias"]
    assert _skip_existing_in(again.argv) == ["u/me/other,u/me/bias"]  # the output is already there: once

    plan = parse_plan(plan_text())
    stage = plan.stage("bias")
    again = launch.prepare(plan, stage, adir=tmp_path, previous=earlier, overrides={}, first_run=False, tools=TOOLS)
    full = launch.prepare(plan, stage, adir=tmp_path, previous=earlier, overrides={}, first_run=False, tools=TOOLS,
                          full=True)
    assert _skip_existing_in(again.argv) == ["u/me/bias"]
    assert again.argv[again.argv.index("-o") + 1] == "u/me/bias", "the same output chain (a new RUN in it)"
    assert "--extend-run" not in again.argv and "--output-run" not in again.argv
    at = again.argv.index("--skip-existing-in")
    assert full.argv == again.argv[:at] + again.argv[at + 2:], "a full rerun differs by the flag alone"
    assert launch.next_run(again).argv == again.argv


def test_a_full_rerun_of_a_bps_stage_is_a_new_submission_of_every_quantum(tmp_path: Path):
    plan = parse_plan(plan_text(BPS))
    first = _bps_attempt(tmp_path / "attempt-1", {}, restartable=True, reached=True)
    spec = launch.prepare(plan, plan.stage("bias"), adir=tmp_path / "attempt-2", previous=[first], overrides={},
                          first_run=False, tools=TOOLS, full=True)
    assert spec.bps.mode == "submit" and spec.argv[:2] == ["/v/bin/bps", "submit"]
    assert "--skip-existing-in" not in shlex.split(spec.submit["extraQgraphOptions"])
