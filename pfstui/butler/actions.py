"""Safe Butler writes: certify, decertify, clean, remove-runs, remove-collections, and undo — each preview → apply.

Why: certification edits the shared calibration registry that every science reduction reads, and the existing
tools print nothing on success, have no dry run and raise ``ConflictingDefinitionError`` only after the fact.
Here every action is split in two:

* ``preview_*`` computes, without writing, exactly what will change — associations added, trimmed
  (old → new range), split or removed; datasets, files and bytes to delete; conflicts and other blockers — and a
  *fingerprint* of the registry state it was computed from.
* :func:`apply` re-computes the preview inside one registry transaction (``BEGIN IMMEDIATE`` on SQLite, so
  no other writer can slip in), refuses if the fingerprint moved (:class:`StalePreviewError`) or anything
  blocks it, performs the write, checks that the registry changed *exactly* as previewed (otherwise the
  transaction is rolled back), and journals the action with its exact effect and its inverse before the commit.

Clean and remove delete files and cannot be undone; they are re-checked just before the write and the Butler's
own removal (one registry transaction per 50,000 datasets, files deleted after the commit) is used, deleting
exactly the datasets the preview listed.

Undo (:func:`preview_undo`) works from a journal entry: undo of a certify decertifies exactly the ranges it
added; undo of a decertify re-certifies exactly the ranges it removed (same datasets), removing the trimmed or
split pieces first; the undo is journaled too (and can itself be undone).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pfstui.butler.gateway import (
    Association,
    ButlerGateway,
    CollectionRow,
    GatewayError,
    NotFoundError,
    data_id_text,
    plain_data_id,
)
from pfstui.infra.journal import Journal, JournalEntry, default_journal
from pfstui.values.tai import DateError, check_tai, make_timespan

__all__ = [
    "InputError",
    "ConflictError",
    "StalePreviewError",
    "NothingToDoError",
    "UndoError",
    "Change",
    "Conflict",
    "Removal",
    "Preview",
    "AppliedAction",
    "parse_data_id",
    "preview_certify",
    "preview_decertify",
    "preview_clean",
    "preview_remove_runs",
    "preview_remove_collections",
    "preview_undo",
    "apply",
    "find_entry",
    "JOURNAL_SCHEMA",
]

#: Version of the journal entries written here (the ``schema`` key of each entry).
JOURNAL_SCHEMA = 1
UNDOABLE_ACTIONS = frozenset({"certify", "decertify", "undo"})
DELETING_ACTIONS = frozenset({"clean", "remove-runs", "remove-collections"})


# --- errors --------------------------------------------------------------------------------------------------
class InputError(GatewayError):
    """Bad arguments (dates, data IDs, collection of the wrong type); nothing was written."""


class ConflictError(GatewayError):
    """Apply was refused because the preview has conflicts or other blockers; nothing was written."""


class StalePreviewError(GatewayError):
    """The registry changed between preview and apply; nothing was written."""


class NothingToDoError(GatewayError):
    """The action matches nothing (empty glob, no datasets, no validity range in the window)."""


class UndoError(GatewayError):
    """A journal entry cannot be undone; the message says why."""


# --- preview model -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """One association change: ``add`` | ``trim`` | ``split`` | ``remove`` | ``unchanged``."""

    kind: str
    before: Association | None = None
    after: tuple[Association, ...] = ()

    def text(self) -> str:
        a = self.before or self.after[0]
        head = f"{a.dataset_type} {a.camera()}"
        if self.kind == "add":
            return f"+ add       {head}  {a.range_text()}  (dataset …{a.dataset_id[-8:]}, run {a.run})"
        if self.kind == "unchanged":
            return f"= unchanged {head}  {a.range_text()}  (already certified; left as is)"
        if self.kind == "remove":
            return f"- remove    {head}  {a.range_text()}  (dataset …{a.dataset_id[-8:]}, run {a.run})"
        new = " + ".join(p.range_text() for p in self.after)
        sym = "~ trim     " if self.kind == "trim" else "/ split    "
        return f"{sym}{head}  {self.before.range_text()} -> {new}  (dataset …{a.dataset_id[-8:]})"


@dataclass(frozen=True)
class Conflict:
    """An incoming range overlapping a range already held for the same data ID."""

    wanted: Association
    existing: Association

    def text(self) -> str:
        same = self.wanted.dataset_id == self.existing.dataset_id
        who = "the same dataset" if same else f"dataset …{self.existing.dataset_id[-8:]} (run {self.existing.run})"
        return (f"CONFLICT    {self.wanted.dataset_type} {self.wanted.camera()}: {self.wanted.range_text()} overlaps "
                f"{self.existing.range_text()} held by {who}")


@dataclass(frozen=True)
class Removal:
    """Datasets of one type in one RUN collection that will be deleted (registry entries and files)."""

    run: str
    dataset_type: str
    count: int
    bytes: int


@dataclass
class Preview:
    """Exactly what an action will change, and the fingerprint of the state it was computed from."""

    action: str
    repo: str
    args: dict[str, Any]
    fingerprint: str
    summary: str
    changes: list[Change] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    removals: list[Removal] = field(default_factory=list)
    collections: list[CollectionRow] = field(default_factory=list)  # collections that will be removed
    unlinks: list[tuple[str, str]] = field(default_factory=list)  # (parent chain, child) links removed
    blockers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    undoable: bool = False
    create_collection: str | None = None
    plan: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def blocked(self) -> bool:
        return bool(self.conflicts or self.blockers)

    @property
    def effective_changes(self) -> list[Change]:
        return [c for c in self.changes if c.kind != "unchanged"]

    @property
    def is_noop(self) -> bool:
        return not (self.effective_changes or self.removals or self.collections or self.unlinks
                    or self.create_collection)

    @property
    def removed_associations(self) -> list[Association]:
        return [c.before for c in self.changes if c.kind in ("remove", "trim", "split") and c.before is not None]

    @property
    def added_associations(self) -> list[Association]:
        return [a for c in self.changes if c.kind in ("add", "trim", "split") for a in c.after]

    @property
    def total_datasets(self) -> int:
        return sum(r.count for r in self.removals)

    @property
    def total_bytes(self) -> int:
        return sum(r.bytes for r in self.removals)

    def blocker_text(self) -> str:
        """One line saying why apply is refused (empty when it is not)."""
        parts = []
        if self.conflicts:
            n = len(self.conflicts)
            c = self.conflicts[0]
            parts.append(f"{n} conflict{'s' if n != 1 else ''} ({c.wanted.camera()}: {c.wanted.range_text()} overlaps "
                         f"{c.existing.range_text()}); decertify the overlapping range first or choose other dates")
        parts.extend(self.blockers)
        return "; ".join(parts)

    def lines(self) -> list[str]:
        """The preview as text, as the CLI prints it and the UI shows it."""
        out = [self.summary]
        out += [f"  note: {n}" for n in self.notes]
        if self.create_collection:
            out.append(f"  + create CALIBRATION collection {self.create_collection}")
        for c in self.changes:
            out.append("  " + c.text())
        for c in self.conflicts:
            out.append("  " + c.text())
        for r in self.removals:
            out.append(f"  - delete    {r.count} {r.dataset_type} in {r.run} ({_human_bytes(r.bytes)})")
        if self.removals:
            out.append(f"  total: {self.total_datasets} datasets, {_human_bytes(self.total_bytes)} of files")
        for parent, child in self.unlinks:
            out.append(f"  - unlink    {child} from chain {parent}")
        for row in self.collections:
            out.append(f"  - remove    {row.type} collection {row.name}")
        for b in self.blockers:
            out.append(f"  BLOCKED: {b}")
        if self.blocked:
            out.append("  Nothing will be written until the problems above are fixed.")
        elif self.is_noop:
            out.append("  Nothing to do.")
        elif not self.undoable:
            out.append("  This cannot be undone: datasets, files or collections are deleted for good.")
        else:
            out.append("  Undoable: pfstui undo <journal entry> restores the previous validity ranges.")
        return out


@dataclass
class AppliedAction:
    """What :func:`apply` did: the journal entry (None when nothing had to change) and the effect."""

    action: str
    summary: str
    effect: dict[str, Any]
    entry: JournalEntry | None
    preview: Preview

    @property
    def entry_id(self) -> str | None:
        return self.entry.id if self.entry is not None else None


# --- input helpers -------------------------------------------------------------------------------------------
def parse_data_id(tokens: Sequence[str] | str) -> dict[str, str]:
    """``["instrument=PFS", "arm=r", "spectrograph=2"]`` (one ``--id``) as a dict of strings."""
    if isinstance(tokens, str):
        tokens = tokens.split()
    if not tokens:
        raise InputError("--id needs KEY=VALUE tokens, e.g. --id instrument=PFS arm=r spectrograph=2")
    out: dict[str, str] = {}
    for tok in tokens:
        key, sep, value = str(tok).partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise InputError(f"bad data ID token {tok!r}; write KEY=VALUE, "
                             "e.g. --id instrument=PFS arm=r spectrograph=2")
        if key in out and out[key] != value:
            raise InputError(f"data ID gives {key} twice ({out[key]} and {value}); give each key once per --id")
        out[key] = value
    return out


def _timespan(begin: str | None, end: str | None):
    """Check TAI dates (open when None/empty) and build the Timespan; refuses dates the Butler would clamp."""
    try:
        b, e = check_tai(begin, "begin date"), check_tai(end, "end date")
        for text, what in ((b, "begin"), (e, "end")):
            if text is not None:
                when = datetime.fromisoformat(text.replace(" ", "T"))
                if not datetime(1970, 1, 1) <= when < datetime(2100, 1, 1):
                    raise InputError(f"{what} date {text} is outside the Butler's range 1970-01-01..2100-01-01; "
                                     f"omit --{what}-date for an open bound")
        return b, e, make_timespan(b, e)
    except DateError as exc:
        raise InputError(str(exc)) from None


def _calibration_type(gw: ButlerGateway, name: str):
    dt = gw.dataset_type(name)
    if not dt.isCalibration():
        calibs = ", ".join(gw.calibration_dataset_type_names()) or "none"
        raise InputError(f"{name} is not a calibration dataset type, so it cannot be certified; "
                         f"calibration types here: {calibs}")
    return dt


def _normalize_data_ids(butler, dt, data_ids: Iterable[Mapping[str, Any] | Sequence[str]] | None) -> list[dict]:
    """Validate ``--id`` data IDs against ``dt``'s dimensions and cast values to the dimension key types."""
    out: list[dict] = []
    allowed = list(dt.dimensions.names)
    required = list(dt.dimensions.required)
    governors = set(dt.dimensions.governors)
    for raw in data_ids or ():
        d = parse_data_id(raw) if not isinstance(raw, Mapping) else dict(raw)
        if not d:
            raise InputError("empty data ID; give KEY=VALUE tokens, e.g. --id instrument=PFS arm=r spectrograph=2")
        clean: dict[str, Any] = {}
        for key, value in d.items():
            if key not in allowed:
                raise InputError(f"data ID key {key!r} is not a dimension of {dt.name} ({', '.join(required)}); "
                                 "use those keys")
            ptype = butler.dimensions[key].primaryKey.getPythonType()
            try:
                clean[key] = value if isinstance(value, ptype) else ptype(value)
            except (TypeError, ValueError):
                raise InputError(f"data ID value {key}={value!r} is not a {ptype.__name__}; "
                                 "e.g. --id instrument=PFS arm=r spectrograph=2") from None
        missing = sorted(g for g in governors if g not in clean)
        if missing and any(k not in governors for k in clean):
            raise InputError(f"data ID {data_id_text(clean)} does not name the {missing[0]}; "
                             f"add {missing[0]}=... (e.g. instrument=PFS)")
        ordered = {k: clean[k] for k in allowed if k in clean}
        if ordered not in out:
            out.append(ordered)
    return out


