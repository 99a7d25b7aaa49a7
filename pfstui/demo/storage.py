"""Python types of the demo's datasets that are not plain arrays or dicts, and the formatter of its detectorMaps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from lsst.daf.butler.formatters.pickle import PickleFormatter


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
