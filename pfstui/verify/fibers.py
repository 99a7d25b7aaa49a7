"""The checks of one camera's fiberProfiles, and of one arm's fiberNorms: each fiber's number, the fibers that
stand out, and how far each fiber moved against the current product.

Why these: a profile much wider or narrower than its neighbours' (a fiber fitted on a bad trace), a fiber without
a profile, a norm that is not a positive number, or a product that changed a fiber by more than a night's drift
is wrong for every spectrum extracted with it, and that shows only much later, in the science spectra.

Where the numbers come from, without drp_stella: the products' FITS files, read with astropy through the Butler's
URIs, in pfs_datamodel's layouts:

- fiberProfiles (``PfsFiberProfiles``, what drp_stella's ``FiberProfileSet`` writes): the ``FIBERS`` table
  (``fiberId``, ``oversample``) and the ``PROFILES`` table (``fiberId``, ``profiles``, ``masks``: one row per
  fiber and swath).  A sampled profile's point ``i`` of ``P`` lies ``(i - (P - 1) / 2) / oversample`` pixels from
  the trace centre; a fiber's width is the RMS width (square root of the second central moment, negative samples
  taken as 0) in pixels, the median over its swaths.
- fiberNorms (``PfsFiberNorms``, DAMD_VER 2): ``FIBERID`` and ``VALUES`` (per fiber, per detector row); a fiber's
  norm is the median of its finite values.  Their spread is taken against each spectrograph's median norm (the
  spectrograph from the fiberId, as PFS numbers fibers), as the spectrographs' throughputs differ.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checks import Check, worst_of
from .image import ReadError, robust
from .limits import CHECKS, Limit, Product

__all__ = ["FiberValues", "measure", "profile_width", "read_fiber_norms", "read_fiber_profiles"]

#: PFS numbers its fibers by spectrograph: fiberId 1-651 on SM1, 652-1302 on SM2, and so on.
FIBERS_PER_SPECTROGRAPH = 651
#: A check's number (None: not applicable), where it is worst (``fiber N``), and every fiber's number.
Measured = tuple[float | None, str, dict[str, float]]


@dataclass(frozen=True)
class FiberValues:
    """One number per fiber (a profile's width, a norm), by fiberId; NaN where the file has none."""

    values: dict[int, float]

    def good(self) -> dict[int, float]:
        return {fiber: value for fiber, value in self.values.items() if np.isfinite(value) and value > 0}


def profile_width(profile: Any, oversample: float, mask: Any = None) -> float:
    """The RMS width in pixels of one sampled profile; NaN when it has no positive, unmasked sample."""
    values = np.asarray(profile, dtype=float)
    x = (np.arange(len(values)) - (len(values) - 1) / 2) / oversample
    keep = np.isfinite(values)
    if mask is not None and len(mask) == len(values):
        keep &= ~np.asarray(mask, dtype=bool)
    weights = np.clip(np.where(keep, values, 0.0), 0.0, None)
    total = weights.sum()
    if not total > 0:
        return float("nan")
    mean = float(np.sum(weights * x) / total)
    return float(np.sqrt(np.sum(weights * (x - mean) ** 2) / total))


def read_fiber_profiles(uri: Any) -> FiberValues:
    """Each fiber's profile width from a fiberProfiles file; ReadError (one line) when it is not one."""
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(uri.read())) as hdus:
            fibers, profiles = hdus["FIBERS"].data, hdus["PROFILES"].data
            masks = profiles["masks"] if "masks" in profiles.names else [None] * len(profiles)
            widths: dict[int, list[float]] = {int(fiber): [] for fiber in fibers["fiberId"]}
            oversample = dict(zip((int(f) for f in fibers["fiberId"]), fibers["oversample"]))
            for fiber, profile, mask in zip(profiles["fiberId"], profiles["profiles"], masks):
                widths.setdefault(int(fiber), []).append(profile_width(profile, oversample.get(int(fiber), 1.0), mask))
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ReadError(f"{uri} is not a fiberProfiles file in pfs_datamodel's FITS layout ({exc})",
                        "check the dataset type; verification reads the FIBERS and PROFILES tables") from None
    return FiberValues({fiber: _median_or_nan(w) for fiber, w in widths.items()})


