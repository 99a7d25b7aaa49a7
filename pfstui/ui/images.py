"""Which way the terminal draws an image (textual-image), chosen once and explicitly.

Why from the environment and never by asking the terminal: textual-image learns what a terminal can do by
asking it (the kitty graphics query, the device attributes) and reading the answer from standard input.  Once
Textual runs, its input thread takes those answers; asked before the app starts, the question costs a round
trip on every start (40 ms in tmux, a whole timeout on a terminal that answers nothing, more over a slow SSH
link) for a picture most sessions never open.  So ``auto`` recognises the terminals that announce themselves
(kitty, WezTerm and Ghostty draw the kitty graphics protocol; foot, mlterm and Contour draw Sixel) and gives
every other terminal, and anything inside tmux or screen (which pass neither protocol through by default),
half-blocks: two pixels per character cell in 24-bit colour, legible anywhere.  An operator whose terminal
draws one of the protocols without saying so chooses it outright (``images: tgp`` or ``sixel``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["Renderer", "detect", "image_widget", "resolve"]

Renderer = Literal["auto", "halfcell", "tgp", "sixel"]
Drawn = Literal["halfcell", "tgp", "sixel"]

_TGP_TERMS = ("xterm-kitty", "xterm-ghostty")
_TGP_PROGRAMS = ("WezTerm", "ghostty")
_SIXEL_TERMS = ("foot", "foot-extra", "mlterm")
_SIXEL_PROGRAMS = ("contour",)


def detect(environ: Mapping[str, str] | None = None) -> Drawn:
    """What ``auto`` draws with, from the variables a terminal sets (see the module docstring)."""
    env = os.environ if environ is None else environ
    term, program = env.get("TERM", ""), env.get("TERM_PROGRAM", "")
    if env.get("TMUX") or term.startswith(("tmux", "screen")):
        return "halfcell"
    if term in _TGP_TERMS or program in _TGP_PROGRAMS or env.get("KITTY_WINDOW_ID"):
        return "tgp"
    if term in _SIXEL_TERMS or program in _SIXEL_PROGRAMS:
        return "sixel"
    return "halfcell"


def resolve(renderer: Renderer) -> Drawn:
    """The way images are drawn: the one chosen, or for ``auto`` what :func:`detect` recognises."""
    return detect() if renderer == "auto" else renderer


def image_widget(image: Any, renderer: Renderer, **kwargs: Any) -> Any:
    """A textual-image widget drawing ``image`` (a PIL image) the way :func:`resolve` says."""
    _no_question_now()
    from textual_image.widget import HalfcellImage, SixelImage, TGPImage

    widget = {"halfcell": HalfcellImage, "tgp": TGPImage, "sixel": SixelImage}[resolve(renderer)]
    return widget(image, **kwargs)


def _no_question_now() -> None:
    """textual-image asks the terminal when its widgets are first imported; in the running app it must not (the
    answer would go to Textual's input): the renderer is always chosen by :func:`resolve`, so tell it nothing is
    there."""
    from textual_image import _terminal

    if not hasattr(_terminal.probe_terminal, "_result"):
        setattr(_terminal.probe_terminal, "_result",
                _terminal.TerminalCapabilities(_terminal.CellSize(10, 20), sixel=False, tgp=False))
