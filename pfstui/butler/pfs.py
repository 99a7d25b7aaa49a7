"""The two PFS-specific Butler actions the calibration workflow cannot do without, as previews.

* define-profiles: what drp_stella's ``defineFiberProfilesInputs.py`` does (pfs-domain.md §3): a
  ``profiles_run`` with one ``profiles_group`` per bright/dark group, the ``profiles_visits`` join records,
  and a ``profiles_visits`` dataset per group in ``<instrument>/fiberProfilesInputs``.
* certify-detectormaps: what ``certifyDetectorMaps.py`` does: copy each ``detectorMap_candidate`` into a
  new ``detectorMap_calib`` dataset in ``<collection>/certify`` and certify it in the target CALIBRATION
  collection.

Why previews: like certify and clean, each is first computed without writing (:func:`preview_define_profiles`,
:func:`preview_certify_detectormaps`), so ``--dry-run`` prints the exact effect and every refusal comes before
anything is written.  :func:`pfstui.butler.apply.apply` then re-checks the preview and performs it in one
transaction with the PFS-specific halves below (:func:`prepare_define_profiles`, :func:`write_define_profiles`,
:func:`write_certify_detectormaps`), and journals it.  Neither is undoable by ``pfstui undo`` (no inverse is
journaled).
"""

from __future__ import annotations

import time
from typing import Any

from pfstui.butler import daf_butler
from pfstui.butler.errors import (
    GatewayError,
    InputError,
    NotFoundError,
    NothingToDoError,
)
from pfstui.butler.gateway import ButlerGateway
from pfstui.butler.preview import Preview, Removal, fingerprint, range_text
from pfstui.butler.registry import calibration_rows, dataset_sizes
from pfstui.butler.values import camera_text, plain_data_id, validity_window
from pfstui.values.names import (
    check_collection,
    check_instrument_name,
    check_profiles_run,
)
from pfstui.values.visitlist import format_integer_list, parse_integer_list

__all__ = [
    "preview_define_profiles",
    "prepare_define_profiles",
    "write_define_profiles",
    "preview_certify_detectormaps",
    "write_certify_detectormaps",
]

_PROFILES_WHERE = "instrument = inst AND profiles_run = name"


def _groups(name: str, bright: list[str], dark: list[str]) -> list[tuple[list[int], list[int]]]:
    """The (bright, dark) visit lists of each group, checked before the repository is read."""
    if not name or "/" in name or len(name) > 64:
        raise InputError(f"profiles run name {name!r} must be 1-64 characters without '/' (e.g. run18_brn)")
    if not bright:
        raise InputError("no groups given; pass --bright LIST (and --dark LIST) once per group")
    if dark and len(dark) != len(bright):
        raise InputError(
            f"Length of bright ({len(bright)}) and dark ({len(dark)}) lists do not match; "
            "give one --dark per --bright, or none at all"
        )
    groups: list[tuple[list[int], list[int]]] = []
    for i, spec in enumerate(bright):
        b = parse_integer_list(spec)
        d = parse_integer_list(dark[i]) if dark else []
        both = set(b) & set(d)
        if both:
            raise InputError(f"group {i}: visits {sorted(both)} are listed as both bright and dark")
        groups.append((b, d))
    return groups


