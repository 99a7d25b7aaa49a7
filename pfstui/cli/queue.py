"""Headless queue commands: plan new/show, run, status, queue pause|resume|kill|restart|skip|parallel.

They are clients of the session's supervisor (started detached when needed), so `pfstui run` can be
interrupted or lose its terminal and the plan still goes on; `pfstui status` shows where it is.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pfstui.cli.argtypes import stages_at_once
from pfstui.cli.guard import say
from pfstui.cli.readonly import changes
from pfstui.errors import UserError
from pfstui.queue import rules
from pfstui.queue.model import BAD, RAN_BADLY, StageStatus, Wait

if TYPE_CHECKING:
    from pfstui.queue.requests import NextRun, Snapshot
    from pfstui.queue.state import Stage


class QueueCliError(UserError):
    """A user-facing error of the queue commands."""


def _paths():
    import pfstui.infra.paths as paths
    return paths


def current_pointer() -> Path:
    return _paths().state_dir() / "current-session"


def resolve_session(plan: str | None, repo: str | None) -> Path:
    """The session folder of (repo, plan); without --plan, the one used last."""
    if plan:
        from pfstui.plan.loader import load_plan
        from pfstui.plan.variables import stage_env

        p = load_plan(plan, env=stage_env())
        return _paths().session_dir(repo or p.repository, plan)
    pointer = current_pointer()
    if pointer.exists():
        path = Path(pointer.read_text().strip())
        if path.exists():
            return path
    raise QueueCliError("no session yet: start one with `pfstui run PLAN` (or name it with --plan PLAN)")


def last_session_repo() -> str | None:
    """The repository of the session used last (what ``pfstui status`` shows without --plan), or None."""
    pointer = current_pointer()
    try:
        state = json.loads((Path(pointer.read_text().strip()) / "state.json").read_text())
    except (OSError, ValueError):
        return None
    repo = state.get("repo") if isinstance(state, dict) else None
    return str(repo) if isinstance(repo, str) and repo else None


def _client(session: Path, autostart: bool = True, read_only: bool = False):
    from pfstui.queue.protocol import SupervisorClient

    return SupervisorClient(session, autostart=autostart, read_only=read_only).connect()


# --- plan new / show ---------------------------------------------------------------------------------
def cmd_plan_new(args: argparse.Namespace) -> int:
    from pfstui.plan.templates import plan_new

    path = plan_new(args.template, args.repo, args.rerun, args.output, force=args.force)
    print(f"Wrote {args.template} plan to {path}; review it, then `pfstui plan show {path}` or `pfstui run {path}`.")
    return 0


def cmd_plan_show(args: argparse.Namespace) -> int:
    from pfstui.cli.demo import ensure_demo_env
    from pfstui.queue.launch import plan_show

    ensure_demo_env()
    sys.stdout.write(plan_show(args.plan))
    return 0


# --- run ---------------------------------------------------------------------------------------------
def describe_progress(stage: Stage) -> str:
    parts = []
    for label, t in stage.progress.tasks.items():
        parts.append(f"{label} {t.done}/{t.total if t.total is not None else '?'}"
                     + (f" ({t.failed} failed)" if t.failed else "")
                     + (f" ({t.blocked} blocked)" if t.blocked else ""))
    return ", ".join(parts)


def failure_lines(stage: Stage) -> list[str]:
    last = stage.last_attempt
    if last is None:
        return []
    out = []
    for f in last.progress.failures[:5]:
        data_id = ", ".join(f"{k}={v}" for k, v in f.data_id.items())
        out.append(f"    {f.task} {{{data_id}}}: {f.exception_class or 'error'}: {f.message}")
    if not out and last.detail:
        out.append(f"    {last.detail}")
    if last.log_path and stage.status in RAN_BADLY:
        out.append(f"    log: {last.log_path}")
    return out


def event_time(stage: Stage) -> str:
    """When the stage's last event happened (its attempt started, was paused, or ended), in local time;
    blank for one that has none recorded (never run, skipped, dependency-failed).

    Why: ``pfstui status`` printed the current time on every line, so a stage that ended at night read as
    if it had ended as the command ran."""
    a = stage.last_attempt
    stamp = None
    if a is not None and stage.status is not StageStatus.QUEUED:
        stamp = a.ended_at or a.paused_at or a.started_at
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%m-%d %H:%M:%S") if stamp else " " * 14
    except ValueError:
        return " " * 14


def _stage_line(stage: Stage) -> str:
    extra = ""
    a = stage.last_attempt
    if a is not None:
        extra = f" attempt {a.number}"
        if stage.status == StageStatus.RUNNING and a.pid:
            extra += f" pid {a.pid}"
        if a.exit_code not in (None, 0):
            extra += f" exit {a.exit_code}"
        if a.signal:
            extra += f" {a.signal}"
    progress = describe_progress(stage)
    return (f"{event_time(stage)} {stage.id:<24} {stage.status:<17}{extra}"
            + (f"  [{progress}]" if progress else ""))


def cmd_run(args: argparse.Namespace) -> int:
    from pfstui.plan.loader import load_plan
    from pfstui.plan.variables import stage_env
    from pfstui.queue.requests import LoadPlan, Run, SetParallel, Status, Subscribe

    plan_path = str(Path(args.plan).absolute())
    plan = load_plan(plan_path, env=stage_env())
    repo = args.repo or plan.repository
    session = _paths().session_dir(repo, plan_path)
    from pfstui.infra.atomic import atomic_write_text

    _paths().make_session_dir(session)
    atomic_write_text(current_pointer(), str(session) + "\n")
    client = _client(session)
    client.request(LoadPlan(path=plan_path, repo=args.repo))
    if args.parallel:
        client.request(SetParallel(parallel=args.parallel))
    client.request(Run())
    say(f"Running {plan_path} on {repo} (session {session})", flush=True)
    if args.no_wait:
        return 0
    seen: dict[object, object] = {}

    def show(snap: Snapshot) -> bool:
        for st in snap.stages:
            key = (st.status, len(st.attempts))
            if seen.get(st.id) != key:
                seen[st.id] = key
                say(_stage_line(st), flush=True)
                if st.status in RAN_BADLY:
                    for line in failure_lines(st):
                        say(line, flush=True)
            preview = st.extra.preview
            if st.status == StageStatus.WAITING and preview and seen.get((st.id, "preview")) != preview.state:
                seen[(st.id, "preview")] = preview.state
                say(f"    waits for approval; its preview is {preview.state}"
                    + (f": read it with `pfstui status`, then `pfstui queue approve|reject {st.id}`"
                       if preview.state != "computing" else ""), flush=True)
        return rules.is_finished(snap.state)

    finished = show(client.request(Subscribe()))
    events = client.events(timeout=1.0)
    while not finished:
        snap = next(events)
        if snap is not None:
            finished = show(snap)
    final = client.request(Status()).stages
    states = [st.status for st in final]
    bad = [st.id for st in final if st.status in BAD]
    say(f"Finished: {states.count(StageStatus.DONE)} done, {states.count(StageStatus.SKIPPED)} skipped, "
          f"{len(bad)} not done" + (f" ({', '.join(bad)})" if bad else ""))
    return 1 if bad else 0


# --- status --------------------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    from pfstui.plan.argv import shell_join
    from pfstui.queue.requests import Status

    session = resolve_session(args.plan, args.repo)
    snap = _client(session, read_only=getattr(args, "read_only", False)).request(Status())
    state = snap.state
    if args.json:
        out = {
            "session": snap.session,
            "repo": state.repo,
            "plan": state.plan,
            "queue_paused": state.queue_paused,
            "phase": rules.phase(state),
            "parallel": state.parallel,
            "plan_error": snap.plan_error,
            "state_problem": snap.state_problem,
            "save_error": snap.save_error,
            "frozen": snap.frozen,
            "stages": [_stage_json(st, snap.next_runs.get(st.id), snap.waiting.get(st.id, [])) for st in state.stages],
        }
        json.dump(out, sys.stdout, indent=1)
        print()
        return 0
    say(f"plan {state.plan}  repo {state.repo}  queue {PHASE_WORDS[rules.phase(state)]}  "
        f"parallel {state.parallel}")
    for line in _problem_lines(snap):
        say(line)
    for st in state.stages:
        say(_stage_line(st))
        last = st.last_attempt
        if last is not None and last.detail and st.status not in RAN_BADLY:  # a done stage's warning
            say(f"    {last.detail}")
        for wait in snap.waiting.get(st.id, []):
            say(f"    waiting: {wait.text}")
        if st.status == StageStatus.WAITING and st.extra.preview is not None:
            p = st.extra.preview
            say(f"    preview of attempt {p.attempt} ({p.state}, {p.at}):")
            for line in (p.text or "…").splitlines():
                say(f"      {line}")
        run = snap.next_runs.get(st.id)
        if run is not None:
            say(f"    next: {shell_join(run.argv) if run.error is None else f'(cannot build it: {run.error})'}")
    return 0


#: How ``pfstui status`` names the queue's phase (:func:`pfstui.queue.rules.phase`).
PHASE_WORDS = {"finished": "finished", "empty": "empty", "paused": "PAUSED", "idle": "idle (nothing more can run)",
               "running": "running", "waiting": "waiting for an approval"}


def _problem_lines(snap: Snapshot) -> list[str]:
    """What the supervisor has to say about the plan and the state file, for the text status.

    Why: a damaged state file (the queue restarted empty), a full disk (changes kept in memory only) and a
    frozen session (every change refused) were visible in the app only; ``pfstui status`` looked healthy.
    """
    lines = [f"plan error: {snap.plan_error}"] if snap.plan_error else []
    if snap.frozen:
        lines.append("FROZEN: every change to this queue is refused until the state file can be read")
    # state_problem already holds save_error (joined with " · "), so it is printed once.
    problem = snap.state_problem or snap.save_error
    if problem:
        lines.append(f"state problem: {problem}")
    return lines


def _stage_json(st: Stage, run: NextRun | None, waits: list[Wait]) -> dict[str, Any]:
    a = st.last_attempt
    return {
        "id": st.id,
        "status": st.status,
        "depends_on": st.depends_on,
        "attempt": a.number if a else None,
        "exit_code": a.exit_code if a else None,
        "log": a.log_path if a else None,
        #: Why it ended badly, or a warning about a stage that did not (its log truncated or deleted).
        "detail": a.detail if a and a.detail else None,
        "quanta": a.quanta.progress.model_dump(mode="json") if a and a.quanta.progress else None,
        #: The exact argv of its next attempt (a queued or restartable stage), as the supervisor will run it.
        "next_argv": run.argv if run is not None and run.error is None else None,
        #: Why it is not running (a stage that has not started), most pressing first.
        "waiting": [{"kind": w.kind, "text": w.text, "stages": list(w.stages)} for w in waits],
        #: A stage waiting for approval: what its next attempt would change (``state``: computing, ready, failed).
        "preview": st.extra.preview.model_dump(mode="json") if st.extra.preview else None,
    }


# --- queue ---------------------------------------------------------------------------------------------
def cmd_queue(args: argparse.Namespace) -> int:
    from pfstui.queue import requests

    if args.full and args.action != "restart":
        raise QueueCliError(f"--full is an option of `pfstui queue restart`, not of `queue {args.action}`")
    if args.yes and args.action != "approve":
        raise QueueCliError(f"--yes is an option of `pfstui queue approve`, not of `queue {args.action}`")
    if args.action == "approve":
        return _approve(args)
    if args.action in ("pause", "resume") and not args.stage:
        request = requests.PauseQueue() if args.action == "pause" else requests.ResumeQueue()
    elif args.action == "parallel":
        request = _set_parallel(args.stage)
    elif args.action in STAGE_ACTIONS:
        if not args.stage:
            raise QueueCliError(f"`pfstui queue {args.action}` needs a STAGE name")
        kind = getattr(requests, STAGE_ACTIONS[args.action])
        extra = {"overrides": _overrides(args.set)} if args.action == "restart" and args.set else {}
        if args.full:
            extra["full"] = True
        request = kind(stage=args.stage, **extra)
    else:  # pragma: no cover - argparse restricts the choices
        raise QueueCliError(f"unknown queue action {args.action}")
    client = _client(resolve_session(args.plan, args.repo))  # after the request is checked: no supervisor for a typo
    print(json.dumps(client.request(request).model_dump(mode="json")))
    return 0


#: `pfstui queue ACTION STAGE` -> the request it sends.
STAGE_ACTIONS = {"pause": "PauseStage", "resume": "ResumeStage", "kill": "KillStage", "skip": "SkipStage",
                 "restart": "RestartStage", "reject": "RejectStage"}


def _approve(args: argparse.Namespace) -> int:
    """``pfstui queue approve STAGE``: print what the stage would change, ask (unless ``--yes``), then approve
    exactly that preview (the supervisor refuses if it changed meanwhile)."""
    from pfstui.queue.requests import ApproveStage, Status

    if not args.stage:
        raise QueueCliError("`pfstui queue approve` needs a STAGE name")
    client = _client(resolve_session(args.plan, args.repo))
    stage = client.request(Status()).state.stage(args.stage)
    preview = stage.extra.preview if stage is not None else None
    if stage is None or stage.status != "waiting" or preview is None or preview.state != "ready":
        # the supervisor's refusal says why (no such stage, not waiting, preview not ready or failed)
        print(json.dumps(client.request(ApproveStage(stage=args.stage, seen_argv=[])).model_dump(mode="json")))
        return 0
    print(f"Stage {stage.id}, attempt {preview.attempt} (preview of {preview.at}):\n{preview.text}", flush=True)
    if not args.yes and not _ask(f"Approve {stage.id}? [y/N] "):
        print("Not approved; the stage still waits.")
        return 3
    request = ApproveStage(stage=stage.id, seen_argv=preview.argv, seen_digest=preview.digest)
    print(json.dumps(client.request(request).model_dump(mode="json")))
    return 0


def _ask(question: str) -> bool:
    if not sys.stdin.isatty():
        raise QueueCliError("stdin is not a terminal, so pfstui cannot ask before approving",
                            "read the preview above, then pass --yes to approve it")
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _set_parallel(text: str | None):
    """``pfstui queue parallel N``: the request, or one line when N is not a whole number in range."""
    from pfstui.queue.model import MAX_PARALLEL
    from pfstui.queue.requests import SetParallel

    try:
        return SetParallel(parallel=int(text or "", 10))
    except ValueError:  # not a number, or pydantic's ValidationError (out of range)
        raise QueueCliError(f"`pfstui queue parallel N`: {text!r} is not a whole number from 1 to "
                            f"{MAX_PARALLEL}; write e.g. `pfstui queue parallel 4`") from None


def _overrides(items: list[str]) -> dict[str, Any]:
    """``--set config+=isr:doCrosstalk=False`` appends to a list field; ``--set query=...`` replaces."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise QueueCliError(f"--set {item!r}: write FIELD=VALUE (or FIELD+=VALUE for a list such as config)")
        if key.endswith("+"):
            out.setdefault(key[:-1], []).append(value)
        else:
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = _not_json(item, key, value)
    return out


