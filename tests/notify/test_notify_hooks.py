"""Hook events through the durable queue: task transitions, pauses and resumes, and workflow
file changes, exactly once across restarts and never replaying history."""

from __future__ import annotations

from pathlib import Path

from cache import SQLiteCache
from flowlord.state import NewRecord, SQLiteTaskStore
from tests.conftest import write
from tests.notify_helpers import Clock, deliveries, drive, notifier
from tests.webhooks import Endpoint, endpoint
from workflow import Task
from workflow.hooks import Hook
from workflow.state import Origin, State

TASKS = ("task.complete", "task.failed", "task.held")
CONTROLS = ("workflow.paused", "workflow.resumed")


def new(store: SQLiteTaskStore, key: str, state: State = State.QUEUED) -> int:
    task = Task(type="load", job="daily", info="?day=2026-11-20", id=f"run-{key}")
    record = NewRecord(task=task, workflow="w.toml", phase="load:daily", origin=Origin.CRON,
                       origin_key=key, state=state)  # fmt: skip
    with store.transaction() as tx:
        [made] = tx.add([record], actor="test", reason="fired")
    assert made is not None
    return made.rec


def finish(store: SQLiteTaskStore, rec: int, to: State, result: str) -> None:
    with store.transaction() as tx:
        tx.move(rec, State.SENT, actor="outbox", reason="sent")
        tx.move(rec, to, actor="resolver", reason=f"done {result}", result=result, msg="m")


def deliver(notify: object, hook: Endpoint, clock: Clock, seconds: float) -> None:
    notify.producer.step(clock.at(seconds))  # type: ignore[attr-defined]
    drive(notify.couriers[hook.url], clock.now)  # type: ignore[attr-defined]


def test_task_events_carry_the_record_and_the_transition(
    db: Path, store: SQLiteTaskStore, clock: Clock, hook: Endpoint
) -> None:
    with notifier(db, clock, hooks=[Hook(url=hook.url, events=TASKS)]) as notify:
        notify.producer.step(clock.at(0))  # a first look: the cursors start here
        done = new(store, "a")
        finish(store, done, State.COMPLETE, "complete")
        failed = new(store, "b")
        finish(store, failed, State.FAILED, "error")
        new(store, "c", State.HELD)
        deliver(notify, hook, clock, 1)
    bodies = hook.bodies()
    assert [(b["event"], b["rec"]) for b in bodies] == [
        ("task.complete", done), ("task.failed", failed), ("task.held", 3),
    ]  # fmt: skip
    assert bodies[0] == {
        "event": "task.complete", "at": "2026-11-21T12:00:00Z", "rec": done, "id": "run-a",
        "type": "load", "job": "daily", "info": "?day=2026-11-20", "meta": "",
        "workflow": "w.toml", "phase": "load:daily", "attempt": 0, "origin": "cron",
        "result": "complete", "msg": "m", "created": "2026-11-21T12:00:00Z", "due": None,
        "sent": "2026-11-21T12:00:00Z", "started": None, "ended": "2026-11-21T12:00:00Z",
        "from_state": "sent", "to_state": "complete", "reason": "done complete",
        "actor": "resolver", "transition": 3,
    }  # fmt: skip
    assert bodies[2]["from_state"] == ""  # born held


def test_only_subscribed_events_are_posted(
    db: Path, store: SQLiteTaskStore, clock: Clock, hook: Endpoint
) -> None:
    with notifier(db, clock, hooks=[Hook(url=hook.url, events=("task.failed",))]) as notify:
        notify.producer.step(clock.at(0))
        finish(store, new(store, "a"), State.COMPLETE, "complete")
        finish(store, new(store, "b"), State.FAILED, "error")
        deliver(notify, hook, clock, 1)
    assert [b["event"] for b in hook.bodies()] == ["task.failed"]
    assert len(deliveries(db)) == 1


def test_pauses_and_resumes(db: Path, store: SQLiteTaskStore, clock: Clock, hook: Endpoint) -> None:
    with notifier(db, clock, hooks=[Hook(url=hook.url, events=CONTROLS)]) as notify:
        notify.producer.step(clock.at(0))
        with store.transaction() as tx:
            tx.set_control("w.toml", "", enabled=False, reason="maintenance", actor="ops")
        clock.at(5)
        with store.transaction() as tx:
            tx.set_control("w.toml", "", enabled=True, reason="done", actor="ops", released=2)
        deliver(notify, hook, clock, 6)
    assert hook.bodies() == [
        {"event": "workflow.paused", "at": "2026-11-21T12:00:00Z", "seq": 1,
         "workflow": "w.toml", "phase": "", "actor": "ops", "reason": "maintenance",
         "from_enabled": None, "to_enabled": False, "released": 0, "discarded": 0},
        {"event": "workflow.resumed", "at": "2026-11-21T12:00:05Z", "seq": 2,
         "workflow": "w.toml", "phase": "", "actor": "ops", "reason": "done",
         "from_enabled": False, "to_enabled": True, "released": 2, "discarded": 0},
    ]  # fmt: skip


