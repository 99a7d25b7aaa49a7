"""Visit-list syntax (a..b:stride^c) and TAI dates."""

import pytest

from pfstui.values.tai import DateError, check_tai, make_timespan
from pfstui.values.visitlist import (
    VisitListError,
    format_integer_list,
    parse_integer_list,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("51", [51]),
        ("51..53", [51, 52, 53]),
        ("100..110:5", [100, 105, 110]),
        ("51..52^55^57..58", [51, 52, 55, 57, 58]),
        ("113855..113857 ^ 113855", [113855, 113856, 113857]),
    ],
)
def test_parse(text, expected):
    assert parse_integer_list(text) == expected


@pytest.mark.parametrize("text, fragment", [("", "empty"), ("5..x", "bad visit list element"), ("9..3", "ends before"),
                                             ("1..5:0", "stride must be positive"), ("1,2", "bad visit list element")])
def test_parse_errors(text, fragment):
    with pytest.raises(VisitListError, match=fragment):
        parse_integer_list(text)


def test_format_roundtrip():
    values = [1, 2, 3, 7, 9, 10]
    assert format_integer_list(values) == "1..3^7^9..10"
    assert parse_integer_list(format_integer_list(values)) == values


def test_dates():
    assert check_tai(" 2025-03-01T00:00:00 ") == "2025-03-01T00:00:00"
    assert check_tai("") is None
    for bad in ("2025-13-01T00:00:00", "yesterday", "2025/03/01"):
        with pytest.raises(DateError, match="2025-03-01T00:00:00"):
            check_tai(bad)
    with pytest.raises(DateError, match="not before"):
        make_timespan("2026-01-01T00:00:00", "2025-01-01T00:00:00")
    span = make_timespan("2025-01-01T00:00:00", None)
    assert span.end is None and span.begin.scale == "tai"
