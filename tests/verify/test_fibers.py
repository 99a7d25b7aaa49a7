"""fiberProfiles and fiberNorms checks on files written here in pfs_datamodel's layouts (no demo, no Butler): profile
widths, their spread, a broken fiber, norms and their changes against the current product; then the demo's own
products put into a demo repository and verified by ``pfstui verify`` where the demo cannot be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.io import fits
from lsst.resources import ResourcePath

from pfstui.verify.checks import Check
from pfstui.verify.fibers import (
    measure,
    profile_width,
    read_fiber_norms,
    read_fiber_profiles,
)
from pfstui.verify.image import ReadError
from pfstui.verify.limits import CHECKS, checks_with, product_kind
from tests.blocked_demo import SCRIPT

FIBERS = np.array([10, 50, 90, 130])
RADIUS, OVERSAMPLE = 10, 5


def gaussian(sigma: float) -> np.ndarray:
    x = (np.arange(2 * RADIUS * OVERSAMPLE + 1) - RADIUS * OVERSAMPLE) / OVERSAMPLE
    profile = np.exp(-0.5 * (x / sigma) ** 2)
    return profile / profile.sum()


def write_profiles(path: Path, sigmas, swaths: int = 2) -> ResourcePath:
    """One Gaussian profile per fiber and swath (``None``: a fiber whose profile is all NaN), as PfsFiberProfiles."""
    profiles = [np.full(2 * RADIUS * OVERSAMPLE + 1, np.nan) if s is None else gaussian(s) for s in sigmas]
    n = len(FIBERS)
    fits.HDUList([
        fits.PrimaryHDU(),
        fits.BinTableHDU.from_columns([
            fits.Column(name="fiberId", format="J", array=FIBERS),
            fits.Column(name="radius", format="J", array=np.full(n, RADIUS)),
            fits.Column(name="oversample", format="D", array=np.full(n, float(OVERSAMPLE))),
            fits.Column(name="norm", format="PE()", array=[np.zeros(0, dtype=np.float32)] * n)], name="FIBERS"),
        fits.BinTableHDU.from_columns([
            fits.Column(name="fiberId", format="J", array=np.repeat(FIBERS, swaths)),
            fits.Column(name="rows", format="D", array=np.tile(np.linspace(10, 40, swaths), n)),
            fits.Column(name="profiles", format="PD()", array=[p for p in profiles for _ in range(swaths)]),
            fits.Column(name="masks", format="PB()", array=[np.zeros(len(p), dtype=np.uint8) for p in profiles
                                                             for _ in range(swaths)])], name="PROFILES"),
    ]).writeto(path)
    return ResourcePath(str(path))


def write_norms(path: Path, norms, fiber_id=FIBERS, height: int = 8) -> ResourcePath:
    """Each fiber's norm at every row, as PfsFiberNorms (DAMD_VER 2) writes them."""
    values = np.repeat(np.asarray(norms, dtype=float)[:, None], height, axis=1)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.asarray(fiber_id, dtype=np.int64), name="FIBERID"),
                  fits.ImageHDU(np.zeros_like(values), name="WAVELENGTH"),
                  fits.ImageHDU(values, name="VALUES")]).writeto(path)
    return ResourcePath(str(path))


class FakeButler:
    def getURI(self, ref):
        return ref.uri


def ref(uri: ResourcePath):
    return SimpleNamespace(uri=uri)


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_the_width_is_the_rms_of_the_sampled_profile():
    assert profile_width(gaussian(1.2), OVERSAMPLE) == pytest.approx(1.2, rel=1e-3)
    offset = np.roll(gaussian(1.0), 4)  # moved off centre: the width is about the profile's own centre
    assert profile_width(offset, OVERSAMPLE) == pytest.approx(1.0, rel=1e-3)
    mask = np.zeros(len(offset), dtype=bool)
    mask[:] = True
    assert np.isnan(profile_width(offset, OVERSAMPLE, mask)) and np.isnan(profile_width(-gaussian(1.0), OVERSAMPLE))


def test_the_products_are_known_by_their_dataset_types():
    assert [product_kind(t) for t in ("fiberProfiles", "fiberNorms_calib", "fiberNorms")] == [
        "fiberProfiles", "fiberNorms", "fiberNorms"]


