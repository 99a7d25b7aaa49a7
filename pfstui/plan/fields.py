"""The field types of a plan file: what each value may look like, and the fix when it does not.

Why apart from the models: a validator knows one value and its syntax (a collection name, a TAI date, a
data ID, a visit list, a ``-c`` override); the models in :mod:`pfstui.plan.model` only say which field has
which type.  Each validator raises :class:`~pfstui.plan.issues.FieldProblem` (problem and fix apart) so the
loader can report both with the line they were written on.  The rules for names (stages, collections,
reruns, profiles runs, instruments) are :mod:`pfstui.values.names`, shared with the command line; here
they become field types.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Union

from pydantic import BeforeValidator, Field, StrictInt, StrictStr

from pfstui.pipetask_log.formats import LEVELS
from pfstui.plan.issues import FieldProblem
from pfstui.values.names import (
    NameSyntaxError,
    check_collection,
    check_collection_glob,
    check_instrument_name,
    check_profiles_run,
    check_rerun,
    check_stage_name,
)
from pfstui.values.visitlist import VisitListError, parse_integer_list
from pfstui.verify.limits import CHECKS, PRODUCTS, LimitError, override, product_kind

__all__ = [
    "ClassPath",
    "Collection",
    "CollectionGlob",
    "ConfigFile",
    "ConfigOverride",
    "DataId",
    "DimensionList",
    "InstrumentName",
    "LogLevel",
    "NonEmptyStr",
    "PositiveInt",
    "ProfilesRun",
    "Rerun",
    "StageName",
    "TaiDate",
    "StageLimits",
    "VerifyLimits",
    "VerifyType",
    "VisitList",
    "check_limits",
    "check_window",
    "str_or_list",
]

_CLASS_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_CONFIG_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*:[^=\s][^=]*=.*$", re.DOTALL)
_CONFIG_FILE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*:[^,]+$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?$")
_LEVELS = LEVELS  # the log levels pipetask accepts: one list, in pipetask_log.formats
_LOG_LEVEL_RE = re.compile(r"^(?:[A-Za-z_.][A-Za-z0-9_.]*=)?[A-Za-z]+$")
_DATA_ID_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def _name(check: Callable[[str], str]) -> BeforeValidator:
    """A validator running a name check of :mod:`pfstui.values.names` on a string (pydantic reports other
    types); its problem and fix are kept apart for the loader."""

    def validate(value: Any) -> Any:
        if isinstance(value, str):
            try:
                check(value)
            except NameSyntaxError as exc:
                raise FieldProblem(exc.problem, exc.fix) from None
        return value

    return BeforeValidator(validate)


def _non_empty(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise FieldProblem("must not be empty", "write a value or remove the field")
    return value


def _class_path(value: Any) -> Any:
    if isinstance(value, str) and not _CLASS_PATH_RE.match(value):
        raise FieldProblem(
            f"'{value}' is not a Python class path",
            "write the full class, e.g. lsst.obs.pfs.PrimeFocusSpectrograph",
        )
    return value


def _config_override(value: Any) -> Any:
    if isinstance(value, str) and not _CONFIG_RE.match(value):
        raise FieldProblem(
            f"config override '{value}' is not label:field=value",
            "write it like 'isr:doCrosstalk=False': task label, colon, field, '=', value",
        )
    return value


def _config_file(value: Any) -> Any:
    if isinstance(value, str) and not _CONFIG_FILE_RE.match(value):
        raise FieldProblem(
            f"config file '{value}' is not label:path",
            "write it like 'isr:/path/to/isrOverrides.py' (no commas in the path)",
        )
    return value


def _tai_date(value: Any) -> Any:
    """Check a TAI ISO date without astropy: the shape by regex, the calendar by datetime."""
    if isinstance(value, datetime):  # programmatic use
        value = value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        fix = "write a TAI date as YYYY-MM-DDTHH:MM:SS without a time zone, e.g. 2000-01-01T00:00:00"
        if not _DATE_RE.match(text):
            raise FieldProblem(f"'{value}' is not a TAI ISO date", fix)
        try:
            datetime.fromisoformat(text.replace(" ", "T"))
        except ValueError as exc:
            raise FieldProblem(f"'{value}' is not a valid date: {exc}", fix) from None
        return text
    return value


def _date_key(text: str) -> datetime:
    return datetime.fromisoformat(text.replace(" ", "T"))


def _log_level(value: Any) -> Any:
    if isinstance(value, str):
        for item in value.split(","):
            level = item.split("=")[-1].upper()
            if not _LOG_LEVEL_RE.match(item.strip()) or level not in _LEVELS:
                raise FieldProblem(
                    f"log level '{value}' is not LEVEL or component=LEVEL",
                    f"write e.g. pfs=INFO or .=DEBUG; levels: {', '.join(_LEVELS)}",
                )
    return value


def _int_list(value: Any) -> Any:
    """Visit list in defineFiberProfilesInputs.py syntax ``a..b:stride^c``; ints and lists are joined."""
    if isinstance(value, bool):
        raise FieldProblem("must be a visit list", "write e.g. '113855..113863' or '11^12^13'")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "^".join(str(v) for v in value)
    if isinstance(value, str):
        text = value.strip()
        try:
            parse_integer_list(text)  # the parser `pfstui define-profiles` uses: same syntax accepted
        except VisitListError as exc:
            raise FieldProblem(str(exc)) from None  # its message already shows the syntax
        return text
    return value


def _data_id(value: Any) -> Any:
    """One data ID: ``{instrument: PFS, arm: r, spectrograph: 2}`` or ``"instrument=PFS arm=r spectrograph=2"``."""
    fix = "write e.g. {instrument: PFS, arm: r, spectrograph: 2} or \"instrument=PFS arm=r spectrograph=2\""
    if isinstance(value, str):
        pairs: dict[str, Any] = {}
        tokens = value.split()
        if not tokens:
            raise FieldProblem("data ID is empty", fix)
        for token in tokens:
            key, sep, val = token.partition("=")
            if not sep or not key or not val:
                raise FieldProblem(f"data ID '{value}': '{token}' is not key=value", fix)
            if key in pairs:
                raise FieldProblem(f"data ID '{value}': key '{key}' appears twice", fix)
            pairs[key] = int(val) if re.fullmatch(r"-?\d+", val) else val
        value = pairs
    if not isinstance(value, dict):
        raise FieldProblem(f"data ID must be a mapping, got {type(value).__name__}", fix)
    if not value:
        raise FieldProblem("data ID is empty", fix)
    for key, val in value.items():
        if not isinstance(key, str) or not _DATA_ID_KEY_RE.match(key):
            raise FieldProblem(f"data ID key {key!r} is not a dimension name", fix)
        if isinstance(val, bool) or not isinstance(val, (str, int)):
            raise FieldProblem(f"data ID value for '{key}' must be a string or integer, got {val!r}", fix)
        if isinstance(val, str) and (not val or any(c.isspace() for c in val) or "=" in val):
            raise FieldProblem(f"data ID value for '{key}' ({val!r}) is empty or has spaces or '='", fix)
    return dict(value)


def str_or_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


_DIMENSION_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _dimension_list(value: Any) -> Any:
    value = str_or_list(value)
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, str) or not _DIMENSION_RE.match(item):
                raise FieldProblem(f"'{item}' is not a dimension name", "write names such as arm, spectrograph")
    return value


def check_window(begin: str | None, end: str | None) -> None:
    """A validity range must end after it begins (either bound may be open)."""
    if begin is not None and end is not None and _date_key(begin) >= _date_key(end):
        raise FieldProblem(f"{end} is not after begin {begin}", "swap them or leave one out for an open range")


def _verify_type(value: Any) -> Any:
    if isinstance(value, str) and product_kind(value) is None:
        raise FieldProblem(f"verify does not know dataset type {value!r}", f"give one of {', '.join(sorted(PRODUCTS))}")
    return value


def check_limits(product: str, checks: Any) -> Any:
    """``{check: [warn, fail]}`` of one product, each checked by :func:`pfstui.verify.limits.override` (the one
    place that knows the products and checks); the numbers come back as floats."""
    if not isinstance(checks, dict):
        return checks  # pydantic names the type
    out: dict[str, list[float]] = {}
    for check, pair in checks.items():
        if not isinstance(pair, list) or len(pair) != 2:
            raise FieldProblem(f"limit {product}.{check} is not [warn, fail]", f"write e.g. {check}: [5, 20]")
        try:
            _kind, limit = override(product, str(check), *pair)
        except LimitError as exc:
            raise FieldProblem(exc.args[0], exc.fix) from None
        out[str(check)] = [limit.warn, limit.fail]
    return out


def _verify_limits(value: Any) -> Any:
    """``{product: {check: [warn, fail]}}``; a product is named as in pfstui.verify (``flat`` is ``fiberFlat``)."""
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for product, checks in value.items():
        kind = product_kind(str(product))
        if kind is None:
            raise FieldProblem(f"verify has no product {product!r}", f"products: {', '.join(CHECKS)}")
        if not isinstance(checks, dict):
            raise FieldProblem(f"{product} is not a mapping of check: [warn, fail]", "write e.g. {bias: {mean: [5, 20]}}")
        out[kind] = check_limits(kind, checks)
    return out


StageName = Annotated[StrictStr, _name(check_stage_name)]
Collection = Annotated[StrictStr, _name(check_collection)]
CollectionGlob = Annotated[StrictStr, _name(check_collection_glob)]
Rerun = Annotated[StrictStr, _name(check_rerun)]
ProfilesRun = Annotated[StrictStr, _name(check_profiles_run)]
InstrumentName = Annotated[StrictStr, _name(check_instrument_name)]
ClassPath = Annotated[StrictStr, BeforeValidator(_class_path)]
NonEmptyStr = Annotated[StrictStr, BeforeValidator(_non_empty)]
TaiDate = Annotated[StrictStr, BeforeValidator(_tai_date)]
DataId = Annotated[dict[str, Union[StrictStr, StrictInt]], BeforeValidator(_data_id)]
ConfigOverride = Annotated[StrictStr, BeforeValidator(_config_override)]
ConfigFile = Annotated[StrictStr, BeforeValidator(_config_file)]
VisitList = Annotated[StrictStr, BeforeValidator(_int_list)]
LogLevel = Annotated[StrictStr, BeforeValidator(_log_level)]
DimensionList = Annotated[list[str], BeforeValidator(_dimension_list)]
#: Counts (processes, cores, MiB): bounded far above any real use, so a typo of 22 digits is refused, not tried.
PositiveInt = Annotated[StrictInt, Field(ge=1, le=1_000_000)]
#: A verify stage's dataset type: one pfstui.verify knows (bias, dark, fiberFlat/flat).
VerifyType = Annotated[StrictStr, BeforeValidator(_verify_type)]
#: ``{product: {check: [warn, fail]}}`` (a plan's ``defaults.verify_limits``).
VerifyLimits = Annotated[dict[str, dict[str, list[float]]], BeforeValidator(_verify_limits)]
#: ``{check: [warn, fail]}`` of one verify stage's product (checked by the stage, which knows its product).
StageLimits = dict[str, list[float]]
