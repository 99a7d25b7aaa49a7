"""The bps backend's pure parts: plan validation, the submit file, the report and the verdict."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

import pfstui.bps.submit as bps
from pfstui.bps.monitor import BpsMonitor
from pfstui.bps.report import read_report, verdict
from pfstui.plan.argv import CommandError, Tools, build_argv
from pfstui.plan.issues import PlanError
from pfstui.plan.loader import parse_plan
from pfstui.queue.launch import plan_show, stage_argv

DEMO = Path(__file__).resolve().parents[2] / "pfstui" / "demo" / "pipelines"


def plan_text(stage_extra: str = "", *, top: str = "", query: str = "instrument='PFS' AND visit.target_name = 'BIAS'",
              config: str = '["isr:demoDelay=0.5", "isr:doThing=a b"]') -> str:
    return f"""version: 1
repository: /repo
instrument: pfstui.demo.instrument.DemoPrimeFocusSpectrograph
rerun: u/me
{top}stages:
  - name: bias
    kind: pipetask
    pipeline: {DEMO}/bias.yaml
    inputs: [PFS/raw/sps, PFS/calib]
    output: bias
    query: "{query}"
    config: {config}
{stage_extra}"""


BPS = "    backend: bps\n    bps:\n      site: local\n      cluster_by: [arm, spectrograph]\n"
TOOLS = Tools(pipetask=("/v/bin/pipetask",), butler=("/v/bin/butler",), pfstui=("/v/bin/pfstui",), bps=("/v/bin/bps",))


def test_submit_file_carries_the_stage(tmp_path: Path):
    plan = parse_plan(plan_text(BPS))
    config = bps.submit_config(plan, plan.stage("bias"), workdir=tmp_path, skip_existing_in=["u/me/bias"])
    assert config["payload"] == {"payloadName": "bias", "butlerConfig": "/repo", "inCollection": "PFS/raw/sps,PFS/calib",
                                 "output": "u/me/bias", "dataQuery": "instrument='PFS' AND visit.target_name = 'BIAS'"}
    # -c values reach the graph build intact, spaces and all (BPS splits the string with shlex)
    assert shlex.split(config["extraQgraphOptions"]) == [
        "--instrument", "pfstui.demo.instrument.DemoPrimeFocusSpectrograph", "-c", "isr:demoDelay=0.5",
        "-c", "isr:doThing=a b", "--skip-existing-in", "u/me/bias"]
    site = config["site"]["local"]
    assert site["class"] == bps.LOCAL_SITE_CLASS and site["monitorEnable"] is True
    assert site["monitorFilename"] == str(tmp_path / "monitor.sqlite") and isinstance(site["monitorInterval"], float)
    assert config["submitPath"] == str(tmp_path / "submit")
    assert config["finalJob"] == {"requestCpus": 2, "requestMemory": 2048}  # not BPS's 16 cores / 32 GB
    assert config["cluster"] == {"per_arm_spectrograph": {"pipetasks": "isr, cpBiasCombine",
                                                          "dimensions": "arm, spectrograph"}}
    path = bps.write_submit(config, tmp_path)
    assert yaml.safe_load(path.read_text()) == config


def test_plan_sites_and_extra_override(tmp_path: Path):
    top = ("bps_sites:\n  slurm:\n    class: lsst.ctrl.bps.parsl.sites.Slurm\n    nodes: 1\n    walltime: \"02:00:00\"\n"
           "    monitorInterval: 10\n")
    extra = "    backend: bps\n    bps:\n      site: slurm\n      retries: 2\n      extra: {finalJob: {requestCpus: 8}}\n"
    plan = parse_plan(plan_text(extra, top=top))
    config = bps.submit_config(plan, plan.stage("bias"), workdir=tmp_path)
    assert config["computeSite"] == "slurm"
    assert config["site"]["slurm"]["walltime"] == "02:00:00" and config["site"]["slurm"]["retries"] == 2
    assert config["site"]["slurm"]["monitorInterval"] == 10.0
    assert config["finalJob"] == {"requestCpus": 8, "requestMemory": 2048}
    assert "cluster" not in config and "--skip-existing-in" not in config["extraQgraphOptions"]


@pytest.mark.parametrize(("text", "needle"), [
    (plan_text("    backend: bps\n    bps: {site: nowhere}\n"), "unknown bps site 'nowhere'"),
    (plan_text("    backend: bps\n", query="visit.target_name = \\\"BIAS\\\""), "double quotes"),
    (plan_text("    bps: {site: local}\n"), "backend is local"),
    (plan_text("    backend: bps\n    bps: {cluster_by: [arm, 'spectro graph']}\n"), "not a dimension name"),
    (plan_text("    backend: bps\n", top="bps_sites:\n  big: {cores: 4}\n"), "has no class"),
])
def test_bad_bps_plans_say_what_to_fix(text: str, needle: str):
    with pytest.raises(PlanError) as err:
        parse_plan(text)
    assert needle in str(err.value)


def test_argv_and_plan_show(tmp_path: Path):
    plan = parse_plan(plan_text(BPS))
    argv = stage_argv(plan, plan.stage("bias"), attempt_dir=tmp_path, first_run=True, tools=TOOLS)
    assert argv == ["/v/bin/bps", "submit", str(tmp_path / "bps-submit.yaml")]
    with pytest.raises(CommandError, match="runs through bps"):  # the plan alone knows no backend but local
        build_argv(plan, "bias", attempt_dir=tmp_path, first_run=True, tools=TOOLS)
    assert bps.restart_argv(["bps"], "/w/submit") == [
        "bps", "restart", "--wms-service-class", "lsst.ctrl.bps.parsl.ParslService", "--id", "/w/submit"]
    path = tmp_path / "plan.yaml"
    path.write_text(plan_text(BPS))
    shown = plan_show(path, tools=TOOLS, attempt_dir=tmp_path)
    assert "/v/bin/bps submit" in shown and "#     dataQuery: instrument='PFS'" in shown
    assert "via bps (local site)" in shown


def test_pipeline_labels(tmp_path: Path):
    assert bps.pipeline_labels(str(DEMO / "bias.yaml")) == ["isr", "cpBiasCombine"]
    assert bps.pipeline_labels(str(DEMO / "bias.yaml") + "#isr") == ["isr"]
    imports_only = tmp_path / "p.yaml"
    imports_only.write_text("description: x\nimports: [other.yaml]\n")
    with pytest.raises(bps.BpsError, match="bps.extra.cluster"):
        bps.pipeline_labels(str(imports_only))


REPORT = """\
cpBiasCombine:
  failed_quanta: {}
  n_expected: 4
  n_quanta_blocked: 1
  n_succeeded: 3
