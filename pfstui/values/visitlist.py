"""Gen2-style integer lists, as the PFS scripts take them: ``a..b[:stride]`` ranges joined by ``^``."""

from __future__ import annotations

import re

from pfstui.errors import UserError


class VisitListError(UserError, ValueError):
    """A visit list could not be parsed; the message names the bad part and the syntax."""


#: Visits in one list.  A night of PFS calibrations has hundreds; a typo such as ``1..99999999999999999999``
#: must be refused before it is expanded (it grew to 4 GB), and the text is bounded before the regex runs.
MAX_VISITS = 100_000
MAX_TEXT = 100_000

_RANGE = re.compile(r"^\s*(-?\d+)\s*(?:\.\.\s*(-?\d+)\s*(?::\s*(\d+)\s*)?)?$")


def parse_integer_list(text: str) -> list[int]:
    """Parse ``"113855..113863^113870..113880:2^114000"``; ``..`` is inclusive, ``:N`` a stride.

    Duplicates are dropped, the order of first appearance is kept.
    """
    if text is None or not str(text).strip():
        raise VisitListError("empty visit list; give visits like 51..52 or 51^53 or 100..120:2")
    if len(str(text)) > MAX_TEXT:
        raise VisitListError(f"visit list of {len(str(text)):,} characters; write ranges (A..B) instead")
    out: list[int] = []
    seen: set[int] = set()
    for part in str(text).split("^"):
        m = _RANGE.match(part)
        if not m:
            raise VisitListError(
                f"bad visit list element {part.strip()!r} in {text!r}; use N, A..B or A..B:STRIDE joined by ^"
            )
        start = int(m.group(1))
        stop = int(m.group(2)) if m.group(2) is not None else start
        stride = int(m.group(3)) if m.group(3) is not None else 1
        if stride <= 0:
            raise VisitListError(f"stride must be positive in {part.strip()!r}")
        if stop < start:
            raise VisitListError(f"range {part.strip()!r} ends before it starts; write {stop}..{start}")
        if len(out) + (stop - start) // stride + 1 > MAX_VISITS:
            raise VisitListError(f"{part.strip()[:40]!r} makes more than {MAX_VISITS:,} visits",
                                 "check the range (a typo in a visit number?)")
        for value in range(start, stop + 1, stride):
            if value not in seen:
                seen.add(value)
                out.append(value)
    return out


def format_integer_list(values: list[int], limit: int = 12) -> str:
    """The inverse of `parse_integer_list` for display: ``[1, 2, 3, 7]`` → ``"1..3^7"`` (long lists shortened)."""
    runs: list[str] = []
    ordered = sorted(set(values))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        runs.append(str(ordered[i]) if i == j else f"{ordered[i]}..{ordered[j]}")
        i = j + 1
    if len(runs) > limit:
        return "^".join(runs[:limit]) + f"^... ({len(ordered)} in all)"
    return "^".join(runs)
