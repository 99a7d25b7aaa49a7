"""The synthetic PFS-like 'sky': the numbers from which the demo raws are made and against which
the demo tasks measure.

Everything here is deterministic.  The demo tasks import only the *base optical model*
(`base_x_center`, `base_wavelength`, `ARC_LINES`), exactly as the real bootstrap starts from a
simulated detectorMap in drp_pfs_data; the "true" offsets below are what the pipelines must find.
"""

from __future__ import annotations

import numpy as np

ROWS = 48  #: image rows (the spectral direction)
COLS = 64  #: image columns of the data section (the spatial direction)
OVERSCAN = 8  #: overscan columns appended to each raw
FIBERS_PER_SPECTROGRAPH = 6
FIBER_PITCH = 9.0
FIBER_SIGMA = 1.2  #: true Gaussian width of a fiber trace (pixels)

#: Arc lines (nm) in each arm's wavelength range.
ARC_LINES = {
    "b": (404.7, 435.8, 479.9, 508.6, 546.1),
    "r": (640.2, 667.7, 703.2, 750.4, 811.5),
    "n": (1013.9, 1083.0, 1129.1, 1180.2),
    "m": (703.2, 750.4, 763.5, 811.5),
}
ARM_RANGE = {"b": (380.0, 650.0), "r": (630.0, 970.0), "n": (940.0, 1260.0), "m": (710.0, 885.0)}

#: Bias level of each arm (ADU), and dark current (ADU/s).
BIAS_LEVEL = {"b": 1000.0, "r": 1100.0, "n": 900.0, "m": 1100.0}
DARK_CURRENT = 0.05


def fiber_ids(spectrograph: int) -> np.ndarray:
    """FiberIds of the demo's illuminated fibers on ``spectrograph`` (PFS numbers fibers 1-2604)."""
    return (spectrograph - 1) * 651 + 10 + 40 * np.arange(FIBERS_PER_SPECTROGRAPH)


def base_x_center(spectrograph: int) -> np.ndarray:
    """Column of each fiber in the base optical model (the 'simulated detectorMap')."""
    return 6.0 + FIBER_PITCH * np.arange(FIBERS_PER_SPECTROGRAPH) + 0.0 * spectrograph


def base_wavelength(arm: str) -> np.ndarray:
    """Base linear wavelength solution (nm) against row: coefficients lowest order first."""
    lo, hi = ARM_RANGE[arm]
    return np.array([lo, (hi - lo) / (ROWS - 1)])


def true_spatial_offset(arm: str, spectrograph: int) -> float:
    """How far (columns) reality is from the base model for this camera."""
    return {"b": 0.6, "r": -0.4, "n": 0.3, "m": -0.4}[arm] + 0.2 * (spectrograph - 1)


def true_spectral_offset(arm: str, spectrograph: int) -> float:
    """How far (rows) the arc lines are from the base model for this camera."""
    return {"b": -1.5, "r": 1.0, "n": 0.5, "m": 1.0}[arm] - 0.5 * (spectrograph - 1)


def dither_offset(dither_quantized: int) -> float:
    """Spatial shift (columns) of the traces for a quantized dither value."""
    return dither_quantized / 1e4 * 4.0


def true_x_center(arm: str, spectrograph: int, dither_quantized: int = 0) -> np.ndarray:
    return base_x_center(spectrograph) + true_spatial_offset(arm, spectrograph) + dither_offset(dither_quantized)


def true_line_rows(arm: str, spectrograph: int) -> dict[float, float]:
    """Row at which each arc line truly falls."""
    c0, c1 = base_wavelength(arm)
    shift = true_spectral_offset(arm, spectrograph)
    return {wl: (wl - c0) / c1 + shift for wl in ARC_LINES[arm]}


def true_fiber_throughput(spectrograph: int) -> np.ndarray:
    """Relative throughput of each fiber (what fiberNorms measures)."""
    return 1.0 + 0.05 * np.sin(np.arange(FIBERS_PER_SPECTROGRAPH) + spectrograph)


def pixel_response(arm: str, spectrograph: int) -> np.ndarray:
    """Pixel-to-pixel sensitivity (what the fiberFlat measures), about 1 +/- 2%."""
    rng = np.random.default_rng(1000 + 10 * spectrograph + "brnm".index(arm))
    return 1.0 + 0.02 * rng.standard_normal((ROWS, COLS))


def bias_pattern(arm: str, spectrograph: int) -> np.ndarray:
    """Fixed 2-D bias structure (what the bias removes), a few ADU."""
    rng = np.random.default_rng(2000 + 10 * spectrograph + "brnm".index(arm))
    rows = np.linspace(0.0, 1.0, ROWS)[:, None]
    return 5.0 * rows + 2.0 * rng.standard_normal((ROWS, COLS))


def trace_image(x_centers: np.ndarray, sigma: float = FIBER_SIGMA) -> np.ndarray:
    """Unit-flux Gaussian fiber traces (one column profile repeated over rows)."""
    cols = np.arange(COLS)[None, :]
    profile = np.exp(-0.5 * ((cols - x_centers[:, None]) / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)
    return np.broadcast_to(profile.sum(axis=0), (ROWS, COLS)).copy()


def per_fiber_trace_images(x_centers: np.ndarray, sigma: float = FIBER_SIGMA) -> np.ndarray:
    """Unit-flux trace of each fiber separately, shape (nFiber, COLS)."""
    cols = np.arange(COLS)[None, :]
    return np.exp(-0.5 * ((cols - x_centers[:, None]) / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)
