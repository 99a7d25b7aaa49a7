"""``pfstui define-profiles`` and ``pfstui certify-detectormaps``: the two PFS-specific Butler actions.

Each prints its preview, then (like ``pfstui certify``) stops with ``--dry-run``, asks on a terminal, applies with
``--yes``, and refuses when stdin is not a terminal and ``--yes`` is missing; apply journals the exact effect.
This module is imported on every start of ``pfstui`` (the app included), so the Butler plumbing is imported
only in :func:`_preview_and_run`, when one of these commands runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from pfstui.cli.butler_flags import add_dates, add_write_flags
from pfstui.cli.readonly import changes

__all__ = ["add_subcommands"]


def cmd_define_profiles(args: argparse.Namespace) -> int:
    return _preview_and_run(args, lambda pfs, gw: pfs.preview_define_profiles(
        gw, args.instrument, args.name, args.bright or [], args.dark or [], update=args.update))


def cmd_certify_detectormaps(args: argparse.Namespace) -> int:
    return _preview_and_run(args, lambda pfs, gw: pfs.preview_certify_detectormaps(
        gw, args.collection, args.target, instrument=args.instrument, dataset_type=args.datasetType,
        begin=args.begin_date, end=args.end_date, run=args.run))


def _preview_and_run(args: argparse.Namespace, preview: Callable[[Any, Any], Any]) -> int:
    """Compute ``preview(pfstui.butler.pfs, gateway)`` and hand it to the Butler subcommands' preview -> apply."""
    # Imported here, not at the top: see the module docstring (start-up time of the app).
    import pfstui.butler.pfs as pfs
    from pfstui.cli.butler import open_gateway, run_preview

    with open_gateway(args) as gw:
        return run_preview(gw, preview(pfs, gw), args)


def add_subcommands(sub) -> None:
    p = sub.add_parser("define-profiles", help="define a fiber-profiles run (as defineFiberProfilesInputs.py)",
                       description="Define profiles run NAME: one group per --bright (with its --dark). Prints "
                       "what will be written and refuses bad visit lists before anything is written.")
    p.add_argument("repo")
    p.add_argument("instrument", help="instrument short name, e.g. PFS")
    p.add_argument("name", help="profiles_run name, e.g. run18_brn")
    p.add_argument("--bright", action="append", metavar="LIST", help="bright visits of one group, e.g. 113855..113863")
    p.add_argument("--dark", action="append", metavar="LIST", help="dark visits of the same group")
    p.add_argument("--update", action="store_true", help="allow redefining an existing run")
    add_write_flags(p)
    p.set_defaults(func=cmd_define_profiles)
    changes(p, "define-profiles", "the repository")

    p = sub.add_parser("certify-detectormaps", help="copy detectorMap_candidate to detectorMap_calib and certify it",
                       description="Copy each detectorMap_candidate in COLLECTION to a new detectorMap_calib in "
                       "COLLECTION/certify (a copy of its file) and certify it in TARGET. As certifyDetectorMaps.py, "
                       "a camera that several RUNs of COLLECTION hold is refused unless --run names one. Prints what "
                       "will be written and refuses overlapping ranges before anything is written.")
    p.add_argument("repo")
    p.add_argument("collection", help="collection holding detectorMap_candidate (e.g. u/me/detectorMap)")
    p.add_argument("target", help="CALIBRATION collection to certify into (e.g. PFS/calib)")
    p.add_argument("--instrument", default="PFS")
    p.add_argument("--datasetType", default="detectorMap_candidate")
    p.add_argument("--run", metavar="RUN", help="take the candidates from this one RUN of COLLECTION (when several "
                   "RUNs hold the same camera)")
    add_dates(p)
    add_write_flags(p)
    p.set_defaults(func=cmd_certify_detectormaps)
    changes(p, "certify-detectormaps", "the repository")
