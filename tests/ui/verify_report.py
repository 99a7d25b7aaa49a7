"""A verification report of four synthetic bias cameras (no Butler), one failing: an offset from what is
certified and a hot column.  The snapshot and view tests draw it."""

from __future__ import annotations

import numpy as np

from pfstui.verify.checks import measure
from pfstui.verify.image import ProductImage
from pfstui.verify.pictures import camera_pictures
from pfstui.verify.report import CameraResult, Report

CAMERAS = [("b", 1), ("r", 1), ("b", 2), ("r", 2)]
BAD = ("r", 1)


def _bias(seed: int, shape=(96, 128)) -> ProductImage:
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 3.0, shape)
    good = np.ones(shape, bool)
    good[-6:, :10] = False  # a masked corner (drawn blank)
    amps = {"A": (slice(None), slice(0, 64)), "B": (slice(None), slice(64, 128))}
    return ProductImage(data, good, amps)


def synthetic_report() -> Report:
    report = Report("u/ci/badbias", "bias", "bias", "PFS/calib", "2026-01-01T00:00:00.000")
    for k, (arm, spec) in enumerate(CAMERAS):
        current, new = _bias(100 + k), _bias(200 + k)
        if (arm, spec) == BAD:
            new.data[:, 64:] += 40.0  # amplifier B offset from what is certified
            new.data[:, 20] += 300.0  # a hot column
        data_id = {"instrument": "PFS", "arm": arm, "spectrograph": spec}
        report.cameras.append(CameraResult(data_id, f"u/ci/badbias/run {k}", f"PFS/calib/run {k}",
                                           measure("bias", new, current), camera_pictures("bias", new, current)))
    return report
