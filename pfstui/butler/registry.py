"""The raw registry reads that previews and apply share, on a Butler borrowed from the gateway, and the one lock
apply takes in the registry itself (:func:`serialise_writes`).

Why here and not in the gateway: the gateway answers the browser's questions, page by page, each call taking its
lock; previews and apply must instead read several things inside *one* gateway session (and apply inside one
registry transaction), so these functions take the Butler that :meth:`ButlerGateway.session` or
:meth:`ButlerGateway.writer` lent them and never open anything themselves.
"""

from __future__ import annotations

from pfstui.butler import daf_butler
from pfstui.butler.errors import NothingToDoError
from pfstui.butler.gateway import ButlerGateway
from pfstui.butler.values import ASSOCIATION_FIELDS, Association, plain_data_id

__all__ = [
    "calibration_rows",
    "rows_touching",
    "serialise_writes",
    "dataset_sizes",
    "certified_elsewhere",
    "run_matches",
]


def calibration_rows(butler, dt, collection: str, *, data_ids: list[dict] | None = None, window=None,
                     filters: list[dict] | None = None) -> list[Association]:
    """Associations of ``dt`` in one CALIBRATION collection.

    ``data_ids``: exact full data IDs (uploaded); ``filters``: partial data IDs, OR-ed; ``window``: only rows
    overlapping this Timespan.
    """
    dafb = daf_butler()
    if data_ids is not None and not data_ids:
        return []
    found: dict[tuple, Association] = {}
    for flt in (filters or [None]):
        with butler.query() as q:
            q = q.join_dataset_search(dt, [collection])
            if data_ids is not None:
                q = q.join_data_coordinates(
                    [dafb.DataCoordinate.standardize(d, dimensions=dt.dimensions) for d in data_ids])
            if flt:
                q = q.where(flt)
            if window is not None:
                q = q.where(q.expression_factory[dt.name].timespan.overlaps(window))
            res = q.general(dt.dimensions, dataset_fields={dt.name: set(ASSOCIATION_FIELDS)}, find_first=False)
            for row in res.iter_tuples(dt):
                a = Association.from_query_row(dt.name, row)
                found[a.key()] = a
    return sorted(found.values(), key=lambda a: (a.data_id_key(), a.nsec))


def rows_touching(butler, dt, collection: str, changed: list[Association]) -> set[tuple]:
    """Keys of the associations in ``collection`` that share a data ID and overlap a range with ``changed``.

    Why only those: apply checks that a change did exactly what its preview said by comparing these before and
    after the write; ranges another operator certified meanwhile for other dates or data IDs are not its business.
    """
    dids = [dict(k) for k in sorted({a.data_id_key() for a in changed})]
    spans = sorted({a.nsec for a in changed})
    return {a.key() for a in calibration_rows(butler, dt, collection, data_ids=dids)
            if any(a.overlaps_nsec(span) for span in spans)}


def serialise_writes(butler, collection: str) -> None:
    """Make the open registry transaction the only pfstui writer of ``collection`` until it ends.

    Why: apply re-checks its preview inside the transaction and trusts the check until the commit.  SQLite
    already serialises every write transaction (the Butler begins them ``IMMEDIATE``); PostgreSQL runs them side
    by side (READ COMMITTED), so two operators' checks could both pass and the loser would meet the Butler's
    exclusion-constraint error instead of pfstui's conflict.  A transaction-level advisory lock keyed on the
    collection makes the second wait until the first commits; its check (each statement reads what is
    committed) then sees the first one's ranges.  Writers of other collections never wait.
    """
    import sqlalchemy

    db = butler._registry._db  # the Butler has no public handle on its transaction's connection
    with db._transaction() as (_, connection):  # joins the open transaction, starts none
        if connection.dialect.name == "postgresql":
            connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                               {"key": f"pfstui certify {collection}"})


def dataset_sizes(butler, refs) -> dict[str, int]:
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


def certified_elsewhere(butler, refs) -> list[Association]:
    """Associations in any CALIBRATION collection that hold one of ``refs`` (deleting it would decertify it)."""
    dafb = daf_butler()
    by_type: dict[str, set[str]] = {}
    types = {}
    for ref in refs:
        if ref.datasetType.isCalibration():
            by_type.setdefault(ref.datasetType.name, set()).add(str(ref.id))
            types[ref.datasetType.name] = ref.datasetType
    if not by_type:
        return []
    calibs = butler.collections.query("*", collection_types={dafb.CollectionType.CALIBRATION})
    out = []
    for name, ids in by_type.items():
        dids = [dict(k) for k in sorted({tuple(plain_data_id(r.dataId).items()) for r in refs
                                         if r.datasetType.name == name})]
        for coll in calibs:
            out += [a for a in calibration_rows(butler, types[name], coll, data_ids=dids) if a.dataset_id in ids]
    return out


def run_matches(gw: ButlerGateway, butler, glob: str) -> list[str]:
    """RUN collections matching ``glob`` (butlerCleanRun.py semantics: only RUN collections match)."""
    dafb = daf_butler()
    try:
        runs = sorted(butler.collections.query(glob, collection_types={dafb.CollectionType.RUN}, include_chains=True))
    except dafb.MissingCollectionError:
        runs = []
    if not runs:
        kind = gw.collection_type(glob)
        if kind is not None:
            raise NothingToDoError(f"{glob} is a {kind} collection and only RUN collections match; "
                                   f"use a glob such as '{glob.rstrip('/')}/*'")
        raise NothingToDoError(f"no RUN collection matches {glob!r}; check the glob (e.g. 'u/me/bias/*')")
    return runs
