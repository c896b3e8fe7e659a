"""Wiring for `flowlord run` and `flowlord worker`: the one place that reads the real clock."""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from cache import RefreshError, SQLiteCache
from flowlord.bus import FileBus, MemoryBus
from flowlord.config import RunConfig
from flowlord.taskmaster import Taskmaster, Topics
from flowlord.worker import NopWorker
from workflow.schedule import CronTable

log = logging.getLogger("flowlord")


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def make_bus(config: RunConfig) -> FileBus | MemoryBus:
    return FileBus(Path(config.bus_dir)) if config.bus == "file" else MemoryBus()


def run_taskmaster(config: RunConfig, stop: threading.Event) -> int:
    """Cache, watcher, scheduler and resolver until `stop`; a broken file never stops start-up."""
    cache = SQLiteCache(config.workflows, config.db)
    try:
        cache.refresh()
    except RefreshError as err:
        for message in err.errors.values():
            log.error("%s (last good phases kept)", message)
    bus = make_bus(config)
    topics = Topics(done=config.done_topic, failed=config.failed_topic, files=config.files_topic)
    producer = bus.producer()
    consumer = bus.consumer([topics.done, topics.files], group="taskmaster")
    taskmaster = Taskmaster(
        cache, producer, consumer,
        table=CronTable(config.zone), now=utc_now, new_id=new_id,
        jitter=random.Random().random, topics=topics, max_tasks=config.max_tasks,
    )  # fmt: skip
    try:
        taskmaster.load_all()
        cache.watch(taskmaster.on_change)
        log.info("flowlord running: workflows %s, db %s, bus %s", config.workflows, config.db,
                 config.bus_dir if config.bus == "file" else "memory")  # fmt: skip
        taskmaster.run(stop)
    finally:
        cache.close()
        consumer.close()
        producer.close()
        log.info("flowlord stopped: %s", taskmaster.counters)
    return 0


def run_nop_worker(
    bus_dir: str, topics: list[str], stop: threading.Event, *, fail_first: Mapping[str, int]
) -> int:
    bus = FileBus(Path(bus_dir))
    consumer = bus.consumer(topics, group="worker-nop")
    producer = bus.producer()
    worker = NopWorker(consumer, producer, now=utc_now, fail_first=fail_first)
    log.info("nop worker reading %s from %s", ", ".join(topics), bus_dir)
    try:
        worker.run(stop)
    finally:
        consumer.close()
        producer.close()
        log.info("nop worker stopped after %d task(s)", worker.handled)
    return 0