def preview_define_profiles(gw: ButlerGateway, instrument: str, name: str, bright: list[str], dark: list[str], *,
                            update: bool = False) -> Preview:
    """What defining fiber-profiles run ``name`` from groups of bright and dark visits (list syntax) would write."""
    check_instrument_name(instrument)
    check_profiles_run(name)
    groups = _groups(name, bright, dark)
    run = f"{instrument}/fiberProfilesInputs"
    bind = {"inst": instrument, "name": name}
    with gw.session("define-profiles") as butler:
        registry = butler.registry
        if not list(registry.queryDimensionRecords("instrument", where="instrument = inst", bind={"inst": instrument})):
            raise NotFoundError(f"instrument {instrument!r} is not registered in {gw.repo}; "
                                "pass its short name (e.g. PFS)")
        known = {rec.id for rec in registry.queryDimensionRecords("visit", where="instrument = inst",
                                                                  bind={"inst": instrument})}
        missing = [v for v in sorted({v for b, d in groups for v in b + d}) if v not in known]
        if missing:
            raise NotFoundError(f"visits {format_integer_list(missing)} are not in {gw.repo} for instrument "
                                f"{instrument}; check the lists")
        existing = bool(list(registry.queryDimensionRecords("profiles_run", where=_PROFILES_WHERE, bind=bind)))
        old: set[tuple[int, int]] = set()
        blockers = []
        if existing and not update:
            blockers.append(f"profiles run {name!r} already exists; use --update to redefine it, "
                            "or choose another name")
        elif existing:
            old = {(rec.profiles_group, rec.visit)
                   for rec in registry.queryDimensionRecords("profiles_visits", where=_PROFILES_WHERE, bind=bind)}
            dropped = sorted(old - {(g, v) for g, (b, d) in enumerate(groups) for v in b + d})
            if dropped:
                blockers.append(f"--update cannot remove visits from profiles run {name!r} (would drop group/visit "
                                f"{dropped}); define a new run name instead")
        has_type = "profiles_visits" in gw.dataset_type_names()
        has_run = gw.collection_type(run) is not None
        stale = []
        if existing and update and has_type and has_run:
            stale = list(butler.query_datasets("profiles_visits", collections=run, where=_PROFILES_WHERE, bind=bind,
                                               explain=False))
        sizes = dataset_sizes(butler, stale)
    steps = _profiles_steps(instrument, name, groups, run, existing=existing, has_type=has_type, has_run=has_run)
    n_visits = sum(len(b + d) for b, d in groups)
    summary = (f"define profiles run {name} of {instrument}: {len(groups)} group(s), {n_visits} visit(s)"
               + (" (redefining it)" if existing else ""))
    state = {"existing": existing, "old": sorted(old), "stale": sorted(str(r.id) for r in stale),
             "type": has_type, "run": has_run}
    return Preview(
        action="define-profiles", repo=gw.repo,
        args={"instrument": instrument, "name": name, "bright": list(bright), "dark": list(dark),
              "update": bool(update)},
        fingerprint=fingerprint(state), summary=summary, steps=steps, blockers=blockers, undoable=False,
        removals=[Removal(run, "profiles_visits", len(stale), sum(sizes.values()))] if stale else [],
        plan={"groups": groups, "run": run, "stale": stale},
    )


def _profiles_steps(instrument: str, name: str, groups: list[tuple[list[int], list[int]]], run: str, *,
                    existing: bool, has_type: bool, has_run: bool) -> list[str]:
    steps = []
    if not has_type:
        steps.append("+ register  dataset type profiles_visits (instrument, profiles_run, profiles_group)")
    if not has_run:
        steps.append(f"+ create    RUN collection {run}")
    steps.append(f"{'~ redefine ' if existing else '+ define   '} profiles_run {name} of instrument {instrument}, "
                 f"datasets in {run}")
    for g, (b, d) in enumerate(groups):
        steps.append(f"+ group {g}   bright {format_integer_list(b)}, dark {format_integer_list(d) or '-'}: "
                     f"{len(b + d)} visit record(s) and its profiles_visits dataset")
    return steps


def prepare_define_profiles(butler, preview: Preview) -> None:
    """Register the ``profiles_visits`` dataset type and the RUN collection (both idempotent).

    Registering a dataset type creates tables, which cannot happen inside a transaction, so :func:`apply` calls
    this before the one it writes the records in; both registrations are harmless on their own.
    """
    dafb = daf_butler()
    dataset_type = dafb.DatasetType("profiles_visits", ("instrument", "profiles_run", "profiles_group"),
                               "StructuredDataDict", universe=butler.dimensions)
    butler.registry.registerDatasetType(dataset_type)
    butler.collections.register(preview.plan["run"], dafb.CollectionType.RUN, doc="Fiber-profiles run definitions")


