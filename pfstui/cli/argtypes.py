"""argparse types for numbers an operator types: each refuses what makes no sense, in one line.

Why: ``--limit -5`` was read as "all but five", ``--parallel -3`` reached pydantic and printed its error, and
``--parallel 0`` was ignored.  A type here says the range and stops at the command line.
"""

from __future__ import annotations

import argparse

from pfstui.queue.model import MAX_PARALLEL

__all__ = ["count", "positive", "stages_at_once"]

#: Far above any real use (entries shown, stages at once), far below what costs memory or time.
MAX_NUMBER = 100_000


def _whole(text: str, low: int, what: str, high: int = MAX_NUMBER) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; write {what}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{value} is out of range; write {what}")
    return value


def count(text: str) -> int:
    """0 or more (0 usually means "no limit")."""
    return _whole(text, 0, f"a number from 0 to {MAX_NUMBER:,}")


def positive(text: str) -> int:
    """1 or more."""
    return _whole(text, 1, f"a number from 1 to {MAX_NUMBER:,}")


def stages_at_once(text: str) -> int:
    """How many stages may run at once: 1 to the queue's own bound (``queue.model.MAX_PARALLEL``)."""
    return _whole(text, 1, f"a number from 1 to {MAX_PARALLEL:,}", high=MAX_PARALLEL)
