"""detectorMap tasks: bootstrap, cosmic-ray masking, centroids, slit offsets and the detectorMap fit."""

from __future__ import annotations

import numpy as np
from lsst.pex.config import Config, ConfigField, Field
from lsst.pipe.base import NoWorkFound, PipelineTaskConfig, PipelineTaskConnections, Struct
from lsst.pipe.base import connectionTypes as cT

from .. import model
from ..storage import DetectorMap
from .base import DemoKnobsConfig, DemoPipelineTask, camera, centroid, local_residual, peak_near

CAMERA_VISIT = ("instrument", "visit", "arm", "spectrograph")
CAMERA = ("instrument", "arm", "spectrograph")
DETMAP = "DemoDetectorMap"


class ProfilesConfig(Config):
    """Fiber-profile measurement parameters (as drp_stella's profiles sub-config)."""

    profileRadius = Field(dtype=int, default=3, doc="Half-width (pixels) of the profile measured around a trace.")
    profileSwath = Field(dtype=float, default=2500.0, doc="Rows per swath when measuring profiles.")
    profileOversample = Field(dtype=int, default=3, doc="Oversampling factor of the measured profile.")


def column_profile(image: np.ndarray) -> np.ndarray:
    """Median over rows: the spatial profile of the traces."""
    return np.median(image, axis=0)


def find_traces(image: np.ndarray, guesses: np.ndarray, radius: int, window: float = 3.0) -> np.ndarray:
    profile = column_profile(image)
    return np.array([peak_near(profile, g, window, radius) for g in guesses])


def line_rows(image: np.ndarray, x: float, guesses: list[float], radius: int, window: float = 4.0) -> np.ndarray:
    """Row centroids of arc lines along the trace at column ``x``: the local maximum nearest each guess."""
    lo, hi = max(0, int(round(x)) - radius), min(image.shape[1], int(round(x)) + radius + 1)
    spectrum = image[:, lo:hi].sum(axis=1)
    inner = spectrum[1:-1]
    threshold = 0.1 * float(spectrum.max()) if spectrum.max() > 0 else np.inf
    maxima = np.flatnonzero((inner > spectrum[:-2]) & (inner >= spectrum[2:]) & (inner > threshold)) + 1
    out = []
    for guess in guesses:
        if not len(maxima):
            out.append(np.nan)
            continue
        peak = int(maxima[np.argmin(np.abs(maxima - guess))])
        if abs(peak - guess) > window:
            out.append(np.nan)
            continue
        if peak < 2 or peak + 3 > len(spectrum):  # cut by the image's edge: its centroid would be biased
            out.append(np.nan)
            continue
        out.append(centroid(spectrum[peak - 2:peak + 3], np.arange(peak - 2, peak + 3, dtype=float)))
    return np.array(out)


# --- bootstrap -------------------------------------------------------------------------------------------
class BootstrapConnections(PipelineTaskConnections, dimensions=CAMERA):
    exposures = cT.Input(name="postISRCCD", doc="One arc and one quartz", storageClass="NumpyArray",
                         dimensions=CAMERA_VISIT, multiple=True)
    pfsConfig = cT.Input(name="pfsConfig", doc="Fiber configurations", storageClass="StructuredDataDict",
                         dimensions=("instrument", "visit"), multiple=True)
    outputDetMap = cT.Output(name="detectorMap_bootstrap", doc="Bootstrapped detectorMap", storageClass=DETMAP,
                             dimensions=CAMERA, isCalibration=True)


class BootstrapConfig(PipelineTaskConfig, DemoKnobsConfig, pipelineConnections=BootstrapConnections):
    profiles = ConfigField(dtype=ProfilesConfig, doc="Trace profile parameters")
    spectralOffset = Field(dtype=int, default=0, doc="Offset (rows) to apply to the base model's line positions.")
    spatialOffset = Field(dtype=int, default=0, doc="Offset (columns) to apply to the base model's traces.")
    matchWindow = Field(dtype=float, default=2.5, doc="How far (rows) from its prediction a line may be.")
    minLines = Field(dtype=int, default=3, doc="Fewest matched arc lines per fiber for a solution.")


