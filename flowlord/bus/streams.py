"""`RedisBus`: topics as Redis Streams, so workers on other machines can join (DESIGN §8).

The stream of topic T is the key `flowlord:T`; each entry has one field, `body`, the message.
A consumer group per `group` argument reads each stream; every consumer object is a consumer
of that group under its own name (`host:pid:random`). Delivery is at least once, and acks are
per message: an acked message never comes again, an unacked one goes to another consumer of
the group once its holder closed (at once) or stopped answering (after `claim_idle`).

A worker in any language joins the same way: `XREADGROUP GROUP <group> <name> ... STREAMS
flowlord:<topic> >`, then `XACK` each entry once done; `XADD flowlord:<topic> * body <json>`
sends.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Sequence

import redis

from flowlord.bus.base import BusUnavailable, Consumer, Producer, check_body, check_topic
from flowlord.bus.streams_common import (
    COMMAND_TIMEOUT,
    CONNECT_TIMEOUT,
    OUTAGES,
    TRIM,
    Outage,
    connection_options,
    logger,
    reason,
    stream_key,
)
from flowlord.bus.streams_consumer import RedisConsumer

TRIM_EVERY = 1000
TRIM_INTERVAL = 10.0
"""A producer trims a topic's finished entries after this many sends to it, or this many
seconds, whichever comes first."""
CAP_WARNING_INTERVAL = 3600.0

_PASSWORD_PARAM = re.compile(r"(?i)(^|&)(password=)[^&]*")


def redacted(url: str) -> str:
    """`url` without its password (`user:secret@` becomes `user:***@`, `password=` in the
    query `password=***`): the form every log line and error shows."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***" if "@" in url else url
    place, question, query = rest.partition("?")
    userinfo, at, host = place.rpartition("@")
    if at and ":" in userinfo:
        place = f"{userinfo.partition(':')[0]}:***@{host}"
    if question:
        query = _PASSWORD_PARAM.sub(r"\1\2***", query)
    return f"{scheme}{sep}{place}{question}{query}"


class RedisBus:
    """Topics as Redis Streams on the server at `url` (redis://, rediss:// or unix://).

    `claim_idle`: seconds after which a message that a consumer received and neither acked
    nor kept alive (its heartbeat runs every `claim_idle / 3`) goes to another consumer of
    the group. `max_len`: entries a stream keeps at most, read or not. `forget_idle`: seconds
    a consumer holding nothing may sit idle before the group forgets it (default
    max(10 x claim_idle, 1 hour)).

    Nothing connects until used; `check` tells whether the server answers now.
    """

    def __init__(
        self,
        url: str,
        *,
        claim_idle: float = 60.0,
        max_len: int = 1_000_000,
        forget_idle: float | None = None,
    ) -> None:
        if not claim_idle >= 0:
            raise ValueError(f"claim_idle must be 0 or more, not {claim_idle!r}")
        if not max_len >= 1:
            raise ValueError(f"max_len must be positive, not {max_len!r}")
        self.url = url
        self.where = redacted(url)
        self.claim_idle = claim_idle
        self.max_len = max_len
        self.forget_idle = max(10 * claim_idle, 3600.0) if forget_idle is None else forget_idle
        self.client = redis.Redis.from_url(url, **connection_options(COMMAND_TIMEOUT))
        self.outage = Outage(self.where)  # one per bus: logged once, and sends fail fast
        self._made: weakref.WeakSet[RedisConsumer | _RedisProducer] = weakref.WeakSet()

    def check(self) -> None:
        """Raise BusUnavailable, naming the server but never its password, unless it answers
        PING now."""
        options = connection_options(CONNECT_TIMEOUT)  # a server that never answers: 2 s
        try:
            with redis.Redis.from_url(self.url, **options) as client:
                client.ping()
        except redis.RedisError as err:
            raise BusUnavailable(f"cannot reach Redis at {self.where}: {reason(err)}") from None

    def producer(self) -> Producer:
        made = _RedisProducer(self)
        self._made.add(made)
        return made

    def consumer(self, topics: Sequence[str], group: str, *, count: int = 1) -> Consumer:
        """A consumer of `group` that takes up to `count` entries of a topic at a time (the
        rest wait in it, kept alive, until received). A new group reads topics from their
        start."""
        made = RedisConsumer(self, topics, group, count=count)
        self._made.add(made)
        return made

    def close(self) -> None:
        """Close every producer and consumer made here, then the connection pool."""
        for made in list(self._made):
            made.close()
        self.client.close()


class _RedisProducer:
    """`send` is XADD with the `max_len` cap; now and then it also trims what every group has
    finished. While Redis is down, sends raise BusUnavailable at once (backoff window)."""

    def __init__(self, bus: RedisBus) -> None:
        self._client = bus.client
        self._max_len = bus.max_len
        self._outage = bus.outage
        self._trim = self._client.register_script(TRIM)
        self._lock = threading.Lock()
        self._closed = False
        self._trims: dict[str, tuple[int, float]] = {}
        self._capped: dict[str, float] = {}

    def send(self, topic: str, body: str) -> None:
        check_topic(topic)
        check_body(body)
        if self._closed:
            raise ValueError("send on a closed producer")
        if self._outage.holding():
            raise BusUnavailable(f"Redis at {self._outage.where} is down: {self._outage.cause}")
        key = stream_key(topic)
        try:
            self._client.xadd(key, {"body": body}, maxlen=self._max_len, approximate=True)
        except OUTAGES as err:
            self._outage.failed(err)
            raise BusUnavailable(
                f"cannot reach Redis at {self._outage.where}: {reason(err)}"
            ) from None
        self._outage.succeeded()
        if self._trim_due(topic):
            self._trim_finished(topic, key)

    def _trim_due(self, topic: str) -> bool:
        now = time.monotonic()
        with self._lock:
            sends, since = self._trims.get(topic, (TRIM_EVERY, now))
            due = sends + 1 >= TRIM_EVERY or now - since >= TRIM_INTERVAL
            self._trims[topic] = (0, now) if due else (sends + 1, since)
            return due

    def _trim_finished(self, topic: str, key: str) -> None:
        """Trim what every group finished; warn when the cap, not the groups, bounds the
        stream. The message was sent: a failure here is logged, never raised."""
        try:
            trimmed, length = self._trim(keys=[key])
        except OUTAGES:
            return  # the next send reports the outage
        except redis.RedisError as err:
            logger.warning("topic %s: trimming what every group finished failed: %s", topic, err)
            return
        if trimmed:
            logger.debug("topic %s: trimmed %d entries every group finished", topic, trimmed)
        if length >= self._max_len:
            now = time.monotonic()
            with self._lock:
                warned = self._capped.get(topic)
                if warned is not None and now - warned < CAP_WARNING_INTERVAL:
                    return
                self._capped[topic] = now
            logger.warning(
                "topic %s holds %d entries, its cap (setting redis_max_len = %d): the oldest "
                "entries are being dropped even if unread",
                topic, length, self._max_len,
            )  # fmt: skip

    def close(self) -> None:
        self._closed = True
