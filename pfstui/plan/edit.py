"""Add a stage to an existing plan file from a template, keeping the operator's file as they wrote it.

Why textual editing: a plan file is the operator's notebook (comments on why a visit was dropped, a
commented-out stage kept for later, their own layout).  Loading it and dumping the YAML again would
throw all of that away, so a new stage is *appended as text* to the ``stages:`` list, indented like the
stages already there, wherever that list sits in the file.  Nothing is written unless the whole
resulting plan passes :func:`~pfstui.plan.loader.parse_plan`; the previous file is kept as ``<plan>.bak``;
the write is atomic; and a file that changed on disk since it was read (another editor, another pfstui)
is never overwritten.

Where stages come from: the registered templates of ``pfstui plan new`` that fit the plan
(:func:`~pfstui.plan.templates.matching_templates`), rendered for the plan's rerun.  Each template stage is
offered as a YAML mapping (the template's comments on it kept), renamed when its name is taken (``bias`` →
``bias-2``) and with its ``after`` kept only for stages the plan has.

Errors in the new stage are reported like every plan error (``<source>:<line>: stage '<name>': problem
(fix)``), with ``source`` = ``new stage`` and the line counted in the stage text the operator edited;
problems elsewhere in the file keep the file's name and line.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from pfstui.infra.atomic import atomic_write_text
from pfstui.plan.argv import describe
from pfstui.plan.issues import PlanError, PlanIssue
from pfstui.plan.loader import parse_plan, read_plan_text
from pfstui.plan.model import Plan
from pfstui.plan.templates import (
    matching_templates,
    render_template,
    validate_template_text,
)
from pfstui.plan.variables import stage_env

__all__ = [
    "NEW_STAGE_SOURCE",
    "AppendResult",
    "PlanEditError",
    "PlanFile",
    "StageInsertion",
    "TemplateStage",
    "append_stage",
    "backup_path",
    "insert_stage_text",
    "read_plan_file",
    "replace_plan_text",
    "stage_templates",
    "stage_text_for",
    "unchanged_text",
    "unique_stage_name",
]

#: The ``source`` of problems found in the new stage's own text (lines counted in that text).
NEW_STAGE_SOURCE = "new stage"

#: Line breaks as YAML counts them (``str.splitlines`` also splits on \v, \f, ... which YAML does not).
_LINE_RE = re.compile(r"[^\r\n\x85\u2028\u2029]*(?:\r\n|[\r\n\x85\u2028\u2029]|$)")
_BREAK_RE = re.compile(r"\r\n|[\r\x85\u2028\u2029]")
_SECTION_RE = re.compile(r"^\s*#\s*-{3,}")


class PlanEditError(PlanError):
    """The plan file cannot be changed as asked; ``str()`` names the problem and the fix."""


def _edit_error(source: str, problem: str, fix: str, line: int | None = None) -> PlanEditError:
    return PlanEditError([PlanIssue(source, line, None, None, problem, fix)])


def _split_lines(text: str) -> list[str]:
    """Lines with their line breaks, split exactly where YAML's line numbers change."""
    return [m.group(0) for m in _LINE_RE.finditer(text) if m.group(0)]


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanFile:
    """A plan file as read: its exact text (to detect later changes on disk) and its validated model."""

    path: Path
    text: str
    plan: Plan


