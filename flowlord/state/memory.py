"""`MemoryTaskStore`: the reference `TaskStore`, in dicts, with the same errors and results
as SQLite.

Rollback is an undo log (see `memory_tx`): copying the tables instead would cost a copy of
100,000 records per message.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime

from flowlord.state.memory_tx import MemoryTx, Tables
from flowlord.state.protocol import (
    EVERY_TASK,
    Alert,
    Lease,
    LeaseLost,
    Stats,
    StoreError,
    TaskFilter,
    TaskRecord,
    Transition,
    UnknownRecord,
)
from flowlord.state.rules import OLDER, age_bounds, age_bucket, check_limit, lease_lost, leased
from workflow.controls import Control, ControlEvent, Paused
from workflow.state import ENDS, State


class MemoryTaskStore:
    """The reference `TaskStore`. One lock covers each transaction whole, so a reader on
    another thread sees a transaction's writes all at once or not at all. `changed()` is
    always False: nothing but this object writes its tables."""

    def __init__(self, *, now: Callable[[], datetime]) -> None:
        self._now = now
        self._lock = threading.RLock()
        self._t = Tables()
        self._tx: MemoryTx | None = None

    @contextmanager
    def transaction(self, *, leader: str | None = None) -> Iterator[MemoryTx]:
        with self._writing():
            tx = self._tx = MemoryTx(self._t, self._now)
            try:
                if leader is not None:
                    self._check_leader(leader)
                yield tx
            except BaseException:
                tx.rollback()
                raise
            finally:
                tx.open = False
                self._tx = None

    def get(self, rec: int) -> TaskRecord:
        with self._lock:
            try:
                return self._t.records[rec]
            except KeyError:
                raise UnknownRecord(rec) from None

    def tasks(self, where: TaskFilter = EVERY_TASK) -> list[TaskRecord]:
        check_limit(where.limit)
        found: list[TaskRecord] = []
        with self._lock:
            recs = self._t.by_run.get(where.id, []) if where.id is not None else self._t.records
            for rec in reversed(recs):
                record = self._t.records[rec]
                if len(found) == where.limit:
                    break
                if _matches(record, where):
                    found.append(record)
        return found

    def run(self, task_id: str) -> list[TaskRecord]:
        with self._lock:
            return [self._t.records[rec] for rec in self._t.by_run.get(task_id, ())]

    def transitions(self, rec: int) -> list[Transition]:
        with self._lock:
            return list(self._t.transitions.get(rec, ()))

    def alerts(
        self, *, since: datetime | None = None, kind: str | None = None, limit: int = 100
    ) -> list[Alert]:
        check_limit(limit)
        with self._lock:
            found = [
                a
                for a in reversed(self._t.alerts.values())
                if (since is None or a.at >= since) and (kind is None or a.kind == kind)
            ]
        return found[:limit]

    def stats(self) -> Stats:
        bounds = age_bounds(self._now())
        states = dict.fromkeys(State, 0)
        by_age = dict.fromkeys([name for name, _ in bounds] + [OLDER], 0)
        with self._lock:
            for record in self._t.records.values():
                states[record.state] += 1
                by_age[age_bucket(record.created, bounds)] += 1
            alerts = len(self._t.alerts)
        states_by_name = {state.value: n for state, n in states.items()}
        return Stats(states=states_by_name, by_age=by_age, db_bytes=0, alerts=alerts)

    def counts(self, *, since: datetime | None = None) -> dict[str, dict[str, int]]:
        with self._lock:
            picked = Counter(
                (r.workflow, r.state.value)
                for r in self._t.records.values()
                if since is None or r.created >= since
            )
        found: dict[str, dict[str, int]] = {}
        for (workflow, state), count in sorted(picked.items()):
            found.setdefault(workflow, {})[state] = count
        return found

    def due(self, *, limit: int = 1000) -> list[TaskRecord]:
        check_limit(limit)
        now = self._now()
        with self._lock:
            records = list(self._t.records.values())
        queued = [r for r in records if r.state is State.QUEUED]
        ready = [r for r in records if r.state is State.WAITING and r.due and r.due <= now]
        return (queued + sorted(ready, key=lambda r: (r.due, r.rec)))[:limit]

    def stuck(self, *, limit: int = 1000) -> list[TaskRecord]:
        check_limit(limit)
        now = self._now()
        with self._lock:
            alerted = {a.rec for a in self._t.alerts.values() if a.kind == "stuck"}
            sent = [r for r in self._t.records.values() if r.state is State.SENT]
        late = [r for r in sent if r.deadline and r.deadline <= now and r.rec not in alerted]
        return sorted(late, key=lambda r: (r.deadline, r.rec))[:limit]

    def marks(self, workflow: str) -> dict[str, datetime]:
        with self._lock:
            return {phase: at for (wf, phase), at in self._t.marks.items() if wf == workflow}

    def paused(self) -> Paused:
        with self._lock:
            return Paused(self._t.controls.values())

    def controls(self) -> list[Control]:
        with self._lock:
            return [self._t.controls[key] for key in sorted(self._t.controls)]

    def control_events(self, *, workflow: str | None = None, limit: int = 100
                       ) -> list[ControlEvent]:  # fmt: skip
        check_limit(limit)
        with self._lock:
            events = self._t.control_events
            found = [e for e in reversed(events) if workflow is None or e.workflow == workflow]
        return found[:limit]

    def acquire(self, holder: str, *, ttl: float) -> Lease:
        with self._writing():
            self._t.lease = leased(self._t.lease, holder, self._now(), ttl)
            return self._t.lease

    def release(self, holder: str) -> None:
        with self._writing():
            if self._t.lease is not None and self._t.lease.holder == holder:
                self._t.lease = None

    def lease(self) -> Lease | None:
        with self._lock:
            return self._t.lease

    def changed(self) -> bool:
        return False

    def purge(self, before: datetime, *, batch: int = 500, leader: str | None = None) -> int:
        check_limit(batch, "batch")
        with self._writing():
            if leader is not None:
                self._check_leader(leader)
            old_alerts = [a for a in self._t.alerts.values() if a.at < before]
            old_alerts = sorted(old_alerts, key=lambda a: (a.at, a.seq))[:batch]
            for alert in old_alerts:
                del self._t.alerts[alert.seq]
            records = self._t.records.values()
            finished = [
                r for r in records if r.state in ENDS and r.updated < before and r.created < before
            ]
            finished = sorted(finished, key=lambda r: (r.created, r.rec))[:batch]
            gone = {r.rec for r in finished}
            moves = sum(len(self._t.transitions[rec]) for rec in gone)
            for record in finished:
                self._t.delete(record)
            for alert in list(self._t.alerts.values()):
                if alert.rec in gone:
                    self._t.alerts[alert.seq] = replace(alert, rec=None)
        return len(old_alerts) + len(finished) + moves

    def close(self) -> None:
        """Nothing to release; kept for the interface."""

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """The lock, refusing a second write inside a transaction (as SQLite must)."""
        with self._lock:
            if self._tx is not None:
                raise StoreError("a transaction is already open here; nest with tx.savepoint()")
            yield

    def _check_leader(self, holder: str) -> None:
        lease = self._t.lease
        if lease is None or lease.holder != holder or lease.expires <= self._now():
            raise LeaseLost(lease_lost(holder, lease))


def _matches(r: TaskRecord, w: TaskFilter) -> bool:
    return (
        (w.state is None or r.state == w.state)
        and (w.type is None or r.type == w.type)
        and (w.job is None or r.job == w.job)
        and (w.workflow is None or r.workflow == w.workflow)
        and (w.id is None or r.id == w.id)
        and (w.since is None or r.created >= w.since)
        and (w.until is None or r.created < w.until)
        and (w.before is None or r.rec < w.before)
    )
