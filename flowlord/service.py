"""Wiring for `flowlord run` and `flowlord worker`: the one place that reads the real clock."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cache import RefreshError, SQLiteCache
from cache.watcher import Watcher, log_error
from flowlord.bus import BusUnavailable, Consumer, FileBus, MemoryBus
from flowlord.config import RunConfig
from flowlord.listing import load_failures
from flowlord.loop import LoopSettings, Topics
from flowlord.metrics import Metrics
from flowlord.notify import notifier_for
from flowlord.shutdown import Interrupted, Shutdown
from flowlord.state import SQLiteTaskStore
from flowlord.taskmaster import Taskmaster
from workflow.schedule import CronTable

if TYPE_CHECKING:
    from flowlord.bus.streams import RedisBus
    from handlers.service import ApiService

    Bus = FileBus | MemoryBus | RedisBus

log = logging.getLogger("flowlord")

API_EARLY = 2.0
"""Seconds of loading workflows after which the API starts anyway, so that `/healthz` and
`/readyz` (503) answer during a long cold load."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def make_bus(config: RunConfig) -> Bus:
    """The bus `config` names. Redis must answer now: an unreachable server at start is a
    bad setting (exit 2), while an outage later is waited out with backoff."""
    if config.bus == "file":
        return FileBus(Path(config.bus_dir))
    if config.bus == "memory":
        return MemoryBus()
    from flowlord.bus.streams import RedisBus  # redis-py is imported only when used

    bus = RedisBus(
        config.redis_url,
        claim_idle=config.redis_claim_idle.total_seconds(),
        max_len=config.redis_max_len,
    )
    try:
        bus.check()
    except BusUnavailable as err:
        bus.close()
        raise config.error("redis_url", str(err)) from None
    return bus


def _taskmaster_consumer(bus: Bus, topics: Topics, batch: int) -> Consumer:
    """The taskmaster's consumer of the done and files topics. On Redis it reads up to a
    batch per call: the messages are resolved in one transaction anyway, and the group has
    one reader, so nothing waits that another consumer could take."""
    read = [topics.done, topics.files]
    if isinstance(bus, FileBus | MemoryBus):
        return bus.consumer(read, "taskmaster")
    return bus.consumer(read, "taskmaster", count=batch)


def bus_name(config: RunConfig) -> str:
    """The bus as the log names it: the file bus's folder, or the Redis server (no password)."""
    if config.bus == "file":
        return config.bus_dir
    if config.bus == "redis":
        from flowlord.bus.streams import redacted

        return redacted(config.redis_url)
    return "memory"


def run_taskmaster(config: RunConfig, stop: Shutdown, *, start_paused: bool = False) -> int:
    """Cache, task store, watcher, scheduler and resolver until `stop`; a broken file never
    stops start-up. A second `run` on the same database stands by until the lease is free.
    `start_paused` pauses every workflow file when this process first leads.

    A stop signal during start-up ends it at once.
    """
    try:
        return _run_taskmaster(config, stop, start_paused)
    except Interrupted as why:
        log.info("flowlord stopped during start-up (%s)", why)
        return 0


def holder_name() -> str:
    """This process, as the lease names its holder: host, pid and a random part (a pid is
    reused after a restart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _run_taskmaster(config: RunConfig, stop: Shutdown, start_paused: bool) -> int:
    metrics = Metrics(clock=time.perf_counter)  # the taskmaster, the refreshes and the API share it
    with contextlib.ExitStack() as stack:
        with stop.interruptible():
            bus = make_bus(config)  # an unreachable Redis fails before anything loads
            if config.bus == "redis":
                stack.callback(bus.close)  # type: ignore[union-attr]
            cache = SQLiteCache(config.workflows, config.db)
            stack.callback(cache.close)
            store = SQLiteTaskStore(config.db, now=utc_now)
            stack.callback(store.close)
            api = _open_api(config, cache, metrics) if config.port else None
            if api is not None:
                stack.callback(api.stop)
        return _serve(config, bus, cache, store, stop, start_paused, api, metrics)


def _open_api(config: RunConfig, cache: SQLiteCache, metrics: Metrics) -> ApiService:
    """The HTTP API's socket and connections, before the workflows load (`_serve` starts it).
    A port that cannot be bound is a bad setting (exit 2), named as such."""
    from handlers.service import ApiService  # the web part is imported in its own thread

    try:
        return ApiService(config, cache, now=utc_now, metrics=metrics)
    except OSError as err:
        where = f"{config.host}:{config.port}"
        raise config.error("port", f"cannot listen on {where}: {err.strerror or err}") from None


def _serve(
    config: RunConfig, bus: Bus, cache: SQLiteCache, store: SQLiteTaskStore, stop: Shutdown,
    start_paused: bool, api: ApiService | None, metrics: Metrics,
) -> int:  # fmt: skip
    log.info("loading workflows from %s into %s", config.workflows, config.db)
    # Building the API takes ~0.5 s of the interpreter, which a warm load would wait for:
    # it starts once the taskmaster leads, or during a load that takes longer than this.
    early_api = threading.Timer(API_EARLY, api.start) if api is not None else None
    if early_api is not None:
        early_api.daemon = True
        early_api.start()
    with stop.interruptible():
        try:
            metrics.timed_refresh(cache.refresh)
            refresh_errors: dict[str, str] = {}
        except RefreshError as err:
            refresh_errors = err.errors
        for message in load_failures(cache, refresh_errors).values():
            log.error("%s", message)
    topics = Topics(done=config.done_topic, failed=config.failed_topic, files=config.files_topic)
    producer = bus.producer()
    settings = LoopSettings(
        lease=config.lease.total_seconds(), task_ttl=config.task_ttl,
        retention=timedelta(days=config.retention_days) if config.retention_days else None,
        start_paused=start_paused, paused_at_creation=config.paused_at_creation,
    )  # fmt: skip
    taskmaster = Taskmaster(
        cache, store, producer, lambda: _taskmaster_consumer(bus, topics, settings.batch),
        table=CronTable(config.zone), now=utc_now, new_id=new_id, holder=holder_name(),
        topics=topics, max_tasks=config.max_tasks, settings=settings, metrics=metrics,
    )  # fmt: skip
    notifier = notifier_for(config, is_leader=lambda: taskmaster.leading, now=utc_now)
    watcher: Watcher | None = None
    try:
        with stop.interruptible():
            role = "leader" if taskmaster.lead() else "standby"
            on_change, on_error = taskmaster.on_change, log_error
            if notifier is not None:
                on_change, on_error = notifier.following(on_change, on_error)
            if api is not None:
                on_change, on_error = api.follow(
                    on_change, on_error, taskmaster.counters, lambda: taskmaster.leading
                )
                api.loaded()
            watcher = cache.watch(on_change, on_error=on_error, refresh_with=metrics.timing(cache))
            if notifier is not None:
                notifier.start()
        log.info("flowlord running as %s %s: workflows %s, db %s, bus %s", role,
                 taskmaster.holder, config.workflows, config.db,
                 bus_name(config))  # fmt: skip
        if api is not None and early_api is not None:
            early_api.cancel()
            api.start()
        taskmaster.run(stop)
    finally:
        if watcher is not None:
            watcher.stop()
        if notifier is not None:
            notifier.stop()
        taskmaster.release()
        producer.close()
        log.info("flowlord stopped: %s", taskmaster.counters)
    return 0
