"""`flowlord worker nop`: the demo handler, which completes every task it is given.

It makes the README's main command show tasks flowing through a workflow on a fresh machine;
`fail_first` makes it fail the first tasks of a topic, to show retries and failures.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime

from flowlord.bus import Consumer, Producer
from flowlord.worker.outcome import Outcome, perform, read_task
from workflow.task import Result, Task


class NopHandler:
    """Completes each task with msg `nop`, except the first `fail_first[type]` of a type."""

    def __init__(self, fail_first: Mapping[str, int] | None = None) -> None:
        self._lock = threading.Lock()  # handlers run on several threads
        self._failures_left = dict(fail_first or {})

    def __call__(self, task: Task) -> Outcome:
        with self._lock:
            fail = self._failures_left.get(task.type, 0) > 0
            if fail:
                self._failures_left[task.type] -= 1
        if fail:
            return Outcome(Result.ERROR, "nop: told to fail")
        return Outcome(Result.COMPLETE, "nop")


class NopWorker:
    """The nop handler driven one message at a time on the caller's thread, for a loop that
    steps a taskmaster and a worker in turn on one clock (the runtime is for real workers)."""

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
        self._handler = NopHandler(fail_first)
        self.handled = 0

    def step(self, *, timeout: float = 0.0) -> bool:
        """Handle at most one message: send its done, then ack it. False when none came
        within `timeout`."""
        message = self._consumer.receive(timeout)
        if message is None:
            return False
        task = read_task(message, self._now)
        done = perform(self._handler, task, self._now) if isinstance(task, Task) else task.done
        if done is not None:
            self._producer.send(self._done_topic, done.to_json())
        self.handled += isinstance(task, Task)
        self._consumer.ack(message)
        return True
