"""Plan files: loading, the error messages an operator sees (file, line, field, fix), templates."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pydantic
import pytest

import pfstui.demo
from pfstui.plan.issues import PlanError, PlanFileExistsError
from pfstui.plan.loader import load_plan, parse_plan
from pfstui.plan.model import CertifyStage, DefineProfilesStage, PipetaskStage, Plan
from pfstui.plan.templates import plan_new, render_template, template_names
from pfstui.plan.writer import dump_plan, stage_fingerprint

DEMO_DIR = str(Path(pfstui.demo.__file__).parent)
ENV = {"DRP_STELLA_DIR": "/opt/drp_stella", "PFSTUI_DEMO_DIR": DEMO_DIR, "HOME": "/home/me"}

# Line numbers matter: the tests below point at them.
BASE = """\
version: 1
repository: /data/repo
instrument: lsst.obs.pfs.PrimeFocusSpectrograph
rerun: u/me
defaults:
  processes: 4
stages:
  - name: bias
    kind: pipetask
    pipeline: ${DRP_STELLA_DIR}/pipelines/bias.yaml
    inputs: [PFS/raw/sps, PFS/calib]
    output: bias
    query: "instrument='PFS' AND visit.target_name = 'BIAS'"
  - name: dark
    kind: pipetask
    after: [certify-bias]
    pipeline: $DRP_STELLA_DIR/pipelines/dark.yaml
    inputs: [PFS/raw/all, PFS/calib]
    output: dark
    query: "instrument='PFS' AND visit.target_name = 'DARK'"
  - name: certify-bias
    kind: certify
    after: [bias]
    input: bias
    target: PFS/calib
    dataset_type: bias
    begin: 2000-01-01T00:00:00
    end: 2050-12-31T23:59:59
    data_ids:
      - {instrument: PFS, arm: r, spectrograph: 2}
      - "instrument=PFS arm=b spectrograph=1"
"""


def write(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> PlanError:
    path = write(tmp_path, text)
    with pytest.raises(PlanError) as info:
        load_plan(path, env=ENV if env is None else env)
    return info.value


# ---------------------------------------------------------------------------------------- good plans


def test_base_plan_loads_with_expanded_variables_and_data_ids(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, BASE), env=ENV)
    bias, dark, certify = plan.stages
    assert isinstance(bias, PipetaskStage) and isinstance(certify, CertifyStage)
    assert bias.pipeline == "/opt/drp_stella/pipelines/bias.yaml"
    assert dark.pipeline == "/opt/drp_stella/pipelines/dark.yaml"
    assert plan.defaults.processes == 4 and plan.defaults.fail_fast is True
    assert plan.defaults.log_level == "pfs=INFO"
    # YAML would make these datetimes; a plan keeps TAI strings
    assert certify.begin == "2000-01-01T00:00:00" and certify.end == "2050-12-31T23:59:59"
    assert certify.data_ids == [
        {"instrument": "PFS", "arm": "r", "spectrograph": 2},
        {"instrument": "PFS", "arm": "b", "spectrograph": 1},
    ]
    assert plan.source == str(tmp_path / "plan.yaml")


def test_collections_are_relative_to_the_rerun_unless_they_start_with_a_slash(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, BASE), env=ENV)
    assert plan.collection("bias") == "u/me/bias"
    assert plan.collection("/PFS/special/bias") == "PFS/special/bias"


def test_dependency_order_keeps_file_order_where_possible(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, BASE), env=ENV)
    # 'dark' is listed before 'certify-bias' but waits for it
    assert [s.name for s in plan.ordered_stages()] == ["bias", "certify-bias", "dark"]
    assert plan.dependents("bias") == ["certify-bias"]


def test_dollar_escapes_and_relative_repository(tmp_path: Path) -> None:
    text = BASE.replace("repository: /data/repo", "repository: repos/main").replace(
        "output: bias\n", "output: bias\n    extra_options: [--log-label, 'COST=$$5', '${HOME}x']\n", 1
    )
    plan = load_plan(write(tmp_path, text), env=ENV)
    assert plan.repository == str(tmp_path.resolve() / "repos" / "main")
    assert plan.stages[0].extra_options == ["--log-label", "COST=$5", "/home/mex"]


def test_default_environment_provides_the_demo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI registers the demo's folder once; plans read afterwards (default environment) find it."""
    from pfstui.cli.demo import ensure_demo_env

    monkeypatch.delenv("PFSTUI_DEMO_DIR", raising=False)
    ensure_demo_env()
    text = BASE.replace("${DRP_STELLA_DIR}/pipelines/bias.yaml", "${PFSTUI_DEMO_DIR}/pipelines/bias.yaml").replace(
        "$DRP_STELLA_DIR/pipelines/dark.yaml", "${PFSTUI_DEMO_DIR}/pipelines/dark.yaml"
    )
    plan = load_plan(write(tmp_path, text))
    assert Path(plan.stages[0].pipeline).is_file()


