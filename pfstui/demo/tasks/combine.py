"""Calibration combination tasks: bias/dark combine, dark CR repair, dither and fiber-flat combine."""

from __future__ import annotations

import numpy as np
from lsst.pex.config import ChoiceField, Field
from lsst.pipe.base import PipelineTaskConfig, PipelineTaskConnections, Struct
from lsst.pipe.base import connectionTypes as cT

from .base import (
    DemoKnobsConfig,
    DemoPipelineTask,
    camera,
    data_id_matches,
    local_residual,
    median_combine,
    smooth_rows,
)

CAMERA_VISIT = ("instrument", "visit", "arm", "spectrograph")
CAMERA = ("instrument", "arm", "spectrograph")


# --- cpBiasCombine / darkCombine (PfsCalibCombineTask) -------------------------------------------------
class DemoCalibCombineConnections(PipelineTaskConnections, dimensions=CAMERA):
    inputExpHandles = cT.Input(
        name="postISRCCD", doc="Images to combine", storageClass="NumpyArray", dimensions=CAMERA_VISIT,
        multiple=True, deferLoad=True,
    )
    outputData = cT.Output(
        name="calib", doc="Combined calibration", storageClass="NumpyArray", dimensions=CAMERA, isCalibration=True
    )


class DemoCalibCombineConfig(PipelineTaskConfig, DemoKnobsConfig, pipelineConnections=DemoCalibCombineConnections):
    calibrationType = Field(dtype=str, default="calibration", doc="Name of the calibration being built.")
    exposureScaling = ChoiceField(
        dtype=str,
        default="Unity",
        allowed={"Unity": "No scaling", "DarkTime": "Divide by each visit's dark time", "ExposureTime": "Divide by exposure time"},
        doc="How to scale each input before combining.",
    )
    clip = Field(dtype=float, default=3.0, doc="Sigma-clip threshold for the combination.")
    demoOffsetOn = Field(
        dtype=str,
        default="",
        doc=(
            "Demo knob: data ID (as demoFailOn, e.g. 'arm:r,spectrograph:1') of the cameras whose product is made "
            "bad: demoOffset is added to it and demoHotColumns columns are hot, so verification must fail them."
        ),
    )
    demoOffset = Field(dtype=float, default=50.0, doc="Demo knob: offset added to a product demoOffsetOn selects.")
    demoHotColumns = Field(dtype=int, default=3, doc="Demo knob: hot columns (+1000) in a product demoOffsetOn selects.")


class DemoCalibCombineTask(DemoPipelineTask):
    ConfigClass = DemoCalibCombineConfig
    _DefaultName = "cpCombine"

    def runQuantum(self, butlerQC, inputRefs, outputRefs):
        data_id = butlerQC.quantum.dataId
        self.applyDemoKnobs(data_id)
        handles = butlerQC.get(inputRefs.inputExpHandles)
        images, scales = [], []
        for handle in handles:
            scale = 1.0
            if self.config.exposureScaling != "Unity":
                record = handle.dataId.records["visit"]
                scale = float(record.dark_time if self.config.exposureScaling == "DarkTime" else record.exposure_time)
                if scale <= 0:
                    raise RuntimeError(f"Visit {handle.dataId['visit']} has {self.config.exposureScaling} {scale}; cannot scale.")
            images.append(np.asarray(handle.get(), dtype=float) / scale)
            scales.append(scale)
        arm, sm = camera(data_id)
        self.log.info("Combining %d %s inputs for %s%d (scaling %s, clip %.1f sigma)", len(images),
                      self.config.calibrationType, arm, sm, self.config.exposureScaling, self.config.clip)
        stack = np.stack(images)
        med = np.median(stack, axis=0)
        sigma = 1.4826 * np.median(np.abs(stack - med), axis=0) + 1e-9
        mask = np.abs(stack - med) <= self.config.clip * sigma
        combined = np.where(mask, stack, 0.0).sum(axis=0) / np.maximum(mask.sum(axis=0), 1)
        rejected = int((~mask).sum())
        self.log.info("%s for %s%d: mean %.4f, rms %.4f, %d pixels rejected", self.config.calibrationType, arm, sm,
                      float(combined.mean()), float(combined.std()), rejected)
        combined = self.spoil(combined, data_id)
        butlerQC.put(Struct(outputData=combined.astype(np.float32)), outputRefs)

    def spoil(self, combined: np.ndarray, data_id) -> np.ndarray:
        """The demoOffsetOn knob: a bad product (an offset and hot columns) that verification must catch."""
        if not data_id_matches(self.config.demoOffsetOn, data_id):
            return combined
        spoiled = combined + self.config.demoOffset
        spoiled[:, 1 : 1 + 4 * self.config.demoHotColumns : 4] += 1000.0
        self.log.warning("demoOffsetOn: %s%d spoiled (offset %.1f, %d hot columns)", *camera(data_id),
                         self.config.demoOffset, self.config.demoHotColumns)
        return spoiled


