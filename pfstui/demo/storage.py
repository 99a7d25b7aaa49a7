"""Python types of the demo's datasets that are not plain arrays or dicts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
