"""The checks of one camera's product: numbers from the new product and from new - current (new / current for a
flat), each judged against :data:`~pfstui.verify.limits.CHECKS`.

Every number is taken per amplifier and the worst amplifier's is the one judged, so one bad amplifier is not
averaged away by seven good ones; the check keeps every amplifier's number for the JSON report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from .image import ProductImage, outlier_fraction, robust
from .limits import CHECKS, Limit, Product, Verdict

__all__ = ["Check", "measure", "worst_of"]


@dataclass
class Check:
    """One check of one camera: its verdict and the numbers it used."""

    name: str
    verdict: Verdict
    value: float | None
    limit: Limit
    amp: str = ""
    per_amp: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"check": self.name, "verdict": self.verdict, "value": _plain(self.value), "amp": self.amp,
                "warn": self.limit.warn, "fail": self.limit.fail, "unit": self.limit.unit, "doc": self.limit.doc,
                "per_amp": {k: _plain(v) for k, v in self.per_amp.items()}}


def _plain(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


Measure = Callable[[np.ndarray], float]
K = TypeVar("K")


def _median(v: np.ndarray) -> float:
    return robust(v)[0]


def _noise(v: np.ndarray) -> float:
    return robust(v)[1]


def _median_minus_one(v: np.ndarray) -> float:
    return robust(v)[0] - 1.0


#: What each check measures on an amplifier's good pixels (of the product, or of the comparison image).
_MEASURES: dict[str, Measure] = {
    "mean": _median, "dark_current": _median, "noise": _noise, "spread": _noise, "median": _median_minus_one,
    "outliers": outlier_fraction, "diff_mean": _median, "diff_dark_current": _median, "diff_noise": _noise,
    "diff_outliers": outlier_fraction, "ratio_median": _median_minus_one, "ratio_spread": _noise,
}


def measure(product: Product, new: ProductImage, current: ProductImage | None,
            limits: Mapping[str, Limit] | None = None) -> list[Check]:
    """Every check of ``product`` on ``new``; the comparisons are ``n/a`` when nothing is certified (``current``).
    ``limits``: the product's checks with a plan's overrides (:func:`~pfstui.verify.limits.checks_with`)."""
    if product == "fiberFlat":
        new, current = _measured_only(new), current and _measured_only(current)
    compared = _compare(product, new, current)
    checks = []
    for name, limit in (limits or CHECKS[product]).items():
        source = compared if name.startswith(("diff_", "ratio_")) else new
        checks.append(_judge(name, limit, source))
    return checks


def _judge(name: str, limit: Limit, image: ProductImage | None) -> Check:
    if image is None:
        return Check(name, "n/a", None, limit)
    per_amp = {amp: _MEASURES[name](values) for amp, values in image.amp_values().items()}
    worst = worst_of(per_amp)
    return Check(name, limit.judge(per_amp[worst]), per_amp[worst], limit, worst, per_amp)


def worst_of(numbers: Mapping[K, float]) -> K:
    """The key (amplifier, fiber) whose number is the largest in size, a non-finite one first: a NaN fails its
    limit, so it must not hide behind a finite number (``max`` alone never picks a NaN)."""
    return max(numbers, key=lambda key: float("inf") if not np.isfinite(numbers[key]) else abs(numbers[key]))


def _compare(product: Product, new: ProductImage, current: ProductImage | None) -> ProductImage | None:
    """new - current (new / current for a flat) over the pixels good in both, or None without a comparable current."""
    if current is None or current.data.shape != new.data.shape:
        return None
    good = new.good & current.good
    if product == "fiberFlat":
        good &= current.data != 0
        data = np.divide(new.data, current.data, out=np.full(new.data.shape, np.nan), where=good)
    else:
        data = new.data - current.data
    return ProductImage(data, good, new.amps)


def _measured_only(image: ProductImage) -> ProductImage:
    """A fiberFlat without the pixels it did not measure: those hold exactly 1 (no light, no response measured)."""
    return ProductImage(image.data, image.good & (image.data != 1.0), image.amps)
