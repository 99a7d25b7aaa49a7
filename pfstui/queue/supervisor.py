"""The supervisor: one small process per session directory that owns the queue.

It outlives the app (started detached by the first client that needs it), so the queue goes on while
nobody is connected: when the operator's SSH link drops after bias finished, dark still starts.  It is
the only writer of the session's ``state.json`` (single instance by a ``flock`` on the session folder),
launches stages through :mod:`pfstui.process.runner`, re-adopts running stages by pid + start time when it
is itself restarted, follows each stage's log for quanta progress, and records every command in the
action journal.

Clients (the app, the CLI) talk to it over a Unix socket in the session folder with a small JSON-lines
protocol (:mod:`pfstui.queue.protocol`): requests in, replies and state events out.  Log files are read by
clients directly, never streamed through the socket.

Faults it survives (proven by ``tests/faults/``):

* The app or the terminal dies (SIGKILL, SIGHUP of a closed SSH pty): nothing here notices but a closed
  socket; stages and the queue go on, and the next app re-subscribes and gets the whole state.
* It is itself killed: the next client starts a new one, which re-adopts every stage the state says is
  active by pid + start time (:func:`pfstui.process.runner.poll`).  A stage that ended meanwhile gets the exit
  status its waiter recorded, and a stage whose pid is gone or now belongs to another process (different
  start time) becomes ``lost`` (its log and counts kept, restartable).  Both are settled *before* the socket
  is served, so no client ever sees such a stage as running.
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
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pfstui.process.runner as runner
import pfstui.queue.protocol as protocol
import pfstui.queue.rules as scheduler
from pfstui.infra.journal import default_journal
from pfstui.plan.variables import stage_env
from pfstui.queue.store import (
    Attempt,
    LoadResult,
    QueueState,
    SessionStore,
    Stage,
    StateError,
    StateLockedError,
)

IDLE_EXIT_SECONDS = float(os.environ.get("PFSTUI_SUPERVISOR_IDLE", "600"))
TICK_SECONDS = 0.25
KILL_GRACE_SECONDS = 10.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _log(msg: str) -> None:
    print(f"{_now()} supervisor[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


class Tracker:
    """Incremental quanta progress of one attempt, from its log (and, at the end, its --summary)."""

    def __init__(self, attempt: Attempt, stage_name: str) -> None:
        from pfstui.pipetask_log.parser import LogParser
        from pfstui.pipetask_log.progress import StageProgress

        self.attempt = attempt
        self.stage_name = stage_name
        saved = attempt.quanta or {}
        self.offset = int(saved.get("offset", 0))
        self.parser = LogParser()
        try:
            self.progress = StageProgress.from_dict(saved["progress"]) if saved.get("progress") else StageProgress()
        except Exception:  # noqa: BLE001 - a damaged record is re-read from the start
            self.progress, self.offset = StageProgress(), 0

    def update(self, *, final: bool = False) -> bool:
        from pfstui.pipetask_log.scan import LogParseError, scan_file

        if not self.attempt.log_path:
            return False
        try:
            events, end = scan_file(self.attempt.log_path, self.offset, parser=self.parser, final=final,
                                    max_bytes=None if final else 4 << 20)
        except LogParseError:
            # The file was replaced or truncated: start over.
            from pfstui.pipetask_log.parser import LogParser
            from pfstui.pipetask_log.progress import StageProgress

            self.parser, self.progress, self.offset = LogParser(), StageProgress(), 0
            return True
        if end == self.offset and not events:
            return False
        self.offset = end
        self.progress.apply_all(events)
        self.attempt.quanta = {"offset": self.offset, "progress": self.progress.to_dict()}
        return True

    def apply_summary(self) -> None:
        """Fold the ``--summary`` report (written at exit) into the record: it tells failed from blocked."""
        from pfstui.pipetask_log.summary import read_summary
        from pfstui.plan.argv import summary_file

        if not self.attempt.cwd:
            return
        summary = read_summary(summary_file(self.attempt.cwd, self.stage_name))
        if summary is not None:
            import dataclasses

            self.attempt.quanta = dict(self.attempt.quanta, summary=dataclasses.asdict(summary))


class BpsTracker:
    """Progress and verdict of one ``backend: bps`` attempt (see :mod:`pfstui.bps.submit`).

    When the bps process has exited, ``pipetask report`` runs in the background on the submitted graph;
    the stage stays running until it answers, so "done" always means the outputs are in the registry
    and every quantum succeeded.
    """

    UPDATE_SECONDS = 1.0

    def __init__(self, attempt: Attempt, stage_name: str, repo: str | None) -> None:
        from pfstui.bps.submit import BpsMonitor

        self.attempt = attempt
        self.stage_name = stage_name
        self.repo = repo
        info = attempt.bps or {}
        self.monitor = BpsMonitor(info.get("workdir") or attempt.cwd or ".", attempt.log_path)
        self.report_proc = None
        self.report = None
        self._last = 0.0

    def update(self, *, final: bool = False) -> bool:
        now = time.monotonic()
        if not final and now - self._last < self.UPDATE_SECONDS:
            return False
        self._last = now
        changed = self.monitor.update(final=final)
        if changed or final:
            self._save()
        return changed

    def _save(self) -> None:
        self.attempt.quanta = {"progress": self.monitor.progress.to_dict(), "bps": self.monitor.state()}

    def settled(self, st, tools, env, kill_requested: bool, journal=None) -> bool:
        """True once a finished attempt can be judged (its report is in, or there is none to wait for).

        Called at every tick until then; ``env`` (a callable) is built only when the report is started."""
        from pfstui.bps.submit import read_report, start_report

        if st is None or st.state == runner.RunState.LOST or kill_requested or st.returncode != 0:
            return True
        if self.report_proc is None:
            if not self.repo or not self.attempt.cwd:
                return True
            try:
                self.report_proc = start_report(tools.command("pipetask"), self.repo, self.monitor.workdir,
                                                self.attempt.cwd, env())
            except Exception as exc:  # noqa: BLE001 - judged below as "no report"
                _log(f"{self.stage_name}: cannot start pipetask report: {exc}")
                return True
            if self.report_proc is None:
                return True
            if journal is not None:
                journal(list(self.report_proc.args))
        if self.report_proc.poll() is None:
            return False
        from pfstui.bps.submit import REPORT_FILE

        self.report = read_report(Path(self.attempt.cwd) / REPORT_FILE)
        return True

    def apply_summary(self) -> None:
        if self.report is not None:
            self.monitor.apply_report(self.report)
        self._save()

    def verdict(self, returncode: int | None) -> tuple[bool, str]:
        from pfstui.bps.submit import verdict

        return verdict(self.report, returncode, self.monitor.failure_detail())


class Supervisor:
    def __init__(self, session_dir: Path | str, *, idle_exit: float = IDLE_EXIT_SECONDS) -> None:
        self.dir = Path(session_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
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
        self.clients = 0
        self.dirty = False
        self.version = 0
        self.stopping = asyncio.Event()
        self._tools = None

    # --- lifecycle -------------------------------------------------------------------------------------
    def run(self) -> int:
        try:
            self.lock.acquire_or_raise()
        except StateLockedError as exc:
            _log(f"another supervisor owns {self.dir}: {exc}")
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
            if exc.moved_to is None and self.store.path.exists():
                self.frozen = (f"{exc} (pfstui changes nothing in this session until that file is readable; "
                               "fix it and reopen)")
            else:
                self.state_problem = (f"{exc}. The queue was started empty and paused: stages that had already "
                                      "run show as queued again, so check the damaged copy before running it")
        self.state = report.state
        if report.problem is not None:
            self.state_problem = self.state_problem or str(report.problem)
            _log(self.frozen or self.state_problem)
        self._load_plan_from_state()
        self._adopt()
        sock = protocol.socket_path(self.dir)
        if sock.exists() or sock.is_symlink():
            sock.unlink()  # we hold the lock, so it is stale
        server = await asyncio.start_unix_server(self._client, path=str(sock))
        os.chmod(sock, 0o600)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        _log(f"serving {self.dir} ({len(self.state.stages)} stages)")
        idle_since = time.monotonic()
        try:
            while not self.stopping.is_set():
                self._tick()
                if self.dirty:
                    self._save_and_broadcast()
                busy = any(s.status in scheduler.ACTIVE for s in self.state.stages) or (
                    not self.state.queue_paused and scheduler.ready(self.state, self._parallel())
                )
                if busy or self.clients:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > self.idle_exit:
                    _log("idle: exiting (stages and state are kept)")
                    break
                try:
                    await asyncio.wait_for(self.stopping.wait(), timeout=TICK_SECONDS)
                except TimeoutError:
                    pass
        finally:
            server.close()
            for w in list(self.subscribers):
                w.close()
            if self.dirty:
                self._save()
            try:
                sock.unlink()
            except FileNotFoundError:
                pass
        return 0

    # --- plan ------------------------------------------------------------------------------------------
    def _load_plan_from_state(self) -> None:
        if not self.state.plan:
            return
        try:
            self.plan = self._read_plan(self.state.plan)
            self.plan_error = None
        except Exception as exc:  # noqa: BLE001 - reported to clients, never fatal
            self.plan, self.plan_error = None, str(exc)
            _log(f"plan {self.state.plan}: {exc}")

    @staticmethod
    def _read_plan(path: str):
        from pfstui.plan.loader import load_plan

        env = stage_env()
        return load_plan(path, env=env)

    def _parallel(self) -> int:
        return self.state.parallel

    def cmd_load_plan(self, path: str, repo: str | None = None) -> dict[str, Any]:
        plan = self._read_plan(path)
        if repo and Path(repo).absolute() != Path(plan.repository).absolute():
            plan = plan.model_copy(update={"repository": str(Path(repo).absolute())})
        self.plan, self.plan_error = plan, None
        self.state.plan = str(Path(path).absolute())
        self.state.repo = plan.repository
        known = {s.id for s in self.state.stages}
        added = []
        for pstage in plan.ordered_stages():
            if pstage.name in known:
                continue
            self.state.stages.append(Stage(id=pstage.name, name=pstage.name, depends_on=list(pstage.after),
                                           status=scheduler.QUEUED, extra={"kind": pstage.kind}))
            added.append(pstage.name)
        if added and len(added) == len(self.state.stages):
            self.state.queue_paused = True  # a fresh queue waits for "run"
        self.dirty = True
        return {"added": added, "stages": len(self.state.stages)}

    def _plan_stage(self, stage: Stage):
        if self.plan is None:
            raise scheduler.QueueError(self.plan_error or "no plan is loaded; load one with `pfstui run PLAN`")
        from pfstui.plan.argv import with_overrides

        return with_overrides(self.plan.stage(stage.name), stage.extra.get("overrides"))

    # --- the tick --------------------------------------------------------------------------------------
    def _tick(self) -> None:
        for stage in self.state.stages:
            try:
                self._tick_stage(stage)
            except Exception as exc:  # noqa: BLE001 - one bad stage must never stop the queue
                _log(f"stage {stage.id}: {type(exc).__name__}: {exc}")
        if scheduler.propagate_failures(self.state):
            self.dirty = True
        for stage_id in scheduler.ready(self.state, self._parallel()):
            self._start(self.state.stage(stage_id))

    def _tick_stage(self, stage: Stage) -> None:
        if stage.status not in scheduler.ACTIVE:
            return
        attempt = stage.last_attempt
        if attempt is None:
            return
        tracker = self.trackers.get(stage.id)
        if tracker is None or tracker.attempt is not attempt:
            tracker = self.trackers[stage.id] = self._tracker(stage, attempt)
        handle = self._handle(attempt)
        st = runner.poll(handle) if handle else None
        if st is None or st.finished or st.state == runner.RunState.LOST:
            if isinstance(tracker, BpsTracker):
                if st is not None and st.finished:
                    self._bps_pools(attempt, signal.SIGKILL if stage.extra.get("kill_requested") else None)
                if not tracker.settled(st, self._tools_(), lambda: self._stage_env(attempt),
                                       bool(stage.extra.get("kill_requested")),
                                       journal=lambda argv: self._journal("report", stage, attempt.number,
                                                                          argv=argv)):
                    return  # pipetask report is still reading the outputs
            self._finish(stage, attempt, tracker, st)
            return
        if tracker.update():
            self.dirty = True
        kill_at = stage.extra.get("kill_escalate_at")
        if kill_at and time.time() >= kill_at:
            runner.escalate(handle)
            self._bps_pools(attempt, signal.SIGKILL)
            stage.extra = {k: v for k, v in stage.extra.items() if k != "kill_escalate_at"}
            self.dirty = True

    @staticmethod
    def _handle(attempt: Attempt):
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
    def _stage_env(attempt: Attempt) -> dict[str, str]:
        if attempt.bps is not None:
            from pfstui.bps.submit import bps_env

            return bps_env(stage_env())
        return stage_env()

    @staticmethod
    def _bps_pools(attempt: Attempt | None, sig: int | None) -> None:
        """Signal the Parsl worker pools of a bps attempt (their own process groups: not reached by the
        bps group's signal)."""
        if sig is None or attempt is None or attempt.bps is None or not attempt.bps.get("workdir"):
            return
        from pfstui.bps.submit import signal_pools

        try:
            signal_pools(attempt.bps["workdir"], sig)
        except Exception as exc:  # noqa: BLE001 - best effort; the pool exits by itself ~2 min later
            _log(f"cannot signal the worker pools in {attempt.bps['workdir']}: {exc}")

    def _adopt(self) -> None:
        """Re-attach every stage the state says is running: alive (pid + start time) or finished meanwhile."""
        for stage in self.state.stages:
            if stage.status in scheduler.ACTIVE and stage.last_attempt is not None:
                handle = self._handle(stage.last_attempt)
                st = runner.poll(handle) if handle else None
                word = st.state.value if st else "unknown"
                _log(f"adopting {stage.id} attempt {stage.last_attempt.number}: {word}")
                if st is not None and st.state == runner.RunState.PAUSED:
                    stage.status = scheduler.PAUSED
                elif st is not None and st.state == runner.RunState.RUNNING:
                    stage.status = scheduler.RUNNING
                elif st is not None and st.finished and stage.last_attempt.bps is not None:
                    stage.status = scheduler.RUNNING  # the tick asks pipetask report before judging it
                else:
                    # Ended while nobody watched (exit status from its waiter), or lost (pid gone or reused):
                    # settle it now, before the socket is served, so it is never reported running.
                    try:
                        self._finish(stage, stage.last_attempt, self._tracker(stage, stage.last_attempt), st)
                    except Exception as exc:  # noqa: BLE001 - the first tick retries it
                        _log(f"stage {stage.id}: {type(exc).__name__}: {exc}")
        self.dirty = True

    def _tools_(self):
        if self._tools is None:
            from pfstui.plan.argv import Tools

            self._tools = Tools.discover()
        return self._tools

    def _start(self, stage: Stage) -> None:
        from pfstui.plan.argv import build_argv

        number = stage.next_attempt_number()
        adir = self.dir / "stages" / stage.id / f"attempt-{number}"
        adir.mkdir(parents=True, exist_ok=True)
        argv: list[str] = []
        bps_info: dict[str, Any] | None = None
        try:
            pstage = self._plan_stage(stage)
            pipeline = getattr(pstage, "pipeline", None)
            first_run = pipeline is not None and pipeline not in self.state.pipelines
            cwd, env = adir, stage_env()
            if getattr(pstage, "backend", "local") == "bps":
                argv, cwd, bps_info = self._bps_command(stage, pstage, adir)
                from pfstui.bps.submit import bps_env

                env = bps_env(env)
            else:
                argv = build_argv(self.plan, pstage, attempt_dir=adir, first_run=first_run, tools=self._tools_())
            handle = runner.launch(argv, cwd=cwd, env=env, log_path=adir / "stage.log",
                                   status_path=adir / "status")
        except Exception as exc:  # noqa: BLE001 - a stage that cannot start fails with the reason
            stage.attempts.append(Attempt(number=number, argv=argv, cwd=str(adir), status="spawn_failed",
                                          detail=str(exc), started_at=_now(), ended_at=_now()))
            stage.status = scheduler.FAILED
            self._journal("start-failed", stage, number, argv=argv, error=str(exc))
            self.dirty = True
            return
        attempt = Attempt.from_handle(number, handle, argv=argv, status="running", bps=bps_info)
        if bps_info is not None:
            attempt.cwd = str(adir)  # the attempt's own files; bps itself runs in bps_info["workdir"]
        stage.attempts.append(attempt)
        stage.argv = argv
        stage.status = scheduler.RUNNING
        stage.extra = {k: v for k, v in stage.extra.items() if k not in ("kill_requested", "kill_escalate_at")}
        self._journal("start", stage, number, argv=argv, stage_pid=handle.pid, log=str(handle.log_path))
        self.dirty = True

    def _bps_command(self, stage: Stage, pstage, adir: Path) -> tuple[list[str], Path, dict[str, Any]]:
        """argv, working folder and record of a bps attempt.

        Options unchanged since the last bps attempt (a transient failure, a kill): ``bps restart`` in
        that submission's folder, so finished jobs are not run again.  Otherwise (first run, or options
        edited in the restart editor): a new submission; after an earlier one that reached the registry,
        with ``--skip-existing-in`` the output, so only what failed (and what it blocked) runs again.
        """
        from pfstui.bps.submit import (
            REPORT_FILE,
            restart_argv,
            submit_config,
            write_submit,
        )
        from pfstui.plan.argv import build_argv

        overrides = dict(stage.extra.get("overrides") or {})
        tools = self._tools_()
        previous = [a for a in stage.attempts if a.bps]
        last = previous[-1] if previous else None
        if last is not None and last.bps.get("overrides", {}) == overrides:
            workdir = Path(last.bps["workdir"])
            submit_dir = workdir / "submit"
            if (workdir / "runinfo").is_dir() and (submit_dir / "parsl_workflow.pickle").is_file():
                argv = restart_argv(tools.command("bps"), submit_dir)
                return argv, workdir, {"workdir": str(workdir), "submit_dir": str(submit_dir),
                                       "submit_file": last.bps.get("submit_file"), "mode": "restart",
                                       "overrides": overrides}
        reached = any(a.cwd and (Path(a.cwd) / REPORT_FILE).exists() for a in previous)
        skip = [self.plan.collection(pstage.output)] if reached else []
        config = submit_config(self.plan, pstage, workdir=adir, skip_existing_in=skip)
        submit_file = write_submit(config, adir)
        argv = build_argv(self.plan, pstage, attempt_dir=adir, first_run=False, tools=tools)
        return argv, adir, {"workdir": str(adir), "submit_dir": str(adir / "submit"),
                            "submit_file": str(submit_file), "mode": "submit", "overrides": overrides}

    def _finish(self, stage: Stage, attempt: Attempt, tracker: Tracker, st) -> None:
        tracker.update(final=True)
        tracker.apply_summary()
        attempt.ended_at = _now()
        if st is None or st.state == runner.RunState.LOST:
            attempt.status = stage.status = scheduler.LOST
            attempt.detail = (st.detail if st else "") or "the process is gone and left no exit status"
        else:
            attempt.exit_code = st.returncode
            attempt.signal = st.signal
            if stage.extra.get("kill_requested"):
                attempt.status, stage.status = "killed", scheduler.KILLED
            elif (ok_detail := self._verdict(tracker, st))[0]:
                attempt.status, stage.status = "succeeded", scheduler.DONE
                pipeline = getattr(self._safe_plan_stage(stage), "pipeline", None)
                if pipeline:
                    self.state.pipelines = set(self.state.pipelines) | {pipeline}
            else:
                attempt.status, stage.status = "failed", scheduler.FAILED
                attempt.detail = ok_detail[1] or attempt.detail
        self.trackers.pop(stage.id, None)
        self._journal("end", stage, attempt.number, status=stage.status, exit_code=attempt.exit_code,
                      signal=attempt.signal)
        self.dirty = True

    @staticmethod
    def _verdict(tracker, st) -> tuple[bool, str]:
        if isinstance(tracker, BpsTracker):
            return tracker.verdict(st.returncode)
        return st.returncode == 0, ""

    def _safe_plan_stage(self, stage: Stage):
        try:
            return self._plan_stage(stage)
        except Exception:  # noqa: BLE001
            return None

    def _journal(self, event: str, stage: Stage, number: int, **fields: Any) -> None:
        try:
            self.journal.append({"kind": "command", "event": event, "session": str(self.dir),
                                 "repository": self.state.repo, "stage": stage.id, "attempt": number, **fields})
        except Exception as exc:  # noqa: BLE001 - a full disk must not stop the queue
            _log(f"journal: {exc}")

    # --- state I/O -------------------------------------------------------------------------------------
    def _save(self) -> None:
        if self.frozen:
            self.dirty = False  # nothing may be written; the snapshot says why
            return
        try:
            self.store.save(self.state)
        except Exception as exc:  # noqa: BLE001 - kept dirty: retried next tick; clients see why
            message = str(exc)
            if message != self.save_error:
                _log(f"cannot save state: {message}")
            self.save_error = message
            return
        self.dirty = False
        if self.save_error is not None:
            _log("state saved again")
            self.save_error = None

    def snapshot(self) -> dict[str, Any]:
        problems = [p for p in (self.frozen or self.state_problem, self.save_error) if p]
        return {
            "version": self.version,
            "session": str(self.dir),
            "supervisor_pid": os.getpid(),
            "plan_error": self.plan_error,
            "state_problem": " · ".join(problems) or None,
            "save_error": self.save_error,
            "frozen": self.frozen is not None,
            "state": self.state.model_dump(mode="json"),
        }

    def _save_and_broadcast(self) -> None:
        self._save()
        self.version += 1
        line = protocol.encode({"event": "state", **self.snapshot()})
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
        self.clients += 1
        try:
            while True:
                raw = await reader.readline()
                if not raw:
                    break
                rid = None
                try:
                    req = json.loads(raw)
                    rid = req.get("id")
                    result = self._dispatch(str(req.get("cmd")), dict(req.get("args") or {}), writer)
                    reply = {"id": rid, "ok": True, "result": result}
                except Exception as exc:  # noqa: BLE001 - every error goes back as a message
                    reply = {"id": rid, "ok": False, "error": str(exc) or type(exc).__name__}
                if self.dirty:
                    self._save_and_broadcast()  # durable before the client hears "ok"
                writer.write(protocol.encode(reply))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.clients -= 1
            self.subscribers.discard(writer)
            writer.close()

    def _dispatch(self, cmd: str, args: dict[str, Any], writer: asyncio.StreamWriter) -> Any:
        if cmd == "hello":
            return {"protocol": protocol.VERSION, "pid": os.getpid(), "session": str(self.dir)}
        if cmd == "status":
            return self.snapshot()
        if cmd == "subscribe":
            self.subscribers.add(writer)
            return self.snapshot()
        if self.frozen and cmd != "shutdown":
            raise scheduler.QueueError(self.frozen)
        if cmd == "load_plan":
            return self.cmd_load_plan(str(args["path"]), args.get("repo"))
        if cmd == "run":
            self.state.queue_paused = False
            self.dirty = True
            return {"queue_paused": False}
        if cmd == "pause_queue":
            self.state.queue_paused = True
            self.dirty = True
            return {"queue_paused": True}
        if cmd == "resume_queue":
            self.state.queue_paused = False
            self.dirty = True
            return {"queue_paused": False}
        if cmd in ("pause", "resume", "kill"):
            return self._signal(cmd, str(args["stage"]))
        if cmd == "restart":
            return self._restart(str(args["stage"]), args.get("overrides"))
        if cmd == "set_parallel":
            self.state.parallel = int(args["parallel"])
            self.dirty = True
            return {"parallel": self.state.parallel}
        if cmd == "skip":
            scheduler.skip(self.state, str(args["stage"]))
            self.dirty = True
            return {"stage": args["stage"], "status": scheduler.SKIPPED}
        if cmd == "shutdown":
            self.stopping.set()
            return {"stopping": True}
        raise protocol.ProtocolError(f"unknown command {cmd!r}")

    def _signal(self, cmd: str, name: str) -> dict[str, Any]:
        stage = scheduler.check_active(self.state, name, {"pause": "paused", "resume": "resumed",
                                                          "kill": "killed"}[cmd])
        handle = self._handle(stage.last_attempt)
        if handle is None:
            raise scheduler.QueueError(f"stage {name!r} has no live process to signal")
        attempt = stage.last_attempt
        if cmd == "pause":
            runner.pause(handle)
            self._bps_pools(attempt, signal.SIGSTOP)
            stage.status = scheduler.PAUSED
        elif cmd == "resume":
            self._bps_pools(attempt, signal.SIGCONT)
            runner.resume(handle)
            stage.status = scheduler.RUNNING
        else:
            stage.extra = dict(stage.extra, kill_requested=True, kill_escalate_at=time.time() + KILL_GRACE_SECONDS)
            runner.terminate(handle)
            self._bps_pools(attempt, signal.SIGTERM)
            self._journal("kill", stage, stage.last_attempt.number, pgid=handle.pgid)
        self.dirty = True
        return {"stage": name, "status": stage.status}

    def _restart(self, name: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
        stage = self.state.stage(name)
        if stage is not None and overrides:
            # Validate the edited options against the plan's model before accepting them.
            merged = dict(stage.extra.get("overrides") or {}, **overrides)
            probe = Stage(id=stage.id, name=stage.name, extra={"overrides": merged})
            self._plan_stage(probe)
            stage.extra = dict(stage.extra, overrides=merged)
        requeued = scheduler.restart(self.state, name)
        self.dirty = True
        return {"requeued": requeued}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pfstui.queue.supervisor SESSION_DIR", file=sys.stderr)
        return 2
    return Supervisor(args[0]).run()


if __name__ == "__main__":
    sys.exit(main())
