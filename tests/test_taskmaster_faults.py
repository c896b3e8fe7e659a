"""The taskmaster's one edge: a failing unit is logged, counted and passed over; the loop goes on.

Real components throughout (the SQLite cache, the file bus, the watcher); the faults are real
ones too: a topic file that is a folder, a database connection that is gone.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cache import SQLiteCache
from flowlord.bus import FileBus
from flowlord.state import SQLiteTaskStore, TaskFilter
from flowlord.taskmaster import Taskmaster
from tests.conftest import write
from tests.test_taskmaster import Clock
from workflow import Result, Task
from workflow.schedule import CronTable, cron_jobs
from workflow.state import State

WORKFLOW = """
[[Phase]]
task = "parent"
rule = "cron=0 2 * * *"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "left"
dependsOn = "parent"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "right"
dependsOn = "parent"
template = "?day={yyyy}-{mm}-{dd}"
"""
START = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


@dataclass
class Rig:
    taskmaster: Taskmaster
    cache: SQLiteCache
    bus: FileBus
    store: SQLiteTaskStore
    clock: Clock


def build(tmp_path: Path) -> Rig:
    write(tmp_path / "wf", "w.toml", WORKFLOW)
    clock = Clock(START)
    cache = SQLiteCache(tmp_path / "wf", tmp_path / "db", now=clock)
    cache.refresh()
    bus = FileBus(tmp_path / "bus")
    ids = (f"id-{n}" for n in range(100))
    store = SQLiteTaskStore(tmp_path / "db", now=clock)
    taskmaster = Taskmaster(
        cache, store, bus.producer(), lambda: bus.consumer(["done", "files"], "taskmaster"),
        table=CronTable(UTC), now=clock, new_id=lambda: next(ids), holder="test",
    )  # fmt: skip
    assert taskmaster.lead()
    return Rig(taskmaster, cache, bus, store, clock)


def done(task: str, task_id: str) -> str:
    meta = "workflow=w.toml"
    return Task(type=task, meta=meta, id=task_id, result=Result.COMPLETE).to_json()


def topic(bus: FileBus, name: str) -> list[str]:
    path = bus.topic_path(name)
    return (
        [json.loads(line)["id"] for line in path.read_text().splitlines()] if path.exists() else []
    )


def test_a_send_that_fails_stops_no_other_send(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = build(tmp_path)
    taskmaster, cache, bus, store, clock = rig.taskmaster, rig.cache, rig.bus, rig.store, rig.clock
    bus.topic_path("left").mkdir()  # a real fault: the topic's file is a folder
    producer = bus.producer()
    producer.send("done", done("parent", "r1"))
    with caplog.at_level(logging.ERROR):
        assert taskmaster.step()
    assert topic(bus, "right") == ["r1"]  # the sibling was sent all the same
    assert taskmaster.counters.failures == 1
    assert re.search(r"send of record \d+ \(left r1\) to left failed", caplog.text)
    producer.send("done", done("parent", "r2"))
    assert taskmaster.step()  # the loop goes on
    assert topic(bus, "right") == ["r1", "r2"]
    # Nothing is lost: the tasks that could not be sent wait as queued records, and go once
    # the fault is gone (tried again with backoff, not on every turn).
    assert [r.id for r in store.tasks(TaskFilter(state=State.QUEUED))] == ["r2", "r1"]
    bus.topic_path("left").rmdir()
    taskmaster.step()
    assert topic(bus, "left") == []  # still backing off: the clock has not moved
    clock.now += timedelta(seconds=2)
    taskmaster.step()
    assert sorted(topic(bus, "left")) == ["r1", "r2"]
    cache.close()


def test_an_unexpected_failure_is_contained_and_the_message_acked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = build(tmp_path)
    taskmaster, cache, bus = rig.taskmaster, rig.cache, rig.bus
    producer = bus.producer()
    producer.send("done", done("parent", "r1"))
    cache.close()  # the database connection is gone: every lookup raises
    with caplog.at_level(logging.ERROR):
        assert taskmaster.step()
    assert taskmaster.counters.failures == 1
    assert "message done@0 failed (contained; going on)" in caplog.text
    # acknowledged: a new consumer of the group starts after it
    assert bus.consumer(["done"], "taskmaster").receive(0.05) is None


def test_a_saved_workflow_wakes_the_loop_at_once(tmp_path: Path) -> None:
    """The loop blocks on the bus for up to `poll`; a save must not wait for it. With a poll of
    60 s, the change can only be applied this quickly if the watch thread woke the loop."""
    rig = build(tmp_path)
    taskmaster, cache = rig.taskmaster, rig.cache
    applied = threading.Event()
    cache.watch(lambda keys: (taskmaster.on_change(keys), applied.set()))
    stop = threading.Event()
    loop = threading.Thread(target=taskmaster.run, args=(stop,), kwargs={"poll": 60.0})
    loop.start()
    try:
        write(tmp_path / "wf", "w.toml", WORKFLOW.replace("0 2 * * *", "30 1 * * *"))
        assert applied.wait(10)
        moved = datetime(2026, 11, 21, 1, 30, tzinfo=UTC)
        for _ in range(200):  # bounded: the loop applies the change as soon as it wakes
            if (taskmaster.fire_times("w.toml", "parent") or (None, None))[1] == moved:
                break
            stop.wait(0.05)
        assert taskmaster.fire_times("w.toml", "parent")[1] == moved  # type: ignore[index]
    finally:
        stop.set()
        taskmaster.on_change([])  # an empty change wakes the loop blocked on the bus
        loop.join(5)
        cache.close()
    assert not loop.is_alive()


def test_replaced_jobs_do_not_grow_the_heap() -> None:
    """Rescheduling a file leaves its old heap entries stale; they are compacted away, so a
    file saved 20,000 times costs no more memory than one saved once."""
    from workflow import parse_workflow

    phases = parse_workflow(WORKFLOW.encode(), "w.toml").phases
    jobs, _ = cron_jobs(phases)
    table = CronTable(UTC)
    for _ in range(20_000):
        table.set_file("w.toml", jobs, START)
    assert len(table) == 1
    assert len(table._heap) < 2_100  # bounded by the compaction slack, not by the saves
