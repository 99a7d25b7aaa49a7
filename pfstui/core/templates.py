"""Plan templates: the PFS calibration sequence written out as a commented plan file.

Why text and not a dumped model: the template is where an operator learns what each stage does and
where the helpdesk tutorial was wrong, so it carries comments, and comments do not survive a YAML dump.
The rendered text is always validated (``parse_plan``) before ``plan_new`` writes it.

Two templates:

``pfs``
    The helpdesk tutorial's (seed) seven-product sequence for the real stack
    (``lsst.obs.pfs.PrimeFocusSpectrograph``, ``$DRP_STELLA_DIR/pipelines``), in the tutorial's order,
    with the tutorial's ``-c`` overrides and dates, and its errors corrected (each correction commented).
``demo``
    The same sequence for pfstui's demo instrument and demo night (``${PFSTUI_DEMO_DIR}/pipelines``),
    with ``processes: 1`` (each extra process costs ~1.3 s per quantum on such small data).
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

from .plan import Plan, PlanError, PlanFileExistsError, PlanIssue, atomic_write_text, parse_plan

__all__ = ["TEMPLATES", "plan_new", "render_template", "validate_template_text"]

TEMPLATES = ("pfs", "demo")

BEGIN = "2000-01-01T00:00:00"
END = "2050-12-31T23:59:59"


def _q(value: str) -> str:
    """A YAML double-quoted scalar (a JSON string is one), so any repo path or rerun is safe."""
    return json.dumps(value, ensure_ascii=False)


def _list(items: list[str], indent: int) -> str:
    pad = " " * indent
    return "".join(f"{pad}- {_q(item)}\n" for item in items)


def _pipetask(
    name: str,
    after: list[str],
    pipeline: str,
    inputs: list[str],
    output: str,
    query: str,
    config: list[tuple[str, str | None]] | None = None,
    comments: list[str] | None = None,
) -> str:
    out = ""
    for c in comments or []:
        out += f"  # {c}\n"
    out += f"  - name: {name}\n    kind: pipetask\n"
    if after:
        out += f"    after: [{', '.join(after)}]\n"
    out += f"    pipeline: {_q(pipeline)}\n"
    out += f"    inputs: [{', '.join(inputs)}]\n"
    out += f"    output: {output}\n"
    out += f"    query: {_q(query)}\n"
    if config:
        out += "    config:\n"
        for item, comment in config:
            if comment:
                out += f"      # {comment}\n"
            out += f"      - {_q(item)}\n"
    return out


def _certify(name: str, after: str, input_: str, target: str, dataset_type: str, comments: list[str] | None = None) -> str:
    out = "".join(f"  # {c}\n" for c in comments or [])
    out += (
        f"  - name: {name}\n    kind: certify\n    after: [{after}]\n"
        f"    input: {input_}\n    target: {target}\n    dataset_type: {dataset_type}\n"
        f"    begin: {BEGIN}\n    end: {END}\n"
    )
    return out


def _clean(name: str, after: str, glob: str, types: list[str], comments: list[str] | None = None) -> str:
    out = "".join(f"  # {c}\n" for c in comments or [])
    out += (
        f"  - name: {name}\n    kind: clean\n    after: [{after}]\n"
        f"    glob: {_q(glob)}\n    dataset_types: [{', '.join(types)}]\n"
    )
    return out


def _header(
    template: str, repo_line: str, instrument: str, rerun: str, processes: int, extra: list[str], processes_note: str = ""
) -> str:
    lines = [
        f"# pfstui calibration plan (template '{template}', schema version 1).",
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
        *extra,
        "version: 1",
        repo_line,
        f"instrument: {instrument}",
        f"rerun: {_q(rerun)}",
        "defaults:",
        f"  processes: {processes:<8}# pipetask -j{processes_note}",
        "  fail_fast: true     # pipetask --fail-fast (the tutorial uses it everywhere)",
        "  log_level: pfs=INFO # show drp_stella task messages (hidden at the default level)",
        "stages:",
    ]
    return "\n".join(lines) + "\n"


def _repo_line(repo: str | None) -> str:
    if repo is None:
        return (
            "# The Butler repository ($DATASTORE in the tutorial): export DATASTORE or write the path here.\n"
            'repository: "${DATASTORE}"'
        )
    return f"repository: {_q(repo)}"


def _render_pfs(repo: str | None, rerun: str) -> str:
    pipe = "$DRP_STELLA_DIR/pipelines/"
    text = _header(
        "pfs",
        _repo_line(repo),
        "lsst.obs.pfs.PrimeFocusSpectrograph",
        rerun,
        16,
        [
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
        ],
        processes_note=" (the tutorial's CORES=16)",
    )
    # -- bias
    text += "\n  # ---- Bias ----\n"
    text += _pipetask(
        "bias", [], pipe + "bias.yaml", ["PFS/raw/sps", "PFS/calib"], "bias",
        "instrument='PFS' AND visit.target_name = 'BIAS'",
        comments=["or, for example, query: \"instrument='PFS' AND visit IN (123456..123466)\""],
    )
    text += _certify("certify-bias", "bias", "bias", "PFS/calib", "bias")
    text += _clean("clean-bias", "certify-bias", "bias/*", ["biasProc"])
    # -- dark
    text += "\n  # ---- Dark ----\n"
    text += _pipetask(
        "dark", ["certify-bias"], pipe + "dark.yaml", ["PFS/raw/all", "PFS/calib"], "dark",
        "instrument='PFS' AND visit.target_name = 'DARK'",
    )
    text += _certify("certify-dark", "dark", "dark", "PFS/calib", "dark")
    text += _clean("clean-dark", "certify-dark", "dark/*", ["darkProc"])
    # -- flat
    text += "\n  # ---- Fiber flat ----\n"
    text += _pipetask(
        "flat", ["certify-dark"], pipe + "flat.yaml", ["PFS/raw/all", "PFS/calib"], "flat",
        "instrument='PFS' AND visit.target_name = 'FLAT'",
    )
    text += _certify(
        "certify-flat", "flat", "flat", "PFS/calib", "fiberFlat",
        comments=[
            "CORRECTED: the tutorial certifies 'flat'; flat.yaml writes 'fiberFlat' (what ISR reads and",
            "what the pfs_pipe2d integration test certifies).",
        ],
    )
    text += _clean("clean-flat", "certify-flat", "flat/*", ["flatProc"])
    # -- bootstrap
    text += "\n  # ---- Bootstrap detectorMap (one arc + one quartz per camera) ----\n"
    text += _pipetask(
        "bootstrap", ["certify-flat"], pipe + "bootstrap.yaml",
        ["PFS/raw/all", "PFS/raw/pfsConfig", "PFS/calib"], "bootstrap",
        "instrument='PFS' AND visit IN (11, 22)",
        config=[
            ("isr:doCrosstalk=False", None),
            ("bootstrap:profiles.profileRadius=2", None),
            ("bootstrap:profiles.profileSwath=2500", None),
            ("bootstrap:profiles.profileOversample=3", None),
            ("bootstrap:spectralOffset=-10", "look at the images to choose offsets; per camera if needed"),
        ],
        comments=[
            "CORRECTED: the tutorial's query uses 'exposure IN (11,22)'; PFS has no exposure dimension, use visit.",
            "CORRECTED: the tutorial's -i line lacks its '\\' and -p has an unbalanced quote.",
            "11 and 22 are the tutorial's placeholders: put your arc and quartz visit here.",
        ],
    )
    text += _certify(
        "certify-bootstrap", "bootstrap", "bootstrap", "PFS/bootstrap", "detectorMap_bootstrap",
        comments=["Into PFS/bootstrap, kept apart from the best-quality detectorMaps in PFS/calib."],
    )
    text += _clean("clean-bootstrap", "certify-bootstrap", "bootstrap/*", ["postISRCCD"])
    # -- detectorMap
    text += "\n  # ---- DetectorMap ----\n"
    text += _pipetask(
        "detectorMap", ["certify-bootstrap"], pipe + "detectorMap.yaml",
        ["PFS/raw/all", "PFS/raw/pfsConfig", "PFS/bootstrap", "PFS/calib"], "detectorMap",
        "instrument='PFS' AND visit.target_name IN ('ARC', 'FLAT')",
        config=[
            ("measureCentroids:connections.calibDetectorMap=detectorMap_bootstrap", "no detectorMap_calib yet: use the bootstrap map"),
            (
                "gatherSlitOffsets:connections.slitOffsets=detectorMap_bootstrap.slitOffsets",
                "CORRECTED: the slitOffsets connection now belongs to gatherSlitOffsets, not fitDetectorMap",
            ),
            ("fitDetectorMap:fitDetectorMap.doSlitOffsets=True", None),
            ("fitDetectorMap:fitDetectorMap.order=4", None),
            ("fitDetectorMap:fitDetectorMap.soften=0.03", None),
        ],
        comments=["CORRECTED: the tutorial's -p '$DRP_STELLA_DIR/...' is single-quoted, so the shell never expands it."],
    )
    text += (
        "  # CORRECTED: the tutorial runs `certifyDetectorMaps.py INTEGRATION ...`; the repository comes first\n"
        "  # (pfstui passes it). Copies each detectorMap_candidate to a detectorMap_calib and certifies it.\n"
        "  - name: certify-detectorMap\n    kind: certify-candidates\n    after: [detectorMap]\n"
        "    collection: detectorMap\n    target: PFS/calib\n    instrument: PFS\n"
        f"    begin: {BEGIN}\n    end: {END}\n"
    )
    text += _clean("clean-detectorMap", "certify-detectorMap", "detectorMap/*", ["postISRCCD"])
    # -- fiber profiles
    text += "\n  # ---- Fiber profiles ----\n"
    text += (
        "  # Writes the profiles_run dimension records and PFS/fiberProfilesInputs (defineFiberProfilesInputs.py).\n"
        "  # No data dependency: it may run any time before fitFiberProfiles.\n"
        "  - name: define-profiles\n    kind: define-profiles\n    instrument: PFS\n"
        "    profiles_run: run18_brn\n    groups:\n"
        "      - {bright: '113855..113863', dark: '113845..113853'}\n"
        "      - {bright: '113903..113911', dark: '113893..113901'}\n"
        "      - {bright: '114190..114198', dark: '114180..114188'}\n"
        "      - {bright: '114238..114246', dark: '114228..114236'}\n"
    )
    text += _pipetask(
        "fitFiberProfiles", ["define-profiles", "certify-detectorMap"], pipe + "fitFiberProfiles.yaml",
        ["PFS/raw/all", "PFS/fiberProfilesInputs", "PFS/raw/pfsConfig", "PFS/calib"], "fitFiberProfiles",
        "profiles_run = 'run18_brn'",
        config=[
            ("fitProfiles:profiles.profileRadius=10", None),
            ("fitProfiles:profiles.profileOversample=3", None),
            ("fitProfiles:profiles.profileSwath=500", None),
        ],
        comments=["CORRECTED: the tutorial's -p '$DRP_STELLA_DIR/... has an unbalanced quote."],
    )
    text += _certify(
        "certify-fiberProfiles", "fitFiberProfiles", "fitFiberProfiles", "PFS/calib", "fiberProfiles",
        comments=["CORRECTED: the tutorial runs together 'PFS/calibfiberProfiles'; target and type are separate."],
    )
    text += _clean("clean-fitFiberProfiles", "certify-fiberProfiles", "fitFiberProfiles/*", ["postISRCCD"])
    # -- fiberNorms
    text += "\n  # ---- Fiber norms ----\n"
    text += _pipetask(
        "fiberNorms", ["certify-fiberProfiles"], pipe + "fiberNorms.yaml",
        ["PFS/raw/all", "PFS/raw/pfsConfig", "PFS/calib"], "fiberNorms",
        "instrument='PFS' AND visit.target_name = 'FLAT' AND dither = 0.0",
        comments=["CORRECTED: the tutorial's -p '$DRP_STELLA_DIR/...' is single-quoted, so the shell never expands it."],
    )
    text += _certify("certify-fiberNorms", "fiberNorms", "fiberNorms", "PFS/calib", "fiberNorms_calib")
    text += _clean("clean-fiberNorms", "certify-fiberNorms", "fiberNorms/*", ["postISRCCD"])
    return text


def _render_demo(repo: str | None, rerun: str) -> str:
    pipe = "${PFSTUI_DEMO_DIR}/pipelines/"
    text = _header(
        "demo",
        _repo_line(repo),
        "pfstui.demo.instrument.DemoPrimeFocusSpectrograph",
        rerun,
        1,
        [
            "#",
            "# The PFS calibration sequence for pfstui's demo instrument and demo night (pfstui demo).",
            "# Demo visits: BIAS 11-13, DARK 21-23, FLAT 31-36 (dither 0, 0.2, 0.4), ARC 41, profiles 51-58.",
            "# processes is 1: with -j > 1 every quantum starts a fresh Python (~1.3 s) on this tiny data.",
            "# Every demo task has config fields demoDelay (seconds per quantum) and demoFailOn (a data ID",
            "# whose quantum fails), e.g. add to a stage:",
            "#   config: [\"isr:demoFailOn=visit:12,arm:r,spectrograph:1\"]   (key:value: -c values cannot hold '=')",
        ],
        processes_note=" (1: no per-quantum start-up cost)",
    )
    text += "\n  # ---- Bias ----\n"
    text += _pipetask(
        "bias", [], pipe + "bias.yaml", ["PFS/raw/sps", "PFS/calib"], "bias",
        "instrument='PFS' AND visit.target_name = 'BIAS'",
    )
    text += _certify("certify-bias", "bias", "bias", "PFS/calib", "bias")
    text += _clean("clean-bias", "certify-bias", "bias/*", ["biasProc"])
    text += "\n  # ---- Dark ----\n"
    text += _pipetask(
        "dark", ["certify-bias"], pipe + "dark.yaml", ["PFS/raw/all", "PFS/calib"], "dark",
        "instrument='PFS' AND visit.target_name = 'DARK'",
    )
    text += _certify("certify-dark", "dark", "dark", "PFS/calib", "dark")
    text += _clean("clean-dark", "certify-dark", "dark/*", ["darkProc"])
    text += "\n  # ---- Fiber flat ----\n"
    text += _pipetask(
        "flat", ["certify-dark"], pipe + "flat.yaml", ["PFS/raw/all", "PFS/calib"], "flat",
        "instrument='PFS' AND visit.target_name = 'FLAT'",
    )
    text += _certify("certify-flat", "flat", "flat", "PFS/calib", "fiberFlat",
                     comments=["The flat pipeline's product is fiberFlat (not 'flat')."])
    text += _clean("clean-flat", "certify-flat", "flat/*", ["flatProc"])
    text += "\n  # ---- Bootstrap detectorMap: arc 41 + quartz 31 ----\n"
    text += _pipetask(
        "bootstrap", ["certify-flat"], pipe + "bootstrap.yaml",
        ["PFS/raw/all", "PFS/raw/pfsConfig", "PFS/calib"], "bootstrap",
        "instrument='PFS' AND visit IN (41, 31)",
        config=[
            ("isr:doCrosstalk=False", "the seed's bootstrap overrides; they exist on the demo tasks too"),
            ("bootstrap:profiles.profileRadius=2", None),
            ("bootstrap:profiles.profileSwath=2500", None),
            ("bootstrap:profiles.profileOversample=3", None),
            ("bootstrap:spectralOffset=0", "the demo's arc lines sit within 2 rows of the model (the seed used -10)"),
        ],
    )
    text += _certify("certify-bootstrap", "bootstrap", "bootstrap", "PFS/bootstrap", "detectorMap_bootstrap")
    text += _clean("clean-bootstrap", "certify-bootstrap", "bootstrap/*", ["postISRCCD"])
    text += "\n  # ---- DetectorMap ----\n"
    text += _pipetask(
        "detectorMap", ["certify-bootstrap"], pipe + "detectorMap.yaml",
        ["PFS/raw/all", "PFS/raw/pfsConfig", "PFS/bootstrap", "PFS/calib"], "detectorMap",
        "instrument='PFS' AND visit.target_name IN ('ARC', 'FLAT')",
        config=[
            ("measureCentroids:connections.calibDetectorMap=detectorMap_bootstrap", "no detectorMap_calib yet: use the bootstrap map"),
            ("gatherSlitOffsets:connections.slitOffsets=detectorMap_bootstrap.slitOffsets", None),
            ("fitDetectorMap:fitDetectorMap.doSlitOffsets=True", None),
            ("fitDetectorMap:fitDetectorMap.order=4", None),
            ("fitDetectorMap:fitDetectorMap.soften=0.03", None),
        ],
    )
    text += (
        "  - name: certify-detectorMap\n    kind: certify-candidates\n    after: [detectorMap]\n"
        "    collection: detectorMap\n    target: PFS/calib\n    instrument: PFS\n"
        f"    begin: {BEGIN}\n    end: {END}\n"
    )
    text += _clean("clean-detectorMap", "certify-detectorMap", "detectorMap/*", ["postISRCCD"])
    text += "\n  # ---- Fiber profiles ----\n"
    text += (
        "  - name: define-profiles\n    kind: define-profiles\n    instrument: PFS\n"
        "    profiles_run: demo_br\n    groups:\n"
        "      - {bright: '51..52', dark: '53..54'}\n"
        "      - {bright: '55..56', dark: '57..58'}\n"
    )
    text += _pipetask(
        "fitFiberProfiles", ["define-profiles", "certify-detectorMap"], pipe + "fitFiberProfiles.yaml",
        ["PFS/raw/all", "PFS/fiberProfilesInputs", "PFS/raw/pfsConfig", "PFS/calib"], "fitFiberProfiles",
        "profiles_run = 'demo_br'",
        config=[
            ("fitProfiles:profiles.profileRadius=3", "the seed uses 10 on full-size images; the demo's are 64 wide"),
            ("fitProfiles:profiles.profileOversample=3", None),
            ("fitProfiles:profiles.profileSwath=500", None),
        ],
    )
    text += _certify("certify-fiberProfiles", "fitFiberProfiles", "fitFiberProfiles", "PFS/calib", "fiberProfiles")
    text += _clean("clean-fitFiberProfiles", "certify-fiberProfiles", "fitFiberProfiles/*", ["postISRCCD"])
    text += "\n  # ---- Fiber norms ----\n"
    text += _pipetask(
        "fiberNorms", ["certify-fiberProfiles"], pipe + "fiberNorms.yaml",
        ["PFS/raw/all", "PFS/raw/pfsConfig", "PFS/calib"], "fiberNorms",
        "instrument='PFS' AND visit.target_name = 'FLAT' AND dither = 0",
    )
    text += _certify("certify-fiberNorms", "fiberNorms", "fiberNorms", "PFS/calib", "fiberNorms_calib")
    text += _clean("clean-fiberNorms", "certify-fiberNorms", "fiberNorms/*", ["postISRCCD"])
    return text


def render_template(name: str, repo: str | None, rerun: str) -> str:
    """The commented YAML of template ``name`` ('pfs' or 'demo') for ``repo`` and ``rerun``.

    ``repo=None`` writes ``repository: "${DATASTORE}"`` (the tutorial's variable).
    """
    if name == "pfs":
        return _render_pfs(repo, rerun)
    if name == "demo":
        return _render_demo(repo, rerun)
    raise PlanError(
        [PlanIssue(f"template {name!r}", None, None, None, "unknown template", f"choose one of: {', '.join(TEMPLATES)}")]
    )


class _AnyEnv(dict):
    """An environment where every variable is set (to a placeholder): checks a template's structure
    without requiring the stack (DRP_STELLA_DIR) or the operator's variables to be set."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return f"/{key}"


def validate_template_text(text: str, source: str) -> Plan:
    """Parse rendered template text with every variable treated as set; PlanError if it is invalid."""
    return parse_plan(text, source=source, env=_AnyEnv())


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
    if output.exists() and not force:
        raise PlanFileExistsError(
            [PlanIssue(str(output), None, None, None, "file already exists", "choose another path or use --force to overwrite it")]
        )
    text = render_template(template, repo_text, rerun)
    validate_template_text(text, source=str(output))
    atomic_write_text(output, text, overwrite=force)
    return output
