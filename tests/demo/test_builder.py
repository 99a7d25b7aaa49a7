"""The demo repository builder: a real repository, PFS-like content, and safe handling of odd targets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pfstui.demo import data
from pfstui.demo.builder import MARKER, DemoRepoError, ensure_demo_repo


def test_demo_repo_content(demo_repo: Path):
    from lsst.daf.butler import Butler, CollectionType

    with Butler.from_config(str(demo_repo)) as butler:
        info = {i.name: i for i in butler.collections.query_info("*")}
        assert info["PFS/raw/sps"].type == CollectionType.RUN
        assert info["PFS/raw/all"].type == CollectionType.CHAINED
        assert info["PFS/raw/all"].children == ("PFS/raw/sps",)
        assert info["PFS/calib"].type == CollectionType.CALIBRATION
        assert "exposure" not in butler.dimensions.getStaticDimensions().names
        assert set(butler.dimensions["detector"].implied.names) == {"arm", "spectrograph"}
        raws = butler.query_datasets("raw", collections="PFS/raw/all", limit=None)
        assert len(raws) == len(data.VISITS) * len(data.ARMS) * len(data.SPECTROGRAPHS)
        assert {r.dataId["arm"] for r in raws} == set(data.ARMS)
        visits = {
            rec.id: rec
            for rec in butler.query_dimension_records("visit", where="instrument = 'PFS'", limit=None)
        }
        assert visits[41].lamps != "Quartz" and visits[31].lamps == "Quartz"
        assert visits[33].dither == 2000  # quantized as obs_pfs does: int(0.2 * 1e4 + 0.5)
        assert visits[11].timespan is not None and visits[11].target_name == "BIAS"
        flats = butler.query_data_ids(
            ["visit"], where="instrument='PFS' AND visit.target_name = 'FLAT' AND dither = 0.0", limit=None
        )
        assert sorted(d["visit"] for d in flats) == [31, 32]
        cfg = butler.get("pfsConfig", instrument="PFS", visit=53, collections="PFS/raw/pfsConfig")
        assert set(cfg["fiberStatus"]) == {"BLOCKED"}


def test_build_is_deterministic(demo_repo_template: Path, tmp_path: Path):
    from lsst.daf.butler import Butler

    other = tmp_path / "again"
    ensure_demo_repo(other)
    with Butler.from_config(str(demo_repo_template)) as a, Butler.from_config(str(other)) as b:
        ia = a.get("raw", instrument="PFS", visit=41, arm="r", spectrograph=2, collections="PFS/raw/sps")
        ib = b.get("raw", instrument="PFS", visit=41, arm="r", spectrograph=2, collections="PFS/raw/sps")
    assert (ia == ib).all()


def test_existing_demo_is_reused(demo_repo: Path):
    report = ensure_demo_repo(demo_repo)
    assert report.reused


def test_foreign_folder_is_refused(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DemoRepoError, match="not a pfstui demo repository"):
        ensure_demo_repo(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert not (tmp_path / MARKER).exists()


def test_foreign_butler_repo_is_refused(demo_repo: Path):
    (demo_repo / MARKER).unlink()
    with pytest.raises(DemoRepoError, match="pfstui did not build"):
        ensure_demo_repo(demo_repo, fresh=True)
    assert (demo_repo / "butler.yaml").exists()


def test_failed_build_leaves_nothing(tmp_path: Path, monkeypatch):
    from pfstui.demo import builder

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(builder.data, "make_raw", boom)
    target = tmp_path / "repo"
    with pytest.raises(RuntimeError, match="disk on fire"):
        ensure_demo_repo(target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_cli_build_only_and_errors(tmp_path: Path):
    target = tmp_path / "cli-repo"
    out = subprocess.run([sys.executable, "-m", "pfstui", "demo", "--build-only", "--repo", str(target)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Built demo repository" in out.stdout and "84 raw images" in out.stdout
    assert (target / MARKER).exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x").write_text("x")
    out = subprocess.run([sys.executable, "-m", "pfstui", "demo", "--build-only", "--repo", str(foreign)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "not a pfstui demo repository" in out.stderr and "Traceback" not in out.stderr
