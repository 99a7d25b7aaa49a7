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

import hashlib
import itertools
import re
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


def _key(data_id) -> tuple:
    """A data ID of any dimensions as a hashable key (the same as :meth:`Association.data_id_key`)."""
    return tuple(sorted(plain_data_id(data_id).items()))


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
    run: str | None = None,
) -> Preview:
    """What copying each ``detectorMap_candidate`` in ``collection`` to a new ``detectorMap_calib`` and
    certifying it in ``target`` would write.

    As certifyDetectorMaps.py: every candidate in the collection (all the RUNs of a chain, not the first found),
    so a camera that several RUNs hold is refused, as the script's ingest would refuse it, unless ``run`` names
    the one RUN (of ``collection``) to take the candidates from.  Each copy is the candidate's own file, copied
    by the Butler's ingest, so neither the formatter nor the Python type of a detectorMap is needed here (on
    a production host drp_stella's are not importable by pfstui).  The copies go to ``<collection>/certify``,
    or ``<collection>/certify/<stamp>`` when that run already holds a copy for one of these data IDs;
    ``stamp`` is recorded in the arguments, so apply writes the run shown.  By default it is the candidates'
    own: the time stamp of their newest RUN (pipetask's ``<chain>/<YYYYMMDDTHHMMSSZ>``), else a hash of their
    IDs, never the time of the preview: an approval gate previews a stage and its run must find the same
    change (digest) to write anything.
    """
    check_collection(target)
    check_instrument_name(instrument)
    begin, end, window = validity_window(begin, end)
    with gw.session("certify-detectormaps") as butler:
        source = _candidate_source(gw, butler, collection, run)
        target_type = gw.collection_type(target)
        if target_type is not None and target_type != "CALIBRATION":
            raise InputError(f"target {target!r} is a {target_type} collection, not CALIBRATION; "
                             "certify into a CALIBRATION collection (e.g. PFS/calib)")
        candidate_type, calib_type = gw.dataset_type(dataset_type), gw.dataset_type(output_type)
        if not calib_type.isCalibration():
            raise InputError(f"{output_type} is not a calibration dataset type in {gw.repo}, so it cannot be "
                             "certified; register it as a calibration dataset type first")
        _check_candidate_type(candidate_type, calib_type)
        refs = _candidates(butler, candidate_type, source, instrument)
        if not refs:
            raise NothingToDoError(f"No {dataset_type} datasets found in {source} for instrument {instrument}; "
                                   "check the collection and --instrument")
        files = _stored_files(butler, refs)
        keys = {_key(r.dataId) for r in refs}
        overlapping = []
        if target_type is not None:
            overlapping = [a for a in calibration_rows(butler, calib_type, target, window=window)
                           if a.data_id_key() in keys]
        stamp = stamp or _stamp_of(refs)
        certify_run, existing = _certify_run(gw, butler, calib_type, collection, keys, stamp)
        run_exists = gw.collection_type(certify_run) is not None
    blockers = _ambiguities(refs, source)
    if overlapping:
        held = ", ".join(sorted(f"{camera_text(a.data_id)} {a.range_text()}" for a in overlapping))
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
              "output_type": output_type, "begin": begin, "end": end, "stamp": stamp, "run": run},
        fingerprint=fingerprint(state), summary=f"certify {len(refs)} {output_type} (copies of the {dataset_type} "
        f"in {source}) into {target} for {span}", steps=steps, blockers=blockers, undoable=False,
        create_collection=None if target_type else target,
        plan={"refs": refs, "files": files, "calib_type": calib_type, "certify_run": certify_run,
              "timespan": window},
    )


def _candidate_source(gw: ButlerGateway, butler, collection: str, run: str | None) -> str:
    """Where the candidates are searched: ``collection``, or the one RUN of it the operator named."""
    if gw.collection_type(collection) is None:
        raise NotFoundError(f"collection {collection!r} does not exist in {gw.repo}; check the name")
    if run is None:
        return collection
    kind = gw.collection_type(run)
    if kind != "RUN":
        what = "does not exist" if kind is None else f"is a {kind} collection"
        raise InputError(f"--run {run!r} {what}; name one RUN collection of {collection}")
    runs = list(butler.collections.query(collection, flatten_chains=True))
    if run not in runs:
        raise InputError(f"RUN {run} is not in {collection}; name one of its RUNs ({', '.join(runs[:4])}"
                         f"{', ...' if len(runs) > 4 else ''})")
    return run


