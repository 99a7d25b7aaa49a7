"""Python types of the demo's datasets that are not plain arrays or dicts, and the formatters of its detectorMaps,
image calibrations, fiberProfiles and fiberNorms."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from lsst.daf.butler.formatters.pickle import PickleFormatter
from lsst.daf.butler.formatters.typeless import TypelessFormatter
from lsst.resources import ResourcePath

from . import model


@dataclass
class DetectorMap:
    """A (very) small detectorMap: where each fiber's trace lies and its wavelength solution.

    ``xCenter[i]`` is the column of fiber ``fiberId[i]`` at the middle row; ``wavelength`` holds the
    polynomial coefficients (lowest order first) of wavelength against row; ``slitOffsets`` is the
    per-fiber (spatial, spectral) offset array that the detectorMap pipeline can take from another map
    (the ``detectorMap_bootstrap.slitOffsets`` component).
    """

    fiberId: np.ndarray
    xCenter: np.ndarray
    wavelength: np.ndarray
    slitOffsets: np.ndarray
    metadata: dict = field(default_factory=dict)

    def findFiber(self, x: float) -> int:
        """Return the fiberId whose trace is closest to column ``x``."""
        return int(self.fiberId[np.argmin(np.abs(self.xCenter - x))])


class DetectorMapFormatter(PickleFormatter):
    """The demo's detectorMap formatter, as drp_stella has its own (``DetectorMapFormatter``).

    Why a name of the demo's own (the bytes are a plain pickle): a repository's datastore records name the
    formatter of each file, and on a production host pfstui's environment cannot import drp_stella's.  The
    demo reproduces that: a process that cannot import this module cannot read or write a demo detectorMap.
    """


class DetectorMapFitsFormatter(TypelessFormatter):
    """The demo's detectorMaps as FITS in the HDU layout of pfs_datamodel's ``SplinedDetectorMap`` (what drp_stella
    writes under its distortion model): a primary header (``OBSTYPE``, the fit statistics ``FIT_*``, the demo's
    metadata as ``DEMO.*``), ``FIBERID``,
    ``SLITOFF`` (spatial, spectral, focus rows) and the ``CENTER`` and ``WAVELENGTH`` tables of knots per fiber
    (columns ``index``, ``knot``, ``value``; knot = row).

    Why: verification reads detectorMaps with a FITS library where neither drp_stella nor the demo can be imported,
    as it reads the image products.  The demo's map is a straight trace per fiber (two knots) and a polynomial
    wavelength solution (its coefficients also in ``WLCOEFn``, so the demo's own tasks read back exactly what they
    wrote).  Repositories built before this keep :class:`DetectorMapFormatter` (their configuration names it).
    """

    default_extension = ".fits"
    unsupported_parameters = None
    can_read_from_uri = True

    def read_from_uri(self, uri: ResourcePath, component: str | None = None, expected_size: int = -1) -> Any:
        from astropy.io import fits

        with fits.open(io.BytesIO(uri.read())) as hdus:
            header = hdus[0].header
            centers = hdus["CENTER"].data
            fiber_id = np.asarray(hdus["FIBERID"].data, dtype=np.int64)
            x_center = np.array([centers["value"][centers["index"] == i][0] for i in range(len(fiber_id))])
            coeffs = np.array([header[f"WLCOEF{k}"] for k in range(header["WLORDER"] + 1)])
            metadata = {key[len("DEMO."):]: header[key] for key in header if key.startswith("DEMO.")}
            metadata.update({key: header[key] for key in header if key.startswith("FIT_")})
            slit = np.asarray(hdus["SLITOFF"].data, dtype=float)[:2].T
        return DetectorMap(fiberId=fiber_id, xCenter=x_center, wavelength=coeffs, slitOffsets=slit, metadata=metadata)

    def to_bytes(self, in_memory_dataset: Any) -> bytes:
        from astropy.io import fits

        detmap = in_memory_dataset
        n = len(detmap.fiberId)
        header = fits.Header()
        header["OBSTYPE"] = "detectorMap"
        header["WLORDER"] = len(detmap.wavelength) - 1
        for k, coeff in enumerate(detmap.wavelength):
            header[f"WLCOEF{k}"] = float(coeff)
        for key, value in detmap.metadata.items():
            header[key if key.startswith("FIT_") else f"HIERARCH DEMO.{key}"] = getattr(value, "item", lambda: value)()
        slit = np.zeros((3, n))
        slit[:2] = np.asarray(detmap.slitOffsets, dtype=float).reshape(n, 2).T
        ends, rows = np.array([0.0, model.ROWS - 1.0]), np.linspace(0.0, model.ROWS - 1.0, 9)
        hdus = fits.HDUList([
            fits.PrimaryHDU(header=header),
            fits.ImageHDU(np.asarray(detmap.fiberId, dtype=np.int32), name="FIBERID"),
            fits.ImageHDU(slit, name="SLITOFF"),
            _knot_table("CENTER", ends, [np.full(2, x) for x in detmap.xCenter]),
            _knot_table("WAVELENGTH", rows, [np.polynomial.polynomial.polyval(rows, detmap.wavelength)] * n),
        ])
        out = io.BytesIO()
        hdus.writeto(out)
        return out.getvalue()


def _knot_table(name: str, knots: np.ndarray, values: list[np.ndarray]) -> Any:
    """A table of (fiber index, knot, value) rows: every fiber's knots and values, as pfs_datamodel writes splines."""
    from astropy.io import fits

    return fits.BinTableHDU.from_columns([
        fits.Column(name="index", format="K", array=np.repeat(np.arange(len(values)), len(knots))),
        fits.Column(name="knot", format="D", array=np.tile(knots, len(values))),
        fits.Column(name="value", format="D", array=np.concatenate(values) if values else np.zeros(0)),
    ], name=name)


