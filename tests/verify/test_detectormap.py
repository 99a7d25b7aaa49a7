"""detectorMap checks on files written here in pfs_datamodel's layout (no demo, no Butler): the fit from the
task's log (each JSON form the Butler writes, drp_stella's line with and without km/s), the header fallback, and the
trace and wavelength shifts against the current map with their limits."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.io import fits
from lsst.daf.butler import MissingDatasetTypeError
from lsst.resources import ResourcePath

from pfstui.verify.checks import Check
from pfstui.verify.detectormap import fit_from_log, measure, read_detector_map
from pfstui.verify.image import ReadError
from pfstui.verify.limits import CHECKS, checks_with

FIBERS = np.array([10, 50, 90])
LINE = "Final fit: chi2=12.5 dof=240 xRMS=0.051 yRMS=0.042 (0.030 nm) from 190/200 lines"


def write_map(path: Path, x_center, wavelength_shift=0.0, header=None) -> ResourcePath:
    """Straight traces at ``x_center`` and a linear wavelength solution, as SplinedDetectorMap writes them."""
    knots = np.array([0.0, 47.0])
    hdr = fits.Header()
    hdr.update(header or {})
    n = len(FIBERS)
    tables = []
    for name, values in (("CENTER", [np.full(2, x) for x in x_center]),
                         ("WAVELENGTH", [630.0 + 7.0 * knots + wavelength_shift + 0.01 * i for i in range(n)])):
        tables.append(fits.BinTableHDU.from_columns([
            fits.Column(name="index", format="K", array=np.repeat(np.arange(n), 2)),
            fits.Column(name="knot", format="D", array=np.tile(knots, n)),
            fits.Column(name="value", format="D", array=np.concatenate(values))], name=name))
    fits.HDUList([fits.PrimaryHDU(header=hdr), fits.ImageHDU(FIBERS.astype(np.int32), name="FIBERID"),
                  fits.ImageHDU(np.zeros((3, n)), name="SLITOFF"), *tables]).writeto(path)
    return ResourcePath(str(path))


class FakeButler:
    """getURI of a ref is its file; the task's log is ``log`` (a URI) or missing."""

    def __init__(self, log: ResourcePath | None = None, registered: bool = True):
        self.log, self.registered = log, registered

    def getURI(self, ref):
        return ref.uri

    def find_dataset(self, name, data_id, collections):
        assert name == "fitDetectorMap_log" and collections == "u/me/detectorMap/run"
        if not self.registered:
            raise MissingDatasetTypeError(name)
        return SimpleNamespace(uri=self.log) if self.log is not None else None


def ref(uri: ResourcePath, dataset_type: str = "detectorMap_candidate"):
    return SimpleNamespace(uri=uri, datasetType=SimpleNamespace(name=dataset_type), dataId={}, run="u/me/detectorMap/run")


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


@pytest.mark.parametrize("form", ["extended", "list", "lines", "text"])
def test_the_fit_is_the_last_final_fit_line_of_the_log_in_any_form(form: str):
    records = [{"message": "Fit iteration 0: chi2=..."}, {"message": LINE.replace("190/200", "150/200")},
               {"message": LINE}, {"message": "Softened fit: chi2=1 dof=240 xRMS=0.9 yRMS=0.9 (0.1 nm) from 190 lines"}]
    text = {"extended": json.dumps({"extended": True, "version": 2, "records": records}),
            "list": json.dumps(records), "lines": "\n".join(json.dumps(r) for r in records),
            "text": "\n".join(r["message"] for r in records)}[form]
    fit = fit_from_log(text)
    assert (fit.x_rms, fit.y_rms, fit.used, fit.good) == (0.051, 0.042, 190, 200)
    assert fit.rejected == pytest.approx(0.05)
    km = "Final fit: chi2=1.0 dof=9 xRMS=0.2 yRMS=0.3 (0.01 nm, 0.5 km/s) from 9/10 lines"  # drp_stella's other form
    assert fit_from_log(km).y_rms == 0.3 and fit_from_log("nothing here") is None


def test_a_good_map_passes_and_the_shifts_name_the_worst_fiber(tmp_path: Path):
    log = tmp_path / "log.json"
    log.write_text(json.dumps({"records": [{"message": LINE}]}))
    new = write_map(tmp_path / "new.fits", [6.0, 15.3, 24.0], wavelength_shift=0.02)
    current = write_map(tmp_path / "cur.fits", [6.1, 15.0, 24.0])
    checks = by_name(measure(FakeButler(ResourcePath(str(log))), ref(new), ref(current, "detectorMap_calib")))
    assert list(checks) == list(CHECKS["detectorMap"])
    assert {c.verdict for c in checks.values()} == {"pass"}
    assert checks["fit_yrms"].value == 0.042 and checks["lines_rejected"].value == pytest.approx(0.05)
    assert checks["diff_trace"].value == pytest.approx(0.3) and checks["diff_trace"].amp == "fiber 50"
    assert checks["diff_trace"].per_amp == pytest.approx({"10": 0.1, "50": 0.3, "90": 0.0})
    assert checks["diff_wavelength"].value == pytest.approx(0.02)


def test_a_moved_map_fails_and_without_a_log_the_header_is_read(tmp_path: Path):
    header = {"FIT_XRMS": 0.5, "FIT_YRMS": 0.05, "FIT_USED": 50, "FIT_GOOD": 100}
    new = write_map(tmp_path / "new.fits", [9.0, 15.0, 24.0], wavelength_shift=0.3, header=header)
    current = write_map(tmp_path / "cur.fits", [6.0, 15.0, 24.0])
    checks = by_name(measure(FakeButler(None), ref(new), ref(current)))
    assert {n: c.verdict for n, c in checks.items()} == {
        "fit_xrms": "fail", "fit_yrms": "pass", "lines_rejected": "fail", "diff_trace": "fail",
        "diff_wavelength": "fail"}
    assert checks["diff_trace"].value == pytest.approx(3.0) and checks["diff_trace"].amp == "fiber 10"
    loose = checks_with(["detectorMap.diff_trace=4,5"])["detectorMap"]
    assert by_name(measure(FakeButler(None), ref(new), ref(current), loose))["diff_trace"].verdict == "pass"


def test_without_a_log_header_or_current_map_the_checks_are_not_applicable(tmp_path: Path):
    new = write_map(tmp_path / "new.fits", [6.0, 15.0, 24.0])
    checks = measure(FakeButler(registered=False), ref(new), None)
    assert {c.verdict for c in checks} == {"n/a"}


def test_maps_without_a_fiber_in_common_fail_the_comparison(tmp_path: Path):
    new = write_map(tmp_path / "new.fits", [6.0, 15.0, 24.0])
    other = tmp_path / "other.fits"
    write_map(other, [6.0, 15.0, 24.0])
    with fits.open(other, mode="update") as hdus:
        hdus["FIBERID"].data = hdus["FIBERID"].data + 1000
    check = by_name(measure(FakeButler(None), ref(new), ref(ResourcePath(str(other)))))["diff_trace"]
    assert check.verdict == "fail" and check.amp == "no fiber in common"


def test_a_file_that_is_no_detectormap_is_one_line(tmp_path: Path):
    path = tmp_path / "image.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((2, 2)), name="IMAGE")]).writeto(path)
    with pytest.raises(ReadError) as err:
        read_detector_map(ResourcePath(str(path)))
    assert "is not a detectorMap in pfs_datamodel's FITS layout" in str(err.value) and "\n" not in str(err.value)
