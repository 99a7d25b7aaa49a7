"""The demo night: which visits exist, their metadata, and their synthetic raw images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import model

ARMS = ("b", "r")
SPECTROGRAPHS = (1, 2)
DAY_OBS = 20250301
NIGHT_START_TAI = "2025-03-01T18:00:00"
PFS_DESIGN_ID = 0x1234ABCD
PROFILES_RUN = "demo_br"
DEFAULT_SEED = 20250301


@dataclass(frozen=True)
class VisitSpec:
    visit: int
    kind: str  #: BIAS, DARK, FLAT, ARC, PROFILE_BRIGHT, PROFILE_DARK
    target_name: str
    observation_type: str
    exposure_time: float
    lamps: str
    dither: float = 0.0

    @property
    def dither_quantized(self) -> int:
        # obs_pfs gen3.quantizeDither
        return int(self.dither * 1e4 + 0.5)


def _visits() -> tuple[VisitSpec, ...]:
    out: list[VisitSpec] = []
    out += [VisitSpec(v, "BIAS", "BIAS", "bias", 0.0, "") for v in (11, 12, 13)]
    out += [VisitSpec(v, "DARK", "DARK", "dark", 300.0, "") for v in (21, 22, 23)]
    for v, d in ((31, 0.0), (32, 0.0), (33, 0.2), (34, 0.2), (35, 0.4), (36, 0.4)):
        out.append(VisitSpec(v, "FLAT", "FLAT", "flat", 30.0, "Quartz", d))
    out.append(VisitSpec(41, "ARC", "ARC", "arc", 15.0, "Ne,Ar,Kr,Xe"))
    for v in (51, 52, 55, 56):
        out.append(VisitSpec(v, "PROFILE_BRIGHT", "FIBERPROFILES", "flat", 30.0, "Quartz"))
    for v in (53, 54, 57, 58):
        out.append(VisitSpec(v, "PROFILE_DARK", "FIBERPROFILES", "flat", 30.0, "Quartz"))
    return tuple(out)


VISITS: tuple[VisitSpec, ...] = _visits()
BIAS_VISITS = tuple(v.visit for v in VISITS if v.kind == "BIAS")
DARK_VISITS = tuple(v.visit for v in VISITS if v.kind == "DARK")
FLAT_VISITS = tuple(v.visit for v in VISITS if v.kind == "FLAT")
ARC_VISIT = 41
QUARTZ_VISIT = 31
#: Fiber-profiles groups as defineFiberProfilesInputs.py takes them: (bright, dark) visit lists.
PROFILES_GROUPS = (("51..52", "53..54"), ("55..56", "57..58"))


def make_raw(spec: VisitSpec, arm: str, spectrograph: int, rng: np.random.Generator) -> np.ndarray:
    """Raw image (ADU) of one camera for one visit: data section plus overscan columns."""
    bias = model.BIAS_LEVEL[arm]
    data = bias + model.bias_pattern(arm, spectrograph) + rng.normal(0.0, 3.0, (model.ROWS, model.COLS))
    dark_time = spec.exposure_time
    data += model.DARK_CURRENT * dark_time
    rows = np.arange(model.ROWS)[:, None]
    x_true = model.true_x_center(arm, spectrograph, spec.dither_quantized)
    per_fiber = model.per_fiber_trace_images(x_true)  # (nFiber, COLS)
    throughput = model.true_fiber_throughput(spectrograph)
    if spec.kind in ("FLAT", "PROFILE_BRIGHT"):
        continuum = 1.0 + 0.3 * np.sin(rows / model.ROWS * np.pi)
        traces = (throughput[:, None] * per_fiber).sum(axis=0)[None, :]
        data += 4000.0 * continuum * traces * model.pixel_response(arm, spectrograph)
    elif spec.kind == "PROFILE_DARK":
        data += 20.0 * model.pixel_response(arm, spectrograph)  # fibers hidden behind the dots
    elif spec.kind == "ARC":
        lines = np.zeros((model.ROWS, 1))
        for row in model.true_line_rows(arm, spectrograph).values():
            lines[:, 0] += np.exp(-0.5 * ((np.arange(model.ROWS) - row) / 1.0) ** 2)
        traces = (throughput[:, None] * per_fiber).sum(axis=0)[None, :]
        data += 6000.0 * lines * traces * model.pixel_response(arm, spectrograph)
    if spec.kind != "BIAS":
        for _ in range(3):  # cosmic rays
            data[rng.integers(model.ROWS), rng.integers(model.COLS)] += 800.0
    overscan = bias + rng.normal(0.0, 3.0, (model.ROWS, model.OVERSCAN))
    return np.hstack([data, overscan]).astype(np.float32)


def make_pfs_config(spec: VisitSpec) -> dict:
    """A small pfsConfig: which fibers exist and are illuminated for this visit."""
    fibers: list[int] = []
    sms: list[int] = []
    for sm in SPECTROGRAPHS:
        ids = model.fiber_ids(sm)
        fibers += [int(f) for f in ids]
        sms += [sm] * len(ids)
    hidden = spec.kind == "PROFILE_DARK"
    return {
        "pfsDesignId": PFS_DESIGN_ID,
        "visit": spec.visit,
        "fiberId": fibers,
        "spectrograph": sms,
        "targetType": ["SCIENCE"] * len(fibers),
        "fiberStatus": ["BLOCKED" if hidden else "GOOD"] * len(fibers),
    }
