"""The butler package's value types: collections and validity ranges as plain, comparable, JSON-able values.

Why separate from the gateway: previews, the journal, undo and the panes all pass these around, and none of them
should need the gateway (or the Butler) to build, compare or print one.  ``nsec`` bounds are the Butler's exact
integers; ISO text is only for people.

The operator's arguments to an action are checked and converted here too (``parse_data_id``,
``validity_window``, ``calibration_type``, ``normalize_data_ids``), before any registry read that depends on
them: a typo in ``--id``, a date the Butler would silently clamp, or a non-calibration dataset type is one
:class:`~pfstui.butler.errors.InputError` naming the fix, the same for the CLI, the Certify pane and every preview.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pfstui.butler import daf_butler
from pfstui.butler.errors import InputError
from pfstui.values.tai import DateError, check_tai, make_timespan

if TYPE_CHECKING:  # the gateway imports this module
    from pfstui.butler.gateway import ButlerGateway

__all__ = [
    "MIN_NSEC",
    "MAX_NSEC",
    "ASSOCIATION_FIELDS",
    "nsec_to_iso",
    "nsec_bounds",
    "plain_data_id",
    "plain_value",
    "data_id_text",
    "camera_text",
    "same_repo",
    "CollectionRow",
    "CollectionDetail",
    "Association",
    "parse_data_id",
    "check_where",
    "validity_window",
    "calibration_type",
    "normalize_data_ids",
]

#: Butler nanosecond bounds (``TimeConverter``): 1970-01-01 and 2100-01-01 TAI; a bound at either is "open".
MIN_NSEC = 0
MAX_NSEC = 4102444800 * 10**9
_EPOCH = datetime(1970, 1, 1)
#: The dataset fields a general query must return for :meth:`Association.from_query_row`.
ASSOCIATION_FIELDS = frozenset({"dataset_id", "run", "collection", "timespan"})


def nsec_to_iso(nsec: int) -> str:
    """TAI nanoseconds since 1970 as ISO ``YYYY-MM-DDTHH:MM:SS[.fffffffff]``, exactly (TAI has no leap seconds)."""
    seconds, frac = divmod(int(nsec), 10**9)
    text = (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text


def nsec_bounds(timespan) -> tuple[int, int]:
    return int(timespan.nsec[0]), int(timespan.nsec[1])


def plain_data_id(data_id) -> dict[str, Any]:
    """A data ID's required values as a plain JSON-able dict (str/int), in the dimension order."""
    if hasattr(data_id, "required"):
        return {str(k): plain_value(v) for k, v in data_id.required.items()}
    return {str(k): plain_value(v) for k, v in dict(data_id).items()}


