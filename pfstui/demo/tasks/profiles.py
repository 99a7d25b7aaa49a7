"""Fiber-profile tasks (fitFiberProfiles.yaml) and the fiberNorms tasks."""

from __future__ import annotations

import numpy as np
from lsst.pex.config import ConfigField, Field
from lsst.pipe.base import NoWorkFound, PipelineTaskConfig, PipelineTaskConnections, Struct
from lsst.pipe.base import connectionTypes as cT

from .. import model
from ..storage import DetectorMap
from .base import DemoKnobsConfig, DemoPipelineTask, camera
from .detectormap import DETMAP, ProfilesConfig, find_traces

CAMERA_VISIT = ("instrument", "visit", "arm", "spectrograph")
CAMERA = ("instrument", "arm", "spectrograph")
GROUP = ("instrument", "profiles_run", "profiles_group")


# --- profilesFitDetectorMap ------------------------------------------------------------------------------
class ProfilesFitDetectorMapConnections(PipelineTaskConnections, dimensions=CAMERA_VISIT + ("profiles_group",)):
    exposure = cT.Input(name="postISRCCD", doc="Image after ISR", storageClass="NumpyArray", dimensions=CAMERA_VISIT)
    crMask = cT.Input(name="crMask", doc="Cosmic-ray mask", storageClass="NumpyArray", dimensions=CAMERA_VISIT)
    pfsConfig = cT.PrerequisiteInput(name="pfsConfig", doc="Fiber configuration", storageClass="StructuredDataDict",
                                     dimensions=("instrument", "visit"))
    calibDetectorMap = cT.PrerequisiteInput(name="detectorMap_calib", doc="Certified detectorMap", storageClass=DETMAP,
                                            dimensions=CAMERA, isCalibration=True)
    profilesVisits = cT.PrerequisiteInput(name="profiles_visits", doc="Bright and dark visits of the group",
                                          storageClass="StructuredDataDict", dimensions=GROUP)
    outputDetectorMap = cT.Output(name="detectorMap", doc="detectorMap adjusted to this visit", storageClass=DETMAP,
                                  dimensions=CAMERA_VISIT)


class ProfilesFitDetectorMapConfig(PipelineTaskConfig, DemoKnobsConfig,
                                   pipelineConnections=ProfilesFitDetectorMapConnections):
    radius = Field(dtype=int, default=2, doc="Half-width of the trace-centroiding window.")


class ProfilesFitDetectorMapTask(DemoPipelineTask):
    ConfigClass = ProfilesFitDetectorMapConfig
    _DefaultName = "profilesFitDetectorMap"

    def run(self, exposure, crMask, pfsConfig, calibDetectorMap, profilesVisits, dataId, inputRefs=None):
        visit = int(dataId["visit"])
        if visit in profilesVisits.get("dark", []):
            raise NoWorkFound(f"Visit {visit} is a dark (dots) exposure of group {dataId['profiles_group']}: nothing to fit")
        image = np.where(crMask, 0.0, np.asarray(exposure, dtype=float))
        x = find_traces(image, calibDetectorMap.xCenter, self.config.radius)
        shift = float(np.nanmedian(x - calibDetectorMap.xCenter))
        self.log.info("Adjusted detectorMap for visit %d %s%d: spatial shift %.3f pixels over %d fibers", visit,
                      *camera(dataId), shift, len(x))
        detmap = DetectorMap(fiberId=calibDetectorMap.fiberId, xCenter=calibDetectorMap.xCenter + shift,
                             wavelength=calibDetectorMap.wavelength, slitOffsets=calibDetectorMap.slitOffsets,
                             metadata={"source": "profilesFitDetectorMap", "visit": visit})
        return Struct(outputDetectorMap=detmap)


# --- fitProfiles -----------------------------------------------------------------------------------------
class FitProfilesConnections(PipelineTaskConnections, dimensions=("instrument", "profiles_group", "arm", "spectrograph")):
    calexp = cT.Input(name="calexp", doc="CR-repaired images (bright and dark)", storageClass="NumpyArray",
                      dimensions=CAMERA_VISIT, multiple=True)
    detectorMap = cT.Input(name="detectorMap", doc="Per-visit detectorMaps (bright visits)", storageClass=DETMAP,
                           dimensions=CAMERA_VISIT, multiple=True)
    profilesVisits = cT.PrerequisiteInput(name="profiles_visits", doc="Bright and dark visits of the group",
                                          storageClass="StructuredDataDict", dimensions=GROUP)
    fiberProfiles = cT.Output(name="fiberProfiles_group", doc="Profiles measured from one group",
                              storageClass="NumpyArray", dimensions=("instrument", "profiles_group", "arm", "spectrograph"))


