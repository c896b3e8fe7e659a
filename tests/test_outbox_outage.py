"""The taskmaster while its Redis is down (in-process, real components, a real redis-server
killed with SIGKILL): tasks it queues wait as records, the outage is logged once and not once
per task, and they go out when Redis is back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
import redis

from cache import SQLiteCache
from flowlord.bus.streams import RedisBus
from flowlord.state import SQLiteTaskStore, TaskFilter
from flowlord.taskmaster import Taskmaster
from tests.conftest import write
from tests.redis_server import RedisServer
from tests.test_taskmaster import Clock
from tests.test_taskmaster_faults import START, WORKFLOW
from workflow.schedule import CronTable
from workflow.state import State


@pytest.fixture
def rig(
    tmp_path: Path, redis_url: str
) -> Iterator[tuple[Taskmaster, RedisBus, SQLiteTaskStore, Clock]]:
    write(tmp_path / "wf", "w.toml", WORKFLOW)
    clock = Clock(START)
    cache = SQLiteCache(tmp_path / "wf", tmp_path / "db", now=clock)
    cache.refresh()
    bus = RedisBus(redis_url, claim_idle=60.0)
    store = SQLiteTaskStore(tmp_path / "db", now=clock)
    ids = (f"id-{n}" for n in range(100))
    taskmaster = Taskmaster(
        cache, store, bus.producer(), lambda: bus.consumer(["done", "files"], "taskmaster"),
        table=CronTable(UTC), now=clock, new_id=lambda: next(ids), holder="test",
    )  # fmt: skip
    assert taskmaster.lead()
    yield taskmaster, bus, store, clock
    bus.close()
    store.close()
    cache.close()


def test_queued_tasks_wait_out_an_outage_and_go_when_redis_is_back(
    rig: tuple[Taskmaster, RedisBus, SQLiteTaskStore, Clock],
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    taskmaster, _, store, clock = rig
    client = redis.Redis(port=redis_server.port)
    caplog.set_level(logging.INFO)
    redis_server.kill()
    clock.now = START.replace(hour=2)  # the cron phase fires while Redis is down
    for _ in range(5):
        taskmaster.step(timeout=0.05)
    [record] = store.tasks(TaskFilter(type="parent"))
    assert record.state is State.QUEUED  # committed, not sent, not lost
    assert taskmaster.counters.failures == 0  # an outage is no unit's failure
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([w for w in warnings if "unavailable" in w]) == 1, warnings  # once, not per turn
    assert "Traceback" not in caplog.text

    redis_server.start()
    for _ in range(50):
        taskmaster.step(timeout=0.1)
        if store.tasks(TaskFilter(type="parent"))[0].state is State.SENT:
            break
    assert store.tasks(TaskFilter(type="parent"))[0].state is State.SENT
    assert client.xlen("flowlord:parent") == 1
    assert "the bus is back after" in caplog.text
    client.close()