def test_workflow_changes_and_errors(
    tmp_path: Path, db: Path, clock: Clock, hook: Endpoint
) -> None:
    write(tmp_path / "wf", "a.toml", '[[Phase]]\ntask = "t"\nrule = "cron=0 0 * * *"\n')
    cache = SQLiteCache(tmp_path / "wf", db)
    try:
        cache.refresh()
        [loaded] = cache.workflow_files()
    finally:
        cache.close()
    events = ("workflow.changed", "workflow.error")
    with notifier(db, clock, hooks=[Hook(url=hook.url, events=events)]) as notify:
        notify.workflow_changed(["a.toml", "-gone.toml"])
        notify.workflow_failed({"bad.toml": "bad.toml: line 1: expected '='"})
        deliver(notify, hook, clock, 0)
    assert hook.bodies() == [
        {"event": "workflow.changed", "at": "2026-11-21T12:00:00Z", "workflow": "a.toml",
         "removed": False, "hash": loaded.file_hash},
        {"event": "workflow.changed", "at": "2026-11-21T12:00:00Z", "workflow": "gone.toml",
         "removed": True},
        {"event": "workflow.error", "at": "2026-11-21T12:00:00Z", "workflow": "bad.toml",
         "error": "bad.toml: line 1: expected '='"},
    ]  # fmt: skip


def test_history_is_not_replayed_and_a_restart_repeats_nothing(
    db: Path, store: SQLiteTaskStore, clock: Clock, hook: Endpoint
) -> None:
    hooks = [Hook(url=hook.url, events=TASKS + CONTROLS)]
    finish(store, new(store, "before"), State.FAILED, "error")
    with store.transaction() as tx:
        tx.set_control("w.toml", "", enabled=False, reason="old", actor="ops")
    with notifier(db, clock, hooks=hooks) as notify:
        deliver(notify, hook, clock, 0)
        assert hook.bodies() == []  # what happened before the first start is history
        finish(store, new(store, "first"), State.FAILED, "error")
        deliver(notify, hook, clock, 1)
        finish(store, new(store, "queued"), State.FAILED, "error")
        notify.producer.step(clock.at(2))  # queued, not yet delivered
    finish(store, new(store, "down"), State.FAILED, "error")  # while no notifier runs
    with notifier(db, clock, hooks=hooks) as notify:
        deliver(notify, hook, clock, 3)
        deliver(notify, hook, clock, 4)
    assert [b["id"] for b in hook.bodies()] == ["run-first", "run-queued", "run-down"]


def test_a_source_unsubscribed_then_subscribed_again_does_not_replay_the_gap(
    db: Path, store: SQLiteTaskStore, clock: Clock, hook: Endpoint
) -> None:
    with notifier(db, clock, hooks=[Hook(url=hook.url, events=TASKS)]) as notify:
        deliver(notify, hook, clock, 0)
    with notifier(db, clock, hooks=[Hook(url=hook.url, events=CONTROLS)]) as notify:
        deliver(notify, hook, clock, 1)
        finish(store, new(store, "unwatched"), State.FAILED, "error")
        deliver(notify, hook, clock, 2)
    with notifier(db, clock, hooks=[Hook(url=hook.url, events=TASKS)]) as notify:
        deliver(notify, hook, clock, 3)
        finish(store, new(store, "watched"), State.FAILED, "error")
        deliver(notify, hook, clock, 4)
    assert [b["id"] for b in hook.bodies()] == ["run-watched"]


def test_a_url_no_longer_configured_is_given_up(db: Path, clock: Clock, hook: Endpoint) -> None:
    with endpoint() as old:
        with notifier(db, clock, hooks=[Hook(url=old.url, events=("workflow.changed",))]) as n:
            n.workflow_changed(["a.toml"])
            n.producer.step(clock.at(0))
        with notifier(db, clock, hooks=[Hook(url=hook.url, events=("workflow.changed",))]) as n:
            deliver(n, hook, clock, 1)
        assert old.attempts == 0
    [row] = deliveries(db)
    assert (row[1], row[4], row[5], row[6]) == (
        old.url, False, True, "the URL is no longer configured",
    )  # fmt: skip
