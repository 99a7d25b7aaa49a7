"""Certify / decertify / clean / remove / undo through preview → apply, on real demo repositories.

Every assertion reads the registry back through the Butler.  Shared state is built once per module: the seeded
repository of test_gateway.py, and one real ``pipetask run`` of the demo bias pipeline.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pfstui.butler.apply import apply
from pfstui.butler.certify import preview_certify, preview_decertify
from pfstui.butler.errors import (
    ConflictError,
    GatewayError,
    InputError,
    NotFoundError,
    NothingToDoError,
    ReadOnlyError,
    StalePreviewError,
    UndoError,
)
from pfstui.butler.gateway import ButlerGateway
from pfstui.butler.removal import (
    preview_clean,
    preview_remove_collections,
    preview_remove_runs,
)
from pfstui.butler.undo import preview_undo
from pfstui.infra.journal import Journal
from pfstui.values.tai import make_timespan
from tests.butler.test_gateway import CHAIN, NEW_RUN, OLD_RUN
from tests.pg import REGISTRIES, copy_repo, on_registry

BIN = Path(sys.executable).parent
INSTRUMENT = "pfstui.demo.instrument.DemoPrimeFocusSpectrograph"
B1 = {"instrument": "PFS", "arm": "b", "spectrograph": 1}


@pytest.fixture(scope="module")
def pipeline_template(request, tmp_path_factory) -> Path:
    """A demo repository after a real ``pipetask run`` of the demo bias pipeline into u/me/bias."""
    import pfstui.demo

    root = copy_repo(on_registry(request, "demo_repo_template", "pg_demo_template"),
                     tmp_path_factory.mktemp("pipeline") / "repo")
    pipeline = Path(pfstui.demo.__file__).parent / "pipelines" / "bias.yaml"
    argv = [str(BIN / "pipetask"), "--long-log", "--log-level", "pfs=INFO", "run", "--register-dataset-types",
            "-j", "1", "-b", str(root), "--instrument", INSTRUMENT, "-i", "PFS/raw/sps,PFS/calib", "-o", CHAIN,
            "-p", str(pipeline), "-d", "instrument='PFS' AND visit.target_name = 'BIAS'", "--fail-fast"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root


@pytest.fixture
def repo(seeded_repo: Path) -> Path:
    return seeded_repo


#: The tests that run on both registries (the seeded repository on SQLite and on PostgreSQL).
on_both = pytest.mark.parametrize("seeded_repo", REGISTRIES, indirect=True)


def state(gw: ButlerGateway, collection: str = "PFS/calib") -> set[tuple]:
    """Every association of every dataset type in ``collection``, as comparable keys (read via the Butler)."""
    butler = gw.butler
    butler.registry.refresh()
    out = set()
    for dt in butler.registry.queryDatasetTypes():
        if dt.isCalibration():
            for a in butler.registry.queryDatasetAssociations(dt, [collection]):
                out.add((dt.name, str(a.ref.id), tuple(sorted(a.ref.dataId.required.items())), a.timespan.nsec))
    return out


def refs_of(gw: ButlerGateway, run: str, dataset_type: str = "bias") -> dict[str, str]:
    return {f"{r.dataId['arm']}{r.dataId['spectrograph']}": str(r.id)
            for r in gw.butler.query_datasets(dataset_type, collections=run)}


# --- certify -------------------------------------------------------------------------------------------------
@on_both
def test_certify_then_list_shows_the_range(gw: ButlerGateway, journal: Journal):
    preview = preview_certify(gw, CHAIN, "PFS/calib", "bias", begin="2025-01-01T00:00:00", end="2025-06-01")
    assert preview.notes and "first child " + NEW_RUN in preview.notes[0]
    assert [c.kind for c in preview.changes] == ["add"] * 4 and not preview.blocked
    assert state(gw) == set()  # a preview writes nothing
    done = apply(gw, preview, journal=journal)
    listed = gw.all_associations("PFS/calib", "bias")
    assert {a.dataset_id for a in listed} == set(refs_of(gw, NEW_RUN).values())
    assert {(a.begin, a.end) for a in listed} == {("2025-01-01T00:00:00", "2025-06-01T00:00:00")}
    assert {a.key() for a in listed} == {a.key() for a in preview.added_associations}
    entry = journal.find(done.entry_id)
    assert entry["action"] == "certify" and entry["undoable"] and entry["repository"] == gw.repo
    assert len(entry["effect"]["added"]) == 4 and entry["inverse"]["remove"] == entry["effect"]["added"]
    # certifying the same again is an idempotent no-op, not a conflict
    again = preview_certify(gw, CHAIN, "PFS/calib", "bias", begin="2025-01-01T00:00:00", end="2025-06-01")
    assert not again.blocked and again.is_noop and {c.kind for c in again.changes} == {"unchanged"}
    assert apply(gw, again, journal=journal).entry is None


@on_both
def test_overlapping_certify_of_another_dataset_is_a_conflict_and_writes_nothing(gw: ButlerGateway, journal: Journal):
    apply(gw, preview_certify(gw, NEW_RUN, "PFS/calib", "bias", begin="2025-02-01"), journal=journal)
    before = state(gw)
    preview = preview_certify(gw, OLD_RUN, "PFS/calib", "bias", begin="2025-01-01", end="2025-03-01",
                                data_ids=[["instrument=PFS", "arm=b", "spectrograph=1"]])
    assert preview.blocked and len(preview.conflicts) == 1
    c = preview.conflicts[0]
    assert c.wanted.dataset_id == refs_of(gw, OLD_RUN)["b1"] and c.existing.dataset_id == refs_of(gw, NEW_RUN)["b1"]
    assert "overlaps [2025-02-01T00:00:00, ∞)" in c.text()
    with pytest.raises(ConflictError, match="1 conflict .*decertify the overlapping range first"):
        apply(gw, preview, journal=journal)
    assert state(gw) == before
    assert len(journal.entries()[0]) == 1


@on_both
def test_apply_rechecks_only_what_the_preview_touched(gw: ButlerGateway, journal: Journal):
    """Someone else writes between preview and apply: a range elsewhere in time leaves the preview good, an
    overlapping one refuses it naming the range and who holds it, a changed input makes it stale."""
    preview = preview_certify(gw, NEW_RUN, "PFS/calib", "bias", begin="2025-01-01")
    ref = gw.butler.find_dataset("bias", B1, collections=OLD_RUN)
    gw.butler.registry.certify("PFS/calib", [ref], make_timespan(None, "2024-12-31"))  # before 2025: disjoint
    apply(gw, preview, journal=journal)
    assert len(state(gw)) == 5

    b2 = {"instrument": "PFS", "arm": "b", "spectrograph": 2}
    late = preview_certify(gw, OLD_RUN, "PFS/calib", "bias", begin="2024-01-01", end="2024-06-01",
                           data_ids=[["instrument=PFS", "arm=b", "spectrograph=2"]])
    theirs = gw.butler.find_dataset("bias", b2, collections=NEW_RUN)
    gw.butler.registry.certify("PFS/calib", [theirs], make_timespan("2024-03-01", "2024-04-01"))
    before = state(gw)
    with pytest.raises(ConflictError) as refused:
        apply(gw, late, journal=journal)
    assert str(refused.value) == (
        "certify refused, nothing written: 1 conflict (bias arm=b spectrograph=2: [2024-01-01T00:00:00, "
        "2024-06-01T00:00:00) overlaps [2024-03-01T00:00:00, 2024-04-01T00:00:00) held by dataset "
        f"…{str(theirs.id)[-8:]} (run {NEW_RUN})); decertify the overlapping range first or choose other dates")

    stale = preview_certify(gw, CHAIN, "PFS/calib/other", "bias")
    gw.butler.collections.redefine_chain(CHAIN, [OLD_RUN, NEW_RUN])  # its first child, the input, changes
    with pytest.raises(StalePreviewError, match="changed since the preview"):
        apply(gw, stale, journal=journal)
    assert state(gw) == before and gw.collection_type("PFS/calib/other") is None
    assert len(journal.entries()[0]) == 1


def test_certify_creates_a_missing_calibration_target_and_undo_removes_it(gw: ButlerGateway, journal: Journal):
    preview = preview_certify(gw, OLD_RUN, "PFS/calib/new", "bias")
    assert preview.create_collection == "PFS/calib/new"
    done = apply(gw, preview, journal=journal)
    assert gw.collection_type("PFS/calib/new") == "CALIBRATION" and len(state(gw, "PFS/calib/new")) == 4
    apply(gw, preview_undo(gw, done.entry_id, journal=journal), journal=journal)
    assert gw.collection_type("PFS/calib/new") is None


# --- decertify and undo --------------------------------------------------------------------------------------
@on_both
def test_decertify_a_middle_window_splits_exactly_as_previewed_and_undo_restores(gw: ButlerGateway, journal: Journal):
    apply(gw, preview_certify(gw, CHAIN, "PFS/calib", "bias", begin="2025-01-01"), journal=journal)
    certified = state(gw)
    preview = preview_decertify(gw, "PFS/calib", "bias", begin="2025-03-01", end="2025-04-01",
                                  data_ids=[["instrument=PFS", "arm=b", "spectrograph=1"]])
    assert [c.kind for c in preview.changes] == ["split"]
    split = preview.changes[0]
    assert [(p.begin, p.end) for p in split.after] == [("2025-01-01T00:00:00", "2025-03-01T00:00:00"),
                                                       ("2025-04-01T00:00:00", None)]
    done = apply(gw, preview, journal=journal)
    b1 = gw.all_associations("PFS/calib", "bias", data_id=B1)
    assert {a.key() for a in b1} == {a.key() for a in split.after}  # exactly as the preview said
    assert len(gw.all_associations("PFS/calib", "bias")) == 5
    undo = preview_undo(gw, done.entry_id, journal=journal)
    assert sorted(c.kind for c in undo.changes) == ["add", "remove", "remove"] and not undo.blocked
    undone = apply(gw, undo, journal=journal)
    assert state(gw) == certified  # association by association
    assert journal.find(undone.entry_id)["undoes"] == done.entry_id
    with pytest.raises(UndoError, match="already undone by " + undone.entry_id):
        preview_undo(gw, done.entry_id, journal=journal)
    # the undo is itself undoable (redo): the split comes back
    apply(gw, preview_undo(gw, undone.entry_id, journal=journal), journal=journal)
    assert {a.key() for a in gw.all_associations("PFS/calib", "bias", data_id=B1)} == {a.key() for a in split.after}


@on_both
def test_decertify_trims_and_removes_and_undo_of_certify_empties(gw: ButlerGateway, journal: Journal):
    empty = state(gw)
    cert = apply(gw, preview_certify(gw, NEW_RUN, "PFS/calib", "bias", begin="2025-02-01", end="2025-05-01"),
                   journal=journal)
    trim = preview_decertify(gw, "PFS/calib", "bias", begin="2025-04-01")
    assert {c.kind for c in trim.changes} == {"trim"} and len(trim.changes) == 4
    assert {p.end for c in trim.changes for p in c.after} == {"2025-04-01T00:00:00"}
    apply(gw, trim, journal=journal)
    # undo of the certify no longer matches (its ranges were trimmed): refused, nothing written
    stale = preview_undo(gw, cert.entry_id, journal=journal)
    assert stale.blocked and "no longer in PFS/calib as recorded" in stale.blocker_text()
    with pytest.raises(ConflictError):
        apply(gw, stale, journal=journal)
    wipe = preview_decertify(gw, "PFS/calib", "bias", everything=True)
    assert {c.kind for c in wipe.changes} == {"remove"}
    apply(gw, wipe, journal=journal)
    assert state(gw) == empty


@on_both
def test_undo_refuses_clean_and_unknown_entries(gw: ButlerGateway, journal: Journal):
    done = apply(gw, preview_clean(gw, "u/me/bias/*", ["biasProc"]), journal=journal)
    with pytest.raises(UndoError, match="cannot be undone: clean deletes"):
        preview_undo(gw, done.entry_id, journal=journal)
    with pytest.raises(UndoError, match="no journal entry 'nope'"):
        preview_undo(gw, "nope", journal=journal)


# --- clean and remove ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("pipeline_template", REGISTRIES, indirect=True)
def test_clean_removes_datasets_and_files_and_leaves_the_product(pipeline_template: Path, tmp_path: Path,
                                                                journal: Journal):
    repo = copy_repo(pipeline_template, tmp_path / "repo")
    with ButlerGateway(str(repo)) as gw:
        butler = gw.butler
        procs = butler.query_datasets("biasProc", collections=CHAIN)
        biases = butler.query_datasets("bias", collections=CHAIN)
        assert len(procs) == 12 and len(biases) == 4
        proc_files = [butler.getURI(r).ospath for r in procs]
        bias_files = [butler.getURI(r).ospath for r in biases]
        with pytest.raises(NothingToDoError, match="u/me/bias is a CHAINED collection and only RUN collections "
                                                     "match; use a glob such as 'u/me/bias/\\*'"):
            preview_clean(gw, CHAIN, ["biasProc"])
        preview = preview_clean(gw, "u/me/bias/*", ["biasProc"])
        assert preview.total_datasets == 12 and preview.total_bytes == sum(Path(f).stat().st_size for f in proc_files)
        assert not preview.undoable and "cannot be undone" in "\n".join(preview.lines())
        assert all(Path(f).exists() for f in proc_files)  # preview deletes nothing
        done = apply(gw, preview, journal=journal)
        butler.registry.refresh()
        assert butler.query_datasets("biasProc", collections=CHAIN, explain=False) == []
        assert not any(Path(f).exists() for f in proc_files)
        assert len(butler.query_datasets("bias", collections=CHAIN)) == 4
        assert all(Path(f).exists() for f in bias_files)
        entry = journal.find(done.entry_id)
        assert entry["effect"]["count"] == 12 and not entry["undoable"] and entry["inverse"] is None


def test_clean_refuses_datasets_that_are_certified(gw: ButlerGateway, journal: Journal):
    apply(gw, preview_certify(gw, NEW_RUN, "PFS/calib", "bias"), journal=journal)
    preview = preview_clean(gw, "u/me/bias/*", ["bias"])
    assert preview.blocked and "4 of these datasets are certified" in preview.blocker_text()
    with pytest.raises(ConflictError, match="decertify them first"):
        apply(gw, preview, journal=journal)
    assert len(gw.butler.query_datasets("bias", collections=CHAIN, find_first=False)) == 8


def test_remove_runs_of_a_chained_run_needs_unlink(gw: ButlerGateway, journal: Journal):
    preview = preview_remove_runs(gw, OLD_RUN)
    assert preview.blocked
    assert preview.blockers == [f"run {OLD_RUN} is in chain {CHAIN}; pass --unlink to remove it from the chain too "
                                "(or remove the chain first)"]
    with pytest.raises(ConflictError, match="pass --unlink"):
        apply(gw, preview, journal=journal)
    assert gw.collection_type(OLD_RUN) == "RUN" and len(gw.datasets(OLD_RUN, "biasProc")) == 12
    unlink = preview_remove_runs(gw, OLD_RUN, unlink=True)
    assert unlink.unlinks == [(CHAIN, OLD_RUN)] and unlink.total_datasets == 16
    apply(gw, unlink, journal=journal)
    assert gw.collection_type(OLD_RUN) is None and gw.collection(CHAIN).children == (NEW_RUN,)


def test_remove_collections_refuses_a_chained_child_without_remove_from_parents(gw: ButlerGateway, journal: Journal):
    from lsst.daf.butler import CollectionType

    gw.butler.collections.register("u/me/tag", CollectionType.TAGGED)
    gw.butler.collections.register("u/me/all", CollectionType.CHAINED)
    gw.butler.collections.redefine_chain("u/me/all", ["u/me/tag", CHAIN])
    blocked = preview_remove_collections(gw, "u/me/tag")
    assert blocked.blocked and "pass --remove-from-parents" in blocked.blocker_text()
    both = preview_remove_collections(gw, "u/me/*")  # the parent goes too: nothing left to unlink
    assert not both.blocked and {r.name for r in both.collections} == {"u/me/tag", "u/me/all", CHAIN}
    assert "RUN collection(s) also match and are NOT removed" in both.notes[0]
    apply(gw, both, journal=journal)
    assert gw.collection_names("u/*") == [OLD_RUN, NEW_RUN]


# --- guards --------------------------------------------------------------------------------------------------
def test_read_only_gateway_refuses_apply(repo: Path, journal: Journal):
    with ButlerGateway(str(repo), read_only=True) as ro:
        preview = preview_certify(ro, NEW_RUN, "PFS/calib", "bias")
        with pytest.raises(ReadOnlyError, match="cannot certify: repository .* is open read-only"):
            apply(ro, preview, journal=journal)
        assert state(ro) == set() and not journal.path.exists()


@pytest.mark.parametrize(
    "call, error, needle",
    [
        (lambda gw: preview_certify(gw, CHAIN, "PFS/calib", "biass"), NotFoundError,
         "unknown dataset type 'biass'; known types:"),
        (lambda gw: preview_certify(gw, CHAIN, OLD_RUN, "bias"), InputError,
         f"target {OLD_RUN} is a RUN collection, not CALIBRATION"),
        (lambda gw: preview_certify(gw, CHAIN, "PFS/calib", "biasProc"), InputError,
         "biasProc is not a calibration dataset type"),
        (lambda gw: preview_certify(gw, CHAIN, "PFS/calib", "bias", begin="2025-05-01", end="2025-01-01"),
         InputError, "begin date 2025-05-01 is not before end date 2025-01-01; swap them"),
        (lambda gw: preview_certify(gw, CHAIN, "PFS/calib", "bias", begin="01/05/2025"), InputError,
         "begin date '01/05/2025' is not a TAI ISO date; write it like 2025-03-01T00:00:00"),
        (lambda gw: preview_certify(gw, CHAIN, "PFS/calib", "bias", end="2150-01-01"), InputError,
         "outside the Butler's range"),
        (lambda gw: preview_certify(gw, CHAIN, "PFS/calib", "bias", data_ids=[["arm:b"]]), InputError,
         "bad data ID token 'arm:b'; write KEY=VALUE"),
        (lambda gw: preview_certify(gw, CHAIN, "PFS/calib", "bias", data_ids=[["instrument=PFS", "visit=11"]]),
         InputError, "data ID key 'visit' is not a dimension of bias"),
        (lambda gw: preview_certify(gw, CHAIN, "PFS/calib", "bias", data_ids=[["arm=b"]]), InputError,
         "does not name the instrument; add instrument="),
        (lambda gw: preview_certify(gw, CHAIN, "PFS/calib", "bias", data_ids=[["instrument=PFS", "spectrograph=x"]]),
         InputError, "spectrograph='x' is not a int"),
        (lambda gw: preview_certify(gw, "PFS/raw/sps", "PFS/calib", "bias"), NothingToDoError,
         "No inputs found for dataset bias in PFS/raw/sps"),
        (lambda gw: preview_certify(gw, "u/none", "PFS/calib", "bias"), NotFoundError,
         "input collection 'u/none' does not exist"),
        (lambda gw: preview_decertify(gw, OLD_RUN, "bias", everything=True), InputError, "is a RUN collection, not CALIBRATION"),
        (lambda gw: preview_decertify(gw, "PFS/calib", "bias", everything=True), NothingToDoError,
         "no bias validity range in PFS/calib overlaps [-∞, ∞)"),
        (lambda gw: preview_clean(gw, "u/nobody/*", ["biasProc"]), NothingToDoError,
         "no RUN collection matches 'u/nobody/*'"),
        (lambda gw: preview_clean(gw, "u/me/bias/*", ["biasProcc"]), NotFoundError, "unknown dataset type"),
        (lambda gw: preview_remove_runs(gw, "u/nobody/*"), NothingToDoError, "no RUN collection matches"),
    ],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(gw: ButlerGateway, call, error, needle):
    before = (state(gw), gw.collection_names())
    with pytest.raises(error) as info:
        call(gw)
    assert isinstance(info.value, GatewayError)
    text = str(info.value)
    assert needle in text and "\n" not in text, text
    assert (state(gw), gw.collection_names()) == before


# --- the same result as the LSST tool ------------------------------------------------------------------------
def _certify_calibrations(repo: Path, *args: str) -> None:
    proc = subprocess.run([str(BIN / "butler"), "certify-calibrations", str(repo), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _all_associations(repo: Path, collection: str) -> set[tuple]:
    from lsst.daf.butler import Butler

    with Butler.from_config(str(repo)) as butler:
        return {(str(a.ref.id), a.ref.run, tuple(sorted(a.ref.dataId.required.items())), a.timespan.nsec)
                for a in butler.registry.queryDatasetAssociations("bias", [collection])}


def test_same_associations_as_butler_certify_calibrations(pipeline_template: Path, seeded_template: Path,
                                                          tmp_path: Path, journal: Journal):
    cases = [
        (pipeline_template, [CHAIN, "PFS/calib", "bias", "--begin-date", "2025-01-01T00:00:00",
                             "--end-date", "2025-12-31T23:59:59.5"], {}),
        (seeded_template, [CHAIN, "PFS/calib/all-inputs", "bias", "--search-all-inputs", "--begin-date", "2024-06-01"],
         {"search_all_inputs": True}),
    ]
    for i, (template, argv, extra) in enumerate(cases):
        theirs, ours = tmp_path / f"theirs{i}", tmp_path / f"ours{i}"
        shutil.copytree(template, theirs)
        shutil.copytree(template, ours)
        _certify_calibrations(theirs, *argv)
        dates = {flag: argv[argv.index(flag) + 1] for flag in ("--begin-date", "--end-date") if flag in argv}
        with ButlerGateway(str(ours)) as gw:
            preview = preview_certify(gw, argv[0], argv[1], argv[2], begin=dates.get("--begin-date"),
                                        end=dates.get("--end-date"), **extra)
            apply(gw, preview, journal=journal)
        expected = _all_associations(theirs, argv[1])
        assert expected and _all_associations(ours, argv[1]) == expected


def test_journal_lines_are_json_with_the_documented_shape(gw: ButlerGateway, journal: Journal):
    done = apply(gw, preview_certify(gw, NEW_RUN, "PFS/calib", "bias", begin="2025-01-01"), journal=journal)
    # Write-ahead: the intent (the whole entry) before the registry commit, a commit record naming it after.
    line, commit = (json.loads(t) for t in journal.path.read_text().splitlines()[-2:])
    assert {"id", "ts", "user", "host", "pid", "kind", "schema", "action", "repository", "args", "summary", "effect",
            "undoable", "inverse", "fingerprint"} <= set(line)
    assert line["record"] == "intent" and line["schema"] == 2 and line["id"] == done.entry_id
    assert commit["record"] == "commit" and commit["intent"] == done.entry_id and commit["reconciled"] is False
    added = line["effect"]["added"][0]
    assert set(added) == {"dataset_type", "data_id", "run", "dataset_id", "begin", "end", "collection", "nsec"}
    assert added["begin"] == "2025-01-01T00:00:00" and added["end"] is None
