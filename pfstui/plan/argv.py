"""Turn plan stages into the exact argv each one runs locally, and show them as shell commands.

Why argv lists: stages run as detached subprocesses without a shell, so collection names, queries and
config overrides are passed as single argv items and are never re-parsed (the tutorial's unbalanced
quotes cannot happen).  ``shell_join`` exists only for display and for ``plan show``, whose output
can be pasted into a shell and runs the same commands.

A ``backend: bps`` stage runs ``bps submit`` of a submit file instead: that dispatch, and ``plan show``,
live above the plan, in :mod:`pfstui.queue.launch`.

Which program runs what:

========================  ==================================================================
stage kind                command
========================  ==================================================================
pipetask                  ``pipetask --long-log --log-level L --log-file A/<stage>.log.json run ...``
verify                    ``pfstui verify REPO COLL TYPE --against CALIB [--at BEGIN] [--limit P.C=W,F]...``
certify                   ``pfstui certify REPO IN OUT TYPE [...] [--id K=V ...]... --whole-product``
                          (``--search-all-inputs`` instead when the stage asks for it; an
                          ``--override 'CAMERA=REASON'`` per entry of the stage's ``override``)
certify-candidates        ``pfstui certify-detectormaps REPO COLL TARGET --instrument I [--run RUN] [...]``
define-profiles           ``pfstui define-profiles REPO INSTRUMENT NAME --bright L [--dark L]... [--update]``
clean                     ``pfstui clean REPO GLOB TYPE... [--where EXPR]``
decertify                 ``pfstui decertify REPO COLL TYPE [...] [--id K=V ...]...``
========================  ==================================================================

Every Butler stage runs pfstui's own action (preview, apply, journal, undo: the Certify pane's path), so its
log shows the preview and the result, an overlap is refused in one line before anything is written, and the
journal entry names the stage and attempt: each such argv (but verify's, which writes nothing) ends ``--stage
NAME --attempt N --yes`` (the attempt from the attempt folder's name, ``attempt-N``; ``plan show`` has no
attempt).  The same argv plus
``--dry-run`` previews exactly what the stage will change and writes nothing (``--dry-run`` wins over
``--yes``).

Where the programs come from: the plan's ``stack`` (see :class:`pfstui.plan.model.Stack`).  With a
``setup``, a pipetask or bps stage runs the fixed script :data:`STACK_SCRIPT`: ``bash -c STACK_SCRIPT
pfstui-stack SETUP PROGRAM ARG...``; the script runs the setup text and then ``exec``-s the program with its
arguments, each still one word (a query holding ``; rm -rf x`` or ``$(...)`` arrives verbatim).  With
``tools``, the program is the path the plan names.  With neither, the ``pipetask`` next to pfstui's
Python (then on ``PATH``).  pfstui's own actions always run in pfstui's Python.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pfstui.errors import UserError
from pfstui.plan.model import (
    AnyStage,
    CertifyCandidatesStage,
    CertifyStage,
    CleanStage,
    DecertifyStage,
    DefineProfilesStage,
    PipetaskStage,
    Plan,
    Stack,
    VerifyStage,
)
from pfstui.verify.limits import product_kind

__all__ = [
    "CommandError",
    "ToolNotFoundError",
    "Tools",
    "attempt_number",
    "build_argv",
    "describe",
    "env_line",
    "head_length",
    "log_file",
    "plural",
    "shell_format",
    "shell_join",
    "shell_quote",
    "stack_prefix",
    "stack_setup",
    "summary_file",
    "verify_limit_flags",
    "with_overrides",
]


class CommandError(UserError):
    """A stage's command cannot be built; the message says why and what to do."""


class ToolNotFoundError(CommandError):
    """``pipetask`` or ``butler`` is not installed where pfstui can find it."""


_TOOL_HINTS = {
    "pipetask": "install lsst-ctrl-mpexec in this environment or set up the LSST/PFS stack (`setup drp_stella`)",
    "butler": "install lsst-daf-butler in this environment or set up the LSST/PFS stack (`setup drp_stella`)",
    "bps": "install pfstui with its BPS extra (`pip install '.[bps]'`) or set up ctrl_bps and ctrl_bps_parsl",
}


