"""The verify tests' repository: a good bias certified and a bias whose r1 is spoiled, made by real pipetask runs.

Why session-scoped here: ``pfstui verify`` (test_verify) and the certify gate (test_gate) both read it, and each
build takes a minute or more; it is shared read-only, and a test that certifies copies it first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.test_workflow import BIN, certify, pipetask, run
from tests.pg import copy_repo

BIAS_QUERY = "instrument='PFS' AND visit.target_name = 'BIAS'"
GOOD, BAD = "u/ci/bias", "u/ci/badbias"
BAD_CAMERA = "arm=r spectrograph=1"
CAMERAS = ["arm=b spectrograph=1", "arm=b spectrograph=2", BAD_CAMERA, "arm=r spectrograph=2"]


@pytest.fixture(scope="session")
def bias_repo(demo_repo_template: Path, tmp_path_factory) -> Path:
    """The demo repository with a good bias certified in PFS/calib and a bias whose r1 is spoiled in BAD."""
    import pfstui.demo

    root = tmp_path_factory.mktemp("verify")
    repo = copy_repo(demo_repo_template, root / "repo")
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               PFSTUI_DEMO_DIR=str(Path(pfstui.demo.__file__).parent), PFSTUI_STATE_DIR=str(root / "state"))
    run(pipetask(repo, "bias", "PFS/raw/sps,PFS/calib", BIAS_QUERY), env, root / "bias.log")
    run(certify(repo, "bias", "PFS/calib", "bias"), env, root / "certify.log")
    bad = pipetask(repo, "bias", "PFS/raw/sps,PFS/calib", BIAS_QUERY, "cpBiasCombine:demoOffsetOn=arm:r,spectrograph:1")
    bad[bad.index("-o") + 1] = BAD
    run(bad, env, root / "bad.log")
    return repo
