"""Decisions both stores share, so the memory reference and SQLite cannot drift apart.

Pure functions of their arguments (the clock's reading is one of them): what a new record
looks like, what a move changes, who holds the lease after `acquire`, which age bucket a
record falls in. The stores only keep and find rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from flowlord.state.protocol import ALERT_KINDS, Lease, NewRecord, StoreError, TaskRecord
from workflow.state import ENDS, Origin, State, check_transition
from workflow.task import Result

AGE_BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("24h", timedelta(hours=24)),
    ("7d", timedelta(days=7)),
    ("30d", timedelta(days=30)),
)
"""`stats().by_age`: a record is in the first bucket its age is below; else in `older`."""
OLDER = "older"


def check_new(records: Sequence[NewRecord]) -> None:
    """Refuse the whole `add` before anything is written: a state no record may be born in
    (IllegalTransition), a waiting record that would never come due, an unknown origin."""
    for record in records:
        Origin(record.origin)
        state = State(record.state)
        check_transition(None, None, state)
        if state is State.WAITING and record.due is None:
            raise StoreError(f"waiting record {record.origin_key!r} needs a due time")


def new_record(rec: int, record: NewRecord, now: datetime) -> TaskRecord:
    """The record `add` creates; one born `sent` (an external done's) was sent now."""
    task = record.task
    state = State(record.state)
    return TaskRecord(
        rec=rec, id=task.id, type=task.type, job=task.job, info=task.info, meta=task.meta,
        workflow=record.workflow, phase=record.phase, attempt=record.attempt,
        origin=Origin(record.origin), origin_key=record.origin_key, state=state,
        created=now, due=record.due, deadline=record.deadline,
        sent=now if state is State.SENT else None, updated=now,
    )  # fmt: skip


def moved(
    record: TaskRecord,
    to: State,
    now: datetime,
    *,
    result: Result | str | None,
    msg: str | None,
    started: datetime | None,
    ended: datetime | None,
    sent: datetime | None,
    deadline: datetime | None,
) -> TaskRecord:
    """`record` after a legal move to `to` (IllegalTransition otherwise): the given fields
    set, `updated` now, and `sent`/`ended` now when it goes to SENT/an end without them."""
    check_transition(record.rec, record.state, to)
    if sent is None and to is State.SENT:
        sent = now
    if ended is None and to in ENDS:
        ended = now
    # Built field by field: dataclasses.replace costs twice as much, and moves are the hot path.
    return TaskRecord(
        rec=record.rec, id=record.id, type=record.type, job=record.job, info=record.info,
        meta=record.meta, workflow=record.workflow, phase=record.phase, attempt=record.attempt,
        origin=record.origin, origin_key=record.origin_key, state=to,
        result=record.result if result is None else str(result),
        msg=record.msg if msg is None else msg,
        created=record.created, due=record.due,
        sent=record.sent if sent is None else sent,
        started=record.started if started is None else started,
        ended=record.ended if ended is None else ended,
        deadline=record.deadline if deadline is None else deadline,
        updated=now,
    )  # fmt: skip


def leased(current: Lease | None, holder: str, now: datetime, ttl: float) -> Lease:
    """The lease after `holder` asks for it: taken if free, expired or already its own
    (renewed from now, keeping when it was first acquired), else the other holder's as is."""
    if ttl <= 0:
        raise StoreError(f"a lease needs a positive ttl, got {ttl}")
    acquired = now
    if current is not None and current.expires > now:
        if current.holder != holder:
            return current
        acquired = current.acquired
    return Lease(holder=holder, expires=now + timedelta(seconds=ttl), acquired=acquired)


def check_kind(kind: str) -> None:
    if kind not in ALERT_KINDS:
        raise StoreError(f"unknown alert kind {kind!r} (kinds: {', '.join(ALERT_KINDS)})")


def check_limit(limit: int, name: str = "limit") -> None:
    if limit < 0:
        raise StoreError(f"{name} must not be negative, got {limit}")


def age_bounds(now: datetime) -> list[tuple[str, datetime]]:
    """Each bucket with the oldest `created` it excludes: younger ones have `created` after it."""
    return [(name, now - age) for name, age in AGE_BUCKETS]


def age_bucket(created: datetime, bounds: list[tuple[str, datetime]]) -> str:
    for name, bound in bounds:
        if created > bound:
            return name
    return OLDER


def lease_lost(holder: str, lease: Lease | None) -> str:
    """Why a leader's transaction was refused: who holds the lease now, if anyone."""
    held = f"held by {lease.holder} until {lease.expires.isoformat()}" if lease else "free"
    return f"{holder} no longer holds the lease (it is {held})"