def test_good_profiles_pass_and_name_the_widest_fiber(tmp_path: Path):
    new = write_profiles(tmp_path / "new.fits", [1.5, 1.7, 1.5, 1.45])
    current = write_profiles(tmp_path / "cur.fits", [1.5, 1.65, 1.5, 1.45])
    checks = by_name(measure(FakeButler(), "fiberProfiles", ref(new), ref(current)))
    assert list(checks) == list(CHECKS["fiberProfiles"])
    assert {c.verdict for c in checks.values()} == {"pass"}
    assert checks["width_spread"].value == pytest.approx(0.2 / 1.5, abs=1e-3)
    assert checks["width_spread"].amp == "fiber 50"
    assert checks["width_spread"].per_amp["130"] == pytest.approx(-0.05 / 1.5, abs=1e-3)
    assert checks["missing"].value == 0.0
    assert checks["ratio_width"].value == pytest.approx(0.05 / 1.65, abs=1e-3) and checks["ratio_width"].amp == "fiber 50"
    assert checks["ratio_width"].per_amp["10"] == pytest.approx(0.0, abs=1e-6)


def test_a_wide_fiber_and_a_broken_one_are_named(tmp_path: Path):
    new = write_profiles(tmp_path / "new.fits", [1.5, 2.2, None, 1.5])
    checks = by_name(measure(FakeButler(), "fiberProfiles", ref(new), None))
    assert {n: c.verdict for n, c in checks.items()} == {"width_spread": "fail", "missing": "fail", "ratio_width": "n/a"}
    assert checks["width_spread"].amp == "fiber 50" and checks["width_spread"].value == pytest.approx(0.7 / 1.5, abs=1e-3)
    assert checks["missing"].value == pytest.approx(0.25) and checks["missing"].amp == "fiber 90"
    loose = checks_with(["fiberProfiles.width_spread=0.5,1", "fiberProfiles.missing=0.3,0.5"])["fiberProfiles"]
    assert {c.verdict for c in measure(FakeButler(), "fiberProfiles", ref(new), None, loose)} == {"pass", "n/a"}


def test_widths_that_changed_against_the_current_fail(tmp_path: Path):
    new = write_profiles(tmp_path / "new.fits", [1.5, 1.5, 1.9, 1.5])
    current = write_profiles(tmp_path / "cur.fits", [1.5, 1.5, 1.5, 1.5], swaths=1)
    check = by_name(measure(FakeButler(), "fiberProfiles", ref(new), ref(current)))["ratio_width"]
    assert check.verdict == "fail" and check.amp == "fiber 90" and check.value == pytest.approx(0.4 / 1.5, abs=1e-3)


def test_good_norms_pass_and_their_spread_is_robust(tmp_path: Path):
    new = write_norms(tmp_path / "new.fits", [1.0, 1.05, 0.95, 1.01])
    current = write_norms(tmp_path / "cur.fits", [1.0, 1.04, 0.95, 1.0])
    checks = by_name(measure(FakeButler(), "fiberNorms", ref(new), ref(current)))
    assert list(checks) == list(CHECKS["fiberNorms"])
    assert {c.verdict for c in checks.values()} == {"pass"}
    norms = np.array([1.0, 1.05, 0.95, 1.01])
    median = np.median(norms)
    assert checks["spread"].value == pytest.approx(1.4826 * np.median(np.abs(norms - median)) / median)
    assert checks["ratio_norm"].value == pytest.approx(0.01, abs=1e-9)
    assert checks["ratio_norm"].amp in ("fiber 50", "fiber 130")


