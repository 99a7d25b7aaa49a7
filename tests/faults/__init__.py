"""Fault tests (issue 7): the operator's SSH link drops, processes are killed, files are damaged.

Everything here uses real processes on real demo repositories: the ``pfstui`` app in a pseudo-terminal
(:mod:`tests.faults.ptyapp`), the detached supervisor, ``pipetask``/``butler`` stages.  This module is the
shared harness: the four-stage demo plan, a session handle that reads the durable state, the journal and
Butler audits, and :func:`run_kill_soak`, the "kill the app at random points during a plan" loop used by
``test_app_kill.py`` (20 kill points) and ``bench/soak.py`` (100).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from .ptyapp import (
    PtyApp,
    TmuxApp,
    file_lines,
    log_lines_shown,
    pfstui_argv,
    quanta_shown,
    queue_rows,
)

VENV_BIN = Path(sys.executable).parent
BEGIN = "2000-01-01T00:00:00"
STAGE_IDS = ("bias", "certify-bias", "dark", "certify-dark")
PIPETASK_STAGES = ("bias", "dark")
#: Quanta per task of the demo night (the quantum graph's totals).
EXPECTED_QUANTA = {"bias": {"isr": 12, "cpBiasCombine": 4}, "dark": {"isr": 12, "dark": 12, "darkCombine": 4}}
FINISHED = ("done", "failed", "killed", "lost", "dependency-failed", "skipped")


def fault_env(tmp: Path, *, idle: float = 30.0) -> dict[str, str]:
    """Environment of the app, the supervisor and the stages: venv bin first, demo dir, a private state dir."""
    import pfstui.demo

    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PFSTUI_DEMO_DIR"] = str(Path(pfstui.demo.__file__).parent)
    env["PFSTUI_STATE_DIR"] = str(tmp / "state")
    env["PFSTUI_SUPERVISOR_IDLE"] = str(idle)
    return env


def apply_env(env: Mapping[str, str], setenv: Callable[[str, str], Any]) -> None:
    """Make this process agree with ``env`` (session folder, supervisor spawned by our clients)."""
    for key in ("PATH", "PFSTUI_DEMO_DIR", "PFSTUI_STATE_DIR", "PFSTUI_SUPERVISOR_IDLE"):
        setenv(key, env[key])


def pipetask_stage(name: str, pipeline: str, inputs: str, output: str, query: str, config: list[str],
                   after: list[str] | None = None) -> str:
    cfg = ", ".join(json.dumps(c) for c in config)
    dep = f"    after: [{', '.join(after)}]\n" if after else ""
    return (f"  - name: {name}\n    kind: pipetask\n{dep}    pipeline: ${{PFSTUI_DEMO_DIR}}/pipelines/{pipeline}\n"
            f"    inputs: [{inputs}]\n    output: {output}\n    query: \"{query}\"\n    config: [{cfg}]\n")


def certify_stage(name: str, after: str, input_: str, dataset_type: str) -> str:
    return (f"  - name: {name}\n    kind: certify\n    after: [{after}]\n    input: {input_}\n"
            f"    target: PFS/calib\n    dataset_type: {dataset_type}\n    begin: {BEGIN}\n")


def write_plan(path: Path, repo: Path, stages: str, *, rerun: str = "u/fault") -> Path:
    path.write_text(f"""version: 1
