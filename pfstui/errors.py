"""The one base of every error an operator can act on.

Why one base: the CLI's ``run_guarded`` and each pane's worker handler show a :class:`UserError` as one line
(the problem, then what to do about it) and anything else as "unexpected" with a traceback file.  With a
single base no list of "user" exception classes has to be kept in step with the code that raises them.

Each package keeps its own subclasses (``PlanError``, ``GatewayError``, ``SupervisorError`` ...) so callers
can still catch what they expect; only the base is shared.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A problem the operator can fix: ``message`` says what is wrong, ``fix`` (optional) what to do.

    ``str(err)`` is the one line shown: the message, then the fix after a semicolon.  Subclasses that build
    their message themselves (with the fix already in it) just pass one argument.
    """

    #: A short word for the title of a notification or dialog ("Plan", "Butler", "Queue" ...).
    title = "Error"

    def __init__(self, message: str = "", fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix

    def __str__(self) -> str:
        base = super().__str__()
        fix = getattr(self, "fix", None)
        return f"{base}; {fix}" if fix else base