def test_dump_round_trips(tmp_path: Path) -> None:
    text = BASE.replace("    output: bias\n", "    output: bias\n    extra_options: ['COST=$$HOME']\n", 1)
    plan = load_plan(write(tmp_path, text), env=ENV)
    assert plan.stages[0].extra_options == ["COST=$HOME"]
    text = dump_plan(plan)
    assert text.startswith("# pfstui calibration plan")
    again = parse_plan(text, env={})  # variables are already expanded in a dump
    assert again == plan
    out = tmp_path / "dumped.yaml"
    dump_plan(plan, out)
    assert load_plan(out, env={}) == plan


def test_dump_keeps_the_bps_sites(tmp_path: Path) -> None:
    site = {"class": "pfstui.bps.sites.Condor", "cores_per_slot": 4, "walltime": "04:00:00"}
    plan = load_plan(write(tmp_path, BASE), env=ENV).model_copy(update={"bps_sites": {"condor": site}})
    assert parse_plan(dump_plan(plan), env={}).bps_sites == {"condor": site}


def test_fingerprint_is_stable_and_tracks_what_the_stage_makes(tmp_path: Path) -> None:
    plan = load_plan(write(tmp_path, BASE), env=ENV)
    fp = stage_fingerprint(plan, "bias")
    assert fp == stage_fingerprint(load_plan(write(tmp_path, BASE, "again.yaml"), env=ENV), plan.stage("bias"))
    # pinned: the canonical form must not drift between releases (session stores compare these)
    canonical = {
        "v": 1,
        "repository": "/data/repo",
        "instrument": "lsst.obs.pfs.PrimeFocusSpectrograph",
        "rerun": "u/me",
        "stage": {
            "kind": "pipetask",
            "pipeline": "/opt/drp_stella/pipelines/bias.yaml",
            "inputs": ["PFS/raw/sps", "PFS/calib"],
            "output": "u/me/bias",
            "query": "instrument='PFS' AND visit.target_name = 'BIAS'",
        },
    }
    blob = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    assert fp == hashlib.sha256(blob.encode()).hexdigest()
    how = BASE.replace("    output: bias\n", "    output: bias\n    processes: 8\n    fail_fast: false\n", 1)
    assert stage_fingerprint(load_plan(write(tmp_path, how, "how.yaml"), env=ENV), "bias") == fp
    what = BASE.replace("'BIAS'", "'BIAS' AND visit > 10")
    assert stage_fingerprint(load_plan(write(tmp_path, what, "what.yaml"), env=ENV), "bias") != fp
    rerun = BASE.replace("rerun: u/me", "rerun: u/you")
    assert stage_fingerprint(load_plan(write(tmp_path, rerun, "rerun.yaml"), env=ENV), "bias") != fp
    assert stage_fingerprint(plan, "dark") != fp


def test_define_profiles_visit_lists(tmp_path: Path) -> None:
    text = BASE + (
        "  - name: profiles\n    kind: define-profiles\n    profiles_run: run18_brn\n    groups:\n"
        "      - {bright: '113855..113863', dark: 113845}\n"
        "      - {bright: [1, 2, 5], dark: '3..9:2^20'}\n"
    )
    stage = load_plan(write(tmp_path, text), env=ENV).stage("profiles")
    assert isinstance(stage, DefineProfilesStage) and stage.instrument == "PFS"
    assert [(g.bright, g.dark) for g in stage.groups] == [("113855..113863", "113845"), ("1^2^5", "3..9:2^20")]


def test_programmatic_plans_are_checked_too() -> None:
    stage = {"name": "a", "kind": "clean", "glob": "a/*", "dataset_types": ["x"], "after": ["b"]}
    other = {"name": "b", "kind": "clean", "glob": "b/*", "dataset_types": ["x"], "after": ["a"]}
    with pytest.raises(pydantic.ValidationError, match="dependency cycle"):
        Plan(repository="/r", instrument="a.B", rerun="u/me", stages=[stage, other])


