"""The flags the Butler write subcommands share: ``--dry-run``/``--yes``, validity dates and ``--id``.

Why a module of its own: ``pfstui.cli.pfs`` registers define-profiles and certify-detectormaps on every start of
``pfstui`` (the app included), so these plain argparse helpers must not pull in the Butler subcommands'
plumbing (:mod:`pfstui.cli.butler` and the butler package), which is imported only when such a command runs.
"""

from __future__ import annotations

import argparse

__all__ = ["add_write_flags", "add_dates", "add_id"]


def add_write_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", "-n", action="store_true", help="print what would change and write nothing")
    p.add_argument("--yes", "-y", action="store_true",
                   help="apply without asking (needed when stdin is not a terminal)")


def add_dates(p: argparse.ArgumentParser) -> None:
    p.add_argument("--begin-date", metavar="D",
                   help="TAI ISO start of validity, e.g. 2025-03-01T00:00:00 (open if omitted)")
    p.add_argument("--end-date", metavar="D", help="TAI ISO end of validity (exclusive; open if omitted)")


def add_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id", nargs="*", action="append", metavar="K=V",
                   help="one data ID per --id, e.g. --id instrument=PFS arm=r spectrograph=2 (repeatable)")