def test_the_norms_spread_is_taken_within_each_spectrograph(tmp_path: Path):
    """SM2's fibers (fiberId 652-1302) 50% brighter than SM1's: a throughput difference, not a spread; a fiber off
    its own spectrograph's median by 40% is."""
    fiber_id = [10, 50, 90, 130, 661, 701, 741, 781]
    even = write_norms(tmp_path / "even.fits", [1.0, 1.02, 0.98, 1.0, 1.5, 1.53, 1.47, 1.5], fiber_id=fiber_id)
    spread = by_name(measure(FakeButler(), "fiberNorms", ref(even), None))["spread"]
    assert spread.verdict == "pass" and spread.value == pytest.approx(1.4826 * 0.01, abs=1e-6)
    assert spread.per_amp["701"] == pytest.approx(0.02)
    norms = [1.0, 1.02, 0.98, 1.0, 1.5, 2.1, 1.47, 1.5] * 2
    odd = write_norms(tmp_path / "odd.fits", norms, fiber_id=fiber_id + [f + 1 for f in fiber_id])
    spread = by_name(measure(FakeButler(), "fiberNorms", ref(odd), None))["spread"]
    assert spread.amp in ("fiber 701", "fiber 702") and spread.per_amp["701"] == pytest.approx(0.4)


def test_a_bad_norm_and_a_changed_fiber_fail(tmp_path: Path):
    new = write_norms(tmp_path / "new.fits", [1.0, 0.0, 0.95, 1.2])
    current = write_norms(tmp_path / "cur.fits", [1.0, 1.0, 0.96, 1.0, 1.0], fiber_id=[130, 10, 50, 90, 999])
    checks = by_name(measure(FakeButler(), "fiberNorms", ref(new), ref(current)))
    assert checks["bad_norms"].verdict == "fail" and checks["bad_norms"].amp == "fiber 50"
    assert checks["bad_norms"].value == pytest.approx(0.25)
    # matched by fiberId, not by position: fiber 130 went 1.0 -> 1.2, fiber 90 0.96 -> 0.95
    ratio = checks["ratio_norm"]
    assert ratio.verdict == "fail" and ratio.amp == "fiber 130" and ratio.value == pytest.approx(0.2)
    assert set(ratio.per_amp) == {"10", "90", "130"}


def test_norms_without_a_fiber_in_common_fail_the_comparison(tmp_path: Path):
    new = write_norms(tmp_path / "new.fits", [1.0, 1.0, 1.0, 1.0])
    current = write_norms(tmp_path / "cur.fits", [1.0], fiber_id=[7])
    check = by_name(measure(FakeButler(), "fiberNorms", ref(new), ref(current)))["ratio_norm"]
    assert check.verdict == "fail" and check.amp == "no fiber in common"


@pytest.mark.parametrize("product", ["fiberProfiles", "fiberNorms"])
def test_a_file_of_another_product_is_one_line(tmp_path: Path, product: str):
    path = tmp_path / "image.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((2, 2)), name="IMAGE")]).writeto(path)
    reader = read_fiber_profiles if product == "fiberProfiles" else read_fiber_norms
    with pytest.raises(ReadError) as err:
        reader(ResourcePath(str(path)))
    assert f"is not a {product} file in pfs_datamodel's FITS layout" in str(err.value) and "\n" not in str(err.value)


# --- the demo's products, through a demo repository's datastore ------------------------------------------------
CURRENT, NEW = "u/ci/fibers/current", "u/ci/fibers"
CAMERAS = [("b", 1), ("r", 1)]


def demo_profiles(spectrograph: int, wide_fiber: int | None = None) -> np.ndarray:
    """What the demo's mergeProfiles writes: ``[radius, oversample, profile...]`` per fiber of the spectrograph."""
    from pfstui.demo import model

    radius, oversample = 3, 3
    x = np.linspace(-radius, radius, 2 * radius * oversample + 1)
    rows = []
    for i in range(len(model.fiber_ids(spectrograph))):
        profile = np.exp(-0.5 * (x / (3.0 if i == wide_fiber else model.FIBER_SIGMA)) ** 2)
        rows.append(np.concatenate([[radius, oversample], profile / profile.sum()]))
    return np.vstack(rows)


def demo_norms(scale_fiber: int | None = None) -> np.ndarray:
    """What the demo's measureFiberNorms writes for an arm: ``[fiberId, norm]`` rows."""
    from pfstui.demo import model

    ids = np.concatenate([model.fiber_ids(1), model.fiber_ids(2)])
    norms = np.concatenate([model.true_fiber_throughput(1), model.true_fiber_throughput(2)])
    if scale_fiber is not None:
        norms[scale_fiber] *= 1.2
    return np.stack([ids.astype(float), norms / np.median(norms)], axis=1)


