"""The demo repository builder: a real repository, PFS-like content, and safe handling of odd targets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pfstui.demo import data
from pfstui.demo.builder import MARKER, DemoRepoError, ensure_demo_repo
from tests.pg import REGISTRIES, execute


@pytest.mark.parametrize("demo_repo", REGISTRIES, indirect=True)
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


# --- the registry on a PostgreSQL server -----------------------------------------------------------------------
def schemas(url: str) -> dict[str, str | None]:
    """The demo's schemas in the database of ``url`` (finished and half-built), with their comments."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sqlalchemy.text("SELECT nspname, obj_description(oid, 'pg_namespace') FROM "
                                                "pg_namespace WHERE nspname LIKE 'pfstui_demo%'"))
            return dict(rows.all())
    finally:
        engine.dispose()


def demo_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pfstui", "demo", "--build-only", *argv], check=False,
                          capture_output=True, text=True, timeout=180)


def test_cli_builds_the_demo_on_postgresql_and_never_touches_another_registry(pg_server, tmp_path: Path):
    url = pg_server.url("cli_demo")
    pg_server.execute('CREATE DATABASE "cli_demo"')  # no btree_gist yet: the builder adds it
    target, other = tmp_path / "pg-repo", tmp_path / "other"
    out = demo_cli("--repo", str(target), "--registry", url)
    assert out.returncode == 0, out.stderr
    assert f"registry: PostgreSQL server postgres@{pg_server.base}/cli_demo, schema pfstui_demo" in out.stdout
    assert schemas(url) == {"pfstui_demo": f"pfstui demo registry of {target}"}
    assert f"db: {url}" in (target / "butler.yaml").read_text() and "password" not in (target / "butler.yaml").read_text()
    from pfstui.butler.gateway import ButlerGateway

    with ButlerGateway(str(target), read_only=True) as gw:
        assert "PFS/raw/sps" in gw.collection_names() and len(gw.visits("", instrument="PFS")) == len(data.VISITS)
    again = demo_cli("--repo", str(target), "--registry", url)
    assert again.returncode == 0 and "already built" in again.stdout
    sqlite = demo_cli("--repo", str(target))
    assert sqlite.returncode == 2 and sqlite.stderr.count("\n") == 1
    assert "registry in PostgreSQL server" in sqlite.stderr and "not in SQLite" in sqlite.stderr
    theirs = demo_cli("--repo", str(other), "--registry", url)
    assert theirs.returncode == 2 and not other.exists()
    assert f"already holds the demo repository at {target}; it will not be touched" in theirs.stderr
    fresh = demo_cli("--repo", str(target), "--registry", url, "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    assert schemas(url) == {"pfstui_demo": f"pfstui demo registry of {target}"}  # replaced, nothing half-built


def test_a_failed_build_on_postgresql_leaves_no_schema(pg_server, tmp_path: Path, monkeypatch):
    from pfstui.demo import builder

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    url = pg_server.create_database("failed_demo")
    monkeypatch.setattr(builder.data, "make_raw", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        ensure_demo_repo(tmp_path / "repo", registry=url)
    assert list(tmp_path.iterdir()) == [] and schemas(url) == {}


def test_foreign_schema_is_refused(pg_server, tmp_path: Path):
    url = pg_server.create_database("foreign_demo")
    execute(url, "CREATE SCHEMA pfstui_demo", "CREATE TABLE pfstui_demo.mine (x int)")
    with pytest.raises(DemoRepoError, match="already holds something pfstui did not build; it will not be touched"):
        ensure_demo_repo(tmp_path / "repo", registry=url)
    assert schemas(url) == {"pfstui_demo": None} and not (tmp_path / "repo").exists()


@pytest.mark.parametrize("url, needle", [
    ("postgresql://op:secret@db.example/pfs", ("holds a password, which would be written into butler.yaml; put it "
                                               "in ~/.lsst/db-auth.yaml")),
    ("sqlite:////tmp/x.sqlite3", "is not a PostgreSQL URL; leave --registry out for SQLite"),
    ("postgresql://op@db.example", "names no database; add /DATABASE"),
    ("not a url", "is not a database URL; write it like postgresql://USER@HOST:5432/DATABASE"),
    ("postgresql://op@/pfs?host=/nonexistent/socket", "cannot reach the PostgreSQL server op@/nonexistent/socket/pfs"),
])
def test_bad_registry_urls_are_one_line(url: str, needle: str, tmp_path: Path):
    with pytest.raises(DemoRepoError) as refused:
        ensure_demo_repo(tmp_path / "repo", registry=url)
    assert needle in str(refused.value) and "\n" not in str(refused.value) and "secret" not in str(refused.value)
    assert not (tmp_path / "repo").exists()
