"""``pfstui certify|decertify|clean|calibs|journal|undo|remove-runs|remove-collections``: the scriptable Butler tool.

Why: these mirror drp_stella's butlerCertify.py / butlerDecertify.py / butlerCleanRun.py /
butlerListCalibrations.py and ``butler remove-runs|remove-collections`` argument for argument, so an operator's
scripts keep working, but each one prints exactly what it will change before writing, refuses conflicts up
front, asks for confirmation on a terminal (``--yes`` skips it, ``--dry-run`` only previews, and a
non-terminal stdin without ``--yes`` is refused), journals every change and can undo certify/decertify.

:func:`add_subcommands` is wired into ``pfstui.cli.main``; every :class:`~pfstui.errors.UserError` is printed
as one line (exit 2) by :func:`pfstui.cli.guard.run_guarded`.  :func:`main` runs these subcommands on their own (tests, ``python -m``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from pfstui.butler.apply import apply
from pfstui.butler.certify import preview_certify, preview_decertify
from pfstui.butler.errors import ConflictError, GatewayError, StalePreviewError
from pfstui.butler.gateway import ButlerGateway
from pfstui.butler.preview import Preview
from pfstui.butler.reconcile import Outcome, reconcile_all
from pfstui.butler.removal import (
    preview_clean,
    preview_remove_collections,
    preview_remove_runs,
)
from pfstui.butler.undo import find_entry, preview_undo, undone_by
from pfstui.butler.values import data_id_text, same_repo
from pfstui.cli.argtypes import count
from pfstui.cli.butler_flags import add_dates, add_id, add_limit, add_write_flags, origin
from pfstui.cli.guard import CliError, print_table, run_guarded, say
from pfstui.cli.readonly import HELP as READ_ONLY_HELP
from pfstui.cli.readonly import accept_everywhere, changes
from pfstui.infra.journal import default_journal

__all__ = ["ConfirmationError", "add_subcommands", "main", "open_gateway", "run_preview"]


class ConfirmationError(GatewayError):
    """Confirmation was needed but cannot be asked (stdin is not a terminal)."""


EXIT_REFUSED = 1


# --- shared plumbing -----------------------------------------------------------------------------------------
def open_gateway(args: argparse.Namespace, repo: str | None = None) -> ButlerGateway:
    """The gateway a subcommand previews and writes through (read-only under ``pfstui --read-only``)."""
    return ButlerGateway(repo or args.repo, read_only=bool(getattr(args, "read_only", False)))


def _confirm(preview: Preview) -> bool:
    if not sys.stdin.isatty():
        raise ConfirmationError(f"stdin is not a terminal, so pfstui cannot ask before applying {preview.action}; "
                                "pass --yes to apply, or --dry-run to only preview")
    warn = "" if preview.undoable else " This cannot be undone."
    try:
        answer = input(f"Apply {preview.action}?{warn} [y/N] ")
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def run_preview(gw: ButlerGateway, preview: Preview, args: argparse.Namespace) -> int:
    """Print the preview, then refuse, stop (dry run), confirm, or apply and report the journal entry."""
    preview.origin = origin(args)
    if getattr(args, "json", False):
        if not args.dry_run:
            raise CliError("--json prints the preview only", "add --dry-run (and leave --json out to apply)")
        print(_json_line(preview.to_json()))
        return EXIT_REFUSED if preview.blocked else 0
    for line in preview.lines():
        say(line)
    # A stage's stdout and stderr are one log file: the preview goes before a refusal's line, and is there to
    # read while a long apply runs.
    sys.stdout.flush()
    _check_approved(preview, args)
    if preview.blocked:
        if args.dry_run:
            say(f"pfstui: would be refused: {preview.blocker_text()}", file=sys.stderr)
            return EXIT_REFUSED
        raise ConflictError(f"{preview.action} refused, nothing written: {preview.blocker_text()}")
    if preview.is_noop:
        return 0
    if args.dry_run:
        print("Dry run: nothing written.")
        return 0
    gw.check_writable(preview.action)
    if not args.yes and not _confirm(preview):
        print("Cancelled; nothing written.")
        return EXIT_REFUSED
    result = apply(gw, preview, journal=default_journal())
    say(result.summary[:1].upper() + result.summary[1:] + ".")
    if result.entry is not None:
        hint = f" (undo with: pfstui undo {result.entry.id})" if result.entry.get("undoable") else ""
        print(f"Journal entry {result.entry.id}{hint}")
    return 0



def _check_approved(preview: Preview, args: argparse.Namespace) -> None:
    """An approved stage writes only the change its operator saw (see :meth:`Preview.digest`)."""
    wanted = getattr(args, "approved", None)
    if wanted and preview.digest() != wanted:
        raise StalePreviewError(f"{preview.action} refused, nothing written: what it would change now is not what "
                            "was approved (the registry changed since the preview)",
                            "restart the stage: it waits for a new approval of a fresh preview")


# --- commands ------------------------------------------------------------------------------------------------
def cmd_certify(args: argparse.Namespace) -> int:
    from pfstui.verify.gate import parse_overrides

    from pfstui.verify.limits import checks_with

    overrides = parse_overrides(args.override or [])
    checks_with(args.limit or ())  # a bad limit is one line before the repository is opened
    with open_gateway(args) as gw:
        preview = preview_certify(gw, args.input, args.target, args.dataset_type, begin=args.begin_date,
                                  end=args.end_date, data_ids=args.id or [], search_all_inputs=args.search_all_inputs,
                                  whole_product=args.whole_product, overrides=overrides, limits=args.limit or [])
        return run_preview(gw, preview, args)


def cmd_decertify(args: argparse.Namespace) -> int:
    with open_gateway(args) as gw:
        preview = preview_decertify(gw, args.collection, args.dataset_type, begin=args.begin_date,
                                    end=args.end_date, data_ids=args.id or [], everything=args.all)
        return run_preview(gw, preview, args)


def cmd_clean(args: argparse.Namespace) -> int:
    with open_gateway(args) as gw:
        preview = preview_clean(gw, args.glob, args.dataset_types, where=args.where or "", data_ids=args.id or [])
        return run_preview(gw, preview, args)


def cmd_remove_runs(args: argparse.Namespace) -> int:
    with open_gateway(args) as gw:
        return run_preview(gw, preview_remove_runs(gw, args.glob, unlink=args.unlink), args)


def cmd_remove_collections(args: argparse.Namespace) -> int:
    with open_gateway(args) as gw:
        preview = preview_remove_collections(gw, args.glob, remove_from_parents=args.remove_from_parents)
        return run_preview(gw, preview, args)


def _reconciled(journal, args: argparse.Namespace) -> list[Outcome]:
    """Decide what killed processes left pending (opening their repositories only if there is any), and say so."""
    outcomes = reconcile_all(journal, lambda repo: open_gateway(args, repo))
    for outcome in outcomes:
        if outcome.state != "in progress":
            say(f"pfstui: {outcome.message()}", file=sys.stderr)
    return outcomes


def cmd_undo(args: argparse.Namespace) -> int:
    journal = default_journal()
    _reconciled(journal, args)
    entry = find_entry(journal, args.entry)
    repo = entry.data.get("repository")
    if not repo:
        raise GatewayError(f"journal entry {entry.id} names no repository; it cannot be undone")
    with open_gateway(args, str(repo)) as gw:
        return run_preview(gw, preview_undo(gw, entry, journal=journal), args)


def cmd_calibs(args: argparse.Namespace) -> int:
    """Validity ranges as a table (butlerListCalibrations.py), streamed page by page from the gateway."""
    with ButlerGateway(args.repo, read_only=True) as gw:
        rows: list[list[str]] = []
        collections: set[str] = set()
        for page in gw.associations(args.collection, args.dataset_type):
            for a in page:
                collections.add(a.collection)
                rows.append([a.dataset_type, data_id_text(a.data_id), a.begin or "-", a.end or "-", a.run,
                             a.collection, a.dataset_id])
    if not rows:
        what = f"{args.dataset_type} " if args.dataset_type else ""
        say(f"No {what}validity ranges in {args.collection}.")
        return 0
    header = ["Type", "Data ID", "Begin (TAI)", "End (TAI)", "Run", "Collection", "Dataset"]
    if len(collections) == 1:
        header.pop(5)
        for r in rows:
            r.pop(5)
    print_table(header, rows)
    return 0


def cmd_journal(args: argparse.Namespace) -> int:
    journal = default_journal()
    unsettled = [o for o in _reconciled(journal, args) if o.state in ("uncertain", "in progress")]
    entries, problems = journal.entries()
    undone = undone_by(entries)
    shown = entries if args.all else [e for e in entries if e.data.get("kind") == "butler"]
    repo = _journal_repo(args)
    if repo is not None:
        shown = [e for e in shown if same_repo(str(e.data.get("repository", "")), repo)]
        unsettled = [o for o in unsettled if same_repo(str(o.entry.data.get("repository", "")), repo)]
    shown = shown[-args.limit:] if args.limit > 0 else shown
    if args.json:
        for e in shown:
            print(_json_line(e.to_dict()))
    elif not shown:
        where = f" for {repo}" if repo is not None else ""
        say(f"No Butler actions{where} in the journal {journal.path}.")
    else:
        for e in shown:
            say(_journal_line(e, undone))
    if not args.json:
        for o in unsettled:  # not entries (yet): listed after them, never undoable
            say(_journal_line(o.entry, {}, status=f"pending: {o.state}"))
    if problems:
        say(f"pfstui: {len(problems)} unreadable journal line(s) skipped ({problems[0]})", file=sys.stderr)
    return 0


def _journal_repo(args: argparse.Namespace) -> str | None:
    """The repository ``pfstui journal`` lists: ``--repo`` (of ``pfstui`` or of the command), else that of the
    session used last (``pfstui run``, ``pfstui status``); None (every repository) with ``--all-repos`` or when
    there is neither."""
    if getattr(args, "all_repos", False):
        return None
    if getattr(args, "repo", None):
        return str(ButlerGateway(args.repo).repo)
    from pfstui.cli.queue import last_session_repo

    repo = last_session_repo()
    if repo is not None:
        say(f"pfstui: the journal of {repo} (the last session's repository; --all-repos lists every one)",
            file=sys.stderr)
    return repo


def _json_line(obj: Any) -> str:
    """JSON for a terminal: JSON escapes C0 controls itself; DEL and the C1 controls (``\x9b`` is a CSI on some
    terminals) are escaped here too, which keeps the line valid JSON (they can only be inside strings)."""
    text = json.dumps(obj, ensure_ascii=False, default=str)
    return re.sub("[\x7f-\x9f]", lambda m: f"\\u{ord(m.group()):04x}", text)


def _journal_line(e, undone: dict[str, str], status: str = "") -> str:
    d = e.data
    if not status:
        status = (f"undone by {undone[e.id]}" if e.id in undone else "undoable" if d.get("undoable") else "final")
        if (d.get("committed") or {}).get("reconciled"):
            status += ", reconciled"
    summary = d.get("summary") or d.get("action") or ""
    origin = d.get("origin") or {}
    by = f"  (stage {origin.get('stage')}#{origin.get('attempt', '?')})" if origin.get("stage") else ""
    return (f"{e.id}  {e.ts[:19]}Z  {e.user}@{e.host}  {d.get('action', d.get('kind', '?')):<18}  "
            f"[{status}]  {summary}{by}  ({d.get('repository', '')})")


# --- registration --------------------------------------------------------------------------------------------
def add_subcommands(sub: Any) -> None:
    """Register the Butler subcommands on ``pfstui``'s subparsers (``parser.add_subparsers()``)."""
    p = sub.add_parser("certify", help="certify calibrations with a validity range (as butlerCertify.py), safely",
                       description="Certify DATASET_TYPE from INPUT into the CALIBRATION collection TARGET. A "
                       "CHAINED input means its first child unless --search-all-inputs or --whole-product. Prints "
                       "what will change and refuses overlapping ranges before anything is written. A product "
                       "pfstui verify knows is verified first (as pfstui verify, against TARGET at the begin date, "
                       "with the same --limit overrides): a camera that fails is left out unless --override names it "
                       "with a reason.")
    p.add_argument("repo")
    p.add_argument("input", help="collection holding the new calibrations (e.g. u/me/bias, the -o of pipetask run)")
    p.add_argument("target", help="CALIBRATION collection (created if missing), e.g. PFS/calib")
    p.add_argument("dataset_type", help="e.g. bias, dark, fiberFlat")
    add_dates(p)
    add_id(p)
    p.add_argument("--search-all-inputs", action="store_true", help="search the whole input chain, not its first child")
    p.add_argument("--whole-product", action="store_true",
                   help="search every RUN of the input chain named INPUT/... (newest first), not its first child: "
                   "after a partial rerun the product is spread over several (what a plan's certify stage does)")
    p.add_argument("--override", action="append", metavar="CAMERA=REASON",
                   help="certify a camera that failed verification anyway, saying why (journaled), e.g. "
                   "--override 'arm=r spectrograph=1=offset known, re-taken Monday' (or 'r1=...'; repeatable)")
    add_limit(p)
    add_write_flags(p)
    p.set_defaults(func=cmd_certify)
    changes(p, "certify", "the repository")

    p = sub.add_parser("decertify", help="clear a validity window (as butlerDecertify.py), with a preview and undo",
                       description="Remove DATASET_TYPE's validity in [begin, end) from COLLECTION; ranges that stick "
                       "out are trimmed or split. Without --id every data ID is affected.")
    p.add_argument("repo")
    p.add_argument("collection", help="CALIBRATION collection, e.g. PFS/calib")
    p.add_argument("dataset_type")
    add_dates(p)
    add_id(p)
    p.add_argument("--all", action="store_true", help="with no dates and no --id: clear every range of the type")
    add_write_flags(p)
    p.set_defaults(func=cmd_decertify)
    changes(p, "decertify", "the repository")

    p = sub.add_parser("clean", help="delete datasets and files from RUN collections (as butlerCleanRun.py)",
                       description="Delete DATASET_TYPE datasets (registry entries and files) from every RUN "
                       "collection matching GLOB (quote it: 'u/me/bias/*'). Only RUN collections match. Not undoable.")
    p.add_argument("repo")
    p.add_argument("glob", help="RUN collection glob, e.g. 'u/me/bias/*'")
    p.add_argument("dataset_types", nargs="+", metavar="TYPE", help="dataset types to delete, e.g. biasProc")
    p.add_argument("--where", help="query expression restricting the datasets, e.g. \"visit IN (11, 12)\"")
    add_id(p)
    add_write_flags(p)
    p.set_defaults(func=cmd_clean)
    changes(p, "clean", "the repository")

    p = sub.add_parser("calibs", help="list validity ranges (as butlerListCalibrations.py)")
    p.add_argument("repo")
    p.add_argument("collection", help="CALIBRATION collection or a chain containing one")
    p.add_argument("dataset_type", nargs="?", help="only this dataset type")
    p.set_defaults(func=cmd_calibs)

    p = sub.add_parser("journal", help="list the journaled Butler actions (newest last) and whether they can be undone")
    p.add_argument("--limit", type=count, default=20, help="show the last N entries (0 = all; default 20)")
    p.add_argument("--all", action="store_true", help="include non-Butler entries (launches, kills, ...)")
    p.add_argument("--repo", default=argparse.SUPPRESS,
                   help="only entries for this repository (default: pfstui --repo, else the last session's)")
    p.add_argument("--all-repos", action="store_true", help="entries for every repository")
    p.add_argument("--json", action="store_true", help="print the raw entries as JSON lines")
    p.set_defaults(func=cmd_journal)

    p = sub.add_parser("undo", help="undo a journaled certify/decertify (or an undo) exactly")
    p.add_argument("entry", help="journal entry id (or a unique prefix/suffix, or 'last')")
    add_write_flags(p)
    p.set_defaults(func=cmd_undo)
    changes(p, "undo", "the repository")

    p = sub.add_parser("remove-runs", help="remove RUN collections and their datasets (as butler remove-runs)")
    p.add_argument("repo")
    p.add_argument("glob", help="RUN collection name or glob")
    p.add_argument("--unlink", action="store_true", help="also remove the runs from the chains that contain them")
    add_write_flags(p)
    p.set_defaults(func=cmd_remove_runs)
    changes(p, "remove-runs", "the repository")

    p = sub.add_parser("remove-collections", help="remove CHAINED/TAGGED/CALIBRATION collections "
                       "(as butler remove-collections)")
    p.add_argument("repo")
    p.add_argument("glob", help="collection name or glob")
    p.add_argument("--remove-from-parents", action="store_true", help="also unlink them from their parent chains")
    add_write_flags(p)
    p.set_defaults(func=cmd_remove_collections)
    changes(p, "remove-collections", "the repository")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pfstui", description="pfstui's Butler subcommands")
    parser.add_argument("--read-only", action="store_true", help=READ_ONLY_HELP)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add_subcommands(sub)
    accept_everywhere(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one Butler subcommand; user errors are one line on stderr (exit 2), never a traceback."""
    return run_guarded(build_parser().parse_args(argv))

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
