"""Plan templates: the PFS calibration sequence written out as a commented plan file.

Why text and not a dumped model: the template is where an operator learns what each stage does and
where the helpdesk tutorial was wrong, so it carries comments, and comments do not survive a YAML dump.
The rendered text is always validated (``parse_plan``) before ``plan_new`` writes it.

The templates are registered (:func:`register_template`), so the product knows of no template but its own:

``pfs``
    The helpdesk tutorial's (seed) seven-product sequence for the real stack
    (``lsst.obs.pfs.PrimeFocusSpectrograph``, ``$DRP_STELLA_DIR/pipelines``), in the tutorial's order,
    with the tutorial's ``-c`` overrides and dates, and its errors corrected (each correction commented).
    Registered here.
``demo``
    The same sequence for pfstui's demo instrument and demo night; :mod:`pfstui.demo.template` holds its
    table and registers it when the CLI calls ``pfstui.demo.register()``.

The sequence is written once (:func:`_render`); what differs between templates is one
:class:`TemplateTable` each, so a stage added or fixed in one template cannot silently stay missing or
wrong in another.  A :class:`Template` adds how to tell its plans (:func:`matching_templates`: which
templates' stages the add-stage screen offers for a plan).

This module is imported at every CLI start (the demo registers its template there, before the app's
first frame), so it does not import the pydantic plan model: :func:`_plan_io` loads it when a template
is validated or written.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from pfstui.plan.issues import PlanError, PlanFileExistsError, PlanIssue

if TYPE_CHECKING:
    from pfstui.plan.model import Plan

__all__ = [
    "Recogniser",
    "Template",
    "TemplateTable",
    "find_template",
    "matching_templates",
    "plan_new",
    "register_template",
    "render_template",
    "stage_pipelines",
    "template_names",
    "validate_template_text",
]

BEGIN = "2000-01-01T00:00:00"
END = "2050-12-31T23:59:59"

# Collections both templates read: raws (the bias from PFS/raw/sps, as the tutorial), pfsConfig, calibs.
RAW_SPS = "PFS/raw/sps"
RAW_ALL = "PFS/raw/all"
PFS_CONFIG = "PFS/raw/pfsConfig"
CALIB = "PFS/calib"
BOOTSTRAP = "PFS/bootstrap"
PROFILES_INPUTS = "PFS/fiberProfilesInputs"


@dataclass(frozen=True)
class TemplateTable:
    """Everything one template has of its own; the stages, their order and names are :func:`_render`'s.

    ``notes`` holds the comment lines written above a stage (keyed by stage name); ``config_notes`` the
    comment above a ``-c`` override (keyed by its field, the text before '='), which replaces the shared
    one in :data:`_SHARED_CONFIG_NOTES`.
    """

    instrument: str
    pipelines: str  # folder of the pipeline YAMLs, ending in '/'
    processes: int
    processes_note: str
    intro: tuple[str, ...]  # header comment lines after the common ones
    bootstrap_section: str
    bootstrap_visits: tuple[int, ...]  # the arc and the quartz of the bootstrap query
    spectral_offset: int
    profiles_run: str
    profile_groups: tuple[tuple[str, str], ...]  # (bright, dark) visit lists of define-profiles
    profile_radius: int
    fiber_norms_dither: str  # as written in the fiberNorms query
    notes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    config_notes: Mapping[str, str] = field(default_factory=dict)


_SHARED_CONFIG_NOTES = {
    "measureCentroids:connections.calibDetectorMap": "no detectorMap_calib yet: use the bootstrap map",
}

_SINGLE_QUOTED_P = "CORRECTED: the tutorial's -p '$DRP_STELLA_DIR/...' is single-quoted, so the shell never expands it."

_PFS_TABLE = TemplateTable(
    instrument="lsst.obs.pfs.PrimeFocusSpectrograph",
    pipelines="$DRP_STELLA_DIR/pipelines/",
    processes=16,
    processes_note=" (the tutorial's CORES=16)",
    intro=(
        "#",
        "# Sequence of the PFS helpdesk tutorial (\"Build Calibration Frames\") with its errors corrected;",
        "# each correction is marked CORRECTED below.",
        "#",
        "# Raw data: the tutorial reads PFS/raw/sps for the bias and PFS/raw/all elsewhere. Current obs_pfs",
        "# ingests into PFS/raw/sps, and PFS/raw/all may not exist (or may be a chain) on your repository:",
        "# check with `butler query-collections REPO 'PFS/raw/*'` and use one name throughout.",
        "# PFS/calib must be a CALIBRATION collection (on production repos it may be a hand-kept chain:",
        "# then certify into your own CALIBRATION collection instead).",
        "# The visit numbers and profiles run below are the tutorial's examples: replace them with yours.",
    ),
    bootstrap_section="Bootstrap detectorMap (one arc + one quartz per camera)",
    bootstrap_visits=(11, 22),
    spectral_offset=-10,
    profiles_run="run18_brn",
    profile_groups=(
        ("113855..113863", "113845..113853"),
        ("113903..113911", "113893..113901"),
        ("114190..114198", "114180..114188"),
        ("114238..114246", "114228..114236"),
    ),
    profile_radius=10,
    fiber_norms_dither="0.0",
    notes={
        "bias": ("or, for example, query: \"instrument='PFS' AND visit IN (123456..123466)\"",),
        "certify-flat": (
            "CORRECTED: the tutorial certifies 'flat'; flat.yaml writes 'fiberFlat' (what ISR reads and",
            "what the pfs_pipe2d integration test certifies).",
        ),
        "bootstrap": (
            "CORRECTED: the tutorial's query uses 'exposure IN (11,22)'; PFS has no exposure dimension, use visit.",
            "CORRECTED: the tutorial's -i line lacks its '\\' and -p has an unbalanced quote.",
            "11 and 22 are the tutorial's placeholders: put your arc and quartz visit here.",
        ),
        "certify-bootstrap": ("Into PFS/bootstrap, kept apart from the best-quality detectorMaps in PFS/calib.",),
        "detectorMap": (_SINGLE_QUOTED_P,),
        "certify-detectorMap": (
            "CORRECTED: the tutorial runs `certifyDetectorMaps.py INTEGRATION ...`; the repository comes first",
            "(pfstui passes it). Copies each detectorMap_candidate to a detectorMap_calib and certifies it.",
        ),
        "define-profiles": (
            "Writes the profiles_run dimension records and PFS/fiberProfilesInputs (defineFiberProfilesInputs.py).",
            "No data dependency: it may run any time before fitFiberProfiles.",
        ),
        "fitFiberProfiles": ("CORRECTED: the tutorial's -p '$DRP_STELLA_DIR/... has an unbalanced quote.",),
        "certify-fiberProfiles": (
            "CORRECTED: the tutorial runs together 'PFS/calibfiberProfiles'; target and type are separate.",
        ),
        "fiberNorms": (_SINGLE_QUOTED_P,),
    },
    config_notes={
        "bootstrap:spectralOffset": "look at the images to choose offsets; per camera if needed",
        "gatherSlitOffsets:connections.slitOffsets": (
            "CORRECTED: the slitOffsets connection now belongs to gatherSlitOffsets, not fitDetectorMap"
        ),
    },
)

#: What a template is told to recognise its plans: the plan, its file's text ('' if none) and the
#: environment it was read in (None: the process's).
Recogniser = Callable[["Plan", str, Mapping[str, str] | None], bool]


@dataclass(frozen=True)
class Template:
    """A registered template: its name (``plan new --template NAME``), its table, and how to tell its plans.

    A plan is the template's when its instrument class path starts with ``instrument_package`` or when
    ``recognises`` finds another clue (its pipelines' folder, a variable named in its text).
    """

    name: str
    table: TemplateTable
    instrument_package: str
    recognises: Recogniser

    def claims(self, plan: Plan, text: str, env: Mapping[str, str] | None) -> bool:
        return plan.instrument.startswith(self.instrument_package) or self.recognises(plan, text, env)


_REGISTRY: dict[str, Template] = {}


def register_template(template: Template) -> None:
    """Make ``template`` known to ``plan new`` and the add-stage screen.

    Registering a name again replaces that template in its place, so registering twice is harmless
    (``pfstui demo`` runs through the CLI's start, which registers the demo already).
    """
    _REGISTRY[template.name] = template


def template_names() -> tuple[str, ...]:
    """The registered templates' names, in the order they were first registered ('pfs' first)."""
    return tuple(_REGISTRY)


def find_template(name: str) -> Template:
    """The registered template ``name``; PlanError naming the registered ones otherwise."""
    template = _REGISTRY.get(name)
    if template is None:
        raise PlanError(
            [PlanIssue(f"template {name!r}", None, None, None, "unknown template",
                       f"choose one of: {', '.join(template_names())}")]
        )
    return template


def stage_pipelines(plan: Plan) -> list[str]:
    """The pipeline paths of the plan's pipetask stages (a clue to the template a plan came from)."""
    return [getattr(s, "pipeline", "") for s in plan.stages if getattr(s, "pipeline", None)]


def matching_templates(plan: Plan, text: str | None = None, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The templates whose stages fit ``plan``: the one that claims it, or every template when unsure.

    Unsure means no template claims the plan, or several do (e.g. a PFS plan with the demo's pipelines):
    then the template whose instrument the plan names comes first, the others in registration order.
    """
    raw = text or ""
    templates = list(_REGISTRY.values())
    claimed = [t.name for t in templates if t.claims(plan, raw, env)]
    if len(claimed) == 1:
        return (claimed[0],)
    likelier = [t.name for t in templates if plan.instrument.startswith(t.instrument_package)]
    return tuple(likelier) + tuple(t.name for t in templates if t.name not in likelier)


def _is_pfs_plan(plan: Plan, text: str, env: Mapping[str, str] | None) -> bool:
    """A PFS plan takes its pipelines from drp_stella (``$DRP_STELLA_DIR``)."""
    return "DRP_STELLA_DIR" in text or any("drp_stella" in p for p in stage_pipelines(plan))


register_template(Template("pfs", _PFS_TABLE, instrument_package="lsst.obs.pfs.", recognises=_is_pfs_plan))


def _q(value: str) -> str:
    """A YAML double-quoted scalar (a JSON string is one), so any repo path or rerun is safe."""
    return json.dumps(value, ensure_ascii=False)


def _comments(lines: tuple[str, ...], indent: int = 2) -> str:
    pad = " " * indent
    return "".join(f"{pad}# {line}\n" for line in lines)


def _section(title: str) -> str:
    return f"\n  # ---- {title} ----\n"


def _header(name: str, t: TemplateTable, repo: str | None, rerun: str) -> str:
    lines = [
        f"# pfstui calibration plan (template '{name}', schema version 1).",
        "#",
        "# Check it with `pfstui plan show PLAN`: it prints every command exactly as it will run.",
        "# Collection names in `output`, `skip_existing_in`, certify `input`, certify-candidates",
        "# `collection` and clean `glob` are relative to `rerun` (output: bias -> <rerun>/bias);",
        "# a leading '/' makes them absolute. `inputs`, `target` and decertify `collection` are",
        "# written in full. $NAME / ${NAME} come from the environment when the plan is loaded.",
        "# Dates are TAI; leave `begin` or `end` out for an open validity range.",
        "# Stages wait only for the stages in their `after` list.",
        "# A pipetask stage runs `pipetask run` here; add `backend: bps` (and optionally",
        "# `bps: {cluster_by: [arm, spectrograph]}`) to run it through BPS with Parsl instead",
        "# (pip install '.[bps]'; see the README's section on the bps backend).",
        *t.intro,
        "version: 1",
        _repo_line(repo),
        f"instrument: {t.instrument}",
        f"rerun: {_q(rerun)}",
        "defaults:",
        f"  processes: {t.processes:<8}# pipetask -j{t.processes_note}",
        "  fail_fast: true     # pipetask --fail-fast (the tutorial uses it everywhere)",
        "  log_level: pfs=INFO # show drp_stella task messages (hidden at the default level)",
        "  approvals: true     # stages with `approve: true` wait for an operator's yes (y in the Queue,",
        "                      # or `pfstui queue approve STAGE`); false for an unattended night",
        "stages:",
    ]
    return "\n".join(lines) + "\n"


def _repo_line(repo: str | None) -> str:
    if repo is None:
        return (
            "# The Butler repository ($DATASTORE in the tutorial): export DATASTORE or write the path here.\n"
            'repository: "${DATASTORE}"'
        )
    return f"repository: {_q(repo.replace('$', '$$'))}"  # a '$' in a path is the path's, not a variable


_VERIFY_NOTE = (
    "Checks each camera's product against the certified one (pfstui verify); a failing camera fails this",
    "stage and the certify after it does not run. Limits: defaults.verify_limits, or `limits:` here.",
)


class _Writer:
    """Writes the stages of one template: its comments and values come from the template's row."""

    def __init__(self, table: TemplateTable) -> None:
        self.t = table

    def pipetask(
        self, name: str, after: list[str], inputs: list[str], query: str, config: list[str] | None = None
    ) -> str:
        """A pipetask stage running ``<pipelines>/<name>.yaml`` into the run ``<name>``."""
        out = _comments(self.t.notes.get(name, ()))
        out += f"  - name: {name}\n    kind: pipetask\n"
        if after:
            out += f"    after: [{', '.join(after)}]\n"
        out += f"    pipeline: {_q(self.t.pipelines + name + '.yaml')}\n"
        out += f"    inputs: [{', '.join(inputs)}]\n"
        out += f"    output: {name}\n"
        out += f"    query: {_q(query)}\n"
        if config:
            out += "    config:\n"
            for item in config:
                key = item.split("=", 1)[0]
                note = self.t.config_notes.get(key, _SHARED_CONFIG_NOTES.get(key))
                if note:
                    out += f"      # {note}\n"
                out += f"      - {_q(item)}\n"
        return out

    def verify(self, product: str, dataset_type: str) -> str:
        """Verify ``dataset_type`` of the run ``product`` against what PFS/calib holds at the certify's begin (a
        detectorMap candidate against the detectorMap_calib there)."""
        return _comments(self.t.notes.get(f"verify-{product}", _VERIFY_NOTE)) + (
            f"  - name: verify-{product}\n    kind: verify\n    after: [{product}]\n"
            f"    collection: {product}\n    dataset_type: {dataset_type}\n    against: {CALIB}\n    begin: {BEGIN}\n"
        )

    def certify(self, name: str, product: str, dataset_type: str, target: str = CALIB, after: str | None = None) -> str:
        """Certify ``dataset_type`` from the run ``product`` into ``target`` after ``after`` (default the run)."""
        return _comments(self.t.notes.get(name, ())) + (
            f"  - name: {name}\n    kind: certify\n    after: [{after or product}]\n"
            f"    approve: true  # certifies into the shared {target}: shown, then approved\n"
            f"    input: {product}\n    target: {target}\n    dataset_type: {dataset_type}\n"
            f"    begin: {BEGIN}\n    end: {END}\n"
        )

    def certify_candidates(self, name: str, product: str, target: str = CALIB, after: str | None = None) -> str:
        return _comments(self.t.notes.get(name, ())) + (
            f"  - name: {name}\n    kind: certify-candidates\n    after: [{after or product}]\n"
            f"    approve: true  # certifies into the shared {target}: shown, then approved\n"
            f"    collection: {product}\n    target: {target}\n    instrument: PFS\n"
            f"    begin: {BEGIN}\n    end: {END}\n"
        )

    def clean(self, product: str, after: str, types: list[str]) -> str:
        """Remove the intermediate ``types`` of the runs ``<product>/*`` once ``after`` (the certify) is done."""
        return _comments(self.t.notes.get(f"clean-{product}", ())) + (
            f"  - name: clean-{product}\n    kind: clean\n    after: [{after}]\n"
            f"    glob: {_q(product + '/*')}\n    dataset_types: [{', '.join(types)}]\n"
        )

    def define_profiles(self, name: str) -> str:
        groups = "".join(f"      - {{bright: '{bright}', dark: '{dark}'}}\n" for bright, dark in self.t.profile_groups)
        return _comments(self.t.notes.get(name, ())) + (
            f"  - name: {name}\n    kind: define-profiles\n    instrument: PFS\n"
            f"    profiles_run: {self.t.profiles_run}\n    groups:\n{groups}"
        )


def _render(name: str, t: TemplateTable, repo: str | None, rerun: str) -> str:
    """The one PFS calibration sequence, for template ``name`` (table ``t``)."""
    w = _Writer(t)
    visits = ", ".join(str(v) for v in t.bootstrap_visits)
    return "".join([
        _header(name, t, repo, rerun),
        _section("Bias"),
        w.pipetask("bias", [], [RAW_SPS, CALIB], "instrument='PFS' AND visit.target_name = 'BIAS'"),
        w.verify("bias", "bias"),
        w.certify("certify-bias", "bias", "bias", after="verify-bias"),
        w.clean("bias", "certify-bias", ["biasProc"]),
        _section("Dark"),
        w.pipetask("dark", ["certify-bias"], [RAW_ALL, CALIB], "instrument='PFS' AND visit.target_name = 'DARK'"),
        w.verify("dark", "dark"),
        w.certify("certify-dark", "dark", "dark", after="verify-dark"),
        w.clean("dark", "certify-dark", ["darkProc"]),
        _section("Fiber flat"),
        w.pipetask("flat", ["certify-dark"], [RAW_ALL, CALIB], "instrument='PFS' AND visit.target_name = 'FLAT'"),
        w.verify("flat", "fiberFlat"),
        w.certify("certify-flat", "flat", "fiberFlat", after="verify-flat"),
        w.clean("flat", "certify-flat", ["flatProc"]),
        _section(t.bootstrap_section),
        w.pipetask(
            "bootstrap", ["certify-flat"], [RAW_ALL, PFS_CONFIG, CALIB], f"instrument='PFS' AND visit IN ({visits})",
            config=[
                "isr:doCrosstalk=False",
                "bootstrap:profiles.profileRadius=2",
                "bootstrap:profiles.profileSwath=2500",
                "bootstrap:profiles.profileOversample=3",
                f"bootstrap:spectralOffset={t.spectral_offset}",
            ],
        ),
        w.certify("certify-bootstrap", "bootstrap", "detectorMap_bootstrap", target=BOOTSTRAP),
        w.clean("bootstrap", "certify-bootstrap", ["postISRCCD"]),
        _section("DetectorMap"),
        w.pipetask(
            "detectorMap", ["certify-bootstrap"], [RAW_ALL, PFS_CONFIG, BOOTSTRAP, CALIB],
            "instrument='PFS' AND visit.target_name IN ('ARC', 'FLAT')",
            config=[
                "measureCentroids:connections.calibDetectorMap=detectorMap_bootstrap",
                "gatherSlitOffsets:connections.slitOffsets=detectorMap_bootstrap.slitOffsets",
                "fitDetectorMap:fitDetectorMap.doSlitOffsets=True",
                "fitDetectorMap:fitDetectorMap.order=4",
                "fitDetectorMap:fitDetectorMap.soften=0.03",
            ],
        ),
        w.verify("detectorMap", "detectorMap_candidate"),
        w.certify_candidates("certify-detectorMap", "detectorMap", after="verify-detectorMap"),
        w.clean("detectorMap", "certify-detectorMap", ["postISRCCD"]),
        _section("Fiber profiles"),
        w.define_profiles("define-profiles"),
        w.pipetask(
            "fitFiberProfiles", ["define-profiles", "certify-detectorMap"],
            [RAW_ALL, PROFILES_INPUTS, PFS_CONFIG, CALIB],
            f"profiles_run = '{t.profiles_run}'",
            config=[
                f"fitProfiles:profiles.profileRadius={t.profile_radius}",
                "fitProfiles:profiles.profileOversample=3",
                "fitProfiles:profiles.profileSwath=500",
            ],
        ),
        w.verify("fitFiberProfiles", "fiberProfiles"),
        w.certify("certify-fiberProfiles", "fitFiberProfiles", "fiberProfiles", after="verify-fitFiberProfiles"),
        w.clean("fitFiberProfiles", "certify-fiberProfiles", ["postISRCCD"]),
        _section("Fiber norms"),
        w.pipetask(
            "fiberNorms", ["certify-fiberProfiles"], [RAW_ALL, PFS_CONFIG, CALIB],
            f"instrument='PFS' AND visit.target_name = 'FLAT' AND dither = {t.fiber_norms_dither}",
        ),
        w.verify("fiberNorms", "fiberNorms_calib"),
        w.certify("certify-fiberNorms", "fiberNorms", "fiberNorms_calib", after="verify-fiberNorms"),
        w.clean("fiberNorms", "certify-fiberNorms", ["postISRCCD"]),
    ])


def render_template(name: str, repo: str | None, rerun: str) -> str:
    """The commented YAML of the registered template ``name`` (e.g. 'pfs') for ``repo`` and ``rerun``.

    ``repo=None`` writes ``repository: "${DATASTORE}"`` (the tutorial's variable).
    """
    return _render(name, find_template(name).table, repo, rerun)


class _AnyEnv(dict):
    """An environment where every variable is set (to a placeholder): checks a template's structure
    without requiring the stack (DRP_STELLA_DIR) or the operator's variables to be set."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return f"/{key}"


def _plan_io() -> tuple[ModuleType, ModuleType]:
    """The loader and the writer, imported on first use: they load the pydantic plan model (~135 ms,
    about as much as Textual), and this module is imported at every CLI start (see the module docstring)."""
    from pfstui.plan import loader, writer

    return loader, writer


def validate_template_text(text: str, source: str) -> Plan:
    """Parse rendered template text with every variable treated as set; PlanError if it is invalid."""
    loader, _writer = _plan_io()
    return loader.parse_plan(text, source=source, env=_AnyEnv())


def plan_new(
    template: str,
    repo: str | os.PathLike[str] | None,
    rerun: str | None,
    output_path: str | os.PathLike[str],
    *,
    force: bool = False,
) -> Path:
    """Write a new plan from ``template`` to ``output_path`` (atomically) and return the path.

    A local ``repo`` is made absolute (a relative repository in a plan is read relative to the plan
    file, not to where ``plan new`` ran).  ``rerun=None`` means ``u/<login name>``.  An existing file is
    kept unless ``force`` (PlanFileExistsError).  The rendered plan is validated before it is written.
    """
    output = Path(output_path)
    if rerun is None:
        try:
            user = getpass.getuser()
        except Exception:  # no login name (some containers): the operator edits it
            user = "me"
        rerun = f"u/{user}"
    repo_text: str | None = None
    if repo is not None:
        repo_text = os.fspath(repo)
        if "://" not in repo_text:
            repo_text = str(Path(repo_text).expanduser().resolve())
    if not output.parent.is_dir():
        raise PlanError([PlanIssue(str(output), None, None, None, f"folder {output.parent} does not exist",
                                   "create it first, or write the plan somewhere else")])
    if output.exists() and not force:
        raise PlanFileExistsError(
            [PlanIssue(str(output), None, None, None, "file already exists", "choose another path or use --force to overwrite it")]
        )
    text = render_template(template, repo_text, rerun)
    validate_template_text(text, source=str(output))
    _loader, writer = _plan_io()
    writer.write_plan_text(output, text, overwrite=force)
    return output