#: The fixed script a stack stage runs (never built from the plan's text): the setup text is its first
#: argument, the program and its arguments the rest.  Why the variables and ``set --``: a sourced setup
#: script (loadLSST.bash, conda's activation) sees the positional parameters and may set variables of its own.
STACK_SCRIPT = ('__pfstui_setup=$1; shift; __pfstui_argv=("$@"); set --; '
                'eval "$__pfstui_setup" || { __pfstui_rc=$?; '
                'echo "pfstui: the stack setup failed (exit status $__pfstui_rc): $__pfstui_setup" >&2; '
                'exit "$__pfstui_rc"; }; '
                'exec "${__pfstui_argv[@]}"')
#: ``$0`` of the script: bash names it in its own messages (``pfstui-stack: line 1: exec: pipetask: not found``).
STACK_NAME = "pfstui-stack"


def stack_prefix(setup: str) -> list[str]:
    """The argv items before the program of a stage that runs in the stack set up by ``setup``."""
    return [shutil.which("bash") or "/bin/bash", "-c", STACK_SCRIPT, STACK_NAME, setup]


def stack_setup(argv: Sequence[str]) -> str | None:
    """The setup text of an argv that runs in a stack (see :func:`stack_prefix`), or None."""
    if len(argv) >= 5 and argv[1] == "-c" and argv[2] == STACK_SCRIPT and argv[3] == STACK_NAME:
        return argv[4]
    return None


@dataclass(frozen=True)
class Tools:
    """Where the programs are: each is an argv prefix, or None when it was not found.

    Found next to ``sys.executable`` first (the venv's ``bin``, without resolving symlinks, so the venv
    and not its base interpreter is used), then on ``PATH``.  ``pfstui`` falls back to
    ``[sys.executable, "-m", "pfstui"]``.
    """

    pipetask: tuple[str, ...] | None
    butler: tuple[str, ...] | None
    pfstui: tuple[str, ...]
    #: Where the programs were looked for (for error messages).
    searched: str = ""
    bps: tuple[str, ...] | None = None
    #: The plan's stack (:meth:`for_plan`): where pipetask, butler and bps come from instead of the above.
    stack: Stack | None = None

    @classmethod
    def discover(cls, *, python: str | None = None, path: str | None = None) -> Tools:
        python = python or sys.executable
        bindir = Path(python).parent

        def find(name: str) -> tuple[str, ...] | None:
            local = bindir / name
            if local.is_file() and os.access(local, os.X_OK):
                return (str(local),)
            found = shutil.which(name, path=path)
            return (found,) if found else None

        pfstui = find("pfstui") or (python, "-m", "pfstui")
        return cls(pipetask=find("pipetask"), butler=find("butler"), pfstui=pfstui, searched=f"{bindir} and PATH",
                   bps=find("bps"))

    def for_plan(self, plan: Plan) -> Tools:
        """These tools with the plan's ``stack`` (or none) in force."""
        return self if self.stack == plan.stack else replace(self, stack=plan.stack)

    def command(self, name: str) -> list[str]:
        """The argv prefix for ``name`` ('pipetask', 'butler', 'bps' or 'pfstui'); ToolNotFoundError if missing."""
        if self.stack is not None and name != "pfstui":
            return self._stack_command(self.stack, name)
        prefix = getattr(self, name)
        if prefix is None:
            where = f" (looked in {self.searched})" if self.searched else ""
            raise ToolNotFoundError(f"{name} not found{where}; {_TOOL_HINTS.get(name, 'install it')}")
        return list(prefix)


    @staticmethod
    def _stack_command(stack: Stack, name: str) -> list[str]:
        path = stack.tool(name)
        if stack.setup is not None:
            return [*stack_prefix(stack.setup), path or name]
        if path is None:
            raise ToolNotFoundError(f"stack.tools names no {name} and the plan's stack has no setup",
                                    f"add stack.tools.{name}: /path/to/{name}, or a stack.setup")
        return [path]

    def environment_line(self, stage: AnyStage) -> str:
        """Which environment ``stage`` runs in, in a few words (``plan show`` and the Queue's details)."""
        if not isinstance(stage, PipetaskStage):
            return f"pfstui's own Python ({self.pfstui[0]})"
        name = "bps" if stage.backend == "bps" else "pipetask"
        stack = self.stack
        if stack is None:
            found = getattr(self, name)
            return f"pfstui's venv ({found[0] if found else f'no {name} found in {self.searched}'})"
        path = stack.tool(name)
        if stack.setup is None:
            return f"stack tools ({name}: {path})"
        return f"stack (setup: {' '.join(stack.setup.split())})" + (f", {name}: {path}" if path else "")


