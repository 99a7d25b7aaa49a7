"""Apply a previewed Butler action: re-check it, write it, check the write, journal it.

Why: :func:`apply` re-computes the preview inside one registry transaction that no other pfstui writer of the
same collection can enter (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL, see
:func:`~pfstui.butler.registry.serialise_writes`), refuses if anything blocks it or the fingerprint moved
(:class:`~pfstui.butler.errors.StalePreviewError`), performs the write, checks that the registry changed *exactly* as previewed (otherwise the
transaction is rolled back), and journals the action with its exact effect and its inverse (certify, decertify
and undo have one).  The PFS actions (:mod:`pfstui.butler.pfs`) go the same way.

The journal entry is write-ahead (:class:`pfstui.butler.reconcile.WriteAhead`): its intent is written just
before the registry commit and its commit record just after, so it is valid exactly when the change is; a
process killed in between leaves an intent that the next :func:`apply` on that repository (or ``pfstui
journal``) decides from the registry.

Clean and remove delete files and cannot be undone; they are re-checked just before the write and the Butler's
own removal (one registry transaction per 50,000 datasets, files deleted after the commit) is used, deleting
exactly the datasets the preview listed.
"""

from __future__ import annotations

from typing import Any

from pfstui.butler import daf_butler
from pfstui.butler.certify import preview_certify, preview_decertify
from pfstui.butler.errors import (
    ConflictError,
    GatewayError,
    NothingToDoError,
    StalePreviewError,
)
from pfstui.butler.gateway import ButlerGateway
from pfstui.butler.pfs import (
    prepare_define_profiles,
    preview_certify_detectormaps,
    preview_define_profiles,
    write_certify_detectormaps,
    write_define_profiles,
)
from pfstui.butler.preview import AppliedAction, Preview, human_bytes, range_text
from pfstui.butler.reconcile import WriteAhead, reconcile
from pfstui.butler.registry import calibration_rows, rows_touching, serialise_writes
from pfstui.butler.removal import (
    preview_clean,
    preview_remove_collections,
    preview_remove_runs,
)
from pfstui.butler.undo import preview_restore
from pfstui.butler.values import Association, plain_data_id, same_repo
from pfstui.infra.faults import fault_point
from pfstui.infra.journal import RECORD_SCHEMA, Journal, default_journal

__all__ = [
    "JOURNAL_SCHEMA",
    "apply",
]


#: Version of the journal entries written here (the ``schema`` key of each intent; 1 = before write-ahead).
JOURNAL_SCHEMA = RECORD_SCHEMA


#: How each action's preview is computed again, from the arguments it recorded (undo: from its journal entry).
_PREVIEWS = {
    "certify": preview_certify,
    "decertify": preview_decertify,
    "clean": preview_clean,
    "remove-runs": preview_remove_runs,
    "remove-collections": preview_remove_collections,
    "define-profiles": preview_define_profiles,
    "certify-detectormaps": preview_certify_detectormaps,
}
#: The PFS actions' writes: (what must happen before the transaction, or None; the writes inside it).
_PFS_WRITES = {
    "define-profiles": (prepare_define_profiles, write_define_profiles),
    "certify-detectormaps": (None, write_certify_detectormaps),
}


def _recompute(gw: ButlerGateway, preview: Preview) -> Preview:
    if preview.action == "undo":
        return preview_restore(gw, preview.args["entry"], preview.plan["entry_data"])
    if preview.action not in _PREVIEWS:  # pragma: no cover
        raise GatewayError(f"unknown action {preview.action!r}")
    return _PREVIEWS[preview.action](gw, **preview.args)


