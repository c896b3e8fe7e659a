"""`Notifier`: alert summaries and event hooks (DESIGN §5), off the scheduler loop.

A producer thread queues deliveries in the database; a courier thread per URL POSTs them. Both
work only while this process leads. Each thread runs its component's `step(now)` and waits for
the time it asks, a poke, or at most `poll` seconds (to notice writes by other processes and a
change of leader). Stopping breaks off the POSTs in flight (a hanging endpoint holds nobody)
and waits a bounded time; a thread still busy after it is a daemon, left to its socket timeout.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from cache import RefreshError
from cache.watcher import OnChange, OnError, log_error
from flowlord.config import RunConfig
from flowlord.notify.courier import Courier
from flowlord.notify.producer import Producer
from flowlord.notify.queue import DeliveryQueue
from workflow.hooks import Hook, subscribers
from workflow.notify import DEFAULT_POLICY, SummaryPolicy

log = logging.getLogger(__name__)
Step = Callable[[datetime], datetime | None]
ERROR_WAIT = 5.0


class Notifier:
    """Notifications for the flowlord database at `db_path`.

    `workflow_changed` and `workflow_failed` take what the cache's watcher reports; `poke()`
    says something was committed (else it is noticed within `poll` seconds). The `producer`
    and each of the `couriers` (by URL) do one round per `step(now)`; `start()` runs each on
    a thread of its own, `stop()` ends them and closes the database.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        alert_webhook: str = "",
        hooks: Iterable[Hook] = (),
        policy: SummaryPolicy = DEFAULT_POLICY,
        is_leader: Callable[[], bool],
        now: Callable[[], datetime],
        first_delay: timedelta = timedelta(seconds=1),
        max_delay: timedelta = timedelta(minutes=5),
        give_up_after: timedelta = timedelta(hours=24),
        timeout: float = 10.0,
        poll: float = 0.5,
    ) -> None:
        self._queue = DeliveryQueue(db_path)
        self._now = now
        self._poll = poll
        events = subscribers(hooks)
        urls = [alert_webhook] if alert_webhook else []
        urls += [url for event_urls in events.values() for url in event_urls]
        self._wakes = {url: threading.Event() for url in urls}
        self._producer_wake = threading.Event()
        self.producer = Producer(
            self._queue, hooks=events, alert_webhook=alert_webhook, policy=policy,
            is_leader=is_leader, on_queued=lambda url: self._wakes[url].set(),
        )  # fmt: skip
        self.couriers: dict[str, Courier] = {}
        for url in self._wakes:
            self.couriers[url] = Courier(
                self._queue, url, is_leader=is_leader, first_delay=first_delay,
                max_delay=max_delay, give_up_after=give_up_after, timeout=timeout,
            )  # fmt: skip
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """The producer thread and a courier thread per URL."""
        steps: list[tuple[str, Step, threading.Event]] = [
            ("notify-producer", self.producer.step, self._producer_wake)
        ]
        for number, courier in enumerate(self.couriers.values()):
            steps.append((f"notify-courier-{number}", courier.step, self._wakes[courier.url]))
        for name, step, wake in steps:
            thread = threading.Thread(target=self._loop, args=(step, wake), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def poke(self) -> None:
        self._producer_wake.set()

    def workflow_changed(self, keys: Sequence[str]) -> None:
        self.producer.workflow_changed(keys)
        self.poke()

    def workflow_failed(self, errors: Mapping[str, str]) -> None:
        self.producer.workflow_failed(errors)
        self.poke()

    def following(
        self, on_change: OnChange, on_error: OnError = log_error
    ) -> tuple[OnChange, OnError]:
        """The cache watcher's callbacks, wrapped to tell the notifier too: the files applied,
        and the files that failed to load (which `on_change` never names)."""

        def changed(keys: list[str]) -> None:
            self.workflow_changed(keys)
            on_change(keys)

        def failed(err: Exception) -> None:
            if isinstance(err, RefreshError):
                self.workflow_failed(err.errors)
            on_error(err)

        return changed, failed

    def stop(self, *, timeout: float = 0.5) -> None:
        """Stop the threads, breaking off POSTs in flight, waiting at most `timeout` seconds in
        all; close the database unless a thread is still busy (a courier still connecting to a
        silent host: it ends with its socket timeout, and the process does not wait for it)."""
        self._stop.set()
        for wake in [self._producer_wake, *self._wakes.values()]:
            wake.set()
        for courier in self.couriers.values():
            courier.interrupt()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [thread.name for thread in self._threads if thread.is_alive()]
        if stuck:
            log.info("notifications stopped; %s still waiting on an endpoint", ", ".join(stuck))
        else:
            self._queue.close()

    def _loop(self, step: Step, wake: threading.Event) -> None:
        """Run `step` until stopped; an error is logged and tried again after ERROR_WAIT."""
        while not self._stop.is_set():
            wake.clear()  # before the step: a wake during it is not lost
            try:
                wake_at = step(self._now())
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("%s failed; trying again", threading.current_thread().name)
                wake.wait(ERROR_WAIT)
                continue
            wait = self._poll
            if wake_at is not None:
                wait = min(wait, (wake_at - self._now()).total_seconds())
            if wait > 0:
                wake.wait(wait)


def notifier_for(
    config: RunConfig, *, is_leader: Callable[[], bool], now: Callable[[], datetime]
) -> Notifier | None:
    """The notifier `config` asks for (`alert_webhook`, `hooks`), or None if it asks for none
    (or the database is in memory: another connection could not see it)."""
    if not config.alert_webhook and not config.hooks:
        return None
    if config.db == ":memory:":
        log.error("notifications need a database file, not :memory:: none will be sent")
        return None
    policy = SummaryPolicy(config.alert_min_interval, config.alert_max_interval)
    return Notifier(
        config.db, alert_webhook=config.alert_webhook, hooks=config.hooks, policy=policy,
        is_leader=is_leader, now=now,
    )  # fmt: skip
