"""`DeliveryQueue`: the durable queue of POSTs to make, on a connection of its own.

The producer and every courier share it: one connection under one lock, held by a write
transaction from BEGIN IMMEDIATE to COMMIT (never across a POST). `PRAGMA data_version` on this
connection changes only when another connection commits: the producer's cheap test for "the
task store, the cache or a CLI wrote something".
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import apsw

from flowlord.notify.schema import connect
from flowlord.state.rows import to_text


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One queued POST. `alerts` is the (first, last) alert seq of a summary, else None."""

    seq: int
    url: str
    event: str
    body: bytes
    created: datetime
    attempts: int
    next_try: datetime
    alerts: tuple[int, int] | None = None


_HEAD = (
    "SELECT seq, url, event, body, created, attempts, next_try, alert_first, alert_last "
    "FROM deliveries WHERE url = ? AND delivered IS NULL AND gave_up IS NULL "
    "ORDER BY seq LIMIT 1"
)


class DeliveryQueue:
    """Deliveries and cursors in the flowlord database at `db_path`."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self._db = connect(db_path)
        self._lock = threading.RLock()
        self._version = self._data_version()

    def changed(self) -> bool:
        """Whether another connection committed since the last call."""
        with self._lock:
            version = self._data_version()
            changed, self._version = version != self._version, version
            return changed

    @contextmanager
    def writing(self) -> Iterator[apsw.Connection]:
        """`BEGIN IMMEDIATE` ... COMMIT under the lock; an exception rolls it all back. The
        connection is for the statements of `flowlord.notify.sources` and `enqueue`."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def head(self, url: str) -> Delivery | None:
        """The oldest delivery to `url` neither delivered nor given up."""
        with self._lock:
            rows = self._db.execute(_HEAD, (url,)).fetchall()
        if not rows:
            return None
        seq, url, event, body, created, attempts, next_try, first, last = rows[0]
        return Delivery(
            seq=seq, url=url, event=event, body=body.encode(), attempts=attempts,
            created=datetime.fromisoformat(created), next_try=datetime.fromisoformat(next_try),
            alerts=None if first is None else (first, last),
        )  # fmt: skip

    def delivered(self, delivery: Delivery, now: datetime) -> None:
        """Mark it delivered and, for a summary, its alerts notified: both or neither."""
        with self.writing() as db:
            db.execute(
                "UPDATE deliveries SET delivered = ?, attempts = attempts + 1, last_error = '' "
                "WHERE seq = ?",
                (to_text(now), delivery.seq),
            )
            if delivery.alerts is not None:
                db.execute(
                    "UPDATE alert_records SET notified = ? "
                    "WHERE seq BETWEEN ? AND ? AND notified IS NULL",
                    (to_text(now), *delivery.alerts),
                )

    def failed(self, delivery: Delivery, *, error: str, next_try: datetime) -> None:
        with self.writing() as db:
            db.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, next_try = ? "
                "WHERE seq = ?",
                (error, to_text(next_try), delivery.seq),
            )

    def give_up(self, delivery: Delivery, *, error: str, now: datetime) -> None:
        with self.writing() as db:
            db.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, gave_up = ? "
                "WHERE seq = ?",
                (error, to_text(now), delivery.seq),
            )

    def purge(self, before: datetime, *, batch: int = 500) -> int:
        """Delete up to `batch` deliveries finished (delivered or given up) and created before
        `before`, oldest first; how many."""
        with self.writing() as db:
            db.execute(
                "DELETE FROM deliveries WHERE seq IN (SELECT seq FROM deliveries "
                "WHERE (delivered IS NOT NULL OR gave_up IS NOT NULL) AND created < ? "
                "ORDER BY seq LIMIT ?)",
                (to_text(before), batch),
            )
            return db.changes()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _data_version(self) -> int:
        return self._db.execute("PRAGMA data_version").fetchall()[0][0]


def enqueue(
    db: apsw.Connection,
    *,
    url: str,
    event: str,
    body: object,
    now: datetime,
    alerts: tuple[int, int] | None = None,
) -> None:
    """Queue one POST of `body` as JSON (inside `DeliveryQueue.writing`), due at once."""
    first, last = alerts if alerts is not None else (None, None)
    created = to_text(now)
    db.execute(
        "INSERT INTO deliveries (url, event, body, created, next_try, alert_first, alert_last) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (url, event, json.dumps(body, separators=(",", ":")), created, created, first, last),
    )


def abandon_others(db: apsw.Connection, urls: Collection[str], now: datetime) -> int:
    """Give up what waits for a URL no longer configured (inside `writing`); how many rows."""
    db.execute(
        "UPDATE deliveries SET gave_up = ?, last_error = 'the URL is no longer configured' "
        "WHERE delivered IS NULL AND gave_up IS NULL "
        "AND url NOT IN (SELECT value FROM json_each(?))",
        (to_text(now), json.dumps(sorted(urls))),
    )
    return db.changes()
