"""Shared set-up of the notification tests: a task store and a notifier on one database file
in tmp_path, both on a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apsw

from flowlord.notify import Notifier
from flowlord.notify.courier import Courier
from flowlord.state import SQLiteTaskStore

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class Clock:
    """The time of the store and the notifier; tests move it."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> datetime:
        self.now = T0 + timedelta(seconds=seconds)
        return self.now


class Leader:
    """`is_leader` for a notifier: a switch the test flips."""

    def __init__(self) -> None:
        self.leading = True

    def __call__(self) -> bool:
        return self.leading


@contextmanager
def notifier(path: Path, clock: Clock, **options: object) -> Iterator[Notifier]:
    built = Notifier(path, now=clock, **{"is_leader": lambda: True, **options})  # type: ignore[arg-type]
    try:
        yield built
    finally:
        built.stop()


def drive(courier: Courier, now: datetime) -> datetime | None:
    """Step a courier at `now` until it has nothing more to do now; when it wants to go on."""
    while True:
        wake = courier.step(now)
        if wake is None or wake > now:
            return wake


def raise_alert(store: SQLiteTaskStore, message: str, *, kind: str = "failed") -> int:
    with store.transaction() as tx:
        return tx.alert(kind, message, workflow="w.toml", phase="load")


def deliveries(path: Path) -> list[tuple[object, ...]]:
    """(seq, url, event, attempts, delivered, gave_up, last_error, alert_first, alert_last)."""
    db = apsw.Connection(str(path))
    try:
        return db.execute(
            "SELECT seq, url, event, attempts, delivered IS NOT NULL, gave_up IS NOT NULL, "
            "last_error, alert_first, alert_last FROM deliveries ORDER BY seq"
        ).fetchall()
    finally:
        db.close()