class FitProfilesConfig(PipelineTaskConfig, DemoKnobsConfig, pipelineConnections=FitProfilesConnections):
    profiles = ConfigField(dtype=ProfilesConfig, doc="Profile parameters")


class FitProfilesTask(DemoPipelineTask):
    ConfigClass = FitProfilesConfig
    _DefaultName = "fitProfiles"

    def runQuantum(self, butlerQC, inputRefs, outputRefs):
        data_id = butlerQC.quantum.dataId
        self.applyDemoKnobs(data_id)
        visits = butlerQC.get(inputRefs.profilesVisits)
        bright_ids, dark_ids = set(visits["bright"]), set(visits["dark"])
        bright = [np.asarray(butlerQC.get(r), dtype=float) for r in inputRefs.calexp if int(r.dataId["visit"]) in bright_ids]
        dark = [np.asarray(butlerQC.get(r), dtype=float) for r in inputRefs.calexp if int(r.dataId["visit"]) in dark_ids]
        detmaps = [butlerQC.get(r) for r in inputRefs.detectorMap]
        if not bright or not detmaps:
            raise RuntimeError(f"No bright exposures with a detectorMap in group {data_id['profiles_group']}")
        image = np.mean(bright, axis=0) - (np.mean(dark, axis=0) if dark else 0.0)
        x_center = np.mean([d.xCenter for d in detmaps], axis=0)
        cfg = self.config.profiles
        radius, oversample = cfg.profileRadius, cfg.profileOversample
        n_bins = 2 * radius * oversample + 1
        edges = np.linspace(-radius - 0.5 / oversample, radius + 0.5 / oversample, n_bins + 1)
        swaths = max(1, int(np.ceil(model.ROWS / cfg.profileSwath)))
        cols = np.arange(image.shape[1], dtype=float)
        out = np.zeros((len(x_center), n_bins))
        for i, xc in enumerate(x_center):
            offsets = np.broadcast_to(cols - xc, image.shape)
            sel = np.abs(offsets) <= radius + 0.5 / oversample
            hist, _ = np.histogram(offsets[sel], bins=edges, weights=image[sel])
            count, _ = np.histogram(offsets[sel], bins=edges)
            prof = np.where(count > 0, hist / np.maximum(count, 1), 0.0)
            out[i] = prof / prof.sum() if prof.sum() > 0 else prof
        widths = [float(np.sqrt(np.sum(p * ((edges[:-1] + edges[1:]) / 2) ** 2))) for p in out]
        self.log.info("Measured profiles of %d fibers for group %d %s%d from %d bright and %d dark visits: radius %d, "
                      "oversample %d, %d swath(s), median width %.3f pixels", len(out), int(data_id["profiles_group"]),
                      *camera(data_id), len(bright), len(dark), radius, oversample, swaths, float(np.median(widths)))
        butlerQC.put(Struct(fiberProfiles=np.vstack([np.concatenate([[radius, oversample], p]) for p in out])), outputRefs)


# --- mergeProfiles ---------------------------------------------------------------------------------------
class MergeProfilesConnections(PipelineTaskConnections, dimensions=("instrument", "profiles_run", "arm", "spectrograph")):
    profiles = cT.Input(name="fiberProfiles_group", doc="Profiles of each group", storageClass="NumpyArray",
                        dimensions=("instrument", "profiles_group", "arm", "spectrograph"), multiple=True)
    merged = cT.Output(name="fiberProfiles", doc="Merged fiber profiles", storageClass="NumpyArray",
                       dimensions=CAMERA, isCalibration=True)


class MergeProfilesConfig(PipelineTaskConfig, DemoKnobsConfig, pipelineConnections=MergeProfilesConnections):
    pass


class MergeFiberProfilesTask(DemoPipelineTask):
    ConfigClass = MergeProfilesConfig
    _DefaultName = "mergeProfiles"

    def run(self, profiles, dataId, inputRefs=None):
        merged = np.mean(np.stack(profiles), axis=0)
        self.log.info("Merged fiber profiles from %d groups of run %s for %s%d", len(profiles), dataId["profiles_run"],
                      *camera(dataId))
        return Struct(merged=merged)


# --- reduceExposure --------------------------------------------------------------------------------------
class ReduceExposureConnections(PipelineTaskConnections, dimensions=CAMERA_VISIT):
    exposure = cT.Input(name="postISRCCD", doc="Image after ISR", storageClass="NumpyArray", dimensions=CAMERA_VISIT)
    crMask = cT.Input(name="crMask", doc="Cosmic-ray mask", storageClass="NumpyArray", dimensions=CAMERA_VISIT)
    pfsConfig = cT.PrerequisiteInput(name="pfsConfig", doc="Fiber configuration", storageClass="StructuredDataDict",
                                     dimensions=("instrument", "visit"))
    fiberProfiles = cT.PrerequisiteInput(name="fiberProfiles", doc="Certified fiber profiles", storageClass="NumpyArray",
                                         dimensions=CAMERA, isCalibration=True)
    detectorMap = cT.PrerequisiteInput(name="detectorMap_calib", doc="Certified detectorMap", storageClass=DETMAP,
                                       dimensions=CAMERA, isCalibration=True)
    calexp = cT.Output(name="calexp", doc="Repaired image", storageClass="NumpyArray", dimensions=CAMERA_VISIT)
    pfsArm = cT.Output(name="pfsArm", doc="Extracted spectra: fiberId then flux per row", storageClass="NumpyArray",
                       dimensions=CAMERA_VISIT)