def _candidates(butler, candidate_type, source: str, instrument: str) -> list:
    """Every candidate in ``source`` (not only the first found for each data ID), by data ID, then in the
    chain's search order (newest first)."""
    where = {"where": "instrument = inst", "bind": {"inst": instrument}} \
        if "instrument" in candidate_type.dimensions.names else {}
    refs = butler.query_datasets(candidate_type, collections=source, find_first=False, explain=False, **where)
    order = {run: i for i, run in enumerate(butler.collections.query(source, flatten_chains=True))}
    return sorted(refs, key=lambda r: (_key(r.dataId), order.get(r.run, len(order))))


def _ambiguities(refs: list, source: str) -> list[str]:
    """One blocker line when several RUNs of ``source`` hold a candidate for the same data ID."""
    runs: dict[tuple, list[str]] = {}
    for ref in refs:
        runs.setdefault(_key(ref.dataId), []).append(ref.run)
    doubled = {k: v for k, v in runs.items() if len(v) > 1}
    if not doubled:
        return []
    key, held = next(iter(doubled.items()))
    others = f", as do {len(doubled) - 1} other data IDs" if len(doubled) > 1 else ""
    return [(f"{len(held)} RUNs of {source} hold a {refs[0].datasetType.name} for {camera_text(dict(key))} "
             f"({', '.join(held)}){others}; certifyDetectorMaps.py would refuse (ingest conflict): name the RUN "
             f"to certify with --run (e.g. --run {held[0]})")]


def _stored_files(butler, refs: list) -> dict[str, tuple[str, str]]:
    """Each candidate's one file and the formatter its datastore record names (never imported here).

    Why the record: the copy is the same bytes, so it must be read by the formatter that wrote them.
    """
    infos: dict[str, list] = {}
    for data in butler._datastore.export_records(refs).values():  # the records of the files: no public reader
        for dataset_id, tables in data.records.items():
            infos.setdefault(str(dataset_id), []).extend(i for rows in tables.values() for i in rows)
    uris = butler.get_many_uris(refs)
    out: dict[str, tuple[str, str]] = {}
    for ref in refs:
        found, primary = infos.get(str(ref.id), []), uris[ref].primaryURI
        if len(found) != 1 or found[0].component is not None or primary is None:
            raise InputError(f"{ref.datasetType.name} {camera_text(plain_data_id(ref.dataId))} in {ref.run} is "
                             f"stored as {len(found)} files, not one; pfstui copies datasets stored as one file, "
                             "as certifyDetectorMaps.py does")
        out[str(ref.id)] = (str(primary), str(found[0].formatter))
    return out


def _check_candidate_type(candidate_type, calib_type) -> None:
    """Refuse a source type whose datasets cannot become ``calib_type`` copies (``--datasetType raw``).

    Why here: a copy is the same file under the other type, so both must have the same storage class and
    dimensions; otherwise the preview would offer what apply cannot write.
    """
    mine = (candidate_type.storageClass_name, sorted(candidate_type.dimensions.names))
    wanted = (calib_type.storageClass_name, sorted(calib_type.dimensions.names))
    if mine != wanted:
        raise InputError(f"{candidate_type.name} ({mine[0]} per {', '.join(mine[1])}) cannot be copied to "
                         f"{calib_type.name} ({wanted[0]} per {', '.join(wanted[1])}); pass a detectorMap candidate "
                         "type with --datasetType (the default is detectorMap_candidate)")


#: pipetask's RUN names end in a UTC time stamp: ``<chain>/20250301T120000Z``.
_RUN_STAMP = re.compile(r"\d{8}T\d{6}Z")


def _stamp_of(refs: list) -> str:
    """The candidates' own stamp (see :func:`preview_certify_detectormaps`): deterministic for the same inputs."""
    leaves = sorted(r.run.rsplit("/", 1)[-1] for r in refs)
    if leaves and _RUN_STAMP.fullmatch(leaves[-1]):
        return leaves[-1]
    return hashlib.sha256(",".join(sorted(str(r.id) for r in refs)).encode()).hexdigest()[:12]


