"""Write-ahead journaling of Butler changes, and deciding the intents a dead process left pending.

Why: the journal and the registry cannot be committed together.  :class:`WriteAhead` writes the entry as an
*intent* before the registry commit and commits it after (:mod:`pfstui.infra.journal`), so a kill in between
leaves an intent, never a false entry.  Whoever next holds a Butler on that repository asks the registry whether
the intended change is there (:func:`check`, one check per action, next to the action code) and appends a
commit marked ``reconciled`` or an abort; when the registry says neither "as before" nor "as after", the
intent stays pending and is reported as uncertain.

Where it runs (cheap: without a pending intent nothing but the journal is read):

* :func:`pfstui.butler.apply.apply`, before writing: no new change lands on a repository while an earlier one
  on it is undecided, so the earlier one is judged on the registry it left;
* ``pfstui journal`` and ``pfstui undo`` (every repository named by an orphan), and the Certify pane's journal
  (its own repository), so what they list is already decided.

The checks are exact for certify, decertify and undo (each association added or removed, by dataset id, data
ID, collection and exact timespan, is or is not in the registry) and by existence for the rest: the datasets a
clean deleted, the runs and collections removed, the datasets define-profiles and certify-detectormaps wrote.
Clean and remove-runs delete in several registry transactions, so "partly there" counts as applied (it is a
change that happened) with a note saying what is left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self

from pfstui.butler import daf_butler
from pfstui.butler.errors import UnjournaledError
from pfstui.butler.gateway import ButlerGateway
from pfstui.butler.registry import calibration_rows
from pfstui.butler.values import Association, same_repo
from pfstui.infra.faults import fault_point
from pfstui.infra.journal import Journal, JournalEntry, writer_alive

__all__ = ["CHECKS", "Outcome", "Verdict", "WriteAhead", "check", "reconcile", "reconcile_all", "settle"]


@dataclass(frozen=True)
class Verdict:
    """Whether an intent's change is in the registry: True, False, or None (cannot tell), and why."""

    applied: bool | None
    detail: str


@dataclass(frozen=True)
class Outcome:
    """What became of one pending intent: committed, aborted, uncertain or in progress."""

    entry: JournalEntry
    state: str
    detail: str = ""

    def message(self) -> str:
        e = self.entry
        what = f"journal entry {e.id} ({e.get('action', '?')} on {e.get('repository', '?')}, {e.ts[:19]}Z)"
        if self.state == "committed":
            return f"{what} was applied before its process died; committed it ({self.detail})"
        if self.state == "aborted":
            return f"{what} was never applied; marked aborted ({self.detail})"
        if self.state == "in progress":
            return f"{what} is still being applied by process {e.pid} on {e.host}"
        return (f"{what} is uncertain: {self.detail}; it stays pending — check the registry (pfstui calibs, the "
                "Collections pane) before redoing or undoing it by hand")


# --- the checks, one per action ------------------------------------------------------------------------------
def _before_or_after(new_there: int, new_total: int, old_there: int, old_total: int, what: str) -> Verdict:
    """The verdict when a change adds ``new`` things and removes ``old`` ones, from how many of each are there."""
    after = new_there == new_total and old_there == 0
    before = new_there == 0 and old_there == old_total
    parts = [f"{n} of the {total} it {verb}" for n, total, verb in ((new_there, new_total, "added"),
                                                                     (old_there, old_total, "removed")) if total]
    counts = f"{what}: {' and '.join(parts)} {'are' if new_there + old_there != 1 else 'is'} there"
    if after and not before:
        return Verdict(True, counts)
    if before and not after:
        return Verdict(False, counts)
    return Verdict(None, counts + ": the registry is neither as before nor as after it")


def _check_associations(gw: ButlerGateway, data: dict[str, Any]) -> Verdict:
    """certify, decertify, undo: exactly the recorded associations (dataset, data ID, timespan) in the collection."""
    eff = data["effect"]
    collection = eff["collection"]
    removed = [Association.from_json(a) for a in eff.get("removed", [])]
    added = [Association.from_json(a) for a in eff.get("added", [])]
    kind = gw.collection_type(collection)
    if kind is None:
        if eff.get("removed_collection"):
            return Verdict(True, f"{collection}, which it removed, is gone")
        if eff.get("created_collection"):
            return Verdict(False, f"{collection}, which it would have created, does not exist")
        return Verdict(None, f"{collection} no longer exists")
    if kind != "CALIBRATION":
        return Verdict(None, f"{collection} is now a {kind} collection")
    dt = gw.dataset_type(eff["dataset_type"])
    dids = [dict(k) for k in sorted({a.data_id_key() for a in removed + added})]
    with gw.session("reconcile") as butler:
        now = {a.key() for a in calibration_rows(butler, dt, collection, data_ids=dids)}
    verdict = _before_or_after(sum(a.key() in now for a in added), len(added), sum(a.key() in now for a in removed),
                               len(removed), f"validity ranges in {collection}")
    if verdict.applied and eff.get("removed_collection"):  # "as after" would have no collection at all
        return Verdict(None, f"{collection}, which it removed, is there again")
    return verdict


