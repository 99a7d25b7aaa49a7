"""Editing a stage's options in its plan file (the Queue's ``e``): only the values edited change, as text;
comments, layout and variables are kept; a bad edit or a file changed on disk is refused and writes nothing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pfstui.plan.edit import PlanEditError, backup_path, read_plan_file
from pfstui.plan.issues import PlanError
from pfstui.plan.loader import load_plan
from pfstui.plan.stage_edit import EDITED_SOURCE, edit_stage, stage_values
from tests.plan.test_planedit import ENV

PLAN = """\
# My night.  Keep this comment!
version: 1
repository: /data/repo
instrument: pfstui.demo.instrument.DemoPrimeFocusSpectrograph
rerun: u/me   # my rerun
stages:
  # ---- Bias ----
  - name: bias
    kind: pipetask
    pipeline: ${PFSTUI_DEMO_DIR}/pipelines/bias.yaml   # the demo's
    inputs: [PFS/raw/sps, PFS/calib]
    output: bias
    query: "instrument='PFS' AND visit.target_name = 'BIAS'"  # every bias
    config:   # why these two
      - isr:demoDelay=0.1
      # - isr:doCrosstalk=False   (tried on the 12th)
      - isr:demoFailOn=arm:r
    processes:
  - name: certify-bias
    kind: certify
    after: [bias]
    input: bias
    target: PFS/calib
    dataset_type: bias
    begin: 2000-01-01T00:00:00   # from the start
defaults:
  processes: 1
"""


def plan_file(tmp_path: Path, text: str = PLAN) -> tuple[Path, object]:
    path = tmp_path / "plan.yaml"
    path.write_bytes(text.encode())
    return path, read_plan_file(path, env=ENV)


def test_only_the_edited_values_change(tmp_path: Path):
    path, pf = plan_file(tmp_path)
    result = edit_stage(pf, "bias", {"config": ["isr:demoDelay=0.2"], "processes": 2, "query": "instrument='PFS'",
                                     "extra_options": ["--no-versions"]}, env=ENV)
    expected = PLAN.replace(
        "    query: \"instrument='PFS' AND visit.target_name = 'BIAS'\"  # every bias\n",
        "    query: instrument='PFS'  # every bias\n",
    ).replace(
        "      - isr:demoDelay=0.1\n      # - isr:doCrosstalk=False   (tried on the 12th)\n"
        "      - isr:demoFailOn=arm:r\n    processes:\n",
        "      - isr:demoDelay=0.2\n    processes: 2\n    extra_options: [--no-versions]\n",
    )
    assert path.read_text() == expected, "comments, layout and the other stages kept; a block list stays one"
    assert backup_path(path).read_text() == PLAN
    assert result.fields == ("config", "processes", "query", "extra_options") and result.backup == backup_path(path)
    bias = load_plan(path, env=ENV).stage("bias")
    assert (bias.config, bias.processes, bias.query) == (["isr:demoDelay=0.2"], 2, "instrument='PFS'")


def test_values_are_written_as_the_file_holds_them(tmp_path: Path):
    """Dates stay plain, variables unexpanded, a query with single quotes in double ones."""
    path, pf = plan_file(tmp_path)
    values = stage_values(pf, "certify-bias")
    assert values["begin"] == "2000-01-01T00:00:00"  # a string, as the plan reads it (not a datetime)
    assert stage_values(pf, "bias")["pipeline"] == "${PFSTUI_DEMO_DIR}/pipelines/bias.yaml"
    edit_stage(pf, "certify-bias", {"begin": "2001-01-01T00:00:00", "end": "2030-01-01T00:00:00",
                                    "data_ids": [{"arm": "r", "spectrograph": 1}]}, env=ENV)
    text = path.read_text()
    assert "    begin: 2001-01-01T00:00:00   # from the start\n    end: 2030-01-01T00:00:00\n" \
           "    data_ids: [{arm: r, spectrograph: 1}]\ndefaults:\n" in text
    edit_stage(read_plan_file(path, env=ENV), "bias", {"query": "instrument='PFS' # not a comment"}, env=ENV)
    assert "    query: \"instrument='PFS' # not a comment\"  # every bias\n" in path.read_text()
    assert "pipeline: ${PFSTUI_DEMO_DIR}/pipelines/bias.yaml   # the demo's" in path.read_text()


def test_crlf_line_ends_and_the_file_mode_are_kept(tmp_path: Path):
    path, pf = plan_file(tmp_path, PLAN.replace("\n", "\r\n"))
    os.chmod(path, 0o600)
    edit_stage(pf, "certify-bias", {"end": "2030-01-01T00:00:00"}, env=ENV)
    raw = path.read_bytes()
    assert b"    begin: 2000-01-01T00:00:00   # from the start\r\n    end: 2030-01-01T00:00:00\r\n" in raw
    assert raw.count(b"\n") == raw.count(b"\r\n") and stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(("changes", "said"), [
    ({"end": "1990-01-01T00:00:00"}, f"{EDITED_SOURCE}: stage 'certify-bias': end: 1990-01-01T00:00:00 is not "
                                     "after begin"),
    ({"tagret": "x"}, "unknown field 'tagret' (did you mean 'target'?)"),
    ({"kind": "clean"}, "a stage's name and kind cannot be edited"),
    ({"data_ids": "arm=r"}, f"{EDITED_SOURCE}: stage 'certify-bias': data_ids"),
])
def test_a_bad_edit_is_refused_in_one_line_and_writes_nothing(tmp_path: Path, changes: dict, said: str):
    path, pf = plan_file(tmp_path)
    with pytest.raises(PlanError) as err:
        edit_stage(pf, "certify-bias", changes, env=ENV)
    assert said in str(err.value) and "\n" not in str(err.value)
    assert path.read_text() == PLAN and not backup_path(path).exists()


def test_a_file_changed_on_disk_is_not_overwritten(tmp_path: Path):
    path, pf = plan_file(tmp_path)
    changed = PLAN.replace("# My night.", "# My night (edited elsewhere).")
    path.write_text(changed)
    with pytest.raises(PlanEditError, match="changed on disk since it was opened"):
        edit_stage(pf, "bias", {"processes": 3}, env=ENV)
    assert path.read_text() == changed and not backup_path(path).exists()


def test_an_unknown_or_flow_style_stage_is_refused(tmp_path: Path):
    _, pf = plan_file(tmp_path)
    with pytest.raises(PlanEditError, match="no stage 'dark' in the plan"):
        edit_stage(pf, "dark", {"processes": 3}, env=ENV)
    block = PLAN[PLAN.index("  - name: certify-bias"):PLAN.index("defaults:")]
    flow = PLAN.replace(block, "  - {name: certify-bias, kind: certify, after: [bias], input: bias, target: PFS/calib, "
                               "dataset_type: bias}\n")
    path, pf = plan_file(tmp_path, flow)
    with pytest.raises(PlanEditError, match="written as a flow mapping"):
        edit_stage(pf, "certify-bias", {"end": "2030-01-01T00:00:00"}, env=ENV)
    assert path.read_text() == flow
