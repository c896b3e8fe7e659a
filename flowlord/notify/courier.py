"""`Courier`: POSTs the queued deliveries of one URL, in order, retrying with backoff.

One courier per URL, each on its own thread: an endpoint that hangs delays only its own
deliveries. A delivery is delivered on a 2xx answer; any other answer or error is a failure,
retried after a backoff doubling from `first_delay` to `max_delay`, until the delivery is
`give_up_after` old: then it is given up with an error log, and the next one goes. Deliveries
wait behind the one being retried, so a receiver sees them in the order they happened.

Delivery is at least once: a crash between a POST and its record repeats that POST on the next
start. Each carries `Idempotency-Key: <seq>` for receivers that care.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flowlord import version
from flowlord.notify.queue import DeliveryQueue

log = logging.getLogger(__name__)
ANSWER_BYTES = 64 * 1024


class Courier:
    """Delivers to `url` while `is_leader()`; `step(now)` makes at most one attempt."""

    def __init__(
        self,
        queue: DeliveryQueue,
        url: str,
        *,
        is_leader: Callable[[], bool],
        first_delay: timedelta = timedelta(seconds=1),
        max_delay: timedelta = timedelta(minutes=5),
        give_up_after: timedelta = timedelta(hours=24),
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self._queue = queue
        self._is_leader = is_leader
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._give_up_after = give_up_after
        self._timeout = timeout
        self._agent = f"flowlord/{version()}"
        self._inflight: http.client.HTTPConnection | None = None
        self._interrupted = False

    def step(self, now: datetime) -> datetime | None:
        """Try the oldest delivery if it is due; returns when to look again (`now`: at once,
        another may wait), or None when nothing waits."""
        if not self._is_leader() or self._interrupted:
            return None
        delivery = self._queue.head(self.url)
        if delivery is None:
            return None
        if delivery.next_try > now:
            return delivery.next_try
        headers = {"Idempotency-Key": str(delivery.seq), "User-Agent": self._agent}
        self._inflight = connection_to(self.url, timeout=self._timeout)
        try:
            error = post_json(self._inflight, self.url, delivery.body, headers=headers)
        finally:
            self._inflight = None
        if error and self._interrupted:  # our doing, not the endpoint's: not an attempt
            return None
        if not error:
            self._queue.delivered(delivery, now)
            if delivery.attempts:
                log.info("delivered %s to %s after %d failed attempt(s)", delivery.event,
                         shown_url(self.url), delivery.attempts)  # fmt: skip
            return now
        if now - delivery.created >= self._give_up_after:
            self._queue.give_up(delivery, error=error, now=now)
            log.error("gave up delivering %s (seq %d) to %s after %d attempt(s) since %s: %s",
                      delivery.event, delivery.seq, shown_url(self.url), delivery.attempts + 1,
                      delivery.created.isoformat(), error)  # fmt: skip
            return now
        wait = min(self._first_delay * 2 ** min(delivery.attempts, 32), self._max_delay)
        self._queue.failed(delivery, error=error, next_try=now + wait)
        if not delivery.attempts:  # once per delivery: a dead endpoint would flood the log
            log.warning("delivering %s (seq %d) to %s failed: %s; retrying with backoff",
                        delivery.event, delivery.seq, shown_url(self.url), error)  # fmt: skip
        return now + wait

    def interrupt(self) -> None:
        """On stop: break off a POST in flight (shut its socket down) and start no other."""
        self._interrupted = True
        connection = self._inflight
        if connection is not None and connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)


def connection_to(url: str, *, timeout: float) -> http.client.HTTPConnection:
    """A connection (not yet open) to the host of an http or https URL."""
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return kind(parts.hostname or "", parts.port, timeout=timeout)


def post_json(
    connection: http.client.HTTPConnection, url: str, body: bytes, *, headers: dict[str, str]
) -> str:
    """POST `body` as JSON to `url` with `headers`; '' on a 2xx answer, else what went wrong.
    The connection is closed after."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(
            "POST", target, body=body, headers={"Content-Type": "application/json", **headers}
        )
        answer = connection.getresponse()
        answer.read(ANSWER_BYTES)
    except (OSError, http.client.HTTPException) as err:
        return f"{type(err).__name__}: {err}"
    finally:
        connection.close()
    return "" if 200 <= answer.status < 300 else f"HTTP {answer.status} {answer.reason}"


def shown_url(url: str) -> str:
    """A URL as logs show it: chat webhooks carry their secret in the path (Slack's
    /services/T…/B…/secret), so only the scheme, host and first path segment are shown."""
    parts = urlsplit(url)
    first, _, rest = parts.path.lstrip("/").partition("/")
    tail = "/…" if rest or parts.query else ""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/{first}{tail}"
