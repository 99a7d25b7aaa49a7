"""Headless queue commands: plan new/show, run, status, queue pause|resume|kill|restart|skip.

They are clients of the session's supervisor (started detached when needed), so `pfstui run` can be
interrupted or lose its terminal and the plan still goes on; `pfstui status` shows where it is.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import pfstui.queue.rules as scheduler
from pfstui.errors import UserError


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
        from pfstui.plan.model import load_plan
        from pfstui.plan.variables import stage_env

        p = load_plan(plan, env=stage_env())
        return _paths().session_dir(repo or p.repository, plan)
    pointer = current_pointer()
    if pointer.exists():
        path = Path(pointer.read_text().strip())
        if path.exists():
            return path
    raise QueueCliError("no session yet: start one with `pfstui run PLAN` (or name it with --plan PLAN)")


def _client(session: Path, autostart: bool = True):
    from pfstui.queue.protocol import SupervisorClient

    return SupervisorClient(session, autostart=autostart).connect()


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
def describe_progress(stage: dict[str, Any]) -> str:
    attempts = stage.get("attempts") or []
    if not attempts:
        return ""
    q = (attempts[-1].get("quanta") or {}).get("progress") or {}
    tasks = q.get("tasks") or {}
    parts = []
    for label, t in tasks.items():
        total = t.get("total")
        parts.append(f"{label} {t.get('done', 0)}/{total if total is not None else '?'}"
                     + (f" ({t['failed']} failed)" if t.get("failed") else "")
                     + (f" ({t['blocked']} blocked)" if t.get("blocked") else ""))
    return ", ".join(parts)


def failure_lines(stage: dict[str, Any]) -> list[str]:
    attempts = stage.get("attempts") or []
    if not attempts:
        return []
    last = attempts[-1]
    out = []
    q = (last.get("quanta") or {}).get("progress") or {}
    for f in (q.get("failures") or [])[:5]:
        data_id = ", ".join(f"{k}={v}" for k, v in (f.get("data_id") or {}).items())
        out.append(f"    {f.get('task')} {{{data_id}}}: {f.get('exception_class') or 'error'}: {f.get('message', '')}")
    if not out and last.get("detail"):
        out.append(f"    {last['detail']}")
    if last.get("log_path") and stage.get("status") in ("failed", "lost", "killed"):
        out.append(f"    log: {last['log_path']}")
    return out


def _stage_line(stage: dict[str, Any]) -> str:
    status = stage["status"]
    attempts = stage.get("attempts") or []
    extra = ""
    if attempts:
        a = attempts[-1]
        extra = f" attempt {a['number']}"
        if status == scheduler.RUNNING and a.get("pid"):
            extra += f" pid {a['pid']}"
        if a.get("exit_code") not in (None, 0):
            extra += f" exit {a['exit_code']}"
        if a.get("signal"):
            extra += f" {a['signal']}"
    progress = describe_progress(stage)
    return f"{time.strftime('%H:%M:%S')} {stage['id']:<24} {status:<17}{extra}" + (f"  [{progress}]" if progress else "")


def cmd_run(args: argparse.Namespace) -> int:
    from pfstui.plan.model import load_plan
    from pfstui.plan.variables import stage_env

    plan_path = str(Path(args.plan).absolute())
    plan = load_plan(plan_path, env=stage_env())
    repo = args.repo or plan.repository
    session = _paths().session_dir(repo, plan_path)
    session.mkdir(parents=True, exist_ok=True)
    from pfstui.infra.atomic import atomic_write_text

    atomic_write_text(current_pointer(), str(session) + "\n")
    client = _client(session)
    client.request("load_plan", path=plan_path, repo=args.repo)
    if args.parallel:
        client.request("set_parallel", parallel=args.parallel)
    client.request("run")
    print(f"Running {plan_path} on {repo} (session {session})", flush=True)
    if args.no_wait:
        return 0
    snapshot = client.request("subscribe")
    seen: dict[str, tuple] = {}

    def show(snap: dict[str, Any]) -> bool:
        stages = snap["state"]["stages"]
        for st in stages:
            key = (st["status"], len(st.get("attempts") or []))
            if seen.get(st["id"]) != key:
                seen[st["id"]] = key
                print(_stage_line(st), flush=True)
                if st["status"] in (scheduler.FAILED, scheduler.LOST, scheduler.KILLED):
                    for line in failure_lines(st):
                        print(line, flush=True)
        from pfstui.queue.store import QueueState

        return scheduler.is_finished(QueueState.model_validate(snap["state"]))

    finished = show(snapshot)
    events = client.events(timeout=1.0)
    while not finished:
        ev = next(events)
        if ev is None:
            continue
        if ev.get("event") == "state":
            finished = show(ev)
    final = client.request("status")["state"]["stages"]
    states = [st["status"] for st in final]
    bad = [st["id"] for st in final if st["status"] in scheduler.BAD]
    print(f"Finished: {states.count(scheduler.DONE)} done, {states.count(scheduler.SKIPPED)} skipped, "
          f"{len(bad)} not done" + (f" ({', '.join(bad)})" if bad else ""))
    return 1 if bad else 0


# --- status --------------------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    session = resolve_session(args.plan, args.repo)
    snap = _client(session).request("status")
    if args.json:
        state = snap["state"]
        out = {
            "session": snap["session"],
            "repo": state.get("repo"),
            "plan": state.get("plan"),
            "queue_paused": state.get("queue_paused"),
            "plan_error": snap.get("plan_error"),
            "stages": [
                {
                    "id": st["id"],
                    "status": st["status"],
                    "depends_on": st.get("depends_on", []),
                    "attempt": (st.get("attempts") or [{}])[-1].get("number"),
                    "exit_code": (st.get("attempts") or [{}])[-1].get("exit_code"),
                    "log": (st.get("attempts") or [{}])[-1].get("log_path"),
                    "quanta": ((st.get("attempts") or [{}])[-1].get("quanta") or {}).get("progress"),
                }
                for st in state["stages"]
            ],
        }
        json.dump(out, sys.stdout, indent=1)
        print()
        return 0
    state = snap["state"]
    print(f"plan {state.get('plan')}  repo {state.get('repo')}  queue {'PAUSED' if state.get('queue_paused') else 'running'}")
    if snap.get("plan_error"):
        print(f"plan error: {snap['plan_error']}")
    for st in state["stages"]:
        print(_stage_line(st))
    return 0


# --- queue ---------------------------------------------------------------------------------------------
def cmd_queue(args: argparse.Namespace) -> int:
    session = resolve_session(args.plan, args.repo)
    client = _client(session)
    if args.action in ("pause", "resume") and not args.stage:
        result = client.request(f"{args.action}_queue")
    elif args.action in ("pause", "resume", "kill", "skip", "restart"):
        if not args.stage:
            raise QueueCliError(f"`pfstui queue {args.action}` needs a STAGE name")
        params: dict[str, Any] = {"stage": args.stage}
        if args.action == "restart" and args.set:
            params["overrides"] = _overrides(args.set)
        result = client.request(args.action, **params)
    else:  # pragma: no cover - argparse restricts the choices
        raise QueueCliError(f"unknown queue action {args.action}")
    print(json.dumps(result))
    return 0


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
                out[key] = value
    return out


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
    q = psub.add_parser("show", help="print each stage's exact command, shell-quoted, in order")
    q.add_argument("plan")
    q.set_defaults(func=cmd_plan_show)

    p = sub.add_parser("run", help="run a plan through the supervisor, printing one line per stage event")
    p.add_argument("plan")
    p.add_argument("--repo", help="override the plan's repository")
    p.add_argument("--parallel", type=int, help="how many stages may run at once")
    p.add_argument("--no-wait", action="store_true", help="start the queue and return at once")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="the queue and each stage's quanta counts")
    p.add_argument("--plan")
    p.add_argument("--repo")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("queue", help="pause|resume (the queue or a stage), kill|restart|skip STAGE")
    p.add_argument("action", choices=["pause", "resume", "kill", "restart", "skip"])
    p.add_argument("stage", nargs="?")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="restart with an edited option")
    p.add_argument("--plan")
    p.add_argument("--repo")
    p.set_defaults(func=cmd_queue)
