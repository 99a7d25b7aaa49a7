"""``pfstui define-profiles`` and ``pfstui certify-detectormaps``: the two PFS-specific Butler actions."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_subcommands"]


def cmd_define_profiles(args: argparse.Namespace) -> int:
    from pfstui.butler.pfs import define_profiles

    result = define_profiles(args.repo, args.instrument, args.name, args.bright or [], args.dark or [], update=args.update)
    for line in result.summary:
        print(line)
    _journal(args.repo, result)
    return 0


def cmd_certify_detectormaps(args: argparse.Namespace) -> int:
    from pfstui.butler.pfs import certify_detector_maps

    result = certify_detector_maps(
        args.repo, args.collection, args.target, instrument=args.instrument, dataset_type=args.datasetType,
        begin=args.begin_date, end=args.end_date,
    )
    for line in result.summary:
        print(line)
    _journal(args.repo, result)
    return 0


def _journal(repo: str, result) -> None:
    """Record a Butler change in the action journal."""
    from pfstui.infra.journal import default_journal

    default_journal().append({"kind": "butler", "action": result.action, "repository": str(Path(repo).absolute()),
                               "effect": result.effect})


def add_subcommands(sub) -> None:
    p = sub.add_parser("define-profiles", help="define a fiber-profiles run (as defineFiberProfilesInputs.py)")
    p.add_argument("repo")
    p.add_argument("instrument", help="instrument short name, e.g. PFS")
    p.add_argument("name", help="profiles_run name, e.g. run18_brn")
    p.add_argument("--bright", action="append", metavar="LIST", help="bright visits of one group, e.g. 113855..113863")
    p.add_argument("--dark", action="append", metavar="LIST", help="dark visits of the same group")
    p.add_argument("--update", action="store_true", help="allow redefining an existing run")
    p.set_defaults(func=cmd_define_profiles)

    p = sub.add_parser("certify-detectormaps", help="copy detectorMap_candidate to detectorMap_calib and certify it")
    p.add_argument("repo")
    p.add_argument("collection", help="collection holding detectorMap_candidate (e.g. u/me/detectorMap)")
    p.add_argument("target", help="CALIBRATION collection to certify into (e.g. PFS/calib)")
    p.add_argument("--instrument", default="PFS")
    p.add_argument("--datasetType", default="detectorMap_candidate")
    p.add_argument("--begin-date", help="TAI ISO start of validity (open if omitted)")
    p.add_argument("--end-date", help="TAI ISO end of validity (open if omitted)")
    p.set_defaults(func=cmd_certify_detectormaps)