repository: {repo}
instrument: pfstui.demo.instrument.DemoPrimeFocusSpectrograph
rerun: {rerun}
defaults: {{processes: 1}}
stages:
{stages}""")
    return path


def four_stage_plan(path: Path, repo: Path, *, bias_delay: float = 0.6, dark_delay: float = 0.45,
                    rerun: str = "u/fault") -> Path:
    """bias -> certify-bias -> dark -> certify-dark, -j 1, slowed by demoDelay so there is time to kill."""
    stages = (
        pipetask_stage("bias", "bias.yaml", "PFS/raw/sps, PFS/calib", "bias",
                       "instrument='PFS' AND visit.target_name = 'BIAS'", [f"isr:demoDelay={bias_delay}"])
        + certify_stage("certify-bias", "bias", "bias", "bias")
        + pipetask_stage("dark", "dark.yaml", "PFS/raw/all, PFS/calib", "dark",
                         "instrument='PFS' AND visit.target_name = 'DARK'",
                         [f"isr:demoDelay={dark_delay}", f"dark:demoDelay={dark_delay}"], after=["certify-bias"])
        + certify_stage("certify-dark", "dark", "dark", "dark")
    )
    return write_plan(path, repo, stages, rerun=rerun)


def fake_venv(root: Path, runs: Path) -> Path:
    """A venv-shaped folder running this venv's Python and packages, whose ``pipetask`` only appends its
    working folder (an attempt's) and pid to ``runs``; returns its ``python``.

    Why: a supervisor started with that python finds that ``pipetask`` first (:class:`pfstui.plan.argv.Tools`
    looks next to the interpreter), so queue tests can run many real stages of a real plan in milliseconds."""
    bindir = root / "bin"
    bindir.mkdir(parents=True)
    (bindir / "python").symlink_to(os.path.realpath(sys.executable))
    shutil.copy(Path(sys.prefix) / "pyvenv.cfg", root / "pyvenv.cfg")
    (root / "lib").symlink_to(Path(sys.prefix) / "lib")
    script = bindir / "pipetask"
    script.write_text(f'#!/bin/sh\necho "$PWD $$" >> {runs}\nsleep 0.1\n')
    script.chmod(0o755)
    return bindir / "python"


# ----------------------------------------------------------------------------------------------- sessions
class Session:
    """One (repository, plan) session folder, read the way an auditor would: from the files on disk."""

    def __init__(self, repo: Path | str, plan: Path | str) -> None:
        import pfstui.infra.paths as paths
        self.repo = Path(repo)
        self.plan = Path(plan).absolute()
        self.dir = paths.session_dir(str(repo), str(self.plan))
        self.journal_path = paths.state_dir() / "journal.jsonl"

    # --- state ---------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        for _ in range(50):
            try:
                return json.loads((self.dir / "state.json").read_text())
            except FileNotFoundError:
                return {"stages": []}
            except ValueError:  # never expected (atomic writes); retried rather than hidden
                time.sleep(0.02)
        raise AssertionError(f"{self.dir / 'state.json'} stays unreadable")

    @staticmethod
    def stage(state: Mapping[str, Any], name: str) -> dict[str, Any]:
        return next(s for s in state["stages"] if s["id"] == name)

    def status(self, name: str) -> str:
        return self.stage(self.state(), name)["status"]

    def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 120.0,
             what: str = "condition") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = self.state()
            if state.get("stages") and predicate(state):
                return state
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; stages: "
                             f"{[(s['id'], s['status']) for s in state.get('stages', [])]}")

    def finished(self, state: Mapping[str, Any] | None = None) -> bool:
        state = state or self.state()
        return bool(state.get("stages")) and all(s["status"] in FINISHED for s in state["stages"])

    # --- processes -------------------------------------------------------------------------------------------
    def client(self, *, autostart: bool = True, timeout: float = 15.0):
        from pfstui.queue.protocol import SupervisorClient

        return SupervisorClient(self.dir, autostart=autostart, timeout=timeout).connect()

    def supervisor_pids(self) -> list[int]:
        """Every live supervisor process of this session (there must never be more than one)."""
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            cmd = proc.info.get("cmdline") or []
            if "pfstui.queue.supervisor" in cmd and str(self.dir) in cmd and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc.info["pid"])
        return found

    def shutdown(self) -> None:
        from pfstui.queue.protocol import SupervisorClient
        from pfstui.queue.requests import Shutdown

        try:
            SupervisorClient(self.dir, autostart=False, timeout=3).connect().request(Shutdown())
        except Exception:  # noqa: BLE001 - best effort cleanup
            pass
        for pid in self.supervisor_pids():
            _wait_pid_gone(pid, 5)

    def kill_supervisor(self) -> int:
        pids = self.supervisor_pids()
        assert len(pids) == 1, f"expected one supervisor, found {pids}"
        os.kill(pids[0], signal.SIGKILL)
        assert _wait_pid_gone(pids[0], 10), "the supervisor did not die"
        return pids[0]

    # --- audits --------------------------------------------------------------------------------------------
    def journal(self) -> tuple[list[dict[str, Any]], list[str]]:
        from pfstui.infra.journal import Journal

        entries, problems = Journal(self.journal_path).entries()
        return [e.to_dict() for e in entries], [str(p) for p in problems]

    def journal_problems(self, state: Mapping[str, Any] | None = None) -> list[str]:
        """Everything the journal fails to say about this session's stages (empty when complete).

        Complete means: every line parses; every attempt of every stage has exactly one ``start`` entry with
        its exact argv, and every finished attempt exactly one ``end`` entry with its final status and exit
        code; no command is journaled that the state does not know.
        """
        state = state or self.state()
        entries, problems = self.journal()
        out = [f"journal line skipped: {p}" for p in problems]
        cmds = [e for e in entries if e.get("kind") == "command" and e.get("session") == str(self.dir)]
        known = set()
        for stage in state["stages"]:
            for a in stage["attempts"]:
                key = (stage["id"], a["number"])
                known.add(key)
                starts = [e for e in cmds if (e.get("stage"), e.get("attempt")) == key and e["event"] == "start"]
                ends = [e for e in cmds if (e.get("stage"), e.get("attempt")) == key and e["event"] == "end"]
                if len(starts) != 1:
                    out.append(f"{key}: {len(starts)} start entries")
                elif starts[0].get("argv") != a["argv"]:
                    out.append(f"{key}: journaled argv differs from the attempt's")
                if a["status"] in ("running", "paused", "starting"):
                    if ends:
                        out.append(f"{key}: still running but journaled as ended")
                    continue
                if len(ends) != 1:
                    out.append(f"{key}: {len(ends)} end entries for a finished attempt")
                elif ends[0].get("exit_code") != a.get("exit_code"):
                    out.append(f"{key}: journaled exit code {ends[0].get('exit_code')} != {a.get('exit_code')}")
        for e in cmds:
            if e["event"] in ("start", "end") and (e.get("stage"), e.get("attempt")) not in known:
                out.append(f"journaled {e['event']} of unknown attempt {(e.get('stage'), e.get('attempt'))}")
        return out

    def unjournaled_butler_changes(self) -> list[str]:
        """Butler writes of this plan (output runs, certifications) that no journaled command accounts for."""
        from lsst.daf.butler import Butler

        entries, _ = self.journal()
        argvs = [e["argv"] for e in entries if e.get("kind") == "command" and e.get("event") == "start"
                 and e.get("session") == str(self.dir)]
        outputs = [a[a.index("-o") + 1] for a in argvs if "-o" in a]
        certified_inputs = [a[a.index("certify") + 2] for a in argvs if "certify" in a]
        out = []
        with Butler.from_config(str(self.repo)) as butler:
            for coll in butler.collections.query("u/fault*"):
                info = butler.collections.get_info(coll)
                if info.type.name == "RUN" and not any(coll.startswith(o + "/") for o in outputs):
                    out.append(f"output run {coll} has no journaled pipetask")
            for dst in ("bias", "dark"):
                try:
                    assoc = list(butler.registry.queryDatasetAssociations(dst, collections=["PFS/calib"]))
                except Exception:  # noqa: BLE001 - dataset type never registered: nothing certified
                    assoc = []
                for a in assoc:
                    if not any(a.ref.run.startswith(i + "/") for i in certified_inputs):
                        out.append(f"{dst} {a.ref.dataId} certified from {a.ref.run} with no journaled certify")
        return out


def _wait_pid_gone(pid: int, timeout: float) -> bool:
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def exit_status_mismatches(state: Mapping[str, Any]) -> list[str]:
    """Attempts whose recorded exit code is not the one their waiter wrote (the true exit status)."""
    out = []
    for stage in state["stages"]:
        for a in stage["attempts"]:
            if a["status"] in ("running", "paused", "lost", "spawn_failed") or not a.get("status_path"):
                continue
            true = json.loads(Path(a["status_path"]).read_text())["returncode"]
            if a.get("exit_code") != true:
                out.append(f"{stage['id']} attempt {a['number']}: recorded {a.get('exit_code')}, waiter says {true}")
    return out


def stage_identity(attempt: Mapping[str, Any]) -> str:
    """'alive' (same pid and start time), 'ended' (its waiter wrote a status) or 'gone' (neither)."""
    if Path(attempt["status_path"]).exists():
        return "ended"
    try:
        proc = psutil.Process(attempt["pid"])
        if abs(proc.create_time() - attempt["start_time"]) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE:
            return "alive"
    except psutil.NoSuchProcess:
        pass
    return "ended" if Path(attempt["status_path"]).exists() else "gone"


# ------------------------------------------------------------------------------------------- the kill soak
@dataclass
class SoakReport:
    """What :func:`run_kill_soak` saw; the test asserts on it, the bench prints it."""

    seed: int
    kill_points: int = 0
    kills_by_method: Counter = field(default_factory=Counter)
    kills_while_running: int = 0
    kills_during_plan: int = 0  # before every stage had finished
    reopen_checks: int = 0
    reattach_seconds: list[float] = field(default_factory=list)  # reopen -> every running stage shown running
    first_frame_seconds: list[float] = field(default_factory=list)  # reopen -> the app's first frame (its start-up)
    log_checks: int = 0
    log_lines_compared: int = 0
    log_mismatches: list[str] = field(default_factory=list)  # viewer's line count never equal to the file's
    screen_mismatches: list[str] = field(default_factory=list)
    stages_lost: list[str] = field(default_factory=list)  # a stage that died with the app
    supervisor_restarts: list[str] = field(default_factory=list)  # an app kill took the supervisor with it
    apps_surviving: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {text}")


METHODS = ("sigkill", "sigkill", "close-tmux", "sigkill", "close-pty", "sigkill")


def _expected_quanta(stage_id: str) -> tuple[int, int] | None:
    tasks = EXPECTED_QUANTA.get(stage_id)
    return (sum(tasks.values()), sum(tasks.values())) if tasks else None


def check_screen(screen: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Why the Queue pane on ``screen`` does not show the true queue (empty list: it does).

    A stage whose status changed between the two state reads may show either; the others must show exactly
    their status, and a finished pipetask stage its full quanta counts.
    """
    if "connected" not in screen:
        return ["not connected yet"]
    rows = queue_rows(screen, STAGE_IDS)
    out = []
    for sid in STAGE_IDS:
        s1, s2 = Session.stage(before, sid), Session.stage(after, sid)
        shown = rows.get(sid)
        if shown is None:
            out.append(f"{sid}: no row")
            continue
        allowed = {s1["status"], s2["status"]}
        if shown[0] not in allowed:
            out.append(f"{sid}: shown {shown[0]}, true {s1['status']}/{s2['status']}")
        if s1["status"] == s2["status"] == "done" and _expected_quanta(sid):
            if quanta_shown(shown[1]) != _expected_quanta(sid):
                out.append(f"{sid}: done but quanta shown {shown[1]!r}")
    return out


def run_kill_soak(session: Session, env: Mapping[str, str], *, min_kills: int, seed: int | None = None,
                  log: Callable[[str], None] | None = None, timeout: float = 600.0,
                  size: tuple[int, int] = (120, 40)) -> SoakReport:
    """Run the session's plan from the app while killing the app at random points; see the module docstring.

    Each cycle opens the app in a new terminal; most cycles first check the reopened screen against the
    durable state (timing how long until every running stage is shown running) and sometimes open the
    running stage's log and compare the viewer's line count with the file's; then the app is killed after a
    random pause: SIGKILL, or its terminal closed (tmux hang-up, or a bare pty's master closed).  About one
    cycle in five kills the app while it is still starting.  After each kill the supervisor must be the same
    process and every stage that was running must still be running or have recorded its exit status.  The
    loop ends when the plan has finished and at least ``min_kills`` kills were made.
    """
    seed = seed if seed is not None else int(time.time() * 1000) % 100_000
    rng = random.Random(seed)
    report = SoakReport(seed=seed)
    say = log or (lambda _msg: None)
    argv = pfstui_argv(session.repo, session.plan)
    t_start = time.monotonic()
    deadline = t_start + timeout

    # First open: the plan is loaded, paused; the operator presses r.
    app = TmuxApp(argv, env, size=size).start()
    try:
        app.wait_screen(lambda s: "connected" in s and len(queue_rows(s, STAGE_IDS)) == len(STAGE_IDS), timeout=60)
        for _ in range(3):
            app.send_keys("r")
            try:
                session.wait(lambda st: not st["queue_paused"], timeout=10, what="the queue to run")
                break
            except AssertionError:
                continue  # a key pressed before the table had the focus
        else:
            raise AssertionError("pressing r did not run the queue")
        supervisor = session.supervisor_pids()
        assert len(supervisor) == 1, f"expected one supervisor, found {supervisor}"
        report.note(f"plan running, supervisor {supervisor[0]}")
        cycle = 0
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"soak did not finish within {timeout} s (seed {seed}); "
                                     f"{report.kill_points} kills; events: {report.events[-10:]}")
            method = METHODS[cycle % len(METHODS)] if cycle else "sigkill"  # the first app is in tmux
            cycle += 1
            if app is None:
                app = (PtyApp(argv, env, size=size) if method == "close-pty" else TmuxApp(argv, env, size=size)).start()
            early = rng.random() < 0.2
            if isinstance(app, PtyApp):
                if not early:
                    app.wait_output("connected", timeout=20)
                time.sleep(rng.uniform(0.0, 0.4))
            elif early:
                time.sleep(rng.uniform(0.05, 0.8))
            else:
                _check_reopen(app, session, report)
                running = [sid for sid in PIPETASK_STAGES if session.status(sid) == "running"]
                if running and rng.random() < 0.4:
                    _check_log(app, session, running[0], report)
                time.sleep(rng.uniform(0.0, 0.4))

            # --- the kill point ---
            before = session.state()
            running_attempts = {s["id"]: s["attempts"][-1] for s in before["stages"] if s["status"] == "running"}
            if method == "sigkill":
                app.kill(signal.SIGKILL)
            else:
                app.close_terminal()  # close-tmux / close-pty: the terminal hangs up (SIGHUP)
            used = method
            if not app.wait_gone(10):
                report.apps_surviving.append(f"cycle {cycle}: the app outlived {used}")
            app.stop()
            app = None
            report.kill_points += 1
            report.kills_by_method[used] += 1
            if running_attempts:
                report.kills_while_running += 1
            if not session.finished(before):
                report.kills_during_plan += 1
            say(f"{time.monotonic() - t_start:6.1f} s: kill {report.kill_points} ({used}{', early' if early else ''}) "
                f"running: {', '.join(running_attempts) or '-'}")
            time.sleep(0.2)
            for sid, attempt in running_attempts.items():
                if stage_identity(attempt) == "gone":
                    time.sleep(1.0)  # between the stage's exit and its waiter's status record, at most
                    if stage_identity(attempt) == "gone":
                        report.stages_lost.append(f"kill {report.kill_points}: {sid} died with the app")
            now = session.supervisor_pids()
            if now != supervisor:
                report.supervisor_restarts.append(f"kill {report.kill_points}: supervisor {supervisor} -> {now}")
                supervisor = now
            if session.finished() and report.kill_points >= min_kills:
                break

        # A last reopen once everything is done: the whole finished queue, counts included.
        app = TmuxApp(argv, env, size=size).start()
        _check_reopen(app, session, report)
        app.send_keys("q")
        if not app.wait_gone(10):
            report.apps_surviving.append("the last app did not quit on q")
    finally:
        if app is not None:
            app.stop()
    return report