def _same_repo(a: str, b: str) -> bool:
    """Whether two repository strings name the same repository (symlinks and relative paths resolved)."""
    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _fingerprint(state: Any) -> str:
    text = json.dumps(state, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _range_text(nsec: tuple[int, int]) -> str:
    probe = Association.from_nsec("", {}, "", "", nsec)
    return probe.range_text()


# --- registry reads shared by previews and apply -------------------------------------------------------------
_FIELDS = {"dataset_id", "run", "collection", "timespan"}


def _rows(butler, dt, collection: str, *, data_ids: list[dict] | None = None, window=None,
          filters: list[dict] | None = None) -> list[Association]:
    """Associations of ``dt`` in one CALIBRATION collection.

    ``data_ids``: exact full data IDs (uploaded); ``filters``: partial data IDs, OR-ed; ``window``: only rows
    overlapping this Timespan.
    """
    from lsst.daf.butler import DataCoordinate

    from pfstui.butler.gateway import _association

    if data_ids is not None and not data_ids:
        return []
    found: dict[tuple, Association] = {}
    for flt in (filters or [None]):
        with butler.query() as q:
            q = q.join_dataset_search(dt, [collection])
            if data_ids is not None:
                q = q.join_data_coordinates(
                    [DataCoordinate.standardize(d, dimensions=dt.dimensions) for d in data_ids])
            if flt:
                q = q.where(flt)
            if window is not None:
                q = q.where(q.expression_factory[dt.name].timespan.overlaps(window))
            res = q.general(dt.dimensions, dataset_fields={dt.name: _FIELDS}, find_first=False)
            for row in res.iter_tuples(dt):
                a = _association(dt.name, row)
                found[a.key()] = a
    return sorted(found.values(), key=lambda a: (a.data_id_key(), a.nsec))


def _sizes(butler, refs) -> dict[str, int]:
    """Bytes on disk of each dataset (all its files); a missing file counts 0."""
    out: dict[str, int] = {}
    if not refs:
        return out
    for ref, uris in butler.get_many_uris(refs).items():
        total = 0
        for uri in [uris.primaryURI, *uris.componentURIs.values()]:
            if uri is None:
                continue
            try:
                total += int(uri.size())
            except (FileNotFoundError, OSError):
                pass
        out[str(ref.id)] = total
    return out


def _certified_elsewhere(butler, refs) -> list[Association]:
    """Associations in any CALIBRATION collection that hold one of ``refs`` (deleting it would decertify it)."""
    from lsst.daf.butler import CollectionType

    by_type: dict[str, set[str]] = {}
    types = {}
    for ref in refs:
        if ref.datasetType.isCalibration():
            by_type.setdefault(ref.datasetType.name, set()).add(str(ref.id))
            types[ref.datasetType.name] = ref.datasetType
    if not by_type:
        return []
    calibs = butler.collections.query("*", collection_types={CollectionType.CALIBRATION})
    out = []
    for name, ids in by_type.items():
        dids = [dict(k) for k in sorted({tuple(plain_data_id(r.dataId).items()) for r in refs
                                         if r.datasetType.name == name})]
        for coll in calibs:
            out += [a for a in _rows(butler, types[name], coll, data_ids=dids) if a.dataset_id in ids]
    return out


def _run_matches(gw: ButlerGateway, butler, glob: str) -> list[str]:
    """RUN collections matching ``glob`` (butlerCleanRun.py semantics: only RUN collections match)."""
    from lsst.daf.butler import CollectionType, MissingCollectionError

    try:
        runs = sorted(butler.collections.query(glob, collection_types={CollectionType.RUN}, include_chains=True))
    except MissingCollectionError:
        runs = []
    if not runs:
        kind = gw.collection_type(glob)
        if kind is not None:
            raise NothingToDoError(f"{glob} is a {kind} collection and only RUN collections match; "
                                   f"use a glob such as '{glob.rstrip('/')}/*'")
        raise NothingToDoError(f"no RUN collection matches {glob!r}; check the glob (e.g. 'u/me/bias/*')")
    return runs


# --- certify -------------------------------------------------------------------------------------------------
def preview_certify(gw: ButlerGateway, input_collection: str, target: str, dataset_type: str, *,
                    begin: str | None = None, end: str | None = None,
                    data_ids: Iterable[Mapping[str, Any] | Sequence[str]] | None = None,
                    search_all_inputs: bool = False) -> Preview:
    """What certifying ``dataset_type`` from ``input_collection`` into ``target`` over [begin, end) would do.

    As ``butler certify-calibrations``: a CHAINED input means its first child unless ``search_all_inputs``; the
    search is find-first; the target is created as CALIBRATION when missing.  As butlerCertify.py: each data ID
    (``--id``) is searched separately and the results joined.
    """
    begin, end, window = _timespan(begin, end)
    dt = _calibration_type(gw, dataset_type)

    with gw.session("certify") as butler:
        ids = _normalize_data_ids(butler, dt, data_ids)
        notes: list[str] = []
        in_type = gw.collection_type(input_collection)
        if in_type is None:
            raise NotFoundError(f"input collection {input_collection!r} does not exist; check the name "
                                "(the -o output of pipetask run)")
        if in_type == "CALIBRATION":
            raise InputError(f"input {input_collection} is a CALIBRATION collection; certify from the RUN or "
                             "CHAINED output of pipetask run")
        search = input_collection
        if in_type == "CHAINED" and not search_all_inputs:
            children = butler.collections.get_info(input_collection).children
            if not children:
                raise InputError(f"input chain {input_collection} is empty; give one of its runs or fill the chain")
            search = children[0]
            notes.append(f"input {input_collection} is CHAINED: using its first child {search} "
                         "(search all inputs to use the whole chain)")
        target_type = gw.collection_type(target)
        if target_type is not None and target_type != "CALIBRATION":
            raise InputError(f"target {target} is a {target_type} collection, not CALIBRATION; certify into a "
                             "CALIBRATION collection (e.g. PFS/calib)")
        refs: dict[str, Any] = {}
        for flt in (ids or [None]):
            with butler.query() as q:
                res = q.datasets(dt, collections=[search], find_first=True)
                if flt:
                    res = res.where(flt)
                got = list(res)
                if not got:
                    explain = " ".join(" ".join(res.explain_no_results()).split())
                    what = f" for {data_id_text(flt)}" if flt else ""
                    text = f"No inputs found for dataset {dt.name} in {search}{what}. {explain}".rstrip()
                    raise NothingToDoError(text + "; check the input collection and --id")
                for ref in got:
                    refs[str(ref.id)] = ref
        ordered = sorted(refs.values(), key=lambda r: (tuple(plain_data_id(r.dataId).items()), str(r.id)))
        data_id_list = [plain_data_id(r.dataId) for r in ordered]
        current = _rows(butler, dt, target, data_ids=data_id_list) if target_type else []
        by_did: dict[tuple, list[Association]] = {}
        for a in current:
            by_did.setdefault(a.data_id_key(), []).append(a)
        changes: list[Change] = []
        conflicts: list[Conflict] = []
        seen: dict[tuple, Association] = {}
        for ref in ordered:
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
        summary = (f"certify {n_add} {dt.name} from {search} into {target} for {_range_text(window.nsec)}"
                   + (f" ({len(conflicts)} conflicting)" if conflicts else ""))
        state = {"search": search, "in_type": in_type, "target_type": target_type, "refs": sorted(refs),
                 "current": [list(a.key()) for a in current]}
        return Preview(
            action="certify", repo=gw.repo,
            args={"input_collection": input_collection, "target": target, "dataset_type": dt.name,
                  "begin": begin, "end": end, "data_ids": ids, "search_all_inputs": bool(search_all_inputs)},
            fingerprint=_fingerprint(state), summary=summary, changes=changes, conflicts=conflicts, notes=notes,
            undoable=True, create_collection=None if target_type else target,
            plan={"collection": target, "dataset_type": dt, "refs": refs, "timespan": window},
        )


# --- decertify -----------------------------------------------------------------------------------------------
def preview_decertify(gw: ButlerGateway, collection: str, dataset_type: str, *, begin: str | None = None,
                      end: str | None = None,
                      data_ids: Iterable[Mapping[str, Any] | Sequence[str]] | None = None) -> Preview:
    """What clearing [begin, end) of ``dataset_type`` in ``collection`` would do (Registry.decertify semantics).

    Ranges inside the window are removed; ranges that stick out are trimmed, or split in two when the window is
    inside them.  Without data IDs every data ID is affected.
    """
    begin, end, window = _timespan(begin, end)
    dt = _calibration_type(gw, dataset_type)
    with gw.session("decertify") as butler:
        ids = _normalize_data_ids(butler, dt, data_ids)
        kind = gw.collection_type(collection)
        if kind is None:
            raise NotFoundError(f"collection {collection!r} does not exist; check the name (e.g. PFS/calib)")
        if kind != "CALIBRATION":
            raise InputError(f"{collection} is a {kind} collection, not CALIBRATION; decertify works on a "
                             "CALIBRATION collection (e.g. PFS/calib)")
        rows = _rows(butler, dt, collection, window=window, filters=ids or None)
        if not rows:
            which = " for " + " or ".join(data_id_text(d) for d in ids) if ids else ""
            raise NothingToDoError(f"no {dt.name} validity range in {collection} overlaps {_range_text(window.nsec)}"
                                   f"{which}; nothing to decertify (list them with pfstui calibs)")
        changes = []
        for a in rows:
            pieces = tuple(Association.from_timespan(a.dataset_type, a.data_id, a.run, a.dataset_id, p, a.collection)
                           for p in a.timespan().difference(window))
            kind_ = {0: "remove", 1: "trim", 2: "split"}[len(pieces)]
            changes.append(Change(kind_, before=a, after=pieces))
        counts = {k: sum(1 for c in changes if c.kind == k) for k in ("remove", "trim", "split")}
        detail = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        summary = f"decertify {dt.name} in {collection} over {_range_text(window.nsec)}: {detail}"
        state = {"kind": kind, "rows": [list(a.key()) for a in rows]}
        return Preview(
            action="decertify", repo=gw.repo,
            args={"collection": collection, "dataset_type": dt.name, "begin": begin, "end": end, "data_ids": ids},
            fingerprint=_fingerprint(state), summary=summary, changes=changes, undoable=True,
            plan={"collection": collection, "dataset_type": dt, "timespan": window},
        )


# --- undo ----------------------------------------------------------------------------------------------------
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
    if not _same_repo(str(data.get("repository")), gw.repo):
        raise UndoError(f"journal entry {entry.id} changed {data.get('repository')}, not {gw.repo}; "
                        "open that repository to undo it")
    for other in journal.read():
        if other.data.get("undoes") == entry.id:
            raise UndoError(f"journal entry {entry.id} was already undone by {other.id}; undo that entry to redo it")
    return _preview_restore(gw, entry.id, dict(data))


def _preview_restore(gw: ButlerGateway, entry_id: str, data: dict) -> Preview:
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
        current = _rows(butler, dt, collection, data_ids=[dict(d) for d in dids]) if kind else []
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
            action="undo", repo=gw.repo, args={"entry": entry_id}, fingerprint=_fingerprint(state), summary=summary,
            changes=changes, conflicts=conflicts, blockers=blockers, notes=notes, undoable=True,
            create_collection=create,
            plan={"collection": collection, "dataset_type": dt, "entry_data": data, "drop_collection": drop},
        )


