"""The loop every worker runs: receive a task, run its handler in a pool, send the done, ack.

Receiving and acking happen on the loop's thread only; handlers run on `concurrency` threads
of their own. The loop receives only while a slot is free, so it never holds a task another
worker could be running, and a slot is freed only once its task is acked. A finished handler
wakes the loop at once (`Consumer.wakeup`). Each done message is sent before its task is
acked: a task whose answer could not be sent is never acked, so it is delivered again rather
than lost. A send that fails is retried with backoff (0.1 s doubling to 5 s) while the loop
goes on.

Stopping: `stop` ends receiving; running handlers get up to `grace` seconds to finish, and
their answers are sent and acked. When `stop_now` is set or the grace is over, `cancel()` is
called (the exec handler kills its commands), nothing more is sent or acked, and the consumer
is closed: the unfinished tasks go to another consumer of the group (at once on Redis, from the
unacked prefix on the file bus). Handler threads are daemons, so one that ignores `cancel` does
not keep the process alive.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from flowlord.bus import BusUnavailable, Consumer, Message, Producer
from flowlord.worker.outcome import Handler, Rejected, perform, read_task
from workflow.task import Result, Task

log = logging.getLogger("flowlord.worker")

FIRST_RETRY = 0.1
MAX_RETRY = 5.0


class Backoff:
    """After a failure, wait `first` seconds, doubling up to `cap`; a success starts over."""

    def __init__(self, *, first: float = FIRST_RETRY, cap: float = MAX_RETRY) -> None:
        self._first = first
        self._cap = cap
        self._delay = 0.0
        self._due = 0.0

    def failed(self) -> float:
        """Note a failure; the seconds until `ready()`."""
        self._delay = min(self._cap, self._delay * 2) if self._delay else self._first
        self._due = time.monotonic() + self._delay
        return self._delay

    def succeeded(self) -> None:
        self._delay = self._due = 0.0

    def left(self) -> float:
        """Seconds until the next try is due; 0 when it is."""
        return max(0.0, self._due - time.monotonic())


def check_limits(*, concurrency: int, grace: float) -> None:
    """ValueError unless `concurrency` is a whole number from 1 and `grace` is not negative."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a whole number from 1, not {concurrency!r}")
    if not isinstance(grace, int | float) or not grace >= 0:
        raise ValueError(f"grace must be 0 or more seconds, not {grace!r}")


@dataclass(slots=True)
class _Answer:
    """A received message to answer: `body` (the done message, None once sent or when there
    is none to send), then the ack. `task` is False for a body that was not a task."""

    message: Message
    body: str | None
    task: bool = True


@dataclass(frozen=True, slots=True)
class Report:
    """How a run ended: tasks answered and acked, bodies that were not tasks, and the tasks
    left unacked when it stopped (delivered again to the group)."""

    handled: int
    rejected: int
    unfinished: int


