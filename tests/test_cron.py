"""Cron expressions of workflow rules, checked at fixed instants (never "now")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from workflow.cron import CronError, EverySchedule, parse_cron

TUESDAY = datetime(2026, 3, 10, 10, 7, 12, tzinfo=UTC)
ON_THE_HOUR = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0, *, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "when", "expected"),
    [
        ("*/15 * * * *", TUESDAY, at(10, 10, 15)),
        ("0 * * * *", ON_THE_HOUR, at(10, 11)),
        ("0 9 * * 1-5", at(14, 12), at(16, 9)),
        ("0 9 * * mon-fri", at(13, 9), at(16, 9)),
        ("30 2 1 * *", TUESDAY, at(1, 2, 30, month=4)),
        ("0 0 29 2 *", TUESDAY, datetime(2028, 2, 29, tzinfo=UTC)),
        ("0 0 31 2 1", at(1, month=1), at(2, month=2)),
        ("  5 4 * * *  ", TUESDAY, at(11, 4, 5)),
    ],
)
def test_five_fields_next(expr: str, when: datetime, expected: datetime) -> None:
    assert parse_cron(expr).next_after(when) == expected


@pytest.mark.parametrize(
    ("expr", "when", "expected"),
    [
        ("30 0 * * * *", ON_THE_HOUR, at(10, 10, 0, 30)),
        ("30 0 * * * *", at(10, 10, 0, 30), at(10, 11, 0, 30)),
        ("30 0 * * * *", TUESDAY, at(10, 11, 0, 30)),
        ("*/10 * * * * *", TUESDAY, at(10, 10, 7, 20)),
        ("0 30 9 * * *", TUESDAY, at(11, 9, 30)),
    ],
)
def test_six_fields_have_seconds_first(expr: str, when: datetime, expected: datetime) -> None:
    assert parse_cron(expr).next_after(when) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("@hourly", at(10, 11)),
        ("@daily", at(11)),
        ("@midnight", at(11)),
        ("@weekly", at(15)),
        ("@monthly", at(1, month=4)),
        ("@yearly", datetime(2027, 1, 1, tzinfo=UTC)),
        ("@annually", datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_descriptors(expr: str, expected: datetime) -> None:
    assert parse_cron(expr).next_after(TUESDAY) == expected


@pytest.mark.parametrize(
    ("expr", "when", "expected"),
    [
        ("@every 5m", TUESDAY, at(10, 10, 10)),
        ("@every 5m", at(10, 10, 10), at(10, 10, 15)),
        ("@every 1h30m", TUESDAY, at(10, 10, 30)),
        ("@every 7m", TUESDAY, at(10, 10, 12)),
        ("@every 1h", at(10, 23, 59, 59), at(11)),
    ],
)
def test_every_is_aligned_to_the_unix_epoch(expr: str, when: datetime, expected: datetime) -> None:
    assert parse_cron(expr).next_after(when) == expected
    assert expected.timestamp() % parse_cron(expr).interval.total_seconds() == 0


@pytest.mark.parametrize(
    ("expr", "when", "expected"),
    [
        ("0 * * * *", ON_THE_HOUR, at(10, 9)),
        ("0 * * * *", ON_THE_HOUR + timedelta(microseconds=1), ON_THE_HOUR),
        ("0 9 * * 1-5", at(16, 9), at(13, 9)),
        ("30 0 * * * *", at(10, 10, 0, 30), at(10, 9, 0, 30)),
        ("@daily", TUESDAY, at(10)),
        ("@every 5m", at(10, 10, 10), at(10, 10, 5)),
        ("@every 5m", TUESDAY, at(10, 10, 5)),
        ("@every 7m", TUESDAY, at(10, 10, 5)),
    ],
)
def test_prev_before(expr: str, when: datetime, expected: datetime) -> None:
    assert parse_cron(expr).prev_before(when) == expected


def test_every_truncates_to_whole_seconds_like_robfig() -> None:
    schedule = parse_cron("@every 1500ms")
    assert isinstance(schedule, EverySchedule)
    assert schedule.interval == timedelta(seconds=1)
    assert schedule.next_after(TUESDAY) == at(10, 10, 7, 13)


def test_expr_keeps_the_text_as_written() -> None:
    assert parse_cron("@every 90s").expr == "@every 90s"
    assert parse_cron(" 0 9 * * * ").expr == " 0 9 * * * "


PLUS_FIVE = timezone(timedelta(hours=5))


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("0 9 * * *", datetime(2026, 3, 11, 9, 0, tzinfo=PLUS_FIVE)),
        ("@every 4h", datetime(2026, 3, 10, 13, 0, tzinfo=PLUS_FIVE)),
    ],
)
def test_results_stay_in_the_input_time_zone(expr: str, expected: datetime) -> None:
    result = parse_cron(expr).next_after(datetime(2026, 3, 10, 12, 0, tzinfo=PLUS_FIVE))
    assert result == expected
    assert result.utcoffset() == timedelta(hours=5)


@pytest.mark.parametrize("expr", ["0 * * * *", "@every 5m"])
def test_naive_datetimes_are_refused(expr: str) -> None:
    schedule = parse_cron(expr)
    naive = datetime(2026, 3, 10, 10, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_after(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.prev_before(naive)


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("0 0 31 2 *", "never fires: no such date"),
        ("0 0 30 2 *", "never fires: no such date"),
        ("0 0 31 4,6,9,11 *", "never fires: no such date"),
        ("0 0 0 31 2 *", "never fires: no such date"),
        ("61 * * * *", 'bad minute field "61"'),
        ("0 24 * * *", 'bad hour field "24"'),
        ("0 0 32 * *", 'bad day-of-month field "32"'),
        ("0 0 * 13 *", 'bad month field "13"'),
        ("0 0 * * funday", 'bad day-of-week field "funday"'),
        ("60 0 * * * *", 'bad second field "60"'),
        ("R * * * *", 'bad minute field "R"'),
        ("* * * *", "expected 5 or 6 fields, got 4"),
        ("0 0 * * * * *", "expected 5 or 6 fields, got 7"),
        ("@reboot", 'unsupported descriptor "@reboot"'),
        ("@fortnightly", 'unsupported descriptor "@fortnightly"'),
        ("@every 0s", '@every needs at least 1s, got "0s"'),
        ("@every 500ms", '@every needs at least 1s, got "500ms"'),
        ("@every -5m", '@every needs at least 1s, got "-5m"'),
        ("@every banana", 'bad @every duration "banana"'),
        ("@every", 'bad @every duration ""'),
        ("", "empty expression"),
        ("   ", "empty expression"),
    ],
)
def test_invalid_expressions(expr: str, reason: str) -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(expr)
    assert str(caught.value) == reason
    assert isinstance(caught.value, ValueError)


def test_non_text_is_a_cron_error() -> None:
    with pytest.raises(CronError, match="expected text, got NoneType"):
        parse_cron(None)  # type: ignore[arg-type]