def _check_fresh(gw: ButlerGateway, preview: Preview) -> Preview:
    if not same_repo(preview.repo, gw.repo):
        raise GatewayError(f"this preview is for {preview.repo}, not {gw.repo}; preview again on this repository")
    try:
        fresh = _recompute(gw, preview)
    except NothingToDoError as exc:
        raise StalePreviewError(f"the registry changed since the preview ({exc}); preview again") from None
    # A conflict first: when another operator certified an overlapping range meanwhile, say which range and who
    # holds it, not only that the registry changed.
    if fresh.blocked:
        raise ConflictError(f"{preview.action} refused, nothing written: {fresh.blocker_text()}")
    if fresh.fingerprint != preview.fingerprint:
        raise StalePreviewError(f"the registry changed since the preview of {preview.action}; nothing was written — "
                                "preview again and re-check")
    fresh.origin = dict(preview.origin)
    return fresh


def apply(gw: ButlerGateway, preview: Preview, *, journal: Journal | None = None) -> AppliedAction:
    """Perform a previewed action if the registry is still as previewed; journal it with its inverse."""
    gw.check_writable(preview.action)
    if preview.blocked:
        raise ConflictError(f"{preview.action} refused, nothing written: {preview.blocker_text()}")
    journal = journal or default_journal()
    fault_point("apply")
    # Decide what a killed process left pending on this repository before changing it again.
    reconcile(journal, gw)
    if preview.action in ("certify", "decertify", "undo"):
        return _apply_associations(gw, preview, journal)
    if preview.action == "clean":
        return _apply_clean(gw, preview, journal)
    if preview.action == "remove-runs":
        return _apply_remove_runs(gw, preview, journal)
    if preview.action == "remove-collections":
        return _apply_remove_collections(gw, preview, journal)
    if preview.action in _PFS_WRITES:
        return _apply_pfs(gw, preview, journal)
    raise GatewayError(f"unknown action {preview.action!r}")  # pragma: no cover


def _entry(gw: ButlerGateway, preview: Preview, summary: str, effect: dict, inverse: dict | None,
           **extra: Any) -> dict[str, Any]:
    origin = {"origin": dict(preview.origin)} if preview.origin else {}
    return {"kind": "butler", "action": preview.action, "repository": gw.repo,
            "args": preview.args, "summary": summary, "effect": effect, "undoable": inverse is not None,
            "inverse": inverse, "fingerprint": preview.fingerprint, **origin, **extra}


def _apply_associations(gw: ButlerGateway, preview: Preview, journal: Journal) -> AppliedAction:
    dafb = daf_butler()
    wal = WriteAhead(journal, gw, preview.action)
    with wal, gw.writer(preview.action) as butler, butler.transaction():
        serialise_writes(butler, preview.plan["collection"])
        fresh = _check_fresh(gw, preview)
        if fresh.is_noop:
            return AppliedAction(preview.action, "nothing to do: " + fresh.summary, {}, None, fresh)
        collection = fresh.plan["collection"]
        dt = fresh.plan["dataset_type"]
        removed = fresh.removed_associations
        added = fresh.added_associations
        dids = [dict(k) for k in sorted({a.data_id_key() for a in removed + added})]
        before = set() if fresh.create_collection else rows_touching(butler, dt, collection, removed + added)
        created = False
        if fresh.create_collection:
            butler.collections.register(collection, dafb.CollectionType.CALIBRATION)
            created = True
        dropped = False
        if preview.action == "certify":
            refs = [fresh.plan["refs"][a.dataset_id] for a in added]
            butler.registry.certify(collection, refs, fresh.plan["timespan"])
        elif preview.action == "decertify":
            butler.registry.decertify(collection, dt, fresh.plan["timespan"], dataIds=dids)
        else:  # undo: remove the recorded pieces, then re-certify the recorded ranges with the same datasets
            for a in removed:
                butler.registry.decertify(collection, dt, a.timespan(), dataIds=[a.data_id])
            by_span: dict[tuple[int, int], list] = {}
            for a in added:
                by_span.setdefault(a.nsec, []).append(butler.get_dataset(a.dataset_id))
            for nsec, refs in sorted(by_span.items()):
                butler.registry.certify(collection, refs, dafb.Timespan(None, None, _nsec=nsec))
        after = rows_touching(butler, dt, collection, removed + added)
        if before - after != {a.key() for a in removed} or after - before != {a.key() for a in added}:
            raise GatewayError(f"{preview.action} did not change {collection} exactly as previewed "
                               f"({len(before - after)} removed, {len(after - before)} added); rolled back, "
                               "nothing written — preview again")
        if preview.action == "undo" and fresh.plan.get("drop_collection"):
            calibs = [t for t in butler.registry.queryDatasetTypes() if t.isCalibration()]
            if not any(calibration_rows(butler, t, collection) for t in calibs):
                info = butler.collections.get_info(collection, include_parents=True)
                if not info.parents:
                    butler.collections.x_remove(collection)
                    dropped = True
        effect = {"collection": collection, "dataset_type": dt.name,
                  "removed": [a.to_json() for a in removed], "added": [a.to_json() for a in added],
                  "created_collection": created, "removed_collection": dropped}
        inverse = {"collection": collection, "dataset_type": dt.name,
                   "remove": effect["added"], "add": effect["removed"],
                   "create_collection": dropped, "remove_collection": created}
        summary = _effect_summary(fresh, dt.name, collection, removed, added, created, dropped)
        extra = {"undoes": preview.args["entry"]} if preview.action == "undo" else {}
        if fresh.verification:  # the certify gate's verdicts, and the operator's reasons for any override
            extra["verification"] = [v.to_json() for v in fresh.verification]
        # The intent goes last inside the transaction: if it cannot be written, the change is rolled back.
        wal.intend(_entry(gw, fresh, summary, effect, inverse, **extra))
    return AppliedAction(preview.action, summary, effect, wal.commit(), fresh)


