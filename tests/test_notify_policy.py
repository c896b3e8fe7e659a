"""The alert summary backoff, summary texts and hook bodies: pure, at fixed instants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from workflow.hooks import Hook, subscribers
from workflow.notify import QUIET, SummaryPolicy, SummaryState, hook_body, summary_body

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
POLICY = SummaryPolicy(MIN, timedelta(minutes=5))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# (seconds after T0, alerts pending then, sent?, wake at (seconds), interval after (minutes))
BURST = [
    (0, 1, True, 60, 1),  # the first alert goes out at once, a 1m interval starts
    (10, 1, False, 60, 1),  # alerts in the interval wait for its end
    (30, 3, False, 60, 1),
    (60, 3, True, 180, 2),  # the interval ends with alerts: they go out, the next is 2m
    (179, 2, False, 180, 2),
    (180, 2, True, 420, 4),  # 4m
    (420, 1, True, 720, 5),  # 8m, capped at the 5m maximum
    (720, 4, True, 1020, 5),  # and stays there
    (1020, 0, False, None, None),  # an interval ends quiet: back to quiet
    (1500, 1, True, 1560, 1),  # the next alert goes out at once, with a 1m interval again
]


def test_a_burst_is_summarized_per_interval_doubling_and_reset_when_quiet() -> None:
    state = QUIET
    for seconds, pending, sent, wake, minutes in BURST:
        decision = POLICY.decide(state, pending, at(seconds))
        assert decision.send is sent, seconds
        assert decision.wake_at == (None if wake is None else at(wake)), seconds
        expected = None if minutes is None else timedelta(minutes=minutes)
        assert decision.state.interval == expected, seconds
        state = decision.state


@pytest.mark.parametrize(
    ("state", "pending", "now", "wake"),
    [
        (QUIET, 0, at(0), None),  # nothing pending, nothing running: sleep until an alert
        (SummaryState(MIN, at(60)), 0, at(30), at(60)),  # an interval runs: look at its end
        (SummaryState(MIN, at(60)), 5, at(30), at(60)),
        (SummaryState(MIN, at(60)), 5, at(59.999), at(60)),
    ],
)
def test_nothing_goes_out_before_the_interval_ends(
    state: SummaryState, pending: int, now: datetime, wake: datetime | None
) -> None:
    decision = POLICY.decide(state, pending, now)
    assert (decision.send, decision.wake_at, decision.state) == (False, wake, state)


def test_a_late_look_at_the_end_of_an_interval_starts_the_next_from_now() -> None:
    decision = POLICY.decide(SummaryState(MIN, at(60)), 2, at(95))
    assert decision.send
    assert decision.state == SummaryState(2 * MIN, at(95) + 2 * MIN)


@pytest.mark.parametrize(
    ("low", "high", "message"),
    [
        (timedelta(0), MIN, "min_interval must be positive"),
        (2 * MIN, MIN, "less than min_interval"),
    ],
)
def test_policy_bounds(low: timedelta, high: timedelta, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SummaryPolicy(low, high)


@dataclass(frozen=True)
class A:
    kind: str = "failed"
    workflow: str = "w.toml"
    phase: str = "load"
    message: str = "load r1 failed: boom"


def test_one_alert_shows_whole() -> None:
    assert summary_body([A()]) == {
        "text": "flowlord alert: failed in w.toml (load): load r1 failed: boom"
    }
    assert summary_body([A(kind="bad_message", workflow="", phase="", message="x")]) == {
        "text": "flowlord alert: bad_message: x"
    }
    assert summary_body([A(phase="")])["text"].startswith("flowlord alert: failed in w.toml: ")


def test_several_alerts_show_a_count_a_line_each_and_how_many_more() -> None:
    alerts = [A(message=f"line {n}\nsecond line") for n in range(20)]
    text = summary_body(alerts, total=45)["text"]
    lines = text.splitlines()
    assert lines[0] == "flowlord: 45 alerts"
    assert lines[1] == "• failed in w.toml (load): line 0 second line"
    assert len(lines) == 22
    assert lines[-1] == "… and 25 more"
    assert summary_body([A(), A()])["text"].splitlines()[0] == "flowlord: 2 alerts"
    assert "more" not in summary_body([A(), A()])["text"]


def test_long_messages_are_clipped() -> None:
    one = summary_body([A(message="x" * 5000)])["text"]
    assert len(one) < 2100
    assert one.endswith("…")
    line = summary_body([A(message="y" * 500), A()])["text"].splitlines()[1]
    assert len(line) < 250


def test_hook_body_has_event_and_at_first_and_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    body = hook_body("task.failed", datetime(2026, 11, 21, 13, 0, tzinfo=paris), {"rec": 3})
    assert body == {"event": "task.failed", "at": "2026-11-21T12:00:00Z", "rec": 3}
    assert list(body) == ["event", "at", "rec"]
    spoofed = hook_body("workflow.paused", T0, {"event": "x", "at": "y", "workflow": "w"})
    assert spoofed == {"event": "workflow.paused", "at": "2026-11-21T12:00:00Z", "workflow": "w"}
    with pytest.raises(ValueError, match=r"unknown hook event 'task\.done'"):
        hook_body("task.done", T0, {})


def test_subscribers_post_each_event_once_per_url() -> None:
    hooks = [
        Hook(url="http://a/", events=("task.failed", "workflow.paused")),
        Hook(url="http://b/", events=("task.failed",)),
        Hook(url="http://a/", events=("task.failed",)),
    ]
    assert subscribers(hooks) == {
        "task.failed": ("http://a/", "http://b/"),
        "workflow.paused": ("http://a/",),
    }