class ReduceExposureConfig(PipelineTaskConfig, DemoKnobsConfig, pipelineConnections=ReduceExposureConnections):
    requireAdjustDetectorMap = Field(dtype=bool, default=True, doc="Adjust the detectorMap to this exposure?")
    doApplyFiberNorms = Field(dtype=bool, default=False, doc="Divide by fiberNorms? (False when measuring them)")
    doApplySkyNorms = Field(dtype=bool, default=False, doc="Divide by skyNorms?")
    doApplyPfiCorrection = Field(dtype=bool, default=False, doc="Apply the PFI correction?")


class ReduceExposureTask(DemoPipelineTask):
    ConfigClass = ReduceExposureConfig
    _DefaultName = "reduceExposure"

    def run(self, exposure, crMask, pfsConfig, fiberProfiles, detectorMap, dataId, inputRefs=None):
        image = np.asarray(exposure, dtype=float)
        image = np.where(crMask, np.median(image), image)
        x_center = detectorMap.xCenter
        if self.config.requireAdjustDetectorMap:
            measured = find_traces(image, x_center, 2)
            shift = float(np.nanmedian(measured - x_center))
            x_center = x_center + shift
            self.log.info("Adjusted detectorMap by %.3f pixels", shift)
        cols = np.arange(image.shape[1], dtype=float)
        flux = np.zeros((len(x_center), image.shape[0]))
        for i, (xc, row) in enumerate(zip(x_center, fiberProfiles)):
            radius, oversample, prof = int(row[0]), int(row[1]), row[2:]
            centers = np.linspace(-radius, radius, len(prof))
            weights = np.interp(cols - xc, centers, prof, left=0.0, right=0.0)
            norm = np.sum(weights**2)
            flux[i] = image @ weights / norm if norm > 0 else 0.0
        self.log.info("Extracted %d spectra from visit %d %s%d: median flux %.1f", len(flux), int(dataId["visit"]),
                      *camera(dataId), float(np.median(flux)))
        pfs_arm = np.hstack([detectorMap.fiberId[:, None].astype(float), flux])
        return Struct(calexp=image.astype(np.float32), pfsArm=pfs_arm)


# --- measureFiberNorms -----------------------------------------------------------------------------------
class MeasureFiberNormsConnections(PipelineTaskConnections, dimensions=("instrument", "arm")):
    pfsArm = cT.Input(name="pfsArm", doc="Extracted quartz spectra", storageClass="NumpyArray",
                      dimensions=CAMERA_VISIT, multiple=True)
    fiberNorms = cT.Output(name="fiberNorms_calib", doc="Fiber normalisations: fiberId, norm",
                           storageClass="NumpyArray", dimensions=("instrument", "arm"), isCalibration=True)


class MeasureFiberNormsConfig(PipelineTaskConfig, DemoKnobsConfig, pipelineConnections=MeasureFiberNormsConnections):
    rejIter = Field(dtype=int, default=1, doc="Rejection iterations.")
    rejThresh = Field(dtype=float, default=4.0, doc="Rejection threshold (sigma).")


class MeasureFiberNormsTask(DemoPipelineTask):
    ConfigClass = MeasureFiberNormsConfig
    _DefaultName = "measureFiberNorms"

    def run(self, pfsArm, dataId, inputRefs=None):
        fibers: dict[int, list[float]] = {}
        for arr in pfsArm:
            for row in arr:
                fibers.setdefault(int(row[0]), []).append(float(np.median(row[1:])))
        ids = np.array(sorted(fibers))
        values = np.array([np.median(fibers[f]) for f in ids])
        norms = values / np.median(values)
        self.log.info("Measured fiberNorms of %d fibers in arm %s from %d spectra: range %.4f..%.4f (rejIter %d)", len(ids),
                      dataId["arm"], len(pfsArm), float(norms.min()), float(norms.max()), self.config.rejIter)
        return Struct(fiberNorms=np.stack([ids.astype(float), norms], axis=1))


__all__ = ["ProfilesFitDetectorMapTask", "FitProfilesTask", "MergeFiberProfilesTask", "ReduceExposureTask",
           "MeasureFiberNormsTask", "model"]
