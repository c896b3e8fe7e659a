"""The leader's periodic chores: alerts for stuck tasks, and retention in small batches."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from flowlord.state import TaskRecord, TaskStore

log = logging.getLogger("flowlord.taskmaster")


class Housekeeping:
    """Looks for stuck tasks every `stuck_every` seconds; purges old records once every
    `purge_every`, one batch per turn until nothing is left (the loop is never held long)."""

    def __init__(
        self,
        store: TaskStore,
        *,
        leader: str,
        now: Callable[[], datetime],
        stuck_every: float,
        retention: timedelta | None,
        purge_every: timedelta,
    ) -> None:
        self._store = store
        self._leader = leader
        self._now = now
        self._stuck_every = timedelta(seconds=stuck_every)
        self._retention = retention
        self._purge_every = purge_every
        self._looked: datetime | None = None
        self._purged: datetime | None = None
        self._purging = False

    def stuck_due(self, now: datetime) -> bool:
        return self._looked is None or now - self._looked >= self._stuck_every

    def purge_due(self, now: datetime) -> bool:
        if self._retention is None:
            return False
        return self._purging or self._purged is None or now - self._purged >= self._purge_every

    def alert_stuck(self) -> int:
        """One `stuck` alert for each sent task past its deadline; returns how many."""
        now = self._now()
        self._looked = now
        stuck = self._store.stuck()
        if stuck:
            with self._store.transaction(leader=self._leader) as tx:
                for record in stuck:
                    text = _stuck_text(record, now)
                    tx.alert("stuck", text, workflow=record.workflow, phase=record.phase,
                             rec=record.rec)  # fmt: skip
                    log.warning("ALERT %s", text)
        return len(stuck)

    def purge(self) -> int:
        """One batch of what is older than the retention; returns the rows deleted."""
        now = self._now()
        self._purged = now
        before = now - self._retention  # type: ignore[operator]  # purge_due said there is one
        deleted = self._store.purge(before, leader=self._leader)
        self._purging = deleted > 0
        if deleted:
            log.info("retention: deleted %d row(s) older than %s", deleted, before.isoformat())
        return deleted


def _stuck_text(record: TaskRecord, now: datetime) -> str:
    sent = record.sent.isoformat() if record.sent else "?"
    deadline = record.deadline.isoformat() if record.deadline else "?"
    return (
        f"record {record.rec} ({record.name} {record.id}) sent at {sent} has no done "
        f"by its deadline {deadline} (now {now.isoformat()})"
    )
