"""The Butler side of pfstui: the gateway the browser reads through, and the previewed, journaled writes.

Modules: ``gateway`` (reads, paging, the Butler's lifetime), ``errors``, ``values`` (collections and validity
ranges as values, and the operator's arguments checked into them), ``registry`` (raw reads shared by previews and
apply), ``preview`` (the model of an action's effect), the previews by job (``certify``, ``removal``, ``undo``,
``pfs``), ``apply`` (re-check, write, journal) and ``reconcile`` (the write-ahead journal entry of each change,
and deciding from the registry the ones a killed process left pending).

:func:`daf_butler` is the package's one lazy import: ``import lsst.daf.butler`` alone takes over a second, and
neither the app's first frame nor ``pfstui --help`` may wait for it, so no module here imports it at the top.
"""

from __future__ import annotations

from types import ModuleType

__all__ = ["daf_butler"]


def daf_butler() -> ModuleType:
    """``lsst.daf.butler`` (with its ``registry`` and ``time_utils`` submodules), imported on the first call."""
    import lsst.daf.butler
    import lsst.daf.butler.registry
    import lsst.daf.butler.time_utils  # noqa: F401 - bound as attributes of lsst.daf.butler

    return lsst.daf.butler
