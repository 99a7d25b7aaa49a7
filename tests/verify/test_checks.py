"""The checks on FITS files written here (no Butler): limits, amplifier sections, a flat's unmeasured pixels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from lsst.resources import ResourcePath

from pfstui.verify.checks import measure
from pfstui.verify.image import ReadError, read_image
from pfstui.verify.limits import CHECKS, Limit


def write(path: Path, data: np.ndarray, **cards) -> ResourcePath:
    header = fits.Header()
    header.update(cards)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data.astype(np.float32), header=header, name="IMAGE"),
                  fits.ImageHDU(np.zeros(data.shape, np.int32), name="MASK")]).writeto(path)
    return ResourcePath(str(path))


def test_a_limit_judges_the_size_and_nan_fails():
    limit = Limit(1.0, 2.0)
    assert [limit.judge(v) for v in (0.5, -1.5, 2.5, -2.5, None, math.nan)] == \
        ["pass", "warn", "fail", "fail", "n/a", "fail"]


def test_the_worst_amplifier_is_judged(tmp_path: Path):
    rng = np.random.default_rng(1)
    data = rng.normal(0.0, 2.0, (20, 40))
    data[:, 20:] += 12.0  # amplifier 2 has an offset
    image = read_image(write(tmp_path / "b.fits", data, NAMP=2, AMP1NAME="left", AMP1SEC="[1:20,1:20]",
                             AMP2NAME="right", AMP2SEC="[21:40,1:20]"))
    mean = next(c for c in measure("bias", image, None) if c.name == "mean")
    assert (mean.verdict, mean.amp) == ("warn", "right") and mean.value == pytest.approx(12.0, abs=1.0)
    assert mean.per_amp["left"] == pytest.approx(0.0, abs=1.0)


def test_without_amplifier_sections_the_whole_image_is_one(tmp_path: Path):
    image = read_image(write(tmp_path / "b.fits", np.zeros((4, 6)), NAMP=2, AMP1SEC="garbled"))
    assert list(image.amps) == ["all"]


def test_a_flat_skips_its_unmeasured_pixels_and_compares_by_ratio(tmp_path: Path):
    rng = np.random.default_rng(2)
    current = np.ones((20, 40))
    current[:, ::4] = 1.0 + 0.01 * rng.standard_normal((20, 10))
    new = current.copy()
    new[:, ::4] *= 1.03  # the measured pixels respond 3% more than the certified flat says
    checks = {c.name: c for c in measure("fiberFlat", read_image(write(tmp_path / "n.fits", new)),
                                         read_image(write(tmp_path / "c.fits", current)))}
    assert checks["outliers"].verdict == "pass"  # the 1.0s (three quarters of the image) are not the distribution
    assert checks["ratio_median"].value == pytest.approx(0.03, abs=1e-4) and checks["ratio_median"].verdict == "fail"
    assert list(checks) == list(CHECKS["fiberFlat"])


def test_a_file_that_is_not_fits_is_one_line(tmp_path: Path):
    path = tmp_path / "bias.pickle"
    path.write_bytes(b"\x80\x04not fits")
    with pytest.raises(ReadError, match="cannot read .* as a FITS image") as info:
        read_image(ResourcePath(str(path)))
    assert "\n" not in str(info.value)


def test_the_worst_number_is_the_largest_in_size_and_a_nan_before_any():
    from pfstui.verify.checks import worst_of

    assert worst_of({"1": 1.0, "2": -3.0, "3": 2.0}) == "2"
    assert worst_of({50: 0.1, 51: float("nan"), 52: -9.0}) == 51  # a NaN fails its limit: it is never hidden
