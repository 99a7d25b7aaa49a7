"""define-profiles and certify-detectormaps through the Butler API: effects and refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pfstui.butler.pfs import ActionError, certify_detector_maps, define_profiles
from pfstui.demo.storage import DetectorMap


def test_define_profiles(demo_repo: Path):
    from lsst.daf.butler import Butler

    result = define_profiles(str(demo_repo), "PFS", "demo_br", ["51..52", "55..56"], ["53..54", "57..58"])
    assert result.effect["groups"][1] == {"bright": [55, 56], "dark": [57, 58]}
    with Butler.from_config(str(demo_repo)) as butler:
        visits = butler.get("profiles_visits", instrument="PFS", profiles_run="demo_br", profiles_group=1,
                            collections="PFS/fiberProfilesInputs")
        assert visits == {"bright": [55, 56], "dark": [57, 58]}
        joined = butler.query_data_ids(["visit", "profiles_group"], where="instrument = 'PFS' AND profiles_run = 'demo_br'", limit=None)
        assert sorted((d["profiles_group"], d["visit"]) for d in joined) == [
            (0, 51), (0, 52), (0, 53), (0, 54), (1, 55), (1, 56), (1, 57), (1, 58)]
    with pytest.raises(ActionError, match="already exists; use --update"):
        define_profiles(str(demo_repo), "PFS", "demo_br", ["51..52"], ["53..54"])


@pytest.mark.parametrize(
    "bright, dark, fragment",
    [
        (["51..52"], ["53", "54"], r"Length of bright \(1\) and dark \(2\)"),
        (["51..52"], ["52..53"], "both bright and dark"),
        (["51..999"], [], "visits 59..999 are not in"),
        ([], [], "no groups given"),
        (["5..x"], [], "bad visit list element"),
    ],
)
def test_define_profiles_refusals_write_nothing(demo_repo: Path, bright, dark, fragment):
    from lsst.daf.butler import Butler

    with pytest.raises(Exception, match=fragment):
        define_profiles(str(demo_repo), "PFS", "bad", bright, dark)
    with Butler.from_config(str(demo_repo)) as butler:
        assert list(butler.registry.queryDimensionRecords("profiles_run")) == []


def _put_candidates(repo: Path, run: str, chain: str) -> None:
    from lsst.daf.butler import Butler, CollectionType, DatasetType

    with Butler.from_config(str(repo), writeable=True) as butler:
        dt = DatasetType("detectorMap_candidate", ("instrument", "arm", "spectrograph"), "DemoDetectorMap",
                         universe=butler.dimensions)
        butler.registry.registerDatasetType(dt)
        butler.collections.register(run, CollectionType.RUN)
        butler.collections.register(chain, CollectionType.CHAINED)
        butler.collections.prepend_chain(chain, run)
        for arm in "br":
            for sm in (1, 2):
                dm = DetectorMap(fiberId=np.arange(3), xCenter=np.arange(3.0) + sm, wavelength=np.array([400.0, 5.0]),
                                 slitOffsets=np.zeros((3, 2)))
                butler.put(dm, dt, instrument="PFS", arm=arm, spectrograph=sm, run=run)


def test_certify_detector_maps_and_conflict(demo_repo: Path):
    from lsst.daf.butler import Butler

    _put_candidates(demo_repo, "u/me/detectorMap/20250101T000000Z", "u/me/detectorMap")
    result = certify_detector_maps(str(demo_repo), "u/me/detectorMap", "PFS/calib",
                                   begin="2000-01-01T00:00:00", end="2050-12-31T23:59:59")
    assert len(result.effect["datasets"]) == 4
    with Butler.from_config(str(demo_repo)) as butler:
        assocs = list(butler.registry.queryDatasetAssociations("detectorMap_calib", collections=["PFS/calib"]))
        assert len(assocs) == 4 and {a.ref.run for a in assocs} == {"u/me/detectorMap/certify"}
        dm = butler.get(assocs[0].ref)
        assert isinstance(dm, DetectorMap)
    # Certifying again over an overlapping range is refused before anything is written.
    with pytest.raises(ActionError, match="overlapping range"):
        certify_detector_maps(str(demo_repo), "u/me/detectorMap", "PFS/calib", begin="2020-01-01T00:00:00")
    with Butler.from_config(str(demo_repo)) as butler:
        assert len(list(butler.registry.queryDatasetAssociations("detectorMap_calib", collections=["PFS/calib"]))) == 4


def test_certify_detector_maps_refusals(demo_repo: Path):
    with pytest.raises(ActionError, match="does not exist"):
        certify_detector_maps(str(demo_repo), "u/nobody/detectorMap", "PFS/calib")
    _put_candidates(demo_repo, "u/me/dm/run1", "u/me/dm")
    with pytest.raises(ActionError, match="is a RUN collection, not CALIBRATION"):
        certify_detector_maps(str(demo_repo), "u/me/dm", "PFS/raw/sps")
    with pytest.raises(Exception, match="not before"):
        certify_detector_maps(str(demo_repo), "u/me/dm", "PFS/calib", begin="2030-01-01", end="2020-01-01")
