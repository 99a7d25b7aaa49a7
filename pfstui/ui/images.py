"""Which way the terminal draws an image (textual-image), chosen once and explicitly.

Why a choice made before the app starts: textual-image learns what the terminal can do by asking it (the kitty
graphics protocol query and the primary device attributes, whose answer says whether Sixel is there) and
reading the answer from standard input.  Once Textual runs, its input thread takes those answers, and the
question would wait two seconds for nothing.  So :func:`probe` asks before the app starts, and only when the
``images`` setting is ``auto``; a terminal that answers neither (a bare pty, most terminals over SSH that are
not kitty, WezTerm, foot or xterm -ti vt340) gets half-blocks: two pixels per character cell in 24-bit colour,
legible anywhere.  Tests and an operator choose one outright (``halfcell``, ``tgp``, ``sixel``) and no question
is asked.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["Renderer", "image_widget", "probe", "resolve"]

Renderer = Literal["auto", "halfcell", "tgp", "sixel"]
Drawn = Literal["halfcell", "tgp", "sixel"]

#: What the terminal answered to :func:`probe` (None: not asked).
_probed: Drawn | None = None
#: Seconds of silence after which the terminal is taken to answer nothing (textual-image waits 2 s).
PROBE_TIMEOUT = 0.5


def probe(timeout: float = PROBE_TIMEOUT) -> Drawn:
    """Ask the terminal once, before the app starts, which graphics it draws (see the module docstring)."""
    global _probed
    if _probed is None:
        import logging

        from textual_image import _terminal

        # A terminal that answers nothing is normal (a bare pty, a serial console): textual-image logs it as a
        # warning with a traceback, which Python would print on the terminal before the app starts.
        logging.getLogger("textual_image").addHandler(logging.NullHandler())
        _terminal._PROBE_TIMEOUT = timeout
        try:
            found = _terminal.probe_terminal()
        except Exception:  # noqa: BLE001 - a terminal of size 0x0 divides by zero in it: no graphics, no stop
            found = None
            _no_question_now()
        _probed = "sixel" if found and found.sixel else "tgp" if found and found.tgp else "halfcell"
    return _probed


def resolve(renderer: Renderer) -> Drawn:
    """The way images are drawn: the one chosen, or for ``auto`` what :func:`probe` found (half-blocks if the
    terminal was never asked: asking now, with Textual reading the input, would only wait)."""
    if renderer != "auto":
        return renderer
    return _probed or "halfcell"


def image_widget(image: Any, renderer: Renderer, **kwargs: Any) -> Any:
    """A textual-image widget drawing ``image`` (a PIL image) the way :func:`resolve` says."""
    _no_question_now()
    from textual_image.widget import HalfcellImage, SixelImage, TGPImage

    widget = {"halfcell": HalfcellImage, "tgp": TGPImage, "sixel": SixelImage}[resolve(renderer)]
    return widget(image, **kwargs)


def _no_question_now() -> None:
    """textual-image asks the terminal when its widgets are first imported; in the running app it must not (the
    answer would go to Textual's input): what was not asked before the app started is taken as not there."""
    from textual_image import _terminal

    if not hasattr(_terminal.probe_terminal, "_result"):
        setattr(_terminal.probe_terminal, "_result",
                _terminal.TerminalCapabilities(_terminal.CellSize(10, 20), sixel=False, tgp=False))
