"""Workers: programs that read tasks from the bus, do them, and answer on the done topic.

The Python API::

    from flowlord.worker import Outcome, Result, serve

    def load(task):                     # a Task: type, job, info, meta, id, created, ...
        rows = copy(task.info, day=task.meta_value("day"))
        if not rows:
            return Outcome(Result.WARN, "nothing to load")
        return f"{rows} rows"           # complete, with this msg

    serve(["load"], load, concurrency=4)

A handler returns None or a str (result `complete`, msg the str) or an `Outcome` for any
result (`complete`, `error`, `warn`, `alert`); an exception makes an `error` whose msg is
`<ExceptionType>: <text>`, and its traceback goes to the log. A failing handler never stops
the worker. Handlers run on `concurrency` threads at once. A handler object with a `cancel()`
method has it called when a stop cannot wait for the running tasks any longer.

`serve` reads the settings the way `flowlord run` does (`FLOWLORD_*` variables, then
./flowlord.toml, then defaults): the bus (`file` in `bus_dir`, or `redis` at `redis_url`), the
done topic and the log settings; with `bus=` given, only the last two. It logs to stderr unless
the program set up logging itself. In the main thread and without `stop`, SIGINT or SIGTERM
stops it: the running tasks get `grace` seconds to finish and be answered, and a second
signal stops it at once. Tasks not answered by then are not acknowledged, so the bus delivers
them again (to any worker of the same `group`).

The wire protocol, for a worker in any language:

- A task is one JSON object per message, on the topic of its phase (the phase's `task` up to a
  `:`): string fields `type`, `job`, `info`, `meta` (a URL query, such as
  `workflow=etl.toml&cron=2026-11-21T02:00:00Z&retry=1`), `id` and `created` (RFC 3339);
  ignore fields you do not know.
- The answer is the same object with `started` and `ended` (RFC 3339), `result` (`complete`,
  `error`, `warn` or `alert`) and `msg` set, sent to the done topic (`done` unless
  `done_topic` says otherwise). The taskmaster finds the task by `id`, `type`, `job`, `info` and
  the meta `retry`, so send them back unchanged.
- Send the answer before acknowledging the task. Delivery is at least once: a task may come
  twice, and `id` plus meta `retry` name one attempt.
- A message that is not a task is acknowledged without an answer, unless it has a string `id`
  and `type`: then it is answered with `error`, msg `bad task: <why>`.
- On Redis, topic T is the stream `flowlord:T`, each entry one field `body`: read with
  `XREADGROUP GROUP <group> <name> … STREAMS flowlord:T >`, `XACK` once answered, answer with
  `XADD flowlord:done * body <json>` (`flowlord.bus.streams`). On the file bus, topic T is
  `<bus_dir>/T.jsonl`, one task a line; `flowlord.bus.file` says how to append safely.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from flowlord.config import RunConfig
from flowlord.worker.following import FollowingConsumer, workflow_topics
from flowlord.worker.nop import NopWorker
from flowlord.worker.outcome import Handler, Outcome
from flowlord.worker.serving import WORKER_SETTINGS, run_worker, worker_config
from workflow.task import Result, Task

if TYPE_CHECKING:
    from flowlord.bus import FileBus, MemoryBus
    from flowlord.bus.streams import RedisBus

__all__ = [
    "WORKER_SETTINGS",
    "FollowingConsumer",
    "NopWorker",
    "Outcome",
    "Result",
    "Task",
    "serve",
    "workflow_topics",
]
"""The API is `serve`, `Outcome`, `Task` and `Result`; the rest is for flowlord's own wiring
and tests (the settings workers read, the demo worker stepped by hand, followed topics)."""


def serve(
    topics: Sequence[str],
    handler: Handler,
    *,
    bus: FileBus | MemoryBus | RedisBus | None = None,
    concurrency: int = 1,
    group: str = "workers",
    grace: float = 30.0,
    stop: threading.Event | None = None,
    config: RunConfig | None = None,
) -> int:
    """Run `handler` for every task on `topics` until stopped; returns 0 (an exit code).

    `bus`: the bus to use (default: the one the settings name); `group`: the consumer group,
    which workers doing the same work share; `stop`: an event that stops it (default: SIGINT
    or SIGTERM, in the main thread); `config`: settings to use instead of reading them.
    Raises ValueError (a `ConfigError` for a setting) for anything it cannot use.
    """
    if not callable(handler):
        raise TypeError(f"the handler must be callable, not {type(handler).__name__}")
    if config is None:
        config = worker_config(own_bus=bus is not None)
    run_worker(topics, handler, bus=bus, config=config, concurrency=concurrency, group=group,
               grace=grace, stop=stop)  # fmt: skip
    return 0