isr:
  failed_quanta:
    01a212a4-27ff-75e8-bb9c-bbb7e1911d68:
      data_id: {arm: r, instrument: PFS, spectrograph: 1, visit: 12}
      error:
      - 'Execution of task ''isr'' on quantum {instrument: ''PFS''} failed. Exception RuntimeError: Saturated pixels'
  n_expected: 12
  n_quanta_blocked: 0
  n_succeeded: 11
"""


def test_report_and_verdict(tmp_path: Path):
    path = tmp_path / "r.yaml"
    path.write_text(REPORT)
    report = read_report(path)
    assert report["isr"].failures[0].exception_class == "RuntimeError"
    assert report["isr"].failures[0].message == "Saturated pixels"
    ok, detail = verdict(report, 0, None)
    assert not ok and "1 failed, 1 blocked" in detail and "visit=12" in detail and "bps exited 0" in detail
    path.write_text(REPORT.replace("n_quanta_blocked: 1", "n_quanta_blocked: 0").replace("n_succeeded: 3", "n_succeeded: 4")
                    .replace("n_succeeded: 11", "n_succeeded: 12").split("  failed_quanta:\n    01a")[0]
                    + "  failed_quanta: {}\n  n_expected: 12\n  n_quanta_blocked: 0\n  n_succeeded: 12\n")
    assert verdict(read_report(path), 0, None) == (True, "")
    assert verdict(None, 0, None)[0] is False  # no report: never "done" on the exit code alone
    assert verdict(report, 1, "boom") == (False, "bps exited with code 1: boom")
    path.write_text("- not a mapping\n")
    assert read_report(path) is None


def test_env_points_eups_variables_at_the_venv():
    env = bps.bps_env({"PATH": "/x"}, python="/venv/bin/python")
    assert env["CTRL_MPEXEC_DIR"] == "/venv" and env["DAF_BUTLER_DIR"] == "/venv"
    assert bps.bps_env({"CTRL_MPEXEC_DIR": "/stack"}, python="/venv/bin/python")["CTRL_MPEXEC_DIR"] == "/stack"


def test_condor_site_builds_a_condor_provider():
    pytest.importorskip("lsst.ctrl.bps.parsl", reason="the bps extra is not installed")
    from lsst.ctrl.bps import BpsConfig
    from parsl.providers import CondorProvider

    from pfstui.bps.sites import Condor

    site = {"class": "pfstui.bps.sites.Condor", "cores_per_slot": 4, "mem_per_slot": 16, "max_blocks": 3,
            "walltime": "02:00:00", "scheduler_options": 'requirements = (OpSys == "LINUX")'}
    condor = Condor(BpsConfig({"computeSite": "condor", "site": {"condor": site}}))
    executor = condor.get_executors()[0]
    provider = executor.provider
    assert isinstance(provider, CondorProvider) and executor.max_workers_per_node == 4
    assert (provider.cores_per_slot, provider.mem_per_slot, provider.max_blocks, provider.walltime) == (4, 16.0, 3, "02:00:00")
    assert condor.select_executor(None) == executor.label
    bad = Condor(BpsConfig({"computeSite": "condor", "site": {"condor": dict(site, max_blocks="many")}}))
    with pytest.raises(RuntimeError, match="max_blocks='many' must be a int"):
        bad.get_executors()


def test_why_bps_failed_comes_from_the_graph_build_and_bps_last_words(tmp_path: Path):
    """An empty graph: `bps submit` exits 1; the detail says why, from the graph build's own output."""
    (tmp_path / "submit").mkdir()
    (tmp_path / "submit" / "quantumGraphGeneration.out").write_text(
        "ERROR 2026-11-25T13:32:53.032+00:00 lsst.pipe.base.quantum_graph_builder ()"
        "(all_dimensions_quantum_graph_builder.py:233) - Initial data ID query returned no rows, so QuantumGraph"
        " will be empty.\nTo reproduce this query for debugging purposes, run:\n\n"
        "Error: QuantumGraph was empty; ERROR logs above should provide details.\n")
    log = tmp_path / "stage.log"
    log.write_text(
        "lsst.ctrl.bps.drivers INFO: Starting acquire stage (generating and/or reading quantum graph)\n"
        "lsst.ctrl.bps.pre_transform INFO: Error: QuantumGraph was empty; ERROR logs above should provide details.\n"
        "lsst.ctrl.bps.drivers INFO: Submission process completed: Took 2.0989 seconds\n"
        "Traceback (most recent call last):\n  File \"bps\", line 1, in <module>\n"
        "Generating quantum graph failed with non-zero exit code (1)\n"
        f"Check {tmp_path}/submit/quantumGraphGeneration.out for more details.\n")
    monitor = BpsMonitor(tmp_path, log)
    monitor.update(final=True)
    detail = monitor.failure_detail()
    assert detail.startswith("Initial data ID query returned no rows, so QuantumGraph will be empty; "
                             "QuantumGraph was empty; ERROR logs above should provide details; "
                             "Generating quantum graph failed with non-zero exit code (1) Check ")
    assert verdict(None, 1, detail)[1].startswith("bps exited with code 1: Initial data ID query")
    # a run whose jobs failed but bps itself did not: no bps-level reason (the report gives the quanta)
    log.write_text("parsl.dataflow.dflow ERROR: Task 5 failed after 1 retry attempts\n"
                   "parsl.app.errors.BashExitFailure: bash_app isr failed with unix exit code 1\n"
                   "lsst.ctrl.bps.drivers INFO: Submit stage completed: Took 43.27 seconds\n")
    monitor = BpsMonitor(tmp_path / "elsewhere", log)
    monitor.update(final=True)
    assert monitor.failure_detail() is None