def _certify_run(gw: ButlerGateway, butler, calib_type, collection: str, keys: set[tuple],
                 stamp: str) -> tuple[str, set[tuple]]:
    """The RUN collection the copies go to, and the data IDs ``<collection>/certify`` already holds copies for.

    When ``<collection>/certify`` holds a copy for one of ``keys``: ``<collection>/certify/<stamp>``, or with
    ``-2``, ``-3``... when that run holds one too (the same candidates certified again)."""
    certify_run = f"{collection}/certify"
    existing = _copied(gw, butler, calib_type, certify_run)
    if not existing & keys:
        return certify_run, existing
    for n in itertools.count(1):  # ends: the repository holds finitely many runs
        stamped = f"{certify_run}/{stamp}" + (f"-{n}" if n > 1 else "")
        if not _copied(gw, butler, calib_type, stamped) & keys:
            return stamped, existing
    raise AssertionError("unreachable")  # pragma: no cover


def _copied(gw: ButlerGateway, butler, calib_type, run: str) -> set[tuple]:
    """The data IDs ``run`` holds a ``calib_type`` for (none when the run does not exist)."""
    if gw.collection_type(run) is None:
        return set()
    return {_key(r.dataId) for r in butler.query_datasets(calib_type, collections=run, explain=False)}


def _recorded_formatter(name: str, extension: str) -> type:
    """A formatter class that only carries ``name``, the formatter the copy's datastore record will name.

    Why: the Butler's ingest records the formatter of each file it takes in, and imports the one it is given
    by name.  The copy is the candidate's own file, read by the candidate's formatter (drp_stella's
    ``DetectorMapFormatter`` on the real stack), which need not be importable where pfstui runs.  Nothing is
    read or written through this class: with transfer ``copy`` the file is copied byte for byte.
    """
    class RecordedFormatter(daf_butler().FormatterV2):
        supported_extensions = frozenset({extension})
        default_extension = extension

        @classmethod
        def name(cls) -> str:
            return name

    return RecordedFormatter


def write_certify_detectormaps(butler, preview: Preview) -> tuple[str, dict[str, Any]]:
    """Copy the files and certify the copies as previewed (inside the caller's transaction): summary, effect."""
    from lsst.resources import ResourcePath

    dafb = daf_butler()
    a, p = preview.args, preview.plan
    run, target, calib_type, window = p["certify_run"], a["target"], p["calib_type"], p["timespan"]
    butler.collections.register(run, dafb.CollectionType.RUN, doc="Copies of certified detectorMaps")
    butler.collections.register(target, dafb.CollectionType.CALIBRATION)
    datasets = []
    for ref in p["refs"]:
        uri, formatter = p["files"][str(ref.id)]
        new = dafb.DatasetRef(calib_type, ref.dataId, run=run)
        path = ResourcePath(uri)
        datasets.append(dafb.FileDataset(path=path, refs=[new],
                                         formatter=_recorded_formatter(formatter, path.getExtension())))
    butler.ingest(*datasets, transfer="copy")
    new_refs = [d.refs[0] for d in datasets]
    butler.registry.certify(target, new_refs, window)
    ids = [plain_data_id(r.dataId) for r in new_refs]
    certified = {x.dataset_id for x in calibration_rows(butler, calib_type, target, data_ids=ids, window=window)}
    if certified != {str(r.id) for r in new_refs}:
        raise GatewayError(f"certify-detectormaps did not certify {target} exactly as previewed; rolled back, "
                           "nothing written — preview again")
    summary = f"certified {len(new_refs)} {calib_type.name} in {target} for {range_text(window.nsec)} (copies in {run})"
    effect = {"target": target, "run": run, "dataset_type": calib_type.name, "begin": a["begin"], "end": a["end"],
              "datasets": [{"id": str(r.id), "dataId": plain_data_id(r.dataId), "copy_of": str(old.id),
                            "from": old.run} for r, old in zip(new_refs, p["refs"], strict=True)]}
    return summary, effect
