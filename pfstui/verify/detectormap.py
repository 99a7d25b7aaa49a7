"""The checks of one camera's detectorMap (bootstrap, candidate or certified): the fit's quality from the task's
log, and how far the traces and the wavelengths moved against the current map.

Why these: a detectorMap that fitted badly (a large RMS, many lines rejected) or that moved the traces or the
wavelength solution by more than the spectrograph drifts between nights is a wrong map, and every later product
(fiber profiles, extracted spectra) inherits the error.

Where the numbers come from, without drp_stella:

- the fit: drp_stella's ``Final fit: chi2=... dof=... xRMS=... yRMS=... (... nm) from USED/GOOD lines`` line, the
  last one in the ``<task>_log`` dataset (JSON log records) of the quantum that wrote the map (``bootstrap`` for
  ``detectorMap_bootstrap``, ``fitDetectorMap`` for ``detectorMap_candidate``); without that log (a certified
  copy), the map's own ``FIT_XRMS``/``FIT_YRMS``/``FIT_USED``/``FIT_GOOD`` header cards, if it has them;
- the shifts: the map's FITS file in pfs_datamodel's layout (``FIBERID``, and the ``CENTER`` and ``WAVELENGTH``
  tables of knots per fiber), read with astropy.  Only the base splines are compared: a distortion model on top
  of them (drp_stella's ``DistortedDetectorMap``) is not evaluated here, so a shift it alone carries is not seen.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checks import Check, worst_of
from .image import ReadError
from .limits import CHECKS, Limit

__all__ = ["CURRENT_TYPE", "DetectorMapFile", "FitStats", "fit_from_log", "measure", "read_detector_map"]

#: The dataset type the current (certified) map has, when it is not the new map's own.
CURRENT_TYPE = {"detectorMap_candidate": "detectorMap_calib"}
#: The task whose log holds a map's fit, by the map's dataset type.
FIT_TASK = {"detectorMap_candidate": "fitDetectorMap", "detectorMap_bootstrap": "bootstrap"}
_FINAL_FIT = re.compile(r"Final fit: chi2=(?P<chi2>\S+) dof=(?P<dof>\d+) xRMS=(?P<x>\S+) yRMS=(?P<y>\S+) "
                        r"\((?P<nm>\S+) nm(?:, \S+ km/s)?\) from (?P<used>\d+)/(?P<good>\d+) lines")


@dataclass(frozen=True)
class FitStats:
    """A fit's quality: residual RMS across (x) and along (y) the traces in pixels, and lines used of the good."""

    x_rms: float
    y_rms: float
    used: int
    good: int

    @property
    def rejected(self) -> float:
        return 1.0 - self.used / self.good if self.good else float("nan")


@dataclass(frozen=True)
class DetectorMapFile:
    """The base splines of a detectorMap file: per fiber, (knots, values) of its trace centre and wavelength."""

    header: Mapping[str, Any]
    centers: dict[int, tuple[np.ndarray, np.ndarray]]
    wavelengths: dict[int, tuple[np.ndarray, np.ndarray]]


def read_detector_map(uri: Any) -> DetectorMapFile:
    """Read a detectorMap's FITS file through its URI; ReadError (one line) when it is not one."""
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(uri.read())) as hdus:
            fiber_id = np.asarray(hdus["FIBERID"].data, dtype=int)
            return DetectorMapFile(dict(hdus[0].header), _splines(hdus["CENTER"].data, fiber_id),
                                   _splines(hdus["WAVELENGTH"].data, fiber_id))
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ReadError(f"{uri} is not a detectorMap in pfs_datamodel's FITS layout ({exc})",
                        "check the dataset type; verification reads FIBERID, CENTER and WAVELENGTH") from None


