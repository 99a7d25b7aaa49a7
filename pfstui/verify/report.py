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

from . import detectormap, fibers
from .checks import Check, measure
from .image import ReadError, read_image
from .limits import CHECKS, PRODUCTS, Limit, Product, Verdict, product_kind
from .pictures import Pictures, camera_pictures

__all__ = ["CameraResult", "Report", "verify", "verify_refs"]

_ORDER: dict[Verdict, int] = {"n/a": 0, "pass": 1, "warn": 2, "fail": 3}


@dataclass
class CameraResult:
    """The checks of one camera (data ID), and which datasets they read."""

    data_id: dict[str, Any]
    new: str
    current: str | None
    checks: list[Check]
    pictures: Pictures | None = None  #: drawn by the verification view (``verify(..., pictures=True)``)

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
           at: Any = None, pictures: bool = False,
           limits: Mapping[Product, Mapping[str, Limit]] | None = None) -> Report:
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
        report.cameras.extend(verify_refs(butler, product, refs, against, at, pictures=pictures, limits=limits))
    return report


def verify_refs(butler: Any, product: Product, refs: list, against: str | None, at: Any, *,
                unreadable_fails: bool = False, pictures: bool = False,
                limits: Mapping[Product, Mapping[str, Limit]] | None = None) -> list[CameraResult]:
    """Each of ``refs`` (one per camera) against the dataset certified for its data ID in ``against`` at ``at``.

    Why apart from :func:`verify`: the certify gate (:mod:`pfstui.verify.gate`) verifies the datasets its preview
    chose, not a whole collection.  ``unreadable_fails``: a file that cannot be read is a camera failing one check
    named ``read`` (its reason in the limit's doc), which an operator may override like any failure, instead of
    an error that stops everything."""
    table = (limits or CHECKS)[product]
    results = []
    for ref in refs:
        current = _certified(butler, ref, against, at)
        try:
            results.append(_camera(butler, product, ref, current, table, pictures))
        except ReadError as exc:
            if not unreadable_fails:
                raise
            results.append(_unreadable(ref, current, str(exc.args[0])))
    return results


def _unreadable(ref: Any, current: Any, reason: str) -> CameraResult:
    """A camera whose file cannot be read: one failing check ``read``, the reason in its limit's doc."""
    return CameraResult(plain_data_id(ref.dataId), *_names(ref, current),
                        [Check("read", "fail", None, Limit(0.0, 0.0, "", reason))])


def _camera(butler: Any, product: Product, ref: Any, current: Any, limits: Mapping[str, Limit],
            pictures: bool = False) -> CameraResult:
    if product == "detectorMap":
        return CameraResult(plain_data_id(ref.dataId), *_names(ref, current),
                            detectormap.measure(butler, ref, current, limits))
    if product in ("fiberProfiles", "fiberNorms"):
        return CameraResult(plain_data_id(ref.dataId), *_names(ref, current),
                            fibers.measure(butler, product, ref, current, limits))
    new_image = read_image(butler.getURI(ref))
    current_image = read_image(butler.getURI(current)) if current is not None else None
    return CameraResult(plain_data_id(ref.dataId), *_names(ref, current),
                        measure(product, new_image, current_image, limits),
                        camera_pictures(product, new_image, current_image) if pictures else None)


def _names(ref: Any, current: Any) -> tuple[str, str | None]:
    """The new and the current dataset as the report names them: ``RUN UUID``."""
    return f"{ref.run} {ref.id}", f"{current.run} {current.id}" if current is not None else None


def _certified(butler: Any, ref: Any, against: str | None, at: Any) -> Any:
    """The dataset certified for ``ref``'s data ID in ``against`` at ``at``; when none is, the one whose range ended
    last at or before ``at``, or None.

    Why the predecessor: a new product's range usually begins where the last one's ended, so at the begin of the
    range being proposed nothing is certified, and the product to compare with is the one it follows."""
    if against is None:
        return None
    from lsst.daf.butler import Timespan

    current_type = detectormap.CURRENT_TYPE.get(ref.datasetType.name, ref.datasetType.name)  # a candidate's is _calib
    found = butler.find_dataset(current_type, ref.dataId, collections=against, timespan=Timespan.fromInstant(at))
    return found if found is not None else _predecessor(butler, current_type, ref, against, at)


def _predecessor(butler: Any, current_type: str, ref: Any, against: str, at: Any) -> Any:
    """The ``current_type`` dataset whose validity range for ``ref``'s data ID ended last at or before ``at`` in
    ``against`` (a CALIBRATION collection or a chain of them; the first in search order wins a tie)."""
    from lsst.daf.butler import CollectionType, Timespan

    from pfstui.butler.registry import calibration_rows
    from pfstui.butler.values import nsec_bounds

    dt = butler.get_dataset_type(current_type)
    instant = nsec_bounds(Timespan.fromInstant(at))[0]
    best = None
    for calib in butler.collections.query(against, collection_types={CollectionType.CALIBRATION},
                                          flatten_chains=True):
        for row in calibration_rows(butler, dt, calib, data_ids=[plain_data_id(ref.dataId)]):
            if row.nsec[1] <= instant and (best is None or row.nsec[1] > best.nsec[1]):
                best = row
    return None if best is None else butler.get_dataset(best.dataset_id)


def _now() -> Any:
    from astropy.time import Time

    return Time.now().tai
