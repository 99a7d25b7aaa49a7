"""What a Butler action will change, as values: the preview every write shows before it happens.

Why: certification edits the shared calibration registry that every science reduction reads, so each action
(certify, decertify, clean, remove-runs, remove-collections, undo, define-profiles, certify-detectormaps) is split
in two.  A ``preview_*`` function computes, without writing, exactly what will change (associations added,
trimmed, split or removed; datasets, files and bytes to delete; conflicts and other blockers) and a *fingerprint*
of the registry state it was computed from, as a :class:`Preview`; :func:`pfstui.butler.apply.apply` performs it
only if the registry still has that fingerprint, and returns an :class:`AppliedAction`.  This module is the model
both sides share, and how it reads as text (the CLI prints :meth:`Preview.lines`, the Certify pane shows them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pfstui.butler.values import Association, CollectionRow
from pfstui.infra.journal import JournalEntry

__all__ = [
    "AppliedAction",
    "CameraVerdict",
    "Change",
    "Conflict",
    "Preview",
    "Removal",
    "fingerprint",
    "human_bytes",
    "range_text",
]


@dataclass(frozen=True)
class Change:
    """One association change: ``add`` | ``trim`` | ``split`` | ``remove`` | ``unchanged``."""

    kind: str
    before: Association | None = None
    after: tuple[Association, ...] = ()

    def text(self) -> str:
        a = self.before or self.after[0]
        head = f"{a.dataset_type} {a.camera()}"
        if self.kind == "add":
            return f"+ add       {head}  {a.range_text()}  (dataset …{a.dataset_id[-8:]}, run {a.run})"
        if self.kind == "unchanged":
            return f"= unchanged {head}  {a.range_text()}  (already certified; left as is)"
        if self.kind == "remove":
            return f"- remove    {head}  {a.range_text()}  (dataset …{a.dataset_id[-8:]}, run {a.run})"
        new = " + ".join(p.range_text() for p in self.after)
        sym = "~ trim     " if self.kind == "trim" else "/ split    "
        return f"{sym}{head}  {self.before.range_text()} -> {new}  (dataset …{a.dataset_id[-8:]})"


@dataclass(frozen=True)
class Conflict:
    """An incoming range overlapping a range already held for the same data ID."""

    wanted: Association
    existing: Association

    def holder(self) -> str:
        """Who holds the range in the way: the dataset and its RUN, so the operator knows what to decertify."""
        if self.wanted.dataset_id == self.existing.dataset_id:
            return "the same dataset"
        return f"dataset …{self.existing.dataset_id[-8:]} (run {self.existing.run})"

    def text(self) -> str:
        return (f"CONFLICT    {self.wanted.dataset_type} {self.wanted.camera()}: {self.wanted.range_text()} overlaps "
                f"{self.existing.range_text()} held by {self.holder()}")


@dataclass(frozen=True)
class CameraVerdict:
    """The certify gate's verdict on one camera (:mod:`pfstui.verify.gate`): a failing camera is left out of the
    change unless the operator overrides it with a reason, which the journal keeps with the entry."""

    camera: str
    verdict: str  # pass | warn | fail | n/a
    #: The checks that warned or failed: ``{"check", "verdict", "value", "limit", "unit"}`` (``reason`` for read).
    problems: tuple[dict[str, Any], ...] = ()
    left_out: bool = False
    override: str = ""  # the operator's reason for certifying a failing camera anyway

    def text(self) -> str:
        if not self.problems:
            return f"verify {self.camera}: {self.verdict}"
        text = f"verify {self.camera}: {self.verdict.upper()} " + ", ".join(map(_problem_text, self.problems))
        if self.left_out:
            return text + f": left out; --override '{self.camera}=REASON' certifies it"
        return text + (f": overridden ({self.override})" if self.override else "")

    def to_json(self) -> dict[str, Any]:
        return {"camera": self.camera, "verdict": self.verdict, "problems": [dict(p) for p in self.problems],
                "left_out": self.left_out, "override": self.override}


def _problem_text(p: dict[str, Any]) -> str:
    if p.get("reason"):
        return f"{p['check']} ({p['reason']})"
    value = "-" if p.get("value") is None else f"{p['value']:.4g} {p.get('unit') or ''}".rstrip()
    return f"{p['check']} {value} ({p['verdict']} > {p['limit']:g})"


@dataclass(frozen=True)
class Removal:
    """Datasets of one type in one RUN collection that will be deleted (registry entries and files)."""

    run: str
    dataset_type: str
    count: int
    bytes: int


@dataclass
class Preview:
    """Exactly what an action will change, and the fingerprint of the state it was computed from."""

    action: str
    repo: str
    args: dict[str, Any]  # the preview function's keyword arguments: apply computes the preview again from them
    fingerprint: str
    summary: str
    changes: list[Change] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    removals: list[Removal] = field(default_factory=list)
    collections: list[CollectionRow] = field(default_factory=list)  # collections that will be removed
    unlinks: list[tuple[str, str]] = field(default_factory=list)  # (parent chain, child) links removed
    blockers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # other writes, one line each (the PFS actions' records)
    verification: list[CameraVerdict] = field(default_factory=list)  # the certify gate's verdicts, per camera
    undoable: bool = False
    create_collection: str | None = None
    plan: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: Who asks for it, journaled with the entry: ``{"stage": NAME, "attempt": N}`` when a plan stage runs it.
    origin: dict[str, Any] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        return bool(self.conflicts or self.blockers)

    @property
    def effective_changes(self) -> list[Change]:
        return [c for c in self.changes if c.kind != "unchanged"]

    @property
    def is_noop(self) -> bool:
        return not (self.effective_changes or self.removals or self.collections or self.unlinks
                    or self.create_collection or self.steps)

    @property
    def removed_associations(self) -> list[Association]:
        return [c.before for c in self.changes if c.kind in ("remove", "trim", "split") and c.before is not None]

    @property
    def added_associations(self) -> list[Association]:
        return [a for c in self.changes if c.kind in ("add", "trim", "split") for a in c.after]

    @property
    def total_datasets(self) -> int:
        return sum(r.count for r in self.removals)

    @property
    def total_bytes(self) -> int:
        return sum(r.bytes for r in self.removals)

    def blocker_text(self) -> str:
        """One line saying why apply is refused (empty when it is not)."""
        parts = []
        if self.conflicts:
            n = len(self.conflicts)
            c = self.conflicts[0]
            parts.append(f"{n} conflict{'s' if n != 1 else ''} ({c.wanted.dataset_type} {c.wanted.camera()}: "
                         f"{c.wanted.range_text()} overlaps {c.existing.range_text()} held by {c.holder()}); "
                         "decertify the overlapping range first or choose other dates")
        parts.extend(self.blockers)
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The preview as data (``--dry-run --json``): the text of :meth:`lines` and what it says, for a program
        that shows it before asking (an approval) or checks it; ``digest`` is :meth:`digest`."""
        return {"digest": self.digest(), **self._effect()}

    def digest(self) -> str:
        """A hash of what this change would do (not of who asks: ``origin`` is left out).

        Why: an approval gate shows an operator the preview of a stage and records its digest; the stage then
        runs with ``--approved DIGEST`` and refuses to write unless its own preview, computed again when it
        runs, has the same digest.  So what the operator approved is exactly what is written."""
        effect = {k: v for k, v in self._effect().items() if k != "origin"}
        blob = json.dumps(effect, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _effect(self) -> dict[str, Any]:
        return {
            "action": self.action, "repository": self.repo, "summary": self.summary, "lines": self.lines(),
            "blocked": self.blocked, "blocker": self.blocker_text(), "nothing_to_do": self.is_noop,
            "undoable": self.undoable, "args": self.args, "origin": self.origin,
            "added": [a.to_json() for a in self.added_associations],
            "removed": [a.to_json() for a in self.removed_associations],
            "conflicts": [{"wanted": c.wanted.to_json(), "existing": c.existing.to_json()} for c in self.conflicts],
            "deleted": [{"run": r.run, "dataset_type": r.dataset_type, "count": r.count, "bytes": r.bytes}
                        for r in self.removals],
            "steps": list(self.steps),
            "verification": [v.to_json() for v in self.verification],
        }

    def lines(self) -> list[str]:
        """The preview as text, as the CLI prints it and the UI shows it."""
        out = [self.summary]
        out += [f"  note: {n}" for n in self.notes]
        out += ["  " + v.text() for v in self.verification]
        if self.create_collection:
            out.append(f"  + create CALIBRATION collection {self.create_collection}")
        out += ["  " + s for s in self.steps]
        for c in self.changes:
            out.append("  " + c.text())
        for c in self.conflicts:
            out.append("  " + c.text())
        for r in self.removals:
            out.append(f"  - delete    {r.count} {r.dataset_type} in {r.run} ({human_bytes(r.bytes)})")
        if self.removals:
            out.append(f"  total: {self.total_datasets} datasets, {human_bytes(self.total_bytes)} of files")
        for parent, child in self.unlinks:
            out.append(f"  - unlink    {child} from chain {parent}")
        for row in self.collections:
            out.append(f"  - remove    {row.type} collection {row.name}")
        for b in self.blockers:
            out.append(f"  BLOCKED: {b}")
        if self.blocked:
            out.append("  Nothing will be written until the problems above are fixed.")
        elif self.is_noop:
            out.append("  Nothing to do.")
        elif not self.undoable and (self.removals or self.collections):
            out.append("  This cannot be undone: datasets, files or collections are deleted for good.")
        elif not self.undoable:
            out.append("  pfstui undo cannot reverse this; the journal records exactly what was written.")
        else:
            out.append("  Undoable: pfstui undo <journal entry> restores the previous validity ranges.")
        return out


@dataclass
class AppliedAction:
    """What :func:`apply` did: the journal entry (None when nothing had to change) and the effect."""

    action: str
    summary: str
    effect: dict[str, Any]
    entry: JournalEntry | None
    preview: Preview

    @property
    def entry_id(self) -> str | None:
        return self.entry.id if self.entry is not None else None


def fingerprint(state: Any) -> str:
    text = json.dumps(state, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def range_text(nsec: tuple[int, int]) -> str:
    probe = Association.from_nsec("", {}, "", "", nsec)
    return probe.range_text()
