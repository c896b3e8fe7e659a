"""The taskmaster's durable state on an injected clock: alerts of every kind, stuck tasks (the
default ttl and a phase's `ttl=`), retention in batches, and retries by the phase's policy."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cache import SQLiteCache
from flowlord import operations
from flowlord.bus import FileBus, Producer
from flowlord.loop import LoopSettings
from flowlord.state import SQLiteTaskStore, TaskFilter
from flowlord.taskmaster import Taskmaster
from tests.conftest import write
from tests.test_taskmaster import Clock
from workflow import Result
from workflow.policy import jitter_fraction
from workflow.schedule import CronTable
from workflow.state import Origin, State

WORKFLOW = """
[[Phase]]
task = "parent"
rule = "cron=0 2 * * *"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "quick"
dependsOn = "parent"
rule = "ttl=10m&retry_delay=1m&backoff=exponential&max_delay=3m"
retry = 4
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "slow"
dependsOn = "parent"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "fanout"
rule = "cron=30 2 * * *&meta-file=rows.csv"
template = "?r={meta:region}"
"""
START = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


@dataclass
class Loop:
    taskmaster: Taskmaster
    store: SQLiteTaskStore
    bus: FileBus
    producer: Producer
    clock: Clock

    def settle(self, at: datetime) -> None:
        self.clock.now = at
        for _ in range(50):
            if not self.taskmaster.step(timeout=0):
                return

    def done(self, task: dict[str, str], result: Result, msg: str = "") -> None:
        self.producer.send("done", json.dumps({**task, "result": result, "msg": msg}))

    def topic(self, name: str) -> list[dict[str, str]]:
        path = self.bus.topic_path(name)
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    write(tmp_path / "wf", "w.toml", WORKFLOW)
    os.mkfifo(tmp_path / "wf" / "rows.csv")  # a meta-file that is a FIFO: fails at fire time
    clock = Clock(START)
    cache = SQLiteCache(tmp_path / "wf", tmp_path / "db", now=clock)
    cache.refresh()
    store = SQLiteTaskStore(tmp_path / "db", now=clock)
    bus = FileBus(tmp_path / "bus")
    ids = (f"id-{n}" for n in range(1000))
    settings = LoopSettings(task_ttl=timedelta(hours=1), retention=timedelta(days=30),
                            stuck_every=0.0)  # fmt: skip
    taskmaster = Taskmaster(
        cache, store, bus.producer(), lambda: bus.consumer(["done", "files"], "taskmaster"),
        table=CronTable(UTC), now=clock, new_id=lambda: next(ids), holder="test",
        settings=settings,
    )  # fmt: skip
    assert taskmaster.lead()
    yield Loop(taskmaster, store, bus, bus.producer(), clock)
    cache.close()
    store.close()


def kinds(store: SQLiteTaskStore) -> list[str]:
    return [alert.kind for alert in reversed(store.alerts(limit=1000))]


def test_alerts_of_every_kind_are_records(loop: Loop) -> None:
    loop.settle(START.replace(hour=2))
    [parent] = loop.topic("parent")
    loop.done(parent, Result.COMPLETE)
    loop.settle(START.replace(hour=2, minute=1))
    loop.done(loop.topic("slow")[0], Result.ALERT, "the disk is full")
    loop.producer.send("done", "not json")
    loop.settle(START.replace(hour=2, minute=31))  # the fanout fire meets its FIFO meta-file
    found = loop.store.alerts(limit=100)
    assert sorted({a.kind for a in found}) == ["alert", "bad_message", "phase_error", "stuck"]
    phase_error = next(a for a in found if a.kind == "phase_error")
    assert (phase_error.workflow, phase_error.phase) == ("w.toml", "fanout")
    assert "rows.csv: not a regular file" in phase_error.message
    alerted = next(a for a in found if a.kind == "alert")
    assert alerted.rec is not None and loop.store.get(alerted.rec).state == State.FAILED
    assert "bad message on done at " in next(a for a in found if a.kind == "bad_message").message


def test_exponential_retries_then_a_failed_alert(loop: Loop) -> None:
    loop.settle(START.replace(hour=2))
    loop.done(loop.topic("parent")[0], Result.COMPLETE)
    loop.settle(START.replace(hour=2, minute=0, second=1))
    at = loop.clock.now
    for attempt in range(1, 5):
        loop.done(loop.topic("quick")[-1], Result.ERROR, f"boom {attempt}")
        loop.settle(at)
        [waiting] = loop.store.tasks(TaskFilter(state=State.WAITING))
        base = min(timedelta(minutes=1) * 2 ** (attempt - 1), timedelta(minutes=3))
        wait = min(base * (1 + 0.4 * jitter_fraction("id-0", "quick", attempt)),
                   timedelta(minutes=3))  # fmt: skip
        assert waiting.due == at + wait
        assert (waiting.attempt, waiting.origin) == (attempt, Origin.RETRY)
        at = waiting.due
        loop.settle(at)
    loop.done(loop.topic("quick")[-1], Result.ERROR, "for good")
    loop.settle(at)
    assert [t["meta"].split("retry=")[-1] for t in loop.topic("quick")[1:]] == ["1", "2", "3", "4"]
    assert "failed" in kinds(loop.store)
    assert [t["msg"] for t in loop.topic("retry-failed")] == ["for good"]
    states = [r.state for r in loop.store.tasks(TaskFilter(type="quick", limit=10))]
    assert states == [State.FAILED, State.ERROR, State.ERROR, State.ERROR, State.ERROR]


def test_stuck_tasks_by_default_ttl_and_by_rule(loop: Loop) -> None:
    loop.settle(START.replace(hour=2))
    loop.done(loop.topic("parent")[0], Result.COMPLETE)
    loop.settle(START.replace(hour=2, minute=0, second=1))
    loop.settle(START.replace(hour=2, minute=11))  # quick has ttl=10m
    assert kinds(loop.store) == ["stuck"]
    [stuck] = loop.store.alerts(kind="stuck")
    assert loop.store.get(stuck.rec).type == "quick"  # type: ignore[arg-type]
    loop.settle(START.replace(hour=2, minute=12))
    assert kinds(loop.store) == ["stuck"]  # once per record
    loop.settle(START.replace(hour=3, minute=1))  # slow: the default hour
    stuck_types = [loop.store.get(a.rec).type for a in loop.store.alerts(kind="stuck")]  # type: ignore[arg-type]
    assert sorted(stuck_types) == ["quick", "slow"]


def test_retention_deletes_old_finished_records_in_batches(loop: Loop) -> None:
    loop.settle(START.replace(hour=2))
    loop.done(loop.topic("parent")[0], Result.COMPLETE)
    loop.settle(START.replace(hour=2, minute=0, second=1))
    for task in (loop.topic("quick")[0], loop.topic("slow")[0]):
        loop.done(task, Result.COMPLETE)
    loop.settle(START.replace(hour=2, minute=1))
    old = {r.rec for r in loop.store.tasks(TaskFilter(limit=100))}
    assert len(old) == 3
    later = START + timedelta(days=31)
    loop.settle(later)  # the daily purge: a new cron fire is kept, the old records go
    left = loop.store.tasks(TaskFilter(limit=100))
    assert {r.rec for r in left}.isdisjoint(old)
    assert loop.taskmaster.counters.purged > 0
    assert [r.state for r in left] == [State.SENT]  # today's parent, sent, kept


def test_a_done_for_a_cancelled_record_changes_nothing(loop: Loop) -> None:
    loop.settle(START.replace(hour=2))
    loop.done(loop.topic("parent")[0], Result.COMPLETE)
    loop.settle(START.replace(hour=2, minute=0, second=1))
    [slow] = loop.store.tasks(TaskFilter(type="slow"))
    operations.cancel(loop.store, slow.rec, actor="cli:ana", reason="wrong day")
    loop.done(loop.topic("slow")[0], Result.COMPLETE)
    loop.settle(START.replace(hour=2, minute=1))
    assert loop.store.get(slow.rec).state == State.CANCELLED
    [alert] = loop.store.alerts(kind="bad_message")
    assert f"done for record {slow.rec}, which was cancelled: ignored" in alert.message
    assert [t.actor for t in loop.store.transitions(slow.rec)] == [
        "flowlord",
        "flowlord",
        "cli:ana",
    ]
