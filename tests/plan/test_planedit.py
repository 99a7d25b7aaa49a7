"""Adding a stage to a plan file from a template: the operator's file kept as written, bad stages refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

import pfstui.demo
from pfstui.plan.edit import (
    NEW_STAGE_SOURCE,
    PlanEditError,
    append_stage,
    backup_path,
    read_plan_file,
    stage_templates,
    stage_text_for,
    unique_stage_name,
)
from pfstui.plan.issues import PlanError
from pfstui.plan.loader import load_plan
from pfstui.plan.templates import (
    matching_templates,
    render_template,
    validate_template_text,
)

DEMO_DIR = str(Path(pfstui.demo.__file__).parent)
ENV = {"DRP_STELLA_DIR": "/opt/drp_stella", "PFSTUI_DEMO_DIR": DEMO_DIR, "HOME": "/home/me"}

DEMO_PLAN = """\
# My demo night.  Keep this comment!
version: 1
repository: /data/repo
instrument: pfstui.demo.instrument.DemoPrimeFocusSpectrograph
rerun: u/me   # my rerun
stages:
  # ---- Bias ----
  - name: bias
    kind: pipetask
    pipeline: ${PFSTUI_DEMO_DIR}/pipelines/bias.yaml
    inputs: [PFS/raw/sps, PFS/calib]     # aligned on purpose
    output: bias
    query: "instrument='PFS' AND visit.target_name = 'BIAS'"
    # processes: 4   (commented-out field of the bias stage)
  # - name: old-stage   (a commented-out stage at the end)
"""

PFS_PLAN = """\
version: 1
repository: /data/repo
instrument: lsst.obs.pfs.PrimeFocusSpectrograph
rerun: u/me
stages:
- name: bias
  kind: pipetask
  pipeline: $DRP_STELLA_DIR/pipelines/bias.yaml
  inputs: [PFS/raw/sps, PFS/calib]
  output: bias
  query: "instrument='PFS' AND visit.target_name = 'BIAS'"
