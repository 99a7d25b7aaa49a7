"""Approval gates through the real supervisor, pipetask and Butler: a stage with ``approve: true`` waits once its
dependencies are done, shows the exact preview of what it would change, and runs only after an operator's yes,
writing exactly that change (journaled, undoable); a no skips it; a change of the registry after the approval
makes the stage refuse instead of writing something else."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from pfstui.infra.journal import Journal
from tests.integration.test_certify_stage import PFSTUI, attempt_of, calibration_state, env, pfstui  # noqa: F401
from tests.queue.test_supervisor import CERTIFY_BIAS, bias_stage, write_plan

pytestmark = pytest.mark.integration

GATED = CERTIFY_BIAS.replace("    kind: certify\n", "    kind: certify\n    approve: true\n")


def status(env: dict[str, str], plan: Path) -> dict:
    out = pfstui(env, "status", "--json", "--plan", plan)
    assert out.returncode == 0, out.stderr
    return {s["id"]: s for s in json.loads(out.stdout)["stages"]}


def wait_for(env: dict[str, str], plan: Path, what: str, predicate, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stages = status(env, plan)
        if predicate(stages):
            return stages
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {json.dumps(stages, indent=1)[-3000:]}")


def journal(state: Path) -> list:
    return Journal(state / "journal.jsonl").entries()[0]


def start_run(env: dict[str, str], plan: Path) -> subprocess.Popen:
    return subprocess.Popen(PFSTUI + ["run", str(plan)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, stdin=subprocess.DEVNULL)


def preview_ready(stages: dict) -> bool:
    s = stages.get("certify-bias")  # None until `pfstui run` has loaded the plan
    return s is not None and s["status"] == "waiting" and s["preview"] is not None and s["preview"]["state"] == "ready"


def test_a_gated_certify_waits_shows_its_preview_and_certifies_exactly_that_once_approved(
        demo_repo: Path, env: dict[str, str], tmp_path: Path):
    before = calibration_state(demo_repo)
    plan = write_plan(tmp_path, demo_repo, bias_stage() + GATED)
    run = start_run(env, plan)
    try:
        stages = wait_for(env, plan, "certify-bias's preview", preview_ready)
        assert stages["bias"]["status"] == "done" and not Path(tmp_path / "nothing").exists()
        preview = stages["certify-bias"]["preview"]
        cameras = {" ".join(line.split()[3:5]) for line in preview["text"].splitlines() if line.strip().startswith("+ add")}
        assert len(cameras) == 4, preview["text"]
        assert calibration_state(demo_repo) == before  # nothing written while it waits
        assert stages["certify-bias"]["waiting"][0]["kind"] == "approval"

        approve = pfstui(env, "queue", "approve", "certify-bias", "--plan", plan, "--yes")
        assert approve.returncode == 0, approve.stderr
        assert preview["text"].splitlines()[0] in approve.stdout  # the CLI showed what it approved
        out, _ = run.communicate(timeout=300)
    finally:
        run.kill()
    assert run.returncode == 0 and "Finished: 2 done" in out, out
    attempt = attempt_of(demo_repo, plan, "certify-bias")
    assert attempt["argv"][-2:] == ["--approved", preview["digest"]]
    entries = journal(tmp_path / "state")
    approval = next(e for e in entries if e.get("event") == "approve")
    assert approval["stage"] == "certify-bias" and approval["preview"] == preview["digest"]
    (certify,) = [e for e in entries if e.get("kind") == "butler"]
    assert certify["origin"] == {"stage": "certify-bias", "attempt": 1} and len(certify["effect"]["added"]) == 4
    assert len(calibration_state(demo_repo) - before) == 4
    undo = pfstui(env, "undo", certify.id, "--yes")
    assert undo.returncode == 0, undo.stderr
    assert calibration_state(demo_repo) == before


def test_a_rejected_stage_is_skipped_and_journaled(demo_repo: Path, env: dict[str, str], tmp_path: Path):
    before = calibration_state(demo_repo)
    plan = write_plan(tmp_path, demo_repo, bias_stage() + GATED)
    run = start_run(env, plan)
    try:
        wait_for(env, plan, "certify-bias's preview", preview_ready)
        reject = pfstui(env, "queue", "reject", "certify-bias", "--plan", plan)
        assert reject.returncode == 0, reject.stderr
        out, _ = run.communicate(timeout=120)
    finally:
        run.kill()
    assert "1 done, 1 skipped" in out, out
    assert calibration_state(demo_repo) == before
    assert any(e.get("event") == "reject" and e["stage"] == "certify-bias" for e in journal(tmp_path / "state"))


def test_an_approved_stage_refuses_a_registry_that_changed_since_its_preview(
        demo_repo: Path, env: dict[str, str], tmp_path: Path):
    plan = write_plan(tmp_path, demo_repo, bias_stage() + GATED)
    run = start_run(env, plan)
    try:
        stages = wait_for(env, plan, "certify-bias's preview", preview_ready)
        digest = stages["certify-bias"]["preview"]["digest"]
        argv = stages["certify-bias"]["next_argv"]
    finally:
        run.kill()
        run.communicate(timeout=60)
    # Another operator certifies one camera meanwhile: the approved change is no longer what would be written.
    from lsst.daf.butler import Butler, Timespan

    with Butler.from_config(str(demo_repo), writeable=True) as butler:
        refs = list(butler.query_datasets("bias", collections="u/test/bias"))[:1]
        butler.registry.certify("PFS/calib", refs, Timespan(None, None))
    before = calibration_state(demo_repo)
    done = subprocess.run([*argv, "--approved", digest], env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode != 0 and "not what was approved" in done.stderr, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and calibration_state(demo_repo) == before
