"""The plan's ``verify`` stage and its limits: what loads, the one line each bad field gives, and the argv
(``pfstui verify REPO COLL TYPE --against X --at BEGIN --limit ...``) with the plan's and the stage's limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfstui.plan.argv import Tools, build_argv, describe
from pfstui.plan.loader import load_plan
from pfstui.plan.model import VerifyStage
from pfstui.plan.writer import dump_plan
from tests.plan.test_plan import ENV, load_error, write

TOOLS = Tools(pipetask=("pipetask",), butler=("butler",), pfstui=("pfstui",))
PLAN = """\
version: 1
repository: /data/repo
instrument: lsst.obs.pfs.PrimeFocusSpectrograph
rerun: u/me
defaults:
  verify_limits: {bias: {mean: [5, 20], noise: [1, 2]}, flat: {spread: [0.07, 0.15]}}
stages:
  - name: verify-bias
    kind: verify
    collection: bias
    dataset_type: bias
    begin: 2000-01-01T00:00:00
    limits: {noise: [3, 4.25]}
  - name: certify-bias
    kind: certify
    after: [verify-bias]
    input: bias
    target: PFS/calib
    dataset_type: bias
"""


def argv(plan, name: str) -> list[str]:
    return build_argv(plan, name, attempt_dir=Path("/logs/attempt-2"), first_run=True, tools=TOOLS)


def test_a_verify_stage_runs_pfstui_verify_with_the_plan_and_stage_limits(tmp_path: Path):
    plan = load_plan(write(tmp_path, PLAN), env=ENV)
    stage = plan.stage("verify-bias")
    assert isinstance(stage, VerifyStage) and stage.against == "PFS/calib"  # the default
    assert plan.defaults.verify_limits["fiberFlat"] == {"spread": [0.07, 0.15]}  # 'flat' is the fiberFlat product
    assert argv(plan, "verify-bias") == [
        "pfstui", "verify", "/data/repo", "u/me/bias", "bias", "--against", "PFS/calib", "--at", "2000-01-01T00:00:00",
        "--limit", "bias.mean=5,20", "--limit", "bias.noise=3,4.25"]  # the stage's noise wins; no flat limit here
    assert describe(stage, plan) == "verify bias in u/me/bias against PFS/calib at 2000-01-01T00:00:00, 1 own limit"
    assert load_plan(write(tmp_path, dump_plan(plan), "again.yaml"), env=ENV) == plan  # the writer keeps it all


def test_a_certify_stage_s_gate_gets_the_plan_s_limits_of_its_product(tmp_path: Path):
    """The certify after a verify stage judges by the plan's limits too (not the stage's own: they are the verify
    stage's), so a product the plan lets through verify is not left out at certify."""
    plan = load_plan(write(tmp_path, PLAN), env=ENV)
    got = argv(plan, "certify-bias")
    assert [got[i + 1] for i, arg in enumerate(got) if arg == "--limit"] == ["bias.mean=5,20", "bias.noise=1,2"]


def test_without_begin_or_limits_the_current_product_is_looked_up_now_with_the_table(tmp_path: Path):
    text = PLAN.replace("  verify_limits: {bias: {mean: [5, 20], noise: [1, 2]}, flat: {spread: [0.07, 0.15]}}",
                        "  processes: 1")
    text = text.replace("    begin: 2000-01-01T00:00:00\n    limits: {noise: [3, 4.25]}\n",
                        "    against: u/other/calib\n", 1)
    plan = load_plan(write(tmp_path, text), env=ENV)
    assert argv(plan, "verify-bias")[3:] == ["u/me/bias", "bias", "--against", "u/other/calib"]


@pytest.mark.parametrize(("old", "new", "line", "message"), [
    ("    dataset_type: bias\n    begin", "    dataset_type: arc\n    begin", 11,
     "stage 'verify-bias': dataset_type: verify does not know dataset type 'arc' (give one of bias, dark, detectorMap"),
    ("{noise: [3, 4.25]}", "{nois: [3, 4.25]}", 13,
     "stage 'verify-bias': limits: bias has no check 'nois' (its checks: mean, noise, outliers, diff_mean"),
    ("{noise: [3, 4.25]}", "{noise: [4, 3]}", 13,
     "stage 'verify-bias': limits: bias.noise: warn and fail must be numbers with 0 <= warn <= fail, got 4, 3"),
    ("{noise: [3, 4.25]}", "{noise: 3}", 13, "stage 'verify-bias': limits: limit bias.noise is not [warn, fail]"),
    ("mean: [5, 20]", "mean: [5, x]", 6, "defaults.verify_limits: bias.mean: warn and fail must be numbers"),
    ("{bias: {mean", "{arc: {mean", 6, "defaults.verify_limits: verify has no product 'arc' (products: bias, dark"),
    ("    collection: bias\n", "    collection: u/me/bias\n", 10,
     "stage 'verify-bias': collection 'u/me/bias' already starts with the rerun 'u/me'"),
    ("    collection: bias\n", "", 8, "stage 'verify-bias': missing required field 'collection'"),
])
def test_a_bad_verify_field_is_one_line_at_its_line(tmp_path: Path, old: str, new: str, line: int, message: str):
    assert old in PLAN
    err = load_error(tmp_path, PLAN.replace(old, new, 1))
    text = str(err)
    assert "\n" not in text and text.startswith(f"{tmp_path / 'plan.yaml'}:{line}: {message}"), text


def test_a_gated_verify_stage_is_previewed_by_its_command_line(tmp_path: Path):
    """A verify stage writes nothing: an approval gate on it shows its command, it has no ``--dry-run`` preview."""
    from pfstui.queue.launch import previews_itself

    plan = load_plan(write(tmp_path, PLAN), env=ENV)
    assert not previews_itself(plan.stage("verify-bias")) and previews_itself(plan.stage("certify-bias"))