def read_fiber_norms(uri: Any) -> FiberValues:
    """Each fiber's norm (median over the detector rows) from a fiberNorms file; ReadError when it is not one."""
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(uri.read())) as hdus:
            fiber_id = np.asarray(hdus["FIBERID"].data, dtype=int).ravel()
            values = np.asarray(hdus["VALUES"].data, dtype=float).reshape(len(fiber_id), -1)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ReadError(f"{uri} is not a fiberNorms file in pfs_datamodel's FITS layout ({exc})",
                        "check the dataset type; verification reads the FIBERID and VALUES images") from None
    return FiberValues({int(fiber): _median_or_nan(row) for fiber, row in zip(fiber_id, values)})


def _median_or_nan(values: Any) -> float:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(np.median(finite)) if finite.size else float("nan")


#: How each product's file is read.
_READERS = {"fiberProfiles": read_fiber_profiles, "fiberNorms": read_fiber_norms}


def measure(butler: Any, product: Product, ref: Any, current: Any,
            limits: Mapping[str, Limit] | None = None) -> list[Check]:
    """Every check of ``product`` (fiberProfiles or fiberNorms) of ``ref`` against ``current`` (None: n/a)."""
    read = _READERS[product]
    new = read(butler.getURI(ref))
    old = read(butler.getURI(current)) if current is not None else None
    values = _profile_values(new, old) if product == "fiberProfiles" else _norm_values(new, old)
    checks = []
    for name, limit in (limits or CHECKS[product]).items():
        value, where, per_fiber = values[name]
        checks.append(Check(name, limit.judge(value), value, limit, where, per_fiber))
    return checks


def _profile_values(new: FiberValues, old: FiberValues | None) -> dict[str, Measured]:
    widths = new.good()
    median = float(np.median(list(widths.values()))) if widths else float("nan")
    return {
        "width_spread": _worst({f: w / median - 1 for f, w in widths.items()}),
        "missing": _missing(new),
        "ratio_width": _changes(new, old, lambda n, c: n / c - 1),
    }


def _norm_values(new: FiberValues, old: FiberValues | None) -> dict[str, Measured]:
    relative = _relative_to_spectrograph(new.good())
    spread = robust(np.array(list(relative.values())))[1] if relative else float("nan")
    farthest = _worst(relative)
    return {
        "spread": (spread, farthest[1], farthest[2]),
        "bad_norms": _missing(new),
        "ratio_norm": _changes(new, old, lambda n, c: n / c - 1),
    }


def _relative_to_spectrograph(norms: dict[int, float]) -> dict[int, float]:
    """Each norm / the median norm of its spectrograph's fibers - 1.

    Why per spectrograph: one arm's fiberNorms hold every spectrograph's fibers, and the spectrographs' throughputs
    differ by more than their fibers do; the fiber-to-fiber scatter is what tells a bad product."""
    groups: dict[int, list[int]] = {}
    for fiber in norms:
        groups.setdefault((fiber - 1) // FIBERS_PER_SPECTROGRAPH, []).append(fiber)
    out = {}
    for fibers in groups.values():
        median = float(np.median([norms[f] for f in fibers]))
        out.update({f: norms[f] / median - 1 for f in fibers})
    return dict(sorted(out.items()))


def _worst(per_fiber: dict[int, float]) -> Measured:
    """The largest |number| and its fiber (NaN, a fail, when no fiber has one); every fiber's number."""
    if not per_fiber:
        return float("nan"), "no good fiber", {}
    worst = worst_of(per_fiber)
    return per_fiber[worst], f"fiber {worst}", {str(f): v for f, v in sorted(per_fiber.items())}


def _missing(new: FiberValues) -> Measured:
    """The fraction of fibers without a usable (finite, positive) number; the first such fiber."""
    bad = sorted(set(new.values) - set(new.good()))
    if not new.values:
        return float("nan"), "no fiber", {}
    return len(bad) / len(new.values), f"fiber {bad[0]}" if bad else "", {str(f): new.values[f] for f in bad}


def _changes(new: FiberValues, old: FiberValues | None, change: Any) -> Measured:
    """The largest change of a fiber both products have a usable number for (matched by fiberId)."""
    if old is None:
        return None, "", {}
    now, before = new.good(), old.good()
    common = set(now) & set(before)
    if not common:
        return float("nan"), "no fiber in common", {}
    return _worst({f: float(change(now[f], before[f])) for f in common})