def write_define_profiles(butler, preview: Preview) -> tuple[str, dict[str, Any]]:
    """The records and datasets of a define-profiles preview (inside the caller's transaction): summary, effect."""
    instrument, name, update = preview.args["instrument"], preview.args["name"], preview.args["update"]
    groups, run, stale = preview.plan["groups"], preview.plan["run"], preview.plan["stale"]
    registry = butler.registry
    written = []
    registry.syncDimensionData("profiles_run", {"instrument": instrument, "run": name}, update=update)
    if stale:
        butler.pruneDatasets(stale, disassociate=True, unstore=True, purge=True)
    for g, (b, d) in enumerate(groups):
        registry.syncDimensionData(
            "profiles_group", {"instrument": instrument, "profiles_run": name, "group_num": g}, update=update
        )
        for v in b + d:
            registry.syncDimensionData(
                "profiles_visits",
                {"instrument": instrument, "profiles_run": name, "profiles_group": g, "visit": v},
                update=update,
            )
        written.append(butler.put({"bright": b, "dark": d}, "profiles_visits", instrument=instrument,
                                  profiles_run=name, profiles_group=g, run=run))
    summary = (f"defined profiles run {name} of {instrument}: {len(groups)} group(s), "
               f"{sum(len(b + d) for b, d in groups)} visit(s), datasets in {run}")
    effect = {"run": run, "profiles_run": name, "groups": [{"bright": b, "dark": d} for b, d in groups],
              "replaced": [str(r.id) for r in stale], "datasets": [str(r.id) for r in written]}
    return summary, effect


def _camera(data_id) -> str:
    return f"{data_id['arm']}{data_id['spectrograph']}"


def preview_certify_detectormaps(
    gw: ButlerGateway,
    collection: str,
    target: str,
    *,
    instrument: str = "PFS",
    dataset_type: str = "detectorMap_candidate",
    output_type: str = "detectorMap_calib",
    begin: str | None = None,
    end: str | None = None,
    stamp: str | None = None,
) -> Preview:
    """What copying each ``detectorMap_candidate`` in ``collection`` to a new ``detectorMap_calib`` and
    certifying it in ``target`` would write.

    Where a chain holds several candidates for one camera, the newest (first in the chain's search order)
    is used: certifying several for the same camera and range could only conflict.  The copies go to
    ``<collection>/certify``, or ``<collection>/certify/<stamp>`` when that run already holds a copy for one of
    these cameras; ``stamp`` (UTC now by default) is recorded in the arguments, so apply writes the run shown.
    """
    check_collection(target)
    check_instrument_name(instrument)
    begin, end, window = validity_window(begin, end)
    stamp = stamp or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    with gw.session("certify-detectormaps") as butler:
        if gw.collection_type(collection) is None:
            raise NotFoundError(f"collection {collection!r} does not exist in {gw.repo}; check the name")
        target_type = gw.collection_type(target)
        if target_type is not None and target_type != "CALIBRATION":
            raise InputError(f"target {target!r} is a {target_type} collection, not CALIBRATION; "
                             "certify into a CALIBRATION collection (e.g. PFS/calib)")
        candidate_type, calib_type = gw.dataset_type(dataset_type), gw.dataset_type(output_type)
        if not calib_type.isCalibration():
            raise InputError(f"{output_type} is not a calibration dataset type in {gw.repo}, so it cannot be "
                             "certified; register it as a calibration dataset type first")
        _check_candidate_type(candidate_type, calib_type)
        refs = list(butler.query_datasets(candidate_type, collections=collection, find_first=True, explain=False,
                                          where="instrument = inst", bind={"inst": instrument}))
        if not refs:
            raise NothingToDoError(f"No {dataset_type} datasets found in {collection} for instrument {instrument}; "
                                   "check the collection and --instrument")
        cameras = {_camera(r.dataId) for r in refs}
        overlapping = []
        if target_type is not None:
            overlapping = [a for a in calibration_rows(butler, calib_type, target, window=window)
                           if _camera(a.data_id) in cameras]
        certify_run, existing = _certify_run(gw, butler, calib_type, collection, cameras, stamp)
        run_exists = gw.collection_type(certify_run) is not None
    blockers = []
    if overlapping:
        held = ", ".join(sorted(f"{_camera(a.data_id)} {a.range_text()}" for a in overlapping))
        blockers.append(f"{output_type} is already certified in {target} over an overlapping range for {held}; "
                        "decertify that range first (pfstui decertify)")
    span = range_text(window.nsec)
    steps = [f"+ copy      {len(refs)} {dataset_type} to {output_type} in RUN collection {certify_run}"
             + ("" if run_exists else " (created)")]
    steps += [f"+ certify   {output_type} {camera_text(plain_data_id(r.dataId))}  {span}  (copy of "
              f"…{str(r.id)[-8:]} from {r.run})" for r in refs]
    state = {"refs": sorted(str(r.id) for r in refs), "target_type": target_type, "existing": sorted(existing),
             "overlapping": [list(a.key()) for a in overlapping], "run": run_exists}
    return Preview(
        action="certify-detectormaps", repo=gw.repo,
        args={"collection": collection, "target": target, "instrument": instrument, "dataset_type": dataset_type,
              "output_type": output_type, "begin": begin, "end": end, "stamp": stamp},
        fingerprint=fingerprint(state), summary=f"certify {len(refs)} {output_type} (copies of the {dataset_type} "
        f"in {collection}) into {target} for {span}", steps=steps, blockers=blockers, undoable=False,
        create_collection=None if target_type else target,
        plan={"refs": refs, "calib_type": calib_type, "certify_run": certify_run, "timespan": window},
    )