def test_values_reach_the_job_literally_through_bps_expansion(tmp_path: Path, monkeypatch):
    """A query and a -c value holding ``{operator}``, ``{x}``, ``${HOME}`` and ``$HOME``: BPS's own expansion
    (``BpsConfig.search``, the same call that builds the graph command) gives each back exactly, where it
    substituted the login name and the home folder before."""
    from lsst.ctrl.bps import BpsConfig

    monkeypatch.setenv("HOME", "/home/someone")
    query = "instrument='PFS' AND visit.target_name = '{operator} {x} ${HOME} $HOME {{y}}'"
    # In a plan, $$ is a literal $ (plan variables are resolved at load).
    plan = parse_plan(plan_text(BPS, query=query.replace("$", "$$"), config='["isr:doThing=$${HOME}/{operator}"]'))
    stage = plan.stage("bias")
    assert stage.query == query and stage.config == ["isr:doThing=${HOME}/{operator}"]
    path = bps.write_submit(bps.submit_config(plan, stage, workdir=tmp_path), tmp_path)
    config = BpsConfig(str(path))
    assert config.search("dataQuery")[1] == query
    assert "-c 'isr:doThing=${HOME}/{operator}'" in config.search("extraQgraphOptions")[1]
    assert config.search("operator")[1] != "{operator}"  # BPS's own variables still work
    # As BPS builds the graph command: the template's {dataQuery} is filled with the literal query.
    config["createQuantumGraph"] = 'pipetask qgraph -d "{dataQuery}" {extraQgraphOptions}'
    cmd = config.search("createQuantumGraph")[1]
    assert query in cmd and "/home/someone" not in cmd and bps._operator() not in cmd.replace(query, "")
