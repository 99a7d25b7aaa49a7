"""Operator-written names: each rule and its fix, as the plan loader and the command line report them."""

from __future__ import annotations

import pytest

from pfstui.errors import UserError
from pfstui.values.names import (
    NameSyntaxError,
    check_collection,
    check_collection_glob,
    check_instrument_name,
    check_profiles_run,
    check_rerun,
    check_stage_name,
)


@pytest.mark.parametrize(
    ("check", "good"),
    [
        (check_stage_name, "certify-bias.2"),
        (check_collection, "PFS/calib"),
        (check_collection, "/PFS/special/bias"),
        (check_collection_glob, "bias/*"),
        (check_rerun, "u/me"),
        (check_profiles_run, "run18_brn"),
        (check_instrument_name, "PFS"),
    ],
)
def test_a_good_name_is_returned_unchanged(check, good: str) -> None:
    assert check(good) == good


@pytest.mark.parametrize(
    ("check", "bad", "problem", "fix"),
    [
        (check_stage_name, "-bias", "'-bias' is not a valid stage name", "it names log files"),
        (check_collection, "//", "collection name is empty", "such as PFS/calib"),
        (check_collection, "a, b", "contains spaces or commas", "one collection per list item"),
        (check_collection, "bias/*", "contains a glob character", "only a clean stage's 'glob'"),
        (check_collection_glob, "a b/*", "contains spaces or commas", "a single collection glob"),
        (check_rerun, "/u/me", "'/u/me' is not a collection prefix", "without leading or trailing '/'"),
        (check_rerun, "u/m e", "contains spaces or commas", "without spaces"),
        (check_profiles_run, "run 18", "is not a profiles_run name", "e.g. run18_brn"),
        (check_instrument_name, "lsst.obs.pfs.PrimeFocusSpectrograph", "not an instrument short name", "not the class path"),
    ],
)
def test_a_bad_name_names_its_problem_and_fix(check, bad: str, problem: str, fix: str) -> None:
    with pytest.raises(NameSyntaxError) as info:
        check(bad)
    assert problem in info.value.problem and fix in info.value.fix
    # An operator-facing error (one line: problem; fix) that pydantic validators may raise too.
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)
    assert str(info.value) == f"{info.value.problem}; {info.value.fix}"
