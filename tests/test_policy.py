"""Retry policy (constant and exponential, deterministic jitter), ttl, and cron catch-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from workflow.cron import parse_cron
from workflow.policy import (
    PolicyRuleError,
    RetryPolicy,
    catchup_of,
    jitter_fraction,
    policy_problems,
    ttl_of,
)
from workflow.schedule import missed_fires

NY = ZoneInfo("America/New_York")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_default_is_one_second_plus_up_to_40_percent() -> None:
    policy = RetryPolicy.of({})
    waits = {policy.wait(1, run_id=f"r{n}", task="t") for n in range(200)}
    assert all(timedelta(seconds=1) <= w < timedelta(seconds=1.4) for w in waits)
    assert len(waits) > 150  # spread out, not one value


def test_the_jitter_depends_only_on_run_task_and_attempt() -> None:
    policy = RetryPolicy.of({"retry_delay": "10m"})
    first = policy.wait(2, run_id="r1", task="load")
    assert first == policy.wait(2, run_id="r1", task="load")
    assert first != policy.wait(2, run_id="r2", task="load")
    assert 0 <= jitter_fraction("r1", "load", 2) < 1


def test_exponential_backoff_doubles_up_to_max_delay() -> None:
    """The README's worked example: retry_delay=1m, max_delay=1h."""
    policy = RetryPolicy.of({"retry_delay": "1m", "backoff": "exponential", "max_delay": "1h"})
    for attempt, base in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 32)]:
        jitter = jitter_fraction("run", "t", attempt)
        assert policy.wait(attempt, run_id="run", task="t") == timedelta(minutes=base) * (
            1 + 0.4 * jitter
        )
    assert policy.wait(7, run_id="run", task="t") == timedelta(hours=1)  # 64m capped
    assert policy.wait(1000, run_id="run", task="t") == timedelta(hours=1)  # no overflow
    assert policy.wait(2**62, run_id="run", task="t") == timedelta(hours=1)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"backoff": "linear"}, "backoff=linear (one of constant, exponential)"),
        ({"max_delay": "0s"}, "max_delay=0s (must be positive)"),
        ({"retry_delay": "-1s"}, "retry_delay=-1s (must be positive)"),
        ({"max_delay": "99999999h"}, "max_delay=99999999h (out of range)"),
    ],
)
def test_bad_retry_rules(rule: dict[str, str], message: str) -> None:
    with pytest.raises(PolicyRuleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RetryPolicy.of(rule)
    assert [str(err) for err in policy_problems(rule)] == [message]


def test_ttl_and_catchup() -> None:
    assert ttl_of({}, timedelta(hours=4)) == timedelta(hours=4)
    assert ttl_of({"ttl": "30m"}, timedelta(hours=4)) == timedelta(minutes=30)
    assert catchup_of({}) == "latest"
    assert catchup_of({"catchup": "all"}) == "all"
    with pytest.raises(PolicyRuleError, match="one of latest, none, all"):
        catchup_of({"catchup": "every"})


@pytest.mark.parametrize(
    ("catchup", "cap", "fired", "older"),
    [
        ("latest", 100, ["05:00"], True),
        ("none", 100, [], True),
        ("all", 100, ["02:00", "03:00", "04:00", "05:00"], False),
        ("all", 2, ["04:00", "05:00"], True),
    ],
)
def test_missed_fires_after_downtime(catchup: str, cap: int, fired: list[str], older: bool) -> None:
    found, left_out = missed_fires(
        parse_cron("0 * * * *"), last=at("2026-11-21T01:00:00+00:00"),
        now=at("2026-11-21T05:30:00+00:00"), zone=UTC, catchup=catchup, cap=cap,
    )  # fmt: skip
    assert [f.strftime("%H:%M") for f in found] == fired
    assert left_out is older


def test_nothing_missed_when_the_last_fire_is_the_latest_instant() -> None:
    found, left_out = missed_fires(
        parse_cron("0 * * * *"), last=at("2026-11-21T05:00:00+00:00"),
        now=at("2026-11-21T05:30:00+00:00"), zone=UTC, catchup="all",
    )  # fmt: skip
    assert (found, left_out) == ([], False)


def test_missed_fires_keep_the_dst_policy() -> None:
    """Fall back in New York: 01:30 happens twice and fires once; catch-up agrees."""
    found, _ = missed_fires(
        parse_cron("30 1 * * *"), last=at("2026-10-31T01:30:00-04:00"),
        now=at("2026-11-01T03:00:00-05:00"), zone=NY, catchup="all",
    )  # fmt: skip
    assert [f.astimezone(UTC).isoformat() for f in found] == ["2026-11-01T05:30:00+00:00"]