def _existing_ids(butler, pairs: Iterable[tuple[str, str]], ids: set[str]) -> set[str]:
    """Which of ``ids`` still exist, looked up per (run, dataset type): one query each, not one per dataset."""
    dafb = daf_butler()
    found: set[str] = set()
    for run, dt_name in sorted(set(pairs)):
        try:
            refs = butler.query_datasets(dt_name, collections=[run], find_first=False, explain=False, limit=None)
        except (dafb.MissingCollectionError, dafb.MissingDatasetTypeError):
            continue
        found.update(str(r.id) for r in refs if str(r.id) in ids)
    return found


def _check_clean(gw: ButlerGateway, data: dict[str, Any]) -> Verdict:
    datasets = data["effect"].get("datasets") or []
    ids = {d["dataset_id"] for d in datasets}
    if not ids:
        return Verdict(None, "the entry names no dataset")
    with gw.session("reconcile") as butler:
        left = _existing_ids(butler, ((d["run"], d["dataset_type"]) for d in datasets), ids)
    if not left:
        return Verdict(True, f"none of its {len(ids)} datasets is left")
    if len(left) == len(ids):
        return Verdict(False, f"all its {len(ids)} datasets are still there")
    return Verdict(True, f"partly: {len(left)} of its {len(ids)} datasets are still there (clean again)")


def _check_remove_runs(gw: ButlerGateway, data: dict[str, Any]) -> Verdict:
    eff = data["effect"]
    runs = list(eff.get("runs") or [])
    present = [r for r in runs if gw.collection_type(r) is not None]
    if not present:
        return Verdict(True, f"its {len(runs)} run(s) are gone")
    with gw.session("reconcile") as butler:
        count = len(butler.query_all_datasets(present, find_first=False, limit=None))
    if len(present) == len(runs) and count == eff.get("count"):
        return Verdict(False, f"its {len(runs)} run(s) and {count} datasets are still there")
    return Verdict(True, f"partly: {len(present)} of its {len(runs)} run(s) and {count} datasets are still there "
                         "(remove-runs again)")


def _check_remove_collections(gw: ButlerGateway, data: dict[str, Any]) -> Verdict:
    eff = data["effect"]
    names = [c["name"] for c in eff.get("collections") or []]
    present = [n for n in names if gw.collection_type(n) is not None]
    if not present:
        return Verdict(True, f"its {len(names)} collection(s) are gone")
    if len(present) == len(names):
        linked = all(gw.collection_type(parent) is None or child in gw.collection(parent).children
                     for parent, child in eff.get("unlinked") or [])
        if linked:
            return Verdict(False, f"its {len(names)} collection(s) are still there")
    return Verdict(None, f"{len(present)} of the {len(names)} collections it removed are there")


def _check_define_profiles(gw: ButlerGateway, data: dict[str, Any]) -> Verdict:
    eff = data["effect"]
    new, replaced = eff.get("datasets"), eff.get("replaced") or []
    if new is None:
        return Verdict(None, "the entry does not name the datasets it wrote (written by an older pfstui)")
    with gw.session("reconcile") as butler:
        there = {i for i in [*new, *replaced] if butler.get_dataset(i) is not None}
    return _before_or_after(len(there & set(new)), len(new), len(there & set(replaced)), len(replaced),
                            "profiles_visits datasets")


def _check_certify_detectormaps(gw: ButlerGateway, data: dict[str, Any]) -> Verdict:
    eff = data["effect"]
    copies = {d["id"]: d["dataId"] for d in eff.get("datasets") or []}
    if not copies:
        return Verdict(None, "the entry names no dataset")
    with gw.session("reconcile") as butler:
        there = [i for i in copies if butler.get_dataset(i) is not None]
        certified: set[str] = set()
        if there and gw.collection_type(eff["target"]) == "CALIBRATION":
            dt = gw.dataset_type(eff["dataset_type"])
            rows = calibration_rows(butler, dt, eff["target"], data_ids=[copies[i] for i in there])
            certified = {a.dataset_id for a in rows} & set(copies)
    if not there:
        return Verdict(False, f"none of its {len(copies)} copies exists")
    if len(there) == len(copies) and certified == set(copies):
        return Verdict(True, f"its {len(copies)} copies exist and are certified in {eff['target']}")
    return Verdict(None, f"{len(there)} of its {len(copies)} copies exist, {len(certified)} certified in "
                         f"{eff['target']}")


