"""A histogram as bars of block characters (▁▂▃▄▅▆▇█), sized to the widget, its range written under it.

Why our own bars and not a plotting library: a histogram of 32 bins is a few lines of text; characters need no
graphics protocol, read the same over SSH and in a snapshot, and the counts are on a log scale so the tails
(the hot and cold pixels a check counts) show beside the peak.
"""

from __future__ import annotations

import math

from rich.text import Text
from textual.widget import Widget

from pfstui.verify.pictures import Histogram

__all__ = ["HistogramChart", "bar_lines"]

_EIGHTHS = " ▁▂▃▄▅▆▇█"


def bar_lines(counts: list[int], width: int, height: int) -> list[str]:
    """``counts`` drawn in ``width`` columns (adjacent bins added up when narrower) and ``height`` rows, log
    scale: row 0 is the top."""
    if width <= 0 or height <= 0 or not counts:
        return []
    groups = max(1, math.ceil(len(counts) / width))
    merged = [sum(counts[i:i + groups]) for i in range(0, len(counts), groups)]
    # Each bar as wide as the columns allow, the spare columns spread over the bars (not left blank at the end).
    widths = [(i + 1) * width // len(merged) - i * width // len(merged) for i in range(len(merged))]
    top = math.log10(1 + max(merged)) or 1.0
    eighths = [round(math.log10(1 + c) / top * height * 8) for c in merged]
    lines = []
    for row in range(height):
        floor = (height - 1 - row) * 8
        line = "".join(_EIGHTHS[max(0, min(8, e - floor))] * w for e, w in zip(eighths, widths, strict=True))
        lines.append(line)
    return lines


def _number(value: float) -> str:
    return f"{value:.4g}"


class HistogramChart(Widget):
    """The histogram of one camera's good pixels; ``histogram = None`` shows a note instead."""

    DEFAULT_CSS = """
    HistogramChart { height: 8; }
    """

    def __init__(self, histogram: Histogram | None = None, title: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.histogram = histogram
        self.title = title

    def show(self, histogram: Histogram | None, title: str = "") -> None:
        self.histogram, self.title = histogram, title
        self.refresh()

    def render(self) -> Text:
        hist = self.histogram
        width, height = self.content_size.width, self.content_size.height
        if hist is None:
            return Text("no histogram", style="dim")
        text = Text(f"{self.title} (log counts)\n", style="bold")
        text.append("\n".join(bar_lines([int(c) for c in hist.counts], width, max(1, height - 3))) + "\n",
                    style="cyan")
        low, high = _number(float(hist.edges[0])), _number(float(hist.edges[-1]))
        middle = _number(float(hist.edges[len(hist.edges) // 2]))
        gap = max(1, width - len(low) - len(high) - len(middle))
        text.append(f"{low}{' ' * (gap // 2)}{middle}{' ' * (gap - gap // 2)}{high}\n")
        text.append(f"{hist.below} below, {hist.above} above the range", style="dim")
        return text