class Runtime:
    """Runs `handler` for each task `consumer` delivers; see the module's docstring."""

    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        handler: Handler,
        *,
        now: Callable[[], datetime],
        done_topic: str = "done",
        concurrency: int = 1,
        grace: float = 30.0,
        cancel: Callable[[], None] | None = None,
        poll: float = 0.2,
        name: str = "worker",
        topics: Sequence[str] = (),
        bus: str = "",
    ) -> None:
        check_limits(concurrency=concurrency, grace=grace)
        self._consumer = consumer
        self._producer = producer
        self._handler = handler
        self._now = now
        self._done_topic = done_topic
        self._concurrency = concurrency
        self._grace = grace
        self._cancel = cancel
        self._poll = poll
        self._about = (name, ", ".join(topics) or "no topic yet", bus)
        self._jobs: queue.SimpleQueue[tuple[Message, Task] | None] = queue.SimpleQueue()
        self._finished: queue.SimpleQueue[_Answer] = queue.SimpleQueue()
        self._changed = threading.Event()
        self._outbox: deque[_Answer] = deque()
        self._running = 0
        self._sending = Backoff()
        self._receiving = Backoff()
        self._handled = 0
        self._rejected = 0

    def run(self, stop: threading.Event, stop_now: threading.Event | None = None) -> Report:
        """Until `stop`, then the graceful stop; returns what was done."""
        name, topics, bus = self._about
        log.info("%s reading %s from %s, concurrency %d", name, topics, bus or "the bus",
                 self._concurrency)  # fmt: skip
        for number in range(self._concurrency):
            threading.Thread(target=self._work, name=f"flowlord-handler-{number + 1}",
                             daemon=True).start()  # fmt: skip
        unfinished = 0
        try:
            while not stop.is_set():
                self._turn()
            unfinished = self._finish(stop_now or threading.Event())
        finally:
            for _ in range(self._concurrency):
                self._jobs.put(None)
            self._close()
        log.info("%s stopped after %d task(s), %d unfinished", name, self._handled, unfinished)
        return Report(self._handled, self._rejected, unfinished)

    def _turn(self) -> None:
        self._changed.clear()  # before looking: a job finishing from here on wakes the wait
        self._collect()
        self._flush()
        timeout = self._timeout()
        if self._running + len(self._outbox) < self._concurrency and not self._receiving.left():
            self._receive(timeout)
        else:
            self._changed.wait(timeout)

    def _timeout(self) -> float:
        timeout = min(self._poll, self._receiving.left() or self._poll)
        return min(timeout, self._sending.left()) if self._outbox else timeout

    def _receive(self, timeout: float) -> None:
        try:
            message = self._consumer.receive(timeout)
        except Exception as err:
            delay = self._receiving.failed()
            log.warning("cannot receive (trying again in %.1fs): %s", delay, err)
            return
        self._receiving.succeeded()
        if message is None:
            return
        task = read_task(message, self._now)
        if isinstance(task, Rejected):
            self._rejected += 1
            body = task.done.to_json() if task.done is not None else None
            self._outbox.append(_Answer(message, body, task=False))
            return
        self._running += 1
        self._jobs.put((message, task))

    def _work(self) -> None:
        """A handler thread: one job at a time until told to end."""
        while (job := self._jobs.get()) is not None:
            message, task = job
            body = None
            try:
                done = perform(self._handler, task, self._now)
                body = done.to_json()
                level = logging.DEBUG if done.result is Result.COMPLETE else logging.WARNING
                log.log(level, "task %s (%s): %s %s", task.id, task.type, done.result, done.msg)
            except BaseException:  # the clock or the encoding failing: the task is acked unanswered
                log.exception("task %s (%s) could not be answered", task.id, task.type)
            self._finished.put(_Answer(message, body))
            self._changed.set()
            self._consumer.wakeup()

    def _collect(self) -> None:
        while True:
            try:
                answer = self._finished.get_nowait()
            except queue.Empty:
                return
            self._running -= 1
            self._outbox.append(answer)

    def _flush(self) -> None:
        """Answer and ack, in order, while the bus takes it."""
        while self._outbox and not self._sending.left():
            if not self._answer(self._outbox[0]):
                return
            self._outbox.popleft()

    def _answer(self, answer: _Answer) -> bool:
        message = answer.message
        if answer.body is not None:
            try:
                self._producer.send(self._done_topic, answer.body)
            except Exception as err:
                delay = self._sending.failed()
                log.warning("cannot send the done of %s at %s (trying again in %.1fs): %s",
                            message.topic, message.where, delay, err)  # fmt: skip
                return False
            answer.body = None
        try:
            self._consumer.ack(message)
        except BusUnavailable as err:
            delay = self._sending.failed()
            log.warning("cannot ack %s at %s (trying again in %.1fs): %s", message.topic,
                        message.where, delay, err)  # fmt: skip
            return False
        except Exception as err:
            log.error("cannot ack %s at %s: %s; it will be delivered again", message.topic,
                      message.where, err)  # fmt: skip
        self._sending.succeeded()
        self._handled += answer.task
        return True

    def _finish(self, stop_now: threading.Event) -> int:
        """The graceful stop; the number of tasks left unacked."""
        if self._running:
            log.info("stopping: waiting up to %gs for %d running task(s)", self._grace,
                     self._running)  # fmt: skip
        deadline = time.monotonic() + self._grace
        while True:
            self._changed.clear()
            self._collect()
            self._flush()
            left = deadline - time.monotonic()
            if not self._running + len(self._outbox) or stop_now.is_set() or left <= 0:
                break
            wait = min(self._poll, left, self._sending.left() if self._outbox else left)
            self._changed.wait(wait)
        unfinished = self._running + len(self._outbox)
        if self._running:
            why = "asked again" if stop_now.is_set() else f"grace of {self._grace:g}s over"
            log.warning("stopping now (%s): %d task(s) cancelled, not acked: they will be "
                        "delivered again", why, self._running)  # fmt: skip
            if self._cancel is not None:
                try:
                    self._cancel()
                except Exception:
                    log.exception("cancelling the running tasks failed")
        return unfinished

    def _close(self) -> None:
        try:
            self._consumer.close()
        except Exception as err:
            log.warning("closing the consumer failed: %s", err)