# --- clean ---------------------------------------------------------------------------------------------------
def preview_clean(gw: ButlerGateway, glob: str, dataset_types: Sequence[str], *, where: str = "",
                  bind: Mapping[str, Any] | None = None,
                  data_ids: Iterable[Mapping[str, Any] | Sequence[str]] | None = None) -> Preview:
    """What ``butlerCleanRun.py GLOB TYPE...`` would delete: datasets and files, per RUN collection and type."""
    if not dataset_types:
        raise InputError("no dataset type given; name the types to delete, e.g. biasProc")
    raw_ids = [dict(d) if isinstance(d, Mapping) else parse_data_id(d) for d in (data_ids or ())]
    types = [gw.dataset_type(t) for t in dict.fromkeys(dataset_types)]
    with gw.session("clean") as butler:
        norm = {dt.name: _normalize_data_ids(butler, dt, raw_ids) for dt in types}
        runs = _run_matches(gw, butler, glob)
        refs: list[Any] = []
        removals: list[Removal] = []
        per: list[tuple[str, str, list]] = []
        for run in runs:
            for dt in types:
                ids = norm[dt.name]
                found: dict[str, Any] = {}
                for flt in (ids or [None]):
                    with butler.query() as q:
                        if where:
                            q = q.where(where, bind=dict(bind or {}))
                        res = q.datasets(dt, collections=[run], find_first=False)
                        if flt:
                            res = res.where(flt)
                        found.update({str(r.id): r for r in res})
                if found:
                    per.append((run, dt.name, list(found.values())))
                    refs.extend(found.values())
        if not refs:
            names = ", ".join(t.name for t in types)
            raise NothingToDoError(f"no {names} datasets in the {len(runs)} RUN collection(s) matching {glob!r}"
                                   f"{' with ' + where if where else ''}; nothing to clean")
        sizes = _sizes(butler, refs)
        for run, name, rs in per:
            removals.append(Removal(run, name, len(rs), sum(sizes.get(str(r.id), 0) for r in rs)))
        blockers = []
        certified = _certified_elsewhere(butler, refs)
        if certified:
            a = certified[0]
            blockers.append(f"{len(certified)} of these datasets are certified (e.g. {a.dataset_type} {a.camera()} "
                            f"{a.range_text()} in {a.collection}); decertify them first or leave "
                            f"{a.dataset_type} out")
        summary = (f"clean {', '.join(t.name for t in types)} from {len(runs)} RUN collection(s) matching {glob!r}: "
                   f"{len(refs)} datasets")
        state = {"runs": runs, "refs": sorted(str(r.id) for r in refs), "certified": len(certified)}
        return Preview(
            action="clean", repo=gw.repo,
            args={"glob": glob, "dataset_types": [t.name for t in types], "where": where, "bind": dict(bind or {}),
                  "data_ids": raw_ids},
            fingerprint=_fingerprint(state), summary=summary, removals=removals, blockers=blockers,
            undoable=False, plan={"refs": refs, "sizes": sizes},
        )


