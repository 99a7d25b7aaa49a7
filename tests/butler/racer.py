"""One operator of the race test (test_race.py): a process of its own, its own gateway, journal and state folder.

Why a long-lived process: an operator's app keeps its gateway open for hours, and starting a Python with the
middleware per round would make 80 rounds cost minutes.  Commands come on stdin, one JSON object per line, and
each gets one JSON line back on stdout:

* ``{"op": "preview", "input": RUN, "begin": ISO, "end": ISO}`` previews a certify of that RUN's bias into
  PFS/calib and keeps it: ``{"ok": true, "blocked": false}``;
* ``{"op": "apply"}`` applies the kept preview: ``{"ok": true}``, or ``{"ok": false, "error": CLASS, "message":
  TEXT}`` for any exception (the test decides which are right).
"""

from __future__ import annotations

import json
import sys


def main(repo: str) -> None:
    from pfstui.butler.apply import apply
    from pfstui.butler.certify import preview_certify
    from pfstui.butler.gateway import ButlerGateway

    preview = None
    with ButlerGateway(repo) as gw:
        gw.butler  # noqa: B018 - open it now, as the app does before the operator acts
        print(json.dumps({"ok": True, "ready": True}), flush=True)
        for line in sys.stdin:
            cmd = json.loads(line)
            try:
                if cmd["op"] == "preview":
                    preview = preview_certify(gw, cmd["input"], "PFS/calib", "bias", begin=cmd["begin"],
                                              end=cmd["end"])
                    answer = {"ok": True, "blocked": preview.blocked}
                else:
                    apply(gw, preview)
                    answer = {"ok": True}
            except Exception as exc:  # noqa: BLE001 - every outcome is reported; the test judges it
                answer = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