def _check_candidate_type(candidate_type, calib_type) -> None:
    """Refuse a source type whose datasets cannot become ``calib_type`` copies (``--datasetType raw``).

    Why here: the copy is a get + put, so a raw (another storage class, one per exposure) failed deep inside
    apply with the storage classes' TypeError ("unexpected error") after the preview had offered it.
    """
    mine = (candidate_type.storageClass_name, sorted(candidate_type.dimensions.names))
    wanted = (calib_type.storageClass_name, sorted(calib_type.dimensions.names))
    if mine != wanted:
        raise InputError(f"{candidate_type.name} ({mine[0]} per {', '.join(mine[1])}) cannot be copied to "
                         f"{calib_type.name} ({wanted[0]} per {', '.join(wanted[1])}); pass a detectorMap candidate "
                         "type with --datasetType (the default is detectorMap_candidate)")


def _certify_run(gw: ButlerGateway, butler, calib_type, collection: str, cameras: set[str],
                 stamp: str) -> tuple[str, set[str]]:
    """The RUN collection the copies go to, and the cameras ``<collection>/certify`` already holds copies for."""
    certify_run = f"{collection}/certify"
    existing: set[str] = set()
    if gw.collection_type(certify_run) is not None:
        existing = {_camera(r.dataId) for r in butler.query_datasets(calib_type, collections=certify_run,
                                                                     explain=False)}
    if existing & cameras:
        certify_run = f"{certify_run}/{stamp}"
    return certify_run, existing


def write_certify_detectormaps(butler, preview: Preview) -> tuple[str, dict[str, Any]]:
    """Copy and certify as previewed (inside the caller's transaction), checking the certification: summary, effect."""
    dafb = daf_butler()
    a, p = preview.args, preview.plan
    run, target, calib_type, window = p["certify_run"], a["target"], p["calib_type"], p["timespan"]
    butler.collections.register(run, dafb.CollectionType.RUN, doc="Copies of certified detectorMaps")
    butler.collections.register(target, dafb.CollectionType.CALIBRATION)
    new_refs = []
    for ref in p["refs"]:
        data_id = {k: ref.dataId[k] for k in ("instrument", "arm", "spectrograph")}
        new_refs.append(butler.put(butler.get(ref), calib_type, data_id, run=run))
    butler.registry.certify(target, new_refs, window)
    ids = [plain_data_id(r.dataId) for r in new_refs]
    certified = {x.dataset_id for x in calibration_rows(butler, calib_type, target, data_ids=ids, window=window)}
    if certified != {str(r.id) for r in new_refs}:
        raise GatewayError(f"certify-detectormaps did not certify {target} exactly as previewed; rolled back, "
                           "nothing written — preview again")
    summary = f"certified {len(new_refs)} {calib_type.name} in {target} for {range_text(window.nsec)} (copies in {run})"
    effect = {"target": target, "run": run, "dataset_type": calib_type.name, "begin": a["begin"], "end": a["end"],
              "datasets": [{"id": str(r.id), "dataId": plain_data_id(r.dataId)} for r in new_refs]}
    return summary, effect
