"""Previews of certify and decertify: which validity ranges are added, trimmed, split or removed, and conflicts.

Why: these mirror ``butlerCertify.py`` / ``butler certify-calibrations`` and ``butlerDecertify.py``, but compute
the exact effect first, so an overlap is refused before anything is written instead of raising
``ConflictingDefinitionError`` after the fact.  :func:`pfstui.butler.apply.apply` performs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pfstui.butler.errors import InputError, NotFoundError, NothingToDoError
from pfstui.butler.gateway import ButlerGateway
from pfstui.butler.preview import Change, Conflict, Preview, fingerprint, range_text
from pfstui.butler.registry import calibration_rows
from pfstui.butler.values import (
    Association,
    calibration_type,
    data_id_text,
    normalize_data_ids,
    plain_data_id,
    validity_window,
)
from pfstui.values.names import check_collection

__all__ = [
    "preview_certify",
    "preview_decertify",
]


def preview_certify(gw: ButlerGateway, input_collection: str, target: str, dataset_type: str, *,
                    begin: str | None = None, end: str | None = None,
                    data_ids: Iterable[Mapping[str, Any] | Sequence[str]] | None = None,
                    search_all_inputs: bool = False, whole_product: bool = False,
                    overrides: Mapping[str, str] | None = None, verify: bool = True,
                    limits: Sequence[str] = ()) -> Preview:
    """What certifying ``dataset_type`` from ``input_collection`` into ``target`` over [begin, end) would do.

    As ``butler certify-calibrations``: a CHAINED input means its first child unless ``search_all_inputs``; the
    search is find-first; the target is created as CALIBRATION when missing.  As butlerCertify.py: each data ID
    (``--id``) is searched separately and the results joined.  ``whole_product`` (what a plan's certify stage
    asks) searches every RUN the chain's own pipetask runs wrote instead of its first child: after a partial
    rerun (``--skip-existing-in``) the product is spread over several of them, and each data ID takes the
    newest (the first in the chain's search order).

    ``verify`` (a product :mod:`pfstui.verify` has checks for): each chosen dataset is verified against the one
    certified in ``target`` at ``begin``, and a failing camera is left out unless ``overrides`` (``{camera:
    reason}``) names it with a reason; the verdicts are in the preview (:attr:`Preview.verification`).
    """
    check_collection(target)  # the target may be created: its name must be one pfstui would accept anywhere
    begin, end, window = validity_window(begin, end)
    dt = calibration_type(gw, dataset_type)

    with gw.session("certify") as butler:
        ids = normalize_data_ids(butler, dt, data_ids)
        in_type = gw.collection_type(input_collection)
        if in_type is None:
            raise NotFoundError(f"input collection {input_collection!r} does not exist; check the name "
                                "(the -o output of pipetask run)")
        if in_type == "CALIBRATION":
            raise InputError(f"input {input_collection} is a CALIBRATION collection; certify from the RUN or "
                             "CHAINED output of pipetask run")
        search, notes = _search_path(butler, input_collection, in_type, search_all_inputs, whole_product)
        target_type = gw.collection_type(target)
        if target_type is not None and target_type != "CALIBRATION":
            raise InputError(f"target {target} is a {target_type} collection, not CALIBRATION; certify into a "
                             "CALIBRATION collection (e.g. PFS/calib)")
        refs: dict[str, Any] = {}
        for flt in (ids or [None]):
            with butler.query() as q:
                res = q.datasets(dt, collections=search, find_first=True)
                if flt:
                    res = res.where(flt)
                got = list(res)
                if not got:
                    explain = " ".join(" ".join(res.explain_no_results()).split())
                    what = f" for {data_id_text(flt)}" if flt else ""
                    text = f"No inputs found for dataset {dt.name} in {', '.join(search)}{what}. {explain}".rstrip()
                    raise NothingToDoError(text + "; check the input collection and --id")
                for ref in got:
                    refs[str(ref.id)] = ref
        ordered = sorted(refs.values(), key=lambda r: (tuple(plain_data_id(r.dataId).items()), str(r.id)))
        gate = _gate(butler, gw.repo, dt.name, ordered, target if target_type and begin else None, window,
                     overrides, verify, limits)
        data_id_list = [plain_data_id(r.dataId) for r in ordered]
        # Only the ranges this certify would meet: another operator's elsewhere in time must not make it stale.
        current = calibration_rows(butler, dt, target, data_ids=data_id_list, window=window) if target_type else []
        by_did: dict[tuple, list[Association]] = {}
        for a in current:
            by_did.setdefault(a.data_id_key(), []).append(a)
        changes: list[Change] = []
        conflicts: list[Conflict] = []
        seen: dict[tuple, Association] = {}
        for ref in (r for r in ordered if str(r.id) not in gate.left_out):
            want = Association.from_timespan(dt.name, plain_data_id(ref.dataId), ref.run, ref.id, window, target)
            if want.data_id_key() in seen:  # two inputs for one data ID (several --id over one chain)
                conflicts.append(Conflict(want, seen[want.data_id_key()]))
                continue
            seen[want.data_id_key()] = want
            overlapping = [a for a in by_did.get(want.data_id_key(), []) if a.overlaps_nsec(want.nsec)]
            if len(overlapping) == 1 and overlapping[0].key() == want.key():
                changes.append(Change("unchanged", before=overlapping[0], after=(overlapping[0],)))
            elif overlapping:
                conflicts += [Conflict(want, a) for a in overlapping]
            else:
                changes.append(Change("add", after=(want,)))
        n_add = sum(1 for c in changes if c.kind == "add")
        left_out = f", {len(gate.left_out)} left out (failed verification)" if gate.left_out else ""
        source = search[0] if len(search) == 1 else f"{input_collection} ({len(search)} RUNs)"
        if len(search) > 1:
            notes.append(_runs_note(input_collection, dt.name, search, ordered))
        notes += gate.notes
        summary = (f"certify {n_add} {dt.name} from {source} into {target} for {range_text(window.nsec)}"
                   + (f" ({len(conflicts)} conflicting)" if conflicts else "") + left_out)
        state = {"search": search, "in_type": in_type, "target_type": target_type, "refs": sorted(refs),
                 "current": [list(a.key()) for a in current], "verdicts": [v.to_json() for v in gate.verdicts]}
        return Preview(
            action="certify", repo=gw.repo,
            args={"input_collection": input_collection, "target": target, "dataset_type": dt.name,
                  "begin": begin, "end": end, "data_ids": ids, "search_all_inputs": bool(search_all_inputs),
                  "whole_product": bool(whole_product), "overrides": dict(overrides or {}), "verify": bool(verify),
                  "limits": list(limits)},
            fingerprint=fingerprint(state), summary=summary, changes=changes, conflicts=conflicts, notes=notes,
            verification=gate.verdicts, blockers=[b for b in (gate.blocker(),) if b],
            undoable=True, create_collection=None if target_type else target,
            plan={"collection": target, "dataset_type": dt, "refs": refs, "timespan": window},
        )


def _gate(butler, repo: str, dt_name: str, refs: list, against: str | None, window,
          overrides: Mapping[str, str] | None, verify: bool, limits: Sequence[str]):
    """The certify gate's decision on ``refs`` (:func:`pfstui.verify.gate.gate_refs`), compared with what
    ``against`` holds at the window's begin (nothing before an open begin, or in a target not yet created)."""
    # Imported here: the gate reads FITS files (astropy), which only a certify needs.
    from pfstui.verify.gate import Gate, gate_refs

    if not verify:
        if overrides:
            raise InputError("overrides are for a verified certify", "leave the overrides out, or verify")
        return Gate()
    return gate_refs(butler, repo, dt_name, refs, against, window.begin if against else None, overrides, limits)


def _search_path(butler, name: str, kind: str, search_all: bool, whole_product: bool) -> tuple[list[str], list[str]]:
    """The collections a certify searches for its input (find-first, in this order), and a note saying why."""
    if kind != "CHAINED" or search_all:
        return [name], []
    children = list(butler.collections.get_info(name).children)
    if not children:
        raise InputError(f"input chain {name} is empty; give one of its runs or fill the chain")
    if not whole_product:
        why = "search all inputs to use the whole chain"
        return [children[0]], [f"input {name} is CHAINED: using its first child {children[0]} ({why})"]
    infos = {i.name: i.type.name for i in butler.collections.query_info(children)}
    own = [c for c in children if infos.get(c) == "RUN" and c.startswith(name.rstrip("/") + "/")]
    if not own:
        raise InputError(f"input chain {name} holds no RUN of its own (named {name}/...), so pfstui cannot tell "
                         "the product from the inputs; certify from one RUN, or search all inputs")
    return own, []


def _runs_note(name: str, dt_name: str, runs: list[str], refs: list) -> str:
    """Which RUN of the chain each dataset comes from, counted (the product of a partial rerun is spread)."""
    counts = {run: sum(1 for r in refs if r.run == run) for run in runs}
    where = ", ".join(f"{n} from {run}" for run, n in counts.items() if n)
    return f"input {name} is CHAINED: the newest {dt_name} of each data ID across its {len(runs)} RUNs: {where}"


def preview_decertify(gw: ButlerGateway, collection: str, dataset_type: str, *, begin: str | None = None,
                      end: str | None = None,
                      data_ids: Iterable[Mapping[str, Any] | Sequence[str]] | None = None,
                      everything: bool = False) -> Preview:
    """What clearing [begin, end) of ``dataset_type`` in ``collection`` would do (Registry.decertify semantics).

    Ranges inside the window are removed; ranges that stick out are trimmed, or split in two when the window is
    inside them.  Without data IDs every data ID is affected, so a window or data IDs must be given (as in a
    plan), or ``everything`` to clear every range of the type on purpose.
    """
    if begin is None and end is None and not data_ids and not everything:
        raise InputError("decertify without a window or data IDs would clear every range",
                         "give --begin-date/--end-date or --id, or --all to clear them all")
    begin, end, window = validity_window(begin, end)
    dt = calibration_type(gw, dataset_type)
    with gw.session("decertify") as butler:
        ids = normalize_data_ids(butler, dt, data_ids)
        kind = gw.collection_type(collection)
        if kind is None:
            raise NotFoundError(f"collection {collection!r} does not exist; check the name (e.g. PFS/calib)")
        if kind != "CALIBRATION":
            raise InputError(f"{collection} is a {kind} collection, not CALIBRATION; decertify works on a "
                             "CALIBRATION collection (e.g. PFS/calib)")
        rows = calibration_rows(butler, dt, collection, window=window, filters=ids or None)
        if not rows:
            which = " for " + " or ".join(data_id_text(d) for d in ids) if ids else ""
            raise NothingToDoError(f"no {dt.name} validity range in {collection} overlaps {range_text(window.nsec)}"
                                   f"{which}; nothing to decertify (list them with pfstui calibs)")
        changes = []
        for a in rows:
            pieces = tuple(Association.from_timespan(a.dataset_type, a.data_id, a.run, a.dataset_id, p, a.collection)
                           for p in a.timespan().difference(window))
            kind_ = {0: "remove", 1: "trim", 2: "split"}[len(pieces)]
            changes.append(Change(kind_, before=a, after=pieces))
        counts = {k: sum(1 for c in changes if c.kind == k) for k in ("remove", "trim", "split")}
        detail = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        summary = f"decertify {dt.name} in {collection} over {range_text(window.nsec)}: {detail}"
        state = {"kind": kind, "rows": [list(a.key()) for a in rows]}
        return Preview(
            action="decertify", repo=gw.repo,
            args={"collection": collection, "dataset_type": dt.name, "begin": begin, "end": end, "data_ids": ids,
                  "everything": everything},
            fingerprint=fingerprint(state), summary=summary, changes=changes, undoable=True,
            plan={"collection": collection, "dataset_type": dt, "timespan": window},
        )
