"""define-profiles and certify-detectormaps through preview → apply, and as ``pfstui`` subcommands: effects,
refusals, dry runs and the journal.  Every assertion reads the registry back through the Butler."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

from pfstui.butler.apply import apply
from pfstui.butler.errors import ConflictError, InputError, NotFoundError
from pfstui.butler.gateway import ButlerGateway
from pfstui.butler.pfs import preview_certify_detectormaps, preview_define_profiles
from pfstui.demo.storage import DetectorMap
from pfstui.infra.journal import Journal


@pytest.fixture
def repo(demo_repo: Path) -> Path:
    """The repository of the ``gw`` fixture (tests/butler/conftest.py): a fresh demo repository."""
    return demo_repo


def define_profiles(gw: ButlerGateway, journal: Journal, *args, **kwargs):
    return apply(gw, preview_define_profiles(gw, *args, **kwargs), journal=journal)


def certify_detector_maps(gw: ButlerGateway, journal: Journal, *args, **kwargs):
    return apply(gw, preview_certify_detectormaps(gw, *args, **kwargs), journal=journal)


def profiles_runs(repo: Path) -> list:
    from lsst.daf.butler import Butler

    with Butler.from_config(str(repo)) as butler:
        return list(butler.registry.queryDimensionRecords("profiles_run"))


def detectormap_calibs(repo: Path) -> list:
    from lsst.daf.butler import Butler

    with Butler.from_config(str(repo)) as butler:
        return list(butler.registry.queryDatasetAssociations("detectorMap_calib", collections=["PFS/calib"]))


def test_define_profiles(demo_repo: Path, gw: ButlerGateway, journal: Journal):
    from lsst.daf.butler import Butler

    result = define_profiles(gw, journal, "PFS", "demo_br", ["51..52", "55..56"], ["53..54", "57..58"])
    assert result.effect["groups"][1] == {"bright": [55, 56], "dark": [57, 58]}
    with Butler.from_config(str(demo_repo)) as butler:
        visits = butler.get("profiles_visits", instrument="PFS", profiles_run="demo_br", profiles_group=1,
                            collections="PFS/fiberProfilesInputs")
        assert visits == {"bright": [55, 56], "dark": [57, 58]}
        joined = butler.query_data_ids(["visit", "profiles_group"],
                                       where="instrument = 'PFS' AND profiles_run = 'demo_br'", limit=None)
        assert sorted((d["profiles_group"], d["visit"]) for d in joined) == [
            (0, 51), (0, 52), (0, 53), (0, 54), (1, 55), (1, 56), (1, 57), (1, 58)]
    again = preview_define_profiles(gw, "PFS", "demo_br", ["51..52"], ["53..54"])
    assert again.blocked and "already exists; use --update" in again.blocker_text()
    with pytest.raises(ConflictError, match="already exists; use --update"):
        apply(gw, again, journal=journal)
    assert len(journal.entries()[0]) == 1


def test_define_profiles_update_replaces_the_group_datasets(demo_repo: Path, gw: ButlerGateway, journal: Journal):
    from lsst.daf.butler import Butler

    define_profiles(gw, journal, "PFS", "demo_br", ["51..52"], ["53..54"])
    dropping = preview_define_profiles(gw, "PFS", "demo_br", ["51"], ["53..54"], update=True)
    assert dropping.blocked and "cannot remove visits" in dropping.blocker_text()
    preview = preview_define_profiles(gw, "PFS", "demo_br", ["51..52", "55..56"], ["53..54", "57..58"], update=True)
    text = "\n".join(preview.lines())
    assert "~ redefine  profiles_run demo_br" in text
    assert "- delete    1 profiles_visits in PFS/fiberProfilesInputs" in text
    result = apply(gw, preview, journal=journal)
    assert len(result.effect["replaced"]) == 1
    with Butler.from_config(str(demo_repo)) as butler:
        refs = list(butler.query_datasets("profiles_visits", collections="PFS/fiberProfilesInputs"))
        assert len(refs) == 2 and str(refs[0].id) not in result.effect["replaced"]
        assert butler.get("profiles_visits", instrument="PFS", profiles_run="demo_br", profiles_group=1,
                          collections="PFS/fiberProfilesInputs") == {"bright": [55, 56], "dark": [57, 58]}


@pytest.mark.parametrize(
    "bright, dark, error, fragment",
    [
        (["51..52"], ["53", "54"], InputError, r"Length of bright \(1\) and dark \(2\)"),
        (["51..52"], ["52..53"], InputError, "both bright and dark"),
        (["51..999"], [], NotFoundError, "visits 59..999 are not in"),
        ([], [], InputError, "no groups given"),
        (["5..x"], [], Exception, "bad visit list element"),
    ],
)
def test_define_profiles_refusals_write_nothing(demo_repo: Path, gw: ButlerGateway, bright, dark, error, fragment):
    with pytest.raises(error, match=fragment):
        preview_define_profiles(gw, "PFS", "bad", bright, dark)
    assert profiles_runs(demo_repo) == []


def _put_candidates(repo: Path, run: str, chain: str, cameras=(("b", 1), ("b", 2), ("r", 1), ("r", 2))) -> None:
    from lsst.daf.butler import Butler, CollectionType, DatasetType

    with Butler.from_config(str(repo), writeable=True) as butler:
        dt = DatasetType("detectorMap_candidate", ("instrument", "arm", "spectrograph"), "DemoDetectorMap",
                         universe=butler.dimensions)
        butler.registry.registerDatasetType(dt)
        butler.collections.register(run, CollectionType.RUN)
        butler.collections.register(chain, CollectionType.CHAINED)
        butler.collections.prepend_chain(chain, run)
        for arm, sm in cameras:
            dm = DetectorMap(fiberId=np.arange(3), xCenter=np.arange(3.0) + sm, wavelength=np.array([400.0, 5.0]),
                             slitOffsets=np.zeros((3, 2)))
            butler.put(dm, dt, instrument="PFS", arm=arm, spectrograph=sm, run=run)


def test_certify_detector_maps_and_conflict(demo_repo: Path, gw: ButlerGateway, journal: Journal):
    from lsst.daf.butler import Butler

    _put_candidates(demo_repo, "u/me/detectorMap/20250101T000000Z", "u/me/detectorMap")
    result = certify_detector_maps(gw, journal, "u/me/detectorMap", "PFS/calib",
                                   begin="2000-01-01T00:00:00", end="2050-12-31T23:59:59")
    assert len(result.effect["datasets"]) == 4
    with Butler.from_config(str(demo_repo)) as butler:
        assocs = list(butler.registry.queryDatasetAssociations("detectorMap_calib", collections=["PFS/calib"]))
        assert len(assocs) == 4 and {a.ref.run for a in assocs} == {"u/me/detectorMap/certify"}
        dm = butler.get(assocs[0].ref)
        assert isinstance(dm, DetectorMap)
    # Certifying again over an overlapping range is refused before anything is written.
    again = preview_certify_detectormaps(gw, "u/me/detectorMap", "PFS/calib", begin="2020-01-01T00:00:00")
    assert again.blocked and "overlapping range" in again.blocker_text()
    with pytest.raises(ConflictError, match="overlapping range"):
        apply(gw, again, journal=journal)
    assert len(detectormap_calibs(demo_repo)) == 4


def test_certify_detector_maps_copies_to_a_new_run_when_the_certify_run_has_the_cameras(
        demo_repo: Path, gw: ButlerGateway, journal: Journal):
    _put_candidates(demo_repo, "u/me/dm/run1", "u/me/dm")
    certify_detector_maps(gw, journal, "u/me/dm", "PFS/calib", end="2025-01-01T00:00:00")
    preview = preview_certify_detectormaps(gw, "u/me/dm", "PFS/calib", begin="2025-01-01T00:00:00",
                                           stamp="20250101T000000Z")
    assert preview.lines()[1] == ("  + copy      4 detectorMap_candidate to detectorMap_calib in RUN collection "
                                  "u/me/dm/certify/20250101T000000Z (created)")
    result = apply(gw, preview, journal=journal)
    assert result.effect["run"] == "u/me/dm/certify/20250101T000000Z" and len(detectormap_calibs(demo_repo)) == 8


def test_certify_detector_maps_previews_the_same_change_twice_and_stamps_a_second_copy_with_its_run(
        demo_repo: Path, gw: ButlerGateway, journal: Journal):
    """An approval gate previews the stage and its run previews it again: the digests must be equal (the time of
    the preview used to be in the arguments, so an approved certify-detectormaps stage always failed as stale).
    A second copy of the same cameras goes to ``certify/<the candidates' RUN stamp>``, then ``...-2``."""
    _put_candidates(demo_repo, "u/me/dm/20250301T120000Z", "u/me/dm")
    first = preview_certify_detectormaps(gw, "u/me/dm", "PFS/calib", end="2025-01-01T00:00:00")
    assert first.digest() == preview_certify_detectormaps(gw, "u/me/dm", "PFS/calib", end="2025-01-01T00:00:00").digest()
    apply(gw, first, journal=journal)
    for begin, end, run in (("2025-01-01T00:00:00", "2026-01-01T00:00:00", "u/me/dm/certify/20250301T120000Z"),
                            ("2026-01-01T00:00:00", None, "u/me/dm/certify/20250301T120000Z-2")):
        again = preview_certify_detectormaps(gw, "u/me/dm", "PFS/calib", begin=begin, end=end)
        assert again.digest() == preview_certify_detectormaps(gw, "u/me/dm", "PFS/calib", begin=begin,
                                                              end=end).digest()
        assert apply(gw, again, journal=journal).effect["run"] == run


