"""``pfstui verify`` on real demo products: a good bias certified, then a bias whose r1 the demoOffsetOn knob
spoiled, both built by real ``pipetask run`` subprocesses; the verdicts per camera and check, the FITS files the
demo writes, reading where the demo's classes cannot be imported, and the CLI's output and exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pfstui.butler.gateway import ButlerGateway
from pfstui.verify.report import verify
from tests.blocked_demo import SCRIPT
from tests.verify.conftest import BAD, BAD_CAMERA, CAMERAS, GOOD

pytestmark = pytest.mark.integration

COMPARISONS = {"diff_mean", "diff_noise", "diff_outliers"}


def verdicts(report) -> dict[str, dict[str, str]]:
    return {cam.camera: {c.name: c.verdict for c in cam.checks} for cam in report.cameras}


def test_the_spoiled_camera_fails_and_the_others_pass(bias_repo: Path):
    with ButlerGateway(str(bias_repo), read_only=True) as gw:
        report = verify(gw, BAD, "bias", against="PFS/calib")
    got = verdicts(report)
    assert list(got) == CAMERAS
    assert got[BAD_CAMERA] == {"mean": "fail", "noise": "pass", "outliers": "fail", "diff_mean": "fail",
                               "diff_noise": "pass", "diff_outliers": "fail"}
    for camera in CAMERAS:
        if camera != BAD_CAMERA:
            assert set(got[camera].values()) == {"pass"}, (camera, got[camera])
    assert report.failed == [BAD_CAMERA]
    bad = {c.name: c for c in report.cameras[2].checks}
    assert bad["diff_mean"].value == pytest.approx(50.0, abs=0.5)  # the knob's offset, measured
    assert bad["outliers"].amp == "1" and bad["outliers"].value == pytest.approx(3 / 16)  # 3 hot columns of 16
    assert set(bad["diff_mean"].per_amp) == {"1", "2", "3", "4"}  # per amplifier, from the FITS header
    assert report.cameras[2].current.startswith(f"{GOOD}/")


def test_without_a_certified_product_the_comparisons_are_not_applicable(bias_repo: Path):
    with ButlerGateway(str(bias_repo), read_only=True) as gw:
        report = verify(gw, GOOD, "bias")
    for cam in report.cameras:
        assert cam.current is None and cam.verdict == "pass"
        assert {c.name for c in cam.checks if c.verdict == "n/a"} == COMPARISONS


def test_after_the_certified_range_the_product_it_follows_is_compared(bias_repo: Path):
    """The good bias is certified until 2050-12-31: a range proposed from 2051 finds nothing certified at its begin
    and is compared with the product whose range ended last before it."""
    from astropy.time import Time

    with ButlerGateway(str(bias_repo), read_only=True) as gw:
        report = verify(gw, BAD, "bias", against="PFS/calib", at=Time("2051-06-01T00:00:00", scale="tai"))
    got = verdicts(report)
    assert got[BAD_CAMERA]["diff_mean"] == "fail"
    assert all(got[camera]["diff_mean"] == "pass" for camera in CAMERAS if camera != BAD_CAMERA)
    assert all(cam.current and cam.current.startswith(GOOD) for cam in report.cameras)


def test_the_demo_writes_its_bias_as_fits_in_the_lsst_layout(bias_repo: Path):
    from astropy.io import fits
    from lsst.daf.butler import Butler

    with Butler.from_config(str(bias_repo)) as butler:
        ref = butler.find_dataset("bias", instrument="PFS", arm="b", spectrograph=1, collections=GOOD)
        with fits.open(butler.getURI(ref).ospath) as hdus:
            assert [h.name for h in hdus] == ["PRIMARY", "IMAGE", "MASK", "VARIANCE"]
            assert hdus["IMAGE"].header["NAMP"] == 4 and hdus["IMAGE"].header["AMP4SEC"] == "[49:64,1:48]"
            assert (hdus["IMAGE"].data == butler.get(ref)).all()  # the formatter reads back what it wrote


def test_verify_reads_the_fits_where_the_formatter_cannot_be_imported(bias_repo: Path, tmp_path: Path):
    env = dict(os.environ, PFSTUI_STATE_DIR=str(tmp_path / "state"))
    argv = ["verify", str(bias_repo), BAD, "bias", "--against", "PFS/calib", "--json"]
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(bias_repo), BAD, "bias", *argv], check=False,
                          env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stdout + done.stderr
    first, report = done.stdout.split("\n", 1)
    assert first.startswith("this process cannot read a bias")
    report = json.loads(report)
    assert report["failed"] == [BAD_CAMERA]
    assert [c["verdict"] for c in report["cameras"]] == ["pass", "pass", "fail", "pass"]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    from pfstui.cli.main import main

    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_the_cli_prints_the_table_and_exits_1_when_a_camera_fails(bias_repo: Path, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    status, out, err = cli(capsys, "verify", str(bias_repo), BAD, "bias", "--at", "2030-01-01T00:00:00")
    assert status == 1 and err == ""
    lines = out.splitlines()
    assert lines[0] == "bias in u/ci/badbias, against PFS/calib at 2030-01-01T00:00:00.000 TAI"  # the default
    assert lines[1].split() == ["Camera", "Check", "Verdict", "Value", "Warn", "/", "fail", "Amp"]
    row = next(line for line in lines if line.startswith(BAD_CAMERA) and " diff_mean " in line)
    assert row.split()[3:6] == ["FAIL", "50", "ADU"]
    assert lines[-1].startswith(f"FAILED: {BAD_CAMERA} (")
    assert max(len(line) for line in lines[:-1]) <= 80

    status, out, err = cli(capsys, "verify", str(bias_repo), GOOD, "bias")
    assert status == 0 and out.splitlines()[-1].startswith("OK (arm=b spectrograph=1: pass")


def test_limit_overrides_change_the_verdict_and_show_in_the_table(bias_repo: Path, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    loose = ["--limit", "bias.mean=60,100", "--limit", "bias.outliers=0.2,0.5", "--limit", "bias.diff_mean=60,100",
             "--limit", "bias.diff_outliers=0.2,0.5"]
    status, out, err = cli(capsys, "verify", str(bias_repo), BAD, "bias", *loose)
    assert status == 0 and err == "" and out.splitlines()[-1].startswith("OK (")
    row = next(line for line in out.splitlines() if line.startswith(BAD_CAMERA) and " diff_mean " in line)
    assert row.split()[3:] == ["PASS", "50", "ADU", "60", "/", "100", "1"]
    strict = ["--limit", "bias.noise=0,0"]  # every camera has some noise: all fail
    status, out, err = cli(capsys, "verify", str(bias_repo), GOOD, "bias", "--json", *strict)
    assert status == 1 and len(json.loads(out)["failed"]) == 4


@pytest.mark.parametrize(("argv", "message"), [
    (["u/ci/bias", "biasProc"], ("pfstui: error: verify does not know dataset type 'biasProc'; give one of bias, "
                                 "dark, detectorMap, detectorMap_bootstrap, detectorMap_calib, detectorMap_candidate, "
                                 "fiberFlat, fiberNorms, fiberNorms_calib, fiberProfiles, flat")),
    (["u/ci/bias", "bias", "--at", "tomorrow"], ("pfstui: error: date 'tomorrow' is not a TAI ISO date; write it "
                                                 "like 2025-03-01T00:00:00")),
    (["u/ci/nothing", "bias"], "pfstui: error: No collection with name 'u/ci/nothing' found"),
    (["PFS/raw/sps", "bias"], "pfstui: error: no bias in PFS/raw/sps; give the RUN (or chain) the pipeline wrote"),
    (["u/ci/bias", "bias", "--limit", "bias.meen=1,2"], ("pfstui: error: bias has no check 'meen'; its checks: "
                                                        "mean, noise, outliers, diff_mean")),
    (["u/ci/bias", "bias", "--against", "PFS/raw/sps"], ("pfstui: error: PFS/raw/sps is a RUN collection and holds no "
                                                         "validity ranges; pick a CALIBRATION collection")),
])
def test_a_bad_argument_is_one_line(bias_repo: Path, capsys, monkeypatch, tmp_path, argv, message):
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    status, out, err = cli(capsys, "verify", str(bias_repo), *argv)
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(message), err
