"""Undo of a journaled certify, decertify or undo: the inverse of its exact recorded effect, checked against now.

Why: undo of a certify decertifies exactly the ranges it added; undo of a decertify re-certifies exactly the ranges
it removed (same datasets), removing the trimmed or split pieces first.  It is refused when the registry no longer
holds what the entry recorded, and the undo is journaled too (and can itself be undone).  Clean and remove delete
files and cannot be undone.
"""

from __future__ import annotations

from collections.abc import Iterable

from pfstui.butler.errors import UndoError
from pfstui.butler.gateway import ButlerGateway
from pfstui.butler.preview import Change, Conflict, Preview, fingerprint
from pfstui.butler.registry import calibration_rows
from pfstui.butler.values import Association, same_repo
from pfstui.infra.journal import Journal, JournalEntry, default_journal

__all__ = [
    "UNDOABLE_ACTIONS",
    "DELETING_ACTIONS",
    "find_entry",
    "preview_undo",
    "preview_restore",
    "undone_by",
]


UNDOABLE_ACTIONS = frozenset({"certify", "decertify", "undo"})
DELETING_ACTIONS = frozenset({"clean", "remove-runs", "remove-collections"})


def find_entry(journal: Journal, ref: str) -> JournalEntry:
    """The journal entry ``ref``: a full id, a unique prefix or suffix of one, or ``last`` (newest Butler entry)."""
    entries, _ = journal.entries()
    butler_entries = [e for e in entries if e.get("kind") == "butler"]
    if ref == "last":
        if not butler_entries:
            raise UndoError(f"the journal {journal.path} has no Butler action yet; nothing to undo")
        return butler_entries[-1]
    exact = [e for e in entries if e.id == ref]
    if exact:
        return exact[0]
    partial = [e for e in entries if ref and (e.id.startswith(ref) or e.id.endswith(ref))]
    if len(partial) == 1:
        return partial[0]
    if partial:
        raise UndoError(f"{ref!r} matches {len(partial)} journal entries; give more of the id (pfstui journal)")
    raise UndoError(f"no journal entry {ref!r} in {journal.path}; list them with pfstui journal")


def preview_undo(gw: ButlerGateway, entry: JournalEntry | str, *, journal: Journal | None = None) -> Preview:
    """What undoing journal entry ``entry`` would do: the inverse of its exact effect, checked against now."""
    journal = journal or default_journal()
    if isinstance(entry, str):
        entry = find_entry(journal, entry)
    data = entry.data
    action = data.get("action", "?")
    if data.get("kind") != "butler":
        raise UndoError(f"journal entry {entry.id} ({action}) is not a Butler change; only certify, decertify and "
                        "their undos can be undone")
    if action not in UNDOABLE_ACTIONS or not data.get("inverse"):
        why = (f"{action} deletes datasets or collections for good" if action in DELETING_ACTIONS
               else "pfstui can only undo certify, decertify and their undos")
        raise UndoError(f"journal entry {entry.id} ({action}) cannot be undone: {why}")
    if not same_repo(str(data.get("repository")), gw.repo):
        raise UndoError(f"journal entry {entry.id} changed {data.get('repository')}, not {gw.repo}; "
                        "open that repository to undo it")
    undone = undone_by(journal.read()).get(entry.id)
    if undone is not None:
        raise UndoError(f"journal entry {entry.id} was already undone by {undone}; undo that entry to redo it")
    return preview_restore(gw, entry.id, dict(data))


def undone_by(entries: Iterable[JournalEntry]) -> dict[str, str]:
    """Which entry undid each undone entry (its id -> the undo's id): what the journal lists show, and why
    :func:`preview_undo` refuses to undo it again."""
    return {str(e.data["undoes"]): e.id for e in entries if e.data.get("undoes")}


def preview_restore(gw: ButlerGateway, entry_id: str, data: dict) -> Preview:
    inverse = data["inverse"]
    collection = inverse["collection"]
    remove = [Association.from_json(a) for a in inverse.get("remove", [])]
    add = [Association.from_json(a) for a in inverse.get("add", [])]
    dt = gw.dataset_type(inverse["dataset_type"])
    with gw.session("undo") as butler:
        kind = gw.collection_type(collection)
        blockers: list[str] = []
        conflicts: list[Conflict] = []
        create = None
        if kind is None:
            if inverse.get("create_collection"):
                create = collection
            else:
                raise UndoError(f"collection {collection} no longer exists; entry {entry_id} cannot be undone")
        elif kind != "CALIBRATION":
            raise UndoError(f"{collection} is now a {kind} collection; entry {entry_id} cannot be undone")
        dids = sorted({a.data_id_key() for a in remove + add})
        current = calibration_rows(butler, dt, collection, data_ids=[dict(d) for d in dids]) if kind else []
        now = {a.key() for a in current}
        for a in remove:
            if a.key() not in now:
                blockers.append(f"{a.camera()} {a.range_text()} (dataset …{a.dataset_id[-8:]}) is no longer in "
                                f"{collection} as recorded: the registry changed since entry {entry_id}")
        removing = {a.key() for a in remove}
        for a in add:
            if butler.get_dataset(a.dataset_id) is None:
                blockers.append(f"dataset {a.dataset_id} ({a.camera()}) no longer exists (cleaned or removed); "
                                "it cannot be re-certified")
            for c in current:
                if c.data_id_key() == a.data_id_key() and c.key() not in removing and c.overlaps_nsec(a.nsec):
                    conflicts.append(Conflict(a, c))
        changes = [Change("remove", before=a) for a in remove] + [Change("add", after=(a,)) for a in add]
        drop = bool(inverse.get("remove_collection"))
        if drop:
            others = [c for c in current if c.key() not in removing]
            if others or add:
                drop = False
        original = data.get("action", "?")
        summary = (f"undo {original} {entry_id}: remove {len(remove)} and restore {len(add)} {dt.name} validity "
                   f"range{'s' if len(add) != 1 else ''} in {collection}")
        notes = []
        if drop:
            notes.append(f"{collection} was created by that certify; it is removed too if left empty")
        state = {"kind": kind, "current": [list(a.key()) for a in current]}
        return Preview(
            action="undo", repo=gw.repo, args={"entry": entry_id}, fingerprint=fingerprint(state), summary=summary,
            changes=changes, conflicts=conflicts, blockers=blockers, notes=notes, undoable=True,
            create_collection=create,
            plan={"collection": collection, "dataset_type": dt, "entry_data": data, "drop_collection": drop},
        )