def env_line(plan: Plan, stage: AnyStage, tools: Tools | None = None) -> str:
    """``env: ...``: which environment a stage of ``plan`` runs in (see :meth:`Tools.environment_line`)."""
    return "env: " + (tools or Tools.discover()).for_plan(plan).environment_line(stage)


def log_file(attempt_dir: Path | str, stage_name: str) -> Path:
    """Where pipetask writes its JSON log records for one attempt of a stage."""
    return Path(attempt_dir) / f"{stage_name}.log.json"


def summary_file(attempt_dir: Path | str, stage_name: str) -> Path:
    """Where pipetask writes its ``--summary`` Report JSON for one attempt of a stage."""
    return Path(attempt_dir) / f"{stage_name}.summary.json"


def _dates(begin: str | None, end: str | None) -> list[str]:
    out: list[str] = []
    if begin is not None:
        out += ["--begin-date", begin]
    if end is not None:
        out += ["--end-date", end]
    return out


def _ids(data_ids: Sequence[Mapping[str, object]]) -> list[str]:
    out: list[str] = []
    for data_id in data_ids:
        out.append("--id")
        out += [f"{k}={v}" for k, v in data_id.items()]
    return out


_ATTEMPT_FOLDER_RE = re.compile(r"^attempt-([1-9][0-9]*)$")


def attempt_number(attempt_dir: Path | str) -> int | None:
    """The attempt an attempt folder is for (``.../attempt-3`` is 3; see ``pfstui.queue.launch.attempt_dir``),
    or None for any other folder (``plan show`` builds the commands in ``.``)."""
    m = _ATTEMPT_FOLDER_RE.match(Path(attempt_dir).name)
    return int(m.group(1)) if m else None


def _journaled(stage: AnyStage, attempt_dir: Path | str) -> list[str]:
    """The end of a Butler stage's argv: who runs it (the journal records it), and apply without asking."""
    number = attempt_number(attempt_dir)
    return ["--stage", stage.name, *(["--attempt", str(number)] if number else []), "--yes"]


def _resolve_stage(plan: Plan, stage: AnyStage | str) -> AnyStage:
    if isinstance(stage, str):
        try:
            return plan.stage(stage)
        except KeyError as exc:
            raise CommandError(exc.args[0]) from None
    return stage


def build_argv(
    plan: Plan,
    stage: AnyStage | str,
    *,
    attempt_dir: Path | str,
    first_run: bool,
    tools: Tools | None = None,
    skip_existing_in: Sequence[str] = (),
) -> list[str]:
    """The exact argv that runs ``stage`` (a stage model or its name).

    ``first_run`` (decided by the caller from its session store) switches on
    ``--register-dataset-types`` for a pipetask stage with ``register_dataset_types: auto``;
    ``true`` always adds it and ``false`` never does.  ``attempt_dir`` receives the pipetask JSON log
    and ``--summary`` file; it must exist before the command runs (pipetask does not create it).
    ``tools`` defaults to ``Tools.discover()``.  ``skip_existing_in`` (full collection names) is added to a
    pipetask stage's own: a restart names its output chain there, so only the quanta not done run again.
    """
    stage = _resolve_stage(plan, stage)
    tools = (tools or Tools.discover()).for_plan(plan)
    repo = plan.repository
    if isinstance(stage, PipetaskStage) and stage.backend == "bps":
        # Which backend runs a stage is decided above the plan (pfstui.queue.launch.stage_argv).
        raise CommandError(f"stage '{stage.name}' runs through bps (`bps submit` of a submit file): "
                           "build its command with pfstui.queue.launch.stage_argv")
    if isinstance(stage, PipetaskStage):
        argv = tools.command("pipetask")
        argv += ["--long-log", "--log-level", plan.defaults.log_level]
        argv += ["--log-file", str(log_file(attempt_dir, stage.name)), "run"]
        register = stage.register_dataset_types
        if register is True or (register == "auto" and first_run):
            argv.append("--register-dataset-types")
        argv += ["-j", str(stage.processes or plan.defaults.processes)]
        argv += ["-b", repo, "--instrument", plan.instrument]
        argv += ["-i", ",".join(stage.inputs), "-o", plan.collection(stage.output)]
        argv += ["-p", stage.pipeline, "-d", stage.query]
        for item in stage.config:
            argv += ["-c", item]
        for item in stage.config_files:
            argv += ["-C", item]
        skip = [plan.collection(c) for c in stage.skip_existing_in] + list(skip_existing_in)
        if skip:
            argv += ["--skip-existing-in", ",".join(dict.fromkeys(skip))]
        if stage.clobber_outputs:
            argv.append("--clobber-outputs")
        fail_fast = plan.defaults.fail_fast if stage.fail_fast is None else stage.fail_fast
        if fail_fast:
            argv.append("--fail-fast")
        argv += ["--summary", str(summary_file(attempt_dir, stage.name))]
        argv += list(stage.extra_options)
        return argv
    if isinstance(stage, VerifyStage):  # reads only: nothing to journal, nothing to confirm
        return tools.command("pfstui") + _verify_action(plan, stage)
    return tools.command("pfstui") + _butler_action(plan, stage) + _journaled(stage, attempt_dir)


