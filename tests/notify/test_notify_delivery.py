"""Couriers: retries with backoff while an endpoint is down, giving up after 24 h, in order per
URL, one URL never waiting for another, and a bounded stop."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from flowlord.config import RunConfig
from flowlord.notify import Notifier, notifier_for
from tests.notify_helpers import Clock, deliveries, drive, notifier
from tests.webhooks import Endpoint, endpoint
from workflow.hooks import Hook

CHANGED = ("workflow.changed",)


def workflows(hook: Endpoint) -> list[object]:
    return [body["workflow"] for body in hook.bodies()]


def test_an_endpoint_down_for_a_while_gets_each_delivery_once_in_order_after_backoff(
    db: Path, clock: Clock, hook: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    hook.down()
    with notifier(db, clock, hooks=[Hook(url=hook.url, events=CHANGED)]) as notify:
        courier = notify.couriers[hook.url]
        notify.workflow_changed(["a.toml", "b.toml"])
        notify.producer.step(clock.at(0))
        waits = []
        for _ in range(4):  # refused: 1 s, 2 s, 4 s, 8 s
            wake = drive(courier, clock.now)
            assert wake is not None
            waits.append((wake - clock.now).total_seconds())
            assert courier.step(wake - timedelta(milliseconds=1)) == wake  # not before its time
            clock.now = wake
        assert waits == [1, 2, 4, 8]
        hook.up()
        assert drive(courier, clock.now) is None
        notify.workflow_changed(["c.toml"])
        notify.producer.step(clock.at(20))
        assert drive(courier, clock.now) is None
    assert workflows(hook) == ["a.toml", "b.toml", "c.toml"]
    assert [post.headers["Idempotency-Key"] for post in hook.posts] == ["1", "2", "3"]
    assert [row[3] for row in deliveries(db)] == [5, 1, 1]  # attempts
    assert [row[4] for row in deliveries(db)] == [True, True, True]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1  # not 4


def test_backoff_is_capped_at_five_minutes_and_gives_up_after_24_hours(
    db: Path, clock: Clock, hook: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    hook.status = 500
    with notifier(db, clock, hooks=[Hook(url=hook.url, events=CHANGED)]) as notify:
        courier = notify.couriers[hook.url]
        notify.workflow_changed(["doomed.toml"])
        notify.producer.step(clock.at(0))
        waits = []
        while (wake := drive(courier, clock.now)) is not None:  # None: given up
            waits.append(wake - clock.now)
            clock.now = wake
        assert waits[:10] == [timedelta(seconds=2**n) for n in range(9)] + [timedelta(minutes=5)]
        assert set(waits[10:]) == {timedelta(minutes=5)}
        assert clock.now - clock.at(0) >= timedelta(hours=24)
        assert clock.now - clock.at(0) < timedelta(hours=24, minutes=5)
        clock.at(0)
        [row] = deliveries(db)
        assert row[5] and not row[4]  # gave up, not delivered
        assert row[6] == "HTTP 500 Internal Server Error"
        assert row[3] == hook.attempts
        hook.status = 200
        notify.workflow_changed(["later.toml"])  # the next one goes out
        notify.producer.step(clock.at(25 * 3600))
        assert drive(courier, clock.now) is None
    assert workflows(hook) == ["later.toml"]
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    message = error.getMessage()
    assert "gave up delivering workflow.changed (seq 1)" in message
    assert f"127.0.0.1:{hook.port}/hook" in message
    assert message.endswith("HTTP 500 Internal Server Error")


def test_a_hanging_endpoint_delays_no_other_and_stop_is_prompt(db: Path, clock: Clock) -> None:
    """The threads, for real: the hanging endpoint holds its first POST for the whole test."""
    with endpoint() as stuck, endpoint() as fine:
        stuck.hanging.set()
        hooks = [Hook(url=stuck.url, events=CHANGED), Hook(url=fine.url, events=CHANGED)]
        notify = Notifier(db, hooks=hooks, is_leader=lambda: True, now=clock, timeout=5.0)
        notify.start()
        try:
            notify.workflow_changed(["one.toml"])
            notify.workflow_changed(["two.toml"])
            assert fine.wait_for(2) == [
                {"event": "workflow.changed", "at": "2026-11-21T12:00:00Z",
                 "workflow": "one.toml", "removed": False, "hash": ""},
                {"event": "workflow.changed", "at": "2026-11-21T12:00:00Z",
                 "workflow": "two.toml", "removed": False, "hash": ""},
            ]  # fmt: skip
            assert stuck.posts == []
        finally:
            started = time.monotonic()
            notify.stop()
            assert time.monotonic() - started < 1.0
        assert not [t for t in threading.enumerate() if t.name.startswith("notify-")]


def test_nothing_configured_makes_no_notifier(db: Path) -> None:
    assert notifier_for(RunConfig(db=str(db)), is_leader=lambda: True, now=Clock()) is None
    assert not db.exists()