def _not_json(item: str, key: str, value: str) -> str:
    """A ``--set`` value that is not JSON is a string, unless it starts like a list or a mapping: then the
    operator meant one, and is told how to write it (the supervisor would refuse the string with pydantic's
    words about a list)."""
    text = value.strip()
    if text.startswith("["):
        items = [i.strip().strip("'\"") for i in text.strip("[]").split(",") if i.strip()] or ["ITEM"]
        raise QueueCliError(f"--set {item!r}: the value of {key} starts like a list but is not JSON",
                            f"quote each item: --set {shlex.quote(f'{key}={json.dumps(items)}')}, or add them one "
                            f"at a time: {' '.join(f'--set {shlex.quote(f"{key}+={i}")}' for i in items)}")
    if text.startswith("{"):
        raise QueueCliError(f"--set {item!r}: the value of {key} starts like a mapping but is not JSON",
                            f'quote its keys and strings: --set \'{key}={{"name": "value"}}\'')
    return value


def add_subcommands(sub) -> None:
    p = sub.add_parser("plan", help="write or show a calibration plan")
    psub = p.add_subparsers(title="plan commands", metavar="ACTION", required=True)
    q = psub.add_parser("new", help="write a plan from a template")
    q.add_argument("--template", choices=["pfs", "demo"], required=True)
    q.add_argument("--repo", help="repository path to write into the plan")
    q.add_argument("--rerun", help="rerun prefix for outputs (default u/<your login>)")
    q.add_argument("-o", "--output", required=True, help="plan file to write")
    q.add_argument("--force", action="store_true", help="overwrite an existing file")
    q.set_defaults(func=cmd_plan_new)
    changes(q, "plan new", lambda a: "an existing plan file a queue may follow (--force)" if a.force else None)
    q = psub.add_parser("show", help="print each stage's exact command, shell-quoted, in order")
    q.add_argument("plan")
    q.set_defaults(func=cmd_plan_show)

    p = sub.add_parser("run", help="run a plan through the supervisor, printing one line per stage event")
    p.add_argument("plan")
    p.add_argument("--repo", help="override the plan's repository")
    p.add_argument("--parallel", type=stages_at_once, help="how many stages may run at once (1 to 1000)")
    p.add_argument("--no-wait", action="store_true", help="start the queue and return at once")
    p.set_defaults(func=cmd_run)
    changes(p, "run", "the queue")

    p = sub.add_parser("status", help="the queue and each stage's quanta counts")
    p.add_argument("--plan")
    p.add_argument("--repo")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("queue", help="pause|resume (the queue or a stage), kill|restart|skip|approve|reject STAGE, "
                                     "parallel N")
    p.add_argument("action", choices=["pause", "resume", "kill", "restart", "skip", "approve", "reject",
                                      "parallel"])
    p.add_argument("stage", nargs="?", help="the stage (or, for parallel, how many stages may run at once)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="restart with an edited option")
    p.add_argument("--full", action="store_true",
                   help="restart every quantum again (by default a restart runs only the quanta not done)")
    p.add_argument("--yes", "-y", action="store_true",
                   help="approve without asking (the preview is printed all the same)")
    p.add_argument("--plan")
    p.add_argument("--repo")
    p.set_defaults(func=cmd_queue)
    changes(p, "queue", "the queue")