class BootstrapTask(DemoPipelineTask):
    ConfigClass = BootstrapConfig
    _DefaultName = "bootstrap"

    def demoFailure(self, data_id):
        return RuntimeError(f"Unable to match any arc lines for fiber 130 of {data_id['arm']}{data_id['spectrograph']}: "
                            "check bootstrap:spectralOffset")

    def runQuantum(self, butlerQC, inputRefs, outputRefs):
        data_id = butlerQC.quantum.dataId
        self.applyDemoKnobs(data_id)
        refs = inputRefs.exposures
        if len(refs) != 2:
            raise RuntimeError(f"Expected 2 dataset references (one arc, one quartz), got {len(refs)}")
        quartz = [r for r in refs if r.dataId.records["visit"].lamps == "Quartz"]
        arcs = [r for r in refs if r.dataId.records["visit"].lamps != "Quartz"]
        if len(quartz) != 1 or len(arcs) != 1:
            raise RuntimeError(f"Expected exactly 1 arc and 1 quartz; got {len(arcs)} arc(s), {len(quartz)} quartz")
        arc = np.asarray(butlerQC.get(arcs[0]), dtype=float)
        flat = np.asarray(butlerQC.get(quartz[0]), dtype=float)
        pfs_config = butlerQC.get(inputRefs.pfsConfig[0])
        arm, sm = camera(data_id)
        fiber_ids = np.array([f for f, s in zip(pfs_config["fiberId"], pfs_config["spectrograph"]) if s == sm])
        radius = self.config.profiles.profileRadius
        guesses = model.base_x_center(sm) + self.config.spatialOffset
        x_center = find_traces(flat, guesses, radius)
        self.log.info("Found %d/%d fibers in quartz visit %d; median spatial offset %.2f pixels", int(np.isfinite(x_center).sum()),
                      len(fiber_ids), int(quartzes_visit(quartz[0])), float(np.nanmedian(x_center - model.base_x_center(sm))))
        c0, c1 = model.base_wavelength(arm)
        lines = np.array(model.ARC_LINES[arm])
        predicted = (lines - c0) / c1 + self.config.spectralOffset
        rows = np.array([line_rows(arc, x, list(predicted), radius, self.config.matchWindow) for x in x_center])
        good = np.isfinite(rows) & (np.abs(rows - predicted[None, :]) <= self.config.matchWindow)
        matched = good.sum(axis=1)
        if (matched < self.config.minLines).any():
            worst = int(fiber_ids[np.argmin(matched)])
            raise RuntimeError(f"Only {int(matched.min())} arc lines matched for fiber {worst} "
                               f"(need {self.config.minLines}); check bootstrap:spectralOffset (now {self.config.spectralOffset})")
        all_rows = rows[good]
        all_wl = np.broadcast_to(lines, rows.shape)[good]
        coeffs = np.polynomial.polynomial.polyfit(all_rows, all_wl, 1)
        resid = np.polynomial.polynomial.polyval(all_rows, coeffs) - all_wl
        rms = float(np.std(resid))
        self.log.info("Matched %d/%d arc lines in visit %d; wavelength solution rms %.4f nm (spectralOffset=%d)",
                      int(good.sum()), good.size, int(quartzes_visit(arcs[0])), rms, self.config.spectralOffset)
        fit = final_fit(self.log, resid / coeffs[1], trace_residuals(x_center), 2, int(good.sum()), good.size,
                        abs(coeffs[1]))
        spectral = np.nanmedian(rows - predicted[None, :] + self.config.spectralOffset, axis=1)
        slit = np.stack([x_center - model.base_x_center(sm), spectral], axis=1)
        detmap = DetectorMap(fiberId=fiber_ids, xCenter=x_center, wavelength=coeffs, slitOffsets=slit,
                             metadata={"source": "bootstrap", "arm": arm, "spectrograph": sm, **fit})
        butlerQC.put(Struct(outputDetMap=detmap), outputRefs)


def quartzes_visit(ref) -> int:
    return int(ref.dataId["visit"])


def trace_residuals(x_center: np.ndarray) -> np.ndarray:
    """Trace centres less a straight line across the fibers (the demo's fibers are evenly spaced)."""
    index = np.arange(len(x_center), dtype=float)
    return x_center - np.polynomial.polynomial.polyval(index, np.polynomial.polynomial.polyfit(index, x_center, 1))


def _less_median(values: np.ndarray) -> np.ndarray:
    return values - np.median(values) if len(values) else values


def _by_fiber(resid: np.ndarray, fiber: np.ndarray) -> np.ndarray:
    """Residuals less each fiber's median: what a per-fiber spectral slit offset (drp_stella fits one) takes up."""
    out = resid.copy()
    for f in np.unique(fiber):
        out[fiber == f] = _less_median(resid[fiber == f])
    return out