def test_certify_detector_maps_refusals(demo_repo: Path, gw: ButlerGateway):
    with pytest.raises(NotFoundError, match="does not exist"):
        preview_certify_detectormaps(gw, "u/nobody/detectorMap", "PFS/calib")
    _put_candidates(demo_repo, "u/me/dm/run1", "u/me/dm")
    with pytest.raises(InputError, match="is a RUN collection, not CALIBRATION"):
        preview_certify_detectormaps(gw, "u/me/dm", "PFS/raw/sps")
    with pytest.raises(Exception, match="not before"):
        preview_certify_detectormaps(gw, "u/me/dm", "PFS/calib", begin="2030-01-01", end="2020-01-01")


# --- as pfstui subcommands -------------------------------------------------------------------------------------
@pytest.fixture
def cli(demo_repo: Path, tmp_path: Path, monkeypatch):
    """``pfstui ARGV...`` in-process, with its own journal and a stdin that is not a terminal."""
    import pfstui.cli.main as cli_main

    monkeypatch.setenv("PFSTUI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PFSTUI_DEMO_DIR", str(tmp_path / "no-demo"))  # main() only sets it when unset
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    def run(capsys, *argv) -> tuple[int, str, str]:
        code = cli_main.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def journal_entries(tmp_path: Path) -> list:
    path = tmp_path / "state" / "journal.jsonl"
    return Journal(path).entries()[0] if path.exists() else []