# ---------------------------------------------------------------------------------------- bad plans


def test_unknown_field_names_file_line_stage_and_suggestion(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("    inputs: [PFS/raw/all", "    inptus: [PFS/raw/all"))
    assert str(err) == f"{tmp_path / 'plan.yaml'}:18: stage 'dark': unknown field 'inptus' (did you mean 'inputs'?)"
    assert (err.line, err.stage, err.field) == (18, "dark", "inptus")
    # the "missing inputs" consequence is not reported on top of the typo
    assert len(err.issues) == 1


def test_unknown_top_level_field(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("rerun: u/me", "reruns: u/me"))
    assert err.line == 4 and err.stage is None
    assert "unknown field 'reruns' (did you mean 'rerun'?)" in str(err)


def test_missing_required_field_points_at_the_stage(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("    query: \"instrument='PFS' AND visit.target_name = 'DARK'\"\n", ""))
    assert err.line == 14 and err.stage == "dark" and err.field == "query"
    assert "missing required field 'query' (add query: \"instrument='PFS'" in str(err)


def test_bad_kind_suggests_the_right_one(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("    kind: certify\n", "    kind: certfy\n"))
    assert err.line == 22 and err.stage == "certify-bias"
    assert "unknown kind 'certfy' (did you mean 'certify'?" in str(err)
    assert "certify-candidates" in str(err)  # the list of kinds is the fix


def test_missing_kind(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("    kind: certify\n", ""))
    assert err.stage == "certify-bias" and "missing required field 'kind'" in str(err)


def test_unknown_dependency(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("after: [certify-bias]", "after: [certifybias]"))
    assert str(err).startswith(f"{tmp_path / 'plan.yaml'}:16: stage 'dark': unknown dependency 'certifybias'")
    assert "did you mean 'certify-bias'?" in str(err)


def test_dependency_cycle(tmp_path: Path) -> None:
    text = BASE.replace("    output: bias\n", "    output: bias\n    after: [dark]\n", 1)
    err = load_error(tmp_path, text)
    assert "dependency cycle" in str(err)
    for name in ("'bias'", "'dark'", "'certify-bias'"):
        assert name in str(err)
    assert err.line is not None and "remove one of these dependencies" in str(err)


def test_self_dependency(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("after: [bias]", "after: [certify-bias]"))
    assert err.stage == "certify-bias" and "depends on itself" in str(err) and err.line == 23


def test_duplicate_stage_name(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("  - name: dark\n", "  - name: bias\n"))
    assert err.line == 14
    assert "duplicate stage name 'bias': stage #1 has it too (give every stage a unique name)" in str(err)


def test_duplicate_key(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("    output: dark\n", "    output: dark\n    output: dark2\n"))
    assert err.line == 20 and "duplicate key 'output' (first at line 19)" in str(err)


def test_unset_variable(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE, env={"HOME": "/home/me"})
    assert str(err).startswith(
        f"{tmp_path / 'plan.yaml'}:10: stage 'bias': pipeline: environment variable DRP_STELLA_DIR is not set"
    )
    assert "setup drp_stella" in str(err)
    assert len(err.issues) == 2 and err.issues[1].line == 17  # both uses are reported


def test_unset_custom_variable_and_bad_reference(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("repository: /data/repo", "repository: ${DATASTORE}"))
    assert err.line == 2 and "DATASTORE is not set" in str(err) and "export DATASTORE=" in str(err)
    err = load_error(tmp_path, BASE.replace("repository: /data/repo", "repository: ${DATA STORE}"))
    assert err.line == 2 and "not a valid variable reference" in str(err)


@pytest.mark.parametrize(
    "date, words",
    [
        ("2024-02-30T00:00:00", "not a valid date"),
        ("2024/02/01", "not a TAI ISO date"),
        ("2024-02-01T00:00:00Z", "not a TAI ISO date"),
    ],
)
def test_bad_date(tmp_path: Path, date: str, words: str) -> None:
    err = load_error(tmp_path, BASE.replace("begin: 2000-01-01T00:00:00", f"begin: {date}"))
    assert err.line == 27 and err.stage == "certify-bias" and err.field == "begin"
    assert words in str(err) and "2000-01-01T00:00:00" in str(err)  # the fix shows the form


