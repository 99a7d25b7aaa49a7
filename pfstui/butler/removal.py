"""Previews of the deleting actions: clean (butlerCleanRun.py), remove-runs and remove-collections.

Why: these delete datasets, files or collections for good, so the preview lists exactly what goes (per RUN
collection and dataset type, with bytes) and blocks what must not: a dataset still certified somewhere, a
collection still in a chain.  :func:`pfstui.butler.apply.apply` re-checks just before the write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pfstui.butler import daf_butler
from pfstui.butler.errors import InputError, NothingToDoError
from pfstui.butler.gateway import ButlerGateway
from pfstui.butler.preview import Preview, Removal, fingerprint
from pfstui.butler.registry import (
    calibration_rows,
    certified_elsewhere,
    dataset_sizes,
    run_matches,
)
from pfstui.butler.values import (
    CollectionRow,
    check_where,
    normalize_data_ids,
    parse_data_id,
)

__all__ = [
    "preview_clean",
    "preview_remove_collections",
    "preview_remove_runs",
]


def preview_clean(gw: ButlerGateway, glob: str, dataset_types: Sequence[str], *, where: str = "",
                  bind: Mapping[str, Any] | None = None,
                  data_ids: Iterable[Mapping[str, Any] | Sequence[str]] | None = None) -> Preview:
    """What ``butlerCleanRun.py GLOB TYPE...`` would delete: datasets and files, per RUN collection and type."""
    if not dataset_types:
        raise InputError("no dataset type given; name the types to delete, e.g. biasProc")
    raw_ids = [dict(d) if isinstance(d, Mapping) else parse_data_id(d) for d in (data_ids or ())]
    check_where(where)
    types = [gw.dataset_type(t) for t in dict.fromkeys(dataset_types)]
    with gw.session("clean") as butler:
        norm = {dt.name: normalize_data_ids(butler, dt, raw_ids) for dt in types}
        runs = run_matches(gw, butler, glob)
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
        sizes = dataset_sizes(butler, refs)
        for run, name, rs in per:
            removals.append(Removal(run, name, len(rs), sum(sizes.get(str(r.id), 0) for r in rs)))
        blockers = []
        certified = certified_elsewhere(butler, refs)
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
            fingerprint=fingerprint(state), summary=summary, removals=removals, blockers=blockers,
            undoable=False, plan={"refs": refs, "sizes": sizes},
        )


def preview_remove_runs(gw: ButlerGateway, glob: str, *, unlink: bool = False) -> Preview:
    """What ``butler remove-runs GLOB`` would delete; a run still in a chain is refused unless ``unlink``."""
    with gw.session("remove-runs") as butler:
        runs = run_matches(gw, butler, glob)
        infos = butler.collections.query_info(runs, include_parents=True, include_doc=True)
        refs = list(butler.query_all_datasets(runs, find_first=False, limit=None)) if runs else []
        sizes = dataset_sizes(butler, refs)
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
        certified = certified_elsewhere(butler, refs)
        if certified:
            a = certified[0]
            blockers.append(f"{len(certified)} datasets in these runs are certified (e.g. {a.dataset_type} "
                            f"{a.camera()} {a.range_text()} in {a.collection}); decertify them first")
        summary = f"remove {len(runs)} RUN collection(s) matching {glob!r} and their {len(refs)} datasets"
        state = {"runs": runs, "refs": sorted(str(r.id) for r in refs), "parents": [r.parents for r in rows],
                 "certified": len(certified)}
        return Preview(
            action="remove-runs", repo=gw.repo, args={"glob": glob, "unlink": bool(unlink)},
            fingerprint=fingerprint(state), summary=summary, collections=rows, unlinks=unlinks,
            blockers=blockers, undoable=False,
            removals=[Removal(run, name, len(rs), sum(sizes.get(str(r.id), 0) for r in rs))
                      for (run, name), rs in sorted(removals.items())],
            plan={"runs": runs, "refs": refs},
        )


def preview_remove_collections(gw: ButlerGateway, glob: str, *, remove_from_parents: bool = False) -> Preview:
    """What ``butler remove-collections GLOB`` would remove (non-RUN collections; datasets stay in their RUNs)."""
    dafb = daf_butler()
    with gw.session("remove-collections") as butler:
        try:
            infos = sorted(butler.collections.query_info(glob, include_chains=True, include_parents=True,
                                                         include_doc=True), key=lambda i: i.name)
        except dafb.MissingCollectionError:
            infos = []
        runs = [i.name for i in infos if i.type is dafb.CollectionType.RUN]
        targets = [i for i in infos if i.type is not dafb.CollectionType.RUN]
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
            if info.type is dafb.CollectionType.CALIBRATION:
                summary_types = butler.registry.getCollectionSummary(info.name).dataset_types
                n = sum(len(calibration_rows(butler, t, info.name)) for t in summary_types if t.isCalibration())
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
            fingerprint=fingerprint(state), summary=summary, collections=rows, unlinks=unlinks, blockers=blockers,
            notes=notes, undoable=False,
        )
