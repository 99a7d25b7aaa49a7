"""Validity ranges as a text timeline: one row per (dataset type, camera), ranges as bars.

Open ends are drawn to the edge of the axis with an arrow; gaps are blank; where two ranges of the same
row overlap the cells are marked ``▓`` in red (a conflict the registry would refuse).
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

FAR_PAST = datetime(1900, 1, 1)
FAR_FUTURE = datetime(2200, 1, 1)


def _t(value: str | None, default: datetime) -> datetime:
    if not value:
        return default
    try:
        return datetime.fromisoformat(value.replace(" ", "T"))
    except ValueError:
        return default


def camera_key(data_id: dict) -> str:
    if "arm" in data_id and "spectrograph" in data_id:
        return f"{data_id['arm']}{data_id['spectrograph']}"
    keys = [f"{k}={v}" for k, v in data_id.items() if k != "instrument"]
    return " ".join(keys) or str(data_id.get("instrument", "-"))


def timeline(assocs, width: int = 60) -> list[Text]:
    """Rows ``type camera |bars|`` over a shared axis covering every finite bound."""
    if not assocs:
        return [Text("no validity ranges", "dim")]
    finite = [_t(a.begin, None) for a in assocs if a.begin] + [_t(a.end, None) for a in assocs if a.end]
    finite = [f for f in finite if f is not None]
    lo = min(finite) if finite else datetime(2000, 1, 1)
    hi = max(finite) if finite else datetime(2050, 1, 1)
    if hi <= lo:
        hi = lo.replace(year=lo.year + 1)
    span = (hi - lo).total_seconds()

    def col(t: datetime) -> int:
        x = (t - lo).total_seconds() / span
        return max(0, min(width - 1, int(round(x * (width - 1)))))

    rows: dict[tuple[str, str], list] = {}
    for a in assocs:
        rows.setdefault((a.dataset_type, camera_key(a.data_id)), []).append(a)
    label_w = max(len(f"{t} {c}") for t, c in rows) + 1
    out = [Text(" " * label_w + f"{lo:%Y-%m-%d}".ljust(width - 10) + f"{hi:%Y-%m-%d}", "dim")]
    for (dtype, cam), items in sorted(rows.items()):
        cells = [0] * width
        open_left = open_right = False
        for a in items:
            b = col(_t(a.begin, lo)) if a.begin else 0
            e = col(_t(a.end, hi)) if a.end else width - 1
            open_left |= not a.begin
            open_right |= not a.end
            for i in range(b, max(b, e) + 1):
                cells[i] += 1
        line = Text(f"{dtype} {cam}".ljust(label_w))
        for i, n in enumerate(cells):
            if n == 0:
                line.append("·", "dim")
            elif n == 1:
                glyph = "◀" if (i == 0 and open_left) else "▶" if (i == width - 1 and open_right) else "█"
                line.append(glyph, "green")
            else:
                line.append("▓", "bold red")
        out.append(line)
    return out
