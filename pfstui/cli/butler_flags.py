"""The flags the Butler write subcommands share: ``--dry-run``/``--yes``, validity dates and ``--id``.

Why a module of its own: ``pfstui.cli.pfs`` registers define-profiles and certify-detectormaps on every start of
``pfstui`` (the app included), so these plain argparse helpers must not pull in the Butler subcommands'
plumbing (:mod:`pfstui.cli.butler` and the butler package), which is imported only when such a command runs.
"""

from __future__ import annotations

import argparse

__all__ = ["add_dates", "add_id", "add_limit", "add_write_flags", "origin"]


def add_write_flags(p: argparse.ArgumentParser) -> None:
    """``--dry-run``/``--yes``, and ``--stage``/``--attempt`` (what the supervisor passes when a plan stage runs the
    command).  ``--dry-run`` wins over ``--yes``, so a stage's exact argv plus ``--dry-run`` previews what it
    will do and writes nothing (the question an approval asks)."""
    p.add_argument("--dry-run", "-n", action="store_true", help="print what would change and write nothing")
    p.add_argument("--yes", "-y", action="store_true",
                   help="apply without asking (needed when stdin is not a terminal)")
    p.add_argument("--json", action="store_true", help="with --dry-run: print the preview as one JSON object")
    p.add_argument("--stage", metavar="NAME", type=_stage_name,
                   help="the plan stage running this command (recorded in the journal entry)")
    p.add_argument("--attempt", metavar="N", type=_attempt, help="the attempt of that stage (journaled with it)")
    p.add_argument("--approved", metavar="DIGEST", type=_digest,
                   help="write only if the change is exactly the one an operator approved (the digest that "
                        "--dry-run --json printed); refused otherwise, with nothing written")


def origin(args: argparse.Namespace) -> dict:
    """Who asked for the change, as the journal records it: the plan stage and attempt, or nothing."""
    stage, attempt = getattr(args, "stage", None), getattr(args, "attempt", None)
    return {k: v for k, v in (("stage", stage), ("attempt", attempt)) if v is not None}


def _stage_name(text: str) -> str:
    from pfstui.values.names import NameSyntaxError, check_stage_name

    try:
        return check_stage_name(text)
    except NameSyntaxError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _attempt(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not an attempt number; write a number from 1 to 100,000")
    return int(text)


def _digest(text: str) -> str:
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not a preview digest; copy the 64 hex digits that "
                                         "--dry-run --json printed as its digest")
    return text


def add_limit(p: argparse.ArgumentParser) -> None:
    """``--limit PRODUCT.CHECK=WARN,FAIL`` of ``pfstui verify`` and of the certify gate: a plan's limits reach both, so
    a certify judges a product as the plan's verify stage did."""
    p.add_argument("--limit", metavar="PRODUCT.CHECK=WARN,FAIL", action="append",
                   help="replace a check's warn and fail limits, e.g. bias.mean=5,20 (repeatable; the table is "
                        "pfstui.verify.limits.CHECKS)")


def add_dates(p: argparse.ArgumentParser) -> None:
    p.add_argument("--begin-date", metavar="D",
                   help="TAI ISO start of validity, e.g. 2025-03-01T00:00:00 (open if omitted)")
    p.add_argument("--end-date", metavar="D", help="TAI ISO end of validity (exclusive; open if omitted)")


def add_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id", nargs="*", action="append", metavar="K=V",
                   help="one data ID per --id, e.g. --id instrument=PFS arm=r spectrograph=2 (repeatable)")