def test_begin_after_end(tmp_path: Path) -> None:
    err = load_error(tmp_path, BASE.replace("end: 2050-12-31T23:59:59", "end: 1999-12-31T23:59:59"))
    assert err.line == 28 and err.field == "end"
    assert "1999-12-31T23:59:59 is not after begin 2000-01-01T00:00:00" in str(err)
    assert "leave one out for an open range" in str(err)


@pytest.mark.parametrize(
    "data_id, line, words",
    [
        ('"instrument=PFS arm spectrograph=1"', 31, "'arm' is not key=value"),
        ("{instrument: PFS, arm: [r, b]}", 31, "value for 'arm' must be a string or integer"),
        ('""', 31, "data ID is empty"),
        ("[instrument, PFS]", 31, "data ID must be a mapping"),
    ],
)
def test_malformed_data_id(tmp_path: Path, data_id: str, line: int, words: str) -> None:
    err = load_error(tmp_path, BASE.replace('"instrument=PFS arm=b spectrograph=1"', data_id))
    assert err.line == line and err.field == "data_ids[1]" and words in str(err)
    assert "{instrument: PFS, arm: r, spectrograph: 2}" in str(err)  # the fix


def test_other_value_errors(tmp_path: Path) -> None:
    cases = [
        (BASE.replace("rerun: u/me", "rerun: /u/me/"), 4, "is not a collection prefix"),
        (BASE.replace("instrument: lsst.obs.pfs.PrimeFocusSpectrograph", "instrument: PFS"), 3, "not a Python class path"),
        (BASE.replace("processes: 4", "processes: 0"), 6, "must be at least 1"),
        (BASE.replace("output: dark", "output: u/me/dark"), 19, "already starts with the rerun"),
        (BASE.replace("inputs: [PFS/raw/all, PFS/calib]", "inputs: []"), 18, "must not be empty"),
        (BASE.replace("inputs: [PFS/raw/all, PFS/calib]", "inputs: [PFS/raw/all PFS/calib]"), 18, "spaces or commas"),
        (BASE.replace("version: 1", "version: 2"), 1, "schema version 2 is not supported"),
        (BASE.replace("  - name: dark", "  - name: dark one"), 14, "not a valid stage name"),
        (BASE.replace("    output: bias\n", "    output: bias\n    config: [doCrosstalk=False]\n", 1), 13, "not label:field=value"),
        (BASE.replace("    output: bias\n", "    output: bias\n    register_dataset_types: maybe\n", 1), 13, "auto, true or false"),
        (BASE + "  - name: c\n    kind: decertify\n    collection: PFS/calib\n    dataset_type: dark\n", 32, "would remove every certified 'dark'"),
        (BASE + "  - name: p\n    kind: define-profiles\n    profiles_run: r\n    groups: [{bright: 1..2, dark: 3}, {bright: 5}]\n",
         35, "give every group a 'dark' list, or none"),
        (BASE + "  - name: p\n    kind: define-profiles\n    profiles_run: r\n    groups: [{bright: '9..2'}]\n", 35, "ends before it starts"),
        ("version: 1\nstages: [\n", 3, "YAML syntax error"),
        ("", 1, "the plan is empty"),
    ]
    for text, line, words in cases:
        err = load_error(tmp_path, text)
        assert err.line == line, (words, str(err))
        assert words in str(err), str(err)


def test_a_bad_name_keeps_its_problem_and_fix_apart(tmp_path: Path) -> None:
    """The name rules live in pfstui.values.names; the loader still reports them as plan problems."""
    err = load_error(tmp_path, BASE.replace("  - name: dark", "  - name: dark one"))
    assert (err.line, err.stage, err.field) == (14, "dark one", "name")
    assert err.problem == "name: 'dark one' is not a valid stage name"
    assert err.fix == "use letters, digits, '_', '-' and '.', starting with a letter or digit; it names log files"
    assert str(err).endswith(f"{err.problem} ({err.fix})")


def test_all_problems_are_kept_and_the_first_is_the_message(tmp_path: Path) -> None:
    text = BASE.replace("inputs: [PFS/raw/all", "inptus: [PFS/raw/all").replace("begin: 2000-01-01", "begin: 2000-13-01")
    err = load_error(tmp_path, text)
    assert [i.line for i in err.issues] == [18, 27]
    assert str(err).endswith("[+1 more problem]")
    assert len(err.report().splitlines()) == 2


def test_missing_file() -> None:
    with pytest.raises(PlanError, match="no such plan file.*pfstui plan new"):
        load_plan("/nonexistent/plan.yaml", env=ENV)


