"""The calibration plan: a YAML file that lists the stages an operator wants run, validated up front.

Why a plan file: the PFS calibration sequence (bias → dark → flat → bootstrap → detectorMap → fiber
profiles → fiberNorms, each followed by a certification and a clean-up) is long, order-sensitive and full of
long collection names and queries.  Writing it down once, checking it before anything runs, and letting
the supervisor run it stage by stage removes the copy-paste errors of running it by hand.

File shape (schema version 1)::

    version: 1
    repository: /data/pfs/datastore        # Butler repo; a relative path is relative to this file
    instrument: lsst.obs.pfs.PrimeFocusSpectrograph
    rerun: u/me                            # prefix of every collection this plan writes
    defaults: {processes: 16, fail_fast: true, log_level: pfs=INFO}
    stages:
      - name: bias
        kind: pipetask
        pipeline: $DRP_STELLA_DIR/pipelines/bias.yaml
        inputs: [PFS/raw/sps, PFS/calib]
        output: bias                       # -> u/me/bias
        query: "instrument='PFS' AND visit.target_name = 'BIAS'"
      - name: certify-bias
        kind: certify
        after: [bias]
        input: bias                        # -> u/me/bias
        target: PFS/calib
        dataset_type: bias
        begin: 2000-01-01T00:00:00
        end: 2050-12-31T23:59:59

Collection naming rule.  Fields that name collections *this plan writes* are relative to ``rerun``:
pipetask ``output`` and ``skip_existing_in``, certify ``input``, certify-candidates ``collection`` and
clean ``glob``.  ``output: bias`` with ``rerun: u/me`` means ``u/me/bias``.  A leading ``/`` makes such a
name absolute (``output: /PFS/special/bias`` means ``PFS/special/bias``).  Fields that name shared
collections are always written in full: pipetask ``inputs``, certify/certify-candidates ``target``,
decertify ``collection``.  This mirrors the tutorial, where only ``-o "$RERUN"/bias`` and the certify and
clean arguments carry ``$RERUN``.

Variables.  Every string value may use ``${NAME}`` or ``$NAME`` (e.g. ``$DRP_STELLA_DIR``,
``${PFSTUI_DEMO_DIR}``); ``$$`` is a literal ``$``.  They are resolved when the plan is loaded, from the
environment mapping passed in (default: :func:`pfstui.plan.variables.stage_env`).  No name is
special: ``${RERUN}`` is just an environment variable like any other.  An unset variable is a load error.

Dates are TAI ISO-8601 without a time zone (``2000-01-01T00:00:00``); either bound may be left out, which
means "open" (unbounded), as in ``butler certify-calibrations``.

Errors.  Every problem is reported as ``<file>:<line>: stage '<name>': <problem> (<fix>)`` through
:class:`PlanError`, which keeps the file, line, stage and field as attributes and all problems found in
``issues``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pfstui.errors import UserError
from pfstui.infra.atomic import StateFileExistsError, atomic_write_text
from pfstui.values.visitlist import VisitListError, parse_integer_list

__all__ = [
    "PLAN_SCHEMA_VERSION",
    "STAGE_KINDS",
    "CertifyCandidatesStage",
    "CertifyStage",
    "CleanStage",
    "DecertifyStage",
    "Defaults",
    "DefineProfilesStage",
    "Plan",
    "PlanError",
    "PlanFileExistsError",
    "PlanIssue",
    "PipetaskStage",
    "ProfilesGroup",
    "Stage",
    "AnyStage",
    "dump_plan",
    "expand_vars",
    "load_plan",
    "parse_plan",
    "stage_fingerprint",
    "write_plan_text",
]

PLAN_SCHEMA_VERSION = 1
STAGE_KINDS = ("pipetask", "certify", "certify-candidates", "define-profiles", "clean", "decertify")


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanIssue:
    """One problem in a plan file, with enough location to fix it without searching."""

    source: str
    line: int | None
    stage: str | None
    field: str | None
    problem: str
    fix: str | None = None

    @property
    def message(self) -> str:
        where = f"{self.source}:{self.line}: " if self.line is not None else f"{self.source}: "
        if self.stage is not None:
            where += f"stage '{self.stage}': "
        text = where + self.problem
        if self.fix:
            text += f" ({self.fix})"
        return text


class PlanError(UserError):
    """A plan file cannot be used; ``str()`` is a one-line message naming the place, problem and fix.

    ``issues`` holds every problem found (sorted by line); the attributes ``source``, ``line``, ``stage``,
    ``field``, ``problem`` and ``fix`` describe the first one.
    """

    def __init__(self, issues: Iterable[PlanIssue]) -> None:
        self.issues: list[PlanIssue] = sorted(
            issues,
            key=lambda i: (i.problem.startswith("missing required field"), i.line if i.line is not None else 1 << 30),
        )
        if not self.issues:  # pragma: no cover - defensive
            raise ValueError("PlanError needs at least one issue")
        first = self.issues[0]
        self.source = first.source
        self.line = first.line
        self.stage = first.stage
        self.field = first.field
        self.problem = first.problem
        self.fix = first.fix
        super().__init__(self._text())

    def _text(self) -> str:
        text = self.issues[0].message
        more = len(self.issues) - 1
        if more:
            text += f" [+{more} more problem{'s' if more > 1 else ''}]"
        return text

    def __str__(self) -> str:
        return self._text()

    def report(self) -> str:
        """Every problem, one per line (for ``plan check`` style output)."""
        return "\n".join(i.message for i in self.issues)


class PlanFileExistsError(PlanError):
    """``plan new`` refused to replace an existing file."""


class _FieldProblem(ValueError):
    """Raised by validators so the loader can report the problem and its fix separately."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem if fix is None else f"{problem} ({fix})")
        self.problem = problem
        self.fix = fix


