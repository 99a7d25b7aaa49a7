"""The operator's arguments to a Butler action, checked and converted before any registry read that depends on them.

Why: a typo in ``--id``, a date the Butler would silently clamp, or a non-calibration dataset type must be one
:class:`~pfstui.butler.errors.InputError` naming the fix, raised before anything is computed or written; the
CLI, the Certify pane (inline validation) and every preview use these same checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pfstui.butler.errors import InputError
from pfstui.butler.gateway import ButlerGateway
from pfstui.butler.values import data_id_text
from pfstui.values.tai import DateError, check_tai, make_timespan

__all__ = [
    "parse_data_id",
    "validity_window",
    "calibration_type",
    "normalize_data_ids",
]


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
