"""The one table of verification thresholds: per product, per check, the warn and fail limits.

Why one place: an operator tuning a limit, and a reviewer asking "why did r1 fail", both look here.  Every limit
is on the absolute value of the number the check measures (an offset of -40 ADU fails as +40 does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CHECKS", "PRODUCTS", "Limit", "Product", "Verdict", "product_kind"]

Verdict = Literal["pass", "warn", "fail", "n/a"]
Product = Literal["bias", "dark", "fiberFlat"]

#: Dataset type names verification knows, and the product each is (PFS names the flat's product fiberFlat).
PRODUCTS: dict[str, Product] = {"bias": "bias", "dark": "dark", "fiberFlat": "fiberFlat", "flat": "fiberFlat"}

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
}


def product_kind(dataset_type: str) -> Product | None:
    """The product a dataset type is, or None when verification does not know it."""
    return PRODUCTS.get(dataset_type)
