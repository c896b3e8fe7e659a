"""`flowlord worker nop` and `flowlord worker exec`, wired: the CLI has checked the input."""

from __future__ import annotations

import contextlib
import logging
import shlex
import threading
from collections.abc import Mapping, Sequence

from flowlord.config import RunConfig
from flowlord.worker.exec import CommandHandler
from flowlord.worker.following import FollowingConsumer, workflow_topics
from flowlord.worker.nop import NopHandler
from flowlord.worker.runtime import Runtime
from flowlord.worker.serving import open_bus, run_until_stopped, run_worker, utc_now
from workflow.command import CommandTemplate

log = logging.getLogger("flowlord.worker")

NOP_GROUP = "worker-nop"


def run_nop_worker(
    config: RunConfig,
    topics: Sequence[str],
    stop: threading.Event | None = None,
    *,
    fail_first: Mapping[str, int],
) -> int:
    """The demo worker until `stop` (default: SIGINT/SIGTERM): it reads `topics` and, with
    `config.workflows`, every topic of those workflows, following files as they come and go."""
    with contextlib.ExitStack() as stack:
        bus, label = open_bus(config, stack)
        cache = None
        if config.workflows:
            from cache import RefreshError, SQLiteCache

            cache = SQLiteCache(config.workflows)
            stack.callback(cache.close)
            with contextlib.suppress(RefreshError):  # a broken file keeps its last good topics
                cache.refresh()

        def wanted() -> list[str]:
            found = workflow_topics(cache.phases(), done_topic=config.done_topic) if cache else []
            return sorted({*topics, *found})

        consumer = FollowingConsumer(lambda t: bus.consumer(t, NOP_GROUP), wanted())
        stack.callback(consumer.close)
        producer = bus.producer()
        stack.callback(producer.close)
        if cache is not None:
            stack.callback(cache.watch(lambda _keys: consumer.follow(wanted())).stop)
        runtime = Runtime(
            consumer, producer, NopHandler(fail_first), now=utc_now,
            done_topic=config.done_topic, name="nop worker", topics=consumer.topics, bus=label,
        )  # fmt: skip
        run_until_stopped(runtime, stop)
    return 0


def run_exec_worker(
    config: RunConfig,
    template: CommandTemplate,
    *,
    topics: Sequence[str],
    timeout: float | None,
    concurrency: int,
    grace: float,
    group: str,
    stop: threading.Event | None = None,
) -> int:
    """`template` run for each task of `topics` until `stop` (default: SIGINT/SIGTERM)."""
    log.info("exec worker: running %s for each task%s", shlex.join(template.argv),
             f", for at most {timeout:g}s" if timeout else "")  # fmt: skip
    handler = CommandHandler(template, timeout=timeout)
    run_worker(topics, handler, bus=None, config=config, concurrency=concurrency, group=group,
               grace=grace, stop=stop, name="exec worker")  # fmt: skip
    return 0
