"""The Butler gateway: one object that owns the Butler of a repository and answers the browser's questions.

Why: the UI must never freeze on a Butler call (imports alone take over a second, a query on a big repository
several), must never show a traceback for a typo in a collection name or a ``-d`` expression, and must not load
50,000 validity ranges to draw the first screen.  So the gateway

* imports and opens the Butler lazily, in the first call (which the UI makes from a worker thread);
* serialises every call on one lock, so any thread may call it (the SQLite connection pool is shared);
* turns the Butler's own user errors into :class:`GatewayError` whose message is the Butler's explanation
  followed by the fix;
* pages: :meth:`ButlerGateway.collections` slices a sorted name list and fetches details (doc, parents) for
  that page only, and :meth:`ButlerGateway.associations` yields pages of validity ranges, each page a short
  query of its own (keyset pagination on data ID + begin of validity), so no read cursor is held open between
  pages and a writer is never blocked by a half-read stream.

Errors live in :mod:`pfstui.butler.errors` and the value types in :mod:`pfstui.butler.values`.  Writes (certify,
decertify, clean, remove, the PFS actions) are previewed by the action modules and performed by
:mod:`pfstui.butler.apply`; they borrow the Butler through :meth:`ButlerGateway.session` /
:meth:`ButlerGateway.writer`, and their raw registry reads are in :mod:`pfstui.butler.registry`.
"""


from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pfstui.butler import daf_butler
from pfstui.butler.errors import (
    GatewayError,
    NotFoundError,
    ReadOnlyError,
    butler_errors,
    open_error,
)
from pfstui.butler.values import (
    ASSOCIATION_FIELDS,
    MAX_NSEC,
    MIN_NSEC,
    Association,
    CollectionDetail,
    CollectionRow,
    nsec_bounds,
    nsec_to_iso,
    plain_data_id,
    plain_value,
)

__all__ = ["ButlerGateway"]

#: Pages up to this size ask for parents per collection; bigger ones invert all chains once (cached).
_PARENTS_PER_QUERY = 200


