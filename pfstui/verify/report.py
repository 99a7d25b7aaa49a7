"""Verify a product's cameras: find the new datasets and the certified ones, read both as FITS, run the checks.

Why through :class:`~pfstui.butler.gateway.ButlerGateway`: its session turns the Butler's own errors (unknown
collection, bad dataset type) into one line with the fix, as every other headless command does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pfstui.butler.errors import InputError, NotFoundError
from pfstui.butler.gateway import ButlerGateway
from pfstui.butler.values import camera_text, plain_data_id

from . import detectormap
from .checks import Check, measure
from .image import read_image
from .limits import CHECKS, PRODUCTS, Limit, Product, Verdict, product_kind

__all__ = ["CameraResult", "Report", "verify"]

_ORDER: dict[Verdict, int] = {"n/a": 0, "pass": 1, "warn": 2, "fail": 3}


@dataclass
class CameraResult:
    """The checks of one camera (data ID), and which datasets they read."""

    data_id: dict[str, Any]
    new: str
    current: str | None
    checks: list[Check]

    @property
    def camera(self) -> str:
        return camera_text(self.data_id)

    @property
    def verdict(self) -> Verdict:
        return max((c.verdict for c in self.checks), key=_ORDER.__getitem__, default="n/a")

    def to_json(self) -> dict:
        return {"camera": self.camera, "data_id": self.data_id, "verdict": self.verdict, "new": self.new,
                "current": self.current, "checks": [c.to_json() for c in self.checks]}


@dataclass
class Report:
    """Every camera's result for one product."""

    collection: str
    dataset_type: str
    product: Product
    against: str | None
    at: str | None
    cameras: list[CameraResult] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [c.camera for c in self.cameras if c.verdict == "fail"]

    def to_json(self) -> dict:
        return {"collection": self.collection, "dataset_type": self.dataset_type, "product": self.product,
                "against": self.against, "at": self.at, "failed": self.failed,
                "cameras": [c.to_json() for c in self.cameras]}


def verify(gw: ButlerGateway, collection: str, dataset_type: str, *, against: str | None = None,
           at: Any = None, limits: Mapping[Product, Mapping[str, Limit]] | None = None) -> Report:
    """Verify every camera of ``dataset_type`` in ``collection`` against ``against`` (a CALIBRATION collection, or a
    chain of them) at time ``at`` (astropy Time; now if None).  ``against=None`` compares with nothing.  ``limits``:
    the table of checks to judge by (a plan's overrides applied, :func:`~pfstui.verify.limits.checks_with`)."""
    product = product_kind(dataset_type)
    if product is None:
        raise InputError(f"verify does not know dataset type {dataset_type!r}",
                         f"give one of {', '.join(sorted(PRODUCTS))}")
    gw.dataset_type(dataset_type)  # unknown to the repository: one line naming the known ones
    at = _now() if at is None else at
    if against is not None:
        gw.calibration_collections(against)  # refuses a missing or non-CALIBRATION collection in one line
    report = Report(collection, dataset_type, product, against, at.isot if against else None)
    with gw.session(f"{dataset_type} in {collection}") as butler:
        refs = sorted(butler.query_datasets(dataset_type, collections=collection, find_first=True, explain=False),
                      key=lambda ref: camera_text(plain_data_id(ref.dataId)))
        if not refs:
            raise NotFoundError(f"no {dataset_type} in {collection}",
                                "give the RUN (or chain) the pipeline wrote its product to")
        for ref in refs:
            current = _certified(butler, ref, against, at)
            report.cameras.append(_camera(butler, product, ref, current, (limits or CHECKS)[product]))
    return report


def _camera(butler: Any, product: Product, ref: Any, current: Any,
            limits: Mapping[str, Limit] | None = None) -> CameraResult:
    if product == "detectorMap":
        checks = detectormap.measure(butler, ref, current, limits)
    else:
        new_image = read_image(butler.getURI(ref))
        current_image = read_image(butler.getURI(current)) if current is not None else None
        checks = measure(product, new_image, current_image, limits)
    return CameraResult(plain_data_id(ref.dataId), f"{ref.run} {ref.id}",
                        f"{current.run} {current.id}" if current is not None else None, checks)


def _certified(butler: Any, ref: Any, against: str | None, at: Any) -> Any:
    """The dataset certified for ``ref``'s data ID in ``against`` at ``at``, or None."""
    if against is None:
        return None
    from lsst.daf.butler import Timespan

    current_type = detectormap.CURRENT_TYPE.get(ref.datasetType.name, ref.datasetType.name)  # a candidate's is _calib
    return butler.find_dataset(current_type, ref.dataId, collections=against, timespan=Timespan.fromInstant(at))


def _now() -> Any:
    from astropy.time import Time

    return Time.now().tai