#: The check of each journaled action, by its ``action`` name.
CHECKS: dict[str, Callable[[ButlerGateway, dict[str, Any]], Verdict]] = {
    "certify": _check_associations,
    "decertify": _check_associations,
    "undo": _check_associations,
    "clean": _check_clean,
    "remove-runs": _check_remove_runs,
    "remove-collections": _check_remove_collections,
    "define-profiles": _check_define_profiles,
    "certify-detectormaps": _check_certify_detectormaps,
}


def check(gw: ButlerGateway, data: dict[str, Any]) -> Verdict:
    """Whether the change an intent describes is in ``gw``'s registry; never raises (None when it cannot tell)."""
    action = data.get("action", "?")
    fn = CHECKS.get(action)
    if fn is None:
        return Verdict(None, f"pfstui cannot check a {action!r} entry")
    try:
        gw.invalidate()  # another process wrote: forget cached names, re-read the registry's caches
        return fn(gw, dict(data))
    except Exception as exc:  # noqa: BLE001 - a check that cannot read the registry cannot tell
        return Verdict(None, f"the registry could not be read ({exc})")


# --- deciding ------------------------------------------------------------------------------------------------
def settle(journal: Journal, gw: ButlerGateway, intent: JournalEntry, *, failure: str = "") -> Outcome:
    """Decide one intent from the registry: commit it (reconciled), abort it, or leave it pending."""
    verdict = check(gw, dict(intent.data))
    if verdict.applied is True:
        journal.commit(intent, reconciled=True, note=verdict.detail)
        return Outcome(intent, "committed", verdict.detail)
    if verdict.applied is False:
        journal.abort(intent, f"{failure}; {verdict.detail}" if failure else verdict.detail)
        return Outcome(intent, "aborted", verdict.detail)
    journal.release(intent)
    return Outcome(intent, "uncertain", verdict.detail)


def reconcile(journal: Journal, gw: ButlerGateway, intents: list[JournalEntry] | None = None) -> list[Outcome]:
    """Decide the pending intents on ``gw``'s repository whose process is gone (the others are in progress)."""
    out = []
    for intent in journal.pending() if intents is None else intents:
        if not same_repo(str(intent.data.get("repository", "")), gw.repo):
            continue
        out.append(Outcome(intent, "in progress") if writer_alive(intent) else settle(journal, gw, intent))
    return out


def reconcile_all(journal: Journal,
                  open_gateway: Callable[[str], ButlerGateway] | None = None) -> list[Outcome]:
    """Decide every orphaned intent, opening each repository they name only if there is one.

    ``open_gateway`` (default: writable) opens a repository.  Writable although the checks only read, because
    SQLite lets only a writer roll back the transaction a killed process left open ("attempt to write a
    readonly database" otherwise); a read-only gateway then leaves the intent uncertain.
    """
    pending = journal.pending()
    by_repo: dict[str, list[JournalEntry]] = {}
    for intent in pending:
        by_repo.setdefault(str(intent.data.get("repository", "")), []).append(intent)
    out: list[Outcome] = []
    for repo, intents in by_repo.items():
        if all(writer_alive(i) for i in intents):
            out += [Outcome(i, "in progress") for i in intents]
            continue
        # Opening is lazy and a repository that cannot be read makes check() say "cannot tell": never raises.
        with (open_gateway or ButlerGateway)(repo) as gw:
            out += reconcile(journal, gw, intents)
    return out


# --- writing -------------------------------------------------------------------------------------------------
class WriteAhead:
    """The journal entry of one Butler change, valid only once the registry committed it.

    Use: ``with wal:`` around the registry writes, :meth:`intend` inside the transaction just before its
    commit, :meth:`commit` after it.  If the writes fail after the intent, the registry decides (:func:`settle`):
    a rolled-back change is aborted, a half-done clean is committed with a note, anything unclear stays pending.
    """

    def __init__(self, journal: Journal, gw: ButlerGateway, action: str) -> None:
        self.journal, self.gw, self.action = journal, gw, action
        self.intent: JournalEntry | None = None

    def intend(self, entry: dict[str, Any]) -> None:
        self.intent = self.journal.begin(entry)
        fault_point("intent")

    def commit(self) -> JournalEntry:
        assert self.intent is not None, "intend() first"
        fault_point("registry-commit")
        try:
            entry = self.journal.commit(self.intent)
        except Exception as exc:  # noqa: BLE001 - the change is done; say so rather than hide it
            self.journal.release(self.intent)  # so that the next reconcile, even in this process, decides it
            raise UnjournaledError(
                f"{self.action} WAS applied, but the journal could not record it ({exc}); its entry "
                f"{self.intent.id} stays pending — free the disk, then run pfstui journal to reconcile it"
            ) from None
        fault_point("journal-commit")
        return entry

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None or self.intent is None:
            return
        try:
            settle(self.journal, self.gw, self.intent, failure=f"{self.action} failed: {exc}")
        except Exception:  # noqa: BLE001 - the journal is unwritable too: the intent stays pending
            self.journal.release(self.intent)
