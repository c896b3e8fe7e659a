"""`Held`: what one Redis consumer holds, and the heartbeat that keeps it.

A message is held ("in flight") from the moment XREADGROUP or XAUTOCLAIM gives it to the
consumer (buffered or handed out) until it is acked. Redis counts a pending entry's idle
time from its last delivery, and any consumer's sweep takes over entries idle past
`claim_idle`; so a heartbeat thread resets the idle time of what is held every
`claim_idle / 3`, however long the work takes. `release` (on close) does the opposite: it
makes what is held claimable by any consumer of the group at once.
"""

from __future__ import annotations

import threading
import weakref

import redis

from flowlord.bus.base import Message
from flowlord.bus.streams_common import OUTAGES, REOWN, logger

RELEASED_IDLE = 2**40
"""Idle time (ms, about 35 years) `release` gives what was held: any consumer's sweep takes
it. (Redis resets an idle time longer than its clock to 0, so not more.)"""


class Held:
    """The held messages of a consumer `name` of `group`, per topic (`keys`: topic -> stream
    key), and the acks not sent yet (Redis was down). Thread-safe."""

    def __init__(
        self, client: redis.Redis, group: str, name: str, keys: dict[str, str], *, every: float
    ) -> None:
        self._client = client
        self._group = group
        self._name = name
        self._keys = keys
        self._reown = client.register_script(REOWN)
        self._every = every
        self._lock = threading.Lock()
        self._inflight: dict[str, dict[str, Message]] = {topic: {} for topic in keys}
        self._unsent: dict[str, set[str]] = {topic: set() for topic in keys}
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        weakref.finalize(self, self._stop.set)  # dropped without close: the heartbeat ends now

    def keep(self, topic: str, messages: list[Message]) -> list[Message]:
        """Hold `messages`; returns those not held (or acked) here already, as XAUTOCLAIM
        also returns what this consumer has. Starts the heartbeat at the first one."""
        with self._lock:
            mine, unsent = self._inflight[topic], self._unsent[topic]
            fresh = [m for m in messages if m.entry not in mine and m.entry not in unsent]
            for message in fresh:
                mine[message.entry] = message
        if fresh and self._heartbeat is None and self._every > 0:
            self._heartbeat = threading.Thread(
                target=_beat_until_stopped,
                args=(weakref.ref(self), self._stop, self._every),
                name=f"redis heartbeat {self._name}",
                daemon=True,
            )
            self._heartbeat.start()
        return fresh

    def done(self, message: Message) -> bool:
        """Stop holding `message` and queue its ack; False when it was not held (never
        delivered here, acked already, or taken over). ValueError for a topic not read."""
        with self._lock:
            held = self._inflight.get(message.topic)
            if held is None:
                raise ValueError(f"topic {message.topic!r} is not one this consumer reads")
            if held.get(message.entry) != message:
                return False
            del held[message.entry]
            self._unsent[message.topic].add(message.entry)
            return True

    def send_acks(self) -> None:
        """XACK what is queued, one command per stream; what fails stays queued (XACK is
        idempotent) and the error goes up."""
        with self._lock:
            unsent = {topic: list(ids) for topic, ids in self._unsent.items() if ids}
        for topic, ids in unsent.items():
            self._client.xack(self._keys[topic], self._group, *ids)
            with self._lock:
                self._unsent[topic].difference_update(ids)

    def beat(self, idle: int = 0) -> None:
        """Set the idle time (ms) of every held entry this consumer still owns; stop holding
        those another consumer took over (warned: it may run twice) or that are gone."""
        with self._lock:
            held = {topic: list(entries) for topic, entries in self._inflight.items() if entries}
        for topic, entries in held.items():
            args = [self._group, self._name, idle, *entries]
            taken, gone = self._reown(keys=[self._keys[topic]], args=args)
            with self._lock:
                for entry in [*taken[::2], *gone]:
                    self._inflight[topic].pop(entry.decode(), None)
            for entry, owner in zip(taken[::2], taken[1::2], strict=True):
                logger.warning(
                    "topic %s: consumer %s took over message %s while consumer %s still held "
                    "it: it may run twice", topic, owner.decode(errors="replace"),
                    entry.decode(), self._name,
                )  # fmt: skip

    def stop(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()

    def release(self) -> None:
        """Send the queued acks, then make what is still held claimable at once."""
        self.send_acks()
        self.beat(RELEASED_IDLE)
        with self._lock:
            for held in self._inflight.values():
                held.clear()


def _beat_until_stopped(ref: weakref.ref[Held], stop: threading.Event, every: float) -> None:
    """The heartbeat thread. It holds `Held` only weakly, so a consumer dropped without
    `close` stops beating, and what it held goes to others after claim_idle."""
    while not stop.wait(every):
        held = ref()
        if held is None:
            return
        try:
            held.beat()
        except OUTAGES as err:
            logger.debug("heartbeat of %s: %s", held._name, err)  # receive reports outages
        except redis.RedisError as err:
            logger.warning("heartbeat of %s failed: %s", held._name, err)
        del held