def test_define_profiles_dry_run_prints_the_preview_and_writes_nothing(cli, demo_repo: Path, tmp_path: Path,
                                                                       capsys):
    code, out, _ = cli(capsys, "define-profiles", demo_repo, "PFS", "demo_br", "--bright", "51..52", "--dark",
                       "53..54", "--bright", "55..56", "--dark", "57..58", "--dry-run")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "define profiles run demo_br of PFS: 2 group(s), 8 visit(s)"
    assert "  + define    profiles_run demo_br of instrument PFS, datasets in PFS/fiberProfilesInputs" in lines
    assert "  + group 1   bright 55..56, dark 57..58: 4 visit record(s) and its profiles_visits dataset" in lines
    assert lines[-1] == "Dry run: nothing written."
    assert profiles_runs(demo_repo) == [] and journal_entries(tmp_path) == []


def test_certify_detectormaps_dry_run_prints_the_preview_and_writes_nothing(cli, demo_repo: Path, tmp_path: Path,
                                                                            capsys):
    _put_candidates(demo_repo, "u/me/dm/run1", "u/me/dm")
    code, out, _ = cli(capsys, "certify-detectormaps", demo_repo, "u/me/dm", "PFS/calib", "--begin-date",
                       "2025-01-01", "--dry-run")
    lines = out.splitlines()
    assert code == 0 and lines[0] == ("certify 4 detectorMap_calib (copies of the detectorMap_candidate in u/me/dm) "
                                      "into PFS/calib for [2025-01-01T00:00:00, ∞)")
    assert lines[1] == ("  + copy      4 detectorMap_candidate to detectorMap_calib in RUN collection u/me/dm/certify "
                        "(created)")
    assert sum(line.startswith("  + certify   detectorMap_calib arm=") for line in lines) == 4
    assert lines[-1] == "Dry run: nothing written."
    assert detectormap_calibs(demo_repo) == [] and journal_entries(tmp_path) == []


def test_applying_journals_exactly_one_entry_naming_the_action(cli, demo_repo: Path, tmp_path: Path, capsys):
    _put_candidates(demo_repo, "u/me/dm/run1", "u/me/dm")
    code, _, err = cli(capsys, "certify-detectormaps", demo_repo, "u/me/dm", "PFS/calib")
    assert code == 2 and "pass --yes to apply, or --dry-run" in err and journal_entries(tmp_path) == []
    code, out, _ = cli(capsys, "certify-detectormaps", demo_repo, "u/me/dm", "PFS/calib", "--yes")
    assert code == 0 and "Certified 4 detectorMap_calib in PFS/calib for [-∞, ∞) (copies in u/me/dm/certify)." in out
    entries = journal_entries(tmp_path)
    assert [e.get("action") for e in entries] == ["certify-detectormaps"] and len(detectormap_calibs(demo_repo)) == 4
    assert entries[0].get("undoable") is False and entries[0].get("inverse") is None
    assert f"Journal entry {entries[0].id}\n" in out and "undo with" not in out

    code, out, _ = cli(capsys, "define-profiles", demo_repo, "PFS", "demo_br", "--bright", "51..52", "--yes")
    entries = journal_entries(tmp_path)
    assert code == 0 and [e.get("action") for e in entries] == ["certify-detectormaps", "define-profiles"]
    assert entries[1].get("effect")["groups"] == [{"bright": [51, 52], "dark": []}]
    assert len(profiles_runs(demo_repo)) == 1

    code, out, err = cli(capsys, "define-profiles", demo_repo, "PFS", "demo_br", "--bright", "51..52", "--yes")
    assert code == 2 and "define-profiles refused, nothing written: profiles run 'demo_br' already exists" in err
    code, _, err = cli(capsys, "undo", "last", "--yes")
    assert code == 2 and "cannot be undone" in err and len(journal_entries(tmp_path)) == 2