"""

CLEAN_STAGE = """\
name: clean-bias
kind: clean
after: [bias]
glob: "bias/*"
dataset_types: [biasProc]
"""


def write(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


TEMPLATE_STAGES = len(validate_template_text(render_template("demo", None, "u/me"), "demo").stages)


def template_stage(plan, name: str, template: str | None = None):
    return next(s for s in stage_templates(plan, env=ENV) if s.name == name and template in (None, s.template))


# --- which templates --------------------------------------------------------------------------------


def test_demo_plan_matches_the_demo_template_only(tmp_path):
    pf = read_plan_file(write(tmp_path, DEMO_PLAN), env=ENV)
    assert matching_templates(pf.plan, pf.text, ENV) == ("demo",)
    assert {s.template for s in stage_templates(pf.plan, text=pf.text, env=ENV)} == {"demo"}


def test_pfs_plan_matches_the_pfs_template_only(tmp_path):
    pf = read_plan_file(write(tmp_path, PFS_PLAN), env=ENV)
    assert matching_templates(pf.plan, pf.text, ENV) == ("pfs",)


def test_a_plan_of_neither_kind_is_offered_both_templates(tmp_path):
    text = PFS_PLAN.replace("lsst.obs.pfs.PrimeFocusSpectrograph", "my.obs.Spectrograph").replace(
        "$DRP_STELLA_DIR/pipelines", "/home/me/pipelines")
    pf = read_plan_file(write(tmp_path, text), env=ENV)
    assert matching_templates(pf.plan, pf.text, ENV) == ("pfs", "demo")
    offered = stage_templates(pf.plan, text=pf.text, env=ENV)
    assert [s.name for s in offered if s.template == "pfs"] == [s.name for s in offered if s.template == "demo"]
    assert len(offered) == 2 * TEMPLATE_STAGES


def test_a_demo_plan_written_with_expanded_paths_is_still_a_demo_plan(tmp_path):
    text = PFS_PLAN.replace("lsst.obs.pfs.PrimeFocusSpectrograph", "my.obs.Spectrograph").replace(
        "$DRP_STELLA_DIR/pipelines", f"{DEMO_DIR}/pipelines")
    pf = read_plan_file(write(tmp_path, text), env=ENV)
    assert matching_templates(pf.plan, pf.text, ENV) == ("demo",)


def test_a_plan_both_templates_claim_offers_the_one_of_its_instrument_first(tmp_path):
    demo_instrument = PFS_PLAN.replace("lsst.obs.pfs.PrimeFocusSpectrograph",
                                       "pfstui.demo.instrument.DemoPrimeFocusSpectrograph")
    pf = read_plan_file(write(tmp_path, demo_instrument), env=ENV)  # drp_stella pipelines, demo instrument
    assert matching_templates(pf.plan, pf.text, ENV) == ("demo", "pfs")
    pfs_instrument = PFS_PLAN.replace("$DRP_STELLA_DIR/pipelines", f"{DEMO_DIR}/pipelines")
    pf = read_plan_file(write(tmp_path, pfs_instrument, "pfs.yaml"), env=ENV)  # demo pipelines, PFS instrument
    assert matching_templates(pf.plan, pf.text, ENV) == ("pfs", "demo")


def test_template_stages_carry_a_description_and_their_comments(tmp_path):
    pf = read_plan_file(write(tmp_path, PFS_PLAN), env=ENV)
    stages = {s.name: s for s in stage_templates(pf.plan, env=ENV)}
    assert list(stages)[:4] == ["bias", "verify-bias", "certify-bias", "clean-bias"]
    assert stages["verify-bias"].description == "verify bias in u/me/bias against PFS/calib at 2000-01-01T00:00:00"
    assert stages["certify-flat"].description == (
        "certify fiberFlat from u/me/flat into PFS/calib, 2000-01-01T00:00:00 … 2050-12-31T23:59:59")
    assert stages["certify-flat"].text.startswith("# CORRECTED: the tutorial certifies 'flat'")
    assert "# ----" not in stages["bias"].text  # section headers stay in the template
    # every offered text is a stage mapping of its own
    for st in stages.values():
        data = yaml.safe_load(st.text)
        assert data["name"] == st.name and data["kind"] == st.kind


# --- name and after ---------------------------------------------------------------------------------


def test_unique_stage_name():
    assert unique_stage_name("bias", ["dark"]) == "bias"
    assert unique_stage_name("bias", ["bias"]) == "bias-2"
    assert unique_stage_name("bias", ["bias", "bias-2", "bias-3"]) == "bias-4"


def test_stage_text_gets_a_free_name_and_only_known_dependencies(tmp_path):
    pf = read_plan_file(write(tmp_path, DEMO_PLAN), env=ENV)
    bias = yaml.safe_load(stage_text_for(pf.plan, template_stage(pf.plan, "bias")))
    assert bias["name"] == "bias-2" and "after" not in bias
    verify = yaml.safe_load(stage_text_for(pf.plan, template_stage(pf.plan, "verify-bias")))
    assert verify["name"] == "verify-bias" and verify["after"] == ["bias"]
    certify = yaml.safe_load(stage_text_for(pf.plan, template_stage(pf.plan, "certify-bias")))
    assert certify["name"] == "certify-bias" and "after" not in certify  # verify-bias is not in the plan
    dark_text = stage_text_for(pf.plan, template_stage(pf.plan, "dark"))
    assert "after" not in dark_text  # certify-bias is not in the plan: the whole line goes
    fit = yaml.safe_load(stage_text_for(pf.plan, template_stage(pf.plan, "fitFiberProfiles")))
    assert "after" not in fit


def test_stage_text_keeps_the_known_part_of_after(tmp_path):
    text = DEMO_PLAN + """\
  - name: define-profiles
    kind: define-profiles
    profiles_run: demo_br
    groups: [{bright: '51..52', dark: '53..54'}]