def _read_text(path: Path) -> str:
    # Bytes, not read_text(): universal newlines would turn \r\n into \n and hide a change on disk.
    try:
        return read_plan_text(path)
    except FileNotFoundError:
        raise _edit_error(str(path), "no such plan file",
                          "check the path, or create one with `pfstui plan new`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _edit_error(str(path), f"cannot read the plan: {exc}", "check the file") from None


def read_plan_file(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> PlanFile:
    """Read and validate a plan file; PlanError (with file and line) if it cannot be used."""
    path = Path(path)
    text = _read_text(path)
    env = stage_env() if env is None else env
    plan = parse_plan(text, source=str(path), env=env, base_dir=path.resolve().parent)
    return PlanFile(path=path, text=text, plan=plan)


# --------------------------------------------------------------------------------------------------
# Template stages
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateStage:
    """One stage of a template, offered for adding to a plan."""

    template: str
    name: str
    kind: str
    after: tuple[str, ...]
    #: One line: what the stage does (``commands.describe``, collections resolved for the plan).
    description: str
    #: The stage as a YAML mapping (no leading '- '), with the template's comments on it.
    text: str


def _stages_node(root: yaml.Node) -> yaml.Node | None:
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "stages":
            return value
    return None


def _last_content_line(node: yaml.Node, lines: list[str]) -> int:
    """0-based index of the last line holding any of ``node``'s content.

    Block collections end where the *next* token starts (after comments and blank lines), so they are
    walked down to their last scalar or flow collection, whose end marks are exact.
    """
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        key, value = node.value[-1]
        return max(_last_content_line(key, lines), _last_content_line(value, lines))
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return _last_content_line(node.value[-1], lines)
    end = node.end_mark
    last = end.line if end.column > 0 else end.line - 1
    last = max(last, node.start_mark.line)
    # A block scalar ('|', '>') ends after its trailing blank lines.
    while last > node.start_mark.line and not lines[last].strip():
        last -= 1
    return last


def _item_to_mapping_text(lines: list[str], item: yaml.Node, first: int, last: int) -> list[str]:
    """The lines ``first..last`` of a list item, as a mapping at column 0 (without the '- ')."""
    col = item.start_mark.column
    out = []
    for i in range(first, last + 1):
        raw = lines[i].rstrip("\r\n\x85\u2028\u2029")
        if i < item.start_mark.line:
            out.append(raw.strip())  # a comment above the item
        elif i == item.start_mark.line:
            out.append(raw[col:])
        elif raw[:col].strip():
            out.append(raw.lstrip())  # a comment indented less than the fields
        else:
            out.append(raw[col:])
    return out


def _template_stage_texts(text: str) -> dict[str, str]:
    """Each stage of a rendered template as mapping text, with the comment lines right above it."""
    lines = _split_lines(text)
    seq = _stages_node(yaml.compose(text, Loader=yaml.SafeLoader))
    assert isinstance(seq, yaml.SequenceNode)
    out: dict[str, str] = {}
    for item in seq.value:
        name = next(v.value for k, v in item.value if k.value == "name")
        start = item.start_mark.line
        while start > 0:
            above = lines[start - 1].strip()
            if not above.startswith("#") or _SECTION_RE.match(above):
                break
            start -= 1
        last = _last_content_line(item, lines)
        out[name] = "\n".join(_item_to_mapping_text(lines, item, start, last)) + "\n"
    return out


def stage_templates(
    plan: Plan, *, text: str | None = None, env: Mapping[str, str] | None = None, templates: Iterable[str] | None = None
) -> list[TemplateStage]:
    """The stages an operator may add to ``plan``: those of its matching template(s), in template order."""
    names = tuple(templates) if templates is not None else matching_templates(plan, text, env)
    out: list[TemplateStage] = []
    for template in names:
        rendered = render_template(template, None, plan.rerun)
        model = validate_template_text(rendered, source=f"template {template!r}")
        texts = _template_stage_texts(rendered)
        for stage in model.stages:
            out.append(
                TemplateStage(
                    template=template,
                    name=stage.name,
                    kind=stage.kind,
                    after=tuple(stage.after),
                    description=describe(stage, plan),
                    text=texts[stage.name],
                )
            )
    return out


def unique_stage_name(base: str, existing: Iterable[str]) -> str:
    """``base`` if no stage has it, else ``base-2``, ``base-3``, ..."""
    taken = set(existing)
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _yaml_scalar(value: str) -> str:
    """``value`` as a YAML scalar that reads back as the same string (quoted only when needed)."""
    try:
        plain = yaml.safe_load(value) == value and "#" not in value and ": " not in value
    except yaml.YAMLError:
        plain = False
    return value if plain else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stage_text_for(plan: Plan, stage: TemplateStage) -> str:
    """The template stage's text for ``plan``: a name no stage has yet, ``after`` limited to its stages."""
    text = stage.text
    names = plan.stage_names
    new_name = unique_stage_name(stage.name, names)
    keep = [a for a in stage.after if a in names]
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    assert isinstance(node, yaml.MappingNode)
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement), character offsets
    for key, value in node.value:
        if key.value == "name" and new_name != stage.name:
            edits.append((value.start_mark.index, value.end_mark.index, _yaml_scalar(new_name)))
        elif key.value == "after" and list(keep) != list(stage.after):
            line_start = text.rfind("\n", 0, key.start_mark.index) + 1
            line_end = text.find("\n", value.end_mark.index)
            line_end = len(text) if line_end < 0 else line_end + 1
            own_lines = not text[line_start:key.start_mark.index].strip() and not text[
                value.end_mark.index:line_end].strip()
            if not keep and own_lines:
                edits.append((line_start, line_end, ""))
            else:
                edits.append((value.start_mark.index, value.end_mark.index,
                               "[" + ", ".join(_yaml_scalar(a) for a in keep) + "]"))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


# --------------------------------------------------------------------------------------------------
# Appending
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageInsertion:
    """A plan text with a stage appended, and where the stage's lines are (to map problems back)."""

    text: str
    #: Lines of the file before the inserted block, and the block's length in lines.
    before: int
    length: int


def _newline_of(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def insert_stage_text(plan_text: str, stage_text: str, *, source: str = "<plan>") -> StageInsertion:
    """``plan_text`` with ``stage_text`` (a stage mapping) appended to its ``stages:`` block list.

    The new item is indented like the existing items and placed right after the last one (after any
    comment lines indented into it), so everything else in the file keeps its place and bytes.  One
    line of ``stage_text`` becomes exactly one line of the file, so problems can be mapped back.
    """
    try:
        root = yaml.compose(plan_text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        problem = f"the plan is not valid YAML: {exc}".splitlines()[0]
        raise _edit_error(source, problem, "fix the plan file first") from None
    seq = _stages_node(root) if root is not None else None
    if not isinstance(seq, yaml.SequenceNode) or not seq.value:
        raise _edit_error(source, "the plan has no 'stages:' list", "add at least one stage with `- name: ...`")
    if seq.flow_style:
        raise _edit_error(
            source, "'stages:' is written as a flow list [...]; a stage can only be appended to a block list",
            "write the stages as '- name: ...' items, one field per line", seq.start_mark.line + 1,
        )
    lines = _split_lines(plan_text)
    newline = _newline_of(plan_text)
    dash = seq.start_mark.column
    first = seq.value[0]
    gap = first.start_mark.column - dash if first.start_mark.line == seq.start_mark.line else 2
    gap = max(gap, 2)
    item_col = dash + gap

    last = _last_content_line(seq.value[-1], lines)
    # Comment lines indented deeper than the '-' still belong to the last stage (a commented-out field).
    while last + 1 < len(lines):
        nxt = lines[last + 1]
        body = nxt.lstrip(" ")
        if body.startswith("#") and len(nxt) - len(body) > dash:
            last += 1
        else:
            break
    insert_at = last + 1

    stage_lines = _BREAK_RE.sub("\n", stage_text).rstrip().split("\n")
    block: list[str] = []
    in_item = False
    for raw in stage_lines:
        body = raw.rstrip()
        if not in_item and (not body.strip() or body.lstrip().startswith("#")):
            block.append(" " * dash + body.strip() if body.strip() else "")
            continue
        if not in_item:
            block.append(" " * dash + "-" + " " * (gap - 1) + body)
            in_item = True
        else:
            block.append(" " * item_col + body if body.strip() else "")
    head = lines[:insert_at]
    if head and not head[-1].endswith(("\n", "\r", "\x85", "\u2028", "\u2029")):
        head[-1] += newline
    new = "".join(head) + "".join(b + newline for b in block) + "".join(lines[insert_at:])
    return StageInsertion(text=new, before=insert_at, length=len(block))


def _precheck_stage_text(stage_text: str) -> str:
    """Problems that would otherwise show up as confusing whole-plan errors; returns the stage name."""
    empty = ("the new stage is empty", "write its name, kind and fields, one per line")
    if not stage_text.strip():
        raise _edit_error(NEW_STAGE_SOURCE, *empty, 1)
    try:
        node = yaml.compose(stage_text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = "YAML syntax error: " + " ".join(p for p in (exc.context, exc.problem) if p)
        fix = "fix the YAML near that line; quote values containing ': ' or ' #'"
        raise _edit_error(NEW_STAGE_SOURCE, problem, fix, mark.line + 1 if mark is not None else None) from None
    except yaml.YAMLError as exc:
        raise _edit_error(NEW_STAGE_SOURCE, f"YAML error: {exc}".splitlines()[0], "fix the YAML", None) from None
    if node is None:
        raise _edit_error(NEW_STAGE_SOURCE, *empty, 1)
    line = node.start_mark.line + 1
    if isinstance(node, yaml.SequenceNode):
        raise _edit_error(NEW_STAGE_SOURCE, "the new stage is written as a list item",
                          "write its fields without the leading '- ' (name: ..., kind: ..., one per line)", line)
    if not isinstance(node, yaml.MappingNode):
        raise _edit_error(NEW_STAGE_SOURCE, "the new stage must be a mapping",
                          "write 'name: ...', 'kind: ...' and its fields, one per line", line)
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "name":
            # A name that is not a plain string is reported by the whole-plan check, with its fix.
            return value.value if isinstance(value, yaml.ScalarNode) else ""
    raise _edit_error(NEW_STAGE_SOURCE, "missing required field 'name'", "add name: <unique stage name>", line)


def _remap(exc: PlanError, ins: StageInsertion) -> PlanError:
    """Point problems inside the new block at the stage text's own lines; shift lines after it back."""
    issues = []
    for issue in exc.issues:
        source, line = issue.source, issue.line
        if line is not None:
            if ins.before < line <= ins.before + ins.length:
                source, line = NEW_STAGE_SOURCE, line - ins.before
            elif line > ins.before + ins.length:
                line -= ins.length
        issues.append(PlanIssue(source, line, issue.stage, issue.field, issue.problem, issue.fix))
    return PlanError(issues)


def backup_path(path: str | os.PathLike[str]) -> Path:
    """Where the previous content of a plan file is kept: ``<plan>.bak`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".bak")


@dataclass(frozen=True)
class AppendResult:
    """What :func:`append_stage` wrote."""

    path: Path
    backup: Path
    stage: str
    plan: Plan
    text: str


def append_stage(
    plan_file: PlanFile, stage_text: str, *, env: Mapping[str, str] | None = None
) -> AppendResult:
    """Append ``stage_text`` (one stage as a YAML mapping) to the plan file read as ``plan_file``.

    Refuses, leaving the file untouched, when the file changed on disk since it was read
    (PlanEditError), or when the resulting plan does not validate (PlanError, problems in the new
    stage reported against its own lines with source ``new stage``).  Otherwise keeps the previous
    file as ``<plan>.bak`` and replaces the plan atomically (same permissions; a symlinked plan is
    written through the link).  Write failures raise ``atomic.StateWriteError`` (an OSError).
    """
    path = plan_file.path
    source = str(path)
    name = _precheck_stage_text(stage_text)
    on_disk = unchanged_text(plan_file, _AGAIN_ADD)
    ins = insert_stage_text(on_disk, stage_text, source=source)
    env = stage_env() if env is None else env
    try:
        new_plan = parse_plan(ins.text, source=source, env=env, base_dir=path.resolve().parent)
    except PlanError as exc:
        raise _remap(exc, ins) from None
    expected = plan_file.plan.stage_names + [name]
    if new_plan.stage_names != expected:  # pragma: no cover - the insertion landed elsewhere: never write it
        raise _edit_error(source, f"the new stage did not end up last in 'stages:' (got {new_plan.stage_names})",
                          "add the stage with a text editor")
    backup = replace_plan_text(plan_file, ins.text, _AGAIN_ADD)
    return AppendResult(path=path, backup=backup, stage=name, plan=new_plan, text=ins.text)


_AGAIN_ADD = "close this editor and add the stage again: it will start from the current file"


def unchanged_text(plan_file: PlanFile, again: str) -> str:
    """The plan file's text, which must still be the one ``plan_file`` read (PlanEditError otherwise, with
    ``again``: how to start over from the current file).  Why: another editor or pfstui may have changed it,
    and writing over that change would lose it."""
    on_disk = _read_text(plan_file.path)
    if on_disk != plan_file.text:
        raise _edit_error(str(plan_file.path), "the plan file changed on disk since it was opened", again)
    return on_disk


def replace_plan_text(plan_file: PlanFile, text: str, again: str) -> Path:
    """Write ``text`` (a validated plan) over the file read as ``plan_file``; return where the previous content
    was kept (``<plan>.bak``).  Atomic, with the file's permissions (a symlinked plan is written through the
    link); refused like :func:`unchanged_text` when the file changed since it was read."""
    path = plan_file.path
    target = Path(os.path.realpath(path))
    mode = stat.S_IMODE(target.stat().st_mode)
    backup = backup_path(path)
    on_disk = unchanged_text(plan_file, again)  # last look before writing: another writer may have been quick
    atomic_write_text(backup, on_disk, mode=mode)
    atomic_write_text(target, text, mode=mode)
    return backup