# --- dark (PfsDarkTask): cosmic-ray repair of each dark -------------------------------------------------
class DemoDarkConnections(PipelineTaskConnections, dimensions=CAMERA_VISIT):
    inputExp = cT.Input(name="darkProc", doc="Dark after ISR", storageClass="NumpyArray", dimensions=CAMERA_VISIT)
    outputExp = cT.Output(name="darkScaled", doc="CR-repaired dark", storageClass="NumpyArray", dimensions=CAMERA_VISIT)


class DemoDarkConfig(PipelineTaskConfig, DemoKnobsConfig, pipelineConnections=DemoDarkConnections):
    crThreshold = Field(dtype=float, default=8.0, doc="Cosmic-ray threshold (sigma above the local median).")


class DemoDarkTask(DemoPipelineTask):
    ConfigClass = DemoDarkConfig
    _DefaultName = "dark"

    def run(self, inputExp, dataId, inputRefs=None):
        image = np.asarray(inputExp, dtype=float)
        background, resid, sigma = local_residual(image)
        crs = resid > self.config.crThreshold * sigma
        repaired = np.where(crs, background, image)
        self.log.info("Repaired %d cosmic-ray pixels in visit %d (threshold %.1f sigma)", int(crs.sum()),
                      int(dataId["visit"]), self.config.crThreshold)
        return Struct(outputExp=repaired.astype(np.float32))


# --- flat: ditherCombine and flatCombine ----------------------------------------------------------------
class DemoDitherCombineConnections(PipelineTaskConnections, dimensions=CAMERA + ("dither",)):
    inputExps = cT.Input(name="flatProc", doc="Flats after ISR", storageClass="NumpyArray", dimensions=CAMERA_VISIT, multiple=True)
    outputExp = cT.Output(name="ditherFlat", doc="Combined flat for one dither", storageClass="NumpyArray",
                       dimensions=CAMERA + ("dither",))


class DemoDitherCombineConfig(PipelineTaskConfig, DemoKnobsConfig, pipelineConnections=DemoDitherCombineConnections):
    pass


class DemoFlatDitherCombineTask(DemoPipelineTask):
    ConfigClass = DemoDitherCombineConfig
    _DefaultName = "flatDitherCombine"

    def run(self, inputExps, dataId, inputRefs=None):
        combined = median_combine([np.asarray(i, dtype=float) for i in inputExps])
        self.log.info("Combined %d flats at dither %.4f for %s%d: median %.1f ADU", len(inputExps),
                      int(dataId["dither"]) / 1e4, *camera(dataId), float(np.median(combined)))
        return Struct(outputExp=combined.astype(np.float32))


class DemoFlatCombineConnections(PipelineTaskConnections, dimensions=CAMERA):
    inputExps = cT.Input(name="ditherFlat", doc="Per-dither flats", storageClass="NumpyArray",
                      dimensions=CAMERA + ("dither",), multiple=True)
    outputExp = cT.Output(name="fiberFlat", doc="Fiber flat (pixel response)", storageClass="NumpyArray",
                       dimensions=CAMERA, isCalibration=True)


class DemoFlatCombineConfig(PipelineTaskConfig, DemoKnobsConfig, pipelineConnections=DemoFlatCombineConnections):
    minSignal = Field(dtype=float, default=300.0, doc="Pixels with less summed signal get a response of 1.")
    smoothing = Field(dtype=int, default=3, doc="Half-size (rows) of the box used to model the light along traces.")


class DemoFlatCombineTask(DemoPipelineTask):
    ConfigClass = DemoFlatCombineConfig
    _DefaultName = "fiberFlatCombine"

    def run(self, inputExps, dataId, inputRefs=None):
        total = np.sum([np.asarray(i, dtype=float) for i in inputExps], axis=0)
        # The light is smooth along a trace (the spectral direction, rows), the pixel response is not.
        model = smooth_rows(total, self.config.smoothing)
        good = model > self.config.minSignal
        response = np.where(good, total / np.where(good, model, 1.0), 1.0)
        if good.any():  # normalised; the pixels it could not measure stay exactly 1 (what verification skips)
            response = np.where(good, response / np.median(response[good]), 1.0)
        self.log.info("fiberFlat for %s%d from %d dithers: %d/%d pixels measured, response rms %.4f",
                      *camera(dataId), len(inputExps), int(good.sum()), good.size, float(response[good].std()) if good.any() else 0.0)
        return Struct(outputExp=response.astype(np.float32))
