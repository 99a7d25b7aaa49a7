"""Limit overrides (``--limit PRODUCT.CHECK=WARN,FAIL``, a plan's ``verify_limits``): applied to a copy of the table,
and every bad override is one line naming what is known."""

from __future__ import annotations

import pytest

from pfstui.verify.limits import CHECKS, LimitError, checks_with, override, parse_limit


def test_an_override_replaces_warn_and_fail_of_one_check_in_a_copy():
    table = checks_with(["bias.mean=5,20", "flat.spread=0.1,0.2", "bias.mean=6,21"])
    assert (table["bias"]["mean"].warn, table["bias"]["mean"].fail) == (6.0, 21.0)  # the later wins
    assert table["bias"]["mean"].unit == "ADU" and table["bias"]["noise"] == CHECKS["bias"]["noise"]
    assert (table["fiberFlat"]["spread"].warn, table["fiberFlat"]["spread"].fail) == (0.1, 0.2)  # flat = fiberFlat
    assert CHECKS["bias"]["mean"].warn == 10.0  # the shared table is untouched
    assert table["bias"]["mean"].judge(7) == "warn" and CHECKS["bias"]["mean"].judge(7) == "pass"


@pytest.mark.parametrize(("text", "message"), [
    ("bias.meen=1,2", "bias has no check 'meen'; its checks: mean, noise, outliers, diff_mean, diff_noise, "
                      "diff_outliers"),
    ("arc.mean=1,2", "verify has no product 'arc'; products: bias, dark, fiberFlat"),
    ("bias.mean=3,2", "bias.mean: warn and fail must be numbers with 0 <= warn <= fail, got 3, 2; write e.g. "
                      "bias.mean=10,30"),
    ("bias.mean=a,2", "bias.mean: warn and fail must be numbers"),
    ("bias.mean=1,nan", "bias.mean: warn and fail must be numbers"),
    ("bias.mean=-1,2", "bias.mean: warn and fail must be numbers"),
    ("bias.mean=5", "limit 'bias.mean=5' is not PRODUCT.CHECK=WARN,FAIL; write e.g. bias.mean=5,20"),
    ("mean=5,20", "limit 'mean=5,20' is not PRODUCT.CHECK=WARN,FAIL"),
])
def test_a_bad_override_is_one_line_naming_the_known_ones(text, message):
    with pytest.raises(LimitError) as err:
        checks_with([text])
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_numbers_from_a_plan_file_may_be_ints_but_not_booleans():
    assert override("dark", "dark_current", 0, 1)[1].fail == 1.0
    assert parse_limit(" dark.noise = 0.2 , 0.4 ")[2].warn == 0.2
    with pytest.raises(LimitError):
        override("bias", "mean", True, 2)