def _check_reopen(app: TmuxApp, session: Session, report: SoakReport, timeout: float = 20.0) -> None:
    """Poll the reopened screen until it matches the durable state; record how long that took."""
    problems: list[str] = []
    screen = ""
    first_frame = None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        before = session.state()
        screen = app.screen()
        after = session.state()
        if first_frame is None and "Stage" in screen and "Status" in screen:
            first_frame = time.monotonic() - app.started_at
        problems = check_screen(screen, before, after)
        if not problems:
            report.reopen_checks += 1
            if any(s["status"] == "running" for s in after["stages"]):
                report.reattach_seconds.append(time.monotonic() - app.started_at)
                report.first_frame_seconds.append(first_frame if first_frame is not None else float("nan"))
            return
        time.sleep(0.02)
    report.screen_mismatches.append(f"reopen {report.reopen_checks + 1}: {problems}\n{screen}")


def _check_log(app: TmuxApp, session: Session, stage_id: str, report: SoakReport, timeout: float = 15.0) -> None:
    """Open the stage's log in the Logs pane (cursor down to its row, ``l``) and compare line counts."""
    state = session.state()
    path = Path(Session.stage(state, stage_id)["attempts"][-1]["log_path"])
    app.send_keys(*(["Down"] * STAGE_IDS.index(stage_id)), "l")
    end = time.monotonic() + timeout
    shown = None
    actual = file_lines(path)
    while time.monotonic() < end:
        screen = app.screen()
        # The Logs pane, not the queue's side view of the highlighted stage (wide terminals show both).
        shown = log_lines_shown(screen) if not queue_rows(screen, STAGE_IDS) else None
        actual = file_lines(path)
        if shown is not None and shown == actual:
            report.log_checks += 1
            report.log_lines_compared += actual
            return
        time.sleep(0.05)
    report.log_mismatches.append(f"{stage_id}: the viewer showed {shown} lines, the file has {actual}")
