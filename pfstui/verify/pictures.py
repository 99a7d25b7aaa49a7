"""Pictures of one camera's product for the eye: the product and new - current, downsampled to a few thousand
pixels and scaled to 8 bits, and a histogram of the product's good pixels.

Why here and not in the UI: what a picture shows (which pixels count, where black and white are) is part of the
evidence, and it is tested without a terminal; the UI only colours the bytes.

How a picture keeps what matters when 4k x 4k pixels become 64 x 64:

- each block is reduced in two steps: the median along each column's stretch of the block (an isolated hot pixel
  or a cosmic ray vanishes), then, of those column medians, the one furthest from the level of the block and its
  neighbours (a hot or cold column, hot in every row, survives at full strength instead of being averaged over
  64 columns); the terminal's cells are filled from the picture the same way (:func:`shrink`);
- masked pixels take no part; a block without a good pixel is blank;
- black and white are the centre -/+ ``SIGMAS`` times the typical amplifier's robust sigma: the centre is the
  product's median for the product, and the value of "no change" (0 for new - current, 1 for new / current) for
  the comparison, so a camera or an amplifier offset from what is certified shows saturated, not grey.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .checks import (  # the comparison the checks judge, not a second one
    _compare,
    _measured_only,
)
from .image import ProductImage, robust
from .limits import CHECKS, Product

__all__ = ["Histogram", "Picture", "Pictures", "SIGMAS", "camera_pictures", "downsample", "histogram", "picture",
           "shrink"]

#: Black and white this many robust sigma from the centre.
SIGMAS = 5.0
#: Pictures are at most this many pixels (rows, columns).
SIZE = (64, 64)
BINS = 32


@dataclass
class Picture:
    """An image as shown: ``pixels`` (uint8, top row first: FITS row 0 is at the bottom, as ds9 shows it),
    ``blank`` where a block had no good pixel, and the values drawn black (``low``) and white (``high``)."""

    pixels: np.ndarray
    blank: np.ndarray
    low: float
    high: float
    label: str


@dataclass
class Histogram:
    """Counts of the good pixels in ``len(counts)`` bins between ``edges``; pixels beyond the ends are counted in
    the end bins (``below``/``above`` say how many), so the counts add up to the good pixels."""

    counts: np.ndarray
    edges: np.ndarray
    below: int
    above: int


@dataclass
class Pictures:
    """What the verification view draws for one camera."""

    product: Picture
    comparison: Picture | None
    histogram: Histogram


def camera_pictures(product: Product, new: ProductImage, current: ProductImage | None) -> Pictures:
    """The pictures of one camera: its new product, new - current (new / current for a flat), and a histogram."""
    if product == "fiberFlat":
        new, current = _measured_only(new), current and _measured_only(current)
    compared = _compare(product, new, current)
    flat = product == "fiberFlat"
    comparison = None if compared is None else picture(
        compared, centre=1.0 if flat else 0.0, label="new / current" if flat else "new - current",
        least=_comparison_limit(product))
    return Pictures(picture(new, label="new"), comparison, histogram(new))


def _comparison_limit(product: Product) -> float | None:
    """The fail limit of the product's first comparison (the median of new - current, or of new / current - 1)."""
    return next((limit.fail for name, limit in CHECKS[product].items() if name.startswith(("diff_", "ratio_"))), None)


def picture(image: ProductImage, *, centre: float | None = None, label: str = "", size: tuple[int, int] = SIZE,
            sigmas: float = SIGMAS, least: float | None = None) -> Picture:
    """``image`` downsampled to at most ``size`` and scaled to 8 bits around ``centre`` (its median if None): white
    ``sigmas`` robust sigma above it, and never nearer than ``least`` (a comparison's fail limit: two products
    made from the same frames differ by almost nothing, and their noise would otherwise fill the scale)."""
    small = downsample(image.data, image.good, size)
    blank = ~np.isfinite(small)
    median, _ = robust(_sample(image.data[image.good & np.isfinite(image.data)]))
    sigma = _noise(image)
    centre = median if centre is None else centre
    if not np.isfinite(centre):
        centre = 0.0
    half = sigmas * sigma if np.isfinite(sigma) and sigma > 0 else max(abs(centre) * 1e-3, 1e-6)
    half = max(half, least or 0.0)
    low, high = centre - half, centre + half
    scaled = np.clip((np.where(blank, centre, small) - low) / (high - low) * 255.0, 0.0, 255.0)
    pixels = np.rint(scaled).astype(np.uint8)
    return Picture(pixels[::-1].copy(), blank[::-1].copy(), float(low), float(high), label)