def _clipped(resid: np.ndarray, error: float, nsigma: float = 4.0, iterations: int = 3) -> np.ndarray:
    """The lines a fit keeps: within ``nsigma`` robust sigma (at least the centroid ``error``) of zero, rejected
    iteratively (as drp_stella rejects)."""
    used = np.isfinite(resid)
    for _ in range(iterations):
        sigma = 1.4826 * float(np.median(np.abs(resid[used]))) if used.any() else 0.0
        keep = used & (np.abs(resid) <= nsigma * max(sigma, error))
        if (keep == used).all():
            break
        used = keep
    return used


def final_fit(log, y_resid: np.ndarray, x_resid: np.ndarray, n_params: int, used: int, total: int,
              dispersion: float, error: float = 0.05) -> dict:
    """Log drp_stella's line of a detectorMap fit's quality (what an operator greps for, and what pfstui verify reads
    from the task's log) and return the same numbers as the map's ``FIT_*`` header cards."""
    chi2 = float(np.sum((y_resid / error) ** 2) + np.sum((x_resid / error) ** 2))
    dof = max(len(y_resid) + len(x_resid) - n_params, 1)
    x_rms, y_rms = float(np.std(x_resid)) if len(x_resid) else 0.0, float(np.std(y_resid))
    log.info("Final fit: chi2=%f dof=%d xRMS=%f yRMS=%f (%f nm) from %d/%d lines", chi2, dof, x_rms, y_rms,
             y_rms * dispersion, used, total)
    return {"FIT_CHI2": chi2, "FIT_DOF": dof, "FIT_XRMS": x_rms, "FIT_YRMS": y_rms, "FIT_NM": y_rms * dispersion,
            "FIT_USED": used, "FIT_GOOD": total}


# --- cosmicray -------------------------------------------------------------------------------------------
class CosmicRayConnections(PipelineTaskConnections, dimensions=CAMERA_VISIT):
    exposure = cT.Input(name="postISRCCD", doc="Image after ISR", storageClass="NumpyArray", dimensions=CAMERA_VISIT)
    crMask = cT.Output(name="crMask", doc="Cosmic-ray mask", storageClass="NumpyArray", dimensions=CAMERA_VISIT)
    outputExposure = cT.Output(name="calexp", doc="CR-repaired image", storageClass="NumpyArray",
                               dimensions=CAMERA_VISIT)

    def __init__(self, *, config=None):
        super().__init__(config=config)
        if not config.doWriteExposure:
            del self.outputExposure


class CosmicRayConfig(PipelineTaskConfig, DemoKnobsConfig, pipelineConnections=CosmicRayConnections):
    grouping = Field(dtype=str, default="auto", doc="How visits are grouped (kept for drp_stella compatibility).")
    threshold = Field(dtype=float, default=8.0, doc="Detection threshold (sigma above the local model).")
    doWriteExposure = Field(dtype=bool, default=False, doc="Write the repaired image as calexp?")


class CosmicRayTask(DemoPipelineTask):
    ConfigClass = CosmicRayConfig
    _DefaultName = "cosmicray"

    def run(self, exposure, dataId, inputRefs=None):
        image = np.asarray(exposure, dtype=float)
        background, resid, sigma = local_residual(image)
        # A cosmic ray is sharp in both directions; a trace is smooth along rows.
        along = image - np.roll(image, 1, axis=0) / 2 - np.roll(image, -1, axis=0) / 2
        mask = (resid > self.config.threshold * sigma) & (along > self.config.threshold * sigma)
        self.log.info("Found %d cosmic-ray pixels in visit %d %s%d (threshold %.1f sigma)", int(mask.sum()),
                      int(dataId["visit"]), *camera(dataId), self.config.threshold)
        out = Struct(crMask=mask)
        if self.config.doWriteExposure:
            out.outputExposure = np.where(mask, background, image).astype(np.float32)
        return out


# --- measureCentroids -----------------------------------------------------------------------------------
class MeasureCentroidsConnections(PipelineTaskConnections, dimensions=CAMERA_VISIT):
    exposure = cT.Input(name="postISRCCD", doc="Image after ISR", storageClass="NumpyArray", dimensions=CAMERA_VISIT)
    crMask = cT.Input(name="crMask", doc="Cosmic-ray mask", storageClass="NumpyArray", dimensions=CAMERA_VISIT)
    pfsConfig = cT.PrerequisiteInput(name="pfsConfig", doc="Fiber configuration", storageClass="StructuredDataDict",
                                     dimensions=("instrument", "visit"))
    calibDetectorMap = cT.PrerequisiteInput(name="detectorMap_calib", doc="Starting detectorMap", storageClass=DETMAP,
                                            dimensions=CAMERA, isCalibration=True)
    centroids = cT.Output(name="centroids", doc="Arc-line and trace centroids (fiberId, wavelength, x, y)",
                          storageClass="NumpyArray", dimensions=CAMERA_VISIT)


