"""Instrument signature removal (stands in for ``lsst.obs.pfs.isrTask.PfsIsrTask``)."""

from __future__ import annotations

import numpy as np
from lsst.pex.config import Field
from lsst.pipe.base import PipelineTaskConfig, PipelineTaskConnections, Struct
from lsst.pipe.base import connectionTypes as cT

from .. import model
from .base import DemoKnobsConfig, DemoPipelineTask, camera, visit_record

CAMERA_VISIT = ("instrument", "visit", "arm", "spectrograph")
CAMERA = ("instrument", "arm", "spectrograph")


class DemoIsrConnections(PipelineTaskConnections, dimensions=CAMERA_VISIT):
    ccdExposure = cT.Input(name="raw", doc="Raw image", storageClass="NumpyArray", dimensions=CAMERA_VISIT)
    bias = cT.PrerequisiteInput(
        name="bias", doc="Combined bias", storageClass="NumpyArray", dimensions=CAMERA, isCalibration=True
    )
    dark = cT.PrerequisiteInput(
        name="dark", doc="Combined dark (ADU/s)", storageClass="NumpyArray", dimensions=CAMERA, isCalibration=True
    )
    flat = cT.PrerequisiteInput(
        name="fiberFlat", doc="Fiber flat (pixel response)", storageClass="NumpyArray", dimensions=CAMERA,
        isCalibration=True,
    )
    outputExposure = cT.Output(
        name="postISRCCD", doc="Image after ISR", storageClass="NumpyArray", dimensions=CAMERA_VISIT
    )

    def __init__(self, *, config=None):
        super().__init__(config=config)
        if not config.doBias:
            del self.bias
        if not config.doDark:
            del self.dark
        if not config.doFlat:
            del self.flat


class DemoIsrConfig(PipelineTaskConfig, DemoKnobsConfig, pipelineConnections=DemoIsrConnections):
    doOverscan = Field(dtype=bool, default=True, doc="Subtract the overscan level (per row)?")
    doCrosstalk = Field(dtype=bool, default=True, doc="Correct inter-amplifier crosstalk?")
    crosstalkCoeff = Field(dtype=float, default=2e-4, doc="Crosstalk coefficient (mirror-image amplifier).")
    doBias = Field(dtype=bool, default=True, doc="Subtract the certified bias?")
    doDark = Field(dtype=bool, default=True, doc="Subtract the certified dark scaled by dark time?")
    doFlat = Field(dtype=bool, default=True, doc="Divide by the certified fiberFlat?")
    saturation = Field(dtype=float, default=60000.0, doc="Saturation level (ADU).")


class DemoIsrTask(DemoPipelineTask):
    ConfigClass = DemoIsrConfig
    _DefaultName = "isr"
    _logRoot = "lsst"  # obs_pfs ISR logs as lsst.isr

    def demoFailure(self, data_id):
        return RuntimeError(
            f"Saturated pixels fill 37.4% of amplifier 2 of {data_id['arm']}{data_id['spectrograph']}: "
            "cannot measure the overscan level"
        )

    def run(self, ccdExposure, dataId, inputRefs=None, bias=None, dark=None, flat=None):
        arm, sm = camera(dataId)
        raw = np.asarray(ccdExposure, dtype=float)
        self.log.info("Converting exposure to floating point values.")
        image = raw[:, : model.COLS].copy()
        overscan = raw[:, model.COLS :]
        saturated = int((image >= self.config.saturation).sum())
        if saturated:
            self.log.warning("%d saturated pixels in %s%d", saturated, arm, sm)
        if self.config.doOverscan:
            level = np.median(overscan, axis=1)
            image -= level[:, None]
            self.log.info("Overscan correction: mean level %.2f ADU, row-to-row rms %.2f ADU", level.mean(), level.std())
        if self.config.doCrosstalk:
            half = model.COLS // 2
            mirror = np.hstack([image[:, half:][:, ::-1], image[:, :half][:, ::-1]])
            image -= self.config.crosstalkCoeff * mirror
            self.log.info("Applying crosstalk correction (coefficient %.1e).", self.config.crosstalkCoeff)
        if bias is not None:
            image -= bias
            self.log.info("Applying bias correction: bias mean %.2f ADU", float(np.mean(bias)))
        if dark is not None:
            dark_time = float(visit_record(dataId).dark_time)
            image -= dark * dark_time
            self.log.info("Applying dark correction: dark time %.1f s, mean %.3f ADU", dark_time, float(np.mean(dark) * dark_time))
        if flat is not None:
            image /= np.where(flat > 0, flat, 1.0)
            self.log.info("Applying fiberFlat: pixel response rms %.4f", float(np.std(flat)))
        self.log.info("ISR complete for %s%d: median %.2f ADU, max %.1f ADU", arm, sm, float(np.median(image)), float(image.max()))
        return Struct(outputExposure=image.astype(np.float32))
