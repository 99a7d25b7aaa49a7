"""Change the options of one stage in its plan file, in place, keeping the file as the operator wrote it.

Why in place: as for adding a stage (:mod:`pfstui.plan.edit`), the plan file is the operator's notebook, so
only the values edited are replaced, as text: every comment, the layout and the other stages keep their
bytes.  The resulting plan must validate as a whole, the previous file is kept as ``<plan>.bak``, the write
is atomic, and a file that changed on disk since it was read is never overwritten.  Values are read and
written as the file holds them (``${VAR}`` not expanded, dates as strings), so an edit of ``config`` does
not turn the ``$DRP_STELLA_DIR`` of a ``config_files`` entry into one machine's path.

The Queue pane's ``e`` uses it for a stage whose next attempt has not started; the supervisor then reads the
plan again (:class:`pfstui.queue.requests.EditStage`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pfstui.plan.edit import (
    PlanFile,
    _edit_error,
    _last_content_line,
    _newline_of,
    _split_lines,
    _stages_node,
    replace_plan_text,
    unchanged_text,
)
from pfstui.plan.issues import PlanError, PlanIssue
from pfstui.plan.loader import parse_plan, plain_values
from pfstui.plan.model import Plan
from pfstui.plan.variables import stage_env

__all__ = ["EDITED_SOURCE", "StageEdit", "edit_stage", "stage_values"]

#: The ``source`` of problems found in the edited stage (its lines are not the file's any more).
EDITED_SOURCE = "edited options"
_AGAIN = "close this editor and edit the stage again: it will start from the current file"
_BLOCK = (yaml.MappingNode, yaml.SequenceNode)


@dataclass(frozen=True)
class StageEdit:
    """What :func:`edit_stage` wrote."""

    path: Path
    backup: Path
    stage: str
    fields: tuple[str, ...]
    plan: Plan


def _stage_data(text: str, name: str, source: str) -> dict[str, Any]:
    try:
        data = plain_values(text, source=source)
    except yaml.YAMLError as exc:
        raise _edit_error(source, f"the plan is not valid YAML: {exc}".splitlines()[0], "fix the plan file first")
    stages = data.get("stages") if isinstance(data, dict) else None
    for item in stages if isinstance(stages, list) else []:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    raise _edit_error(source, f"no stage {name!r} in the plan", "reopen the plan: it may have been renamed")


def stage_values(plan_file: PlanFile, name: str) -> dict[str, Any]:
    """Stage ``name``'s fields as its plan file writes them (variables not expanded, dates as strings)."""
    return dict(_stage_data(plan_file.text, name, str(plan_file.path)))


def _flow(value: Any) -> str:
    """``value`` as YAML on one line; a one-line string as operators write them: plain when a plan reads it
    back as that string (a date, ``isr:doCrosstalk=False``), else in double quotes (a query with single ones)."""
    if isinstance(value, str) and value.isprintable():
        try:
            if value.strip() == value and plain_values(f"v: {value}") == {"v": value}:
                return value
        except yaml.YAMLError:
            pass
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    text = yaml.safe_dump({"v": value}, default_flow_style=True, width=math.inf, allow_unicode=True,
                          sort_keys=False).strip()
    return text[len("{v: "):-1]


def _item(root: yaml.Node, name: str, source: str) -> yaml.MappingNode:
    seq = _stages_node(root)
    for item in seq.value if isinstance(seq, yaml.SequenceNode) else []:
        if isinstance(item, yaml.MappingNode) and any(
                getattr(k, "value", None) == "name" and getattr(v, "value", None) == name for k, v in item.value):
            if item.flow_style:
                raise _edit_error(source, f"stage {name!r} is written as a flow mapping {{...}}",
                                  "write its fields one per line, then edit it here", item.start_mark.line + 1)
            return item
    raise _edit_error(source, f"no stage {name!r} in the plan", "reopen the plan: it may have been renamed")


