"""Starting attempts: which command runs a stage (the backend dispatch), decided once, then launched.

Why one place: what an attempt of a stage will run is shown before it runs (``plan show``; the Queue pane's
details and ``pfstui status`` through the supervisor's snapshot), and the operator must see exactly what
then runs.  So :func:`prepare` decides everything (argv, working folder, the bps submission it makes or
restarts) without writing anything, the snapshot shows what it decided, :func:`intent` records that same
decision as an attempt (saved before anything runs) and :func:`start` launches the attempt's one process.

Backends: a local stage runs the argv of :func:`pfstui.plan.argv.build_argv`; a ``backend: bps`` stage runs
``bps submit`` of a submit file written into its attempt folder, or ``bps restart`` of its previous
submission (see :func:`prepare`).  ``pfstui.plan`` knows nothing of bps: the dispatch is here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pfstui.bps.report import REPORT_FILE
from pfstui.bps.submit import (
    SUBMIT_FILE,
    bps_env,
    restart_argv,
    submit_argv,
    submit_config,
    submit_yaml,
    write_submit,
)
from pfstui.infra.private import make_private_dir
from pfstui.plan.argv import (
    Tools,
    build_argv,
    describe,
    env_line,
    head_length,
    plural,
    shell_format,
    stack_setup,
)
from pfstui.plan.loader import load_plan
from pfstui.plan.model import AnyStage, PipetaskStage, Plan
from pfstui.plan.variables import stage_env
from pfstui.process import runner
from pfstui.process.capture import capture
from pfstui.process.intent import LaunchFiles
from pfstui.queue.model import AttemptStatus
from pfstui.queue.requests import NextRun
from pfstui.queue.state import PREVIEW_LIMIT, Attempt, BpsAttempt, GatePreview, now

__all__ = ["LaunchSpec", "attempt_dir", "environment", "files_of", "intent", "make_folder", "next_run", "plan_show",
           "prepare", "stage_argv", "start"]


def is_bps(stage: AnyStage) -> bool:
    return isinstance(stage, PipetaskStage) and stage.backend == "bps"


def attempt_dir(session_dir: Path, stage_id: str, number: int) -> Path:
    """The folder of one attempt of a stage: its log, exit status and (bps) submit file."""
    return session_dir / "stages" / stage_id / f"attempt-{number}"


def stage_argv(plan: Plan, stage: AnyStage, *, attempt_dir: Path | str, first_run: bool, tools: Tools,
               skip_existing_in: list[str] | None = None) -> list[str]:
    """The argv of a new run of ``stage`` with its files in ``attempt_dir`` (a bps stage: ``bps submit`` of the
    submit file written there; see :func:`pfstui.plan.argv.build_argv` for ``first_run`` and
    ``skip_existing_in``)."""
    tools = tools.for_plan(plan)
    if is_bps(stage):
        # The submit file (written by start() with pfstui.bps.submit.write_submit) carries everything else.
        return submit_argv(tools.command("bps"), Path(attempt_dir) / SUBMIT_FILE)
    return build_argv(plan, stage, attempt_dir=attempt_dir, first_run=first_run, tools=tools,
                      skip_existing_in=skip_existing_in or ())


def display_head(argv: list[str], stage: AnyStage, tools: Tools) -> int:
    """How many argv items :func:`pfstui.plan.argv.shell_format` keeps on the first line."""
    return len(argv) if is_bps(stage) else head_length(argv, stage, tools)


def environment(bps: bool, argv: list[str] | None = None) -> dict[str, str]:
    """The environment an attempt (and a bps attempt's ``pipetask report``) runs in.

    An attempt that runs in the plan's stack (``argv`` starts with :func:`pfstui.plan.argv.stack_prefix`)
    gets ours unchanged: pfstui's venv is not put on its ``PATH`` and the stack's setup sets what bps needs
    (``CTRL_MPEXEC_DIR``...).  Any other gets pfstui's ``bin`` first on ``PATH``."""
    if argv is not None and stack_setup(argv) is not None:
        return dict(os.environ)
    return bps_env(stage_env()) if bps else stage_env()



@dataclass(frozen=True)
class LaunchSpec:
    """What the next attempt of a stage runs, decided before anything is written.

    ``submit`` is the bps submit file :func:`start` writes into ``attempt_dir`` (None for a local stage and
    for ``bps restart``); ``bps`` the attempt's bps record (None for a local stage).
    """

    argv: list[str]
    cwd: Path
    attempt_dir: Path
    head: int
    bps: BpsAttempt | None = None
    submit: dict[str, Any] | None = None
    #: ``env: ...``: which environment it runs in (:func:`pfstui.plan.argv.env_line`).
    env: str | None = None

    def submit_text(self) -> str | None:
        """The submit file as :func:`start` will write it (for showing before it runs)."""
        return None if self.submit is None else submit_yaml(self.submit)


def prepare(plan: Plan, pstage: AnyStage, *, adir: Path, previous: list[Attempt], overrides: Mapping[str, Any],
            first_run: bool, tools: Tools, full: bool = False) -> LaunchSpec:
    """Decide the next attempt of a stage (``pstage``: the plan's stage with the stage's overrides applied).

    A restart finishes the job rather than starting it again: a local stage with earlier attempts runs in a
    new RUN of the same output chain with ``--skip-existing-in`` that chain, so only the quanta that did not
    succeed (and those they blocked) run; pipetask ignores a chain that does not exist yet (an attempt that
    never got that far).  A bps stage whose options are unchanged since its last bps attempt (a transient
    failure, a kill) is ``bps restart``-ed in that submission's folder, so finished jobs are not run again.
    Otherwise (first run, or options edited in the restart editor) it is a new submission; after an earlier
    one that reached the registry, with ``--skip-existing-in`` the output.  ``full`` (the operator asked for a
    full rerun) runs every quantum again in a new RUN.  ``previous`` are the stage's earlier attempts, oldest
    first.
    """
    spec = _prepare(plan, pstage, adir=adir, previous=previous, overrides=overrides, first_run=first_run,
                    tools=tools.for_plan(plan), full=full)
    return dataclasses.replace(spec, env=env_line(plan, pstage, tools))


def _prepare(plan: Plan, pstage: AnyStage, *, adir: Path, previous: list[Attempt], overrides: Mapping[str, Any],
             first_run: bool, tools: Tools, full: bool) -> LaunchSpec:
    if not is_bps(pstage):
        skip = [plan.collection(pstage.output)] if previous and not full and isinstance(pstage, PipetaskStage) else []
        argv = stage_argv(plan, pstage, attempt_dir=adir, first_run=first_run, tools=tools, skip_existing_in=skip)
        return LaunchSpec(argv, adir, adir, display_head(argv, pstage, tools))
    overrides = dict(overrides)
    earlier = [a for a in previous if a.bps is not None]
    last = earlier[-1].bps if earlier else None
    if last is not None and last.overrides == overrides and not full:
        workdir = Path(last.workdir)
        submit_dir = workdir / "submit"
        if (workdir / "runinfo").is_dir() and (submit_dir / "parsl_workflow.pickle").is_file():
            argv = restart_argv(tools.command("bps"), submit_dir)
            record = BpsAttempt(workdir=str(workdir), submit_dir=str(submit_dir), submit_file=last.submit_file,
                                mode="restart", overrides=overrides)
            return LaunchSpec(argv, workdir, adir, len(argv), bps=record)
    reached = not full and any(a.cwd and (Path(a.cwd) / REPORT_FILE).exists() for a in earlier)
    skip = [plan.collection(pstage.output)] if reached else []
    config = submit_config(plan, pstage, workdir=adir, skip_existing_in=skip)
    argv = stage_argv(plan, pstage, attempt_dir=adir, first_run=False, tools=tools)
    record = BpsAttempt(workdir=str(adir), submit_dir=str(adir / "submit"), submit_file=str(adir / SUBMIT_FILE),
                        mode="submit", overrides=overrides)
    return LaunchSpec(argv, adir, adir, len(argv), bps=record, submit=config)


def next_run(spec: LaunchSpec) -> NextRun:
    """What the snapshot says the attempt of ``spec`` runs."""
    return NextRun(argv=spec.argv, head=spec.head, submit_file=spec.bps.submit_file if spec.bps else None,
                   submit_text=spec.submit_text(), env=spec.env)


def make_folder(adir: Path, stage_id: str) -> None:
    """Create an attempt's folder.  Why its own error: plans of older pfstui allowed stage names of ~300
    characters, which no file system takes as a folder name; such a stage must fail with the reason, not stop
    the supervisor on every start."""
    try:
        make_private_dir(adir)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise runner.LaunchError(
                f"stage name {stage_id[:24]}… has {len(stage_id)} characters, too many for a folder name on this "
                "file system; rename it in the plan (at most 64 characters) and load the plan again") from None
        raise runner.LaunchError(f"cannot create {adir}: {exc.strerror}; check the disk and the folder's "
                                 "permissions") from None


def intent(spec: LaunchSpec, number: int) -> Attempt:
    """The record of the attempt ``spec`` starts, made before its process exists (status ``starting``, its
    launch files and token: see :mod:`pfstui.process.intent`), after writing what it needs (a bps submit file).

    Why: the supervisor saves this record before :func:`start`, so a supervisor killed anywhere in the launch
    leaves a successor that knows the attempt exists and finds, or starts, its one process."""
    if spec.submit is not None:
        write_submit(spec.submit, spec.attempt_dir)
    files = LaunchFiles.new(spec.attempt_dir)
    return Attempt(number=number, argv=spec.argv, cwd=str(spec.attempt_dir), bps=spec.bps,
                   status=AttemptStatus.STARTING, log_path=str(files.log), status_path=str(files.status),
                   started_path=str(files.started), started_at=now())


def files_of(attempt: Attempt) -> LaunchFiles:
    """The launch files (and token) an attempt recorded."""
    return LaunchFiles.of(attempt.log_path or "", attempt.status_path or "", attempt.started_path or "")


def start(attempt: Attempt, *, resume: bool = False) -> runner.ProcessHandle:
    """Launch the process of a ``starting`` attempt detached (see :mod:`pfstui.process.runner`); ``resume``:
    an earlier launch of it may have got anywhere, and the handle returned is of its one process."""
    files = files_of(attempt)
    cwd = attempt.bps.workdir if attempt.bps is not None else attempt.cwd  # bps runs in its submission's folder
    return runner.launch(attempt.argv, cwd=cwd or ".", env=environment(attempt.bps is not None, attempt.argv),
                         log_path=files.log, status_path=files.status, started_path=files.started,
                         token=files.token, resume=resume)


# --- plan show ---------------------------------------------------------------------------------------------
def _comment(text: str) -> str:
    """A single comment line: newlines in a query must not end the comment and become a command."""
    return "# " + " ".join(text.split())


def _comment_block(text: str) -> list[str]:
    return ["#   " + line if line else "#" for line in text.rstrip("\n").split("\n")]


def plan_show(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    tools: Tools | None = None,
    attempt_dir: str | os.PathLike[str] = ".",
    first_run: bool = True,
) -> str:
    """Every stage's exact command, in dependency order, each after a ``# <stage>`` comment line.

    The text can be pasted into a shell.  Commands are shown as on a first run (``first_run``) with
    logs and summaries in ``attempt_dir`` (default: the current folder); a bps stage's submit file follows
    its command as a comment block.  PlanError on a bad plan.
    """
    plan = load_plan(path, env=env)
    tools = (tools or Tools.discover()).for_plan(plan)
    stages = plan.ordered_stages()
    lines = [
        _comment(f"Plan {path}: {plural(len(stages), 'stage')}, repository {plan.repository}, rerun {plan.rerun}"),
        _comment("(commands as on a first run; run them in this order)"),
    ]
    for number, stage in enumerate(stages, 1):
        argv = stage_argv(plan, stage, attempt_dir=Path(attempt_dir), first_run=first_run, tools=tools)
        after = f" after {', '.join(stage.after)}" if stage.after else ""
        lines.append("")
        lines.append(_comment(f"{stage.name} ({stage.kind}, {number}/{len(stages)}{after}): {describe(stage, plan)}"))
        lines.append(_comment(env_line(plan, stage, tools)))
        lines.append(shell_format(argv, head=display_head(argv, stage, tools)))
        if is_bps(stage):
            workdir = Path(attempt_dir)
            config = submit_config(plan, stage, workdir=workdir.absolute())
            lines.extend(_comment_block(f"{workdir / SUBMIT_FILE}:\n" + submit_yaml(config)))
    return "\n".join(lines) + "\n"


# --- approval gates ------------------------------------------------------------------------------------------
#: How long a gated stage's preview (its own argv with ``--dry-run --json``) may take before it counts as failed.
PREVIEW_TIMEOUT = 600.0
_APPROVED = "--approved"


def previews_itself(stage: AnyStage) -> bool:
    """The stage runs one of pfstui's own Butler actions that write, which preview with ``--dry-run --json``; any
    other stage (pipetask, bps, verify: it only reads) is previewed by its command line alone."""
    return stage.kind not in ("pipetask", "verify")


def preview_argv(argv: list[str]) -> list[str]:
    return [*argv, "--dry-run", "--json"]


def with_approval(argv: list[str], digest: str | None) -> list[str]:
    """The approved attempt's argv: it writes only if its own preview has the approved ``digest``."""
    return [*argv, _APPROVED, digest] if digest else argv


def without_approval(argv: list[str]) -> list[str]:
    """``argv`` as it was previewed (what :func:`with_approval` added taken off)."""
    return argv[:-2] if len(argv) >= 2 and argv[-2] == _APPROVED else argv


def preview_outcome(returncode: int | None, stdout: str, stderr: str, timed_out: bool) -> tuple[str, str, str | None]:
    """(state, text, digest) of a gated stage's preview from what its ``--dry-run --json`` run printed.

    A preview that would be refused counts as failed: approving it could only fail the stage."""
    if timed_out:
        return "failed", f"the preview took over {PREVIEW_TIMEOUT:.0f} s and was stopped", None
    try:
        data = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else None
    except (ValueError, IndexError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("lines"), list):
        why = (stderr.strip() or stdout.strip() or f"exit status {returncode}").splitlines()[-1]
        return "failed", f"the preview failed: {why}", None
    text = "\n".join(str(line) for line in data["lines"])
    if data.get("blocked"):
        return "failed", f"{text}\nwould be refused: {data.get('blocker') or 'see above'}", None
    return "ready", text, str(data.get("digest") or "") or None


class Previews:
    """The previews of gated stages being computed, one task per stage (a newer one cancels the older).

    Why tasks: a preview opens the Butler in a subprocess and may take seconds; the supervisor goes on ticking
    and answering clients meanwhile.  ``done(stage_id, asked, result)`` is called on the event loop with the
    preview that was asked for and the finished one."""

    def __init__(self, done: Callable[[str, GatePreview, GatePreview], None]) -> None:
        self._done = done
        self._tasks: dict[str, asyncio.Task] = {}

    def __bool__(self) -> bool:
        return bool(self._tasks)

    def __contains__(self, stage_id: str) -> bool:
        return stage_id in self._tasks

    def start(self, stage_id: str, preview: GatePreview, cwd: str) -> None:
        self.cancel(stage_id)
        self._tasks[stage_id] = asyncio.ensure_future(self._compute(stage_id, preview, cwd))

    def cancel(self, stage_id: str | None = None) -> None:
        """Stop the preview of ``stage_id`` (every preview: None)."""
        for sid in [stage_id] if stage_id is not None else list(self._tasks):
            task = self._tasks.pop(sid, None)
            if task is not None:
                task.cancel()

    async def _compute(self, stage_id: str, preview: GatePreview, cwd: str) -> None:
        try:
            got = await capture(preview_argv(preview.argv), env=environment(False), cwd=cwd,
                                timeout=PREVIEW_TIMEOUT)
        finally:
            if self._tasks.get(stage_id) is asyncio.current_task():
                del self._tasks[stage_id]
        state, text, digest = preview_outcome(got.returncode, got.stdout, got.stderr, got.timed_out)
        self._done(stage_id, preview, preview.model_copy(update={
            "state": state, "text": text[:PREVIEW_LIMIT], "digest": digest, "at": now("seconds")}))
