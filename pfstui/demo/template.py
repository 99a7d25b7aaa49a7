"""The demo's plan template: the PFS calibration sequence for the demo instrument and demo night.

Why here and not beside the ``pfs`` template: the product knows nothing of the demo.  The sequence itself
is the product's (:mod:`pfstui.plan.templates` writes it once for every template); the demo brings only
its own values (:data:`DEMO_TABLE`: instrument, pipelines folder, visits, tuned overrides) and how to tell
a demo plan, and :func:`pfstui.demo.register` registers them when the CLI starts.

This module must stay cheap to import (no LSST stack, no pydantic): the CLI imports it at every start.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pfstui.plan.templates import Template, TemplateTable, stage_pipelines

if TYPE_CHECKING:
    from pfstui.plan.model import Plan

__all__ = ["DEMO_TABLE", "DEMO_TEMPLATE"]

DEMO_TABLE = TemplateTable(
    instrument="pfstui.demo.instrument.DemoPrimeFocusSpectrograph",
    pipelines="${PFSTUI_DEMO_DIR}/pipelines/",
    processes=1,
    processes_note=" (1: no per-quantum start-up cost)",
    intro=(
        "#",
        "# The PFS calibration sequence for pfstui's demo instrument and demo night (pfstui demo).",
        "# Demo visits: BIAS 11-13, DARK 21-23, FLAT 31-36 (dither 0, 0.2, 0.4), ARC 41, profiles 51-58.",
        "# processes is 1: with -j > 1 every quantum starts a fresh Python (~1.3 s) on this tiny data.",
        "# Every demo task has config fields demoDelay (seconds per quantum) and demoFailOn (a data ID",
        "# whose quantum fails), e.g. add to a stage:",
        "#   config: [\"isr:demoFailOn=visit:12,arm:r,spectrograph:1\"]   (key:value: -c values cannot hold '=')",
    ),
    bootstrap_section="Bootstrap detectorMap: arc 41 + quartz 31",
    bootstrap_visits=(41, 31),
    spectral_offset=0,
    profiles_run="demo_br",
    profile_groups=(("51..52", "53..54"), ("55..56", "57..58")),
    profile_radius=3,
    fiber_norms_dither="0",
    notes={"certify-flat": ("The flat pipeline's product is fiberFlat (not 'flat').",)},
    config_notes={
        "isr:doCrosstalk": "the seed's bootstrap overrides; they exist on the demo tasks too",
        "bootstrap:spectralOffset": "the demo's arc lines sit within 2 rows of the model (the seed used -10)",
        "fitProfiles:profiles.profileRadius": "the seed uses 10 on full-size images; the demo's are 64 wide",
    },
)


def _demo_folders(env: Mapping[str, str] | None) -> list[Path]:
    """This package's folder, and ``$PFSTUI_DEMO_DIR`` of the plan's environment when set."""
    folders = [Path(__file__).parent.resolve()]
    if env and env.get("PFSTUI_DEMO_DIR"):
        folders.append(Path(env["PFSTUI_DEMO_DIR"]).resolve())
    return folders


def _is_demo_plan(plan: Plan, text: str, env: Mapping[str, str] | None) -> bool:
    """A demo plan names ``${PFSTUI_DEMO_DIR}``, or its pipelines are in the demo folder (a plan written
    with the variable already expanded, e.g. by ``dump_plan``)."""
    folders = _demo_folders(env)

    def in_demo(path: str) -> bool:
        try:
            resolved = Path(path).resolve()
        except (OSError, RuntimeError):
            return False
        return any(resolved.is_relative_to(folder) for folder in folders)

    return "PFSTUI_DEMO_DIR" in text or any(in_demo(p) for p in stage_pipelines(plan))


DEMO_TEMPLATE = Template("demo", DEMO_TABLE, instrument_package="pfstui.demo.", recognises=_is_demo_plan)
