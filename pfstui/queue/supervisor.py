"""The supervisor: one small process per session directory that owns the queue.

It outlives the app (started detached by the first client that needs it), so the queue goes on while
nobody is connected: when the operator's SSH link drops after bias finished, dark still starts.  It is
the only writer of the session's ``state.json`` (single instance by a ``flock`` on the session folder),
launches stages through :mod:`pfstui.process.runner`, re-adopts running stages by pid + start time when it
is itself restarted, follows each stage's log for quanta progress, and records every command in the
action journal.

Clients (the app, the CLI) talk to it over a Unix socket in the session folder with a small JSON-lines
protocol (:mod:`pfstui.queue.protocol`): typed requests in (:mod:`pfstui.queue.requests`, each answered by
its handler in :mod:`pfstui.queue.handlers`), replies and state events out.  Each snapshot says what every
queued or restartable stage runs next, decided by :mod:`pfstui.queue.launch` exactly as its attempt will be
started.  Log files are read by clients directly, never streamed through the socket.

Faults it survives (proven by ``tests/faults/``):

* The app or the terminal dies (SIGKILL, SIGHUP of a closed SSH pty): nothing here notices but a closed
  socket; stages and the queue go on, and the next app re-subscribes and gets the whole state.
* It is itself killed: the next client starts a new one, which re-adopts every stage the state says is
  active by pid + start time (:func:`pfstui.process.runner.poll`).  A stage that ended meanwhile gets the exit
  status its waiter recorded, and a stage whose pid is gone or now belongs to another process (different
  start time) becomes ``lost`` (its log and counts kept, restartable).  Both are settled *before* the socket
  is served, so no client ever sees such a stage as running.
* It is killed while launching a stage: the attempt was saved ``starting`` before its process was launched,
  and the next supervisor adopts that process or, when no waiter ever claimed the attempt, starts it as the
  same attempt (:mod:`pfstui.queue.starts`); a stage never runs twice.
* A damaged ``state.json`` (truncated, garbled, from a newer pfstui): the store moves it aside and the
  previous good copy is used; with no good copy the queue starts empty.  Either way the message naming the
  file and the fix is in every snapshot (``state_problem``) until this supervisor exits.  A state file that
  cannot even be read is left where it is and the supervisor refuses every change (``frozen``) rather than
  overwrite it.
* A full or read-only disk: a failed save keeps the in-memory state, leaves the files on disk as they were,
  puts the one-line reason (file and fix) into ``state_problem``/``save_error`` of every snapshot, and is
  retried each tick until it succeeds.

Run it as ``python -m pfstui.queue.supervisor SESSION_DIR``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from pfstui.bps.pools import signal_pools
from pfstui.infra.journal import default_journal
from pfstui.infra.private import (
    UnsafePathError,
    check_trusted,
    owner_name,
)
from pfstui.plan.argv import Tools, with_overrides
from pfstui.plan.loader import load_plan
from pfstui.plan.variables import stage_env
from pfstui.process import runner
from pfstui.queue import handlers, launch, protocol, rules, starts
from pfstui.queue.model import ACTIVE, RESTARTABLE, AttemptStatus, StageStatus
from pfstui.queue.requests import NextRun, PlanLoaded, Snapshot
from pfstui.queue.state import Attempt, GatePreview, QueueState, Stage, StageExtra, now
from pfstui.queue.store import (
    LoadResult,
    SessionStore,
    StateError,
    StateLockedError,
    check_session,
)
from pfstui.queue.trackers import BpsTracker, Tracker

#: Its next attempt has not started: the snapshot shows what it will run.
NOT_STARTED = frozenset({StageStatus.QUEUED, StageStatus.WAITING})
IDLE_EXIT_SECONDS = float(os.environ.get("PFSTUI_SUPERVISOR_IDLE", "600"))
TICK_SECONDS = 0.25


log = logging.getLogger("pfstui.queue")


class _LineFormat(logging.Formatter):
    """``<UTC time> supervisor[<pid>]: <message>``: one line of ``supervisor.log``."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{now()} supervisor[{os.getpid()}]: {record.getMessage()}"


