"""Certify the whole product: after a partial rerun (``--skip-existing-in``) the output chain holds several RUNs,
each with part of the product; ``whole_product`` takes, for every data ID, the newest dataset of the type across the
chain's own RUNs, and the preview says which RUN each comes from.  Every assertion reads the registry back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pfstui.butler.apply import apply
from pfstui.butler.certify import preview_certify
from pfstui.butler.errors import InputError
from pfstui.butler.gateway import ButlerGateway
from pfstui.infra.journal import Journal

CHAIN = "u/test/bias"
FIRST, RERUN = f"{CHAIN}/20250101T000000Z", f"{CHAIN}/20250102T000000Z"


def seed_partial_rerun(repo: Path, chain: str = CHAIN) -> dict[str, list[str]]:
    """The output chain of a bias run whose r1 failed, then a rerun that made only r1: ``[rerun, first, inputs]``
    (the order ``pipetask run -o`` leaves).  Returns the cameras of each RUN."""
    from lsst.daf.butler import Butler, CollectionType, DatasetType

    cameras = {f"{chain}/20250101T000000Z": ["b1", "b2", "r2"], f"{chain}/20250102T000000Z": ["r1"]}
    with Butler.from_config(str(repo), writeable=True) as butler:
        bias = DatasetType("bias", ("instrument", "arm", "spectrograph"), "NumpyArray", universe=butler.dimensions,
                           isCalibration=True)
        butler.registry.registerDatasetType(bias)
        for run, cams in cameras.items():
            butler.collections.register(run, CollectionType.RUN)
            for cam in cams:
                butler.put(np.zeros(4), bias, instrument="PFS", arm=cam[0], spectrograph=int(cam[1]), run=run)
        butler.collections.register(chain, CollectionType.CHAINED)
        butler.collections.redefine_chain(chain, [*reversed(cameras), "PFS/raw/sps", "PFS/calib"])
    return cameras


@pytest.fixture
def repo(demo_repo: Path) -> Path:
    """The repository of the ``gw`` fixture (tests/butler/conftest.py): a demo repository after a partial rerun."""
    seed_partial_rerun(demo_repo)
    return demo_repo


def certified(gw: ButlerGateway) -> dict[str, str]:
    butler = gw.butler
    butler.registry.refresh()
    return {f"{a.ref.dataId['arm']}{a.ref.dataId['spectrograph']}": a.ref.run
            for a in butler.registry.queryDatasetAssociations("bias", collections=["PFS/calib"])}


def test_the_first_child_alone_is_part_of_the_product(gw: ButlerGateway):
    """What ``butler certify-calibrations`` (and a plan's certify stage before) took: r1 only."""
    preview = preview_certify(gw, CHAIN, "PFS/calib", "bias")
    assert [c.after[0].camera() for c in preview.changes] == ["arm=r spectrograph=1"]


def test_the_whole_product_takes_every_camera_from_the_run_that_made_it(gw: ButlerGateway, journal: Journal):
    preview = preview_certify(gw, CHAIN, "PFS/calib", "bias", begin="2025-01-01T00:00:00", whole_product=True)
    assert preview.summary == f"certify 4 bias from {CHAIN} (2 RUNs) into PFS/calib for [2025-01-01T00:00:00, ∞)"
    assert preview.notes == [(f"input {CHAIN} is CHAINED: the newest bias of each data ID across its 2 RUNs: "
                              f"1 from {RERUN}, 3 from {FIRST}"),
                             ("verified against nothing certified in PFS/calib at 2025-01-01T00:00:00.000000: the "
                              "comparisons with it are n/a")]
    lines = preview.lines()
    for camera, run in (("r spectrograph=1", RERUN), ("b spectrograph=1", FIRST), ("r spectrograph=2", FIRST)):
        assert any(f"arm={camera}" in line and line.endswith(f"run {run})") for line in lines), (camera, lines)
    apply(gw, preview, journal=journal)
    assert certified(gw) == {"b1": FIRST, "b2": FIRST, "r1": RERUN, "r2": FIRST}


def test_the_newest_run_wins_where_both_hold_a_camera(demo_repo: Path, gw: ButlerGateway):
    """A camera the rerun made again (a full rerun of it) is taken from the rerun: the chain's search order."""
    from lsst.daf.butler import Butler

    with Butler.from_config(str(demo_repo), writeable=True) as butler:
        butler.put(np.ones(4), "bias", instrument="PFS", arm="b", spectrograph=1, run=RERUN)
    preview = preview_certify(gw, CHAIN, "PFS/calib", "bias", whole_product=True)
    assert {c.after[0].camera(): c.after[0].run for c in preview.changes} == {
        "arm=b spectrograph=1": RERUN, "arm=b spectrograph=2": FIRST, "arm=r spectrograph=1": RERUN,
        "arm=r spectrograph=2": FIRST}


def test_a_chain_without_runs_of_its_own_is_refused(demo_repo: Path, gw: ButlerGateway):
    from lsst.daf.butler import Butler, CollectionType

    with Butler.from_config(str(demo_repo), writeable=True) as butler:
        butler.collections.register("u/test/borrowed", CollectionType.CHAINED)
        butler.collections.redefine_chain("u/test/borrowed", [FIRST])
    with pytest.raises(InputError, match="holds no RUN of its own"):
        preview_certify(gw, "u/test/borrowed", "PFS/calib", "bias", whole_product=True)
