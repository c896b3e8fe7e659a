"""`RedisConsumer`: one consumer of a group on Redis Streams (see `flowlord.bus.streams`).

`receive` hands out what it holds first; then, when due, it sweeps (XAUTOCLAIM) what other
consumers left idle past `claim_idle`; then it reads one topic at a time without blocking,
starting after the topic that delivered last, so topics take turns; only when none has
anything does it block on all of them, in slices of at most a second, on a connection of its
own that `wakeup` and `close` interrupt with CLIENT UNBLOCK.

What it holds (delivered or buffered, not acked) `Held` keeps alive with a heartbeat, so no
other consumer takes it however long the work takes; `close` makes it claimable at once.
"""

from __future__ import annotations

import math
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import redis

from flowlord.bus.base import Message, check_group, check_topic
from flowlord.bus.streams_common import (
    COMMAND_TIMEOUT,
    FORGET,
    OUTAGES,
    connection_options,
    logger,
    message_of,
    stream_key,
)
from flowlord.bus.streams_held import Held

if TYPE_CHECKING:
    from flowlord.bus.streams import RedisBus

SLICE = 1.0
"""Longest single blocking read: a wakeup that races the start of a block costs at most this."""
MIN_SWEEP = 0.05
UNBLOCK_TRIES = 100
UNBLOCK_PAUSE = 0.005


