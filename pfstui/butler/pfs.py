"""The two PFS-specific Butler actions the calibration workflow cannot do without.

* `define_profiles`: what drp_stella's ``defineFiberProfilesInputs.py`` does (pfs-domain.md §3): a
  ``profiles_run`` with one ``profiles_group`` per bright/dark group, the ``profiles_visits`` join records,
  and a ``profiles_visits`` dataset per group in ``<instrument>/fiberProfilesInputs``.
* `certify_detector_maps`: what ``certifyDetectorMaps.py`` does: copy each ``detectorMap_candidate`` into a
  new ``detectorMap_calib`` dataset in ``<collection>/certify`` and certify it in the target CALIBRATION
  collection.

Both validate everything they can before writing and write inside one Butler transaction, so bad
arguments leave the repository untouched.  The Butler is imported lazily (it costs over a second).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pfstui.errors import UserError
from pfstui.values.tai import make_timespan
from pfstui.values.visitlist import format_integer_list, parse_integer_list


class ActionError(UserError):
    """An action was refused before anything was written; the message says why and what to do."""


@dataclass
class ActionResult:
    action: str
    summary: list[str]
    effect: dict[str, Any] = field(default_factory=dict)


def _open_butler(repo: str, writeable: bool = True):
    from lsst.daf.butler import Butler

    try:
        return Butler.from_config(repo, writeable=writeable)
    except Exception as exc:  # noqa: BLE001 - the Butler raises many types for a bad path
        raise ActionError(f"cannot open Butler repository {repo!r}: {exc}") from None


# --- define-profiles ---------------------------------------------------------------------------------------
def define_profiles(
    repo: str,
    instrument: str,
    name: str,
    bright: list[str],
    dark: list[str],
    *,
    update: bool = False,
) -> ActionResult:
    """Define fiber-profiles run ``name`` from groups of bright and dark visits (Gen2 list syntax)."""
    if not name or "/" in name or len(name) > 64:
        raise ActionError(f"profiles run name {name!r} must be 1-64 characters without '/' (e.g. run18_brn)")
    if not bright:
        raise ActionError("no groups given; pass --bright LIST (and --dark LIST) once per group")
    if dark and len(dark) != len(bright):
        raise ActionError(
            f"Length of bright ({len(bright)}) and dark ({len(dark)}) lists do not match; "
            "give one --dark per --bright, or none at all"
        )
    groups: list[tuple[list[int], list[int]]] = []
    for i, spec in enumerate(bright):
        b = parse_integer_list(spec)
        d = parse_integer_list(dark[i]) if dark else []
        both = set(b) & set(d)
        if both:
            raise ActionError(f"group {i}: visits {sorted(both)} are listed as both bright and dark")
        groups.append((b, d))

    from lsst.daf.butler import CollectionType, DatasetType

    run = f"{instrument}/fiberProfilesInputs"
    with _open_butler(repo) as butler:
        registry = butler.registry
        if not list(registry.queryDimensionRecords("instrument", where="instrument = inst", bind={"inst": instrument})):
            raise ActionError(f"instrument {instrument!r} is not registered in {repo}; pass its short name (e.g. PFS)")
        wanted = sorted({v for b, d in groups for v in b + d})
        known = {
            rec.id
            for rec in registry.queryDimensionRecords("visit", where="instrument = inst", bind={"inst": instrument})
        }
        missing = [v for v in wanted if v not in known]
        if missing:
            raise ActionError(
                f"visits {format_integer_list(missing)} are not in {repo} for instrument {instrument}; check the lists"
            )
        existing = list(
            registry.queryDimensionRecords(
                "profiles_run", where="instrument = inst AND profiles_run = name", bind={"inst": instrument, "name": name}
            )
        )
        if existing and not update:
            raise ActionError(f"profiles run {name!r} already exists; use --update to redefine it, or choose another name")
        if existing:
            old = {
                (rec.profiles_group, rec.visit)
                for rec in registry.queryDimensionRecords(
                    "profiles_visits", where="instrument = inst AND profiles_run = name",
                    bind={"inst": instrument, "name": name},
                )
            }
            new = {(g, v) for g, (b, d) in enumerate(groups) for v in b + d}
            dropped = sorted(old - new)
            if dropped:
                raise ActionError(
                    f"--update cannot remove visits from profiles run {name!r} (would drop group/visit {dropped}); "
                    "define a new run name instead"
                )
        dataset_type = DatasetType(
            "profiles_visits", ("instrument", "profiles_run", "profiles_group"), "StructuredDataDict",
            universe=butler.dimensions,
        )
        # Registering a dataset type creates tables, which cannot happen inside a transaction; both
        # registrations are idempotent and harmless on their own.
        registry.registerDatasetType(dataset_type)
        butler.collections.register(run, CollectionType.RUN, doc="Fiber-profiles run definitions")
        with butler.transaction():
            registry.syncDimensionData("profiles_run", {"instrument": instrument, "run": name}, update=update)
            if existing:
                stale = list(butler.query_datasets("profiles_visits", collections=run,
                                                   where="instrument = inst AND profiles_run = name",
                                                   bind={"inst": instrument, "name": name}, explain=False))
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
                butler.put({"bright": b, "dark": d}, dataset_type, instrument=instrument, profiles_run=name,
                           profiles_group=g, run=run)
    summary = [f"Registering run {name} ..."]
    for g, (b, d) in enumerate(groups):
        summary.append(f"Registering group {g} ...")
        summary.append(f"Registering visits for group {g}: bright {b} dark {d}")
    return ActionResult(
        action="define-profiles",
        summary=summary,
        effect={"run": run, "profiles_run": name, "groups": [{"bright": b, "dark": d} for b, d in groups]},
    )


# --- certify-detectormaps ----------------------------------------------------------------------------------
def certify_detector_maps(
    repo: str,
    collection: str,
    target: str,
    *,
    instrument: str = "PFS",
    dataset_type: str = "detectorMap_candidate",
    output_type: str = "detectorMap_calib",
    begin: str | None = None,
    end: str | None = None,
) -> ActionResult:
    """Copy each ``detectorMap_candidate`` in ``collection`` to a new ``detectorMap_calib`` and certify it.

    Where a chain holds several candidates for one camera, the newest (first in the chain's search order)
    is used: certifying several for the same camera and range could only conflict.
    """
    timespan = make_timespan(begin, end)
    from lsst.daf.butler import CollectionType

    with _open_butler(repo) as butler:
        if _info(butler, collection) is None:
            raise ActionError(f"collection {collection!r} does not exist in {repo}; check the name")
        target_info = _info(butler, target)
        if target_info is not None and target_info.type != CollectionType.CALIBRATION:
            raise ActionError(
                f"target {target!r} is a {target_info.type.name} collection, not CALIBRATION; "
                "certify into a CALIBRATION collection (e.g. PFS/calib)"
            )
        try:
            candidate_type = butler.get_dataset_type(dataset_type)
            calib_type = butler.get_dataset_type(output_type)
        except Exception as exc:  # noqa: BLE001 - MissingDatasetTypeError and friends
            raise ActionError(f"dataset type missing in {repo}: {exc}") from None
        if not calib_type.isCalibration():
            raise ActionError(f"{output_type} is not a calibration dataset type in {repo}")
        refs = list(
            butler.query_datasets(candidate_type, collections=collection, find_first=True, explain=False,
                                  where="instrument = inst", bind={"inst": instrument})
        )
        if not refs:
            raise ActionError(f"No {dataset_type} datasets found in {collection} for instrument {instrument}.")
        conflicts = _overlapping(butler, target, output_type, refs, timespan) if target_info is not None else []
        if conflicts:
            raise ActionError(
                f"{output_type} is already certified in {target} over an overlapping range for "
                f"{', '.join(conflicts)}; decertify that range first (pfstui decertify)"
            )
        certify_run = f"{collection}/certify"
        existing = set()
        if _info(butler, certify_run) is not None:
            existing = {
                _camera(r.dataId)
                for r in butler.query_datasets(calib_type, collections=certify_run, explain=False)
            }
        if existing & {_camera(r.dataId) for r in refs}:
            certify_run = f"{collection}/certify/{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        lines = []
        new_refs = []
        with butler.transaction():
            butler.collections.register(certify_run, CollectionType.RUN, doc="Copies of certified detectorMaps")
            butler.collections.register(target, CollectionType.CALIBRATION)
            for ref in refs:
                lines.append(f"Ingesting {_camera(ref.dataId)} from {ref.run} ...")
                obj = butler.get(ref)
                data_id = {k: ref.dataId[k] for k in ("instrument", "arm", "spectrograph")}
                new_refs.append(butler.put(obj, calib_type, data_id, run=certify_run))
            lines.append(f"Certifying newly-ingested {output_type} datasets...")
            butler.registry.certify(target, new_refs, timespan)
    return ActionResult(
        action="certify-detectormaps",
        summary=lines + [f"Certified {len(new_refs)} {output_type} in {target} for {timespan}"],
        effect={
            "target": target,
            "run": certify_run,
            "dataset_type": output_type,
            "begin": begin,
            "end": end,
            "datasets": [{"id": str(r.id), "dataId": _plain(r.dataId)} for r in new_refs],
        },
    )


def _info(butler, name: str):
    """CollectionInfo of ``name`` (taken literally, never as a pattern), or None when it does not exist."""
    from lsst.daf.butler.registry import MissingCollectionError

    try:
        return butler.collections.get_info(name)
    except MissingCollectionError:
        return None


def _camera(data_id) -> str:
    return f"{data_id['arm']}{data_id['spectrograph']}"


def _plain(data_id) -> dict[str, Any]:
    return {k: data_id[k] for k in data_id.mapping} if hasattr(data_id, "mapping") else dict(data_id)


def _overlapping(butler, target: str, dataset_type: str, refs, timespan) -> list[str]:
    cameras = {_camera(r.dataId) for r in refs}
    found = []
    for assoc in butler.registry.queryDatasetAssociations(dataset_type, collections=[target]):
        if assoc.timespan is not None and assoc.timespan.overlaps(timespan) and _camera(assoc.ref.dataId) in cameras:
            found.append(f"{_camera(assoc.ref.dataId)} {assoc.timespan}")
    return sorted(found)
