"""pfstui's demo: a PFS-like instrument, a small night of data and its pipelines, to try pfstui without PFS.

Why the demo registers itself: the product (plans, queue, Butler, app) knows nothing of the demo, so the
demo can change or go without the product changing.  What the product must know of it, the demo tells
it through :func:`register`, which the CLI calls at start; its folder reaches plans and processes as
``$PFSTUI_DEMO_DIR`` (set by the CLI, as EUPS sets ``$DRP_STELLA_DIR``).
"""

from __future__ import annotations

__all__ = ["register"]


def register() -> None:
    """Tell the product about the demo: its plan template (``pfstui plan new --template demo``, and the
    stages the add-stage screen offers for a demo plan).  Harmless to call again.

    The imports are here, not at the top: ``import pfstui.demo`` stays free, and the template tables are
    built only by a command that needs them, never on the app's first frame.
    """
    from pfstui.demo.template import DEMO_TEMPLATE
    from pfstui.plan.templates import register_template

    register_template(DEMO_TEMPLATE)