"""
    pf = read_plan_file(write(tmp_path, text), env=ENV)
    out = stage_text_for(pf.plan, template_stage(pf.plan, "fitFiberProfiles"))
    assert "after: [define-profiles]\n" in out
    assert "profileRadius=3" in out and "# the seed uses 10" in out  # the template's comment kept


# --- appending --------------------------------------------------------------------------------------


def test_append_keeps_every_byte_of_the_file_and_indents_like_it(tmp_path):
    path = write(tmp_path, DEMO_PLAN)
    pf = read_plan_file(path, env=ENV)
    result = append_stage(pf, CLEAN_STAGE, env=ENV)
    new = path.read_text()
    assert result.stage == "clean-bias"
    # inserted after the bias stage's commented-out field, before the commented-out stage
    head, _, tail = DEMO_PLAN.partition("  # - name: old-stage")
    assert new == head + "".join("  - " + CLEAN_STAGE.splitlines()[0] + "\n"
                                 + "".join(f"    {line}\n" for line in CLEAN_STAGE.splitlines()[1:])) + (
        "  # - name: old-stage" + tail)
    assert backup_path(path).read_text() == DEMO_PLAN
    assert load_plan(path, env=ENV).stage_names == ["bias", "clean-bias"]
    assert result.plan.stage("clean-bias").after == ["bias"]


def test_append_to_an_indentless_list(tmp_path):
    path = write(tmp_path, PFS_PLAN)
    append_stage(read_plan_file(path, env=ENV), CLEAN_STAGE, env=ENV)
    new = path.read_text()
    assert new.startswith(PFS_PLAN)
    assert new[len(PFS_PLAN):] == "- name: clean-bias\n  kind: clean\n  after: [bias]\n  glob: \"bias/*\"\n" \
                                  "  dataset_types: [biasProc]\n"


def test_append_when_stages_is_not_the_last_key(tmp_path):
    text = PFS_PLAN.replace("version: 1\n", "") + """\
    # a comment inside the bias stage

# defaults come last in this file
defaults:
    processes: 2   # two processes