def _splines(table: Any, fiber_id: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    index, knot, value = (np.asarray(table[name]) for name in ("index", "knot", "value"))
    out = {}
    for i, fiber in enumerate(fiber_id):
        mine = index == i
        order = np.argsort(knot[mine])
        out[int(fiber)] = (knot[mine][order].astype(float), value[mine][order].astype(float))
    return out


def fit_from_log(text: str) -> FitStats | None:
    """The last ``Final fit:`` of a task's log records (the Butler's JSON formats, or plain text lines)."""
    found = None
    for message in _messages(text):
        match = _FINAL_FIT.search(message)
        if match:
            found = FitStats(float(match["x"]), float(match["y"]), int(match["used"]), int(match["good"]))
    return found


def _messages(text: str) -> list[str]:
    """The messages of ButlerLogRecords JSON (``{"records": [...]}``, a list, or one record a line); else the lines."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
        records = []
        for line in text.splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append({"message": line})
    if data is not None:
        records = data.get("records", []) if isinstance(data, dict) else data
    return [str(r.get("message", "")) for r in records if isinstance(r, dict)]


def _fit_from_header(header: Mapping[str, Any]) -> FitStats | None:
    try:
        return FitStats(float(header["FIT_XRMS"]), float(header["FIT_YRMS"]), int(header["FIT_USED"]),
                        int(header["FIT_GOOD"]))
    except (KeyError, TypeError, ValueError):
        return None


def measure(butler: Any, ref: Any, current: Any, limits: Mapping[str, Limit] | None = None) -> list[Check]:
    """Every detectorMap check of ``ref`` against ``current`` (None: the comparisons are n/a)."""
    limits = limits or CHECKS["detectorMap"]
    new = read_detector_map(butler.getURI(ref))
    old = read_detector_map(butler.getURI(current)) if current is not None else None
    fit = _fit_of(butler, ref) or _fit_from_header(new.header)
    values: dict[str, tuple[float | None, str, dict[str, float]]] = {
        "fit_xrms": (fit.x_rms if fit else None, "", {}),
        "fit_yrms": (fit.y_rms if fit else None, "", {}),
        "lines_rejected": (fit.rejected if fit else None, "", {}),
        "diff_trace": _worst_fiber(new.centers, old.centers, middle=True) if old else (None, "", {}),
        "diff_wavelength": _worst_fiber(new.wavelengths, old.wavelengths, middle=False) if old else (None, "", {}),
    }
    checks = []
    for name, limit in limits.items():
        value, where, per_fiber = values[name]
        checks.append(Check(name, limit.judge(value), value, limit, where, per_fiber))
    return checks


def _fit_of(butler: Any, ref: Any) -> FitStats | None:
    """The fit in the log of the quantum that wrote ``ref`` (same RUN, same data ID), if the repository has it."""
    task = FIT_TASK.get(ref.datasetType.name)
    if task is None:
        return None
    from lsst.daf.butler import MissingDatasetTypeError

    try:
        log = butler.find_dataset(f"{task}_log", ref.dataId, collections=ref.run)
    except MissingDatasetTypeError:  # no such task's log in this repository
        return None
    return fit_from_log(butler.getURI(log).read().decode("utf-8", "replace")) if log is not None else None


def _worst_fiber(new: dict[int, tuple[np.ndarray, np.ndarray]], old: dict[int, tuple[np.ndarray, np.ndarray]],
                 *, middle: bool) -> tuple[float | None, str, dict[str, float]]:
    """The largest |new - current| of a fiber both maps have, at the new map's middle row (``middle``) or at each
    of its knots; the fiber it is at; every fiber's.  NaN (a fail) when the maps share no fiber."""
    per_fiber: dict[str, float] = {}
    for fiber in sorted(set(new) & set(old)):
        knots, values = new[fiber]
        rows = np.array([(knots[0] + knots[-1]) / 2]) if middle else knots
        here = np.interp(rows, knots, values) if middle else values
        per_fiber[str(fiber)] = float(np.max(np.abs(here - np.interp(rows, *old[fiber]))))
    if not per_fiber:
        return float("nan"), "no fiber in common", {}
    worst = worst_of(per_fiber)
    return per_fiber[worst], f"fiber {worst}", per_fiber