# --- remove-runs ---------------------------------------------------------------------------------------------
def preview_remove_runs(gw: ButlerGateway, glob: str, *, unlink: bool = False) -> Preview:
    """What ``butler remove-runs GLOB`` would delete; a run still in a chain is refused unless ``unlink``."""
    with gw.session("remove-runs") as butler:
        runs = _run_matches(gw, butler, glob)
        infos = butler.collections.query_info(runs, include_parents=True, include_doc=True)
        refs = list(butler.query_all_datasets(runs, find_first=False, limit=None)) if runs else []
        sizes = _sizes(butler, refs)
        removals: dict[tuple[str, str], list] = {}
        for ref in refs:
            removals.setdefault((ref.run, ref.datasetType.name), []).append(ref)
        rows, unlinks, blockers = [], [], []
        for info in sorted(infos, key=lambda i: i.name):
            parents = sorted(info.parents or ())
            rows.append(CollectionRow(info.name, info.type.name, info.doc or "", (), tuple(parents)))
            if parents and not unlink:
                blockers.append(f"run {info.name} is in chain {', '.join(parents)}; pass --unlink to remove it from "
                                "the chain too (or remove the chain first)")
            unlinks += [(p, info.name) for p in parents] if unlink else []
        certified = _certified_elsewhere(butler, refs)
        if certified:
            a = certified[0]
            blockers.append(f"{len(certified)} datasets in these runs are certified (e.g. {a.dataset_type} "
                            f"{a.camera()} {a.range_text()} in {a.collection}); decertify them first")
        summary = f"remove {len(runs)} RUN collection(s) matching {glob!r} and their {len(refs)} datasets"
        state = {"runs": runs, "refs": sorted(str(r.id) for r in refs), "parents": [r.parents for r in rows],
                 "certified": len(certified)}
        return Preview(
            action="remove-runs", repo=gw.repo, args={"glob": glob, "unlink": bool(unlink)},
            fingerprint=_fingerprint(state), summary=summary, collections=rows, unlinks=unlinks,
            blockers=blockers, undoable=False,
            removals=[Removal(run, name, len(rs), sum(sizes.get(str(r.id), 0) for r in rs))
                      for (run, name), rs in sorted(removals.items())],
            plan={"runs": runs, "refs": refs},
        )


