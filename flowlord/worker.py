"""`flowlord worker nop`: a demo worker that completes every task it reads.

It makes the README's main command show tasks flowing through a workflow on a fresh machine;
`fail_first` makes it fail the first tasks of a topic, to show retries and failures.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime

from flowlord.bus import Consumer, Producer
from workflow import Result, Task
from workflow.task import rfc3339

log = logging.getLogger("flowlord.worker")


class NopWorker:
    """Reads tasks, writes each back to the done topic with `started`, `ended` and a result."""

    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        *,
        now: Callable[[], datetime],
        done_topic: str = "done",
        fail_first: Mapping[str, int] | None = None,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._now = now
        self._done_topic = done_topic
        self._failures_left = dict(fail_first or {})
        self.handled = 0

    def run(self, stop: threading.Event, *, poll: float = 0.2) -> None:
        while not stop.is_set():
            self.step(timeout=poll)

    def step(self, *, timeout: float = 0.0) -> bool:
        """Handle at most one task; False when none came within `timeout`."""
        message = self._consumer.receive(timeout)
        if message is None:
            return False
        try:
            task = Task.from_json(message.body)
        except ValueError as err:
            log.error("bad task on %s at %d: %s", message.topic, message.offset, err)
        else:
            self._producer.send(self._done_topic, self._complete(task).to_json())
            self.handled += 1
        self._consumer.ack(message)
        return True

    def _complete(self, task: Task) -> Task:
        stamp = rfc3339(self._now())
        result, msg = Result.COMPLETE, "nop"
        if self._failures_left.get(task.type, 0) > 0:
            self._failures_left[task.type] -= 1
            result, msg = Result.ERROR, "nop: told to fail"
        return replace(task, started=stamp, ended=stamp, result=result, msg=msg)
