"""Stage → argv: exact commands, no shell strings, and `plan show` output that a shell runs as shown."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import pfstui.demo
from pfstui.plan.argv import (
    CommandError,
    ToolNotFoundError,
    Tools,
    build_argv,
    describe,
    shell_format,
    shell_join,
    shell_quote,
)
from pfstui.plan.loader import load_plan, parse_plan
from pfstui.plan.model import PipetaskStage, Plan
from pfstui.plan.templates import render_template
from pfstui.queue.launch import plan_show

DEMO_DIR = str(Path(pfstui.demo.__file__).parent)
ENV = {"DRP_STELLA_DIR": "/opt/drp_stella", "PFSTUI_DEMO_DIR": DEMO_DIR}
TOOLS = Tools(pipetask=("pipetask",), butler=("butler",), pfstui=("pfstui",))
A = Path("/att")

PLAN = """\
version: 1
repository: /data/repo
instrument: lsst.obs.pfs.PrimeFocusSpectrograph
rerun: u/me
defaults: {processes: 4, fail_fast: true, log_level: pfs=INFO}
stages:
  - name: bias
    kind: pipetask
    pipeline: $DRP_STELLA_DIR/pipelines/bias.yaml
    inputs: [PFS/raw/sps, PFS/calib]
    output: bias
    query: "instrument='PFS' AND visit.target_name = 'BIAS'"
  - name: bias-again
    kind: pipetask
    pipeline: $DRP_STELLA_DIR/pipelines/bias.yaml
    inputs: [PFS/raw/sps, PFS/calib]
    output: /shared/bias
    query: "visit IN (11..13)"
    config: ["isr:demoFailOn=visit=12 arm=r spectrograph=1", "isr:doCrosstalk=False"]
    config_files: ["isr:/cfg/isr.py"]
    register_dataset_types: false
    skip_existing_in: [bias, /shared/bias]
    clobber_outputs: true
    processes: 2
    fail_fast: false
    extra_options: [--timeout, "600"]
  - name: certify
    kind: certify
    input: bias
    target: PFS/calib
    dataset_type: bias
    begin: 2000-01-01T00:00:00
  - name: certify-ids
    kind: certify
    input: /price/pipe2d-1036/dark/run16
    target: PFS/calib
    dataset_type: dark
    begin: 2024-05-01T00:00:00
    data_ids: ["instrument=PFS arm=r spectrograph=2", {arm: b, spectrograph: 1}]
  - name: certify-all
    kind: certify
    input: bias
    target: PFS/calib
    dataset_type: bias
    end: 2050-12-31T23:59:59
    search_all_inputs: true
  - name: candidates
    kind: certify-candidates
    collection: detectorMap
    target: PFS/calib
    begin: 2000-01-01T00:00:00
    end: 2050-12-31T23:59:59
  - name: profiles
    kind: define-profiles
    instrument: PFS
    profiles_run: run18_brn
    update: true
    groups:
      - {bright: 113855..113863, dark: 113845..113853}
      - {bright: 113903..113911, dark: 113893..113901}
  - name: clean
    kind: clean
    glob: bias/*
    dataset_types: [biasProc, biasProc_metadata]
    where: "arm = 'r'"
  - name: decertify
    kind: decertify
    collection: PFS/calib
    dataset_type: dark
    begin: 2024-08-24T00:00:00
    data_ids: [{instrument: PFS, arm: r, spectrograph: 2}]
"""


@pytest.fixture
def plan() -> Plan:
    return parse_plan(PLAN, env=ENV)


def argv(plan: Plan, name: str, first_run: bool = True) -> list[str]:
    return build_argv(plan, name, attempt_dir=A, first_run=first_run, tools=TOOLS)


def test_pipetask_argv_is_exact(plan: Plan) -> None:
    assert argv(plan, "bias") == [
        "pipetask", "--long-log", "--log-level", "pfs=INFO", "--log-file", "/att/bias.log.json",
        "run", "--register-dataset-types", "-j", "4", "-b", "/data/repo",
        "--instrument", "lsst.obs.pfs.PrimeFocusSpectrograph",
        "-i", "PFS/raw/sps,PFS/calib", "-o", "u/me/bias",
        "-p", "/opt/drp_stella/pipelines/bias.yaml",
        "-d", "instrument='PFS' AND visit.target_name = 'BIAS'",
        "--fail-fast", "--summary", "/att/bias.summary.json",
    ]  # fmt: skip


def test_pipetask_overrides(plan: Plan) -> None:
    assert argv(plan, "bias-again") == [
        "pipetask", "--long-log", "--log-level", "pfs=INFO", "--log-file", "/att/bias-again.log.json",
        "run", "-j", "2", "-b", "/data/repo", "--instrument", "lsst.obs.pfs.PrimeFocusSpectrograph",
        "-i", "PFS/raw/sps,PFS/calib", "-o", "shared/bias",
        "-p", "/opt/drp_stella/pipelines/bias.yaml", "-d", "visit IN (11..13)",
        "-c", "isr:demoFailOn=visit=12 arm=r spectrograph=1", "-c", "isr:doCrosstalk=False",
        "-C", "isr:/cfg/isr.py", "--skip-existing-in", "u/me/bias,shared/bias", "--clobber-outputs",
        "--summary", "/att/bias-again.summary.json", "--timeout", "600",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "setting, first_run, expected",
    [("auto", True, True), ("auto", False, False), ("true", True, True), ("true", False, True),
     ("false", True, False), ("false", False, False)],
)  # fmt: skip
def test_register_dataset_types_only_on_first_run(setting: str, first_run: bool, expected: bool) -> None:
    text = PLAN.replace("    output: bias\n", f"    output: bias\n    register_dataset_types: {setting}\n", 1)
    plan = parse_plan(text, env=ENV)
    assert ("--register-dataset-types" in argv(plan, "bias", first_run)) is expected


def test_certify_runs_pfstuis_own_action_on_the_whole_product_and_omits_an_open_bound(plan: Plan) -> None:
    assert argv(plan, "certify") == [
        "pfstui", "certify", "/data/repo", "u/me/bias", "PFS/calib", "bias",
        "--begin-date", "2000-01-01T00:00:00", "--whole-product", "--stage", "certify", "--yes",
    ]  # fmt: skip


def test_certify_with_data_ids_or_all_inputs(plan: Plan) -> None:
    assert argv(plan, "certify-ids") == [
        "pfstui", "certify", "/data/repo", "price/pipe2d-1036/dark/run16", "PFS/calib", "dark",
        "--begin-date", "2024-05-01T00:00:00",
        "--id", "instrument=PFS", "arm=r", "spectrograph=2", "--id", "arm=b", "spectrograph=1", "--whole-product",
        "--stage", "certify-ids", "--yes",
    ]  # fmt: skip
    assert argv(plan, "certify-all") == [
        "pfstui", "certify", "/data/repo", "u/me/bias", "PFS/calib", "bias",
        "--end-date", "2050-12-31T23:59:59", "--search-all-inputs", "--stage", "certify-all", "--yes",
    ]  # fmt: skip


def test_certify_carries_the_operators_overrides_of_failing_cameras() -> None:
    text = PLAN.replace("    begin: 2000-01-01T00:00:00\n", "    begin: 2000-01-01T00:00:00\n    override:\n"
                        "      arm=r spectrograph=1: offset known, re-taken Monday\n      b2: 'hot column; masked'\n", 1)
    assert argv(parse_plan(text, env=ENV), "certify") == [
        "pfstui", "certify", "/data/repo", "u/me/bias", "PFS/calib", "bias", "--begin-date", "2000-01-01T00:00:00",
        "--override", "arm=r spectrograph=1=offset known, re-taken Monday", "--override", "b2=hot column; masked",
        "--whole-product", "--stage", "certify", "--yes",
    ]  # fmt: skip


def test_pfstui_helper_commands(plan: Plan) -> None:
    assert argv(plan, "candidates") == [
        "pfstui", "certify-detectormaps", "/data/repo", "u/me/detectorMap", "PFS/calib", "--instrument", "PFS",
        "--begin-date", "2000-01-01T00:00:00", "--end-date", "2050-12-31T23:59:59", "--stage", "candidates", "--yes",
    ]  # fmt: skip
    assert argv(plan, "profiles") == [
        "pfstui", "define-profiles", "/data/repo", "PFS", "run18_brn",
        "--bright", "113855..113863", "--dark", "113845..113853",
        "--bright", "113903..113911", "--dark", "113893..113901", "--update", "--stage", "profiles", "--yes",
    ]  # fmt: skip
    assert argv(plan, "clean") == [
        "pfstui", "clean", "/data/repo", "u/me/bias/*", "biasProc", "biasProc_metadata", "--where", "arm = 'r'",
        "--stage", "clean", "--yes",
    ]  # fmt: skip
    assert argv(plan, "decertify") == [
        "pfstui", "decertify", "/data/repo", "PFS/calib", "dark", "--begin-date", "2024-08-24T00:00:00",
        "--id", "instrument=PFS", "arm=r", "spectrograph=2", "--stage", "decertify", "--yes",
    ]  # fmt: skip


def test_a_butler_stage_names_its_attempt_from_its_attempt_folder(plan: Plan, tmp_path: Path) -> None:
    """The journal entry names the stage and attempt: the supervisor's attempt folder says which attempt."""
    from pfstui.plan.argv import attempt_number
    from pfstui.queue.launch import attempt_dir

    folder = attempt_dir(tmp_path, "certify", 3)
    assert attempt_number(folder) == 3 and attempt_number(tmp_path) is None
    got = build_argv(plan, "certify", attempt_dir=folder, first_run=True, tools=TOOLS)
    assert got[-5:] == ["--stage", "certify", "--attempt", "3", "--yes"]


def test_a_certify_candidates_stage_names_its_run_relative_to_the_rerun(plan: Plan) -> None:
    stage = plan.stage("candidates").model_copy(update={"run": "detectorMap/20250101T000000Z"})
    got = build_argv(plan, stage, attempt_dir=A, first_run=True, tools=TOOLS)
    assert got[got.index("--run") + 1] == "u/me/detectorMap/20250101T000000Z"
    assert describe(stage, plan).startswith("certify detectorMap_candidate from u/me/detectorMap (RUN "
                                            "u/me/detectorMap/20250101T000000Z) as detectorMap_calib")
    written = PLAN.replace("    collection: detectorMap\n", "    collection: detectorMap\n    run: detectorMap/r2\n")
    assert parse_plan(written, env=ENV).stage("candidates").run == "detectorMap/r2"
    with pytest.raises(Exception, match="run 'u/me/detectorMap/r2' already starts with the rerun"):
        parse_plan(written.replace("run: detectorMap/r2", "run: u/me/detectorMap/r2"), env=ENV)


def test_unknown_stage_name(plan: Plan) -> None:
    with pytest.raises(CommandError, match="no stage 'nope'.*bias-again"):
        argv(plan, "nope")


def test_argv_has_no_shell_strings_and_round_trips_through_shell_quoting() -> None:
    plan = parse_plan(render_template("pfs", "/data/my repo", "u/me"), env=ENV)
    for stage in plan.stages:
        args = build_argv(plan, stage, attempt_dir=Path("/a b"), first_run=True, tools=TOOLS)
        assert all(isinstance(a, str) and a for a in args)
        assert shlex.split(shell_join(args)) == args
        # bash drops backslash-newline; shlex does not know that rule
        assert shlex.split(shell_format(args).replace("\\\n", "")) == args
        for arg in args:
            assert arg == arg.strip() and arg.count('"') == 0 and arg.count("'") % 2 == 0, arg
        if isinstance(stage, PipetaskStage):
            assert args[args.index("-d") + 1] == stage.query  # one item, no added quotes
            assert args[args.index("-b") + 1] == "/data/my repo"
            assert args[args.index("--log-file") + 1] == f"/a b/{stage.name}.log.json"


def test_shell_quote_is_readable_and_safe() -> None:
    assert shell_quote("instrument='PFS'") == "\"instrument='PFS'\""
    assert shell_quote("plain") == "plain"
    for nasty in ["a'$HOME'", "it's `x`", "don't!", "x'\ny", 'say "hi" \'x\'', "back\\slash'"]:
        assert shlex.split(shell_quote(nasty)) == [nasty]
        out = subprocess.run(["bash", "-c", f"printf %s {shell_quote(nasty)}"], capture_output=True, text=True)
        assert out.stdout == nasty


def test_describe_is_one_line_per_kind(plan: Plan) -> None:
    lines = {s.name: describe(s, plan) for s in plan.stages}
    assert lines["bias"] == "run bias.yaml on instrument='PFS' AND visit.target_name = 'BIAS' → u/me/bias"
    assert lines["certify"] == "certify bias from u/me/bias into PFS/calib, 2000-01-01T00:00:00 … open"
    assert lines["certify-ids"].endswith("2 data IDs")
    assert lines["profiles"] == "define fiber-profiles run run18_brn (PFS): 2 groups"
    assert lines["clean"] == "delete biasProc, biasProc_metadata from RUN collections u/me/bias/* where arm = 'r'"
    assert describe(plan.stage("clean")) .endswith("RUN collections bias/* where arm = 'r'")
    assert all("\n" not in line for line in lines.values())


# ---------------------------------------------------------------------------------------- tools


def test_tools_prefer_the_interpreter_folder(tmp_path: Path) -> None:
    bindir = tmp_path / "venv" / "bin"
    bindir.mkdir(parents=True)
    python = bindir / "python"
    for name in ("python", "pipetask"):
        (bindir / name).write_text("#!/bin/sh\n")
        (bindir / name).chmod(0o755)
    (bindir / "butler").write_text("not executable")
    other = tmp_path / "path"
    other.mkdir()
    (other / "butler").write_text("#!/bin/sh\n")
    (other / "butler").chmod(0o755)
    tools = Tools.discover(python=str(python), path=str(other))
    assert tools.command("pipetask") == [str(bindir / "pipetask")]
    assert tools.command("butler") == [str(other / "butler")]
    assert tools.command("pfstui") == [str(python), "-m", "pfstui"]  # fallback
    missing = Tools.discover(python=str(python), path=str(tmp_path / "empty"))
    assert missing.butler is None
    with pytest.raises(ToolNotFoundError, match=r"butler not found \(looked in .*venv/bin and PATH\); install"):
        missing.command("butler")


def test_tools_default_to_this_venv() -> None:
    tools = Tools.discover()
    venv_bin = Path(sys.executable).parent
    assert tools.command("pipetask") == [str(venv_bin / "pipetask")]
    assert tools.command("butler") == [str(venv_bin / "butler")]


# ---------------------------------------------------------------------------------------- plan show


SEED_PIPELINES = ["bias", "dark", "flat", "bootstrap", "detectorMap", "fitFiberProfiles", "fiberNorms"]


def commands_of(text: str) -> list[tuple[str, list[str]]]:
    """(stage name from the comment line, argv) for each command in `plan show` output."""
    out: list[tuple[str, list[str]]] = []
    name = None
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith("# ") and "(" in line and not line.startswith("# Plan") and not line.startswith(("# (c", "# env:")):
            name = line[2:].split(" ")[0]
        elif line and not line.startswith("#"):
            cmd = line
            while cmd.endswith("\\"):
                cmd = cmd[:-1] + next(lines)
            out.append((name, shlex.split(cmd)))
    return out


def test_plan_show_pfs_template_is_the_corrected_seed(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(render_template("pfs", "/work/datastore", "u/me"))
    text = plan_show(path, env=ENV, tools=TOOLS, attempt_dir="/logs")
    cmds = commands_of(text)
    assert len(cmds) == 28

    pipetasks = [(n, a) for n, a in cmds if a[0] == "pipetask"]
    assert [Path(a[a.index("-p") + 1]).stem for _, a in pipetasks] == SEED_PIPELINES
    assert [n for n, _ in pipetasks] == SEED_PIPELINES
    for _, a in pipetasks:
        assert a[a.index("-p") + 1].startswith("/opt/drp_stella/pipelines/")
        assert "--register-dataset-types" in a and "--fail-fast" in a
        assert a[a.index("-j") + 1] == "16" and a[a.index("--instrument") + 1] == "lsst.obs.pfs.PrimeFocusSpectrograph"
        assert not any("exposure" in x for x in a)
    by_name = dict(pipetasks)
    assert by_name["bias"][by_name["bias"].index("-i") + 1] == "PFS/raw/sps,PFS/calib"
    boot = by_name["bootstrap"]
    assert boot[boot.index("-d") + 1] == "instrument='PFS' AND visit IN (11, 22)"
    assert boot[boot.index("-i") + 1] == "PFS/raw/all,PFS/raw/pfsConfig,PFS/calib"
    assert [boot[i + 1] for i, x in enumerate(boot) if x == "-c"] == [
        "isr:doCrosstalk=False", "bootstrap:profiles.profileRadius=2", "bootstrap:profiles.profileSwath=2500",
        "bootstrap:profiles.profileOversample=3", "bootstrap:spectralOffset=-10",
    ]  # fmt: skip
    dm = by_name["detectorMap"]
    assert dm[dm.index("-i") + 1] == "PFS/raw/all,PFS/raw/pfsConfig,PFS/bootstrap,PFS/calib"
    assert [dm[i + 1] for i, x in enumerate(dm) if x == "-c"] == [
        "measureCentroids:connections.calibDetectorMap=detectorMap_bootstrap",
        "gatherSlitOffsets:connections.slitOffsets=detectorMap_bootstrap.slitOffsets",
        "fitDetectorMap:fitDetectorMap.doSlitOffsets=True",
        "fitDetectorMap:fitDetectorMap.order=4",
        "fitDetectorMap:fitDetectorMap.soften=0.03",
    ]
    fp = by_name["fitFiberProfiles"]
    assert fp[fp.index("-d") + 1] == "profiles_run = 'run18_brn'"
    assert fp[fp.index("-i") + 1] == "PFS/raw/all,PFS/fiberProfilesInputs,PFS/raw/pfsConfig,PFS/calib"
    fn = by_name["fiberNorms"]
    assert fn[fn.index("-d") + 1] == "instrument='PFS' AND visit.target_name = 'FLAT' AND dither = 0.0"

    certs = [a for _, a in cmds if "certify" in a[1]]
    dates = ["--begin-date", "2000-01-01T00:00:00", "--end-date", "2050-12-31T23:59:59"]
    certify = ["pfstui", "certify", "/work/datastore"]

    def ending(name: str, whole: bool = True) -> list[str]:
        return ["--whole-product"] * whole + ["--stage", name, "--yes"]

    assert certs == [
        certify + ["u/me/bias", "PFS/calib", "bias"] + dates + ending("certify-bias"),
        certify + ["u/me/dark", "PFS/calib", "dark"] + dates + ending("certify-dark"),
        certify + ["u/me/flat", "PFS/calib", "fiberFlat"] + dates + ending("certify-flat"),
        certify + ["u/me/bootstrap", "PFS/bootstrap", "detectorMap_bootstrap"] + dates + ending("certify-bootstrap"),
        ["pfstui", "certify-detectormaps", "/work/datastore", "u/me/detectorMap", "PFS/calib", "--instrument", "PFS"]
        + dates + ending("certify-detectorMap", whole=False),
        certify + ["u/me/fitFiberProfiles", "PFS/calib", "fiberProfiles"] + dates + ending("certify-fiberProfiles"),
        certify + ["u/me/fiberNorms", "PFS/calib", "fiberNorms_calib"] + dates + ending("certify-fiberNorms"),
    ]
    verifies = [a for _, a in cmds if a[1] == "verify"]  # read-only: no --stage/--yes ending, nothing journaled
    assert verifies == [["pfstui", "verify", "/work/datastore", f"u/me/{run}", product, "--against", "PFS/calib",
                         "--at", "2000-01-01T00:00:00"] for run, product in
                        (("bias", "bias"), ("dark", "dark"), ("flat", "fiberFlat"),
                                         ("detectorMap", "detectorMap_candidate"),
                                         ("fitFiberProfiles", "fiberProfiles"), ("fiberNorms", "fiberNorms_calib"))]
    cleans = [a[3:] for _, a in cmds if a[1] == "clean"]
    assert cleans == [
        ["u/me/bias/*", "biasProc", "--stage", "clean-bias", "--yes"],
        ["u/me/dark/*", "darkProc", "--stage", "clean-dark", "--yes"],
        ["u/me/flat/*", "flatProc", "--stage", "clean-flat", "--yes"],
        ["u/me/bootstrap/*", "postISRCCD", "--stage", "clean-bootstrap", "--yes"],
        ["u/me/detectorMap/*", "postISRCCD", "--stage", "clean-detectorMap", "--yes"],
        ["u/me/fitFiberProfiles/*", "postISRCCD", "--stage", "clean-fitFiberProfiles", "--yes"],
        ["u/me/fiberNorms/*", "postISRCCD", "--stage", "clean-fiberNorms", "--yes"],
    ]
    # the seed's order: build → certify → clean per product, profiles defined before fitFiberProfiles
    assert [n for n, _ in cmds] == [
        "bias", "verify-bias", "certify-bias", "clean-bias", "dark", "verify-dark", "certify-dark", "clean-dark",
        "flat", "verify-flat", "certify-flat", "clean-flat", "bootstrap", "certify-bootstrap", "clean-bootstrap",
        "detectorMap", "verify-detectorMap", "certify-detectorMap", "clean-detectorMap", "define-profiles",
        "fitFiberProfiles", "verify-fitFiberProfiles", "certify-fiberProfiles", "clean-fitFiberProfiles", "fiberNorms",
        "verify-fiberNorms", "certify-fiberNorms", "clean-fiberNorms",
    ]  # fmt: skip
    profiles = next(a for n, a in cmds if n == "define-profiles")
    assert profiles[:5] == ["pfstui", "define-profiles", "/work/datastore", "PFS", "run18_brn"]
    assert profiles.count("--bright") == 4 and profiles.count("--dark") == 4
    # each shown command is exactly what the supervisor would run
    plan = load_plan(path, env=ENV)
    for (name, shown) in cmds:
        assert shown == build_argv(plan, name, attempt_dir=Path("/logs"), first_run=True, tools=TOOLS)


def test_plan_show_output_runs_in_a_shell_as_shown(tmp_path: Path) -> None:
    """Paste test: bash runs the shown text; a recorder stands in for each program and logs its argv."""
    record = tmp_path / "argv.jsonl"
    recorder = tmp_path / "recorder"
    recorder.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"with open({str(record)!r}, 'a') as f:\n    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    recorder.chmod(0o755)
    tools = Tools(pipetask=(str(recorder), "pipetask"), butler=(str(recorder), "butler"), pfstui=(str(recorder), "pfstui"))
    # a multi-line query with quotes, a literal $ and backquotes: none of it may reach a shell as code
    text = PLAN.replace('query: "visit IN (11..13)"', "query: |-\n      visit IN (11..13) AND\n      note = 'it''s $$HOME `x`!'")
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    shown = plan_show(path, env=ENV, tools=tools, attempt_dir=tmp_path / "logs dir")
    script = tmp_path / "shown.sh"
    script.write_text(shown)
    subprocess.run(["bash", "-e", str(script)], check=True, timeout=60)
    ran = [json.loads(line) for line in record.read_text().splitlines()]
    plan = load_plan(path, env=ENV)
    expected = [
        build_argv(plan, s, attempt_dir=tmp_path / "logs dir", first_run=True, tools=tools)[1:]
        for s in plan.ordered_stages()
    ]
    assert ran == expected
    assert "visit IN (11..13) AND\nnote = 'it''s $HOME `x`!'" in ran[1]


def test_plan_show_demo_template(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(render_template("demo", str(tmp_path / "repo"), "u/demo"))
    cmds = commands_of(plan_show(path, env={"PFSTUI_DEMO_DIR": DEMO_DIR}, tools=TOOLS))
    pipetasks = [a for _, a in cmds if a[0] == "pipetask"]
    assert [Path(a[a.index("-p") + 1]).stem for a in pipetasks] == SEED_PIPELINES
    assert all(a[a.index("-j") + 1] == "1" for a in pipetasks)
    assert all(a[a.index("--instrument") + 1] == "pfstui.demo.instrument.DemoPrimeFocusSpectrograph" for a in pipetasks)
    assert all(Path(a[a.index("-p") + 1]).is_file() for a in pipetasks)


# ---------------------------------------------------------------------------------------- real tools


@pytest.mark.integration
def test_demo_argv_runs_with_the_real_lsst_tools(demo_repo: Path, tool_env: dict[str, str], tmp_path: Path) -> None:
    """The built commands are accepted by the real pipetask and butler: bias, certify, bias again."""
    path = tmp_path / "demo.yaml"
    path.write_text(render_template("demo", str(demo_repo), "u/test"))
    plan = load_plan(path, env=tool_env)
    tools = Tools.discover()
    for name, first_run in (("bias", True), ("certify-bias", True), ("bias", False)):
        attempt = tmp_path / f"{name}-{first_run}"
        attempt.mkdir()
        args = build_argv(plan, name, attempt_dir=attempt, first_run=first_run, tools=tools)
        assert ("--register-dataset-types" in args) is (name == "bias" and first_run)
        done = subprocess.run(args, env=tool_env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        if name == "bias":
            report = json.loads((attempt / "bias.summary.json").read_text())
            assert report["status"] == "success"
            assert (attempt / "bias.log.json").stat().st_size > 0
    from lsst.daf.butler import Butler

    butler = Butler.from_config(str(demo_repo))
    refs = list(butler.registry.queryDatasetAssociations("bias", collections="PFS/calib"))
    assert len(refs) == 4  # 2 arms x 2 spectrographs, certified from u/test/bias
    assert all(a.ref.run.startswith("u/test/bias/") for a in refs)
