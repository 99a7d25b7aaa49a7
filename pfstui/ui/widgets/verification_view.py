"""The verification of a product, to look at: a camera x check grid coloured by verdict, and for the camera
under the cursor its product, new - current, a histogram and every check's numbers.

Why pictures: an offset, a hot column or a missing amplifier is seen at a glance where a column of numbers has
to be read.  Every cell also carries its verdict as a word (``FAIL``), so the grid reads without colour (a
monochrome terminal, a colour-blind operator, a pasted screenshot).  At 80 columns the grid, the camera line
and the two pictures fit on one screen and the rest scrolls; from 120 columns the pictures take the width and
the histogram and the numbers sit side by side under them (the screen's ``-wide`` class).
"""

from __future__ import annotations

import numpy as np
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import DataTable, Static

from pfstui.ui.images import Renderer, image_widget
from pfstui.ui.widgets.histogram_chart import HistogramChart
from pfstui.ui.widgets.tables import ListTable
from pfstui.verify.pictures import Picture, shrink

__all__ = ["VERDICT_STYLE", "VerificationView", "check_label", "verdict_cell"]

#: How each verdict is drawn: pass green, warn yellow, fail red, n/a dim.
VERDICT_STYLE = {"pass": "green", "warn": "bold black on yellow", "fail": "bold white on red", "n/a": "dim"}
#: Colour of a block without a good pixel (a masked region): no grey value means "nothing here".
BLANK_RGB = (40, 40, 110)


def verdict_cell(verdict: str) -> Text:
    """The verdict as a word that reads without colour (``FAIL`` shouts), coloured as well."""
    return Text(verdict.upper() if verdict == "fail" else verdict, style=VERDICT_STYLE.get(verdict, ""))


def check_label(name: str) -> str:
    """A short column head: ``diff_`` is Δ (new - current), ``ratio_`` is ÷ (new / current)."""
    short = {"outliers": "outl", "dark_current": "dark"}
    for prefix, mark in (("diff_", "Δ"), ("ratio_", "÷")):
        if name.startswith(prefix):
            rest = name[len(prefix):]
            return mark + short.get(rest, rest)
    return short.get(name, name)


def to_rgb(picture: Picture, diverging: bool) -> np.ndarray:
    """The picture's bytes as RGB: grey for a product; for a comparison white at "no change", red where new is
    higher and blue where lower; blank blocks dark blue."""
    p = picture.pixels.astype(float)
    if diverging:
        t = (p - 128.0) / 127.0
        r = np.where(t > 0, 255.0, 255.0 * (1 + t))
        b = np.where(t < 0, 255.0, 255.0 * (1 - t))
        g = 255.0 * (1 - np.abs(t))
        rgb = np.stack([r, g, b], axis=-1)
    else:
        rgb = np.repeat(p[..., None], 3, axis=-1)
    rgb[picture.blank] = BLANK_RGB
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _pil(picture: Picture, diverging: bool):
    from PIL import Image

    return Image.fromarray(to_rgb(picture, diverging), "RGB")


def fit_cells(width: int, height: int, aspect: float) -> tuple[int, int]:
    """The most cells (columns, rows) within ``width`` x ``height`` showing a picture of ``aspect`` (width / height
    in pixels) undistorted: a cell is twice as tall as it is wide (half-blocks: one pixel across, two down)."""
    columns = max(1, min(width, int(2 * height * aspect)))
    return columns, max(1, min(height, round(columns / (2 * aspect))))


class _PictureBox(Vertical):
    """A label over an image fitted to the box, keeping its shape; the picture is shrunk to the cells it gets by
    :func:`~pfstui.verify.pictures.shrink` (a smooth resize in textual-image would grey out a hot column)."""

    picture: Picture | None = None
    diverging = False
    _drawn: tuple[int, int] | None = None

    def on_resize(self) -> None:
        self.fit()

    def fit(self) -> None:
        images = list(self.query(".verify-image"))
        if self.picture is None or not images:
            return
        rows, columns = self.picture.pixels.shape
        size = fit_cells(self.content_size.width, self.content_size.height - 1, columns / rows)
        if size == self._drawn:
            return
        self._drawn = size
        for image in images:
            image.styles.width, image.styles.height = size
            image.image = _pil(shrink(self.picture, 2 * size[1], size[0]), self.diverging)


def _range(picture: Picture) -> str:
    """The values at the ends of the scale, short enough for half of 80 columns (black to white; blue to red)."""
    return f"{picture.label}: {picture.low:.3g} to {picture.high:.3g}"