def plain_value(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


def data_id_text(data_id: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in data_id.items())


def camera_text(data_id: Mapping[str, Any]) -> str:
    """A data ID without its instrument (``arm=b spectrograph=1``): what tells an operator's cameras apart."""
    return data_id_text({k: v for k, v in data_id.items() if k != "instrument"}) or data_id_text(data_id)


@dataclass(frozen=True)
class CollectionRow:
    """One collection as the browser lists it."""

    name: str
    type: str  # "RUN" | "CHAINED" | "CALIBRATION" | "TAGGED"
    doc: str
    children: tuple[str, ...]  # in search order (CHAINED only)
    parents: tuple[str, ...] | None  # sorted; None when not fetched

    @classmethod
    def from_info(cls, info, parents: tuple[str, ...] | None = None) -> CollectionRow:
        """The row of a Butler ``CollectionInfo``; ``parents`` when known otherwise (the gateway's chain map)."""
        if parents is None and info.parents is not None:
            parents = tuple(sorted(info.parents))
        return cls(name=info.name, type=info.type.name, doc=info.doc or "", children=tuple(info.children),
                   parents=parents)


@dataclass(frozen=True)
class CollectionDetail:
    row: CollectionRow
    dataset_types: list[tuple[str, int]]  # (name, count), sorted by name


@dataclass(frozen=True)
class Association:
    """One validity range of one dataset in a CALIBRATION collection.

    ``begin``/``end`` are TAI ISO strings (None = open); ``nsec`` holds the Butler's exact integer bounds, which
    is what identity, journaling and undo use (ISO text is for people).
    """

    dataset_type: str
    data_id: dict
    run: str
    dataset_id: str
    begin: str | None
    end: str | None
    collection: str = ""
    nsec: tuple[int, int] = (MIN_NSEC, MAX_NSEC)

    @classmethod
    def from_timespan(cls, dataset_type: str, data_id: Mapping[str, Any], run: str, dataset_id: Any,
                      timespan, collection: str = "") -> Association:
        b, e = nsec_bounds(timespan)
        return cls.from_nsec(dataset_type, data_id, run, dataset_id, (b, e), collection)

    @classmethod
    def from_query_row(cls, dt_name: str, row) -> Association:
        """One row of a general query with ``dataset_fields={dt_name: {dataset_id, run, collection, timespan}}``."""
        raw = row.raw_row
        ref = row.refs[0]
        return cls.from_timespan(dt_name, plain_data_id(row.data_id), raw[f"{dt_name}.run"], ref.id,
                                 raw[f"{dt_name}.timespan"], raw[f"{dt_name}.collection"])

    @classmethod
    def from_nsec(cls, dataset_type: str, data_id: Mapping[str, Any], run: str, dataset_id: Any,
                  nsec: Sequence[int], collection: str = "") -> Association:
        b, e = int(nsec[0]), int(nsec[1])
        return cls(
            dataset_type=dataset_type,
            data_id=dict(data_id),
            run=run,
            dataset_id=str(dataset_id),
            begin=None if b <= MIN_NSEC else nsec_to_iso(b),
            end=None if e >= MAX_NSEC else nsec_to_iso(e),
            collection=collection,
            nsec=(b, e),
        )

    # identity: which dataset, for which data ID, over exactly which range (collection/type given by context)
    def key(self) -> tuple:
        return (self.dataset_id, tuple(sorted(self.data_id.items())), self.nsec)

    def data_id_key(self) -> tuple:
        return tuple(sorted(self.data_id.items()))

    def overlaps_nsec(self, nsec: Sequence[int]) -> bool:
        return self.nsec[1] > nsec[0] and nsec[1] > self.nsec[0]

    def timespan(self):
        """The Butler Timespan with exactly these bounds."""
        dafb = daf_butler()
        return dafb.Timespan(None, None, _nsec=self.nsec)

    def range_text(self) -> str:
        return f"[{self.begin or '-∞'}, {self.end or '∞'})"

    def camera(self) -> str:
        return camera_text(self.data_id)

    def to_json(self) -> dict[str, Any]:
        return {"dataset_type": self.dataset_type, "data_id": dict(self.data_id), "run": self.run,
                "dataset_id": self.dataset_id, "begin": self.begin, "end": self.end,
                "collection": self.collection, "nsec": list(self.nsec)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Association:
        return cls.from_nsec(obj["dataset_type"], obj["data_id"], obj["run"], obj["dataset_id"], obj["nsec"],
                             obj.get("collection", ""))


def same_repo(a: str, b: str) -> bool:
    """Whether two repository strings name the same repository (symlinks and relative paths resolved)."""
    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()

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


#: Bounds of a ``--where`` expression: far above a real query (use ``visit IN (11..58)`` for long lists), far below
#: what the Butler's recursive parser survives (about 1,000 ORs, or deep nesting, raised RecursionError).
MAX_WHERE_CHARS = 10_000
MAX_WHERE_DEPTH = 50


def check_where(where: str) -> str:
    """``where`` when it is short and shallow enough for the Butler's parser; InputError (one line) if not."""
    if len(where) > MAX_WHERE_CHARS:
        raise InputError(f"the --where expression is {len(where):,} characters (at most {MAX_WHERE_CHARS:,}); "
                         "list values with IN, e.g. visit IN (11..58, 70), instead of many ORs")
    depth = deepest = 0
    for char in where:
        depth += (char == "(") - (char == ")")
        deepest = max(deepest, depth)
    if deepest > MAX_WHERE_DEPTH:
        raise InputError(f"the --where expression nests parentheses {deepest} deep (at most {MAX_WHERE_DEPTH}); "
                         "remove the redundant parentheses")
    return where


def validity_window(begin: str | None, end: str | None):
    """Check TAI dates (open when None) and build the Timespan; refuses dates the Butler would clamp.

    An empty date is refused rather than read as open: ``--begin-date "$BEGIN"`` with ``BEGIN`` unset must not
    quietly certify from the beginning of time.
    """
    for text, what in ((begin, "begin"), (end, "end")):
        if text is not None and not str(text).strip():
            raise InputError(f"the {what} date is empty", f"give a TAI date, or leave --{what}-date out for an open bound")
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


def calibration_type(gw: ButlerGateway, name: str):
    dt = gw.dataset_type(name)
    if not dt.isCalibration():
        calibs = ", ".join(gw.calibration_dataset_type_names()) or "none"
        raise InputError(f"{name} is not a calibration dataset type, so it cannot be certified; "
                         f"calibration types here: {calibs}")
    return dt


def normalize_data_ids(butler, dt, data_ids: Iterable[Mapping[str, Any] | Sequence[str]] | None) -> list[dict]:
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