# --------------------------------------------------------------------------------------------------
# Field types and validators
# --------------------------------------------------------------------------------------------------

_STAGE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CLASS_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_CONFIG_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*:[^=\s][^=]*=.*$", re.DOTALL)
_CONFIG_FILE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*:[^,]+$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?$")
_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "VERBOSE", "DEBUG", "TRACE")
_LOG_LEVEL_RE = re.compile(r"^(?:[A-Za-z_.][A-Za-z0-9_.]*=)?[A-Za-z]+$")
_DATA_ID_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_INSTRUMENT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def _stage_name(value: Any) -> Any:
    if isinstance(value, str) and not _STAGE_NAME_RE.match(value):
        raise _FieldProblem(
            f"'{value}' is not a valid stage name",
            "use letters, digits, '_', '-' and '.', starting with a letter or digit; it names log files",
        )
    return value


def _collection(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip("/"):
            raise _FieldProblem("collection name is empty", "write a collection name such as PFS/calib")
        if any(c.isspace() for c in value) or "," in value:
            raise _FieldProblem(
                f"collection name '{value}' contains spaces or commas",
                "write one collection per list item, without spaces",
            )
        if any(c in value for c in "*?[]"):
            raise _FieldProblem(
                f"collection name '{value}' contains a glob character",
                "only a clean stage's 'glob' may use * ? [ ]",
            )
    return value


def _collection_glob(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip("/"):
            raise _FieldProblem("glob is empty", "write e.g. glob: 'bias/*' (the RUNs under <rerun>/bias)")
        if any(c.isspace() for c in value) or "," in value:
            raise _FieldProblem(f"glob '{value}' contains spaces or commas", "write a single collection glob")
    return value


def _non_empty(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise _FieldProblem("must not be empty", "write a value or remove the field")
    return value


def _class_path(value: Any) -> Any:
    if isinstance(value, str) and not _CLASS_PATH_RE.match(value):
        raise _FieldProblem(
            f"'{value}' is not a Python class path",
            "write the full class, e.g. lsst.obs.pfs.PrimeFocusSpectrograph",
        )
    return value


def _rerun(value: Any) -> Any:
    if isinstance(value, str):
        if not value or value.startswith("/") or value.endswith("/") or "//" in value:
            raise _FieldProblem(
                f"'{value}' is not a collection prefix",
                "write it like u/<user> or <user>/<ticket>, without leading or trailing '/'",
            )
        _collection(value)
    return value


def _config_override(value: Any) -> Any:
    if isinstance(value, str) and not _CONFIG_RE.match(value):
        raise _FieldProblem(
            f"config override '{value}' is not label:field=value",
            "write it like 'isr:doCrosstalk=False': task label, colon, field, '=', value",
        )
    return value


def _config_file(value: Any) -> Any:
    if isinstance(value, str) and not _CONFIG_FILE_RE.match(value):
        raise _FieldProblem(
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
            raise _FieldProblem(f"'{value}' is not a TAI ISO date", fix)
        try:
            datetime.fromisoformat(text.replace(" ", "T"))
        except ValueError as exc:
            raise _FieldProblem(f"'{value}' is not a valid date: {exc}", fix) from None
        return text
    return value


def _date_key(text: str) -> datetime:
    return datetime.fromisoformat(text.replace(" ", "T"))


def _log_level(value: Any) -> Any:
    if isinstance(value, str):
        for item in value.split(","):
            level = item.split("=")[-1].upper()
            if not _LOG_LEVEL_RE.match(item.strip()) or level not in _LEVELS:
                raise _FieldProblem(
                    f"log level '{value}' is not LEVEL or component=LEVEL",
                    f"write e.g. pfs=INFO or .=DEBUG; levels: {', '.join(_LEVELS)}",
                )
    return value


def _int_list(value: Any) -> Any:
    """Visit list in defineFiberProfilesInputs.py syntax ``a..b:stride^c``; ints and lists are joined."""
    if isinstance(value, bool):
        raise _FieldProblem("must be a visit list", "write e.g. '113855..113863' or '11^12^13'")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "^".join(str(v) for v in value)
    if isinstance(value, str):
        text = value.strip()
        try:
            parse_integer_list(text)  # the parser `pfstui define-profiles` uses: same syntax accepted
        except VisitListError as exc:
            raise _FieldProblem(str(exc)) from None  # its message already shows the syntax
        return text
    return value


def _data_id(value: Any) -> Any:
    """One data ID: ``{instrument: PFS, arm: r, spectrograph: 2}`` or ``"instrument=PFS arm=r spectrograph=2"``."""
    fix = "write e.g. {instrument: PFS, arm: r, spectrograph: 2} or \"instrument=PFS arm=r spectrograph=2\""
    if isinstance(value, str):
        pairs: dict[str, Any] = {}
        tokens = value.split()
        if not tokens:
            raise _FieldProblem("data ID is empty", fix)
        for token in tokens:
            key, sep, val = token.partition("=")
            if not sep or not key or not val:
                raise _FieldProblem(f"data ID '{value}': '{token}' is not key=value", fix)
            if key in pairs:
                raise _FieldProblem(f"data ID '{value}': key '{key}' appears twice", fix)
            pairs[key] = int(val) if re.fullmatch(r"-?\d+", val) else val
        value = pairs
    if not isinstance(value, dict):
        raise _FieldProblem(f"data ID must be a mapping, got {type(value).__name__}", fix)
    if not value:
        raise _FieldProblem("data ID is empty", fix)
    for key, val in value.items():
        if not isinstance(key, str) or not _DATA_ID_KEY_RE.match(key):
            raise _FieldProblem(f"data ID key {key!r} is not a dimension name", fix)
        if isinstance(val, bool) or not isinstance(val, (str, int)):
            raise _FieldProblem(f"data ID value for '{key}' must be a string or integer, got {val!r}", fix)
        if isinstance(val, str) and (not val or any(c.isspace() for c in val) or "=" in val):
            raise _FieldProblem(f"data ID value for '{key}' ({val!r}) is empty or has spaces or '='", fix)
    return dict(value)


def _str_or_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


StageName = Annotated[StrictStr, BeforeValidator(_stage_name)]
Collection = Annotated[StrictStr, BeforeValidator(_collection)]
NonEmptyStr = Annotated[StrictStr, BeforeValidator(_non_empty)]
TaiDate = Annotated[StrictStr, BeforeValidator(_tai_date)]
DataId = Annotated[dict[str, Union[StrictStr, StrictInt]], BeforeValidator(_data_id)]
ConfigOverride = Annotated[StrictStr, BeforeValidator(_config_override)]
ConfigFile = Annotated[StrictStr, BeforeValidator(_config_file)]
VisitList = Annotated[StrictStr, BeforeValidator(_int_list)]
PositiveInt = Annotated[StrictInt, Field(ge=1)]


def _instrument_name(value: Any) -> Any:
    if isinstance(value, str) and not _INSTRUMENT_NAME_RE.match(value):
        raise _FieldProblem(
            f"'{value}' is not an instrument short name", "write the short name, e.g. PFS, not the class path"
        )
    return value


InstrumentName = Annotated[StrictStr, BeforeValidator(_instrument_name)]


def _profiles_run(value: Any) -> Any:
    if isinstance(value, str) and not _STAGE_NAME_RE.match(value):
        raise _FieldProblem(
            f"'{value}' is not a profiles_run name", "use letters, digits, '_', '-' and '.', e.g. run18_brn"
        )
    return value


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Defaults(_Model):
    """Settings every pipetask stage uses unless the stage overrides them."""

    #: ``-j``.  Note each extra process costs a fresh Python start (~1.3 s per quantum on small data).
    processes: PositiveInt = 1
    fail_fast: StrictBool = True
    #: ``pipetask --log-level``; ``pfs=INFO`` shows the drp_stella task messages hidden by default.
    log_level: Annotated[StrictStr, BeforeValidator(_log_level)] = "pfs=INFO"


class _StageBase(_Model):
    name: StageName
    after: list[StageName] = Field(default_factory=list)

    @field_validator("after")
    @classmethod
    def _unique_after(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for dep in value:
            if dep in seen:
                raise _FieldProblem(f"'{dep}' is listed twice", "list each dependency once")
            seen.add(dep)
        return value


_DIMENSION_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _dimension_list(value: Any) -> Any:
    value = _str_or_list(value)
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, str) or not _DIMENSION_RE.match(item):
                raise _FieldProblem(f"'{item}' is not a dimension name", "write names such as arm, spectrograph")
    return value


class BpsOptions(_Model):
    """How a ``backend: bps`` stage is submitted (see :mod:`pfstui.bps.submit`)."""

    #: A site of the plan's ``bps_sites``, or ``local`` (Parsl on this machine, built in).
    site: NonEmptyStr = "local"
    #: Cluster the quanta into one job per value of these dimensions (e.g. ``[arm, spectrograph]``:
    #: one job per camera).  Empty: one job per quantum (each pays ~2 s of ``pipetask`` start-up).
    cluster_by: Annotated[list[str], BeforeValidator(_dimension_list)] = Field(default_factory=list)
    #: Per-job requests (``requestCpus``/``requestMemory`` in MiB).
    request_cpus: PositiveInt = 1
    request_memory: PositiveInt = 2048
    #: The final job (``butler aggregate-graph``); BPS defaults to 16 cores / 32 GB.
    final_cpus: PositiveInt = 2
    final_memory: PositiveInt = 2048
    #: Parsl retries of a failed job (the demo failures are deterministic: 0 by default).
    retries: Annotated[int, Field(ge=0)] = 0
    #: Merged verbatim into the submit file last (expert use: any BPS key).
    extra: dict[str, Any] = Field(default_factory=dict)


class PipetaskStage(_StageBase):
    """``pipetask run`` of one pipeline (``backend: local``) or the same run through BPS (``backend: bps``)."""

    kind: Literal["pipetask"]
    pipeline: NonEmptyStr
    inputs: Annotated[list[Collection], BeforeValidator(_str_or_list), Field(min_length=1)]
    #: Output CHAINED collection, relative to the rerun (leading '/' = absolute).
    output: Collection
    query: NonEmptyStr
    config: list[ConfigOverride] = Field(default_factory=list)
    config_files: list[ConfigFile] = Field(default_factory=list)
    register_dataset_types: Literal["auto", True, False] = "auto"
    #: ``--skip-existing-in``; rerun-relative like ``output`` (usually the stage's own output).
    skip_existing_in: Annotated[list[Collection], BeforeValidator(_str_or_list)] = Field(default_factory=list)
    clobber_outputs: StrictBool = False
    processes: PositiveInt | None = None
    fail_fast: StrictBool | None = None
    extra_options: list[StrictStr] = Field(default_factory=list)
    backend: Literal["local", "bps"] = "local"
    bps: BpsOptions | None = None

    @model_validator(mode="after")
    def _bps_fits(self) -> PipetaskStage:
        if self.backend == "bps":
            if '"' in self.query:
                raise _FieldProblem("a bps stage's query cannot contain double quotes (BPS wraps it in them)",
                                    "quote strings in the query with single quotes")
            if self.extra_options:
                raise _FieldProblem("extra_options are pipetask run options; a bps stage cannot pass them",
                                    "remove extra_options, or use bps.extra for BPS keys")
        elif self.bps is not None:
            raise _FieldProblem("'bps' options are set but backend is local", "add `backend: bps`, or remove bps")
        return self


def _check_window(begin: str | None, end: str | None) -> None:
    if begin is not None and end is not None and _date_key(begin) >= _date_key(end):
        raise _FieldProblem(f"{end} is not after begin {begin}", "swap them or leave one out for an open range")


class CertifyStage(_StageBase):
    """Certify a product into a CALIBRATION collection (``butler certify-calibrations`` or ``pfstui certify``)."""

    kind: Literal["certify"]
    #: The pipetask output holding the product; relative to the rerun (leading '/' = absolute).
    input: Collection
    target: Collection
    dataset_type: NonEmptyStr
    begin: TaiDate | None = None
    end: TaiDate | None = None
    data_ids: list[DataId] = Field(default_factory=list)
    search_all_inputs: StrictBool = False

    @field_validator("end")
    @classmethod
    def _end_after_begin(cls, value: str | None, info: ValidationInfo) -> str | None:
        _check_window(info.data.get("begin"), value)
        return value


class CertifyCandidatesStage(_StageBase):
    """Copy ``detectorMap_candidate`` to ``detectorMap_calib`` and certify it (certifyDetectorMaps.py)."""

    kind: Literal["certify-candidates"]
    #: The detectorMap pipetask output; relative to the rerun (leading '/' = absolute).
    collection: Collection
    target: Collection
    begin: TaiDate | None = None
    end: TaiDate | None = None
    instrument: InstrumentName = "PFS"

    @field_validator("end")
    @classmethod
    def _end_after_begin(cls, value: str | None, info: ValidationInfo) -> str | None:
        _check_window(info.data.get("begin"), value)
        return value


class ProfilesGroup(_Model):
    """One fiber-profiles group: bright visits and (optionally) dark visits, ``a..b:stride^c`` syntax."""

    bright: VisitList
    dark: VisitList | None = None


class DefineProfilesStage(_StageBase):
    """Define a fiber-profiles run (defineFiberProfilesInputs.py) for fitFiberProfiles."""

    kind: Literal["define-profiles"]
    #: Instrument *short* name (the RUN written is ``<instrument>/fiberProfilesInputs``).
    instrument: InstrumentName = "PFS"
    #: profiles_run name, e.g. run18_brn.
    profiles_run: Annotated[StrictStr, BeforeValidator(_profiles_run)]
    groups: Annotated[list[ProfilesGroup], Field(min_length=1)]
    update: StrictBool = False

    @field_validator("groups")
    @classmethod
    def _dark_all_or_none(cls, value: list[ProfilesGroup]) -> list[ProfilesGroup]:
        with_dark = [g.dark is not None for g in value]
        if any(with_dark) and not all(with_dark):
            raise _FieldProblem(
                "some groups have 'dark' visits and some do not",
                "give every group a 'dark' list, or none: defineFiberProfilesInputs.py requires it",
            )
        return value


class CleanStage(_StageBase):
    """Delete intermediate datasets from RUN collections (butlerCleanRun.py)."""

    kind: Literal["clean"]
    #: RUN collection glob, relative to the rerun (leading '/' = absolute): ``bias/*``.
    glob: Annotated[StrictStr, BeforeValidator(_collection_glob)]
    dataset_types: Annotated[list[NonEmptyStr], BeforeValidator(_str_or_list), Field(min_length=1)]
    where: NonEmptyStr | None = None


class DecertifyStage(_StageBase):
    """Remove (part of) certified validity ranges (butlerDecertify.py)."""

    kind: Literal["decertify"]
    collection: Collection
    dataset_type: NonEmptyStr
    begin: TaiDate | None = None
    end: TaiDate | None = None
    data_ids: list[DataId] = Field(default_factory=list)

    @field_validator("end")
    @classmethod
    def _end_after_begin(cls, value: str | None, info: ValidationInfo) -> str | None:
        _check_window(info.data.get("begin"), value)
        return value

    @model_validator(mode="after")
    def _not_everything(self) -> DecertifyStage:
        if self.begin is None and self.end is None and not self.data_ids:
            raise _FieldProblem(
                f"decertify without begin, end or data_ids would remove every certified "
                f"'{self.dataset_type}' in '{self.collection}'",
                "give a begin and/or end date, or data_ids",
            )
        return self


Stage = Annotated[
    Union[PipetaskStage, CertifyStage, CertifyCandidatesStage, DefineProfilesStage, CleanStage, DecertifyStage],
    Field(discriminator="kind"),
]
#: Any one stage model (the plain union, for type hints).
AnyStage = Union[PipetaskStage, CertifyStage, CertifyCandidatesStage, DefineProfilesStage, CleanStage, DecertifyStage]
_KIND_MODELS: dict[str, type[_StageBase]] = {
    "pipetask": PipetaskStage,
    "certify": CertifyStage,
    "certify-candidates": CertifyCandidatesStage,
    "define-profiles": DefineProfilesStage,
    "clean": CleanStage,
    "decertify": DecertifyStage,
}
#: Fields holding rerun-relative collection names, per kind (see the module docstring).
_RELATIVE_FIELDS: dict[str, tuple[str, ...]] = {
    "pipetask": ("output", "skip_existing_in"),
    "certify": ("input",),
    "certify-candidates": ("collection",),
    "clean": ("glob",),
}


class Plan(_Model):
    """A validated calibration plan (schema version 1)."""

    version: Literal[1] = PLAN_SCHEMA_VERSION
    repository: NonEmptyStr
    instrument: Annotated[StrictStr, BeforeValidator(_class_path)]
    rerun: Annotated[StrictStr, BeforeValidator(_rerun)]
    defaults: Defaults = Field(default_factory=Defaults)
    #: BPS sites by name (``site.<name>`` of the submit file: ``class`` plus that class's options), for
    #: ``backend: bps`` stages.  ``local`` is built in unless defined here.
    bps_sites: dict[Annotated[StrictStr, BeforeValidator(_non_empty)], dict[str, Any]] = Field(default_factory=dict)
    stages: Annotated[list[Stage], Field(min_length=1)]

    _source: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_graph(self, info: ValidationInfo) -> Plan:
        # The file loader runs these checks itself so it can point at lines.
        if not (info.context or {}).get("skip_cross_checks"):
            issues = _cross_issues(self)
            if issues:
                _path, problem, fix = issues[0]
                raise _FieldProblem(problem, fix)
        return self

    def __eq__(self, other: object) -> bool:
        # Where a plan was read from is not part of what it says.
        if not isinstance(other, Plan):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    @property
    def source(self) -> str | None:
        """The file this plan was loaded from, if any."""
        return self._source

    def stage(self, name: str) -> AnyStage:
        """The stage called ``name``; KeyError naming the known stages otherwise."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage '{name}' in the plan (stages: {', '.join(s.name for s in self.stages)})")

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def collection(self, name: str) -> str:
        """Resolve a rerun-relative collection name: ``bias`` → ``u/me/bias``; ``/X/y`` → ``X/y``."""
        if name.startswith("/"):
            return name[1:]
        return f"{self.rerun}/{name}"

    def ordered_stages(self) -> list[AnyStage]:
        """Stages in dependency order; file order is kept wherever the dependencies allow it."""
        by_name = {s.name: s for s in self.stages}
        done: set[str] = set()
        out: list[Any] = []

        def visit(stage: Any, trail: tuple[str, ...]) -> None:
            if stage.name in done:
                return
            if stage.name in trail:  # pragma: no cover - cycles are rejected at validation
                raise ValueError(f"dependency cycle through {stage.name}")
            for dep in stage.after:
                visit(by_name[dep], trail + (stage.name,))
            done.add(stage.name)
            out.append(stage)

        for stage in self.stages:
            visit(stage, ())
        return out

    def dependents(self, name: str) -> list[str]:
        """Stages that list ``name`` in ``after`` (directly)."""
        return [s.name for s in self.stages if name in s.after]


def _cross_issues(plan: Plan) -> list[tuple[tuple[Any, ...], str, str | None]]:
    """Checks across stages: duplicate names, unknown dependencies, cycles, rerun-prefixed names."""
    issues: list[tuple[tuple[Any, ...], str, str | None]] = []
    first_index: dict[str, int] = {}
    for i, stage in enumerate(plan.stages):
        if stage.name in first_index:
            issues.append(
                (
                    ("stages", i, "name"),
                    f"duplicate stage name '{stage.name}': stage #{first_index[stage.name] + 1} has it too",
                    "give every stage a unique name",
                )
            )
        else:
            first_index[stage.name] = i
    names = set(first_index)
    for i, stage in enumerate(plan.stages):
        for j, dep in enumerate(stage.after):
            if dep == stage.name:
                issues.append((("stages", i, "after", j), "stage depends on itself", f"remove '{dep}' from after"))
            elif dep not in names:
                close = difflib.get_close_matches(dep, sorted(names), n=1, cutoff=0.6)
                fix = f"did you mean '{close[0]}'?" if close else f"known stages: {', '.join(sorted(names))}"
                issues.append((("stages", i, "after", j), f"unknown dependency '{dep}' in after", fix))
    if not issues:
        cycle = _find_cycle(plan)
        if cycle:
            i = next(k for k, s in enumerate(plan.stages) if s.name == cycle[0])
            issues.append(
                (
                    ("stages", i, "after"),
                    "dependency cycle: " + " after ".join(f"'{n}'" for n in cycle + [cycle[0]]),
                    "remove one of these dependencies",
                )
            )
    for i, stage in enumerate(plan.stages):
        site = stage.bps.site if getattr(stage, "bps", None) is not None else None
        if site is not None and site != "local" and site not in plan.bps_sites:
            known = ", ".join(["local", *sorted(plan.bps_sites)])
            issues.append((("stages", i, "bps", "site"), f"unknown bps site '{site}'",
                           f"define it under bps_sites, or use one of: {known}"))
    for name, site_config in plan.bps_sites.items():
        if not isinstance(site_config.get("class"), str):
            issues.append((("bps_sites", name), f"bps site '{name}' has no class",
                           "add e.g. `class: lsst.ctrl.bps.parsl.sites.Local` (or ...sites.Slurm)"))
    prefix = plan.rerun + "/"
    for i, stage in enumerate(plan.stages):
        for field in _RELATIVE_FIELDS.get(stage.kind, ()):
            value = getattr(stage, field)
            for j, name in enumerate(value if isinstance(value, list) else [value]):
                if name.startswith(prefix) or name == plan.rerun:
                    path = ("stages", i, field, j) if isinstance(value, list) else ("stages", i, field)
                    rel = name[len(prefix):] or "<name>"
                    issues.append(
                        (
                            path,
                            f"{field} '{name}' already starts with the rerun '{plan.rerun}'",
                            f"names here are relative to the rerun: write '{rel}', or '/{name}' for an absolute name",
                        )
                    )
    return issues


def _find_cycle(plan: Plan) -> list[str] | None:
    by_name = {s.name: s for s in plan.stages}
    state: dict[str, int] = {}  # 1 = on stack, 2 = done
    stack: list[str] = []

    def dfs(name: str) -> list[str] | None:
        state[name] = 1
        stack.append(name)
        for dep in by_name[name].after:
            if dep not in by_name:
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep):]
            if dep not in state:
                found = dfs(dep)
                if found:
                    return found
        stack.pop()
        state[name] = 2
        return None

    for stage in plan.stages:
        if stage.name not in state:
            found = dfs(stage.name)
            if found:
                return found
    return None


# --------------------------------------------------------------------------------------------------
# Variables
# --------------------------------------------------------------------------------------------------

_VAR_RE = re.compile(r"\$(?:\$|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*)|)")
_VAR_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _UnsetVariable(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _BadVariable(Exception):
    pass


def expand_vars(text: str, env: Mapping[str, str]) -> str:
    """Replace ``${NAME}`` / ``$NAME`` from ``env``; ``$$`` is a literal ``$``; a lone ``$`` stays.

    Raises KeyError-like ``_UnsetVariable`` for a missing name; callers turn it into a PlanError.
    """

    def repl(m: re.Match[str]) -> str:
        whole = m.group(0)
        if whole == "$$":
            return "$"
        if whole == "$":
            if m.end() < len(text) and text[m.end()] == "{":
                raise _BadVariable("'${' without a closing '}'")
            return "$"
        name = m.group(1) if m.group(1) is not None else m.group(2)
        if not _VAR_NAME_RE.match(name):
            raise _BadVariable(f"'${{{name}}}' is not a valid variable reference")
        if name not in env:
            raise _UnsetVariable(name)
        return str(env[name])

    return _VAR_RE.sub(repl, text)


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_STR_TAG = "tag:yaml.org,2002:str"
_TOP_FIELDS = tuple(Plan.model_fields)
_FIELD_EXAMPLES = {
    "repository": "repository: /path/to/datastore",
    "instrument": "instrument: lsst.obs.pfs.PrimeFocusSpectrograph",
    "rerun": "rerun: u/<user>",
    "stages": "stages: [...] (see `pfstui plan new`)",
    "name": "name: <unique stage name>",
    "kind": "kind: pipetask",
    "pipeline": "pipeline: $DRP_STELLA_DIR/pipelines/bias.yaml",
    "inputs": "inputs: [PFS/raw/all, PFS/calib]",
    "output": "output: bias (relative to the rerun)",
    "query": "query: \"instrument='PFS' AND visit.target_name = 'BIAS'\"",
    "input": "input: bias (the pipetask output, relative to the rerun)",
    "target": "target: PFS/calib",
    "dataset_type": "dataset_type: bias",
    "collection": "collection: detectorMap (relative to the rerun)",
    "profiles_run": "profiles_run: run18_brn",
    "groups": "groups: [{bright: '113855..113863', dark: '113845..113853'}]",
    "bright": "bright: '113855..113863'",
    "glob": "glob: 'bias/*' (relative to the rerun)",
    "dataset_types": "dataset_types: [biasProc]",
}
_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


class _Located:
    """YAML data converted to Python, plus the line of every mapping key / list item."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[tuple[Any, ...], int] = {(): 1}
        self.issues: list[tuple[tuple[Any, ...], str, str | None]] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def convert(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.lines[path + ("<<",)] = key_node.start_mark.line + 1
                    self.issues.append((path + ("<<",), "YAML merge keys ('<<') are not supported", "write the fields out"))
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    self.lines[path + ("?",)] = key_node.start_mark.line + 1
                    self.issues.append((path + ("?",), "a mapping key must be a plain name", "write key: value"))
                    continue
                key = self._scalar(key_node)
                kpath = path + (key,)
                if key in out:
                    prev = self.lines.get(kpath)
                    self.lines[kpath] = key_node.start_mark.line + 1
                    self.issues.append((kpath, f"duplicate key '{key}' (first at line {prev})", "keep one of them"))
                    continue
                self.lines[kpath] = key_node.start_mark.line + 1
                out[key] = self.convert(value_node, kpath)
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                self.lines[path + (i,)] = item.start_mark.line + 1
                items.append(self.convert(item, path + (i,)))
            return items
        return self._scalar(node)

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        # Dates stay strings (they are TAI, and PyYAML would turn them into naive datetimes).
        if node.tag in (_STR_TAG, _TIMESTAMP_TAG):
            return node.value
        return self._constructor.construct_object(node, deep=True)

    def line(self, path: tuple[Any, ...]) -> int:
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return 1


def _stage_label(data: Any, path: tuple[Any, ...]) -> str | None:
    if len(path) >= 2 and path[0] == "stages" and isinstance(path[1], int):
        stages = data.get("stages") if isinstance(data, dict) else None
        if isinstance(stages, list) and path[1] < len(stages):
            item = stages[path[1]]
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                return item["name"]
        return f"#{path[1] + 1}"
    return None


def _field_label(path: tuple[Any, ...]) -> str | None:
    rest = path[2:] if (len(path) >= 2 and path[0] == "stages" and isinstance(path[1], int)) else path
    text = ""
    for part in rest:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or None


def _issue(loc: _Located, data: Any, path: tuple[Any, ...], problem: str, fix: str | None) -> PlanIssue:
    return PlanIssue(
        source=loc.source,
        line=loc.line(path),
        stage=_stage_label(data, path),
        field=_field_label(path),
        problem=problem,
        fix=fix,
    )


def _expand_all(value: Any, path: tuple[Any, ...], env: Mapping[str, str], loc: _Located, data: Any, out: list[PlanIssue]) -> Any:
    if isinstance(value, dict):
        return {k: _expand_all(v, path + (k,), env, loc, data, out) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_all(v, path + (i,), env, loc, data, out) for i, v in enumerate(value)]
    if isinstance(value, str) and "$" in value:
        field = _field_label(path)
        try:
            return expand_vars(value, env)
        except _UnsetVariable as exc:
            if exc.name == "DRP_STELLA_DIR":
                fix = "set up the PFS stack first (`setup drp_stella`), or write the pipeline path in full"
            else:
                fix = f"export {exc.name}=... before running pfstui, or write the value in full"
            out.append(_issue(loc, data, path, f"{field}: environment variable {exc.name} is not set", fix))
        except _BadVariable as exc:
            out.append(_issue(loc, data, path, f"{field}: {exc}", "write ${NAME} or $NAME, or $$ for a literal '$'"))
    return value


def _allowed_fields(data: Any, path: tuple[Any, ...]) -> list[str]:
    """Field names allowed at the mapping ``path`` points into (for did-you-mean)."""
    parent = path[:-1]
    if parent == ():
        return list(_TOP_FIELDS)
    if parent == ("defaults",):
        return list(Defaults.model_fields)
    if len(parent) >= 2 and parent[0] == "stages" and isinstance(parent[1], int):
        try:
            kind = data["stages"][parent[1]]["kind"]
        except (KeyError, IndexError, TypeError):
            kind = None
        model = _KIND_MODELS.get(kind) if isinstance(kind, str) else None
        if model is None:
            return []
        if len(parent) == 2:
            return list(model.model_fields)
        if len(parent) == 4 and parent[2] == "groups":
            return list(ProfilesGroup.model_fields)
    return []


def _translate(err: Mapping[str, Any], data: Any, loc: _Located) -> PlanIssue:
    """One pydantic error → one PlanIssue with a line, a plain-words problem and a fix."""
    path = tuple(err["loc"])
    # Discriminated unions put the tag into the location: ('stages', 3, 'pipetask', 'inptus').
    if len(path) >= 3 and path[0] == "stages" and isinstance(path[1], int) and path[2] in _KIND_MODELS:
        path = path[:2] + path[3:]
    kind = err["type"]
    field = _field_label(path)
    ctx = err.get("ctx") or {}
    if kind == "missing":
        name = str(path[-1])
        example = _FIELD_EXAMPLES.get(name)
        return _issue(loc, data, path, f"missing required field '{name}'", f"add {example}" if example else f"add '{name}: ...'")
    if kind == "extra_forbidden":
        name = str(path[-1])
        allowed = _allowed_fields(data, path)
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
        if close:
            fix = f"did you mean '{close[0]}'?"
        elif allowed:
            fix = f"allowed fields: {', '.join(allowed)}"
        else:
            fix = "remove it"
        return _issue(loc, data, path, f"unknown field '{name}'", fix)
    if kind == "union_tag_invalid":
        tag = ctx.get("tag")
        close = difflib.get_close_matches(str(tag), STAGE_KINDS, n=1, cutoff=0.6)
        fix = (f"did you mean '{close[0]}'? " if close else "") + f"kinds: {', '.join(STAGE_KINDS)}"
        shown = f"'{tag}'" if isinstance(tag, str) else repr(tag)
        return _issue(loc, data, path + ("kind",), f"unknown kind {shown}", fix)
    if kind == "union_tag_not_found":
        return _issue(loc, data, path, "missing required field 'kind'", f"add kind: one of {', '.join(STAGE_KINDS)}")
    if kind in ("value_error", "assertion_error"):
        exc = ctx.get("error")
        if isinstance(exc, _FieldProblem):
            return _issue(loc, data, path, f"{field}: {exc.problem}" if field else exc.problem, exc.fix)
        return _issue(loc, data, path, f"{field}: {exc}" if field else str(exc), None)
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        if field == "register_dataset_types":
            expected = "auto, true or false"
        elif field == "version":
            return _issue(
                loc, data, path, f"plan schema version {err.get('input')!r} is not supported",
                f"this pfstui reads version {PLAN_SCHEMA_VERSION}; write version: {PLAN_SCHEMA_VERSION}",
            )
        return _issue(loc, data, path, f"{field}: must be {expected}, got {err.get('input')!r}", None)
    if kind in _TYPE_WORDS:
        got = err.get("input")
        prefix = f"{field}: " if field else ""
        if got is None:
            return _issue(loc, data, path, f"{prefix}has no value", "write a value after the colon, or remove the field")
        hint = None
        if kind == "string_type":
            hint = "quote the value"
        elif kind == "list_type":
            hint = "write [a, b] or one '- item' per line"
        elif kind in ("model_type", "model_attributes_type", "dict_type") and not field:
            hint = "a stage is a mapping: '- name: ...' then 'kind: ...' and its fields, indented"
        return _issue(loc, data, path, f"{prefix}must be {_TYPE_WORDS[kind]}, got {type(got).__name__} {got!r}", hint)
    if kind == "too_short":
        return _issue(loc, data, path, f"{field}: must not be empty", "list at least one item")
    if kind == "greater_than_equal":
        return _issue(loc, data, path, f"{field}: must be at least {ctx.get('ge')}, got {err.get('input')!r}", None)
    return _issue(loc, data, path, f"{field}: {err['msg']}" if field else err["msg"], None)


def _merge_typos(issues: list[PlanIssue]) -> list[PlanIssue]:
    """Drop "missing field X" when an unknown field in the same place already says "did you mean X?".

    Missing-field issues can only point at the start of their mapping, so they are listed after the
    issues that have an exact line.
    """
    suggested = {
        (i.stage, i.problem.split("'")[1], i.fix.split("'")[1])
        for i in issues
        if i.problem.startswith("unknown field") and i.fix and i.fix.startswith("did you mean")
    }
    kept = [
        i
        for i in issues
        if not (
            i.problem.startswith("missing required field")
            and any(s == i.stage and want == i.problem.split("'")[1] for s, _typo, want in suggested)
        )
    ]
    return sorted(kept, key=lambda i: (i.problem.startswith("missing required field"), i.line or 0))


def parse_plan(
    text: str,
    *,
    source: str = "<plan>",
    env: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> Plan:
    """Validate plan text; raise PlanError listing every problem with its line.

    ``base_dir`` is the folder a relative ``repository`` is resolved against (the plan file's folder).
    """
    if env is None:
        from pfstui.plan.variables import stage_env  # the module imports this one

        env = stage_env()
    loc = _Located(source)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = "YAML syntax error: " + " ".join(p for p in (exc.context, exc.problem) if p)
        raise PlanError(
            [PlanIssue(source, line, None, None, problem, "fix the YAML near that line; quote values containing ': ' or ' #'")]
        ) from None
    except yaml.YAMLError as exc:
        raise PlanError([PlanIssue(source, None, None, None, f"YAML error: {exc}", "fix the YAML")]) from None
    if node is None:
        raise PlanError([PlanIssue(source, 1, None, None, "the plan is empty", "start from `pfstui plan new`")])
    data = loc.convert(node, ())
    issues = [_issue(loc, data, p, m, f) for p, m, f in loc.issues]
    if not isinstance(data, dict):
        raise PlanError(
            [PlanIssue(source, 1, None, None, "the plan must be a mapping with repository, instrument, rerun, stages", "start from `pfstui plan new`")]
        )
    data = _expand_all(data, (), env, loc, data, issues)
    if issues:
        raise PlanError(issues)

    repo = data.get("repository")
    if isinstance(repo, str) and repo and "://" not in repo:
        repo_path = Path(repo).expanduser()
        if not repo_path.is_absolute() and base_dir is not None:
            repo_path = Path(base_dir) / repo_path
        data["repository"] = str(repo_path)

    try:
        plan = Plan.model_validate(data, context={"skip_cross_checks": True})
    except ValidationError as exc:
        raise PlanError(_merge_typos([_translate(e, data, loc) for e in exc.errors()])) from None
    cross = [_issue(loc, data, p, m, f) for p, m, f in _cross_issues(plan)]
    if cross:
        raise PlanError(cross)
    plan._source = source
    return plan


def load_plan(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Plan:
    """Read and validate a plan file; PlanError (with file and line) on any problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(
            [PlanIssue(source, None, None, None, "no such plan file", "check the path, or create one with `pfstui plan new`")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError([PlanIssue(source, None, None, None, f"cannot read the plan: {exc}", "check the file")]) from None
    return parse_plan(text, source=source, env=env, base_dir=Path(path).resolve().parent)


# --------------------------------------------------------------------------------------------------
# Writing and fingerprints
# --------------------------------------------------------------------------------------------------


def _stage_dict(stage: Any) -> dict[str, Any]:
    body = stage.model_dump(mode="json", exclude_defaults=True)
    out: dict[str, Any] = {"name": body.pop("name"), "kind": stage.kind}
    body.pop("kind", None)
    if stage.after:
        out["after"] = body.pop("after")
    out.update(body)
    return out


def _escape_dollars(value: Any) -> Any:
    """Values are already expanded: write each '$' as '$$' so loading the dump does not expand again."""
    if isinstance(value, dict):
        return {k: _escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_dollars(v) for v in value]
    if isinstance(value, str):
        return value.replace("$", "$$")
    return value


def dump_plan(plan: Plan, path: str | os.PathLike[str] | None = None, *, overwrite: bool = True) -> str:
    """The plan as YAML (variables already expanded, literal '$' written as '$$'); also written
    atomically to ``path`` if given.

    ``parse_plan(dump_plan(p)) == p``.  Templates with comments come from ``templates.render_template``.
    """
    doc: dict[str, Any] = {
        "version": plan.version,
        "repository": plan.repository,
        "instrument": plan.instrument,
        "rerun": plan.rerun,
    }
    defaults = plan.defaults.model_dump(mode="json", exclude_defaults=True)
    if defaults:
        doc["defaults"] = defaults
    doc["stages"] = [_stage_dict(s) for s in plan.stages]
    doc = _escape_dollars(doc)
    text = f"# pfstui calibration plan (schema version {PLAN_SCHEMA_VERSION})\n" + yaml.safe_dump(
        doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000
    )
    if path is not None:
        write_plan_text(Path(path), text, overwrite=overwrite)
    return text


_FINGERPRINT_IGNORES = ("name", "after", "processes", "fail_fast")


def stage_fingerprint(plan: Plan, stage: Any) -> str:
    """A stable hash of what a stage *does*: changes when its products would differ, not otherwise.

    Covered: the stage's kind and fields (names already expanded and rerun-resolved) plus the plan's
    repository, instrument and rerun.  Not covered: the stage name, ``after``, ``processes`` and
    ``fail_fast`` (how or when it runs, not what it makes) and the log level.  Fields left at their
    defaults are omitted, so adding a new optional field in a later pfstui keeps old fingerprints.
    """
    if isinstance(stage, str):
        stage = plan.stage(stage)
    body = stage.model_dump(mode="json", exclude_defaults=True)
    for key in _FINGERPRINT_IGNORES:
        body.pop(key, None)
    body["kind"] = stage.kind
    for field in _RELATIVE_FIELDS.get(stage.kind, ()):
        if field in body:
            value = body[field]
            body[field] = [plan.collection(v) for v in value] if isinstance(value, list) else plan.collection(value)
    doc = {
        "v": 1,
        "repository": plan.repository,
        "instrument": plan.instrument,
        "rerun": plan.rerun,
        "stage": body,
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def write_plan_text(path: Path, text: str, *, overwrite: bool) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the whole new one, never a part.

    With ``overwrite=False`` an existing file is never replaced, not even one that appears while this
    runs (``atomic``'s exclusive mode), and PlanFileExistsError is raised.
    """
    try:
        atomic_write_text(path, text, exclusive=not overwrite)
    except StateFileExistsError:
        raise PlanFileExistsError(
            [PlanIssue(str(path), None, None, None, "file already exists", "choose another path or use --force to overwrite it")]
        ) from None