class _Splicer:
    """Text edits of one stage's mapping in the plan text: (start, end, replacement) character ranges."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = _split_lines(text)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.newline = _newline_of(text)

    def line_end(self, index: int) -> int:
        """Where line ``index``'s content ends (before its line break)."""
        return self.starts[index] + len(self.lines[index].rstrip("\r\n\x85\u2028\u2029"))

    def replace(self, key: yaml.Node, value: yaml.Node, new: Any) -> tuple[int, int, str]:
        """Replace ``value`` (of ``key``); a block list or mapping stays one, indented as it was."""
        block = isinstance(value, _BLOCK) and not value.flow_style and bool(value.value)
        if block or isinstance(value, yaml.ScalarNode) and value.style in ("|", ">"):
            end = self.line_end(_last_content_line(value, self.lines))
            if not (block and isinstance(new, (list, dict)) and new):
                return value.start_mark.index, end, _flow(new)
            dumped = yaml.safe_dump(new, default_flow_style=False, sort_keys=False, width=math.inf,
                                    allow_unicode=True).rstrip("\n").split("\n")
            return value.start_mark.index, end, (self.newline + " " * value.start_mark.column).join(dumped)
        if isinstance(value, yaml.ScalarNode) and value.value == "" and value.style is None:  # 'key:' alone
            colon = self.text.index(":", key.end_mark.index) + 1
            return colon, colon, " " + _flow(new)
        return value.start_mark.index, value.end_mark.index, _flow(new)

    def append(self, item: yaml.MappingNode, new: Mapping[str, Any]) -> tuple[int, int, str]:
        """Add fields after the stage's last line, one per line, indented like its others."""
        at = self.line_end(_last_content_line(item, self.lines))
        col = item.value[0][0].start_mark.column
        return at, at, "".join(f"{self.newline}{' ' * col}{k}: {_flow(v)}" for k, v in new.items())

    def apply(self, edits: list[tuple[int, int, str]]) -> str:
        """The text with ``edits`` made, the last first.  Fields appended where a value is also replaced (after an
        empty ``key:`` ending the stage) go after that value: appends are listed last and made first."""
        text = self.text
        for _, (start, end, new) in sorted(enumerate(edits), key=lambda e: (e[1][0], e[0]), reverse=True):
            text = text[:start] + new + text[end:]
        return text


def _spliced(text: str, name: str, changes: Mapping[str, Any], source: str) -> str:
    item = _item(yaml.compose(text, Loader=yaml.SafeLoader), name, source)
    splicer = _Splicer(text)
    present = {k.value: (k, v) for k, v in item.value if isinstance(k, yaml.ScalarNode)}
    edits = [splicer.replace(*present[k], v) for k, v in changes.items() if k in present]
    added = {k: v for k, v in changes.items() if k not in present}
    if added:
        edits.append(splicer.append(item, added))
    return splicer.apply(edits)


def _located(exc: PlanError, name: str) -> PlanError:
    """Problems of the new plan, without line numbers: they count lines of a text the operator never saw."""
    return PlanError([PlanIssue(EDITED_SOURCE if i.stage == name else i.source, None, i.stage, i.field,
                                i.problem, i.fix) for i in exc.issues])


def edit_stage(plan_file: PlanFile, name: str, changes: Mapping[str, Any], *,
               env: Mapping[str, str] | None = None) -> StageEdit:
    """Set ``changes`` (field -> value, as YAML reads them) in stage ``name`` of the plan file read as
    ``plan_file``, in place.

    Refuses, leaving the file untouched: a change of ``name`` or ``kind`` (PlanEditError), a file changed on
    disk since it was read (PlanEditError), and a plan that does not validate once edited (PlanError, the
    edited stage's problems with source :data:`EDITED_SOURCE`).  Write failures raise
    ``atomic.StateWriteError`` (an OSError).
    """
    path, source = plan_file.path, str(plan_file.path)
    if {"name", "kind"} & set(changes):
        raise _edit_error(source, "a stage's name and kind cannot be edited",
                          "add a stage with the new name or kind (`a` in the Queue) and skip this one")
    on_disk = unchanged_text(plan_file, _AGAIN)
    expected = {**_stage_data(on_disk, name, source), **changes}
    text = _spliced(on_disk, name, changes, source)
    if _stage_data(text, name, source) != expected:  # pragma: no cover - a layout the splice misread: never write it
        raise _edit_error(source, f"stage {name!r} could not be edited in place",
                          "edit the plan file with a text editor, then reopen it")
    try:
        plan = parse_plan(text, source=source, env=stage_env() if env is None else env,
                          base_dir=path.resolve().parent)
    except PlanError as exc:
        raise _located(exc, name) from None
    backup = replace_plan_text(plan_file, text, _AGAIN)
    return StageEdit(path=path, backup=backup, stage=name, fields=tuple(changes), plan=plan)