# --- remove-collections --------------------------------------------------------------------------------------
def preview_remove_collections(gw: ButlerGateway, glob: str, *, remove_from_parents: bool = False) -> Preview:
    """What ``butler remove-collections GLOB`` would remove (non-RUN collections; datasets stay in their RUNs)."""
    from lsst.daf.butler import CollectionType, MissingCollectionError

    with gw.session("remove-collections") as butler:
        try:
            infos = sorted(butler.collections.query_info(glob, include_chains=True, include_parents=True,
                                                         include_doc=True), key=lambda i: i.name)
        except MissingCollectionError:
            infos = []
        runs = [i.name for i in infos if i.type is CollectionType.RUN]
        targets = [i for i in infos if i.type is not CollectionType.RUN]
        if not targets:
            if runs:
                raise NothingToDoError(f"{glob!r} matches only RUN collections ({', '.join(runs[:3])}"
                                       f"{'...' if len(runs) > 3 else ''}); use pfstui remove-runs for those")
            raise NothingToDoError(f"no collection matches {glob!r}; check the name or glob")
        names = {i.name for i in targets}
        rows, unlinks, blockers, notes = [], [], [], []
        if runs:
            notes.append(f"{len(runs)} RUN collection(s) also match and are NOT removed (use pfstui remove-runs)")
        n_assoc = {}
        for info in targets:
            parents = sorted(set(info.parents or ()) - names)
            rows.append(CollectionRow(info.name, info.type.name, info.doc or "", tuple(info.children),
                                      tuple(sorted(info.parents or ()))))
            if parents and not remove_from_parents:
                blockers.append(f"{info.name} is in chain {', '.join(parents)}; pass --remove-from-parents to unlink "
                                "it too (or remove the chain as well)")
            if remove_from_parents:
                unlinks += [(p, info.name) for p in parents]
            if info.type is CollectionType.CALIBRATION:
                summary_types = butler.registry.getCollectionSummary(info.name).dataset_types
                n = sum(len(_rows(butler, t, info.name)) for t in summary_types if t.isCalibration())
                n_assoc[info.name] = n
                if n:
                    notes.append(f"removing {info.name} drops its {n} validity range(s); the datasets stay in their "
                                 "RUN collections")
        summary = f"remove {len(rows)} collection(s) matching {glob!r}"
        state = {"rows": [[r.name, r.type, list(r.children), list(r.parents or ())] for r in rows],
                 "assoc": n_assoc}
        return Preview(
            action="remove-collections", repo=gw.repo,
            args={"glob": glob, "remove_from_parents": bool(remove_from_parents)},
            fingerprint=_fingerprint(state), summary=summary, collections=rows, unlinks=unlinks, blockers=blockers,
            notes=notes, undoable=False,
        )