class MeasureCentroidsConfig(PipelineTaskConfig, DemoKnobsConfig, pipelineConnections=MeasureCentroidsConnections):
    radius = Field(dtype=int, default=2, doc="Half-width (pixels) of the centroiding window.")
    traceRows = Field(dtype=int, default=8, doc="Rows between trace centroids on a quartz.")


class MeasureCentroidsTask(DemoPipelineTask):
    ConfigClass = MeasureCentroidsConfig
    _DefaultName = "measureCentroids"

    def run(self, exposure, crMask, pfsConfig, calibDetectorMap, dataId, inputRefs=None):
        image = np.where(crMask, np.nan, np.asarray(exposure, dtype=float))
        image = np.where(np.isnan(image), np.nanmedian(image), image)
        arm, sm = camera(dataId)
        lamps = dataId.records["visit"].lamps
        detmap = calibDetectorMap
        rows: list[tuple[float, float, float, float]] = []
        if lamps == "Quartz":
            for y0 in range(0, model.ROWS, self.config.traceRows):
                band = image[y0 : y0 + self.config.traceRows]
                xs = find_traces(band, detmap.xCenter, self.config.radius)
                rows += [(float(f), np.nan, float(x), y0 + band.shape[0] / 2) for f, x in zip(detmap.fiberId, xs)]
            kind = "trace"
        else:
            lines = np.array(model.ARC_LINES[arm])
            predicted = (lines - detmap.wavelength[0]) / detmap.wavelength[1]
            for f, x in zip(detmap.fiberId, detmap.xCenter):
                ys = line_rows(image, x, list(predicted), self.config.radius)
                rows += [(float(f), float(wl), float(x), float(y)) for wl, y in zip(lines, ys) if np.isfinite(y)]
            kind = "arc line"
        out = np.array(rows, dtype=float).reshape(-1, 4)
        self.log.info("Measured %d %s centroids for %d fibers in visit %d (%s)", len(out), kind, len(detmap.fiberId),
                      int(dataId["visit"]), lamps or "no lamps")
        return Struct(centroids=out)


# --- gatherSlitOffsets ------------------------------------------------------------------------------------
class GatherSlitOffsetsConnections(PipelineTaskConnections, dimensions=CAMERA_VISIT):
    centroids = cT.Input(name="centroids", doc="Dummy input: ties the quantum to the visit", storageClass="NumpyArray",
                         dimensions=CAMERA_VISIT)
    slitOffsets = cT.PrerequisiteInput(name="detectorMap_calib.slitOffsets", doc="Slit offsets of a detectorMap",
                                       storageClass="NumpyArray", dimensions=CAMERA, isCalibration=True, minimum=0)
    outputSlitOffsets = cT.Output(name="slitOffsets", doc="Slit offsets to use for the fit", storageClass="NumpyArray",
                                  dimensions=CAMERA_VISIT)


class GatherSlitOffsetsConfig(PipelineTaskConfig, DemoKnobsConfig, pipelineConnections=GatherSlitOffsetsConnections):
    pass


class GatherSlitOffsetsTask(DemoPipelineTask):
    ConfigClass = GatherSlitOffsetsConfig
    _DefaultName = "gatherSlitOffsets"

    def run(self, centroids, dataId, inputRefs=None, slitOffsets=None):
        if slitOffsets is None:
            slitOffsets = np.zeros((model.FIBERS_PER_SPECTROGRAPH, 2))
            self.log.info("No slit offsets available for visit %d; using zeros", int(dataId["visit"]))
        else:
            self.log.info("Gathered slit offsets for %d fibers: median spatial %.3f, spectral %.3f pixels",
                          len(slitOffsets), float(np.median(slitOffsets[:, 0])), float(np.median(slitOffsets[:, 1])))
        return Struct(outputSlitOffsets=np.asarray(slitOffsets, dtype=float))


# --- fitDetectorMap ------------------------------------------------------------------------------------
class FitDetectorMapConnections(PipelineTaskConnections, dimensions=CAMERA):
    centroids = cT.Input(name="centroids", doc="Centroids of every visit", storageClass="NumpyArray",
                         dimensions=CAMERA_VISIT, multiple=True)
    slitOffsets = cT.Input(name="slitOffsets", doc="Slit offsets of every visit", storageClass="NumpyArray",
                           dimensions=CAMERA_VISIT, multiple=True)
    detectorMap = cT.Output(name="detectorMap_candidate", doc="Fitted detectorMap (to be certified)",
                            storageClass=DETMAP, dimensions=CAMERA)


