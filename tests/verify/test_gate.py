"""The certify gate on real demo products: ``pfstui certify`` verifies the bias it chose, leaves the spoiled camera
(r1) out unless an override with a reason names it, and journals the verdicts and the reason; the preview (CLI,
``--dry-run --json``, a plan stage's approval preview, the Certify pane) shows the verdicts."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pfstui.butler.certify import preview_certify
from pfstui.butler.gateway import ButlerGateway
from pfstui.infra.journal import default_journal
from pfstui.verify.image import read_image as READ_IMAGE
from tests.pg import copy_repo
from tests.verify.conftest import BAD, BAD_CAMERA, CAMERAS

pytestmark = pytest.mark.integration

#: After the good bias's range (2000 .. 2050-12-31T23:59:59), so certifying the bad one conflicts with nothing.
LATER = "2051-01-01T00:00:00"
REASON = "offset known, re-taken Monday"


@pytest.fixture
def repo(bias_repo: Path, tmp_path: Path, monkeypatch) -> Path:
    """A private copy of the verify repository (these tests certify into it), and a private journal."""
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    return copy_repo(bias_repo, tmp_path / "repo")


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    from pfstui.cli.main import main

    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def certified_later(repo: Path) -> list[str]:
    """The cameras whose bias in PFS/calib is valid from LATER on (what the certify under test added)."""
    from lsst.daf.butler import Butler

    with Butler.from_config(str(repo)) as butler:
        rows = butler.registry.queryDatasetAssociations("bias", collections=["PFS/calib"])
        return sorted(f"arm={a.ref.dataId['arm']} spectrograph={a.ref.dataId['spectrograph']}" for a in rows
                      if a.timespan.begin is not None and a.timespan.begin.isot.startswith("2051"))


def bad_mean(text: str) -> str:
    """The bad camera's mean as the preview printed it (the bias level plus the knob's offset)."""
    found = re.search(f"verify {BAD_CAMERA}: FAIL mean ([0-9.]+) ADU", text)
    assert found and 45 < float(found.group(1)) < 55, text
    return found.group(1)


def test_the_preview_gives_the_verdict_per_camera_and_check(bias_repo: Path):
    with ButlerGateway(str(bias_repo), read_only=True) as gw:
        later = preview_certify(gw, BAD, "PFS/calib", "bias", begin=LATER)
        within = preview_certify(gw, BAD, "PFS/calib", "bias", begin="2030-01-01T00:00:00")
        unverified = preview_certify(gw, BAD, "PFS/calib", "bias", begin=LATER, verify=False)
    assert [(v.camera, v.verdict, v.left_out) for v in later.verification] == [
        (camera, "fail" if camera == BAD_CAMERA else "pass", camera == BAD_CAMERA) for camera in CAMERAS]
    bad = later.verification[2]
    # Nothing is certified at LATER: the comparisons are with the good bias, whose range ended before it.
    assert [(p["check"], p["verdict"], p["limit"]) for p in bad.problems] == [
        ("mean", "fail", 30.0), ("outliers", "fail", 0.01), ("diff_mean", "fail", 5.0), ("diff_outliers", "fail", 0.01)]
    mean = bad.problems[0]["value"]
    assert mean == pytest.approx(50.0, abs=5.0)  # the knob's offset on top of the bias level
    lines = later.lines()
    assert "  verify arm=b spectrograph=1: pass" in lines
    bad_line = [line for line in lines if line.startswith(f"  verify {BAD_CAMERA}: ")]
    assert len(bad_line) == 1
    assert bad_line[0].startswith(f"  verify arm=r spectrograph=1: FAIL mean {mean:.4g} ADU (fail > 30), outliers "
                                  "0.1875 (fail > 0.01), diff_mean ")
    assert bad_line[0].endswith(": left out; --override 'arm=r spectrograph=1=REASON' certifies it")
    assert not any("verified against nothing certified" in line for line in lines)
    assert later.summary.startswith("certify 3 bias from u/ci/badbias/")
    assert later.summary.endswith(", 1 left out (failed verification)")
    assert sorted(a.camera() for a in later.added_associations) == [c for c in CAMERAS if c != BAD_CAMERA]
    assert not later.blocked
    # At a begin inside the good bias's range the comparisons with it count too (and the others conflict).
    checks = {p["check"]: p for p in within.verification[2].problems}
    assert checks["diff_mean"]["verdict"] == "fail" and checks["diff_mean"]["value"] == pytest.approx(50.0, abs=0.5)
    assert [c.wanted.camera() for c in within.conflicts] == [c for c in CAMERAS if c != BAD_CAMERA]
    assert unverified.verification == [] and len(unverified.added_associations) == 4  # verify=False: no gate


def test_the_gate_leaves_out_the_failing_camera_and_certifies_the_others(repo: Path, capsys, monkeypatch):
    from pfstui.verify import report

    read = []
    monkeypatch.setattr(report, "read_image", lambda uri: read.append(uri) or READ_IMAGE(uri))
    status, out, err = cli(capsys, "certify", str(repo), BAD, "PFS/calib", "bias", "--begin-date", LATER, "--yes")
    assert status == 0, err
    assert len(read) == 8  # each camera's new and current file once: apply's preview (in the write lock) reuses them
    assert f"verify {BAD_CAMERA}: FAIL" in out
    assert certified_later(repo) == [c for c in CAMERAS if c != BAD_CAMERA]
    entry = list(default_journal().read())[-1]
    assert [v["camera"] for v in entry.get("verification") if v["left_out"]] == [BAD_CAMERA]
    assert entry.get("summary").endswith(f"; left out (failed verification): {BAD_CAMERA}")


def test_an_override_with_a_reason_certifies_the_camera_and_the_journal_keeps_the_reason(repo: Path, capsys):
    status, out, err = cli(capsys, "certify", str(repo), BAD, "PFS/calib", "bias", "--begin-date", LATER,
                           "--override", f"{BAD_CAMERA}={REASON}", "--yes")
    assert status == 0, err
    want = f"  verify {BAD_CAMERA}: FAIL mean {bad_mean(out)} ADU (fail > 30), outliers 0.1875 (fail > 0.01), "
    got = [line for line in out.splitlines() if line.startswith(f"  verify {BAD_CAMERA}: FAIL mean ")]
    assert len(got) == 1 and got[0].startswith(want) and got[0].endswith(f": overridden ({REASON})")
    assert certified_later(repo) == CAMERAS
    entry = list(default_journal().read())[-1]
    assert entry.get("args")["overrides"] == {BAD_CAMERA: REASON}
    bad = next(v for v in entry.get("verification") if v["camera"] == BAD_CAMERA)
    assert bad["override"] == REASON and bad["verdict"] == "fail" and not bad["left_out"]
    status, out, _ = cli(capsys, "journal", "--repo", str(repo))
    assert status == 0 and f"{BAD_CAMERA} failed verification, certified anyway: {REASON}" in out


def test_the_plan_s_limits_reach_the_gate(repo: Path, capsys):
    """With limits loose enough for the spoiled camera (as a plan's verify_limits would give), nothing is left out;
    a bad limit is one line before the repository is opened."""
    loose = ["bias.mean=60,80", "bias.outliers=0.3,0.5", "bias.diff_mean=60,80", "bias.diff_outliers=0.3,0.5"]
    status, out, err = cli(capsys, "certify", str(repo), BAD, "PFS/calib", "bias", "--begin-date", LATER,
                           *[arg for limit in loose for arg in ("--limit", limit)], "--dry-run", "--json")
    assert status == 0, err
    preview = json.loads(out)
    assert [v["verdict"] for v in preview["verification"]] == ["pass"] * 4
    assert len(preview["added"]) == 4 and preview["args"]["limits"] == loose
    status, _, err = cli(capsys, "certify", str(repo), BAD, "PFS/calib", "bias", "--limit", "bias.mean=x", "--dry-run")
    assert status == 2 and len(err.strip().splitlines()) == 1 and "bias.mean" in err


def test_the_short_camera_name_and_the_json_preview(repo: Path, capsys):
    status, out, err = cli(capsys, "certify", str(repo), BAD, "PFS/calib", "bias", "--begin-date", LATER,
                           "--override", f"r1={REASON}", "--dry-run", "--json")
    assert status == 0, err
    preview = json.loads(out)
    assert [(v["camera"], v["verdict"], v["override"]) for v in preview["verification"]] == [
        (camera, "fail" if camera == BAD_CAMERA else "pass", REASON if camera == BAD_CAMERA else "")
        for camera in CAMERAS]
    assert len(preview["added"]) == 4 and certified_later(repo) == []


def test_when_every_camera_is_left_out_the_certify_is_refused_naming_the_override(repo: Path, capsys):
    status, _, err = cli(capsys, "certify", str(repo), BAD, "PFS/calib", "bias", "--begin-date", LATER,
                         "--id", "instrument=PFS", "arm=r", "spectrograph=1", "--dry-run")
    assert status == 1
    assert err.startswith(f"pfstui: would be refused: every camera failed verification ({BAD_CAMERA}): nothing to "
                          "certify; fix the product, or certify a camera anyway with --override 'CAMERA=REASON'")


@pytest.mark.parametrize(("override", "message"), [
    ("arm=x spectrograph=9=why", ("pfstui: error: override names 'arm=x spectrograph=9', which is not a camera of "
                                  "this product (arm=b spectrograph=1, arm=b spectrograph=2, arm=r spectrograph=1, "
                                  "arm=r spectrograph=2); name a camera as verify prints it")),
    (f"{BAD_CAMERA}=  ", (f"pfstui: error: the override of {BAD_CAMERA} gives no reason; say why it is certified "
                          f"anyway: '{BAD_CAMERA}=REASON'")),
    ("r1=known\nrm -rf", ("pfstui: error: the override reason of arm=r spectrograph=1 holds a line break or a "
                          "control character; write the reason on one line")),
    ("because I said so", "pfstui: error: override 'because I said so' names no camera; write it CAMERA=REASON"),
])
def test_a_bad_override_is_one_line(repo: Path, capsys, override: str, message: str):
    status, out, err = cli(capsys, "certify", str(repo), BAD, "PFS/calib", "bias", "--begin-date", LATER,
                           "--override", override, "--dry-run")
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith(message), err
    assert certified_later(repo) == []


def test_a_camera_whose_file_cannot_be_read_fails_and_can_be_overridden(repo: Path):
    from lsst.daf.butler import Butler

    with Butler.from_config(str(repo)) as butler:
        ref = butler.find_dataset("bias", instrument="PFS", arm="b", spectrograph=2, collections=BAD)
        Path(butler.getURI(ref).ospath).write_bytes(b"not a FITS file")
    with ButlerGateway(str(repo), read_only=True) as gw:
        gated = preview_certify(gw, BAD, "PFS/calib", "bias", begin=LATER)
        overridden = preview_certify(gw, BAD, "PFS/calib", "bias", begin=LATER,
                                     overrides={"b2": "read by hand", "arm=b spectrograph=1": "just in case"})
    unread = gated.verification[1]
    assert (unread.camera, unread.verdict, unread.left_out) == ("arm=b spectrograph=2", "fail", True)
    assert unread.problems[0]["check"] == "read" and "cannot read" in unread.problems[0]["reason"]
    assert len(gated.added_associations) == 2
    assert overridden.verification[1].override == "read by hand" and len(overridden.added_associations) == 3
    assert overridden.verification[0].override == ""  # it passed: nothing to override, and the preview says so
    assert "  note: override of arm=b spectrograph=1 not needed: it did not fail verification" in overridden.lines()


def test_a_type_verify_has_no_checks_for_is_certified_with_a_note(repo: Path):
    from lsst.daf.butler import Butler, DatasetType

    with Butler.from_config(str(repo), writeable=True) as butler:
        kind = DatasetType("gateTestCalib", ("instrument", "arm", "spectrograph"), "NumpyArray",
                           universe=butler.dimensions, isCalibration=True)
        butler.registry.registerDatasetType(kind)
        butler.collections.register("u/ci/other")
        butler.put(np.zeros(3), kind, instrument="PFS", arm="b", spectrograph=1, run="u/ci/other")
    with ButlerGateway(str(repo), read_only=True) as gw:
        preview = preview_certify(gw, "u/ci/other", "PFS/calib", "gateTestCalib")
    assert preview.verification == [] and len(preview.added_associations) == 1
    assert "  note: not verified: pfstui has no checks for gateTestCalib" in preview.lines()


def test_a_plan_stage_carries_the_override_and_its_approval_preview_shows_the_verdicts(repo: Path, tmp_path: Path):
    from pfstui.plan.argv import build_argv
    from pfstui.plan.loader import parse_plan
    from pfstui.queue.launch import preview_argv, preview_outcome

    plan = parse_plan(f"""
repository: {repo}
rerun: u/ci
instrument: pfstui.demo.instrument.DemoPrimeFocusSpectrograph
stages:
  - name: certify-bias
    kind: certify
    input: badbias
    target: PFS/calib
    dataset_type: bias
    begin: "{LATER}"
    override:
      {BAD_CAMERA}: {REASON}
""")
    argv = build_argv(plan, "certify-bias", attempt_dir=tmp_path, first_run=True)
    assert argv[argv.index("--override") + 1] == f"{BAD_CAMERA}={REASON}"
    done = subprocess.run(preview_argv(argv), capture_output=True, text=True, timeout=300, check=False,
                          stdin=subprocess.DEVNULL)
    state, text, digest = preview_outcome(done.returncode, done.stdout, done.stderr, False)
    assert state == "ready" and digest, text
    assert any(line.startswith(f"  verify {BAD_CAMERA}: FAIL mean {bad_mean(text)} ADU (fail > 30), outliers 0.1875 "
                               "(fail > 0.01), diff_mean ") and line.endswith(f": overridden ({REASON})")
               for line in text.splitlines())
    assert "  verify arm=b spectrograph=1: pass" in text.splitlines()


async def test_the_certify_pane_shows_the_verdicts_and_certifies_an_override(repo: Path):
    from pfstui.ui.app import PfsTuiApp
    from pfstui.ui.panes.certify import CertifyPane
    from pfstui.ui.screens.confirm import ConfirmScreen
    from tests.ui import wait_until
    from tests.ui.test_certify_pane import fill

    app = PfsTuiApp(repo=str(repo), connect=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("4")
        pane = app.query_one(CertifyPane)
        shown = lambda: str(pane.query_one("#certify-preview").render())
        await fill(pilot, pane, input=BAD, dataset_type="bias", begin=LATER, override="r1")
        assert str(pane.query_one("#e-override").render()).startswith("override 'r1' names no camera; write it")
        await pilot.press("ctrl+e")
        assert "names no camera" in shown() and pane.preview is None  # refused before the Butler is asked
        await fill(pilot, pane, override="")
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: pane.preview is not None, timeout=60)
        assert f"verify {BAD_CAMERA}: FAIL mean " in shown() and "verify arm=b spectrograph=1: pass" in shown()
        assert len(pane.preview.added_associations) == 3
        await fill(pilot, pane, override=f"r1={REASON}")
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: pane.preview is not None, timeout=60)
        assert f"overridden ({REASON})" in shown() and len(pane.preview.added_associations) == 4
        await pilot.press("ctrl+y")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: certified_later(repo) == CAMERAS, timeout=60)
    entry = list(default_journal().read())[-1]
    assert next(v["override"] for v in entry.get("verification") if v["camera"] == BAD_CAMERA) == REASON
