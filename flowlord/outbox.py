"""The outbox: what is committed as `queued` (or `waiting` and due) goes on the bus, then is
marked `sent`; unless its workflow or phase is paused, and then it is marked `held` instead.

Nothing is sent before it is committed. A crash between a send and its mark sends that task
again on restart (at least once: a worker may see a task twice, and tells the attempts apart by
`id` and meta `retry`). Each send is a unit of its own: one that fails stops no other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from flowlord.bus import BusUnavailable, Producer
from flowlord.loop import Counters
from flowlord.state import TaskRecord, TaskStore
from workflow.controls import Paused, held_reason
from workflow.state import State

log = logging.getLogger("flowlord.outbox")

ACTOR = "flowlord"
BATCH = 1000
FIRST_BACKOFF = timedelta(seconds=1)
MAX_BACKOFF = timedelta(minutes=1)


class Outbox:
    """Sends the due records of a store; `ttl(record)` sets each sent record's deadline."""

    def __init__(
        self,
        store: TaskStore,
        producer: Producer,
        *,
        leader: str,
        now: Callable[[], datetime],
        ttl: Callable[[TaskRecord], timedelta],
        contained: Callable[[str, Callable[[], object]], bool],
        paused: Callable[[], Paused],
        counters: Counters,
    ) -> None:
        self._store = store
        self._paused = paused
        self._counters = counters
        self._producer = producer
        self._leader = leader
        self._now = now
        self._ttl = ttl
        self._contained = contained
        # Records whose send failed, and when to try again: a topic that cannot be written
        # (its file is a folder, the disk is full) is tried with backoff, not every turn.
        self._backoff: dict[int, tuple[datetime, timedelta]] = {}
        self._outage: datetime | None = None  # since when the bus refuses every send

    def send(self, records: list[TaskRecord]) -> int:
        """Send records just committed as queued (the caller has them at hand: no query)."""
        return self._send(records) if records else 0

    def flush(self) -> int:
        """Send every record the store says is due now (queued ones, waiting ones whose time
        has come), in batches; returns how many were sent. This finds what `send` was not
        given: retries, records queued by the CLI, and what a crash left queued."""
        total = 0
        while True:
            records = self._store.due(limit=BATCH)
            if not records:
                return total
            sent = self._send(records)
            total += sent
            if len(records) < BATCH or not sent:  # all sent, or what is left is backing off
                return total

    def _send(self, records: list[TaskRecord]) -> int:
        """Hold what is paused and queue the due waiting ones, send, then mark what went out
        as sent."""
        now = self._now()
        records = [
            r for r in records if r.rec not in self._backoff or self._backoff[r.rec][0] <= now
        ]
        paused = self._paused()
        if any(r.state == State.WAITING or paused.holds(r.workflow, r.phase) for r in records):
            records = self._hold_or_queue(records)
        delivered = []
        for record in records:
            unit = f"send of record {record.rec} ({record.name} {record.id}) to {record.type}"
            sent = self._contained(unit, lambda r=record: self._deliver(r))
            if self._outage is not None:  # the bus is down: the rest wait, as queued records
                break
            if sent:
                delivered.append(record)
                self._backoff.pop(record.rec, None)
            else:
                _, wait = self._backoff.get(record.rec, (now, FIRST_BACKOFF / 2))
                wait = min(wait * 2, MAX_BACKOFF)
                self._backoff[record.rec] = (now + wait, wait)
        self._counters.sent_topics.update(record.type for record in delivered)
        deadlines = [now + self._ttl(record) for record in delivered]
        with self._store.transaction(leader=self._leader) as tx:
            unmarked = tx.move_all(delivered, State.SENT, actor=ACTOR, reason="sent",
                                   deadlines=deadlines)  # fmt: skip
        for rec in unmarked:  # cancelled meanwhile (by the CLI): it was sent all the same
            log.warning("record %d sent, but not marked sent: it changed meanwhile", rec)
        if log.isEnabledFor(logging.DEBUG):
            for record in delivered:
                log.debug("sent %s %s %s (record %d)", record.type, record.id, record.info,
                          record.rec)  # fmt: skip
        return len(delivered)

    def _deliver(self, record: TaskRecord) -> None:
        """Send one record. A bus that is down (Redis restarting) is not this record's fault:
        it is logged once per outage, and the record is sent when the bus is back, without
        the backoff of a record whose topic itself fails."""
        try:
            self._producer.send(record.type, record.task().to_json())
        except BusUnavailable as err:
            if self._outage is None:
                self._outage = self._now()
                log.warning("the bus is unavailable; queued tasks wait until it is back: %s", err)
            return
        if self._outage is not None:
            down = (self._now() - self._outage).total_seconds()
            log.info("the bus is back after %.1f s; sending the queued tasks", down)
            self._outage = None

    def _hold_or_queue(self, records: list[TaskRecord]) -> list[TaskRecord]:
        """In one transaction, which reads the pauses as they are committed: a record of a
        paused workflow or phase is held, a due waiting one queued (its send follows the
        commit). Returns the records to send."""
        sending = []
        with self._store.transaction(leader=self._leader) as tx:
            paused = self._paused()
            for record in records:
                control = paused.holds(record.workflow, record.phase)
                try:
                    if control is not None:
                        tx.move(record.rec, State.HELD, actor=ACTOR,
                                reason=held_reason(control), current=record)  # fmt: skip
                        self._counters.held += 1
                    elif record.state == State.WAITING:
                        sending.append(tx.move(record.rec, State.QUEUED, actor=ACTOR,
                                               reason="due", current=record))  # fmt: skip
                    else:
                        sending.append(record)
                except ValueError as err:  # cancelled meanwhile, say: nothing was written
                    log.warning("record %d not sent: %s", record.rec, err)
        return sending