class FitDistortedDetectorMapConfig(Config):
    order = Field(dtype=int, default=1, doc="Polynomial order of the wavelength solution.")
    soften = Field(dtype=float, default=0.0, doc="Systematic error (pixels) added in quadrature to centroid errors.")
    doSlitOffsets = Field(dtype=bool, default=False, doc="Start from (and report) the gathered slit offsets?")
    centroidError = Field(dtype=float, default=0.05, doc="Nominal centroid error (pixels).")


class FitDetectorMapConfig(PipelineTaskConfig, DemoKnobsConfig, pipelineConnections=FitDetectorMapConnections):
    fitDetectorMap = ConfigField(dtype=FitDistortedDetectorMapConfig, doc="The detectorMap fit")


class FitDetectorMapTask(DemoPipelineTask):
    ConfigClass = FitDetectorMapConfig
    _DefaultName = "fitDetectorMap"

    def demoFailure(self, data_id):
        return RuntimeError(f"Fit did not converge for {data_id['arm']}{data_id['spectrograph']}: chi^2/dof = 41.7 "
                            "after 10 iterations")

    def run(self, centroids, slitOffsets, dataId, inputRefs=None):
        cfg = self.config.fitDetectorMap
        arm, sm = camera(dataId)
        allc = np.concatenate([c for c in centroids if len(c)]) if centroids else np.zeros((0, 4))
        fiber_ids = np.unique(allc[:, 0]).astype(int)
        traces = allc[np.isnan(allc[:, 1])]
        lines = allc[~np.isnan(allc[:, 1])]
        if len(lines) <= cfg.order:
            raise RuntimeError(f"Only {len(lines)} arc lines for {arm}{sm}: cannot fit order {cfg.order}")
        x_center = np.array([np.median((traces if len(traces) else lines)[(traces if len(traces) else lines)[:, 0] == f, 2])
                             for f in fiber_ids])
        err = np.hypot(cfg.centroidError, cfg.soften)
        coeffs = np.polynomial.polynomial.polyfit(lines[:, 3], lines[:, 1], cfg.order, w=np.full(len(lines), 1 / err))
        resid = np.polynomial.polynomial.polyval(lines[:, 3], coeffs) - lines[:, 1]
        dof = max(len(lines) - cfg.order - 1, 1)
        slit = np.median(np.stack(slitOffsets), axis=0) if cfg.doSlitOffsets and slitOffsets else np.zeros((len(fiber_ids), 2))
        self.log.info("Fit %d lines and %d trace points from %d visits for %s%d: order=%d, rms=%.4f nm, "
                      "chi2/dof=%.2f (soften=%.3f, slit offsets %s)", len(lines), len(traces), len(centroids), arm, sm,
                      cfg.order, float(np.std(resid)), float(np.sum((resid / (coeffs[1] * err)) ** 2) / dof), cfg.soften,
                      "on" if cfg.doSlitOffsets else "off")
        x_resid = np.concatenate([_less_median(c[np.isnan(c[:, 1]), 2] - x_center[np.searchsorted(
            fiber_ids, c[np.isnan(c[:, 1]), 0].astype(int))]) for c in centroids if len(c)] or [np.zeros(0)])
        dispersion = abs(float(np.polynomial.polynomial.polyval((model.ROWS - 1) / 2,
                                                                np.polynomial.polynomial.polyder(coeffs))))
        y_resid = _by_fiber(resid / dispersion, lines[:, 0])
        used = _clipped(y_resid, cfg.centroidError)
        fit = final_fit(self.log, y_resid[used], x_resid, cfg.order + 1, int(used.sum()), len(lines), dispersion, err)
        detmap = DetectorMap(fiberId=fiber_ids, xCenter=x_center, wavelength=coeffs, slitOffsets=slit,
                             metadata={"source": "fitDetectorMap", "order": cfg.order, "arm": arm, "spectrograph": sm,
                                       **fit})
        return Struct(detectorMap=detmap)


__all__ = [
    "BootstrapTask", "CosmicRayTask", "MeasureCentroidsTask", "GatherSlitOffsetsTask", "FitDetectorMapTask",
    "ProfilesConfig", "NoWorkFound",
]
