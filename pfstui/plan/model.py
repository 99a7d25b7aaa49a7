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
    defaults: {processes: 16, fail_fast: true, log_level: pfs=INFO, approvals: true}
    stack: {setup: "source /opt/lsst/loadLSST.bash && setup drp_stella"}   # where stages get pipetask
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
pipetask ``output`` and ``skip_existing_in``, verify ``collection``, certify ``input``, certify-candidates
``collection`` and clean ``glob``.  ``output: bias`` with ``rerun: u/me`` means ``u/me/bias``.  A leading ``/``
makes such a name absolute (``output: /PFS/special/bias`` means ``PFS/special/bias``).  Fields that name shared
collections are always written in full: pipetask ``inputs``, certify/certify-candidates ``target``,
decertify ``collection``.  This mirrors the tutorial, where only ``-o "$RERUN"/bias`` and the certify and
clean arguments carry ``$RERUN``.

Variables (``${NAME}``, ``$NAME``, ``$$``) are resolved when the plan is loaded: see
:mod:`pfstui.plan.variables`.  Dates are TAI ISO-8601 without a time zone (``2000-01-01T00:00:00``); either
bound may be left out, which means "open" (unbounded), as in ``butler certify-calibrations``.

This module holds the models (what a plan says) and the checks across stages.  The field syntax is in
:mod:`pfstui.plan.fields`, reading a file with line numbers in :mod:`pfstui.plan.loader`, writing one in
:mod:`pfstui.plan.writer`, and how problems are reported in :mod:`pfstui.plan.issues`.
"""

from __future__ import annotations

import difflib
import os
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pfstui.plan.fields import (
    ClassPath,
    Collection,
    CollectionGlob,
    ConfigFile,
    ConfigOverride,
    DataId,
    DimensionList,
    InstrumentName,
    LogLevel,
    NonEmptyStr,
    PositiveInt,
    ProfilesRun,
    Rerun,
    StageLimits,
    StageName,
    TaiDate,
    VerifyLimits,
    VerifyType,
    VisitList,
    check_limits,
    check_window,
    str_or_list,
)
from pfstui.plan.issues import FieldProblem

__all__ = [
    "KIND_MODELS",
    "PLAN_SCHEMA_VERSION",
    "RELATIVE_FIELDS",
    "STAGE_KINDS",
    "AnyStage",
    "BpsOptions",
    "CertifyCandidatesStage",
    "CertifyStage",
    "CleanStage",
    "DecertifyStage",
    "Defaults",
    "DefineProfilesStage",
    "PipetaskStage",
    "Plan",
    "ProfilesGroup",
    "Stack",
    "StackTools",
    "Stage",
    "VerifyStage",
    "cross_issues",
]

PLAN_SCHEMA_VERSION = 1
STAGE_KINDS = ("pipetask", "verify", "certify", "certify-candidates", "define-profiles", "clean", "decertify")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Defaults(_Model):
    """Settings the stages use unless a stage overrides them."""

    #: ``-j``.  Note each extra process costs a fresh Python start (~1.3 s per quantum on small data).
    processes: PositiveInt = 1
    fail_fast: StrictBool = True
    #: ``pipetask --log-level``; ``pfs=INFO`` shows the drp_stella task messages hidden by default.
    log_level: LogLevel = "pfs=INFO"
    #: ``false``: no stage waits for an operator's approval, whatever its ``approve`` says (an unattended
    #: night).  Why a plan-wide switch: the gates are set per stage by the template, and turning each off by
    #: hand before a night is how one gets forgotten.
    approvals: StrictBool = True
    #: ``{bias: {mean: [5, 20]}}``: warn and fail limits every verify stage of the product uses instead of
    #: pfstui.verify.limits' (a stage's own ``limits`` win); they become its ``--limit`` flags.
    verify_limits: VerifyLimits = Field(default_factory=dict)


def _tool_path(value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        if not os.path.isabs(value):
            raise FieldProblem(f"{value!r} is not an absolute path", "write the program's full path, e.g. "
                               "/opt/lsst/stack/bin/pipetask")
        if not (os.path.isfile(value) and os.access(value, os.X_OK)):
            raise FieldProblem(f"{value} is not an executable file here", "correct the path, or remove it to run "
                               "the program of the stack's setup")
    return value


ToolPath = Annotated[NonEmptyStr, BeforeValidator(_tool_path)]


class StackTools(_Model):
    """Explicit programs for the stages (each an absolute path); a program not named comes from the setup."""

    pipetask: ToolPath | None = None
    butler: ToolPath | None = None
    bps: ToolPath | None = None


class Stack(_Model):
    """Where the stages get ``pipetask``, ``butler`` and ``bps``: the LSST stack, not pfstui's own venv.

    Why: production runs the stack set up with eups (``setup drp_stella``), whose pipetask has obs_pfs and
    drp_stella; pfstui's venv has neither.  ``setup`` is shell text run by a fixed ``bash -c`` script before
    the stage's program, which gets its arguments as separate words (never spliced into shell text: see
    :func:`pfstui.plan.argv.stack_prefix`); ``tools`` names programs by path.  pfstui's own actions
    (certify, clean, ...) keep running in pfstui's Python: its Butler reads never need the stack's classes.
    """

    setup: NonEmptyStr | None = None
    tools: StackTools = Field(default_factory=StackTools)

    @model_validator(mode="after")
    def _says_something(self) -> Stack:
        if self.setup is None and not self.tools.model_dump(exclude_none=True):
            raise FieldProblem("names neither a setup nor tools",
                               'add setup: "source /opt/lsst/loadLSST.bash && setup drp_stella", or '
                               "tools: {pipetask: /path/to/pipetask}, or remove stack to use pfstui's venv")
        return self

    def tool(self, name: str) -> str | None:
        """The path the plan names for ``name`` ('pipetask', 'butler', 'bps'), if any."""
        return getattr(self.tools, name, None)


class _StageBase(_Model):
    name: StageName
    after: list[StageName] = Field(default_factory=list)
    #: The queue stops before this stage (status ``waiting``) until an operator has seen its effect (the
    #: preview of a registry change) and approved it.  The pfs template sets it on every stage that
    #: certifies into a shared collection.
    approve: StrictBool = False

    @field_validator("after")
    @classmethod
    def _unique_after(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for dep in value:
            if dep in seen:
                raise FieldProblem(f"'{dep}' is listed twice", "list each dependency once")
            seen.add(dep)
        return value


class BpsOptions(_Model):
    """How a ``backend: bps`` stage is submitted (see :mod:`pfstui.bps.submit`)."""

    #: A site of the plan's ``bps_sites``, or ``local`` (Parsl on this machine, built in).
    site: NonEmptyStr = "local"
    #: Cluster the quanta into one job per value of these dimensions (e.g. ``[arm, spectrograph]``:
    #: one job per camera).  Empty: one job per quantum (each pays ~2 s of ``pipetask`` start-up).
    cluster_by: DimensionList = Field(default_factory=list)
    #: Per-job requests (``requestCpus``/``requestMemory`` in MiB).
    request_cpus: PositiveInt = 1
    request_memory: PositiveInt = 2048
    #: The final job (``butler aggregate-graph``); BPS defaults to 16 cores / 32 GB.
    final_cpus: PositiveInt = 2
    final_memory: PositiveInt = 2048
    #: Parsl retries of a failed job (the demo failures are deterministic: 0 by default).
    retries: Annotated[int, Field(ge=0, le=100)] = 0
    #: Merged verbatim into the submit file last (expert use: any BPS key).
    extra: dict[str, Any] = Field(default_factory=dict)


class PipetaskStage(_StageBase):
    """``pipetask run`` of one pipeline (``backend: local``) or the same run through BPS (``backend: bps``)."""

    kind: Literal["pipetask"]
    pipeline: NonEmptyStr
    inputs: Annotated[list[Collection], BeforeValidator(str_or_list), Field(min_length=1)]
    #: Output CHAINED collection, relative to the rerun (leading '/' = absolute).
    output: Collection
    query: NonEmptyStr
    config: list[ConfigOverride] = Field(default_factory=list)
    config_files: list[ConfigFile] = Field(default_factory=list)
    register_dataset_types: Literal["auto", True, False] = "auto"
    #: ``--skip-existing-in``; rerun-relative like ``output`` (usually the stage's own output).
    skip_existing_in: Annotated[list[Collection], BeforeValidator(str_or_list)] = Field(default_factory=list)
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
                raise FieldProblem("a bps stage's query cannot contain double quotes (BPS wraps it in them)",
                                    "quote strings in the query with single quotes")
            if self.extra_options:
                raise FieldProblem("extra_options are pipetask run options; a bps stage cannot pass them",
                                    "remove extra_options, or use bps.extra for BPS keys")
        elif self.bps is not None:
            raise FieldProblem("'bps' options are set but backend is local", "add `backend: bps`, or remove bps")
        return self


class CertifyStage(_StageBase):
    """Certify a product into a CALIBRATION collection (``pfstui certify``: preview, apply, journal, undo)."""

    kind: Literal["certify"]
    #: The pipetask output holding the product; relative to the rerun (leading '/' = absolute).
    input: Collection
    target: Collection
    dataset_type: NonEmptyStr
    begin: TaiDate | None = None
    end: TaiDate | None = None
    data_ids: list[DataId] = Field(default_factory=list)
    search_all_inputs: StrictBool = False
    #: ``{camera: reason}``: certify a camera that failed verification anyway (``pfstui certify --override``).
    override: dict[NonEmptyStr, NonEmptyStr] = Field(default_factory=dict)

    @field_validator("end")
    @classmethod
    def _end_after_begin(cls, value: str | None, info: ValidationInfo) -> str | None:
        check_window(info.data.get("begin"), value)
        return value


class VerifyStage(_StageBase):
    """Verify a new product camera by camera before a certify (``pfstui verify``: a failing camera fails the stage)."""

    kind: Literal["verify"]
    #: The pipetask output holding the new product; relative to the rerun (leading '/' = absolute).
    collection: Collection
    dataset_type: VerifyType
    #: The CALIBRATION collection (or chain) holding the current product, compared with.
    against: Collection = "PFS/calib"
    #: When the current product is looked up: the validity begin of the certify that follows (None: now).
    begin: TaiDate | None = None
    #: ``{check: [warn, fail]}`` of this product, over the plan's ``defaults.verify_limits``.
    limits: StageLimits = Field(default_factory=dict)

    @field_validator("limits", mode="before")
    @classmethod
    def _known_checks(cls, value: Any, info: ValidationInfo) -> Any:
        product = info.data.get("dataset_type")
        return check_limits(product, value) if product else value


class CertifyCandidatesStage(_StageBase):
    """Copy ``detectorMap_candidate`` to ``detectorMap_calib`` and certify it (certifyDetectorMaps.py)."""

    kind: Literal["certify-candidates"]
    #: The detectorMap pipetask output; relative to the rerun (leading '/' = absolute).
    collection: Collection
    target: Collection
    begin: TaiDate | None = None
    end: TaiDate | None = None
    instrument: InstrumentName = "PFS"
    #: The one RUN of ``collection`` to take the candidates from, when several RUNs hold the same camera
    #: (certifyDetectorMaps.py refuses those); relative to the rerun.
    run: Collection | None = None

    @field_validator("end")
    @classmethod
    def _end_after_begin(cls, value: str | None, info: ValidationInfo) -> str | None:
        check_window(info.data.get("begin"), value)
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
    profiles_run: ProfilesRun
    groups: Annotated[list[ProfilesGroup], Field(min_length=1)]
    update: StrictBool = False

    @field_validator("groups")
    @classmethod
    def _dark_all_or_none(cls, value: list[ProfilesGroup]) -> list[ProfilesGroup]:
        with_dark = [g.dark is not None for g in value]
        if any(with_dark) and not all(with_dark):
            raise FieldProblem(
                "some groups have 'dark' visits and some do not",
                "give every group a 'dark' list, or none: defineFiberProfilesInputs.py requires it",
            )
        return value


class CleanStage(_StageBase):
    """Delete intermediate datasets from RUN collections (butlerCleanRun.py)."""

    kind: Literal["clean"]
    #: RUN collection glob, relative to the rerun (leading '/' = absolute): ``bias/*``.
    glob: CollectionGlob
    dataset_types: Annotated[list[NonEmptyStr], BeforeValidator(str_or_list), Field(min_length=1)]
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
        check_window(info.data.get("begin"), value)
        return value

    @model_validator(mode="after")
    def _not_everything(self) -> DecertifyStage:
        if self.begin is None and self.end is None and not self.data_ids:
            raise FieldProblem(
                f"decertify without begin, end or data_ids would remove every certified "
                f"'{self.dataset_type}' in '{self.collection}'",
                "give a begin and/or end date, or data_ids",
            )
        return self


#: Any one stage model (the plain union, for type hints).
AnyStage = Union[PipetaskStage, VerifyStage, CertifyStage, CertifyCandidatesStage, DefineProfilesStage, CleanStage,
                 DecertifyStage]
Stage = Annotated[AnyStage, Field(discriminator="kind")]
KIND_MODELS: dict[str, type[_StageBase]] = {
    "pipetask": PipetaskStage,
    "verify": VerifyStage,
    "certify": CertifyStage,
    "certify-candidates": CertifyCandidatesStage,
    "define-profiles": DefineProfilesStage,
    "clean": CleanStage,
    "decertify": DecertifyStage,
}
#: Fields holding rerun-relative collection names, per kind (see the module docstring).
RELATIVE_FIELDS: dict[str, tuple[str, ...]] = {
    "pipetask": ("output", "skip_existing_in"),
    "verify": ("collection",),
    "certify": ("input",),
    "certify-candidates": ("collection", "run"),
    "clean": ("glob",),
}


class Plan(_Model):
    """A validated calibration plan (schema version 1)."""

    version: Literal[1] = PLAN_SCHEMA_VERSION
    repository: NonEmptyStr
    instrument: ClassPath
    rerun: Rerun
    defaults: Defaults = Field(default_factory=Defaults)
    #: BPS sites by name (``site.<name>`` of the submit file: ``class`` plus that class's options), for
    #: ``backend: bps`` stages.  ``local`` is built in unless defined here.
    bps_sites: dict[NonEmptyStr, dict[str, Any]] = Field(default_factory=dict)
    #: Where pipetask and bps stages get their programs (None: pfstui's own venv; see :class:`Stack`).
    stack: Stack | None = None
    stages: Annotated[list[Stage], Field(min_length=1)]

    _source: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_graph(self, info: ValidationInfo) -> Plan:
        # The file loader runs these checks itself so it can point at lines.
        if not (info.context or {}).get("skip_cross_checks"):
            issues = cross_issues(self)
            if issues:
                _path, problem, fix = issues[0]
                raise FieldProblem(problem, fix)
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

    def gated(self, name: str) -> bool:
        """The stage waits for an operator's approval before it runs (its ``approve``, unless the plan's
        ``defaults.approvals`` turned every gate off)."""
        return self.defaults.approvals and self.stage(name).approve

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


def cross_issues(plan: Plan) -> list[tuple[tuple[Any, ...], str, str | None]]:
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
        for field in RELATIVE_FIELDS.get(stage.kind, ()):
            value = getattr(stage, field)
            for j, name in enumerate(value if isinstance(value, list) else [value] if value is not None else []):
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