# --- the gateway ---------------------------------------------------------------------------------------------
class ButlerGateway:
    """Owns the Butler of one repository; every method may be called from any (worker) thread.

    Calls are serialised by an internal lock: the Butler and its SQLite connection pool are shared, and a long
    query simply queues the next one instead of racing it.
    """

    def __init__(self, repo: str, *, read_only: bool = False) -> None:
        self.repo = str(Path(repo).expanduser().absolute()) if "://" not in str(repo) else str(repo)
        self.read_only = read_only
        self._butler = None
        self._lock = threading.RLock()
        self._names: dict[tuple[str, str], list[str]] = {}
        self._parents: dict[str, tuple[str, ...]] | None = None
        #: Bumped after every write through this gateway; views compare it to know their cache is stale.
        self.generation = 0

    # -- lifetime ---------------------------------------------------------------------------------------------
    def _open(self):
        if self._butler is None:
            dafb = daf_butler()
            try:
                with _quiet("lsst.daf.butler.direct_butler"):
                    self._butler = dafb.Butler.from_config(self.repo, writeable=not self.read_only)
            except Exception as exc:  # noqa: BLE001 - FileNotFoundError, ValueError, sqlite and driver errors, ...
                raise open_error(self.repo, self.registry_url(), exc) from None
        return self._butler

    def registry_url(self) -> str | None:
        """The registry's database URL from the repository's configuration (None when it cannot be read)."""
        try:
            return str(daf_butler().ButlerConfig(self.repo)["registry", "db"])
        except Exception:  # noqa: BLE001 - a missing or broken butler.yaml: the open error says so
            return None

    @property
    def butler(self):
        """The Butler (opened on first use)."""
        with self._lock:
            return self._open()

    @contextmanager
    def session(self, context: str = "") -> Iterator[Any]:
        """Hold the gateway lock and borrow the Butler; Butler user errors become GatewayError."""
        with self._lock:
            butler = self._open()
            with butler_errors(context):
                yield butler

    @contextmanager
    def writer(self, what: str) -> Iterator[Any]:
        """Like :meth:`session`, but refuses with :class:`ReadOnlyError` on a read-only gateway."""
        self.check_writable(what)
        with self.session(what) as butler:
            try:
                yield butler
            finally:
                self.invalidate()

    def check_writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyError(f"cannot {what}: repository {self.repo} is open read-only; "
                                "reopen it without --read-only to change it")

    def invalidate(self) -> None:
        """Forget cached name lists (after a write here or elsewhere) and re-read the registry's caches."""
        with self._lock:
            self._names.clear()
            self._parents = None
            self.generation += 1
            if self._butler is not None:
                try:
                    self._butler.registry.refresh()
                except Exception:  # noqa: BLE001 - refresh is an optimisation; the next query re-reads
                    pass

    def close(self) -> None:
        with self._lock:
            if self._butler is not None:
                try:
                    self._butler.close()
                finally:
                    self._butler = None

    def __enter__(self) -> ButlerGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- collections ------------------------------------------------------------------------------------------
    def collection_names(self, pattern: str = "*", *, collection_type: str | None = None) -> list[str]:
        """Sorted names matching a glob (cached until the next write or :meth:`invalidate`)."""
        key = (pattern, collection_type or "")
        with self.session(f"collections {pattern!r}") as butler:
            names = self._names.get(key)
            if names is None:
                dafb = daf_butler()
                types = dafb.CollectionType.from_name(collection_type) if collection_type else None
                try:
                    names = sorted(butler.collections.query(pattern, collection_types=types))
                except Exception as exc:  # noqa: BLE001
                    if isinstance(exc, dafb.MissingCollectionError) and not _is_glob(pattern):
                        names = []  # a literal name that does not exist simply matches nothing
                    else:
                        raise
                self._names[key] = names
            return list(names)

    def collections(self, pattern: str = "*", *, offset: int = 0, limit: int | None = None,
                    collection_type: str | None = None) -> list[CollectionRow]:
        """One page of collections (sorted by name) with type, doc, children (search order) and parents."""
        names = self.collection_names(pattern, collection_type=collection_type)
        page = names[offset:] if limit is None else names[offset:offset + limit]
        if not page:
            return []
        with self.session("collections") as butler:
            if self._parents is None and len(page) <= _PARENTS_PER_QUERY:
                # A screenful: one parent query per collection beats inverting every chain of the repository.
                infos = {i.name: i for i in butler.collections.query_info(page, include_doc=True, include_parents=True)}
                return [CollectionRow.from_info(infos[n]) for n in page if n in infos]
            parents = self._parents_map(butler)
            infos = {info.name: info for info in butler.collections.query_info(page, include_doc=True)}
        return [CollectionRow.from_info(infos[n], parents.get(n, ())) for n in page if n in infos]

    def _parents_map(self, butler) -> dict[str, tuple[str, ...]]:
        """child -> sorted parent chains, inverted from every chain's children in one pass (cached).

        ``query_info(include_parents=True)`` asks the database once per collection, which is what makes a
        20,000-collection listing slow; chain definitions are already in the Butler's collection cache.
        """
        if self._parents is None:
            dafb = daf_butler()
            inverse: dict[str, set[str]] = {}
            for info in butler.collections.query_info("*", collection_types={dafb.CollectionType.CHAINED}):
                for child in info.children:
                    inverse.setdefault(child, set()).add(info.name)
            self._parents = {child: tuple(sorted(ps)) for child, ps in inverse.items()}
        return self._parents

    def collection(self, name: str) -> CollectionRow:
        """One collection, by its exact name."""
        with self.session(f"collection {name!r}") as butler:
            return CollectionRow.from_info(butler.collections.get_info(name, include_parents=True))

    def collection_type(self, name: str) -> str | None:
        """The type name of ``name``, or None when it does not exist (``name`` is never a pattern)."""
        dafb = daf_butler()
        with self._lock:
            butler = self._open()
            try:
                return butler.collections.get_info(name).type.name
            except dafb.MissingCollectionError:
                return None

    def collection_detail(self, name: str) -> CollectionDetail:
        """A collection with the dataset types it holds and how many of each."""
        with self.session(f"collection {name!r}") as butler:
            info = butler.collections.get_info(name, include_parents=True, include_summary=True)
            counts = []
            for dt_name in sorted(info.dataset_types or ()):
                with butler.query() as q:
                    n = q.datasets(dt_name, collections=[name], find_first=False).count(exact=True, discard=True)
                counts.append((dt_name, int(n)))
        return CollectionDetail(row=CollectionRow.from_info(info), dataset_types=counts)

    # -- dataset types and datasets ---------------------------------------------------------------------------
    def dataset_type_names(self) -> list[str]:
        with self.session("dataset types") as butler:
            return sorted(dt.name for dt in butler.registry.queryDatasetTypes())

    def calibration_dataset_type_names(self) -> list[str]:
        with self.session("dataset types") as butler:
            return sorted(dt.name for dt in butler.registry.queryDatasetTypes() if dt.isCalibration())

    def instrument_names(self) -> list[str]:
        """The instruments registered in the repository (what forms offer instead of assuming ``PFS``)."""
        with self.session("instruments") as butler:
            return sorted(str(r.name) for r in butler.registry.queryDimensionRecords("instrument"))

    def calibration_dimensions(self) -> list[str]:
        """The dimensions (other than the instrument) that the calibration dataset types are per, in order."""
        with self.session("dataset types") as butler:
            dims: list[str] = []
            for dt in butler.registry.queryDatasetTypes():
                if dt.isCalibration():
                    dims += [d for d in dt.dimensions.required if d != "instrument" and d not in dims]
            return dims

    def dataset_type(self, name: str):
        """The Butler DatasetType; NotFoundError names the known ones when it does not exist."""
        dafb = daf_butler()
        with self._lock:
            butler = self._open()
            try:
                return butler.get_dataset_type(name)
            except dafb.MissingDatasetTypeError:
                known = ", ".join(self.dataset_type_names()) or "none"
                raise NotFoundError(f"unknown dataset type {name!r}; known types: {known}") from None

    def datasets(self, collection: str, dataset_type: str, *, limit: int = 1000, where: str = "",
                 bind: Mapping[str, Any] | None = None) -> list[dict]:
        """Datasets of a type in a collection (all of a chain, not find-first): id, run, data ID."""
        dt = self.dataset_type(dataset_type)
        with self.session(f"{dataset_type} in {collection}") as butler:
            with butler.query() as q:
                if where:
                    q = q.where(where, bind=dict(bind or {}))
                res = q.datasets(dt, collections=[collection], find_first=False).limit(limit)
                return [
                    {"dataset_type": dt.name, "dataset_id": str(ref.id), "run": ref.run,
                     "data_id": plain_data_id(ref.dataId)}
                    for ref in res
                ]

    # -- validity ranges --------------------------------------------------------------------------------------
    def calibration_collections(self, collection: str) -> list[str]:
        """The CALIBRATION collections behind ``collection`` (itself, or those in a chain, in search order)."""
        dafb = daf_butler()
        with self.session(f"collection {collection!r}") as butler:
            info = butler.collections.get_info(collection)
            if info.type is dafb.CollectionType.CALIBRATION:
                return [collection]
            if info.type is dafb.CollectionType.CHAINED:
                calibs = list(butler.collections.query(collection, collection_types={dafb.CollectionType.CALIBRATION},
                                                       flatten_chains=True))
                if calibs:
                    return calibs
        what = "a CHAINED collection without CALIBRATION members" if info.type is dafb.CollectionType.CHAINED else \
            f"a {info.type.name} collection"
        raise GatewayError(f"{collection} is {what} and holds no validity ranges; "
                           "pick a CALIBRATION collection (e.g. PFS/calib) or a chain containing one")

    def associations(self, collection: str, dataset_type: str | None = None, *, page_size: int = 500,
                     data_id: Mapping[str, Any] | None = None) -> Iterator[list[Association]]:
        """Validity ranges in ``collection`` (CALIBRATION, or a chain of them), in pages.

        Ordered by collection, dataset type, data ID and begin.  Each page is its own short query, so the
        consumer may stop at any time and nothing is held open in between.
        """
        if page_size < 1:
            raise GatewayError(f"page_size must be positive, got {page_size}")
        calibs = self.calibration_collections(collection)
        if dataset_type is not None:
            types = [self.dataset_type(dataset_type)]
            if not types[0].isCalibration():
                raise GatewayError(f"{dataset_type} is not a calibration dataset type; it has no validity ranges")
        else:
            with self.session(f"collection {collection!r}") as butler:
                names: set[str] = set()
                for info in butler.collections.query_info(calibs, include_summary=True):
                    names.update(info.dataset_types or ())
            types = [t for t in (self.dataset_type(n) for n in sorted(names)) if t.isCalibration()]
        for coll in calibs:
            for dt in types:
                yield from self._association_pages(coll, dt, page_size, data_id)

    def _association_pages(self, collection: str, dt, page_size: int,
                           data_id: Mapping[str, Any] | None) -> Iterator[list[Association]]:
        with self.session(f"{dt.name} in {collection}") as butler:
            summary = butler.registry.getCollectionSummary(collection)
            if dt.name not in {t.name for t in summary.dataset_types}:
                return
            governors = [g for g in dt.dimensions.required if g in dt.dimensions.governors]
            combos = list(itertools.product(*[sorted(summary.governors.get(g, ())) for g in governors]))
        yielded = False
        try:
            for combo in combos:
                gov = dict(zip(governors, combo, strict=True))
                if data_id and any(k in gov and str(data_id[k]) != str(gov[k]) for k in data_id):
                    continue
                for page in self._keyset_pages(collection, dt, gov, page_size, data_id):
                    yielded = True
                    yield page
        except (AttributeError, NotImplementedError):  # pragma: no cover - no general query API (old/remote)
            if yielded:
                raise
            yield from self._legacy_pages(collection, dt, page_size, data_id)

    def _keyset_pages(self, collection: str, dt, gov: dict[str, Any], page_size: int,
                      data_id: Mapping[str, Any] | None) -> Iterator[list[Association]]:
        """Keyset pagination: ORDER BY (data ID, begin) and continue after the last row of the previous page.

        Rows of one data ID never overlap in a CALIBRATION collection, so (data ID, begin) is unique.
        """
        dafb = daf_butler()
        keys = [d for d in dt.dimensions.required if d not in gov]
        begin_col = f"{dt.name}.timespan.begin"
        last: tuple | None = None
        while True:
            bind: dict[str, Any] = {f"g{i}": v for i, v in enumerate(gov.values())}
            clauses = [f"{g} = g{i}" for i, g in enumerate(gov)]
            if last is not None:
                values, begin_ns = last
                ors = []
                for i in range(len(keys) + 1):
                    eq = [f"{keys[j]} = k{j}" for j in range(i)]
                    if i < len(keys):
                        ors.append(" AND ".join([*eq, f"{keys[i]} > k{i}"]))
                    else:
                        ors.append(" AND ".join([*eq, f"{begin_col} > kb"]))
                clauses.append("(" + " OR ".join(f"({o})" for o in ors) + ")")
                bind.update({f"k{j}": v for j, v in enumerate(values)})
                bind["kb"] = dafb.time_utils.TimeConverter().nsec_to_astropy(begin_ns)
            with self.session(f"{dt.name} in {collection}") as butler:
                with butler.query() as q:
                    q = q.join_dataset_search(dt, [collection])
                    if data_id:
                        q = q.where(dict(data_id))
                    q = q.where(" AND ".join(clauses), bind=bind) if clauses else q
                    res = q.general(
                        dt.dimensions,
                        dataset_fields={dt.name: set(ASSOCIATION_FIELDS)},
                        find_first=False,
                    ).order_by(*keys, begin_col).limit(page_size)
                    page = [Association.from_query_row(dt.name, row) for row in res.iter_tuples(dt)]
            if not page:
                return
            yield page
            if len(page) < page_size:
                return
            tail = page[-1]
            last = (tuple(tail.data_id[k] for k in keys), tail.nsec[0])

    def _legacy_pages(self, collection: str, dt, page_size: int,
                      data_id: Mapping[str, Any] | None) -> Iterator[list[Association]]:
        dafb = daf_butler()
        with self.session(f"{dt.name} in {collection}") as butler:
            rows = butler.registry.queryDatasetAssociations(dt, collections=[collection],
                                                            collectionTypes=[dafb.CollectionType.CALIBRATION])
            page: list[Association] = []
            for a in rows:
                did = plain_data_id(a.ref.dataId)
                if data_id and any(str(did.get(k)) != str(v) for k, v in data_id.items()):
                    continue
                page.append(Association.from_timespan(dt.name, did, a.ref.run, a.ref.id, a.timespan, a.collection))
                if len(page) == page_size:
                    yield page
                    page = []
            if page:
                yield page

    def all_associations(self, collection: str, dataset_type: str | None = None, *,
                         data_id: Mapping[str, Any] | None = None) -> list[Association]:
        """Every page of :meth:`associations`, joined (for small result sets and tests)."""
        out: list[Association] = []
        for page in self.associations(collection, dataset_type, page_size=5000, data_id=data_id):
            out.extend(page)
        return out

    # -- visits -----------------------------------------------------------------------------------------------
    def visits(self, where: str, *, limit: int = 1000, bind: Mapping[str, Any] | None = None,
               instrument: str | None = None) -> list[dict]:
        """Visits matching a ``-d`` expression, with their metadata, so a query can be checked before a run.

        ``instrument`` constrains the query as ``pipetask --instrument`` does.
        """
        with self.session(f"-d {where!r}") as butler:
            with butler.query() as q:
                if instrument:
                    q = q.where(instrument=instrument)
                if where and where.strip():
                    q = q.where(where, bind=dict(bind or {}))
                recs = q.dimension_records("visit").order_by("visit").limit(limit)
                out = []
                for rec in recs:
                    d = rec.toDict()
                    ts = d.pop("timespan", None)
                    if ts is not None:
                        b, e = nsec_bounds(ts)
                        d["begin"] = None if b <= MIN_NSEC else nsec_to_iso(b)
                        d["end"] = None if e >= MAX_NSEC else nsec_to_iso(e)
                    d = {"visit": d.pop("id", None), **d}
                    out.append({k: plain_value(v) for k, v in d.items()})
                return out


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a logger for a moment: the Butler logs "Failed to instantiate Butler" before raising, and that
    second line on stderr (or under the app's screen) says less than the error pfstui makes of the exception."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")