version: 1
"""
    path = write(tmp_path, text)
    append_stage(read_plan_file(path, env=ENV), CLEAN_STAGE, env=ENV)
    new = path.read_text()
    before, after = text.split("\n# defaults come last", 1)
    assert new.startswith(before.rstrip("\n") + "\n- name: clean-bias\n")
    assert new.endswith("\n# defaults come last" + after)
    plan = load_plan(path, env=ENV)
    assert plan.stage_names == ["bias", "clean-bias"] and plan.defaults.processes == 2


def test_append_to_a_file_without_final_newline_and_a_block_scalar_query(tmp_path):
    text = PFS_PLAN.replace('  query: "instrument=\'PFS\' AND visit.target_name = \'BIAS\'"\n',
                            "  query: |\n    instrument='PFS'\n    AND visit.target_name = 'BIAS'\n\n")
    text = text.rstrip("\n")
    path = write(tmp_path, text)
    append_stage(read_plan_file(path, env=ENV), CLEAN_STAGE, env=ENV)
    plan = load_plan(path, env=ENV)
    assert plan.stage_names == ["bias", "clean-bias"]
    assert plan.stage("bias").query == "instrument='PFS'\nAND visit.target_name = 'BIAS'\n"


def test_append_keeps_crlf_line_ends_and_the_file_mode(tmp_path):
    path = write(tmp_path, PFS_PLAN.replace("\n", "\r\n"))
    os.chmod(path, 0o600)
    append_stage(read_plan_file(path, env=ENV), CLEAN_STAGE, env=ENV)
    raw = path.read_bytes()
    assert raw.startswith(PFS_PLAN.replace("\n", "\r\n").encode())
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_plan(path, env=ENV).stage_names == ["bias", "clean-bias"]


def test_append_writes_through_a_symlinked_plan(tmp_path):
    real = write(tmp_path, PFS_PLAN, "real.yaml")
    link = tmp_path / "plan.yaml"
    link.symlink_to(real)
    append_stage(read_plan_file(link, env=ENV), CLEAN_STAGE, env=ENV)
    assert link.is_symlink()
    assert load_plan(real, env=ENV).stage_names == ["bias", "clean-bias"]


def test_a_template_stage_appended_twice_gets_two_names(tmp_path):
    path = write(tmp_path, DEMO_PLAN)
    for expected in ("bias-2", "bias-3"):
        pf = read_plan_file(path, env=ENV)
        result = append_stage(pf, stage_text_for(pf.plan, template_stage(pf.plan, "bias")), env=ENV)
        assert result.stage == expected
    assert load_plan(path, env=ENV).stage_names == ["bias", "bias-2", "bias-3"]
    assert path.read_text().startswith("# My demo night.  Keep this comment!\n")
    assert "# - name: old-stage" in path.read_text()


def test_every_demo_template_stage_can_be_added(tmp_path):
    path = write(tmp_path, DEMO_PLAN)
    pf = read_plan_file(path, env=ENV)
    for st in stage_templates(pf.plan, env=ENV):
        pf = read_plan_file(path, env=ENV)
        append_stage(pf, stage_text_for(pf.plan, st), env=ENV)
    assert len(load_plan(path, env=ENV).stages) == 1 + TEMPLATE_STAGES


# --- refusals ---------------------------------------------------------------------------------------


def unchanged(path: Path, text: str) -> bool:
    return path.read_bytes() == text.encode() and not backup_path(path).exists()


def test_a_bad_stage_names_its_own_line_and_leaves_the_file_alone(tmp_path):
    path = write(tmp_path, DEMO_PLAN)
    pf = read_plan_file(path, env=ENV)
    bad = CLEAN_STAGE.replace("dataset_types", "dataset_tpyes")
    with pytest.raises(PlanError) as err:
        append_stage(pf, bad, env=ENV)
    assert str(err.value).startswith(f"{NEW_STAGE_SOURCE}:5: stage 'clean-bias': unknown field 'dataset_tpyes' "
                                     "(did you mean 'dataset_types'?)")
    assert unchanged(path, DEMO_PLAN)
    assert [p.name for p in tmp_path.iterdir()] == ["plan.yaml"]  # no temp file left either


def test_a_duplicate_name_is_refused(tmp_path):
    path = write(tmp_path, DEMO_PLAN)
    with pytest.raises(PlanError, match=r"^new stage:1: stage 'bias': duplicate stage name 'bias'"):
        append_stage(read_plan_file(path, env=ENV), CLEAN_STAGE.replace("clean-bias", "bias"), env=ENV)
    assert unchanged(path, DEMO_PLAN)


def test_an_unknown_dependency_is_refused_with_a_suggestion(tmp_path):
    path = write(tmp_path, DEMO_PLAN)
    with pytest.raises(PlanError, match=r"^new stage:3: stage 'clean-bias': unknown dependency 'bais' in after "
                                        r"\(did you mean 'bias'\?\)"):
        append_stage(read_plan_file(path, env=ENV), CLEAN_STAGE.replace("[bias]", "[bais]"), env=ENV)
    assert unchanged(path, DEMO_PLAN)


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("", r"^new stage:1: the new stage is empty \(write its name"),
        ("# only a comment\n", r"^new stage:1: the new stage is empty"),
        ("- " + CLEAN_STAGE.replace("\n", "\n  "), r"^new stage:1: the new stage is written as a list item "
                                                    r"\(write its fields without the leading '- '"),
        ("just words\n", r"^new stage:1: the new stage must be a mapping"),
        ("kind: clean\nglob: x\n", r"^new stage:1: missing required field 'name'"),
        ("name: [a]\nkind: clean\nglob: x\ndataset_types: [y]\n", r"^new stage:1: stage '#2': name: must be a string"),
        ("name: x\nkind: clean\n  glob: [\n", r"^new stage:3: YAML syntax error"),
        ("name: x\n---\nkind: clean\n", r"^new stage:\d: YAML syntax error"),
        (CLEAN_STAGE.replace('"bias/*"', "u/me/bias/*"),
         r"^new stage:4: stage 'clean-bias': glob 'u/me/bias/\*' already starts with the rerun 'u/me'"),
        (CLEAN_STAGE.replace("clean-bias", "clean bias"), r"^new stage:1: stage 'clean bias': name: 'clean bias' is "
                                                          r"not a valid stage name"),
    ],
)
def test_bad_input_gets_one_line_and_no_write(tmp_path, stage, message):
    path = write(tmp_path, DEMO_PLAN)
    with pytest.raises(PlanError, match=message) as err:
        append_stage(read_plan_file(path, env=ENV), stage, env=ENV)
    assert "\n" not in str(err.value)
    assert unchanged(path, DEMO_PLAN)


def test_an_unset_variable_in_the_new_stage_is_refused(tmp_path):
    path = write(tmp_path, DEMO_PLAN)
    pf = read_plan_file(path, env=ENV)
    stage = stage_text_for(pf.plan, template_stage(pf.plan, "bias")).replace("PFSTUI_DEMO_DIR", "NO_SUCH_DIR")
    with pytest.raises(PlanError, match=r"^new stage:3: stage 'bias-2': pipeline: environment variable NO_SUCH_DIR "
                                        r"is not set"):
        append_stage(pf, stage, env=ENV)
    assert unchanged(path, DEMO_PLAN)


def test_a_file_changed_on_disk_is_not_overwritten(tmp_path):
    path = write(tmp_path, DEMO_PLAN)
    pf = read_plan_file(path, env=ENV)
    other = DEMO_PLAN.replace("Keep this comment!", "Edited in vim meanwhile.")
    path.write_text(other)
    with pytest.raises(PlanEditError, match=r"plan.yaml: the plan file changed on disk since it was opened "
                                            r"\(close this editor and add the stage again"):
        append_stage(pf, CLEAN_STAGE, env=ENV)
    assert unchanged(path, other)


def test_a_flow_style_stage_list_is_refused(tmp_path):
    text = PFS_PLAN.split("stages:")[0] + (
        "stages: [{name: bias, kind: clean, glob: 'bias/*', dataset_types: [biasProc]}]\n")
    path = write(tmp_path, text)
    with pytest.raises(PlanEditError, match=r"plan.yaml:5: 'stages:' is written as a flow list"):
        append_stage(read_plan_file(path, env=ENV), CLEAN_STAGE.replace("clean-bias", "c2"), env=ENV)
    assert unchanged(path, text)


def test_a_broken_plan_cannot_be_read_for_editing(tmp_path):
    path = write(tmp_path, DEMO_PLAN.replace("output: bias", "outptu: bias"))
    with pytest.raises(PlanError, match=r"plan.yaml:12: stage 'bias': unknown field 'outptu'"):
        read_plan_file(path, env=ENV)
    with pytest.raises(PlanError, match=r"no such plan file"):
        read_plan_file(tmp_path / "missing.yaml", env=ENV)


def test_a_failed_write_leaves_the_plan_intact(tmp_path):
    path = write(tmp_path, DEMO_PLAN)
    pf = read_plan_file(path, env=ENV)
    backup_path(path).mkdir()  # the .bak cannot be written: nothing else is either
    with pytest.raises(OSError, match=r"cannot write .*plan.yaml.bak"):
        append_stage(pf, CLEAN_STAGE, env=ENV)
    assert path.read_bytes() == DEMO_PLAN.encode()