def _verify_action(plan: Plan, stage: VerifyStage) -> list[str]:
    argv = ["verify", plan.repository, plan.collection(stage.collection), stage.dataset_type,
            "--against", stage.against]
    return argv + (["--at", stage.begin] if stage.begin is not None else []) + \
        verify_limit_flags(plan, stage.dataset_type, stage.limits)


def verify_limit_flags(plan: Plan, dataset_type: str, own: Mapping[str, Any] | None = None) -> list[str]:
    """``--limit PRODUCT.CHECK=WARN,FAIL`` for each limit of the plan's ``defaults.verify_limits`` for the product
    ``dataset_type`` is and of a verify stage's ``own`` limits (which win); the other products' limits are of no
    use to it.  A certify stage gets the plan's too, so its gate judges as the verify stage before it did."""
    product = product_kind(dataset_type)
    if product is None:
        return []
    limits = {**plan.defaults.verify_limits.get(str(product), {}), **(own or {})}
    out: list[str] = []
    for check, (warn, fail) in limits.items():
        out += ["--limit", f"{product}.{check}={_number(warn)},{_number(fail)}"]
    return out


def _number(value: float) -> str:
    """``5`` for 5.0, and every digit of a number ``:g`` would round."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def _butler_action(plan: Plan, stage: AnyStage) -> list[str]:
    """A Butler stage's pfstui subcommand and its arguments (without the journaled ending)."""
    repo = plan.repository
    if isinstance(stage, CertifyStage):
        argv = ["certify", repo, plan.collection(stage.input), stage.target, stage.dataset_type]
        argv += _dates(stage.begin, stage.end) + _ids(stage.data_ids)
        for camera, reason in stage.override.items():  # the operator's decision: certify a failing camera
            argv += ["--override", f"{camera}={reason}"]
        argv += verify_limit_flags(plan, stage.dataset_type)
        return argv + ["--search-all-inputs" if stage.search_all_inputs else "--whole-product"]
    if isinstance(stage, CertifyCandidatesStage):
        argv = ["certify-detectormaps", repo, plan.collection(stage.collection), stage.target]
        argv += ["--instrument", stage.instrument] + _dates(stage.begin, stage.end)
        return argv + (["--run", plan.collection(stage.run)] if stage.run else [])
    if isinstance(stage, DefineProfilesStage):
        argv = ["define-profiles", repo, stage.instrument, stage.profiles_run]
        for group in stage.groups:
            argv += ["--bright", group.bright]
            if group.dark is not None:
                argv += ["--dark", group.dark]
        return argv + (["--update"] if stage.update else [])
    if isinstance(stage, CleanStage):
        argv = ["clean", repo, plan.collection(stage.glob), *stage.dataset_types]
        return argv + (["--where", stage.where] if stage.where is not None else [])
    if isinstance(stage, DecertifyStage):
        return ["decertify", repo, stage.collection, stage.dataset_type] + _dates(stage.begin, stage.end) + \
            _ids(stage.data_ids)
    raise CommandError(f"stage '{getattr(stage, 'name', stage)}' has an unknown kind")  # pragma: no cover


_DOUBLE_QUOTE_UNSAFE = set('"$`\\!\n')


def shell_quote(arg: str) -> str:
    """Quote one argument for a POSIX shell, readably.

    Like ``shlex.quote``, but an argument whose only problem is single quotes (a data query such as
    ``instrument='PFS'``) is put in double quotes, as operators write it, when that is safe: no
    ``"``, ``$``, backquote, backslash, ``!`` (bash history) or newline inside.
    """
    quoted = shlex.quote(arg)
    if quoted == arg or "'" not in arg or any(c in _DOUBLE_QUOTE_UNSAFE for c in arg):
        return quoted
    return f'"{arg}"'


