"""ButlerGateway on real demo repositories: paging, validity ranges, visits, typed errors, threads, laziness.

The seeded repository (``seed_bias_repo``) is shared with test_actions.py and test_cli_butler.py: two bias
"pipetask -o" runs chained under ``u/me/bias`` (newest first), each with a ``bias`` per camera (b1 b2 r1 r2) and
``biasProc`` per visit 11-13 and camera, as the demo bias pipeline leaves them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import pfstui.butler.gateway as gateway_module
from pfstui.butler.errors import (
    GatewayError,
    NotFoundError,
    QueryError,
    ReadOnlyError,
    RepoError,
)
from pfstui.butler.gateway import ButlerGateway
from pfstui.butler.values import Association, nsec_to_iso
from tests.pg import copy_repo, database_of, registry_url

OLD_RUN = "u/me/bias/20250101T000000Z"
NEW_RUN = "u/me/bias/20250201T000000Z"
CHAIN = "u/me/bias"
CAMERAS = [("b", 1), ("b", 2), ("r", 1), ("r", 2)]
DAY = 86400 * 10**9
T2025 = 1735689600 * 10**9  # 2025-01-01T00:00:00 TAI in Butler nanoseconds


def seed_bias_repo(path: Path) -> None:
    """Add bias/biasProc datasets in two RUNs chained under u/me/bias (newest first) to a demo repository."""
    from lsst.daf.butler import Butler, CollectionType, DatasetType

    with Butler.from_config(str(path), writeable=True) as butler:
        bias = DatasetType("bias", ("instrument", "arm", "spectrograph"), "NumpyArray", universe=butler.dimensions,
                           isCalibration=True)
        proc = DatasetType("biasProc", ("instrument", "visit", "arm", "spectrograph"), "NumpyArray",
                           universe=butler.dimensions)
        butler.registry.registerDatasetType(bias)
        butler.registry.registerDatasetType(proc)
        for k, run in enumerate((OLD_RUN, NEW_RUN)):
            butler.collections.register(run)
            for arm, sm in CAMERAS:
                butler.put(np.full(4, k, dtype=float), bias, instrument="PFS", arm=arm, spectrograph=sm, run=run)
                for visit in (11, 12, 13):
                    butler.put(np.zeros(64), proc, instrument="PFS", visit=visit, arm=arm, spectrograph=sm, run=run)
        butler.collections.register(CHAIN, CollectionType.CHAINED, doc="bias reruns")
        butler.collections.redefine_chain(CHAIN, [NEW_RUN, OLD_RUN])


@pytest.fixture(scope="module")
def ranged_repo(seeded_template: Path, tmp_path_factory) -> Path:
    """The seeded repo plus 28 validity ranges: each camera certified over 7 consecutive days (alternating runs)."""
    from lsst.daf.butler import Butler, CollectionType, Timespan

    root = tmp_path_factory.mktemp("ranged") / "repo"
    shutil.copytree(seeded_template, root)
    with Butler.from_config(str(root), writeable=True) as butler:
        refs = {run: list(butler.query_datasets("bias", collections=run)) for run in (OLD_RUN, NEW_RUN)}
        for day in range(7):
            run = (OLD_RUN, NEW_RUN)[day % 2]
            butler.registry.certify("PFS/calib", refs[run], Timespan(None, None, _nsec=(T2025 + day * DAY,
                                                                                           T2025 + (day + 1) * DAY)))
        butler.collections.register("PFS/calib/all", CollectionType.CHAINED)
        butler.collections.redefine_chain("PFS/calib/all", ["PFS/calib"])
    return root


@pytest.fixture(scope="module")
def gw(ranged_repo: Path):
    g = ButlerGateway(str(ranged_repo), read_only=True)
    yield g
    g.close()


def test_collections_are_sorted_paged_and_complete(gw: ButlerGateway, monkeypatch):
    names = gw.collection_names()
    assert names == sorted(names)
    assert {"PFS/calib", "PFS/raw/all", CHAIN, OLD_RUN, NEW_RUN} <= set(names)
    first = gw.collections(limit=3)
    rest = gw.collections(offset=3)
    assert [r.name for r in first + rest] == names
    assert len(first) == 3
    rows = {r.name: r for r in gw.collections("u/*")}
    assert set(rows) == {CHAIN, OLD_RUN, NEW_RUN}
    assert rows[CHAIN].type == "CHAINED" and rows[CHAIN].doc == "bias reruns"
    assert rows[CHAIN].children == (NEW_RUN, OLD_RUN)  # search order, not sorted
    assert rows[OLD_RUN].parents == (CHAIN,) and rows[CHAIN].parents == ()
    truth = {i.name: tuple(sorted(i.parents)) for i in gw.butler.collections.query_info(names, include_parents=True)}
    assert {r.name: r.parents for r in first + rest} == truth
    monkeypatch.setattr(gateway_module, "_PARENTS_PER_QUERY", 2)  # big pages invert the chains instead
    assert {r.name: r.parents for r in gw.collections()} == truth
    assert gw.collections("nothing/here") == [] and gw.collections("nothing*") == []
    assert [r.name for r in gw.collections(collection_type="CALIBRATION")] == ["PFS/calib"]


def test_collection_detail_counts_dataset_types(gw: ButlerGateway):
    detail = gw.collection_detail(CHAIN)
    assert detail.row.children == (NEW_RUN, OLD_RUN)
    assert dict(detail.dataset_types) == {"bias": 8, "biasProc": 24}
    assert dict(gw.collection_detail(OLD_RUN).dataset_types) == {"bias": 4, "biasProc": 12}


def test_associations_come_in_ordered_pages_equal_to_the_butler_listing(gw: ButlerGateway):
    pages = list(gw.associations("PFS/calib", "bias", page_size=5))
    assert [len(p) for p in pages] == [5] * 5 + [3]
    got = [a for p in pages for a in p]
    keys = [(a.data_id["arm"], a.data_id["spectrograph"], a.nsec[0]) for a in got]
    assert keys == sorted(keys) and len(set(keys)) == 28
    butler = gw.butler
    listing = butler.registry.queryDatasetAssociations("bias", ["PFS/calib"])
    expected = {(str(x.ref.id), x.timespan.nsec) for x in listing}
    assert {(a.dataset_id, a.nsec) for a in got} == expected
    a = got[0]
    assert a.collection == "PFS/calib" and a.run == OLD_RUN and a.dataset_type == "bias"
    assert (a.begin, a.end) == ("2025-01-01T00:00:00", "2025-01-02T00:00:00")
    # a chain of CALIBRATION collections is flattened; a page size larger than everything is one page
    assert [len(p) for p in gw.associations("PFS/calib/all", page_size=1000)] == [28]
    only = gw.all_associations("PFS/calib", "bias", data_id={"instrument": "PFS", "arm": "r", "spectrograph": 2})
    assert len(only) == 7 and {a.camera() for a in only} == {"arm=r spectrograph=2"}


def test_associations_refuse_collections_without_ranges(gw: ButlerGateway):
    with pytest.raises(GatewayError, match="RUN collection and holds no validity ranges"):
        list(gw.associations(OLD_RUN))
    with pytest.raises(GatewayError, match="CHAINED collection without CALIBRATION"):
        list(gw.associations(CHAIN))
    with pytest.raises(NotFoundError, match="No collection with name 'PFS/nope'"):
        list(gw.associations("PFS/nope"))
    with pytest.raises(NotFoundError, match="unknown dataset type 'biass'.*bias, biasProc"):
        list(gw.associations("PFS/calib", "biass"))


def test_datasets_and_visits(gw: ButlerGateway):
    rows = gw.datasets(CHAIN, "bias")
    assert len(rows) == 8 and {r["run"] for r in rows} == {OLD_RUN, NEW_RUN}
    assert rows[0]["data_id"]["instrument"] == "PFS"
    assert len(gw.datasets(CHAIN, "biasProc", limit=5)) == 5
    visits = gw.visits("visit.target_name = tn", bind={"tn": "BIAS"}, instrument="PFS")
    assert [v["visit"] for v in visits] == [11, 12, 13]
    assert visits[0]["observation_type"] == "bias" and visits[0]["begin"] < visits[0]["end"]
    flats = gw.visits("instrument='PFS' AND visit.target_name = 'FLAT' AND visit.dither > 0")
    assert [v["visit"] for v in flats] == [33, 34, 35, 36]


@pytest.mark.parametrize(
    "where, needle",
    [
        ("instrument='PFS' AND visit.target_nme = 'BIAS'", "Unrecognized field 'target_nme' for visit"),
        ("instrument='PFS' AND (visit = ", "Failed to parse expression"),
        ("arm = 'b'", "without constraining it directly"),
    ],
)
def test_bad_queries_are_typed_errors_with_the_butlers_explanation(gw: ButlerGateway, where: str, needle: str):
    with pytest.raises(QueryError) as info:
        gw.visits(where)
    text = str(info.value)
    assert needle in text and "\n" not in text and "instrument='PFS'" in text


def test_calls_from_many_threads_agree(gw: ButlerGateway):
    results: list = []
    errors: list = []

    def work() -> None:
        try:
            results.append((tuple(r.name for r in gw.collections(limit=5)), len(gw.all_associations("PFS/calib"))))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 6 and len(set(results)) == 1


def test_read_only_gateway_refuses_writes(gw: ButlerGateway):
    with pytest.raises(ReadOnlyError, match="open read-only; reopen it without --read-only"):
        with gw.writer("certify"):
            pass


def test_bad_repository_is_a_repo_error(tmp_path: Path):
    g = ButlerGateway(str(tmp_path / "missing"))
    with pytest.raises(RepoError, match="cannot open Butler repository .*check the path"):
        g.collections()


def test_postgresql_failures_name_the_server_and_the_fix(pg_demo_template: Path, tmp_path: Path):
    """A registry on a server that is not there, or without its driver: one line naming the server, not the path."""
    repo = copy_repo(pg_demo_template, tmp_path / "repo")
    config = repo / "butler.yaml"
    url = registry_url(repo)
    gone = url.replace(url.split("host=")[1], "/nonexistent/socket")
    config.write_text(config.read_text().replace(url, gone))
    cli = subprocess.run([sys.executable, "-m", "pfstui", "calibs", str(repo), "PFS/calib"], check=False,
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2 and cli.stderr.count("\n") == 1, cli.stderr
    server = f"postgres@/nonexistent/socket/{database_of(url)}"
    assert f"its registry on the PostgreSQL server {server}: connection to server" in cli.stderr
    assert "~/.lsst/db-auth.yaml" in cli.stderr and "check the path" not in cli.stderr
    config.write_text(config.read_text().replace(gone, url))
    # Without psycopg2 (as with pip's SQLAlchemy 2.1, which wants psycopg 3): the fix is the extra.
    code = ("import sys; sys.modules['psycopg2'] = None\n"
            "from pfstui.butler.gateway import ButlerGateway\n"
            "try:\n    ButlerGateway(sys.argv[1]).butler\nexcept Exception as exc:\n    print(type(exc).__name__, exc)")
    out = subprocess.run([sys.executable, "-c", code, str(repo)], check=False, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout == (f"RepoError cannot open Butler repository {repo}: its registry on the PostgreSQL server "
                          f"postgres@{url.split('host=')[1]}/{database_of(url)}: the psycopg2 driver is not installed; "
                          "install pfstui's PostgreSQL extra, which brings psycopg2 and pins SQLAlchemy below 2.1 as "
                          "daf_butler 30.0.11 needs: pip install 'pfstui[postgres]'\n"), out.stderr


def test_the_butler_is_imported_lazily():
    package = Path(gateway_module.__file__).parent
    modules = ", ".join(f"pfstui.butler.{p.stem}" for p in sorted(package.glob("[a-z]*.py")))
    code = (f"import sys; from pfstui.butler.gateway import ButlerGateway; import {modules}, pfstui.cli.butler, "
            "pfstui.cli.pfs; ButlerGateway('/nonexistent'); print('lsst.daf.butler' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_association_identity_and_iso_rendering():
    a = Association.from_nsec("bias", {"instrument": "PFS", "arm": "b", "spectrograph": 1}, "r", "id",
                              (0, 4102444800 * 10**9))
    assert (a.begin, a.end, a.range_text()) == (None, None, "[-∞, ∞)")
    assert Association.from_json(a.to_json()) == a
    assert nsec_to_iso(T2025 + 1_500_000_000) == "2025-01-01T00:00:01.5"
    assert a.timespan().begin is None and a.timespan().end is None


def test_no_module_imports_a_private_gateway_name():
    """The gateway's helpers are its own: other modules use its methods or the public values/errors modules."""
    import ast

    root = Path(gateway_module.__file__).parents[2]
    offenders = []
    for path in [*(root / "pfstui").rglob("*.py"), *(root / "bench").rglob("*.py"), *(root / "tests").rglob("*.py")]:
        if path == Path(gateway_module.__file__):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "pfstui.butler.gateway":
                offenders += [f"{path.relative_to(root)}: {a.name}" for a in node.names if a.name.startswith("_")]
            elif isinstance(node, ast.Import):
                offenders += [f"{path.relative_to(root)}: {a.name}" for a in node.names
                              if a.name.startswith("pfstui.butler.gateway._")]
            elif (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                  and isinstance(node.value, ast.Name) and node.value.id in ("gateway", "gateway_module")):
                offenders.append(f"{path.relative_to(root)}: {node.value.id}.{node.attr}")
    assert offenders == []
