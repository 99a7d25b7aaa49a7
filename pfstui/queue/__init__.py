"""The queue of a session: its state, its rules, and the supervisor process that runs it.

* :mod:`.model` — the status words of a stage and an attempt (cheap: no pydantic);
* :mod:`.state` — the state document's typed records; :mod:`.store` reads and writes it, under a lock;
* :mod:`.rules` — what may start, why a stage waits, what a failure blocks, restart and skip (pure functions);
* :mod:`.requests` — the typed contract between the supervisor and its clients (requests, replies, the
  snapshot); :mod:`.protocol` — its wire (JSON lines on a Unix socket) and the client;
* :mod:`.supervisor` — the process (lifecycle, tick); :mod:`.handlers` — what it does for each request;
  :mod:`.launch` — what an attempt runs and starting it; :mod:`.trackers` — following a running attempt.
"""
