"""Server-sent events fan-out: any thread publishes, each `/api/events` client has a queue.

The watcher thread publishes workflow changes, a poller publishes task, control and alert
changes; each subscriber's queue is bounded, so a client that stops reading loses events (it
is told with a `lagged` event) instead of growing memory without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass

QUEUE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event: its name and its JSON data."""

    name: str
    data: dict[str, object]


CLOSED = Event("closed", {})
"""Put last in every queue when the hub closes: the stream ends."""


class EventHub:
    """Publish from any thread; subscribe from the server's event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[asyncio.Queue[Event], asyncio.AbstractEventLoop] = {}
        self._closed = False

    def subscribe(self) -> asyncio.Queue[Event]:
        """A queue of the events published from now on (call in the event loop)."""
        queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        with self._lock:
            if self._closed:
                queue.put_nowait(CLOSED)
            else:
                self._queues[queue] = asyncio.get_running_loop()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        with self._lock:
            self._queues.pop(queue, None)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._queues)

    def publish(self, name: str, data: dict[str, object]) -> None:
        """Hand the event to every subscriber's loop; never blocks the publisher."""
        event = Event(name, data)
        with self._lock:
            targets = list(self._queues.items())
        for queue, loop in targets:
            try:
                loop.call_soon_threadsafe(_offer, queue, event)
            except RuntimeError:  # that loop is closed: the server is stopping
                self.unsubscribe(queue)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        with self._lock:
            self._closed = True
            targets = list(self._queues.items())
            self._queues.clear()
        for queue, loop in targets:
            with contextlib.suppress(RuntimeError):  # that loop is closed already
                loop.call_soon_threadsafe(_force, queue, CLOSED)


def _offer(queue: asyncio.Queue[Event], event: Event) -> None:
    if queue.full():
        return
    if queue.qsize() == QUEUE_SIZE - 1:
        queue.put_nowait(Event("lagged", {"reason": "the client read too slowly; reload"}))
        return
    queue.put_nowait(event)


def _force(queue: asyncio.Queue[Event], event: Event) -> None:
    while queue.full():
        queue.get_nowait()
    queue.put_nowait(event)