def _effect_summary(preview: Preview, dt: str, collection: str, removed: list[Association],
                    added: list[Association], created: bool, dropped: bool) -> str:
    if preview.action == "certify":
        span = added[0].range_text() if added else ""
        text = f"certified {len(added)} {dt} in {collection} for {span}" + _gate_summary(preview)
    elif preview.action == "decertify":
        counts = {k: sum(1 for c in preview.changes if c.kind == k) for k in ("remove", "trim", "split")}
        verbs = {"remove": "removed", "trim": "trimmed", "split": "split"}
        detail = ", ".join(f"{n} range{'s' if n != 1 else ''} {verbs[k]}" for k, n in counts.items() if n)
        text = f"decertified {dt} in {collection} over {range_text(preview.plan['timespan'].nsec)}: {detail}"
    else:
        text = (f"undone {preview.args['entry']}: removed {len(removed)} and restored {len(added)} {dt} range(s) "
                f"in {collection}")
    if created:
        text += f" (created {collection})"
    if dropped:
        text += f" (removed the empty {collection})"
    return text


def _gate_summary(preview: Preview) -> str:
    """What the certify gate did, for the summary (and so ``pfstui journal``): cameras left out, reasons given."""
    left = [v.camera for v in preview.verification if v.left_out]
    text = f"; left out (failed verification): {', '.join(left)}" if left else ""
    return text + "".join(f"; {v.camera} failed verification, certified anyway: {v.override}"
                          for v in preview.verification if v.override)


def _apply_clean(gw: ButlerGateway, preview: Preview, journal: Journal) -> AppliedAction:
    wal = WriteAhead(journal, gw, "clean")
    with wal, gw.writer("clean") as butler:
        fresh = _check_fresh(gw, preview)
        refs = fresh.plan["refs"]
        uris = [u for v in butler.get_many_uris(refs).values() for u in [v.primaryURI, *v.componentURIs.values()] if u]
        effect = {
            "runs": sorted({r.run for r in refs}), "dataset_types": fresh.args["dataset_types"],
            "count": len(refs), "bytes": fresh.total_bytes, "files": len(uris),
            "per_run": [{"run": r.run, "dataset_type": r.dataset_type, "count": r.count, "bytes": r.bytes}
                        for r in fresh.removals],
            "datasets": [{"dataset_id": str(r.id), "dataset_type": r.datasetType.name, "run": r.run,
                          "data_id": plain_data_id(r.dataId)} for r in refs],
        }
        summary = (f"cleaned {len(refs)} {', '.join(fresh.args['dataset_types'])} datasets "
                   f"({human_bytes(fresh.total_bytes)}) from {len(effect['runs'])} run(s)")
        wal.intend(_entry(gw, fresh, summary, effect, None))
        butler.pruneDatasets(refs, disassociate=True, unstore=True, purge=True)
        left = [str(r.id) for r in refs if butler.get_dataset(r.id) is not None]
        files_left = [str(u) for u in uris if u.exists()]
        if left or files_left:  # pragma: no cover - pruneDatasets failed silently
            raise GatewayError(f"clean left {len(left)} datasets and {len(files_left)} files behind; run it again")
    return AppliedAction("clean", summary, effect, wal.commit(), fresh)


