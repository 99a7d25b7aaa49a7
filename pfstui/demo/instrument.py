"""The demo instrument: a PFS-like spectrograph whose short name is ``PFS``.

It is a real `lsst.pipe.base.Instrument`: ``pipetask run --instrument
pfstui.demo.instrument.DemoPrimeFocusSpectrograph`` and ``Instrument.fromName("PFS", registry)`` both
work, and its collection names read exactly like an operator's (``PFS/raw/sps``, ``PFS/calib``...).
"""

from __future__ import annotations

from lsst.daf.butler import DatasetType
from lsst.daf.butler.formatters.pickle import PickleFormatter
from lsst.pipe.base import Instrument

INSTRUMENT_NAME = "PFS"
CLASS_NAME = "pfstui.demo.instrument.DemoPrimeFocusSpectrograph"

#: All arms and spectrographs a PFS instrument knows about (the demo data use a subset).
ARMS = ("b", "r", "n", "m")
SPECTROGRAPHS = (1, 2, 3, 4)

#: Calibration dataset types registered by the instrument, as obs_pfs does for detectorMap_calib.
CALIBRATION_TYPES = {
    "detectorMap_calib": "DemoDetectorMap",
}


def detector_id(arm: str, spectrograph: int) -> int:
    """Detector id following obs_pfs's camera.yaml: b1=0, r1=1, n1=2, b2=3, ... (m shares r's CCD)."""
    base = 3 * (spectrograph - 1)
    if arm == "m":
        return -(base + 1)
    return base + "brn".index(arm)


class DemoPrimeFocusSpectrograph(Instrument):
    """Demo PFS instrument (stands in for ``lsst.obs.pfs.PrimeFocusSpectrograph``)."""

    @classmethod
    def getName(cls) -> str:
        return INSTRUMENT_NAME

    def register(self, registry, *, update: bool = False) -> None:
        name = self.getName()
        with registry.transaction():
            registry.syncDimensionData(
                "instrument",
                {"name": name, "visit_max": 2**31, "detector_max": 128, "class_name": CLASS_NAME},
                update=update,
            )
            for arm in ARMS:
                registry.syncDimensionData("arm", {"instrument": name, "name": arm}, update=update)
            for num in SPECTROGRAPHS:
                registry.syncDimensionData("spectrograph", {"instrument": name, "num": num}, update=update)
            for num in SPECTROGRAPHS:
                for arm in ARMS:
                    full = f"{arm}{num}"
                    registry.syncDimensionData(
                        "detector",
                        {
                            "instrument": name,
                            "id": detector_id(arm, num),
                            "full_name": full,
                            "arm": arm,
                            "spectrograph": num,
                            "raft": full[-1],
                            "name_in_raft": full[0],
                            "purpose": "science",
                        },
                        update=update,
                    )
        universe = registry.dimensions
        registry.registerDatasetType(
            DatasetType("raw", ("instrument", "visit", "arm", "spectrograph"), "NumpyArray", universe=universe)
        )
        registry.registerDatasetType(DatasetType("pfsConfig", ("instrument", "visit"), "StructuredDataDict", universe=universe))
        for dsname, storage in CALIBRATION_TYPES.items():
            registry.registerDatasetType(
                DatasetType(
                    dsname, ("instrument", "arm", "spectrograph"), storage, universe=universe, isCalibration=True
                )
            )

    def getRawFormatter(self, dataId):
        return PickleFormatter

    def makeDefaultRawIngestRunName(self) -> str:
        # obs_pfs ingests raws into PFS/raw/sps since 2024-11 (it was PFS/raw/all).
        return self.makeCollectionName("raw", "sps")

    def getCamera(self):  # pragma: no cover - no afw camera in the demo
        raise NotImplementedError("The demo instrument has no afw camera.")