def downsample(data: np.ndarray, good: np.ndarray, size: tuple[int, int] = SIZE) -> np.ndarray:
    """``data`` reduced to at most ``size`` blocks (see the module docstring); NaN where a block has no good pixel."""
    values = np.where(good & np.isfinite(data), data, np.nan).astype(float)
    rows, cols = values.shape
    by, bx = -(-rows // min(size[0], rows)), -(-cols // min(size[1], cols))
    ny, nx = -(-rows // by), -(-cols // bx)
    padded = np.full((ny * by, nx * bx), np.nan)
    padded[:rows, :cols] = values
    # Each column's median within its band of ``by`` rows (ny, nx * bx), then the most extreme column of each block.
    columns = _nanmedian(padded.reshape(ny, by, nx * bx).transpose(0, 2, 1))
    return _extremes(columns, 1, nx)


def _noise(image: ProductImage) -> float:
    """The typical amplifier's robust sigma: the noise, not the spread of levels between amplifiers (an amplifier
    offset by 8 sigma makes the whole image's sigma four times the noise, and would show pale)."""
    sigmas = [robust(_sample(values))[1] for values in image.amp_values().values() if values.size]
    return float(np.median(sigmas)) if sigmas else float("nan")


def _sample(values: np.ndarray, most: int = 250_000) -> np.ndarray:
    """Every n-th value, at most ``most``: black, white and the histogram's range need not read 17 million pixels
    (a robust median and sigma of a quarter million are as good to the eye, and take a tenth of the time)."""
    return values[:: max(1, values.size // most)]


def _nanmedian(values: np.ndarray) -> np.ndarray:
    """The median along the last axis, NaNs left out (NaN where all are): ``np.nanmedian`` by one sort, as
    ``np.nanmedian`` itself takes seconds on a 4k x 4k camera with masked pixels."""
    ordered = np.sort(values, axis=-1)  # NaNs sort last
    count = np.count_nonzero(~np.isnan(values), axis=-1)
    low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[..., None], axis=-1)[..., 0]
    high = np.take_along_axis(ordered, (count // 2)[..., None], axis=-1)[..., 0] if values.shape[-1] else low
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.where(count > 0, (low + high) / 2.0, np.nan)


def shrink(picture: Picture, rows: int, columns: int) -> Picture:
    """``picture`` in at most ``rows`` x ``columns`` pixels, each the most extreme of the pixels it covers, as the
    downsampling chose: the terminal shows 64 pixels in 35 columns, and a smooth resize would halve a hot column
    that the downsampling kept whole.  A picture that fits keeps its pixels."""
    values = np.where(picture.blank, np.nan, picture.pixels.astype(float))
    for axis, size in ((0, rows), (1, columns)):
        if 0 < size < values.shape[axis]:
            values = _extremes(values, axis, size)
    blank = np.isnan(values)
    return Picture(np.where(blank, 0, values).astype(np.uint8), blank, picture.low, picture.high, picture.label)


def _extremes(values: np.ndarray, axis: int, size: int) -> np.ndarray:
    """``values`` in ``size`` groups along ``axis``, each the value furthest from the median of its group and the
    groups beside it (a hot column that is one of a group of two is as far from the group's own median as the
    normal one beside it; from its neighbourhood's it is not).  NaN is no value; a group of NaNs gives NaN."""
    edges = np.linspace(0, values.shape[axis], size + 1).astype(int)
    picks = []
    for start, stop in zip(edges[:-1], edges[1:]):
        group = np.take(values, range(start, stop), axis=axis)
        width = stop - start
        around = np.take(values, range(max(0, start - width), min(values.shape[axis], stop + width)), axis=axis)
        centre = np.expand_dims(_nanmedian(np.moveaxis(around, axis, -1)), axis)
        picks.append(start + np.argmax(np.nan_to_num(np.abs(group - centre), nan=-1.0), axis=axis))
    return np.take_along_axis(values, np.stack(picks, axis=axis), axis=axis)


def histogram(image: ProductImage, *, bins: int = BINS, sigmas: float = SIGMAS) -> Histogram:
    """The good pixels counted in ``bins`` bins over median -/+ ``sigmas`` robust sigma (the end bins take the rest)."""
    values = image.data[image.good & np.isfinite(image.data)]
    median, sigma = robust(_sample(values))
    if not np.isfinite(median):
        return Histogram(np.zeros(bins, dtype=int), np.linspace(0.0, 1.0, bins + 1), 0, 0)
    half = sigmas * sigma if sigma > 0 else max(abs(median) * 1e-3, 0.5)
    edges = np.linspace(median - half, median + half, bins + 1)
    below, above = int(np.count_nonzero(values < edges[0])), int(np.count_nonzero(values > edges[-1]))
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return Histogram(counts.astype(int), edges, below, above)
