"""What `serve` and the worker commands share: the settings, the bus, and running until stopped."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flowlord.bus import check_topic
from flowlord.bus.base import check_group
from flowlord.config import RunConfig, read_config_file, resolve_config
from flowlord.worker.outcome import Handler
from flowlord.worker.runtime import Report, Runtime, check_limits
from flowlord.worker.signals import stop_requests

if TYPE_CHECKING:
    from flowlord.bus import FileBus, MemoryBus
    from flowlord.bus.streams import RedisBus

WORKER_SETTINGS = (
    "bus", "bus_dir", "redis_url", "redis_claim_idle", "redis_max_len", "done_topic",
    "log_level", "log_format",
)  # fmt: skip
"""The settings every worker reads, from the same places as `flowlord run`."""
GIVEN_BUS_SETTINGS = ("done_topic", "log_level", "log_format")
"""The settings read when the caller brings its own bus."""


def utc_now() -> datetime:
    """The real clock, for the wiring (the runtime and handlers take it as an argument)."""
    return datetime.now(UTC)


def worker_config(*, own_bus: bool) -> RunConfig:
    """The settings as `flowlord run` reads them without flags: `FLOWLORD_*` variables, then
    ./flowlord.toml, then defaults. ConfigError names a bad one."""
    uses = GIVEN_BUS_SETTINGS if own_bus else WORKER_SETTINGS
    return resolve_config({}, os.environ, read_config_file(None), uses=uses)


def open_bus(
    config: RunConfig, stack: contextlib.ExitStack
) -> tuple[FileBus | MemoryBus | RedisBus, str]:
    """The bus `config` names, closed with `stack`, and its name for the log."""
    refuse_memory_bus(config)
    from flowlord.service import bus_name, make_bus  # the taskmaster's modules, only when used

    bus = make_bus(config)
    close = getattr(bus, "close", None)
    if close is not None:
        stack.callback(close)
    return bus, bus_name(config)


def refuse_memory_bus(config: RunConfig) -> None:
    """ConfigError for `bus = "memory"`: it lives in one process, while a worker answers a
    taskmaster in another."""
    if config.bus == "memory":
        raise config.error("bus", "a worker needs the file or redis bus (a memory bus is not "
                                  "shared between processes)")  # fmt: skip


def logging_for(config: RunConfig, stack: contextlib.ExitStack) -> None:
    """Log to stderr as the settings say, unless the program has set up logging itself."""
    if not logging.getLogger().handlers:
        from flowlord import logs

        stack.enter_context(
            logs.logging_to(sys.stderr, level=config.log_level, log_format=config.log_format)
        )


def run_until_stopped(runtime: Runtime, stop: threading.Event | None) -> Report:
    """Run until `stop`; without one, until SIGINT or SIGTERM in the main thread (a second
    one: stop now), or for as long as the process lives in another thread."""
    if stop is not None:
        return runtime.run(stop)
    if threading.current_thread() is threading.main_thread():
        with stop_requests() as (requested, now):
            return runtime.run(requested, now)
    return runtime.run(threading.Event())


def run_worker(
    topics: Sequence[str],
    handler: Handler,
    *,
    bus: FileBus | MemoryBus | RedisBus | None,
    config: RunConfig,
    concurrency: int = 1,
    group: str = "workers",
    grace: float = 30.0,
    stop: threading.Event | None = None,
    name: str = "worker",
) -> Report:
    """`serve`'s work, with the name the log gives the worker."""
    if isinstance(topics, str) or not topics:
        raise ValueError(f"a worker needs a list of topics, not {topics!r}")
    topics = [check_topic(topic) for topic in topics]
    check_group(group)
    check_limits(concurrency=concurrency, grace=grace)
    if config.done_topic in topics:
        raise ValueError(f"topic {config.done_topic!r} is the done topic: the worker would "
                         "read its own answers")  # fmt: skip
    with contextlib.ExitStack() as stack:
        logging_for(config, stack)
        label = type(bus).__name__
        if bus is None:
            bus, label = open_bus(config, stack)
        producer = bus.producer()
        stack.callback(producer.close)
        runtime = Runtime(
            bus.consumer(topics, group), producer, handler, now=utc_now,
            done_topic=config.done_topic, concurrency=concurrency, grace=grace,
            cancel=getattr(handler, "cancel", None), name=name, topics=topics, bus=label,
        )  # fmt: skip
        return run_until_stopped(runtime, stop)
