"""certify-detectormaps as certifyDetectorMaps.py: every candidate of the collection (a camera held by two RUNs is
refused unless --run names one), the copy is the candidate's own file (no formatter import: it works where the
detectorMap classes cannot be imported), and data IDs of any dimensions.  Every assertion reads the registry back."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pfstui.butler.apply import apply
from pfstui.butler.errors import ConflictError, InputError
from pfstui.butler.gateway import ButlerGateway
from pfstui.butler.pfs import preview_certify_detectormaps
from pfstui.infra.journal import Journal
from tests.blocked_demo import SCRIPT
from tests.butler.test_pfs import _put_candidates, detectormap_calibs

CHAIN = "u/me/dm"
OLD, NEW = "u/me/dm/20250101T000000Z", "u/me/dm/20250102T000000Z"


@pytest.fixture
def repo(demo_repo: Path) -> Path:
    """The repository of the ``gw`` fixture (tests/butler/conftest.py): a fresh demo repository."""
    return demo_repo


def test_two_runs_holding_the_same_cameras_are_refused_unless_one_is_named(demo_repo: Path, gw: ButlerGateway,
                                                                           journal: Journal):
    _put_candidates(demo_repo, OLD, CHAIN)
    _put_candidates(demo_repo, NEW, CHAIN)  # a full rerun: every camera twice
    preview = preview_certify_detectormaps(gw, CHAIN, "PFS/calib")
    assert preview.blocked
    assert preview.blockers == [
        f"2 RUNs of {CHAIN} hold a detectorMap_candidate for arm=b spectrograph=1 ({NEW}, {OLD}), as do 3 other "
        f"data IDs; certifyDetectorMaps.py would refuse (ingest conflict): name the RUN to certify with --run "
        f"(e.g. --run {NEW})"]
    with pytest.raises(ConflictError, match="ingest conflict"):
        apply(gw, preview, journal=journal)
    assert detectormap_calibs(demo_repo) == [] and journal.entries()[0] == []

    chosen = preview_certify_detectormaps(gw, CHAIN, "PFS/calib", run=OLD)
    assert not chosen.blocked and chosen.summary.startswith(f"certify 4 detectorMap_calib (copies of the "
                                                            f"detectorMap_candidate in {OLD})")
    result = apply(gw, chosen, journal=journal)
    assert {d["from"] for d in result.effect["datasets"]} == {OLD}
    assert len(detectormap_calibs(demo_repo)) == 4

    with pytest.raises(InputError, match=f"RUN PFS/raw/sps is not in {CHAIN}; name one of its RUNs"):
        preview_certify_detectormaps(gw, CHAIN, "PFS/calib", run="PFS/raw/sps")
    with pytest.raises(InputError, match=f"--run '{CHAIN}' is a CHAINED collection"):
        preview_certify_detectormaps(gw, CHAIN, "PFS/calib", run=CHAIN)


def test_a_partial_rerun_is_not_ambiguous(demo_repo: Path, gw: ButlerGateway, journal: Journal):
    """After a rerun with --skip-existing-in, the new RUN holds only the cameras that failed: each camera is in
    one RUN, and all of them are certified, each from its own RUN."""
    from lsst.daf.butler import Butler

    _put_candidates(demo_repo, OLD, CHAIN)
    with Butler.from_config(str(demo_repo), writeable=True) as butler:
        butler.pruneDatasets(list(butler.query_datasets("detectorMap_candidate", collections=OLD,
                                                        where="instrument = 'PFS' AND arm = 'r' AND spectrograph = 2")),
                             disassociate=True, unstore=True, purge=True)
    _put_candidates(demo_repo, NEW, CHAIN, cameras=[("r", 2)])
    preview = preview_certify_detectormaps(gw, CHAIN, "PFS/calib")
    assert not preview.blocked
    assert sum(f"from {NEW})" in line for line in preview.lines()) == 1
    assert sum(f"from {OLD})" in line for line in preview.lines()) == 3
    apply(gw, preview, journal=journal)
    assert len(detectormap_calibs(demo_repo)) == 4


def test_the_copy_needs_neither_the_formatter_nor_the_type(demo_repo: Path, tmp_path: Path):
    from lsst.daf.butler import Butler

    _put_candidates(demo_repo, OLD, CHAIN)
    env = dict(os.environ, PFSTUI_STATE_DIR=str(tmp_path / "state"))
    argv = ["certify-detectormaps", str(demo_repo), CHAIN, "PFS/calib", "--yes"]
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(demo_repo), CHAIN, "detectorMap_candidate", *argv], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "this process cannot read a detectorMap" in done.stdout
    assert f"Certified 4 detectorMap_calib in PFS/calib for [-∞, ∞) (copies in {CHAIN}/certify)." in done.stdout
    with Butler.from_config(str(demo_repo)) as butler:
        certified = {(a.ref.dataId["arm"], a.ref.dataId["spectrograph"]): a.ref
                     for a in butler.registry.queryDatasetAssociations("detectorMap_calib", collections=["PFS/calib"])}
        assert len(certified) == 4
        for (arm, sm), copy in certified.items():
            original = butler.find_dataset("detectorMap_candidate", instrument="PFS", arm=arm, spectrograph=sm,
                                           collections=CHAIN)
            assert butler.getURI(copy).read() == butler.getURI(original).read()  # the same bytes
            assert butler.getURI(copy) != butler.getURI(original)  # in a file of its own
            assert np.array_equal(butler.get(copy).xCenter, butler.get(original).xCenter)  # read by its formatter


def _put_spectrograph_maps(repo: Path, run: str) -> None:
    """Candidates whose data ID has no arm (instrument and spectrograph only), with a calibration type to match."""
    from lsst.daf.butler import Butler, CollectionType, DatasetType

    with Butler.from_config(str(repo), writeable=True) as butler:
        dims = ("instrument", "spectrograph")
        candidate = DatasetType("slitMap_candidate", dims, "NumpyArray", universe=butler.dimensions)
        calib = DatasetType("slitMap_calib", dims, "NumpyArray", universe=butler.dimensions, isCalibration=True)
        for dt in (candidate, calib):
            butler.registry.registerDatasetType(dt)
        butler.collections.register(run, CollectionType.RUN)
        for sm in (1, 2):
            butler.put(np.full(3, float(sm)), candidate, instrument="PFS", spectrograph=sm, run=run)


def test_data_ids_of_any_dimensions(demo_repo: Path, gw: ButlerGateway, journal: Journal):
    from lsst.daf.butler import Butler

    _put_spectrograph_maps(demo_repo, "u/me/slit")
    preview = preview_certify_detectormaps(gw, "u/me/slit", "PFS/calib", dataset_type="slitMap_candidate",
                                           output_type="slitMap_calib", begin="2025-01-01T00:00:00")
    assert [line.strip().split("  [")[0] for line in preview.lines() if "+ certify" in line] == [
        "+ certify   slitMap_calib spectrograph=1", "+ certify   slitMap_calib spectrograph=2"]
    apply(gw, preview, journal=journal)
    with Butler.from_config(str(demo_repo)) as butler:
        got = {a.ref.dataId["spectrograph"]: butler.get(a.ref)
               for a in butler.registry.queryDatasetAssociations("slitMap_calib", collections=["PFS/calib"])}
    assert sorted(got) == [1, 2] and all(np.array_equal(v, np.full(3, float(k))) for k, v in got.items())


def test_the_cli_names_the_run_to_take(demo_repo: Path, tmp_path: Path, monkeypatch, capsys):
    import pfstui.cli.main as cli_main

    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    _put_candidates(demo_repo, OLD, CHAIN)
    _put_candidates(demo_repo, NEW, CHAIN)
    assert cli_main.main(["certify-detectormaps", str(demo_repo), CHAIN, "PFS/calib", "--yes"]) == 2
    assert "name the RUN to certify with --run" in capsys.readouterr().err
    assert cli_main.main(["certify-detectormaps", str(demo_repo), CHAIN, "PFS/calib", "--run", NEW, "--yes"]) == 0
    assert f"(copies in {CHAIN}/certify)" in capsys.readouterr().out and len(detectormap_calibs(demo_repo)) == 4