# --- apply ---------------------------------------------------------------------------------------------------
def _recompute(gw: ButlerGateway, preview: Preview) -> Preview:
    a = preview.args
    if preview.action == "certify":
        return preview_certify(gw, a["input_collection"], a["target"], a["dataset_type"], begin=a["begin"],
                               end=a["end"], data_ids=a["data_ids"], search_all_inputs=a["search_all_inputs"])
    if preview.action == "decertify":
        return preview_decertify(gw, a["collection"], a["dataset_type"], begin=a["begin"], end=a["end"],
                                 data_ids=a["data_ids"])
    if preview.action == "undo":
        return _preview_restore(gw, a["entry"], preview.plan["entry_data"])
    if preview.action == "clean":
        return preview_clean(gw, a["glob"], a["dataset_types"], where=a["where"], bind=a["bind"],
                             data_ids=a["data_ids"] or None)
    if preview.action == "remove-runs":
        return preview_remove_runs(gw, a["glob"], unlink=a["unlink"])
    if preview.action == "remove-collections":
        return preview_remove_collections(gw, a["glob"], remove_from_parents=a["remove_from_parents"])
    raise GatewayError(f"unknown action {preview.action!r}")  # pragma: no cover


def _check_fresh(gw: ButlerGateway, preview: Preview) -> Preview:
    if not _same_repo(preview.repo, gw.repo):
        raise GatewayError(f"this preview is for {preview.repo}, not {gw.repo}; preview again on this repository")
    try:
        fresh = _recompute(gw, preview)
    except NothingToDoError as exc:
        raise StalePreviewError(f"the registry changed since the preview ({exc}); preview again") from None
    if fresh.fingerprint != preview.fingerprint:
        raise StalePreviewError(f"the registry changed since the preview of {preview.action}; nothing was written — "
                                "preview again and re-check")
    if fresh.blocked:
        raise ConflictError(f"{preview.action} refused, nothing written: {fresh.blocker_text()}")
    return fresh