# ---------------------------------------------------------------------------------------- templates


def test_demo_template_loads_and_its_pipelines_exist(tmp_path: Path) -> None:
    path = write(tmp_path, render_template("demo", str(tmp_path / "repo"), "u/demo"))
    plan = load_plan(path, env={"PFSTUI_DEMO_DIR": DEMO_DIR})
    assert plan.instrument == "pfstui.demo.instrument.DemoPrimeFocusSpectrograph"
    assert plan.defaults.processes == 1
    pipetasks = [s for s in plan.stages if isinstance(s, PipetaskStage)]
    assert [Path(s.pipeline).stem for s in pipetasks] == [
        "bias", "dark", "flat", "bootstrap", "detectorMap", "fitFiberProfiles", "fiberNorms",
    ]
    for stage in pipetasks:
        assert Path(stage.pipeline).is_file(), stage.pipeline
    assert plan.stage("bootstrap").query == "instrument='PFS' AND visit IN (41, 31)"
    assert plan.stage("fiberNorms").query.endswith("'FLAT' AND dither = 0")
    profiles = plan.stage("define-profiles")
    assert profiles.profiles_run == "demo_br"
    assert [(g.bright, g.dark) for g in profiles.groups] == [("51..52", "53..54"), ("55..56", "57..58")]


def test_pfs_template_needs_drp_stella_dir(tmp_path: Path) -> None:
    path = write(tmp_path, render_template("pfs", "/data/repo", "u/me"))
    err = load_error(tmp_path, path.read_text(), env={})
    assert "DRP_STELLA_DIR is not set" in str(err)
    plan = load_plan(path, env=ENV)
    assert plan.instrument == "lsst.obs.pfs.PrimeFocusSpectrograph"
    assert len(plan.stages) == 28
    assert plan.stage("certify-flat").dataset_type == "fiberFlat"
    assert plan.stage("verify-flat").dataset_type == "fiberFlat" and plan.stage("certify-flat").after == ["verify-flat"]


def test_template_without_repo_uses_datastore_variable(tmp_path: Path) -> None:
    text = render_template("pfs", None, "u/me")
    assert 'repository: "${DATASTORE}"' in text
    plan = parse_plan(text, env={**ENV, "DATASTORE": "/work/datastore"})
    assert plan.repository == "/work/datastore"


def test_template_quotes_odd_reruns_and_paths(tmp_path: Path) -> None:
    text = render_template("demo", "/data/my repo: #1", "u/o:brien=1")
    plan = parse_plan(text, env=ENV)
    assert plan.repository == "/data/my repo: #1" and plan.rerun == "u/o:brien=1"
    # A quote in a collection name is refused (names travel into argv, logs, journals and BPS files).
    with pytest.raises(PlanError, match="rerun.*contains \"'\".*use letters, digits"):
        parse_plan(render_template("demo", "/data/repo", "u/o'brien"), env=ENV)


def test_unknown_template() -> None:
    with pytest.raises(PlanError, match="unknown template.*pfs, demo"):
        render_template("hsc", None, "u/me")
    assert template_names() == ("pfs", "demo")


def test_plan_new_writes_atomically_and_refuses_to_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plans").mkdir()  # plan new writes into an existing folder (tests/security/test_cli_input.py)
    out = plan_new("demo", "repo", "u/me", "plans/demo.yaml")
    assert out == Path("plans/demo.yaml") and out.is_file()
    plan = load_plan(out, env=ENV)
    assert plan.repository == str(tmp_path.resolve() / "repo")  # made absolute at `plan new` time
    assert os.listdir(tmp_path / "plans") == ["demo.yaml"]  # no temporary files left
    before = out.read_text()
    with pytest.raises(PlanFileExistsError, match="already exists.*--force"):
        plan_new("pfs", "repo", "u/me", out)
    assert out.read_text() == before
    plan_new("pfs", "repo", "u/me", out, force=True)
    assert "lsst.obs.pfs.PrimeFocusSpectrograph" in out.read_text()
    assert os.listdir(tmp_path / "plans") == ["demo.yaml"]


def test_plan_new_rejects_a_bad_rerun_without_writing(tmp_path: Path) -> None:
    out = tmp_path / "p.yaml"
    with pytest.raises(PlanError, match="rerun"):
        plan_new("demo", "/r", "u/me/", out)
    assert not out.exists()
