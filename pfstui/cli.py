"""Command-line entry point (filled in below)."""

import sys


def main(argv=None) -> int:
    print("pfstui: not yet", file=sys.stderr)
    return 2