def apply(gw: ButlerGateway, preview: Preview, *, journal: Journal | None = None) -> AppliedAction:
    """Perform a previewed action if the registry is still as previewed; journal it with its inverse."""
    gw.check_writable(preview.action)
    if preview.blocked:
        raise ConflictError(f"{preview.action} refused, nothing written: {preview.blocker_text()}")
    journal = journal or default_journal()
    if preview.action in ("certify", "decertify", "undo"):
        return _apply_associations(gw, preview, journal)
    if preview.action == "clean":
        return _apply_clean(gw, preview, journal)
    if preview.action == "remove-runs":
        return _apply_remove_runs(gw, preview, journal)
    if preview.action == "remove-collections":
        return _apply_remove_collections(gw, preview, journal)
    raise GatewayError(f"unknown action {preview.action!r}")  # pragma: no cover


def _entry(gw: ButlerGateway, preview: Preview, summary: str, effect: dict, inverse: dict | None,
           **extra: Any) -> dict[str, Any]:
    return {"kind": "butler", "schema": JOURNAL_SCHEMA, "action": preview.action, "repository": gw.repo,
            "args": preview.args, "summary": summary, "effect": effect, "undoable": inverse is not None,
            "inverse": inverse, "fingerprint": preview.fingerprint, **extra}


def _apply_associations(gw: ButlerGateway, preview: Preview, journal: Journal) -> AppliedAction:
    from lsst.daf.butler import CollectionType, Timespan

    with gw.writer(preview.action) as butler, butler.transaction():
        fresh = _check_fresh(gw, preview)
        if fresh.is_noop:
            return AppliedAction(preview.action, "nothing to do: " + fresh.summary, {}, None, fresh)
        collection = fresh.plan["collection"]
        dt = fresh.plan["dataset_type"]
        removed = fresh.removed_associations
        added = fresh.added_associations
        dids = [dict(k) for k in sorted({a.data_id_key() for a in removed + added})]
        before = set() if fresh.create_collection else {a.key() for a in _rows(butler, dt, collection, data_ids=dids)}
        created = False
        if fresh.create_collection:
            butler.collections.register(collection, CollectionType.CALIBRATION)
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
                butler.registry.certify(collection, refs, Timespan(None, None, _nsec=nsec))
        after = {a.key() for a in _rows(butler, dt, collection, data_ids=dids)}
        if before - after != {a.key() for a in removed} or after - before != {a.key() for a in added}:
            raise GatewayError(f"{preview.action} did not change {collection} exactly as previewed "
                               f"({len(before - after)} removed, {len(after - before)} added); rolled back, "
                               "nothing written — preview again")
        if preview.action == "undo" and fresh.plan.get("drop_collection"):
            if not any(_rows(butler, t, collection) for t in butler.registry.queryDatasetTypes() if t.isCalibration()):
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
        # Journal inside the transaction: if the journal cannot be written, the change is rolled back, so the
        # registry never holds a change the journal does not know about.
        entry = journal.append(_entry(gw, fresh, summary, effect, inverse, **extra))
    return AppliedAction(preview.action, summary, effect, entry, fresh)


