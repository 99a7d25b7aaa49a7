"""Reading a plan file: YAML to the validated :class:`~pfstui.plan.model.Plan`, every problem with its line.

Why not ``yaml.safe_load`` then ``Plan.model_validate``: an operator fixes a plan in a text editor, so each
problem must name the line it is on, in plain words, with the fix (``<file>:<line>: stage '<name>':
<problem> (<fix>)``).  The YAML is composed into nodes and converted with the line of every key and item
kept (:class:`_Located`); ``${VAR}`` references are expanded (:mod:`pfstui.plan.variables`); pydantic's
errors are translated into :class:`~pfstui.plan.issues.PlanIssue` (did-you-mean for typos, an example
for a missing field); and the checks across stages run last so they can point at lines too.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pfstui.plan.issues import FieldProblem, PlanError, PlanIssue
from pfstui.plan.model import (
    KIND_MODELS,
    PLAN_SCHEMA_VERSION,
    STAGE_KINDS,
    Defaults,
    Plan,
    ProfilesGroup,
    cross_issues,
)
from pfstui.plan.variables import BadVariable, UnsetVariable, expand_vars, stage_env

__all__ = ["load_plan", "parse_plan", "plain_values"]

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


#: Bounds on what a plan may be.  A night of seven products is ~10 KB, ~600 values, 6 levels deep; these are far
#: beyond any real plan and far below what costs memory or time (the supervisor reads plans on its event loop).
MAX_PLAN_BYTES = 1 << 20
MAX_NODES = 50_000
MAX_DEPTH = 40


class _TooBig(Exception):
    """The YAML expands past :data:`MAX_NODES` values or :data:`MAX_DEPTH` levels (an alias bomb, say)."""

    def __init__(self, what: str, line: int) -> None:
        super().__init__(what)
        self.line = line


class _Located:
    """YAML data converted to Python, plus the line of every mapping key / list item.

    Aliases are followed (``*a`` repeats what ``&a`` holds), so the conversion counts every value it makes
    and every level it enters: a "billion laughs" alias bomb or a self-referencing alias stops at the bound
    with a line number instead of eating the machine's memory.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[tuple[Any, ...], int] = {(): 1}
        self.issues: list[tuple[tuple[Any, ...], str, str | None]] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._count = 0

    def convert(self, node: yaml.Node, path: tuple[Any, ...]) -> Any:
        self._count += 1
        if self._count > MAX_NODES:
            raise _TooBig(f"the plan expands to more than {MAX_NODES:,} values (YAML aliases?)",
                          node.start_mark.line + 1)
        if len(path) > MAX_DEPTH:
            raise _TooBig(f"the plan nests deeper than {MAX_DEPTH} levels (a self-referencing YAML alias?)",
                          node.start_mark.line + 1)
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
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError:  # a tag safe YAML does not know: !foo, !!python/name:..., a bad !!binary
            self._tag_issue(node, f"unknown YAML tag {node.tag!r}", "remove the tag: plans hold plain values")
        except (ValueError, TypeError):  # !!int x, !!float y: a known tag on a value it cannot read
            tag = node.tag.rsplit(":", 1)[-1]
            self._tag_issue(node, f"{node.value!r} is not a valid !!{tag}", "remove the tag or fix the value")
        return node.value

    def _tag_issue(self, node: yaml.Node, problem: str, fix: str) -> None:
        path = ("<tag>", node.start_mark.line)
        self.lines[path] = node.start_mark.line + 1
        self.issues.append((path, problem, fix))

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
        except UnsetVariable as exc:
            if exc.name == "DRP_STELLA_DIR":
                fix = "set up the PFS stack first (`setup drp_stella`), or write the pipeline path in full"
            else:
                fix = f"export {exc.name}=... before running pfstui, or write the value in full"
            out.append(_issue(loc, data, path, f"{field}: environment variable {exc.name} is not set", fix))
        except BadVariable as exc:
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
        model = KIND_MODELS.get(kind) if isinstance(kind, str) else None
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
    if len(path) >= 3 and path[0] == "stages" and isinstance(path[1], int) and path[2] in KIND_MODELS:
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
        if isinstance(exc, FieldProblem):
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
        env = stage_env()
    if len(text) > MAX_PLAN_BYTES:
        raise PlanError([PlanIssue(source, None, None, None, f"the plan is {len(text):,} characters; a plan is at most "
                                   f"{MAX_PLAN_BYTES:,}", "check that this is the plan file")])
    loc = _Located(source)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.reader.ReaderError as exc:  # a control character: name it and its line, in one line
        line = text.count("\n", 0, exc.position) + 1
        raise PlanError([PlanIssue(source, line, None, None, f"control character {chr(exc.character)!r} in the plan",
                                   "remove it: plans are plain text")]) from None
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
    try:
        data = loc.convert(node, ())
    except _TooBig as exc:
        raise PlanError([PlanIssue(source, exc.line, None, None, str(exc), "write the values out plainly")]) from None
    except RecursionError:
        raise PlanError([PlanIssue(source, None, None, None, "the plan nests too deeply",
                                   "write the values out plainly")]) from None
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
    cross = [_issue(loc, data, p, m, f) for p, m, f in cross_issues(plan)]
    if cross:
        raise PlanError(cross)
    plan._source = source
    return plan


def plain_values(text: str, *, source: str = "<text>") -> Any:
    """YAML text read as a plan reads it, before variables are expanded (dates stay strings; PyYAML would make
    naive datetimes of them).  Why: the stage editors compare and write values as the plan file holds them.
    yaml.YAMLError when it is not YAML a plan could hold."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    try:
        return None if node is None else _Located(source).convert(node, ())
    except (_TooBig, RecursionError) as exc:
        raise yaml.YAMLError(str(exc) or "the text nests too deeply") from None


def options_error(exc: ValidationError, data: Mapping[str, Any]) -> PlanError:
    """A stage's edited options (``queue restart --set``, the restart editor; ``data`` is the stage with them)
    that its model refuses, in the plan's words (stage, field, problem, fix) on one line; no line number, as
    they are not in the file.

    Why: the supervisor sent pydantic's own multi-line report back to ``pfstui queue restart``."""
    plan, where = {"stages": [dict(data)]}, _Located("restart options")
    issues = [dataclasses.replace(_translate({**e, "loc": ("stages", 0, *e["loc"])}, plan, where), line=None)
              for e in exc.errors()]
    return PlanError(_merge_typos(issues))


def read_plan_text(path: str | os.PathLike[str]) -> str:
    """The text of a plan file, read with a bound: a device (``/dev/zero``), a FIFO or a huge file is refused
    before it is read whole (OSError or PlanError), so no path given by hand can hang or exhaust memory."""
    with open(path, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise PlanError([PlanIssue(str(path), None, None, None, "not a regular file", "give the plan file's path")])
        data = fh.read(MAX_PLAN_BYTES + 1)
    if len(data) > MAX_PLAN_BYTES:
        raise PlanError([PlanIssue(str(path), None, None, None, f"more than {MAX_PLAN_BYTES:,} bytes: not a plan",
                                   "check that this is the plan file")])
    return data.decode("utf-8")


def load_plan(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Plan:
    """Read and validate a plan file; PlanError (with file and line) on any problem."""
    source = str(path)
    try:
        text = read_plan_text(path)
    except FileNotFoundError:
        raise PlanError(
            [PlanIssue(source, None, None, None, "no such plan file", "check the path, or create one with `pfstui plan new`")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError([PlanIssue(source, None, None, None, f"cannot read the plan: {exc}", "check the file")]) from None
    return parse_plan(text, source=source, env=env, base_dir=Path(path).resolve().parent)
