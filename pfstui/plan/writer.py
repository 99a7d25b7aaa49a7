"""Writing plan files: a model dumped as YAML, any text written atomically, and a stage's fingerprint.

Why together: all three turn a plan into bytes that must stay stable.  A dump must read back as the same
plan (``parse_plan(dump_plan(p)) == p``); a written file is the old one or the whole new one, never a
part (the operator's notebook, which the app and the supervisor may read at any moment); and a stage's
fingerprint changes when its products would differ, and not otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from pfstui.infra.atomic import StateFileExistsError, atomic_write_text
from pfstui.plan.issues import PlanFileExistsError, PlanIssue
from pfstui.plan.model import PLAN_SCHEMA_VERSION, RELATIVE_FIELDS, Plan

__all__ = ["dump_plan", "stage_fingerprint", "write_plan_text"]


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
    if plan.stack is not None:
        doc["stack"] = plan.stack.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    if plan.bps_sites:
        doc["bps_sites"] = plan.bps_sites
    doc["stages"] = [_stage_dict(s) for s in plan.stages]
    doc = _escape_dollars(doc)
    text = f"# pfstui calibration plan (schema version {PLAN_SCHEMA_VERSION})\n" + yaml.safe_dump(
        doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000
    )
    if path is not None:
        write_plan_text(Path(path), text, overwrite=overwrite)
    return text


_FINGERPRINT_IGNORES = ("name", "after", "processes", "fail_fast", "approve")


def stage_fingerprint(plan: Plan, stage: Any) -> str:
    """A stable hash of what a stage *does*: changes when its products would differ, not otherwise.

    Covered: the stage's kind and fields (names already expanded and rerun-resolved) plus the plan's
    repository, instrument and rerun.  Not covered: the stage name, ``after``, ``processes``, ``fail_fast``
    and ``approve`` (how or when it runs, not what it makes) and the log level.  Fields left at their
    defaults are omitted, so adding a new optional field in a later pfstui keeps old fingerprints.
    """
    if isinstance(stage, str):
        stage = plan.stage(stage)
    body = stage.model_dump(mode="json", exclude_defaults=True)
    for key in _FINGERPRINT_IGNORES:
        body.pop(key, None)
    body["kind"] = stage.kind
    for field in RELATIVE_FIELDS.get(stage.kind, ()):
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
