"""``pfstui verify REPO COLLECTION DATASETTYPE``: verify a new calibration product, camera by camera, before certifying.

Why headless first: a night's script (and later a plan stage) must stop before a certify when a camera's product is
bad, so the exit status says it: 0 when every camera passes or only warns, 1 when some camera fails.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pfstui.cli.butler_flags import add_limit
from pfstui.cli.guard import print_table, say

__all__ = ["DEFAULT_AGAINST", "EXIT_FAILED", "add_subcommands", "cmd_verify"]

#: The CALIBRATION collection compared with when --against is not given (and the repository has it).
DEFAULT_AGAINST = "PFS/calib"
EXIT_FAILED = 1


def cmd_verify(args: argparse.Namespace) -> int:
    from pfstui.butler.gateway import ButlerGateway
    from pfstui.values.tai import to_time
    from pfstui.verify.limits import checks_with
    from pfstui.verify.report import verify

    limits = checks_with(args.limit or ())  # a bad limit is one line before the repository is opened
    at = to_time(args.at) if args.at else None
    with ButlerGateway(args.repo, read_only=True) as gw:
        against = args.against
        if against is None and gw.collection_type(DEFAULT_AGAINST) is not None:
            against = DEFAULT_AGAINST
        report = verify(gw, args.collection, args.dataset_type, against=against, at=at, limits=limits)
    if args.json:
        print(json.dumps(report.to_json(), sort_keys=True))
    else:
        _print_report(report)
    return EXIT_FAILED if report.failed else 0


def _print_report(report: Any) -> None:
    against = f"against {report.against} at {report.at} TAI" if report.against else "against nothing certified"
    say(f"{report.dataset_type} in {report.collection}, {against}")
    rows = []
    for cam in report.cameras:
        for check in cam.checks:
            rows.append([cam.camera, check.name, check.verdict.upper(), _number(check.value, check.limit.unit),
                         f"{check.limit.warn:g} / {check.limit.fail:g}", check.amp])
    print_table(["Camera", "Check", "Verdict", "Value", "Warn / fail", "Amp"], rows)
    for cam in report.cameras:
        if cam.current is None and report.against:
            say(f"{cam.camera}: nothing certified in {report.against} at {report.at}: comparisons n/a")
    verdicts = ", ".join(f"{cam.camera}: {cam.verdict}" for cam in report.cameras)
    say(f"FAILED: {', '.join(report.failed)} ({verdicts})" if report.failed else f"OK ({verdicts})")


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.4g} {unit}".rstrip()


def add_subcommands(sub: Any) -> None:
    p = sub.add_parser(
        "verify", help="check a new bias/dark/fiberFlat/detectorMap/fiberProfiles/fiberNorms per camera against the "
                       "certified one (exit 1 if one fails)",
        description="Verify DATASETTYPE (bias, dark, fiberFlat, a detectorMap_bootstrap/_candidate/_calib, "
        "fiberProfiles or fiberNorms_calib) in "
        "COLLECTION camera by camera: robust mean and noise per amplifier, hot/cold pixel fraction, dark current, flat "
        "median and spread, and the same of new - current (new / current for a flat) against the product certified in "
        "--against at --at; for a detectorMap, the fit's RMS and rejected lines from its task's log and the largest "
        "trace and wavelength shift against the current map (a candidate is compared with detectorMap_calib); for "
        "fiberProfiles, each fiber's profile width against the median and the current; for fiberNorms_calib, the "
        "norms' spread, bad norms and each fiber's change against the current. Reads "
        "the files as FITS. Exit status 0 when every camera passes or warns, 1 when a camera fails.")
    p.add_argument("repo", metavar="REPO")
    p.add_argument("collection", metavar="COLLECTION", help="RUN or chain holding the new product")
    p.add_argument("dataset_type", metavar="DATASETTYPE",
                   help="bias, dark, fiberFlat, detectorMap_bootstrap, detectorMap_candidate, detectorMap_calib, "
                        "fiberProfiles or fiberNorms_calib")
    p.add_argument("--against", metavar="CALIBCOLL",
                   help=f"CALIBRATION collection (or chain) holding the current product (default {DEFAULT_AGAINST} "
                        "when the repository has it)")
    p.add_argument("--at", metavar="DATE", help="TAI ISO time the current product is looked up at (default now), "
                                                "e.g. the begin of the validity range you will certify")
    add_limit(p)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=cmd_verify)