#: Amplifiers the demo's FITS images are cut into, across columns (as PFS's CCDs read out through 8 amplifiers).
DEMO_AMPLIFIERS = 4


class ExposureFitsFormatter(TypelessFormatter):
    """The demo's image calibrations (bias, dark, fiberFlat) as FITS in the layout the LSST stack writes.

    Why: the real products are ``lsst.afw.image.Exposure`` files (an empty primary HDU, then IMAGE, MASK and
    VARIANCE extensions), which tools that cannot import afw or drp_stella read with a FITS library; the demo
    writes the same layout from its plain arrays, so verification is exercised exactly as it runs on real
    products.  The amplifier geometry is in the IMAGE header (``NAMP``, ``AMPnNAME``, ``AMPnSEC`` as FITS
    sections), which is where pfstui's verification looks for it.
    """

    default_extension = ".fits"
    unsupported_parameters = None
    can_read_from_uri = True

    def read_from_uri(self, uri: ResourcePath, component: str | None = None, expected_size: int = -1) -> Any:
        from astropy.io import fits

        with fits.open(io.BytesIO(uri.read())) as hdus:
            return np.array(hdus["IMAGE"].data)

    def to_bytes(self, in_memory_dataset: Any) -> bytes:
        from astropy.io import fits

        image = np.asarray(in_memory_dataset)
        header = fits.Header()
        header.update(_amplifier_cards(image.shape))
        variance = np.full(image.shape, _robust_sigma(image) ** 2, dtype=np.float32)
        hdus = fits.HDUList([
            fits.PrimaryHDU(),
            fits.ImageHDU(image, header=header, name="IMAGE"),
            fits.ImageHDU(np.zeros(image.shape, dtype=np.int32), name="MASK"),
            fits.ImageHDU(variance, name="VARIANCE"),
        ])
        out = io.BytesIO()
        hdus.writeto(out)
        return out.getvalue()


def _amplifier_cards(shape: tuple[int, ...]) -> dict[str, Any]:
    """Header cards of the amplifier sections (1-based, inclusive, ``[x0:x1,y0:y1]``) of a 2-D image."""
    if len(shape) != 2 or shape[1] % DEMO_AMPLIFIERS:
        return {}
    rows, cols = shape
    width = cols // DEMO_AMPLIFIERS
    cards: dict[str, Any] = {"NAMP": DEMO_AMPLIFIERS}
    for k in range(DEMO_AMPLIFIERS):
        cards[f"AMP{k + 1}NAME"] = f"{k + 1}"
        cards[f"AMP{k + 1}SEC"] = f"[{k * width + 1}:{(k + 1) * width},1:{rows}]"
    return cards


def _robust_sigma(image: np.ndarray) -> float:
    if image.size == 0:
        return 0.0
    return 1.4826 * float(np.median(np.abs(image - np.median(image))))


