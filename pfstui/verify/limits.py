"""The one table of verification thresholds: per product, per check, the warn and fail limits.

Why one place: an operator tuning a limit, and a reviewer asking "why did r1 fail", both look here.  Every limit
is on the absolute value of the number the check measures (an offset of -40 ADU fails as +40 does).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from pfstui.errors import UserError

__all__ = ["CHECKS", "PRODUCTS", "Limit", "LimitError", "Product", "Verdict", "checks_with", "override",
           "parse_limit", "product_kind"]

Verdict = Literal["pass", "warn", "fail", "n/a"]
Product = Literal["bias", "dark", "fiberFlat", "detectorMap", "fiberProfiles", "fiberNorms"]

#: Dataset type names verification knows, and the product each is (PFS names the flat's product fiberFlat).
PRODUCTS: dict[str, Product] = {"bias": "bias", "dark": "dark", "fiberFlat": "fiberFlat", "flat": "fiberFlat",
                                 "detectorMap": "detectorMap", "detectorMap_bootstrap": "detectorMap",
                                 "detectorMap_candidate": "detectorMap", "detectorMap_calib": "detectorMap",
                                 "fiberProfiles": "fiberProfiles", "fiberNorms": "fiberNorms",
                                 "fiberNorms_calib": "fiberNorms"}

#: A pixel further than this many robust sigma from its amplifier's median is an outlier (hot or cold).
OUTLIER_SIGMA = 5.0


@dataclass(frozen=True)
class Limit:
    """When a check's number warns and when it fails; ``unit`` is shown beside the number."""

    warn: float
    fail: float
    unit: str = ""
    doc: str = ""

    def judge(self, value: float | None) -> Verdict:
        if value is None:
            return "n/a"
        size = abs(value)
        if not size <= self.fail:  # NaN fails too
            return "fail"
        return "warn" if size > self.warn else "pass"


_OUTLIERS = Limit(0.001, 0.01, "", f"fraction of pixels beyond {OUTLIER_SIGMA:g} robust sigma of their amplifier")
_DIFF_OUTLIERS = Limit(0.001, 0.01, "", f"fraction of pixels of new - current beyond {OUTLIER_SIGMA:g} robust sigma")

#: Per product, the checks in the order they are shown.  ``diff_*``/``ratio_*`` compare with the certified product.
CHECKS: dict[Product, dict[str, Limit]] = {
    "bias": {
        "mean": Limit(10.0, 30.0, "ADU", "robust mean (median) of the worst amplifier"),
        "noise": Limit(10.0, 20.0, "ADU", "robust noise (1.4826 MAD) of the worst amplifier"),
        "outliers": _OUTLIERS,
        "diff_mean": Limit(2.0, 5.0, "ADU", "median of new - current, worst amplifier"),
        "diff_noise": Limit(5.0, 10.0, "ADU", "robust noise of new - current, worst amplifier"),
        "diff_outliers": _DIFF_OUTLIERS,
    },
    "dark": {
        "dark_current": Limit(0.2, 1.0, "ADU/s", "median dark current of the worst amplifier"),
        "noise": Limit(0.1, 0.5, "ADU/s", "robust noise of the worst amplifier"),
        "outliers": _OUTLIERS,
        "diff_dark_current": Limit(0.02, 0.1, "ADU/s", "median of new - current, worst amplifier"),
        "diff_noise": Limit(0.1, 0.5, "ADU/s", "robust noise of new - current, worst amplifier"),
        "diff_outliers": _DIFF_OUTLIERS,
    },
    "fiberFlat": {
        "median": Limit(0.01, 0.05, "", "median - 1 of the worst amplifier"),
        "spread": Limit(0.05, 0.1, "", "robust spread (1.4826 MAD) of the worst amplifier"),
        # A flat's trace wings are measured at low signal and scatter more: a few percent is normal.
        "outliers": Limit(0.02, 0.05, "", f"fraction of pixels beyond {OUTLIER_SIGMA:g} robust sigma of their amplifier"),
        "ratio_median": Limit(0.005, 0.02, "", "median of new / current - 1, worst amplifier"),
        "ratio_spread": Limit(0.03, 0.08, "", "robust spread of new / current, worst amplifier"),
        "diff_outliers": Limit(0.001, 0.01, "", f"fraction of pixels of new / current beyond {OUTLIER_SIGMA:g} sigma"),
    },
    # A good PFS fit leaves about 0.05 pixel; the spectrograph moves well under a pixel between nights.
    "detectorMap": {
        "fit_xrms": Limit(0.1, 0.3, "pix", "residual RMS across the traces of the final fit (task log)"),
        "fit_yrms": Limit(0.1, 0.3, "pix", "residual RMS along the traces (wavelength) of the final fit (task log)"),
        "lines_rejected": Limit(0.1, 0.3, "", "fraction of the good lines the final fit did not use (task log)"),
        "diff_trace": Limit(0.5, 2.0, "pix", "largest shift of a fiber's trace centre at the middle row, new - current"),
        "diff_wavelength": Limit(0.05, 0.2, "nm", "largest wavelength change of a fiber at the same row, new - current"),
    },
    # Relative, as a profile's RMS width depends on its radius (samples beyond it are cut off) as much as on the
    # optics: neighbouring PFS fibers' widths differ by several percent, and a fiber's own by about one between runs.
    "fiberProfiles": {
        "width_spread": Limit(0.15, 0.3, "", "largest RMS width / median width - 1 of a fiber's profile"),
        "missing": Limit(0.0, 0.05, "", "fraction of fibers without a profile (none, masked, NaN or not positive)"),
        "ratio_width": Limit(0.05, 0.15, "", "largest change of a fiber's RMS width, new / current - 1"),
    },
    # Fiber throughputs differ by several percent; a fiber's own changes by about a percent between runs.
    "fiberNorms": {
        "spread": Limit(0.15, 0.3, "", "robust spread (1.4826 MAD) of the norms / their spectrograph's median"),
        "bad_norms": Limit(0.0, 0.0, "", "fraction of fibers whose norm is not finite and positive"),
        "ratio_norm": Limit(0.03, 0.1, "", "largest change of a fiber's norm, new / current - 1"),
    },
}