class VerificationView(Widget):
    """A :class:`~pfstui.verify.report.Report` drawn (see the module docstring); ``renderer`` as in
    :mod:`pfstui.ui.images`."""

    #: The wide layout follows the screen's width class, outside this widget: the rules are not scoped to it.
    SCOPED_CSS = False
    DEFAULT_CSS = """
    VerificationView { height: 1fr; }
    VerificationView #verify-title { height: auto; }
    VerificationView #verify-grid { height: auto; max-height: 50%; }
    VerificationView #verify-detail { height: 1fr; }
    VerificationView #verify-looks, VerificationView #verify-numbers { height: auto; }
    VerificationView #verify-camera { height: auto; }
    VerificationView #verify-pictures { height: 13; }
    VerificationView .verify-picture { width: 1fr; height: 100%; padding-right: 1; }
    VerificationView .verify-picture Static { height: 1; }
    VerificationView HistogramChart { height: 8; margin-top: 1; }
    VerificationView #verify-checks { height: auto; margin-top: 1; }
    Screen.-wide VerificationView #verify-looks { height: 1fr; min-height: 16; }
    Screen.-wide VerificationView #verify-pictures { height: 1fr; }
    Screen.-wide VerificationView #verify-numbers { layout: horizontal; height: 10; }
    Screen.-wide VerificationView HistogramChart { width: 1fr; height: 100%; margin-top: 0; }
    Screen.-wide VerificationView #verify-checks { width: 1fr; margin-top: 0; padding-left: 2; }
    """

    def __init__(self, report, *, renderer: Renderer = "auto", **kwargs) -> None:
        super().__init__(**kwargs)
        self.report = report
        self.renderer = renderer
        self.camera = None

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="verify-title")
        yield ListTable(id="verify-grid", cursor_type="row", zebra_stripes=False)
        with VerticalScroll(id="verify-detail"):
            with Vertical(id="verify-looks"):
                yield Static("", id="verify-camera")
                with Horizontal(id="verify-pictures"):
                    for kind in ("new", "diff"):
                        with _PictureBox(id=f"verify-{kind}", classes="verify-picture"):
                            yield Static("", id=f"verify-{kind}-label")
            with Vertical(id="verify-numbers"):
                yield HistogramChart(id="verify-histogram")
                yield Static("", id="verify-checks")

    def on_mount(self) -> None:
        grid = self.query_one("#verify-grid", DataTable)
        checks = [c.name for c in self.report.cameras[0].checks] if self.report.cameras else []
        grid.add_column("Camera", key="camera")
        grid.add_column("Verdict", key="verdict")
        for name in checks:
            grid.add_column(check_label(name), key=name)
        for row, cam in enumerate(self.report.cameras):
            grid.add_row(Text(cam.camera), verdict_cell(cam.verdict), *(verdict_cell(c.verdict) for c in cam.checks),
                         key=str(row))
        worst = next((i for i, c in enumerate(self.report.cameras) if c.verdict == "fail"), 0)
        if self.report.cameras:
            grid.move_cursor(row=worst)
            self.show_camera(worst)

    @on(DataTable.RowHighlighted, "#verify-grid")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_camera(event.cursor_row)

    def focus_main(self) -> None:
        self.query_one("#verify-grid", DataTable).focus()

    # --- the camera under the cursor ------------------------------------------------------------------------
    def show_camera(self, row: int) -> None:
        if not 0 <= row < len(self.report.cameras) or self.camera is self.report.cameras[row]:
            return
        cam = self.camera = self.report.cameras[row]
        self.query_one("#verify-camera", Static).update(self._camera_line(cam))
        pictures = cam.pictures
        self._picture("new", pictures.product if pictures else None, diverging=False)
        self._picture("diff", pictures.comparison if pictures else None, diverging=True)
        self.query_one(HistogramChart).show(pictures.histogram if pictures else None, f"{cam.camera} pixels")
        self.query_one("#verify-checks", Static).update(self._checks_table(cam))

    def _picture(self, kind: str, picture: Picture | None, *, diverging: bool) -> None:
        box = self.query_one(f"#verify-{kind}", _PictureBox)
        label = self.query_one(f"#verify-{kind}-label", Static)
        for old in box.query(".verify-image"):
            old.image = None  # a graphics protocol's image is deleted from the terminal, not left in its memory
            old.remove()
        box.picture = None
        if picture is None:
            what = "new - current" if kind == "diff" else "the product"
            label.update(Text(f"{what}: nothing to compare with" if kind == "diff" else f"no picture of {what}",
                              style="dim"))
            return
        label.update(Text(_range(picture)))
        box.picture, box.diverging, box._drawn = picture, diverging, None
        box.mount(image_widget(_pil(picture, diverging), self.renderer, classes="verify-image"))
        box.fit()

    def _title(self) -> Text:
        """What failed first (a narrow terminal wraps the rest), then what was compared with what."""
        r = self.report
        failed = len(r.failed)
        text = Text(f"{failed} of {len(r.cameras)} cameras FAIL" if failed else f"{len(r.cameras)} cameras, none fail",
                    style="bold red" if failed else "bold green")
        against = f" against {r.against} at {str(r.at)[:16]} TAI" if r.against else ", nothing certified to compare"
        return text.append_text(Text.assemble(": ", (r.dataset_type, "bold"), f" in {r.collection}{against}"))

    @staticmethod
    def _camera_line(cam) -> Text:
        text = Text.assemble((cam.camera, "bold"), " ", verdict_cell(cam.verdict))
        bad = [c for c in cam.checks if c.verdict in ("fail", "warn")]
        for c in bad:
            text.append(f"  {c.name} {c.value:.4g}{c.limit.unit and ' ' + c.limit.unit}"
                        f" ({c.verdict} beyond {c.limit.warn if c.verdict == 'warn' else c.limit.fail:g}"
                        f"{', amp ' + c.amp if c.amp else ''})")
        return text

    @staticmethod
    def _checks_table(cam) -> Table:
        table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
        for head, justify in (("check", "left"), ("verdict", "left"), ("value", "right"), ("warn", "right"),
                              ("fail", "right"), ("amp", "left")):
            table.add_column(head, justify=justify, no_wrap=True)
        for c in cam.checks:
            value = "-" if c.value is None else f"{c.value:.4g}"
            table.add_row(c.name, verdict_cell(c.verdict), f"{value} {c.limit.unit}".strip(), f"{c.limit.warn:g}",
                          f"{c.limit.fail:g}", c.amp)
        return table
