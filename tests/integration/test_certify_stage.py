"""A plan's certify and clean stages run pfstui's own actions through the supervisor (real pipetask, real
subprocesses): the stage log shows the preview and the result, the journal entry names the stage and attempt,
`pfstui undo` restores the registry exactly, an overlap is one line, and a certify after a partial rerun takes
the whole product."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pfstui.infra.paths as paths
from pfstui.infra.journal import Journal
from tests.butler.test_whole_product import seed_partial_rerun
from tests.queue.test_supervisor import CERTIFY_BIAS, bias_stage, write_plan

pytestmark = pytest.mark.integration

PFSTUI = [sys.executable, "-m", "pfstui"]
CLEAN_BIAS = """  - name: clean-bias
    kind: clean
    after: [certify-bias]
    glob: "bias/*"
    dataset_types: [biasProc]
"""


@pytest.fixture
def env(tool_env: dict[str, str], tmp_path: Path, monkeypatch) -> dict[str, str]:
    """The environment of the pfstui commands; this process reads the same state folder (journal, sessions)."""
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    return dict(tool_env, PFSTUI_STATE_DIR=str(tmp_path / "state"), PFSTUI_SUPERVISOR_IDLE="5")


def pfstui(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(PFSTUI + [str(a) for a in args], env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def run_plan(env: dict[str, str], plan: Path, stages: int) -> None:
    done = pfstui(env, "run", plan, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"Finished: {stages} done, 0 skipped, 0 not done" in done.stdout


def calibration_state(repo: Path, collection: str = "PFS/calib") -> set[tuple]:
    """Every association of every calibration dataset type in ``collection``."""
    from lsst.daf.butler import Butler

    with Butler.from_config(str(repo)) as butler:
        return {(dt.name, str(a.ref.id), tuple(sorted(a.ref.dataId.required.items())), a.timespan.nsec)
                for dt in butler.registry.queryDatasetTypes() if dt.isCalibration()
                for a in butler.registry.queryDatasetAssociations(dt, [collection])}


def butler_entries() -> list:
    return [e for e in Journal(paths.state_dir() / "journal.jsonl").entries()[0] if e.get("kind") == "butler"]


def attempt_of(repo: Path, plan: Path, stage: str) -> dict:
    state = json.loads((paths.session_dir(repo, plan) / "state.json").read_text())
    return next(s for s in state["stages"] if s["id"] == stage)["attempts"][-1]


def test_a_plan_certify_stage_is_journaled_undoable_and_refuses_an_overlap_in_one_line(
        demo_repo: Path, env: dict[str, str], tmp_path: Path):
    before = calibration_state(demo_repo)
    plan = write_plan(tmp_path, demo_repo, bias_stage() + CERTIFY_BIAS + CLEAN_BIAS)
    run_plan(env, plan, 3)
    certify, clean = butler_entries()
    assert certify["action"] == "certify" and certify["origin"] == {"stage": "certify-bias", "attempt": 1}
    assert clean["action"] == "clean" and clean["origin"] == {"stage": "clean-bias", "attempt": 1}
    assert len(certify["effect"]["added"]) == 4 and len(calibration_state(demo_repo) - before) == 4
    attempt = attempt_of(demo_repo, plan, "certify-bias")
    assert attempt["argv"][-5:] == ["--stage", "certify-bias", "--attempt", "1", "--yes"]
    log = Path(attempt["log_path"]).read_text()
    assert "certify 4 bias from u/test/bias/" in log  # the preview ...
    assert "Certified 4 bias in PFS/calib" in log and f"Journal entry {certify.id}" in log  # ... and the result

    listed = pfstui(env, "journal")
    assert listed.returncode == 0 and "certify-bias#1" in listed.stdout, listed.stdout
    undo = pfstui(env, "undo", certify.id, "--yes")
    assert undo.returncode == 0, undo.stderr
    assert calibration_state(demo_repo) == before
    assert butler_entries()[-1]["undoes"] == certify.id

    # An overlap: what `butler certify-calibrations` ended in a ConflictingDefinitionError traceback.
    from lsst.daf.butler import Butler, Timespan

    with Butler.from_config(str(demo_repo), writeable=True) as butler:
        refs = list(butler.query_datasets("bias", collections="u/test/bias"))
        butler.registry.certify("PFS/calib", refs, Timespan(None, None))
    n_entries = len(butler_entries())
    log = tmp_path / "again.log"
    buffered = {k: v for k, v in env.items() if k != "PYTHONUNBUFFERED"}  # as on an operator's host
    with log.open("w") as out:  # as the supervisor runs a stage: stdout and stderr into one log file
        again = subprocess.run(attempt["argv"], env=buffered, stdout=out, stderr=subprocess.STDOUT, timeout=120,
                               stdin=subprocess.DEVNULL)
    lines = log.read_text().splitlines()
    assert again.returncode == 2 and "Traceback" not in log.read_text()
    assert lines[0].startswith("certify 0 bias") and sum("CONFLICT" in line for line in lines) == 4
    assert lines[-1].startswith("pfstui: error: certify refused, nothing written: 4 conflicts"), lines
    assert not any(line.startswith("pfstui: error") for line in lines[:-1])
    # The same argv with --dry-run is the preview an approval shows: refused, nothing written either way.
    dry = subprocess.run(attempt["argv"] + ["--dry-run"], env=env, capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert dry.returncode == 1 and "would be refused" in dry.stderr and dry.stdout.startswith("certify 0 bias")
    assert len(butler_entries()) == n_entries


def test_a_certify_stage_after_a_partial_rerun_certifies_every_camera(demo_repo: Path, env: dict[str, str],
                                                                      tmp_path: Path):
    runs = seed_partial_rerun(demo_repo, "u/test/bias")
    plan = write_plan(tmp_path, demo_repo, CERTIFY_BIAS.replace("    after: [bias]\n", ""))
    run_plan(env, plan, 1)
    (entry,) = butler_entries()
    added = {f"{a['data_id']['arm']}{a['data_id']['spectrograph']}": a["run"] for a in entry["effect"]["added"]}
    assert added == {cam: run for run, cams in runs.items() for cam in cams}
    log = Path(attempt_of(demo_repo, plan, "certify-bias")["log_path"]).read_text()
    assert "the newest bias of each data ID across its 2 RUNs" in log
