"""The ``bps`` backend: one pipetask stage run through BPS (lsst-ctrl-bps) with the Parsl plugin.

A bps stage is the same queue entry as a local one: the supervisor launches ``bps submit FILE`` detached
through the runner (own session, log file, exit-status file), in a working folder of its own, because
Parsl writes ``runinfo/`` (and ``bps restart`` looks for its checkpoints) in the current folder.

What ``bps`` itself does not give us, and how this package makes up for it (pfs-domain.md section 7):

* ``bps report``/``cancel`` are not implemented for Parsl.  Progress (:mod:`.monitor`) comes from the
  per-job logs (each job is a ``pipetask run-qbb``, whose ``--long-log`` lines the ordinary
  :class:`LogParser` reads), the quantum-graph build log (per-task totals) and the Parsl monitoring
  database (job states, for running and dependency-failed jobs).
* ``bps submit`` exits 0 when jobs fail.  The verdict (:mod:`.report`) comes from ``pipetask report`` on
  the submitted graph once the bps process (and with it the final job that ingests the outputs) has exited.
* SIGINT is not a cancel and the Parsl worker pool lives in its own process group: :func:`.pools.worker_pools`
  finds it by its ``--logdir`` inside the stage's working folder so the supervisor can signal it too.
* ``bps restart`` must run in the submission's folder: :func:`.submit.restart_argv` is used with that ``cwd``.

The submit file and argv come from :mod:`.submit`; :mod:`.sites` holds a Parsl site for HTCondor (loaded by
``bps`` itself).  Nothing here but ``sites`` imports the LSST middleware: everything goes through files and
subprocesses.
"""