def _apply_remove_runs(gw: ButlerGateway, preview: Preview, journal: Journal) -> AppliedAction:
    wal = WriteAhead(journal, gw, "remove-runs")
    with wal, gw.writer("remove-runs") as butler:
        fresh = _check_fresh(gw, preview)
        runs = fresh.plan["runs"]
        effect = {"runs": runs, "unlinked": [list(u) for u in fresh.unlinks], "count": fresh.total_datasets,
                  "bytes": fresh.total_bytes,
                  "per_run": [{"run": r.run, "dataset_type": r.dataset_type, "count": r.count, "bytes": r.bytes}
                              for r in fresh.removals]}
        summary = f"removed {len(runs)} run(s) and {fresh.total_datasets} datasets ({human_bytes(fresh.total_bytes)})"
        wal.intend(_entry(gw, fresh, summary, effect, None))
        butler.removeRuns(runs, unlink_from_chains=fresh.args["unlink"])
    return AppliedAction("remove-runs", summary, effect, wal.commit(), fresh)


def _apply_remove_collections(gw: ButlerGateway, preview: Preview, journal: Journal) -> AppliedAction:
    wal = WriteAhead(journal, gw, "remove-collections")
    with wal, gw.writer("remove-collections") as butler, butler.transaction():
        fresh = _check_fresh(gw, preview)
        for parent, child in fresh.unlinks:
            butler.collections.remove_from_chain(parent, child)
        pending = {r.name: r for r in fresh.collections}
        # Remove a chain before the collections it contains (a child still in a chain cannot be removed).
        while pending:
            ready = [n for n, r in pending.items() if not (set(r.parents or ()) & set(pending))]
            if not ready:  # pragma: no cover - a cycle is impossible in a registry
                ready = sorted(pending)
            for name in sorted(ready):
                butler.collections.x_remove(name)
                del pending[name]
        effect = {"collections": [{"name": r.name, "type": r.type, "children": list(r.children),
                                   "parents": list(r.parents or ())} for r in fresh.collections],
                  "unlinked": [list(u) for u in fresh.unlinks]}
        summary = f"removed {len(fresh.collections)} collection(s): {', '.join(r.name for r in fresh.collections)}"
        wal.intend(_entry(gw, fresh, summary, effect, None))
    return AppliedAction("remove-collections", summary, effect, wal.commit(), fresh)


def _apply_pfs(gw: ButlerGateway, preview: Preview, journal: Journal) -> AppliedAction:
    """define-profiles and certify-detectormaps: the writes of :mod:`pfstui.butler.pfs`, in one transaction."""
    prepare, write = _PFS_WRITES[preview.action]
    wal = WriteAhead(journal, gw, preview.action)
    with wal, gw.writer(preview.action) as butler:
        fresh = _check_fresh(gw, preview)
        if prepare is not None:
            prepare(butler, fresh)
        with butler.transaction():
            summary, effect = write(butler, fresh)
            # The intent goes last inside the transaction, as for certify: if it cannot be written, the change is
            # rolled back.
            wal.intend(_entry(gw, fresh, summary, effect, None))
    return AppliedAction(preview.action, summary, effect, wal.commit(), fresh)
