"""Alert summaries through the durable queue: a real database, a real local endpoint, and a
clock the test moves."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flowlord.state import SQLiteTaskStore
from tests.notify_helpers import Clock, deliveries, drive, notifier, raise_alert
from tests.webhooks import Endpoint
from workflow.notify import SummaryPolicy

POLICY = SummaryPolicy(timedelta(minutes=1), timedelta(minutes=4))


def texts(hook: Endpoint) -> list[str]:
    return [str(body["text"]) for body in hook.bodies()]


def test_the_first_alert_goes_out_at_once_and_is_marked_notified(
    db: Path, store: SQLiteTaskStore, clock: Clock, hook: Endpoint
) -> None:
    seq = raise_alert(store, "load r1 failed: boom")
    with notifier(db, clock, alert_webhook=hook.url, policy=POLICY) as notify:
        assert notify.producer.step(clock.at(0)) == clock.at(60)  # the interval's end
        assert drive(notify.couriers[hook.url], clock.now) is None
    assert texts(hook) == ["flowlord alert: failed in w.toml (load): load r1 failed: boom"]
    [post] = hook.posts
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["Idempotency-Key"] == "1"
    assert post.headers["User-Agent"].startswith("flowlord/")
    [alert] = store.alerts()
    assert (alert.seq, alert.notified) == (seq, clock.now)
    assert deliveries(db) == [(1, hook.url, "alert.summary", 1, True, False, "", seq, seq)]


def test_a_burst_is_summarized_per_interval_doubling_and_reset_when_quiet(
    db: Path, store: SQLiteTaskStore, clock: Clock, hook: Endpoint
) -> None:
    with notifier(db, clock, alert_webhook=hook.url, policy=POLICY) as notify:
        courier = notify.couriers[hook.url]

        def tick(seconds: float, *alerts: str) -> None:
            clock.at(seconds)
            for message in alerts:
                raise_alert(store, message)
            notify.producer.step(clock.now)
            drive(courier, clock.now)

        tick(0, "a1")
        tick(10, "a2", "a3")
        tick(59, "a4")
        assert texts(hook) == ["flowlord alert: failed in w.toml (load): a1"]
        tick(60)  # the 1m interval ends with three pending: one summary, then a 2m interval
        tick(100, "a5")
        tick(179)
        assert len(hook.posts) == 2
        tick(180)  # then 4m (the maximum here)
        tick(200, "a6")
        tick(419)
        assert len(hook.posts) == 3
        tick(420)  # at the maximum it stays there
        tick(660)  # a 4m interval ends quiet: the next alert goes out at once
        tick(700, "a7")
    assert texts(hook) == [
        "flowlord alert: failed in w.toml (load): a1",
        "flowlord: 3 alerts\n• failed in w.toml (load): a2\n• failed in w.toml (load): a3\n"
        "• failed in w.toml (load): a4",
        "flowlord alert: failed in w.toml (load): a5",
        "flowlord alert: failed in w.toml (load): a6",
        "flowlord alert: failed in w.toml (load): a7",
    ]
    assert [(row[7], row[8]) for row in deliveries(db)] == [(1, 1), (2, 4), (5, 5), (6, 6), (7, 7)]
    assert all(alert.notified is not None for alert in store.alerts())


def test_alerts_raised_before_the_first_start_go_out_as_one_summary(
    db: Path, store: SQLiteTaskStore, clock: Clock, hook: Endpoint
) -> None:
    for number in range(25):
        raise_alert(store, f"old {number}")
    with notifier(db, clock, alert_webhook=hook.url, policy=POLICY) as notify:
        notify.producer.step(clock.at(0))
        drive(notify.couriers[hook.url], clock.now)
    [text] = texts(hook)
    assert text.startswith("flowlord: 25 alerts\n• failed in w.toml (load): old 0\n")
    assert text.endswith("• failed in w.toml (load): old 19\n… and 5 more")


def test_a_restart_neither_loses_nor_repeats_an_alert(
    db: Path, store: SQLiteTaskStore, clock: Clock, hook: Endpoint
) -> None:
    raise_alert(store, "delivered before the restart")
    with notifier(db, clock, alert_webhook=hook.url, policy=POLICY) as notify:
        notify.producer.step(clock.at(0))
        drive(notify.couriers[hook.url], clock.now)
        raise_alert(store, "queued, not delivered")
        notify.producer.step(clock.at(60))
    raise_alert(store, "raised while down")
    with notifier(db, clock, alert_webhook=hook.url, policy=POLICY) as notify:
        notify.producer.step(clock.at(70))  # the interval restarts at the minimum: at once
        drive(notify.couriers[hook.url], clock.now)
    with notifier(db, clock, alert_webhook=hook.url, policy=POLICY) as notify:
        assert notify.producer.step(clock.at(80)) is None  # nothing left to summarize
        assert drive(notify.couriers[hook.url], clock.now) is None
    assert texts(hook) == [
        "flowlord alert: failed in w.toml (load): delivered before the restart",
        "flowlord alert: failed in w.toml (load): queued, not delivered",
        "flowlord alert: failed in w.toml (load): raised while down",
    ]
    assert all(alert.notified is not None for alert in store.alerts())


def test_a_standby_neither_summarizes_nor_delivers(
    db: Path, store: SQLiteTaskStore, clock: Clock, hook: Endpoint
) -> None:
    leading = False
    raise_alert(store, "seen by the leader only")
    with notifier(db, clock, alert_webhook=hook.url, is_leader=lambda: leading) as notify:
        assert notify.producer.step(clock.at(0)) is None
        assert drive(notify.couriers[hook.url], clock.now) is None
        assert deliveries(db) == []
        leading = True
        notify.producer.step(clock.at(1))
        drive(notify.couriers[hook.url], clock.now)
    assert len(hook.posts) == 1