def product_kind(dataset_type: str) -> Product | None:
    """The product a dataset type is, or None when verification does not know it."""
    return PRODUCTS.get(dataset_type)


class LimitError(UserError):
    """A limit override names no known product or check, or its numbers are not warn <= fail."""

    title = "Verify"


Table = dict[Product, dict[str, Limit]]


def override(product: str, check: str, warn: object, fail: object) -> tuple[Product, Limit]:
    """``CHECKS[product][check]`` with its warn and fail replaced (``product`` may be a dataset type such as
    ``flat``); LimitError naming the known products or checks, or saying what is wrong with the numbers."""
    kind = product_kind(product)
    if kind is None:
        raise LimitError(f"verify has no product {product!r}", f"products: {', '.join(CHECKS)}")
    known = CHECKS[kind]
    if check not in known:
        raise LimitError(f"{kind} has no check {check!r}", f"its checks: {', '.join(known)}")
    numbers = [_number(value) for value in (warn, fail)]
    if None in numbers or not 0 <= numbers[0] <= numbers[1]:  # type: ignore[operator]
        raise LimitError(f"{kind}.{check}: warn and fail must be numbers with 0 <= warn <= fail, got {warn}, {fail}",
                         f"write e.g. {kind}.{check}={known[check].warn:g},{known[check].fail:g}")
    return kind, replace(known[check], warn=numbers[0], fail=numbers[1])


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parse_limit(text: str) -> tuple[Product, str, Limit]:
    """``PRODUCT.CHECK=WARN,FAIL`` (``bias.mean=5,20``) as (product, check, limit)."""
    name, sep, numbers = text.partition("=")
    product, dot, check = name.strip().partition(".")
    values = numbers.split(",")
    if not (sep and dot and len(values) == 2):
        raise LimitError(f"limit {text!r} is not PRODUCT.CHECK=WARN,FAIL", "write e.g. bias.mean=5,20")
    kind, limit = override(product, check, values[0].strip(), values[1].strip())
    return kind, check, limit


def checks_with(overrides: Iterable[str] = (), table: Mapping[Product, Mapping[str, Limit]] = CHECKS) -> Table:
    """:data:`CHECKS` (or ``table``) with each ``PRODUCT.CHECK=WARN,FAIL`` override applied, the later winning.

    Why a function and not edits to CHECKS: a plan's limits hold for its own verify stages only."""
    out: Table = {product: dict(checks) for product, checks in table.items()}
    for text in overrides:
        product, check, limit = parse_limit(text)
        out[product][check] = limit
    return out