def _log_to_stderr() -> None:
    """Send the queue's log lines (this module's and the trackers') to stderr: the supervisor.log file."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_LineFormat())
        log.addHandler(handler)
        log.setLevel(logging.INFO)


class Supervisor:
    def __init__(self, session_dir: Path | str, *, idle_exit: float = IDLE_EXIT_SECONDS) -> None:
        self.dir = Path(session_dir)
        self.store = SessionStore(self.dir)
        self.lock = self.store.lock()
        self.journal = default_journal()
        self.idle_exit = idle_exit
        self.state = QueueState()
        self.plan = None
        self.plan_error: str | None = None
        self.state_problem: str | None = None
        self.save_error: str | None = None  # why the last save failed (full/read-only disk), until one succeeds
        self.frozen: str | None = None  # set when state.json cannot be read: never overwrite it, refuse changes
        self.trackers: dict[str, Tracker] = {}
        self.subscribers: set[asyncio.StreamWriter] = set()
        #: Connections whose hello said read-only: every change they ask for is refused (handlers.dispatch).
        self.read_only_clients: set[asyncio.StreamWriter] = set()
        self.clients = 0
        self.dirty = False
        self.version = 0
        self.stopping = asyncio.Event()
        self._tools_found = None
        self._plan_generation = 0  # counts plan reads: a new plan makes every remembered next run stale
        self._next_cache: dict[str, tuple[tuple, NextRun]] = {}
        self.previews = launch.Previews(self._preview_done)

    # --- lifecycle -------------------------------------------------------------------------------------
    def run(self) -> int:
        _log_to_stderr()
        try:
            check_session(self.dir)
        except UnsafePathError as exc:
            log.info(f"refusing to serve: {exc}")
            return 2
        try:
            self.lock.acquire_or_raise()
        except StateLockedError as exc:
            log.info(f"another supervisor owns {self.dir}: {exc}")
            return 0
        try:
            return asyncio.run(self._main())
        finally:
            self.lock.release()

    async def _main(self) -> int:
        try:
            report = self.store.load_report()
        except StateError as exc:
            # No usable copy.  Serve anyway so every client shows the message instead of "cannot reach the
            # supervisor": an empty queue when the damaged file was moved aside (the store's message says so),
            # a frozen one when the file is still in place (unreadable), so that it is never overwritten.
            report = LoadResult(QueueState(queue_paused=True), exc)
            if exc.moved_to is None and os.path.lexists(self.store.path):
                self.frozen = (f"{exc} (pfstui changes nothing in this session until that file is readable; "
                               "fix it and reopen)")
            else:
                self.state_problem = (f"{exc}. The queue was started empty and paused: stages that had already "
                                      "run show as queued again, so check the damaged copy before running it")
        self.state = report.state
        if report.problem is not None:
            self.state_problem = self.state_problem or str(report.problem)
            log.info(self.frozen or self.state_problem)
        self._load_plan_from_state()
        self._adopt()
        sock = protocol.socket_path(self.dir, create=True)
        server = await asyncio.start_unix_server(self._client, sock=protocol.bind_private(sock))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        log.info(f"serving {self.dir} ({len(self.state.stages)} stages)")
        idle_since = time.monotonic()
        try:
            while not self.stopping.is_set():
                self._tick()
                if self.dirty:
                    self._save_and_broadcast()
                busy = any(s.status in ACTIVE for s in self.state.stages) or bool(self.previews) or (
                    not self.state.queue_paused and rules.ready(self.state, self._parallel())
                )
                if busy or self.clients:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > self.idle_exit:
                    log.info("idle: exiting (stages and state are kept)")
                    break
                try:
                    await asyncio.wait_for(self.stopping.wait(), timeout=TICK_SECONDS)
                except TimeoutError:
                    pass
        finally:
            self.previews.cancel()
            server.close()
            for w in list(self.subscribers):
                w.close()
            if self.dirty:
                self._save()
            protocol.release_socket(sock, self.dir)
        return 0

    # --- plan ------------------------------------------------------------------------------------------
    def _load_plan_from_state(self) -> None:
        if not self.state.plan:
            return
        try:
            self._use_plan(self._read_plan(self.state.plan))
        except Exception as exc:  # noqa: BLE001 - reported to clients, never fatal
            self._use_plan(None, str(exc))
            log.info(f"plan {self.state.plan}: {exc}")

    def _use_plan(self, plan, error: str | None = None) -> None:
        self.plan, self.plan_error = plan, error
        self._plan_generation += 1
        self._update_gates()

    def _update_gates(self) -> None:
        """Which stages wait for approval, as the plan now says (a plan that cannot be read changes none)."""
        if self.plan is None:
            return
        names = set(self.plan.stage_names)
        for stage in self.state.stages:
            if stage.name in names and stage.extra.gate != self.plan.gated(stage.name):
                stage.extra.gate = not stage.extra.gate
                self.dirty = True

    @staticmethod
    def _read_plan(path: str):
        with contextlib.suppress(FileNotFoundError):  # a missing plan: load_plan says so
            check_trusted(Path(path).resolve(), "plan file")  # it says what runs: yours, writable by you alone
        env = stage_env()
        return load_plan(path, env=env)

    def _parallel(self) -> int:
        return self.state.parallel

    def load_plan(self, path: str, repo: str | None = None) -> PlanLoaded:
        """Read the plan file (again): its new stages are queued, and from now on every next run follows it."""
        plan = self._read_plan(path)
        if repo and Path(repo).absolute() != Path(plan.repository).absolute():
            plan = plan.model_copy(update={"repository": str(Path(repo).absolute())})
        self._use_plan(plan)
        self.state.plan = str(Path(path).absolute())
        self.state.repo = plan.repository
        known = {s.id for s in self.state.stages}
        added = []
        for pstage in plan.ordered_stages():
            if pstage.name in known:
                continue
            self.state.stages.append(Stage(id=pstage.name, name=pstage.name, depends_on=list(pstage.after),
                                           extra=StageExtra(kind=pstage.kind)))
            added.append(pstage.name)
        if added and len(added) == len(self.state.stages):
            self.state.queue_paused = True  # a fresh queue waits for "run"
        self._update_gates()
        self.dirty = True
        return PlanLoaded(added=added, stages=len(self.state.stages))

    def plan_stage(self, stage: Stage):
        if self.plan is None:
            raise rules.QueueError(self.plan_error or "no plan is loaded; load one with `pfstui run PLAN`")
        return with_overrides(self.plan.stage(stage.name), stage.extra.overrides)

    # --- the tick --------------------------------------------------------------------------------------
    def _tick(self) -> None:
        for stage in self.state.stages:
            try:
                self._tick_stage(stage)
            except Exception as exc:  # noqa: BLE001 - one bad stage must never stop the queue
                log.info(f"stage {stage.id}: {type(exc).__name__}: {exc}")
        if rules.propagate_failures(self.state):
            self.dirty = True
        if rules.gate(self.state):
            self.dirty = True
        self._gate_previews()
        for stage_id in rules.ready(self.state, self._parallel()):
            if not self._approval_holds(self.state.stage(stage_id)):
                continue
            try:
                self._start(self.state.stage(stage_id))
            except Exception as exc:  # noqa: BLE001 - one stage that cannot start must never stop the queue
                log.info(f"stage {stage_id}: cannot start: {type(exc).__name__}: {exc}")

    def _tick_stage(self, stage: Stage) -> None:
        if rules.launching(stage):
            starts.settle(self, stage, stage.last_attempt)  # its supervisor was killed while launching it
            return
        if stage.status not in ACTIVE:
            return
        attempt = stage.last_attempt
        if attempt is None:
            return
        tracker = self.trackers.get(stage.id)
        if tracker is None or tracker.attempt is not attempt:
            tracker = self.trackers[stage.id] = self._tracker(stage, attempt)
        handle = self.handle(attempt)
        st = runner.poll(handle) if handle else None
        if st is None or st.finished or st.state == runner.RunState.LOST:
            if isinstance(tracker, BpsTracker):
                if st is not None and st.finished:
                    self.bps_pools(attempt, signal.SIGKILL if stage.extra.kill_requested else None)
                if not tracker.settled(st, self._tools(), lambda: launch.environment(attempt.bps is not None),
                                       stage.extra.kill_requested,
                                       journal=lambda argv: self.journal_event("report", stage, attempt.number,
                                                                               argv=argv)):
                    return  # pipetask report is still reading the outputs
            self._finish(stage, attempt, tracker, st)
            return
        if tracker.update():
            self.dirty = True
        kill_at = stage.extra.kill_escalate_at
        if kill_at and time.time() >= kill_at:
            runner.escalate(handle)
            self.bps_pools(attempt, signal.SIGKILL)
            stage.extra.kill_escalate_at = None
            self.dirty = True

    @staticmethod
    def handle(attempt: Attempt):
        data = attempt.handle_dict()
        if data is None:
            return None
        try:
            return runner.ProcessHandle.from_dict(data)
        except Exception:  # noqa: BLE001
            return None

    def _tracker(self, stage: Stage, attempt: Attempt):
        if attempt.bps is not None:
            return BpsTracker(attempt, stage.name, self.state.repo or (self.plan.repository if self.plan else None))
        return Tracker(attempt, stage.name)

    @staticmethod
    def bps_pools(attempt: Attempt | None, sig: int | None) -> None:
        """Signal the Parsl worker pools of a bps attempt (their own process groups: not reached by the
        bps group's signal)."""
        if sig is None or attempt is None or attempt.bps is None or not attempt.bps.workdir:
            return
        try:
            signal_pools(attempt.bps.workdir, sig)
        except Exception as exc:  # noqa: BLE001 - best effort; the pool exits by itself ~2 min later
            log.info(f"cannot signal the worker pools in {attempt.bps.workdir}: {exc}")

    def _adopt(self) -> None:
        """Re-attach every stage the state says is running: alive (pid + start time) or finished meanwhile."""
        for stage in self.state.stages:
            if rules.launching(stage):
                self._settle_launch(stage)
            elif stage.status in ACTIVE and stage.last_attempt is not None:
                handle = self.handle(stage.last_attempt)
                st = runner.poll(handle) if handle else None
                word = st.state.value if st else "unknown"
                log.info(f"adopting {stage.id} attempt {stage.last_attempt.number}: {word}")
                if st is not None and st.state == runner.RunState.PAUSED:
                    stage.status = StageStatus.PAUSED
                elif st is not None and st.state == runner.RunState.RUNNING:
                    stage.status = StageStatus.RUNNING
                elif st is not None and st.finished and stage.last_attempt.bps is not None:
                    stage.status = StageStatus.RUNNING  # the tick asks pipetask report before judging it
                else:
                    # Ended while nobody watched (exit status from its waiter), or lost (pid gone or reused):
                    # settle it now, before the socket is served, so it is never reported running.
                    try:
                        self._finish(stage, stage.last_attempt, self._tracker(stage, stage.last_attempt), st)
                    except Exception as exc:  # noqa: BLE001 - the first tick retries it
                        log.info(f"stage {stage.id}: {type(exc).__name__}: {exc}")
        self.dirty = True

    def _tools(self):
        if self._tools_found is None:
            self._tools_found = Tools.discover()
        return self._tools_found

    def _start(self, stage: Stage) -> None:
        """Start the next attempt of ``stage``, saved before it is launched (see :mod:`pfstui.queue.starts`)."""
        starts.start(self, stage, lambda adir: self._prepare(stage, adir))

    def _settle_launch(self, stage: Stage) -> None:
        try:
            starts.settle(self, stage, stage.last_attempt)
        except Exception as exc:  # noqa: BLE001 - the first tick retries it
            log.info(f"stage {stage.id}: {type(exc).__name__}: {exc}")

    def _prepare(self, stage: Stage, adir: Path) -> launch.LaunchSpec:
        """What the next attempt of ``stage`` runs, with its files in ``adir`` (see :func:`launch.prepare`)."""
        pstage = self.plan_stage(stage)
        pipeline = getattr(pstage, "pipeline", None)
        first_run = pipeline is not None and pipeline not in self.state.pipelines
        spec = launch.prepare(self.plan, pstage, adir=adir, previous=stage.attempts,
                              overrides=stage.extra.overrides, first_run=first_run, tools=self._tools(),
                              full=stage.extra.full_rerun == stage.next_attempt_number())
        approval = stage.extra.approval
        if stage.extra.gate and approval is not None and rules.approved(stage) and launch.previews_itself(pstage):
            spec = dataclasses.replace(spec, argv=launch.with_approval(spec.argv, approval.digest))
        return spec

    # --- approval gates ----------------------------------------------------------------------------------
    def _gate_previews(self) -> None:
        """Every waiting stage has a preview of its next attempt's exact argv, or one being computed."""
        for stage in self.state.stages:
            if stage.status != StageStatus.WAITING:
                continue
            run = self._next_run_of(stage)
            preview = stage.extra.preview
            if (preview is None or preview.attempt != stage.next_attempt_number() or preview.argv != run.argv
                    or (preview.state == "computing" and stage.id not in self.previews)):
                self._start_preview(stage, run)

    def _start_preview(self, stage: Stage, run: NextRun) -> None:
        preview = GatePreview(attempt=stage.next_attempt_number(), argv=run.argv)
        pstage = self._safe_plan_stage(stage)
        self.previews.cancel(stage.id)
        if run.error or pstage is None:
            preview.state, preview.text = "failed", run.error or (self.plan_error or "the plan cannot be read")
        elif not launch.previews_itself(pstage):
            preview.state, preview.text = "ready", "runs " + launch.shell_format(run.argv, head=run.head)
        else:
            self.previews.start(stage.id, preview, str(self.dir))
        stage.extra.preview = preview
        self.dirty = True

    def _preview_done(self, stage_id: str, asked: GatePreview, result: GatePreview) -> None:
        stage = self.state.stage(stage_id)
        if stage is not None and stage.extra.preview is asked:  # else superseded: the plan or stage changed
            stage.extra.preview = result
            self._save_and_broadcast()

    def _approval_holds(self, stage: Stage | None) -> bool:
        """A gated stage about to start runs what was approved; after an edit of its plan entry it waits again."""
        if stage is None or not stage.extra.gate:
            return True
        approval = stage.extra.approval
        if approval is not None and launch.without_approval(self._next_run_of(stage).argv) == approval.argv:
            return True
        log.info(f"stage {stage.id}: its command changed since it was approved: it waits for a new approval")
        stage.extra.approval, stage.status = None, StageStatus.WAITING
        self.dirty = True
        return False

    def _finish(self, stage: Stage, attempt: Attempt, tracker: Tracker, st) -> None:
        tracker.update(final=True)
        tracker.apply_summary()
        attempt.ended_at = now()
        if st is None or st.state == runner.RunState.LOST:
            attempt.status, stage.status = AttemptStatus.LOST, StageStatus.LOST
            attempt.detail = (st.detail if st else "") or "the process is gone and left no exit status"
        else:
            attempt.exit_code = st.returncode
            attempt.signal = st.signal
            if stage.extra.kill_requested:
                attempt.status, stage.status = AttemptStatus.KILLED, StageStatus.KILLED
            elif (ok_detail := self._verdict(tracker, st))[0]:
                attempt.status, stage.status = AttemptStatus.SUCCEEDED, StageStatus.DONE
                pipeline = getattr(self._safe_plan_stage(stage), "pipeline", None)
                if pipeline:
                    self.state.pipelines = set(self.state.pipelines) | {pipeline}
            else:
                attempt.status, stage.status = AttemptStatus.FAILED, StageStatus.FAILED
                attempt.detail = ok_detail[1] or attempt.detail
        self.trackers.pop(stage.id, None)
        self.journal_event("end", stage, attempt.number, status=stage.status, exit_code=attempt.exit_code,
                           signal=attempt.signal)
        self.dirty = True

    @staticmethod
    def _verdict(tracker, st) -> tuple[bool, str]:
        if isinstance(tracker, BpsTracker):
            return tracker.verdict(st.returncode)
        return st.returncode == 0, ""

    def _safe_plan_stage(self, stage: Stage):
        try:
            return self.plan_stage(stage)
        except Exception:  # noqa: BLE001
            return None

    def journal_event(self, event: str, stage: Stage, number: int, **fields: Any) -> None:
        try:
            self.journal.append({"kind": "command", "event": event, "session": str(self.dir),
                                 "repository": self.state.repo, "stage": stage.id, "attempt": number, **fields})
        except Exception as exc:  # noqa: BLE001 - a full disk must not stop the queue
            log.info(f"journal: {exc}")

    # --- state I/O -------------------------------------------------------------------------------------
    def save_now(self) -> bool:
        """Save the state now; True once it is on disk (False: frozen, or the disk refused; the snapshot says why)."""
        if self.frozen:
            return False
        self._save()
        return not self.dirty

    def _save(self) -> None:
        if self.frozen:
            self.dirty = False  # nothing may be written; the snapshot says why
            return
        try:
            self.store.save(self.state)
        except Exception as exc:  # noqa: BLE001 - kept dirty: retried next tick; clients see why
            message = str(exc)
            if message != self.save_error:
                log.info(f"cannot save state: {message}")
            self.save_error = message
            return
        self.dirty = False
        if self.save_error is not None:
            log.info("state saved again")
            self.save_error = None

    def snapshot(self) -> Snapshot:
        problems = [p for p in (self.frozen or self.state_problem, self.save_error) if p]
        return Snapshot(version=self.version, session=str(self.dir), supervisor_pid=os.getpid(),
                        plan_error=self.plan_error, state_problem=" · ".join(problems) or None,
                        save_error=self.save_error, frozen=self.frozen is not None, state=self.state,
                        next_runs=self._next_runs(), waiting=rules.waits(self.state, self._parallel()))

    def _next_runs(self) -> dict[str, NextRun]:
        """The next run of every queued or restartable stage, decided as :meth:`_start` will decide it.

        Remembered per stage until the plan is read again or the stage's attempts, status, overrides, full
        rerun or the pipelines run so far change (a bps stage's decision reads files and its pipeline)."""
        return {stage.id: self._next_run_of(stage) for stage in self.state.stages
                if stage.status in NOT_STARTED or stage.status in RESTARTABLE}

    def _next_run_of(self, stage: Stage) -> NextRun:
        approval = stage.extra.approval
        key = (self._plan_generation, stage.status, len(stage.attempts), repr(stage.extra.overrides),
               stage.extra.full_rerun, frozenset(self.state.pipelines), approval.digest if approval else None)
        cached = self._next_cache.get(stage.id)
        if cached is None or cached[0] != key:
            cached = self._next_cache[stage.id] = (key, self._next_run(stage))
        return cached[1]

    def _next_run(self, stage: Stage) -> NextRun:
        adir = launch.attempt_dir(self.dir, stage.id, stage.next_attempt_number())
        try:
            return launch.next_run(self._prepare(stage, adir))
        except Exception as exc:  # noqa: BLE001 - shown to the operator, who can fix the plan
            return NextRun(error=str(exc) or type(exc).__name__)

    def _save_and_broadcast(self) -> None:
        self._save()
        self.version += 1
        line = protocol.encode_event(self.snapshot())
        for w in list(self.subscribers):
            if w.is_closing():
                self.subscribers.discard(w)
                continue
            # Back-pressure: a client that does not read is dropped rather than buffering forever.
            if w.transport.get_write_buffer_size() > 8 << 20:
                w.close()
                self.subscribers.discard(w)
                continue
            w.write(line)

    # --- clients ---------------------------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        uid = protocol.peer_uid(writer.get_extra_info("socket"))
        if uid != os.getuid():
            log.info(f"refused a connection from {owner_name(uid)} (uid {uid}): only its owner may use this queue")
            writer.close()
            return
        self.clients += 1
        try:
            while True:
                raw = await reader.readline()
                if not raw:
                    break
                rid = None
                try:
                    message = json.loads(raw)
                    rid = message.get("id") if isinstance(message, dict) else None
                    request = protocol.decode_request(message, peer=f"the supervisor of {self.dir} "
                                                                    f"(pid {os.getpid()})")
                    reply = protocol.encode_reply(rid, handlers.dispatch(self, request, writer))
                except Exception as exc:  # noqa: BLE001 - every error goes back as a message
                    reply = protocol.encode_reply(rid, error=str(exc) or type(exc).__name__)
                if self.dirty:
                    self._save_and_broadcast()  # durable before the client hears "ok"
                writer.write(reply)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.clients -= 1
            self.subscribers.discard(writer)
            self.read_only_clients.discard(writer)
            writer.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pfstui.queue.supervisor SESSION_DIR", file=sys.stderr)
        return 2
    return Supervisor(args[0]).run()


if __name__ == "__main__":
    sys.exit(main())