class FiberProfilesFitsFormatter(TypelessFormatter):
    """The demo's fiberProfiles as FITS in the layout of pfs_datamodel's ``PfsFiberProfiles`` (what drp_stella's
    ``FiberProfileSet`` writes): a primary header (``OBSTYPE``, ``DAMD_VER``), a ``FIBERS`` table (``fiberId``,
    ``radius``, ``oversample``, ``norm``) and a ``PROFILES`` table (``fiberId``, ``rows``, ``profiles``, ``masks``;
    one row per fiber and swath).

    Why: verification reads fiber profiles with a FITS library where drp_stella cannot be imported.  The demo's
    in-memory product stays its array of ``[radius, oversample, profile...]`` rows in the detectorMap's fiber order
    (its tasks read it so); the fiberIds are the demo's fibers of the data ID's spectrograph, one swath at the middle
    row, no extraction norm.  Repositories built before this keep the pickle formatter (their configuration).
    """

    default_extension = ".fits"
    unsupported_parameters = None
    can_read_from_uri = True

    def read_from_uri(self, uri: ResourcePath, component: str | None = None, expected_size: int = -1) -> Any:
        from astropy.io import fits

        with fits.open(io.BytesIO(uri.read())) as hdus:
            fibers, profiles = hdus["FIBERS"].data, hdus["PROFILES"].data
            rows = []
            for fiber, radius, oversample in zip(fibers["fiberId"], fibers["radius"], fibers["oversample"]):
                profile = np.asarray(profiles["profiles"][profiles["fiberId"] == fiber][0], dtype=float)
                rows.append(np.concatenate([[radius, oversample], profile]))
        return np.vstack(rows)

    def to_bytes(self, in_memory_dataset: Any) -> bytes:
        from astropy.io import fits

        table = np.asarray(in_memory_dataset, dtype=float)
        fiber_id = _fiber_ids(self.data_id, len(table))
        header = fits.Header()
        header["OBSTYPE"] = "fiberProfiles"
        header["DAMD_VER"] = 2
        profiles = [row[2:] for row in table]
        hdus = fits.HDUList([
            fits.PrimaryHDU(header=header),
            fits.BinTableHDU.from_columns([
                fits.Column(name="fiberId", format="J", array=fiber_id),
                fits.Column(name="radius", format="J", array=table[:, 0].astype(np.int32)),
                fits.Column(name="oversample", format="D", array=table[:, 1]),
                fits.Column(name="norm", format="PE()", array=[np.zeros(0, dtype=np.float32)] * len(table)),
            ], name="FIBERS"),
            fits.BinTableHDU.from_columns([
                fits.Column(name="fiberId", format="J", array=fiber_id),
                fits.Column(name="rows", format="D", array=np.full(len(table), (model.ROWS - 1) / 2)),
                fits.Column(name="profiles", format="PD()", array=profiles),
                fits.Column(name="masks", format="PB()", array=[np.zeros(len(p), dtype=np.uint8) for p in profiles]),
            ], name="PROFILES"),
        ])
        out = io.BytesIO()
        hdus.writeto(out)
        return out.getvalue()


def _fiber_ids(data_id: Any, count: int) -> np.ndarray:
    """The demo's fiberIds of the data ID's spectrograph (its tasks keep them in this order), else 1..count."""
    try:
        ids = model.fiber_ids(int(data_id["spectrograph"]))
    except (KeyError, TypeError, ValueError):
        ids = np.zeros(0)
    return (ids if len(ids) == count else np.arange(1, count + 1)).astype(np.int32)


class FiberNormsFitsFormatter(TypelessFormatter):
    """The demo's fiberNorms as FITS in the layout of pfs_datamodel's ``PfsFiberNorms`` (``DAMD_VER`` 2): a primary
    header (``OBSTYPE``, ``DAMD_VER``, ``HEIGHT``), ``FIBERID`` and the ``WAVELENGTH`` and ``VALUES`` images (one row
    per fiber, one column per detector row).

    Why: verification reads fiberNorms with a FITS library.  The demo's norm is one number per fiber, so each
    ``VALUES`` row holds it at every detector row, and ``WAVELENGTH`` is NaN (the demo does not carry one here);
    pfs_datamodel's ``FIBERPROFILESHASH`` and ``MODEL`` (provenance only) are not written.  The in-memory product
    stays the demo's ``[fiberId, norm]`` rows; repositories built before this keep the pickle formatter.
    """

    default_extension = ".fits"
    unsupported_parameters = None
    can_read_from_uri = True

    def read_from_uri(self, uri: ResourcePath, component: str | None = None, expected_size: int = -1) -> Any:
        from astropy.io import fits

        with fits.open(io.BytesIO(uri.read())) as hdus:
            fiber_id = np.asarray(hdus["FIBERID"].data, dtype=float)
            values = np.asarray(hdus["VALUES"].data, dtype=float)
        return np.stack([fiber_id, values[:, 0] if values.size else np.zeros(0)], axis=1)

    def to_bytes(self, in_memory_dataset: Any) -> bytes:
        from astropy.io import fits

        table = np.asarray(in_memory_dataset, dtype=float).reshape(-1, 2)
        header = fits.Header()
        header["OBSTYPE"] = "fiberNorms"
        header["DAMD_VER"] = 2
        header["HEIGHT"] = model.ROWS
        hdus = fits.HDUList([
            fits.PrimaryHDU(header=header),
            fits.ImageHDU(table[:, 0].astype(np.int64), name="FIBERID"),
            fits.ImageHDU(np.full((len(table), model.ROWS), np.nan), name="WAVELENGTH"),
            fits.ImageHDU(np.repeat(table[:, 1:2], model.ROWS, axis=1), name="VALUES"),
        ])
        out = io.BytesIO()
        hdus.writeto(out)
        return out.getvalue()
