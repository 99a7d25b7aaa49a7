"""Read an image product as FITS (IMAGE/MASK extensions, amplifier sections) and measure it robustly.

Why FITS through a URI and not ``butler.get``: on a production host pfstui's environment cannot import the
pipeline's Exposure classes or formatters; the file itself is FITS in the LSST stack's layout, which astropy
reads anywhere.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from pfstui.errors import UserError

from .limits import OUTLIER_SIGMA

__all__ = ["ProductImage", "ReadError", "outlier_fraction", "read_image", "robust"]

_SECTION = re.compile(r"^\[(\d+):(\d+),(\d+):(\d+)\]$")


class ReadError(UserError):
    """A product file cannot be read as a FITS image."""

    title = "Verify"


@dataclass
class ProductImage:
    """The pixels of one product, which of them are good, and its amplifiers (``{'all': everything}`` if none)."""

    data: np.ndarray
    good: np.ndarray
    amps: dict[str, tuple[slice, ...]]

    def amp_values(self, values: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The good pixels of each amplifier, of ``values`` (same shape as the image) or of the image."""
        values = self.data if values is None else values
        return {name: values[sec][self.good[sec] & np.isfinite(values[sec])] for name, sec in self.amps.items()}


def read_image(uri: Any) -> ProductImage:
    """Read the product at ``uri`` (a ``ResourcePath``: local or remote)."""
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(uri.read())) as hdus:
            image = _image_hdu(hdus)
            data = np.asarray(image.data, dtype=float)
            mask = np.asarray(hdus["MASK"].data) if "MASK" in hdus else None
            header = image.header
    except (OSError, ValueError, TypeError) as exc:
        raise ReadError(f"cannot read {uri} as a FITS image ({exc})",
                        "verify reads bias, dark and fiberFlat products written as FITS") from None
    good = np.isfinite(data) if mask is None or mask.shape != data.shape else np.isfinite(data) & (mask == 0)
    return ProductImage(data, good, _amplifiers(header, data.shape))


def _image_hdu(hdus):
    if "IMAGE" in hdus:
        return hdus["IMAGE"]
    for hdu in hdus:
        if hdu.data is not None and hdu.is_image:
            return hdu
    raise ValueError("no image extension")


def _amplifiers(header: Any, shape: tuple[int, ...]) -> dict[str, tuple[slice, ...]]:
    """Amplifier sections from ``NAMP`` and ``AMPnNAME``/``AMPnSEC`` (1-based ``[x0:x1,y0:y1]``), else the whole."""
    everything = {"all": tuple(slice(None) for _ in shape)}
    count = int(header.get("NAMP", 0) or 0)
    if len(shape) != 2 or count <= 0:
        return everything
    amps: dict[str, tuple[slice, ...]] = {}
    for k in range(1, count + 1):
        match = _SECTION.match(str(header.get(f"AMP{k}SEC", "")).replace(" ", ""))
        if not match:
            return everything
        x0, x1, y0, y1 = (int(g) for g in match.groups())
        amps[str(header.get(f"AMP{k}NAME", k))] = (slice(y0 - 1, y1), slice(x0 - 1, x1))
    return amps


def robust(values: np.ndarray) -> tuple[float, float]:
    """(median, 1.4826 * MAD): a mean and noise that a few hot pixels or a cosmic ray do not move."""
    if values.size == 0:
        return float("nan"), float("nan")
    median = float(np.median(values))
    return median, 1.4826 * float(np.median(np.abs(values - median)))


def outlier_fraction(values: np.ndarray, sigma_floor: float = 0.0) -> float:
    """Fraction of ``values`` beyond OUTLIER_SIGMA robust sigma of their median (hot and cold pixels alike)."""
    if values.size == 0:
        return float("nan")
    median, sigma = robust(values)
    sigma = max(sigma, sigma_floor)
    if sigma == 0.0:
        return float(np.count_nonzero(values != median)) / values.size
    return float(np.count_nonzero(np.abs(values - median) > OUTLIER_SIGMA * sigma)) / values.size
