"""The ``pfstui`` command's entry point (the console script and ``python -m pfstui``).

Start-up runs without the cyclic garbage collector.  Everything made while the modules are imported and the
app draws its first frame lives as long as the app, so the collections that start-up triggers (a few dozen
passes over a growing heap) find nothing to free and only delay the first frame: about 30 ms of the 360 ms on
the 2-core host of ``bench/ui.py``.  :func:`pfstui.cli.main.main` switches the collector back on once the
command line is parsed, unless it opens the app; :func:`pfstui.cli.app.run_app` keeps it off (or switches
it off, after ``pfstui demo`` built its repository) while the app starts, and the app switches it on once its
first frame is out (:func:`pfstui.ui.app.settle_gc`, which also freezes the
start-up objects).
"""

import gc
import sys


def main() -> int:
    gc.disable()
    from pfstui.cli.main import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
