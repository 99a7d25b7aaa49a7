"""What every demo task shares: the demo knobs, PFS-style logger names and camera helpers."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from lsst.pex.config import Config, Field
from lsst.pipe.base import PipelineTask
from lsst.utils.logging import getLogger

from .. import model


class DemoKnobsConfig(Config):
    """Demo knobs, for showing and testing operations on a real pipeline."""

    demoDelay = Field(dtype=float, default=0.0, doc="Seconds to sleep in every quantum (makes runs watchable).")
    demoFailOn = Field(
        dtype=str,
        default="",
        doc=(
            "Data ID of a quantum that must fail with a realistic exception, as key:value (or key=value) pairs "
            "separated by spaces or commas, e.g. 'visit:12,arm:r,spectrograph:1' (pipetask -c cannot take '=' in "
            "a value); every pair must match. Empty: never fail."
        ),
    )


def parse_data_id_spec(spec: str) -> dict[str, str]:
    """Parse ``'visit:12,arm:r'`` (or ``visit=12 arm=r``) into ``{'visit': '12', 'arm': 'r'}``."""
    out: dict[str, str] = {}
    for token in spec.replace(",", " ").split():
        sep_char = "=" if "=" in token else ":"
        key, sep, value = token.partition(sep_char)
        if not sep or not key or not value:
            raise ValueError(f"demoFailOn: {token!r} is not key:value (example: 'visit:12,arm:r,spectrograph:1').")
        out[key.strip()] = value.strip().strip("'\"")
    return out


def data_id_matches(spec: str, data_id: Any) -> bool:
    if not spec.strip():
        return False
    wanted = parse_data_id_spec(spec)
    mapping = data_id.mapping if hasattr(data_id, "mapping") else dict(data_id)
    return all(key in mapping and str(mapping[key]) == value for key, value in wanted.items())


class DemoPipelineTask(PipelineTask):
    """Base of the demo tasks: knobs, logger naming and the usual get → run → put."""

    #: Root of the logger name: drp_stella tasks log as ``pfs.<label>``, obs_pfs ISR as ``lsst.isr``.
    _logRoot = "pfs"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log = getLogger(f"{self._logRoot}.{self.getName()}")

    def demoFailure(self, data_id: Any) -> Exception:
        """The realistic exception raised when ``demoFailOn`` selects this quantum."""
        return RuntimeError(f"Insufficient good pixels to proceed for {data_id}")

    def applyDemoKnobs(self, data_id: Any) -> None:
        if self.config.demoDelay > 0:
            time.sleep(self.config.demoDelay)
        if data_id_matches(self.config.demoFailOn, data_id):
            raise self.demoFailure(data_id)

    def runQuantum(self, butlerQC, inputRefs, outputRefs):  # noqa: N802 (LSST API)
        data_id = butlerQC.quantum.dataId
        self.applyDemoKnobs(data_id)
        inputs = butlerQC.get(inputRefs)
        outputs = self.run(dataId=data_id, inputRefs=inputRefs, **inputs)
        butlerQC.put(outputs, outputRefs)


def camera(data_id: Any) -> tuple[str, int]:
    return str(data_id["arm"]), int(data_id["spectrograph"])


def visit_record(data_id: Any) -> Any:
    """The visit dimension record of an (expanded) data ID."""
    return data_id.records["visit"]


def median_combine(images: list[np.ndarray]) -> np.ndarray:
    return np.median(np.stack(images), axis=0)


def smooth(image: np.ndarray, half: int = 2) -> np.ndarray:
    """Box-car smoothing (edge-padded) used to separate large-scale light from pixel response."""
    padded = np.pad(image, half, mode="edge")
    out = np.zeros_like(image, dtype=float)
    size = 2 * half + 1
    for dy in range(size):
        for dx in range(size):
            out += padded[dy : dy + image.shape[0], dx : dx + image.shape[1]]
    return out / size**2


def local_residual(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(background, residual, robust sigma of the residual): what cosmic-ray finding starts from."""
    background = smooth(image, 1)
    resid = image - background
    sigma = 1.4826 * float(np.median(np.abs(resid - np.median(resid)))) + 1e-9
    return background, resid, sigma


def smooth_rows(image: np.ndarray, half: int = 3) -> np.ndarray:
    """Box-car smoothing along rows only (edge-padded)."""
    padded = np.pad(image, ((half, half), (0, 0)), mode="edge")
    size = 2 * half + 1
    return sum(padded[d : d + image.shape[0]] for d in range(size)) / size


def centroid(values: np.ndarray, positions: np.ndarray) -> float:
    weights = np.clip(values, 0.0, None)
    total = weights.sum()
    if total <= 0:
        return float("nan")
    return float((weights * positions).sum() / total)


def peak_near(profile: np.ndarray, guess: float, window: float, radius: int) -> float:
    """Centroid of the highest point of ``profile`` within ``window`` of ``guess``."""
    n = len(profile)
    lo, hi = max(0, int(np.floor(guess - window))), min(n, int(np.ceil(guess + window)) + 1)
    if hi <= lo:
        return float("nan")
    peak = lo + int(np.argmax(profile[lo:hi]))
    a, b = max(0, peak - radius), min(n, peak + radius + 1)
    base = np.median(profile)
    return centroid(profile[a:b] - base, np.arange(a, b, dtype=float))


ROWS, COLS = model.ROWS, model.COLS
