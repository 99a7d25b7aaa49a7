"""A plan's verify stage under the supervisor (real pipetask, real subprocesses): the demo's bias with one camera
spoiled (``demoOffsetOn`` through the stage's config) fails its verify stage, so the certify after it never runs
and nothing is certified; the same plan with a good bias verifies, then certifies."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_certify_stage import attempt_of, calibration_state, env, pfstui  # noqa: F401 (fixture)
from tests.queue.test_supervisor import BEGIN, END, bias_stage, write_plan

pytestmark = pytest.mark.integration

SPOIL = "cpBiasCombine:demoOffsetOn=arm:r,spectrograph:1"
VERIFY_AND_CERTIFY = f"""  - name: verify-bias
    kind: verify
    after: [bias]
    collection: bias
    dataset_type: bias
    begin: {BEGIN}
  - name: certify-bias
    kind: certify
    after: [verify-bias]
    input: bias
    target: PFS/calib
    dataset_type: bias
    begin: {BEGIN}
    end: {END}
"""


def test_a_failing_camera_fails_the_verify_stage_and_the_certify_never_runs(demo_repo: Path, env: dict[str, str],
                                                                            tmp_path: Path):
    before = calibration_state(demo_repo)
    plan = write_plan(tmp_path, demo_repo, bias_stage([SPOIL]) + VERIFY_AND_CERTIFY)
    done = pfstui(env, "run", plan, timeout=600)
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Finished: 1 done, 0 skipped, 2 not done (verify-bias, certify-bias)" in done.stdout, done.stdout
    attempt = attempt_of(demo_repo, plan, "verify-bias")
    assert attempt["exit_code"] == 1
    assert attempt["argv"][-8:] == ["verify", str(demo_repo), "u/test/bias", "bias", "--against", "PFS/calib",
                                    "--at", BEGIN]
    log = Path(attempt["log_path"]).read_text()
    assert "FAILED: arm=r spectrograph=1 (" in log.splitlines()[-1], log
    status = pfstui(env, "status", "--plan", plan, "--repo", demo_repo)
    assert "certify-bias" in status.stdout and "dependency-failed" in status.stdout, status.stdout
    assert calibration_state(demo_repo) == before  # nothing certified


def test_a_good_product_passes_its_verify_stage_and_is_certified(demo_repo: Path, env: dict[str, str],
                                                                 tmp_path: Path):
    before = calibration_state(demo_repo)
    plan = write_plan(tmp_path, demo_repo, bias_stage() + VERIFY_AND_CERTIFY)
    done = pfstui(env, "run", plan, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Finished: 3 done, 0 skipped, 0 not done" in done.stdout
    log = Path(attempt_of(demo_repo, plan, "verify-bias")["log_path"]).read_text()
    assert log.splitlines()[-1].startswith("OK (arm=b spectrograph=1: pass"), log
    assert len(calibration_state(demo_repo) - before) == 4