def shell_join(argv: Sequence[str]) -> str:
    """One shell-quoted line (``shlex.join`` with readable quoting); ``shlex.split`` gives ``argv`` back."""
    return " ".join(shell_quote(a) for a in argv)


_OPTION_RE = re.compile(r"^(-[A-Za-z]|--[A-Za-z][-A-Za-z0-9]*)$")


def shell_format(argv: Sequence[str], *, head: int = 1, indent: str = "    ") -> str:
    """Like ``shell_join`` but with a `` \\``-continued line before each option (after the first
    ``head`` items, which stay on the first line): readable, and still pasteable into a shell."""
    parts: list[list[str]] = [[]]
    for i, arg in enumerate(argv):
        if i >= head and _OPTION_RE.match(arg) and parts[-1]:
            parts.append([])
        parts[-1].append(shell_quote(arg))
    return (" \\\n" + indent).join(" ".join(p) for p in parts)


def head_length(argv: Sequence[str], stage: AnyStage, tools: Tools) -> int:
    """How many argv items of a local stage's command make up "program [global options] subcommand" (kept on
    one line by :func:`shell_format`)."""
    if isinstance(stage, PipetaskStage):
        return len(tools.command("pipetask")) + 6  # --long-log --log-level L --log-file F run
    return len(tools.pfstui) + 1


def _window(begin: str | None, end: str | None) -> str:
    return f"{begin or 'open'} … {end or 'open'}"


def plural(count: int, word: str) -> str:
    """``3 stages``, ``1 stage``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def describe(stage: AnyStage, plan: Plan | None = None) -> str:
    """A one-line human summary of a stage; with ``plan``, rerun-relative names are shown in full."""

    def coll(name: str) -> str:
        return plan.collection(name) if plan is not None else name

    if isinstance(stage, PipetaskStage):
        via = f" via bps ({stage.bps.site if stage.bps else 'local'} site)" if stage.backend == "bps" else ""
        return f"run {Path(stage.pipeline).name}{via} on {stage.query} → {coll(stage.output)}"
    if isinstance(stage, VerifyStage):
        limits = f", {plural(len(stage.limits), 'own limit')}" if stage.limits else ""
        return f"verify {stage.dataset_type} in {coll(stage.collection)} against {stage.against} at " \
            f"{stage.begin or 'now'}{limits}"
    if isinstance(stage, CertifyStage):
        text = f"certify {stage.dataset_type} from {coll(stage.input)} into {stage.target}, {_window(stage.begin, stage.end)}"
        if stage.data_ids:
            text += f", {plural(len(stage.data_ids), 'data ID')}"
        return text
    if isinstance(stage, CertifyCandidatesStage):
        source = coll(stage.collection) + (f" (RUN {coll(stage.run)})" if stage.run else "")
        return f"certify detectorMap_candidate from {source} as detectorMap_calib into {stage.target}, " \
            f"{_window(stage.begin, stage.end)}"
    if isinstance(stage, DefineProfilesStage):
        return f"define fiber-profiles run {stage.profiles_run} ({stage.instrument}): {plural(len(stage.groups), 'group')}"
    if isinstance(stage, CleanStage):
        text = f"delete {', '.join(stage.dataset_types)} from RUN collections {coll(stage.glob)}"
        if stage.where:
            text += f" where {stage.where}"
        return text
    if isinstance(stage, DecertifyStage):
        text = f"decertify {stage.dataset_type} in {stage.collection}, {_window(stage.begin, stage.end)}"
        if stage.data_ids:
            text += f", {plural(len(stage.data_ids), 'data ID')}"
        return text
    return str(stage)  # pragma: no cover


def with_overrides(stage: AnyStage, overrides: Mapping[str, Any] | None) -> AnyStage:
    """``stage`` with the restart editor's ``overrides`` applied (validated by the stage's model)."""
    if not overrides:
        return stage
    data = stage.model_dump()
    data.update(overrides)
    try:
        return type(stage).model_validate(data)
    except ValidationError as exc:
        from pfstui.plan.loader import options_error  # the plan's words for a field's problem

        raise options_error(exc, data) from None