def _effect_summary(preview: Preview, dt: str, collection: str, removed: list[Association],
                    added: list[Association], created: bool, dropped: bool) -> str:
    if preview.action == "certify":
        span = added[0].range_text() if added else ""
        text = f"certified {len(added)} {dt} in {collection} for {span}"
    elif preview.action == "decertify":
        counts = {k: sum(1 for c in preview.changes if c.kind == k) for k in ("remove", "trim", "split")}
        verbs = {"remove": "removed", "trim": "trimmed", "split": "split"}
        detail = ", ".join(f"{n} range{'s' if n != 1 else ''} {verbs[k]}" for k, n in counts.items() if n)
        text = f"decertified {dt} in {collection} over {_range_text(preview.plan['timespan'].nsec)}: {detail}"
    else:
        text = (f"undone {preview.args['entry']}: removed {len(removed)} and restored {len(added)} {dt} range(s) "
                f"in {collection}")
    if created:
        text += f" (created {collection})"
    if dropped:
        text += f" (removed the empty {collection})"
    return text


def _journal_after(journal: Journal, record: dict, what: str) -> JournalEntry:
    try:
        return journal.append(record)
    except Exception as exc:  # noqa: BLE001 - the change is done; say so rather than hide it
        raise GatewayError(f"{what} WAS applied, but the journal could not be written: {exc}") from None


def _apply_clean(gw: ButlerGateway, preview: Preview, journal: Journal) -> AppliedAction:
    with gw.writer("clean") as butler:
        fresh = _check_fresh(gw, preview)
        refs = fresh.plan["refs"]
        uris = [u for v in butler.get_many_uris(refs).values() for u in [v.primaryURI, *v.componentURIs.values()] if u]
        butler.pruneDatasets(refs, disassociate=True, unstore=True, purge=True)
        left = [str(r.id) for r in refs if butler.get_dataset(r.id) is not None]
        files_left = [str(u) for u in uris if u.exists()]
        if left or files_left:  # pragma: no cover - pruneDatasets failed silently
            raise GatewayError(f"clean left {len(left)} datasets and {len(files_left)} files behind; run it again")
        effect = {
            "runs": sorted({r.run for r in refs}), "dataset_types": fresh.args["dataset_types"],
            "count": len(refs), "bytes": fresh.total_bytes, "files": len(uris),
            "per_run": [{"run": r.run, "dataset_type": r.dataset_type, "count": r.count, "bytes": r.bytes}
                        for r in fresh.removals],
            "datasets": [{"dataset_id": str(r.id), "dataset_type": r.datasetType.name, "run": r.run,
                          "data_id": plain_data_id(r.dataId)} for r in refs],
        }
        summary = (f"cleaned {len(refs)} {', '.join(fresh.args['dataset_types'])} datasets "
                   f"({_human_bytes(fresh.total_bytes)}) from {len(effect['runs'])} run(s)")
        entry = _journal_after(journal, _entry(gw, fresh, summary, effect, None), "clean")
    return AppliedAction("clean", summary, effect, entry, fresh)


def _apply_remove_runs(gw: ButlerGateway, preview: Preview, journal: Journal) -> AppliedAction:
    with gw.writer("remove-runs") as butler:
        fresh = _check_fresh(gw, preview)
        runs = fresh.plan["runs"]
        butler.removeRuns(runs, unlink_from_chains=fresh.args["unlink"])
        effect = {"runs": runs, "unlinked": [list(u) for u in fresh.unlinks], "count": fresh.total_datasets,
                  "bytes": fresh.total_bytes,
                  "per_run": [{"run": r.run, "dataset_type": r.dataset_type, "count": r.count, "bytes": r.bytes}
                              for r in fresh.removals]}
        summary = f"removed {len(runs)} run(s) and {fresh.total_datasets} datasets ({_human_bytes(fresh.total_bytes)})"
        entry = _journal_after(journal, _entry(gw, fresh, summary, effect, None), "remove-runs")
    return AppliedAction("remove-runs", summary, effect, entry, fresh)


def _apply_remove_collections(gw: ButlerGateway, preview: Preview, journal: Journal) -> AppliedAction:
    with gw.writer("remove-collections") as butler, butler.transaction():
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
        entry = journal.append(_entry(gw, fresh, summary, effect, None))
    return AppliedAction("remove-collections", summary, effect, entry, fresh)