@pytest.fixture(scope="module")
def fibers_repo(demo_repo_template: Path, tmp_path_factory) -> Path:
    """The demo repository with fiberProfiles (b1, r1) and fiberNorms_calib (b, r) certified in PFS/calib, and new
    ones in NEW: r1's second fiber much wider, and arm r's third fiber's norm 20% up."""
    from lsst.daf.butler import Butler, CollectionType, DatasetType, Timespan

    from tests.pg import copy_repo

    repo = copy_repo(demo_repo_template, tmp_path_factory.mktemp("fibers") / "repo")
    with Butler.from_config(str(repo), writeable=True) as butler:
        types = [DatasetType("fiberProfiles", ("instrument", "arm", "spectrograph"), "NumpyArray",
                             universe=butler.dimensions, isCalibration=True),
                 DatasetType("fiberNorms_calib", ("instrument", "arm"), "NumpyArray", universe=butler.dimensions,
                             isCalibration=True)]
        for dataset_type in types:
            butler.registry.registerDatasetType(dataset_type)
        for run in (CURRENT, NEW):
            butler.collections.register(run, CollectionType.RUN)
        current = []
        for arm, spectrograph in CAMERAS:
            data_id = {"instrument": "PFS", "arm": arm, "spectrograph": spectrograph}
            current.append(butler.put(demo_profiles(spectrograph), "fiberProfiles", data_id, run=CURRENT))
            wide = 1 if (arm, spectrograph) == ("r", 1) else None
            butler.put(demo_profiles(spectrograph, wide), "fiberProfiles", data_id, run=NEW)
        for arm, _ in CAMERAS:
            data_id = {"instrument": "PFS", "arm": arm}
            current.append(butler.put(demo_norms(), "fiberNorms_calib", data_id, run=CURRENT))
            butler.put(demo_norms(2 if arm == "r" else None), "fiberNorms_calib", data_id, run=NEW)
        butler.registry.certify("PFS/calib", current, Timespan(None, None))
    return repo


def test_the_demo_writes_fits_that_read_back_as_its_arrays(fibers_repo: Path):
    from lsst.daf.butler import Butler

    with Butler.from_config(str(fibers_repo)) as butler:
        ref = butler.find_dataset("fiberProfiles", instrument="PFS", arm="r", spectrograph=1, collections=NEW)
        assert butler.getURI(ref).getExtension() == ".fits"
        np.testing.assert_allclose(butler.get(ref), demo_profiles(1, 1))
        norms = butler.find_dataset("fiberNorms_calib", instrument="PFS", arm="r", collections=NEW)
        assert butler.getURI(norms).getExtension() == ".fits"
        np.testing.assert_allclose(butler.get(norms), demo_norms(2))
        with fits.open(butler.getURI(ref).ospath) as hdus:
            from pfstui.demo import model

            assert list(hdus["FIBERS"].data["fiberId"]) == list(model.fiber_ids(1))


@pytest.mark.parametrize(("dataset_type", "failed", "check", "where"), [
    ("fiberProfiles", ["arm=r spectrograph=1"], "width_spread", "fiber 50"),
    ("fiberNorms_calib", ["arm=r"], "ratio_norm", "fiber 90"),
])
def test_verify_reads_the_demo_products_where_the_demo_cannot_be_imported(
        fibers_repo: Path, tmp_path: Path, dataset_type: str, failed: list[str], check: str, where: str):
    env = dict(os.environ, PFSTUI_STATE_DIR=str(tmp_path / "state"))
    argv = ["verify", str(fibers_repo), NEW, dataset_type, "--against", "PFS/calib", "--json"]
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(fibers_repo), NEW, dataset_type, *argv], check=False,
                          env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stdout + done.stderr
    first, report = done.stdout.split("\n", 1)
    assert first.startswith(f"this process cannot read a {dataset_type}")
    report = json.loads(report)
    assert report["failed"] == failed
    bad = next(c for c in report["cameras"] if c["camera"] == failed[0])
    worst = next(c for c in bad["checks"] if c["check"] == check)
    assert worst["verdict"] == "fail" and worst["amp"] == where
    others = [c for c in report["cameras"] if c["camera"] != failed[0]]
    assert others and all(c["verdict"] == "pass" for c in others), others
