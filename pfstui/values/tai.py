"""TAI ISO dates as the PFS tools take them (``astropy.time.Time(s, scale="tai")``)."""

from __future__ import annotations

import re
from datetime import datetime

from pfstui.errors import UserError

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")


class DateError(UserError, ValueError):
    """A date is not a TAI ISO date; the message shows the expected form."""


def check_tai(text: str | None, what: str = "date") -> str | None:
    """Validate a TAI ISO string (``2025-03-01T00:00:00``); None/empty means an open bound."""
    if text is None or str(text).strip() == "":
        return None
    text = str(text).strip()
    if not _ISO.match(text):
        raise DateError(f"{what} {text!r} is not a TAI ISO date; write it like 2025-03-01T00:00:00")
    try:
        datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError as exc:
        raise DateError(f"{what} {text!r} is not a valid date ({exc}); write it like 2025-03-01T00:00:00") from None
    return text


def to_time(text: str | None):
    """astropy Time (TAI) for a checked ISO string, or None for an open bound."""
    text = check_tai(text)
    if text is None:
        return None
    from astropy.time import Time

    return Time(text.replace(" ", "T"), scale="tai", format="isot")


def make_timespan(begin: str | None, end: str | None):
    """A Butler Timespan [begin, end) in TAI; refuses begin >= end."""
    from lsst.daf.butler import Timespan

    b, e = to_time(begin), to_time(end)
    if b is not None and e is not None and b >= e:
        raise DateError(f"begin date {begin} is not before end date {end}; swap them or widen the range")
    return Timespan(b, e)
