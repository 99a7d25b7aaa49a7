"""Write-ahead journaling of Butler changes: each action's intent is decided from the registry after a crash.

Each scenario applies an action on repository A, then hands its intent alone (as a process on a vanished host
left it) to the reconciler twice: against A, where the change is, it must be committed; against B, a copy of
A taken just before the action, it must be aborted.  Failures inside apply are covered too.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import pfstui.butler.reconcile as reconcile_mod
import pfstui.cli.butler as cli_butler
from pfstui.butler.apply import apply
from pfstui.butler.certify import preview_certify, preview_decertify
from pfstui.butler.errors import UnjournaledError
from pfstui.butler.gateway import ButlerGateway
from pfstui.butler.pfs import preview_certify_detectormaps, preview_define_profiles
from pfstui.butler.reconcile import reconcile, reconcile_all
from pfstui.butler.removal import (
    preview_clean,
    preview_remove_collections,
    preview_remove_runs,
)
from pfstui.butler.undo import preview_undo
from pfstui.infra.atomic import StateWriteError
from pfstui.infra.journal import Journal
from tests.butler.test_gateway import CHAIN, OLD_RUN
from tests.butler.test_pfs import _put_candidates


@pytest.fixture
def repo(seeded_template: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "repo"
    shutil.copytree(seeded_template, dest)
    return dest


def orphan(journal: Journal, entry_id: str, dest: Path, repo: Path) -> Journal:
    """A journal holding only the intent of ``entry_id`` on ``repo``, as a process on a vanished host left it."""
    for line in journal.path.read_text().splitlines():
        obj = json.loads(line)
        if obj["id"] == entry_id:
            assert obj["record"] == "intent"
            obj.update(host="vanished-host", ts="2000-01-01T00:00:00.000000+00:00", repository=str(repo))
            dest.write_text(json.dumps(obj) + "\n")
            return Journal(dest)
    raise AssertionError(f"no intent {entry_id}")


def _certify_into_new(gw: ButlerGateway, journal: Journal) -> None:
    apply(gw, preview_certify(gw, CHAIN, "PFS/calib/new", "bias"), journal=journal)


def _certify(gw: ButlerGateway, journal: Journal) -> None:
    apply(gw, preview_certify(gw, CHAIN, "PFS/calib", "bias", begin="2025-01-01"), journal=journal)


def _tag(gw: ButlerGateway, journal: Journal) -> None:
    from lsst.daf.butler import CollectionType

    gw.butler.collections.register("u/me/tag", CollectionType.TAGGED)


def _candidates(gw: ButlerGateway, journal: Journal) -> None:
    _put_candidates(Path(gw.repo), "u/me/dm/run1", "u/me/dm")


SCENARIOS: dict[str, tuple[Callable | None, Callable]] = {
    "certify": (None, lambda gw, j: preview_certify(gw, CHAIN, "PFS/calib", "bias", begin="2025-01-01")),
    "decertify": (_certify, lambda gw, j: preview_decertify(gw, "PFS/calib", "bias", begin="2025-03-01",
                                                            end="2025-04-01")),
    "undo": (_certify_into_new, lambda gw, j: preview_undo(gw, "last", journal=j)),
    "clean": (None, lambda gw, j: preview_clean(gw, "u/me/bias/*", ["biasProc"])),
    "remove-runs": (None, lambda gw, j: preview_remove_runs(gw, OLD_RUN, unlink=True)),
    "remove-collections": (_tag, lambda gw, j: preview_remove_collections(gw, "u/me/tag")),
    "define-profiles": (None, lambda gw, j: preview_define_profiles(gw, "PFS", "demo_br", ["51..52"], ["53..54"])),
    "certify-detectormaps": (_candidates, lambda gw, j: preview_certify_detectormaps(
        gw, "u/me/dm", "PFS/calib", begin="2000-01-01T00:00:00")),
}


@pytest.mark.parametrize("action", list(SCENARIOS))
def test_a_pending_intent_is_committed_where_the_change_is_and_aborted_where_it_is_not(
        action: str, repo: Path, tmp_path: Path, journal: Journal):
    setup, make_preview = SCENARIOS[action]
    if setup is not None:
        with ButlerGateway(str(repo)) as gw:
            setup(gw, journal)
    before = tmp_path / "before"
    shutil.copytree(repo, before)
    with ButlerGateway(str(repo)) as gw:
        done = apply(gw, make_preview(gw, journal), journal=journal)
    assert done.entry is not None and done.entry.data["action"] == action
    for where, state in ((repo, "committed"), (before, "aborted")):
        pending = orphan(journal, done.entry_id, tmp_path / f"{where.name}.jsonl", where)
        assert pending.entries()[0] == [] and len(pending.orphans()) == 1
        with ButlerGateway(str(where), read_only=True) as gw:
            outcomes = reconcile(pending, gw)
        assert [(o.entry.id, o.state) for o in outcomes] == [(done.entry_id, state)], outcomes[0].detail
        assert pending.pending() == []
        entries = pending.entries()[0]
        if state == "committed":
            assert [e.id for e in entries] == [done.entry_id]
            assert entries[0].data["committed"]["reconciled"] is True and entries[0].data["effect"] == done.effect
            assert "applied before its process died" in outcomes[0].message()
        else:
            assert entries == [] and "was never applied" in outcomes[0].message()


def test_a_failure_after_the_intent_is_decided_at_once(repo: Path, journal: Journal, monkeypatch):
    def boom(name: str) -> None:
        if name == "intent":
            raise RuntimeError("killed by the test")

    monkeypatch.setattr(reconcile_mod, "fault_point", boom)
    with ButlerGateway(str(repo)) as gw:
        with pytest.raises(RuntimeError, match="killed by the test"):
            apply(gw, preview_certify(gw, CHAIN, "PFS/calib", "bias"), journal=journal)
        assert gw.all_associations("PFS/calib") == []  # rolled back
    records = [json.loads(line) for line in journal.path.read_text().splitlines()]
    assert [r["record"] for r in records] == ["intent", "abort"]
    assert records[1]["reason"] == ("certify failed: killed by the test; validity ranges in PFS/calib: 0 of the 4 it "
                                    "added are there")
    assert journal.entries() == ([], []) and journal.pending() == []


def test_an_unwritable_commit_leaves_a_pending_entry_that_the_next_apply_commits(repo: Path, journal: Journal,
                                                                                 monkeypatch):
    real = Journal.commit

    def full(self, intent, *, reconciled=False, note=""):
        if not reconciled:
            raise StateWriteError(self.path, OSError(28, "No space left on device"))
        return real(self, intent, reconciled=reconciled, note=note)

    monkeypatch.setattr(Journal, "commit", full)
    with ButlerGateway(str(repo)) as gw:
        with pytest.raises(UnjournaledError, match="certify WAS applied, but the journal could not record it .*"
                                                   "stays pending — free the disk, then run pfstui journal"):
            apply(gw, preview_certify(gw, CHAIN, "PFS/calib", "bias", begin="2025-01-01"), journal=journal)
        assert len(gw.all_associations("PFS/calib")) == 4
        assert journal.entries()[0] == [] and len(journal.orphans()) == 1  # no longer in flight here
        monkeypatch.setattr(Journal, "commit", real)
        apply(gw, preview_decertify(gw, "PFS/calib", "bias", everything=True), journal=journal)
    entries = journal.entries()[0]
    assert [e["action"] for e in entries] == ["certify", "decertify"]
    assert entries[0]["committed"]["reconciled"] and not entries[1]["committed"]["reconciled"]


def test_pfstui_journal_reconciles_and_names_what_it_cannot_decide(repo: Path, tmp_path: Path, journal: Journal,
                                                                   monkeypatch, capsys):
    with ButlerGateway(str(repo)) as gw:
        done = apply(gw, preview_certify(gw, CHAIN, "PFS/calib", "bias"), journal=journal)
    state = tmp_path / "state"
    state.mkdir()
    lost = orphan(journal, done.entry_id, state / "journal.jsonl", repo).path.read_text()
    gone = json.loads(lost) | {"id": "1000000000000000000-gone-1-1", "repository": str(tmp_path / "no-repo")}
    (state / "journal.jsonl").write_text(lost + json.dumps(gone) + "\n")
    monkeypatch.setenv("PFSTUI_STATE_DIR", str(state))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert cli_butler.main(["journal"]) == 0
    out, err = capsys.readouterr()
    assert f"pfstui: journal entry {done.entry_id} (certify on {repo}" in err and "committed it" in err
    assert "journal entry 1000000000000000000-gone-1-1 (certify on" in err and "is uncertain: the registry could " \
           "not be read" in err and "it stays pending — check the registry" in err
    lines = out.splitlines()
    assert len(lines) == 2 and done.entry_id in lines[0] and "[undoable, reconciled]" in lines[0]
    assert lines[1].startswith("1000000000000000000-gone-1-1") and "[pending: uncertain]" in lines[1]
    # Decided once: the next listing says nothing more about the committed one.
    assert cli_butler.main(["journal"]) == 0
    out, err = capsys.readouterr()
    assert done.entry_id not in err and "[undoable, reconciled]" in out
    assert [o.state for o in reconcile_all(Journal(state / "journal.jsonl"))] == ["uncertain"]