class RedisConsumer:
    """Reads `topics` for `group` as the consumer `name`; see the module docstring.

    Locks: `_receiving` is held by `receive` (and `close`) and guards the blocking
    connection; `_lock` guards the buffer and the state `wakeup` and `close` share.
    """

    def __init__(self, bus: RedisBus, topics: Sequence[str], group: str, *, count: int) -> None:
        if isinstance(topics, str) or not topics:
            raise ValueError(f"a consumer needs a list of topics, not {topics!r}")
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, not {count!r}")
        self.group = check_group(group)
        self.topics = tuple(dict.fromkeys(check_topic(topic) for topic in topics))
        self.name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._keys = {topic: stream_key(topic) for topic in self.topics}
        self._topic_of = {key.encode(): topic for topic, key in self._keys.items()}
        self._count = count
        self._claim_idle = bus.claim_idle
        self._forget_ms = int(bus.forget_idle * 1000)
        self._client = bus.client
        self._held = Held(bus.client, group, self.name, self._keys, every=bus.claim_idle / 3)
        self._forget = bus.client.register_script(FORGET)
        self._outage = bus.outage
        options = connection_options(SLICE + COMMAND_TIMEOUT)  # an empty block is no timeout
        pool = redis.ConnectionPool.from_url(bus.url, **options)
        self._conn = pool.connection_class(**pool.connection_kwargs)
        self._client_id: int | None = None
        self._lock = threading.Lock()
        self._receiving = threading.Lock()
        self._stir = threading.Event()  # ends a backoff wait: set by wakeup and close
        self._closed = False
        self._woken = False
        self._blocking: int | None = None  # the client ID of a blocking read under way
        self._buffer: deque[Message] = deque()
        self._start = 0
        self._next_sweep = 0.0
        self._cursors: dict[str, bytes] = {}  # where a sweep that filled the buffer stopped
        self._groups_ready = False
        try:
            self._create_groups()
        except OUTAGES as err:  # Redis is down: the first receive creates them
            self._outage.failed(err)

    def receive(self, timeout: float) -> Message | None:
        deadline = time.monotonic() + timeout
        with self._receiving:
            with self._lock:
                self._check_open()
            fetched = False
            while True:
                with self._lock:
                    if self._closed:
                        return None
                    if self._woken:
                        self._woken = False
                        self._stir.clear()
                        return None
                    if self._buffer:
                        return self._buffer.popleft()
                remaining = deadline - time.monotonic()
                if fetched and remaining <= 0:
                    return None
                self._fetch_contained(remaining)
                fetched = True

    def _fetch_contained(self, remaining: float) -> None:
        """One round of fetching; an outage is logged once and waited out with backoff
        (interrupted by wakeup and close), a lost group is re-created by the next round."""
        try:
            self._fetch(remaining)
        except OUTAGES as err:
            delay = self._outage.failed(err)
            self._stir.wait(min(delay, max(remaining, 0.0)))
            return
        except redis.ResponseError as err:
            if not str(err).startswith(("NOGROUP", "UNBLOCKED")):
                raise
            logger.warning(
                "consumer group %s of %s is missing (Redis lost its data, or someone deleted "
                "it): creating it again", self.group, ", ".join(self.topics),
            )  # fmt: skip
            self._groups_ready = False
            return
        self._outage.succeeded()

    def _fetch(self, remaining: float) -> None:
        if not self._groups_ready:
            self._create_groups()
        self._held.send_acks()
        now = time.monotonic()
        if now >= self._next_sweep:
            finished = self._sweep()
            self._next_sweep = now + max(self._claim_idle / 2, MIN_SWEEP) if finished else now
            if self._buffer:
                return
        if self._read_now() or remaining <= 0:
            return
        self._read_blocking(min(remaining, SLICE, max(self._next_sweep - now, 0.001)))

    def _create_groups(self) -> None:
        """Each topic's group, from the topic's start (as a new file bus group reads)."""
        for key in self._keys.values():
            try:
                self._call("XGROUP", "CREATE", key, self.group, "0", "MKSTREAM")
            except redis.ResponseError as err:
                if not str(err).startswith("BUSYGROUP"):
                    raise
        self._groups_ready = True

    def _read_now(self) -> bool:
        """Read the topics in turn without blocking; True once one had something."""
        for key in self._rotated_keys():
            reply = self._call(
                "XREADGROUP", "GROUP", self.group, self.name, "COUNT", self._count,
                "STREAMS", key, ">",
            )  # fmt: skip
            if reply:
                self._hold(reply)
                return True
        return False

    def _read_blocking(self, seconds: float) -> None:
        keys = self._rotated_keys()
        block = max(1, math.ceil(seconds * 1000))
        self._connect()
        with self._lock:  # a wakeup from here on sees `_blocking` and unblocks the read
            if self._woken or self._closed:
                return
            self._conn.send_command(
                "XREADGROUP", "GROUP", self.group, self.name, "COUNT", self._count,
                "BLOCK", block, "STREAMS", *keys, *[">"] * len(keys),
            )  # fmt: skip
            self._blocking = self._client_id
        try:
            reply = self._conn.read_response()
        except OUTAGES:
            self._conn.disconnect()
            raise
        finally:
            with self._lock:
                self._blocking = None
        if reply:
            self._hold(reply)

    def _rotated_keys(self) -> list[str]:
        keys = list(self._keys.values())
        start = self._start % len(keys)
        return keys[start:] + keys[:start]

    def _hold(self, reply: list[list]) -> None:
        """Buffer what XREADGROUP delivered, in flight from now on; the next read starts
        after the topic that delivered."""
        for key, entries in reply:
            topic = self._topic_of[key]
            self._start = self.topics.index(topic) + 1
            self._keep(topic, [message_of(topic, entry, fields) for entry, fields in entries])

    def _keep(self, topic: str, messages: list[Message]) -> int:
        """Hold and buffer the messages not held already; returns how many."""
        fresh = self._held.keep(topic, messages)
        with self._lock:
            self._buffer.extend(fresh)
        return len(fresh)

    def _sweep(self) -> bool:
        """Take over what other consumers left idle past `claim_idle` (up to `count`), and
        forget long-idle empty consumers. False when it stopped with `count` taken: the next
        receive goes on from there."""
        for topic, key in self._keys.items():
            cursor = self._cursors.pop(topic, b"0-0")
            if len(self._buffer) < self._count:
                if cursor == b"0-0":
                    self._forget_idle(topic, key)
                cursor = self._claim(topic, key, cursor)
            if cursor != b"0-0" or len(self._buffer) >= self._count:
                self._cursors[topic] = cursor
                return False
        return True

    def _claim(self, topic: str, key: str, cursor: bytes) -> bytes:
        """XAUTOCLAIM from `cursor` until the group's pending list is done (b"0-0") or the
        buffer holds `count`; returns where it stopped. What Redis reports trimmed while
        pending is acked (nobody can run it) and logged as lost."""
        idle = int(self._claim_idle * 1000)
        taken, lost = 0, []
        while len(self._buffer) < self._count:
            reply = self._call(
                "XAUTOCLAIM", key, self.group, self.name, idle, cursor,
                "COUNT", self._count - len(self._buffer),
            )  # fmt: skip
            cursor = reply[0]
            taken += self._keep(topic, [message_of(topic, *e) for e in reply[1] if e is not None])
            lost += reply[2] if len(reply) > 2 else []  # Redis 7: deleted while pending
            if cursor == b"0-0":
                break
        if taken:
            logger.info(
                "topic %s: took over %d message(s) another consumer of group %s left unacked "
                "for %s s or more", topic, taken, self.group, self._claim_idle,
            )  # fmt: skip
        if lost:
            self._call("XACK", key, self.group, *lost)
            logger.error(
                "topic %s: %d message(s) were trimmed before group %s finished them, and are "
                "lost: %s (raise redis_max_len, or add consumers)",
                topic, len(lost), self.group, ", ".join(entry.decode() for entry in lost),
            )  # fmt: skip
        return cursor

    def _forget_idle(self, topic: str, key: str) -> None:
        for name in self._forget(keys=[key], args=[self.group, self._forget_ms]):
            logger.info("topic %s: group %s forgot idle consumer %s", topic, self.group,
                        name.decode(errors="replace"))  # fmt: skip

    def ack(self, message: Message) -> None:
        """Ack `message` in Redis now; while Redis is down the ack waits in this consumer and
        goes with the next `receive` or `close` (XACK is idempotent). Never raises for an
        outage."""
        self.ack_all((message,))

    def ack_all(self, messages: Sequence[Message]) -> None:
        """Ack `messages` with one XACK per stream, as `ack` does each."""
        with self._lock:
            self._check_open()
            buffered = set(self._buffer)  # not delivered yet: nothing to ack
        queued = [self._held.done(m) for m in messages if m not in buffered]
        if any(queued) and not self._outage.holding():
            try:
                self._held.send_acks()
            except OUTAGES as err:
                self._outage.failed(err)

    def wakeup(self) -> None:
        self._interrupt(closing=False)

    def _interrupt(self, *, closing: bool) -> bool:
        """Mark this consumer woken (or closed) and end a blocking read under way; False
        when it was closed already."""
        with self._lock:
            if self._closed:
                return False
            if closing:
                self._closed = True
            else:
                self._woken = True
            self._stir.set()
            blocking = self._blocking
        if blocking is not None:
            self._unblock(blocking)
        return True

    def _unblock(self, client_id: int) -> None:
        """CLIENT UNBLOCK the blocking read; if Redis has not seen the read yet (it came on
        another connection), try again while the read is under way."""
        for _ in range(UNBLOCK_TRIES):
            try:
                if self._client.client_unblock(client_id):
                    return
            except redis.RedisError:
                return  # the slice ends the read anyway
            with self._lock:
                if self._blocking != client_id:
                    return
            time.sleep(UNBLOCK_PAUSE)

    def close(self) -> None:
        """Stop the heartbeat, send pending acks, and make what this consumer held (delivered
        or buffered, not acked) claimable by any other consumer of the group at once."""
        if not self._interrupt(closing=True):
            return
        self._held.stop()
        with self._receiving:
            try:
                self._held.release()
            except redis.RedisError as err:
                logger.warning(
                    "consumer %s closed without releasing what it held (%s): other consumers "
                    "take it over after redis_claim_idle", self.name, err,
                )  # fmt: skip
            with self._lock:
                self._buffer.clear()
            self._conn.disconnect()

    def _connect(self) -> None:
        """Connect the blocking connection if needed, learning its client ID (for UNBLOCK)."""
        if not self._conn.is_connected:
            self._conn.connect()
            self._conn.send_command("CLIENT", "ID")
            self._client_id = self._conn.read_response()

    def _call(self, *args: object) -> Any:
        """One command on the blocking connection (the receiving thread's own)."""
        try:
            self._connect()
            self._conn.send_command(*args)
            return self._conn.read_response()
        except OUTAGES:
            self._conn.disconnect()
            raise

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("consumer is closed")
