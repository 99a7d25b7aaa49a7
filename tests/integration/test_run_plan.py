"""`pfstui run` of the demo template on a fresh demo repository: all seven products, end to end,
through the supervisor and real subprocesses; `pfstui status --json` then shows every stage done with
the quanta counts the quantum graph announced."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg import REGISTRIES

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("demo_repo", REGISTRIES, indirect=True)
def test_pfstui_run_demo_template(demo_repo: Path, tool_env: dict[str, str], tmp_path: Path):
    env = dict(tool_env, PFSTUI_STATE_DIR=str(tmp_path / "state"), PFSTUI_SUPERVISOR_IDLE="5")
    pfstui = [sys.executable, "-m", "pfstui"]
    plan = tmp_path / "plan.yaml"
    out = subprocess.run(pfstui + ["plan", "new", "--template", "demo", "--repo", str(demo_repo), "--rerun", "u/ci",
                                   "-o", str(plan)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # an unattended night: no stage waits for an approval (tests/integration/test_gates.py approves one)
    plan.write_text(plan.read_text().replace("  approvals: true ", "  approvals: false", 1))
    run = subprocess.run(pfstui + ["run", str(plan)], env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "Finished: 28 done, 0 skipped, 0 not done" in run.stdout
    status = subprocess.run(pfstui + ["status", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    stages = {s["id"]: s for s in doc["stages"]}
    assert len(stages) == 28 and all(s["status"] == "done" for s in stages.values())
    expected = {
        "bias": {"isr": 12, "cpBiasCombine": 4},
        "dark": {"isr": 12, "dark": 12, "darkCombine": 4},
        "flat": {"isr": 24, "ditherCombine": 12, "flatCombine": 4},
        "bootstrap": {"isr": 8, "bootstrap": 4},
        "detectorMap": {"isr": 28, "cosmicray": 28, "measureCentroids": 28, "gatherSlitOffsets": 28, "fitDetectorMap": 4},
        "fitFiberProfiles": {"isr": 32, "cosmicray": 32, "profilesFitDetectorMap": 32, "fitProfiles": 8, "mergeProfiles": 4},
        "fiberNorms": {"isr": 8, "cosmicray": 8, "reduceExposure": 8, "measureFiberNorms": 2},
    }
    for name, tasks in expected.items():
        q = stages[name]["quanta"]
        assert {label: t["total"] for label, t in q["tasks"].items()} == tasks, name
        assert all(t["done"] == t["total"] for t in q["tasks"].values()), name
        assert q["graph_total"] == sum(tasks.values())
    from lsst.daf.butler import Butler

    with Butler.from_config(str(demo_repo)) as butler:
        for coll, dst in [("PFS/calib", "bias"), ("PFS/calib", "dark"), ("PFS/calib", "fiberFlat"),
                          ("PFS/bootstrap", "detectorMap_bootstrap"), ("PFS/calib", "detectorMap_calib"),
                          ("PFS/calib", "fiberProfiles"), ("PFS/calib", "fiberNorms_calib")]:
            assert list(butler.registry.queryDatasetAssociations(dst, collections=[coll])), dst
        # the clean stages removed the intermediates and kept the products
        assert not butler.query_datasets("biasProc", collections="u/ci/bias", explain=False)
        assert len(butler.query_datasets("bias", collections="u/ci/bias", explain=False)) == 4
    # every Butler stage ran pfstui's own action: one journal entry each, naming its stage and attempt
    from pfstui.infra.journal import Journal

    entries = [e for e in Journal(tmp_path / "state" / "journal.jsonl").entries()[0] if e.get("kind") == "butler"]
    verify_stages = sorted(name for name in stages if name.startswith("verify-"))
    butler_stages = sorted(name for name in stages if name not in expected and name not in verify_stages)
    assert sorted(e["origin"]["stage"] for e in entries) == butler_stages and len(butler_stages) == 15
    # the verify stages (which only read: no journal entry) passed the demo's bias, dark, fiberFlat, detectorMap,
    # fiberProfiles and fiberNorms
    assert verify_stages == ["verify-bias", "verify-dark", "verify-detectorMap", "verify-fiberNorms",
                             "verify-fitFiberProfiles", "verify-flat"]
    assert {e["origin"]["attempt"] for e in entries} == {1}
    check_detector_maps(demo_repo, env)


def check_detector_maps(repo: Path, env: dict[str, str]) -> None:
    """The demo's detectorMaps are FITS that verification reads where the demo cannot be imported: the fit from the
    task's log (drp_stella's 'Final fit' line), and no shift against the certified copy of the same map."""
    from astropy.io import fits
    from lsst.daf.butler import Butler

    from pfstui.butler.gateway import ButlerGateway
    from pfstui.verify.report import verify
    from tests.blocked_demo import SCRIPT

    with Butler.from_config(str(repo)) as butler:
        ref = butler.query_datasets("detectorMap_candidate", collections="u/ci/detectorMap", limit=1)[0]
        with fits.open(butler.getURI(ref).ospath) as hdus:
            assert [h.name for h in hdus] == ["PRIMARY", "FIBERID", "SLITOFF", "CENTER", "WAVELENGTH"]
            assert hdus[0].header["OBSTYPE"] == "detectorMap" and hdus[0].header["FIT_USED"] > 0
            assert (butler.get(ref).fiberId == hdus["FIBERID"].data).all()  # the demo's tasks read back its FITS
    with ButlerGateway(str(repo), read_only=True) as gw:
        for collection, dataset_type, against in (("u/ci/bootstrap", "detectorMap_bootstrap", "PFS/bootstrap"),
                                                  ("u/ci/detectorMap", "detectorMap_candidate", "PFS/calib")):
            report = verify(gw, collection, dataset_type, against=against)
            assert len(report.cameras) == 4 and not report.failed, report.to_json()
            for cam in report.cameras:
                checks = {c.name: c for c in cam.checks}
                assert checks["fit_yrms"].value is not None and checks["lines_rejected"].verdict != "n/a"
                assert checks["diff_trace"].value == 0.0  # against its own certified copy
    argv = ["verify", str(repo), "u/ci/detectorMap", "detectorMap_candidate", "--json"]
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(repo), "u/ci/detectorMap", "detectorMap_candidate",
                           *argv], env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    first, report_text = done.stdout.split("\n", 1)
    assert first.startswith("this process cannot read a detectorMap_candidate")
    assert json.loads(report_text)["failed"] == []
