"""Go-style durations: the syntax workflow files use for offsets and `@every`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from workflow.duration import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-4h", timedelta(hours=-4)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("10ms", timedelta(milliseconds=10)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("0", timedelta(0)),
        ("-0", timedelta(0)),
        ("2h45m30.5s", timedelta(hours=2, minutes=45, seconds=30, milliseconds=500)),
        ("+5m", timedelta(minutes=5)),
        ("-1.5h", timedelta(hours=-1, minutes=-30)),
        (".5s", timedelta(milliseconds=500)),
        ("5.s", timedelta(seconds=5)),
        ("250us", timedelta(microseconds=250)),
        ("250\u00b5s", timedelta(microseconds=250)),
        ("250\u03bcs", timedelta(microseconds=250)),
        ("3000ns", timedelta(microseconds=3)),
        ("1h1h", timedelta(hours=2)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_sub_microsecond_precision_is_rounded() -> None:
    assert parse_duration("1400ns") == timedelta(microseconds=1)
    assert parse_duration("1600ns") == timedelta(microseconds=2)


@pytest.mark.parametrize(
    "text",
    ["", "10", "5d", "abc", "-", "+", ".s", "1h 30m", " 5m", "5m ", "1..5s", "1e3s", "00", "h"],
)
def test_bad_duration_names_the_input(text: str) -> None:
    with pytest.raises(DurationError, match="invalid duration") as caught:
        parse_duration(text)
    assert str(caught.value) == f'invalid duration "{text}"'
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(hours=1, minutes=30), "1h30m0s"),
        (timedelta(hours=-4), "-4h0m0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(seconds=59, milliseconds=250), "59.25s"),
        (timedelta(milliseconds=90), "90ms"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(microseconds=7), "7\u00b5s"),
        (timedelta(hours=2, minutes=45, seconds=30, milliseconds=500), "2h45m30.5s"),
        (timedelta(days=2, microseconds=1), "48h0m0.000001s"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text
    assert parse_duration(text) == delta


@pytest.mark.parametrize(
    "text", ["-4h", "90s", "1h30m", "10ms", "1.5h", "0", "2h45m30.5s", "+5m", "3us", "-250ms"]
)
def test_format_round_trips(text: str) -> None:
    delta = parse_duration(text)
    assert parse_duration(format_duration(delta)) == delta
