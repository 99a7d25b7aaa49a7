"""How a plan problem is reported: where (file, line, stage, field), what, and the fix.

Why its own module: every part of the plan package (the field validators, the models, the loader, the
writer, the templates and the editor) reports problems the same way, and the operator-facing side (the CLI,
the add-stage screen) catches :class:`PlanError` without having to import the pydantic models.

Every problem is reported as ``<file>:<line>: stage '<name>': <problem> (<fix>)`` through
:class:`PlanError`, which keeps the file, line, stage and field as attributes and all problems found in
``issues``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pfstui.errors import UserError

__all__ = ["FieldProblem", "PlanError", "PlanFileExistsError", "PlanIssue"]


@dataclass(frozen=True)
class PlanIssue:
    """One problem in a plan file, with enough location to fix it without searching."""

    source: str
    line: int | None
    stage: str | None
    field: str | None
    problem: str
    fix: str | None = None

    @property
    def message(self) -> str:
        where = f"{self.source}:{self.line}: " if self.line is not None else f"{self.source}: "
        if self.stage is not None:
            where += f"stage '{self.stage}': "
        text = where + self.problem
        if self.fix:
            text += f" ({self.fix})"
        return text


class PlanError(UserError):
    """A plan file cannot be used; ``str()`` is a one-line message naming the place, problem and fix.

    ``issues`` holds every problem found (sorted by line); the attributes ``source``, ``line``, ``stage``,
    ``field``, ``problem`` and ``fix`` describe the first one.
    """

    def __init__(self, issues: Iterable[PlanIssue]) -> None:
        self.issues: list[PlanIssue] = sorted(
            issues,
            key=lambda i: (i.problem.startswith("missing required field"), i.line if i.line is not None else 1 << 30),
        )
        if not self.issues:  # pragma: no cover - defensive
            raise ValueError("PlanError needs at least one issue")
        first = self.issues[0]
        self.source = first.source
        self.line = first.line
        self.stage = first.stage
        self.field = first.field
        self.problem = first.problem
        # UserError keeps ``fix`` (it set it to None when only the text was passed); ``str()`` is ours.
        super().__init__(self._text(), first.fix)

    def _text(self) -> str:
        text = self.issues[0].message
        more = len(self.issues) - 1
        if more:
            text += f" [+{more} more problem{'s' if more > 1 else ''}]"
        return text

    def __str__(self) -> str:
        return self._text()

    def report(self) -> str:
        """Every problem, one per line (for ``plan check`` style output)."""
        return "\n".join(i.message for i in self.issues)


class PlanFileExistsError(PlanError):
    """``plan new`` refused to replace an existing file."""


class FieldProblem(ValueError):
    """Raised by validators so the loader can report the problem and its fix separately."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem if fix is None else f"{problem} ({fix})")
        self.problem = problem
        self.fix = fix
