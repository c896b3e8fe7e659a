"""`SQLiteTaskStore`: task state in the cache's database file, on a connection of its own.

One connection, shared by threads under one lock that a transaction holds from BEGIN to
COMMIT: the API's reader thread sees a batch of the taskmaster whole or not at all. Writes
are `BEGIN IMMEDIATE`, so a read-then-write never fails busy against another process.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

from flowlord.state import queries as q
from flowlord.state import rows
from flowlord.state.protocol import (
    EVERY_TASK,
    Alert,
    CorruptRecord,
    Lease,
    LeaseLost,
    Stats,
    StoreError,
    TaskFilter,
    TaskRecord,
    Transition,
)
from flowlord.state.rules import OLDER, age_bounds, check_limit, lease_lost, leased
from flowlord.state.schema import connect
from flowlord.state.sqlite_tx import SQLiteTx, read_record
from workflow.controls import Control, ControlEvent, Paused
from workflow.state import State

log = logging.getLogger(__name__)
T = TypeVar("T")


class SQLiteTaskStore:
    """The durable `TaskStore`. `synchronous="NORMAL"` trades the last commits on power loss
    for cheaper commits; keep FULL (the default) wherever a lost commit loses a task."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        now: Callable[[], datetime],
        synchronous: str = "FULL",
    ) -> None:
        self._db = connect(db_path, synchronous=synchronous)
        self._now = now
        self._lock = threading.RLock()
        self._data_version = self._pragma("data_version")
        # The pauses as last read, and the data_version they were read at: read again only
        # after another connection commits, or after a control is written through this one
        # (which data_version does not show).
        self._paused: tuple[int, Paused] | None = None

    @contextmanager
    def transaction(self, *, leader: str | None = None) -> Iterator[SQLiteTx]:
        with self._writing():
            tx = SQLiteTx(self._db, self._now, on_control_write=self._forget_paused)
            try:
                if leader is not None:
                    self._check_leader(leader)
                yield tx
                tx.flush()
            except BaseException:
                self._forget_paused()  # a rolled-back control write must not stay cached
                raise
            finally:
                tx.open = False

    def get(self, rec: int) -> TaskRecord:
        with self._lock:
            return read_record(self._db, rec)

    def tasks(self, where: TaskFilter = EVERY_TASK) -> list[TaskRecord]:
        check_limit(where.limit)
        sql, params = q.tasks_query(where)
        return self._collect(sql, params, rows.record, where.limit)

    def run(self, task_id: str) -> list[TaskRecord]:
        return self._collect(q.RUN, (task_id,), rows.record)

    def transitions(self, rec: int) -> list[Transition]:
        return self._collect(q.TRANSITIONS, (rec,), rows.transition)

    def alerts(
        self, *, since: datetime | None = None, kind: str | None = None, limit: int = 100
    ) -> list[Alert]:
        check_limit(limit)
        sql, params = q.alerts_query(since, kind)
        return self._collect(sql, params, rows.alert, limit)

    def stats(self) -> Stats:
        """Counts from one snapshot. States nobody knows (a row mended by hand) are shown
        under their stored name rather than hidden."""
        bounds = age_bounds(self._now())
        with self._reading():
            states = dict.fromkeys((state.value for state in State), 0)
            states.update(self._db.execute(q.STATES).fetchall())
            younger = [
                self._db.execute(q.YOUNGER, (rows.to_text(bound),)).fetchall()[0][0]
                for _, bound in bounds
            ]
            alerts = self._db.execute(q.ALERT_COUNT).fetchall()[0][0]
            size = self._pragma("page_count") * self._pragma("page_size")
        edges = [0, *younger, sum(states.values())]  # records younger than each bound
        names = [name for name, _ in bounds] + [OLDER]
        by_age = {name: edges[i + 1] - edges[i] for i, name in enumerate(names)}
        return Stats(states=states, by_age=by_age, db_bytes=size, alerts=alerts)

    def counts(self, *, since: datetime | None = None) -> dict[str, dict[str, int]]:
        """One GROUP BY on the `created` index; a state nobody knows (a row mended by hand)
        is counted under its stored name, as `stats()` does."""
        bound = "" if since is None else rows.to_text(since)
        found: dict[str, dict[str, int]] = {}
        with self._reading():
            for workflow, state, count in self._db.execute(q.COUNTS, (bound,)):
                found.setdefault(workflow, {})[state] = count
        return found

    def due(self, *, limit: int = 1000) -> list[TaskRecord]:
        check_limit(limit)
        now = rows.to_text(self._now())
        with self._reading():
            queued = self._collect(q.QUEUED, (), rows.record, limit)
            return queued + self._collect(q.WAITING, (now,), rows.record, limit - len(queued))

    def stuck(self, *, limit: int = 1000) -> list[TaskRecord]:
        check_limit(limit)
        return self._collect(q.STUCK, (rows.to_text(self._now()),), rows.record, limit)

    def marks(self, workflow: str) -> dict[str, datetime]:
        found = self._collect(q.MARKS, (workflow,), lambda row: (row[0], rows.mark(row, workflow)))
        return dict(found)

    def paused(self) -> Paused:
        with self._lock:
            version = self._pragma("data_version")
            cached = self._paused
            if cached is not None and cached[0] == version:
                return cached[1]
            paused = Paused(rows.control(row) for row in self._db.execute(q.PAUSED))
            self._paused = (version, paused)
            return paused

    def controls(self) -> list[Control]:
        return self._collect(q.CONTROLS, (), rows.control)

    def control_events(self, *, workflow: str | None = None, limit: int = 100
                       ) -> list[ControlEvent]:  # fmt: skip
        check_limit(limit)
        if workflow is None:
            return self._collect(q.EVENTS, (), rows.control_event, limit)
        return self._collect(q.WORKFLOW_EVENTS, (workflow,), rows.control_event, limit)

    def _forget_paused(self) -> None:
        self._paused = None

    def acquire(self, holder: str, *, ttl: float) -> Lease:
        with self._writing():
            current = self._lease()
            lease = leased(current, holder, self._now(), ttl)
            if lease != current:
                self._db.execute(
                    q.SET_LEASE,
                    (lease.holder, rows.to_text(lease.expires), rows.to_text(lease.acquired)),
                )
            return lease

    def release(self, holder: str) -> None:
        with self._writing():
            self._db.execute(q.RELEASE, (holder,))

    def lease(self) -> Lease | None:
        with self._lock:
            return self._lease()

    def changed(self) -> bool:
        with self._lock:
            version = self._pragma("data_version")
            changed, self._data_version = version != self._data_version, version
            return changed

    def purge(self, before: datetime, *, batch: int = 500, leader: str | None = None) -> int:
        """One batch in one transaction: records are picked oldest first on the `created`
        index, their transitions by `rec`; the alerts of purged records keep rec NULL."""
        check_limit(batch, "batch")
        cutoff = rows.to_text(before)
        with self._writing():
            if leader is not None:
                self._check_leader(leader)
            self._db.execute(q.PURGE_ALERTS, (cutoff, batch))
            deleted = self._db.changes()
            recs = [rec for (rec,) in self._db.execute(q.PURGE_PICK, (cutoff, batch))]
            if recs:
                picked = json.dumps(recs)
                self._db.execute(q.PURGE_TRANSITIONS, (picked,))
                deleted += self._db.changes()
                self._db.execute(q.PURGE_RECORDS, (picked,))
                deleted += self._db.changes()
            return deleted

    def close(self) -> None:
        with self._lock:
            self._db.execute("PRAGMA optimize")
            self._db.close()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """`BEGIN IMMEDIATE` ... COMMIT under the lock; any exception rolls it all back."""
        with self._lock:
            if self._db.in_transaction:
                raise StoreError("a transaction is already open here; nest with tx.savepoint()")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """A snapshot for reads of several statements (inside a write, that write's own)."""
        with self._lock:
            if self._db.in_transaction:
                yield
                return
            self._db.execute("BEGIN")
            try:
                yield
            finally:
                self._db.execute("COMMIT")

    def _collect(
        self,
        sql: str,
        params: Sequence[object],
        convert: Callable[[tuple], T],
        limit: int | None = None,
    ) -> list[T]:
        """Rows converted, up to `limit`; a row that cannot be read is skipped with a warning
        naming it (`get` of that record raises), so one bad row hides nothing else."""
        found: list[T] = []
        if limit == 0:
            return found
        with self._lock:
            cursor = self._db.execute(sql, params)
            try:
                for row in cursor:
                    try:
                        found.append(convert(row))
                    except CorruptRecord as err:
                        log.warning("skipped a task state row: %s", err)
                        continue
                    if len(found) == limit:
                        break
            finally:
                cursor.close()
        return found

    def _lease(self) -> Lease | None:
        found = self._db.execute(q.LEASE).fetchall()
        return rows.lease(found[0]) if found else None

    def _check_leader(self, holder: str) -> None:
        now = rows.to_text(self._now())
        if not self._db.execute(q.HOLDS, (holder, now)).fetchall():
            raise LeaseLost(lease_lost(holder, self._lease()))

    def _pragma(self, name: str) -> int:
        return self._db.execute(f"PRAGMA {name}").fetchall()[0][0]
