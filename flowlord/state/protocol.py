"""The `TaskStore` interface: task records, their transitions, alerts, cron marks, the lease.

Everything the taskmaster does is a row before it is a message (DESIGN §4). Writes happen in
`with store.transaction(...) as tx:` blocks: one per batch of done messages (group commit), with
`tx.savepoint()` around each message so that one bad message rolls back alone. A store refuses
an illegal transition (`workflow.state.check_transition`) before it writes anything.

Two implementations pass one contract suite: `MemoryTaskStore` (the reference) and
`SQLiteTaskStore` (apsw, in the cache's database file, on its own connection, synchronous=FULL).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from workflow.controls import Control, ControlEvent, Paused
from workflow.state import Origin, State
from workflow.task import Result, Task, rfc3339

ALERT_KINDS = ("failed", "alert", "stuck", "phase_error", "bad_message")


class StoreError(ValueError):
    """A request the store refuses: an unknown record, a corrupted row, a bad argument (an
    alert kind, a negative limit). Names the record or the table; nothing was written."""


class UnknownRecord(StoreError):
    """No record has this `rec`."""

    def __init__(self, rec: int) -> None:
        self.rec = rec
        super().__init__(f"no task record has rec {rec}")


class CorruptRecord(StoreError):
    """A stored row that cannot be read back (a state or time that is not ours): names the
    table and the row's key (`rec`, `seq`), so it can be found and mended by hand."""

    def __init__(self, table: str, key: object, problem: str) -> None:
        self.table = table
        self.key = key
        super().__init__(f"{table} row {key} cannot be read: {problem}")


class LeaseLost(RuntimeError):
    """A write of the leader found that it no longer holds the lease; nothing was written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRecord:
    """One attempt of one task. Times are aware UTC datetimes; `due` is when a waiting record
    is to be sent, `deadline` when a sent record without a done counts as stuck."""

    rec: int
    id: str
    type: str
    job: str = ""
    info: str = ""
    meta: str = ""
    workflow: str = ""
    phase: str = ""
    attempt: int = 0
    origin: Origin
    origin_key: str
    state: State
    result: str = ""
    msg: str = ""
    created: datetime
    due: datetime | None = None
    sent: datetime | None = None
    started: datetime | None = None
    ended: datetime | None = None
    deadline: datetime | None = None
    updated: datetime

    def task(self) -> Task:
        """The bus message of this attempt (as sent: no result yet)."""
        return Task(
            type=self.type, job=self.job, info=self.info, meta=self.meta, id=self.id,
            created=rfc3339(self.created),
        )  # fmt: skip

    @property
    def name(self) -> str:
        """`type:job`, or `type`: how phases name their parents and `require` names tasks."""
        return f"{self.type}:{self.job}" if self.job else self.type


@dataclass(frozen=True, slots=True, kw_only=True)
class NewRecord:
    """A record to create; `origin_key` is unique: adding it twice creates it once.

    The record's `created` is the store's clock when it is added (`task.created` is not kept:
    `TaskRecord.task()` rebuilds the message from the record). A `waiting` record needs `due`.
    """

    task: Task
    workflow: str
    phase: str
    attempt: int = 0
    origin: Origin
    origin_key: str
    state: State
    due: datetime | None = None
    deadline: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """One audited move; `from_state` is None for a new record."""

    rec: int
    from_state: State | None
    to_state: State
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    seq: int
    at: datetime
    kind: str
    workflow: str = ""
    phase: str = ""
    rec: int | None = None
    message: str
    notified: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """Who leads: `holder` until `expires` (a stale lease may be taken over)."""

    holder: str
    expires: datetime
    acquired: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFilter:
    """`tasks()` filters; every field optional, all combined with AND. Newest first; `since`
    (inclusive) and `until` (exclusive) bound `created`; `before` is a cursor: only records
    with a smaller `rec`."""

    state: State | None = None
    type: str | None = None
    job: str | None = None
    workflow: str | None = None
    id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    before: int | None = None


EVERY_TASK = TaskFilter()
"""No filter: the newest records (the default of `tasks()`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Stats:
    """`flowlord stats`: records by state, by age (of `created`), the database size, alerts."""

    states: dict[str, int] = field(default_factory=dict)
    by_age: dict[str, int] = field(default_factory=dict)  # "24h", "7d", "30d", "older"
    db_bytes: int = 0
    alerts: int = 0


class Tx(Protocol):
    """The writes (and the reads they need) of one transaction."""

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested unit: an exception inside rolls back only what it wrote, then propagates."""
        ...

    def add(
        self, records: Sequence[NewRecord], *, actor: str, reason: str
    ) -> list[TaskRecord | None]:
        """Create records (each audited from None to its state) and return them; for an
        `origin_key` that exists already, create nothing and give None in its place."""
        ...

    def move(
        self,
        rec: int,
        to: State,
        *,
        actor: str,
        reason: str,
        result: Result | str | None = None,
        msg: str | None = None,
        started: datetime | None = None,
        ended: datetime | None = None,
        sent: datetime | None = None,
        deadline: datetime | None = None,
        current: TaskRecord | None = None,
    ) -> TaskRecord:
        """Move one record (`UnknownRecord`, `IllegalTransition`: nothing written); the given
        fields are set with it, `updated` is now, and `sent` (to SENT) or `ended` (to an end)
        is now unless given. Returns the record as it is now.

        `current` is the record as the caller read it in this transaction: the move is checked
        against it and spares a read, and if the row changed meanwhile it is read and judged
        as it is."""
        ...

    def move_all(
        self,
        records: Sequence[TaskRecord],
        to: State,
        *,
        actor: str,
        reason: str,
        deadlines: Sequence[datetime | None] | None = None,
    ) -> list[int]:
        """Move records at hand to one state (the outbox marks a batch sent), each as `move`
        would with `current`, and `deadline` set from `deadlines` when given. Returns the
        recs that did not move (their row changed meanwhile: cancelled, say); nothing was
        written for those."""
        ...

    def get(self, rec: int) -> TaskRecord:
        """A record (`UnknownRecord` if none)."""
        ...

    def find_attempt(
        self, task_id: str, type: str, job: str, info: str, attempt: int
    ) -> TaskRecord | None:
        """The record a done message answers, matched as DESIGN §4 says (newest if several)."""
        ...

    def completed(self, workflow: str, task_id: str) -> set[str]:
        """Names (`type:job` or `type`) of the records of one run that completed."""
        ...

    def alert(
        self,
        kind: str,
        message: str,
        *,
        workflow: str = "",
        phase: str = "",
        rec: int | None = None,
    ) -> int:
        """Record an alert (kind one of ALERT_KINDS, else StoreError; a `rec` that does not
        exist is UnknownRecord); returns its `seq`."""
        ...

    def set_mark(self, workflow: str, phase: str, fired: datetime) -> None:
        """The last instant a cron phase fired."""
        ...

    # workflow controls (DESIGN §5)
    def control(self, workflow: str, phase: str) -> Control | None:
        """The switch of a workflow file (`phase` "") or one phase; None if never set."""
        ...

    def set_control(
        self,
        workflow: str,
        phase: str,
        *,
        enabled: bool,
        reason: str,
        actor: str,
        released: int = 0,
        discarded: int = 0,
    ) -> ControlEvent:
        """Set a switch and audit the change in `control_events` (from its previous state,
        with how many held records the change released or discarded)."""
        ...

    def held(self, workflow: str, phase: str | None = None) -> list[TaskRecord]:
        """The held records of a workflow file (of one phase), oldest first."""
        ...

    def first_seen(self, workflows: Sequence[str]) -> list[str]:
        """Note these workflow files as seen by a taskmaster; returns those never seen before
        (what `paused_at_creation` pauses), in the order given."""
        ...


class TaskStore(Protocol):
    """Durable task state. `now` is the store's clock (given at construction)."""

    def transaction(self, *, leader: str | None = None) -> AbstractContextManager[Tx]:
        """One write transaction (`BEGIN IMMEDIATE`). With `leader`, it first checks that
        this holder has an unexpired lease, else raises `LeaseLost` and writes nothing.
        An exception rolls it all back. A second `transaction()` (or `acquire`, `release`,
        `purge`) inside one is a StoreError: nest with `tx.savepoint()`. Readers on other
        threads see a transaction whole or not at all."""
        ...

    # reads, outside transactions (the CLI, the API and the taskmaster share them). A read
    # of one record raises CorruptRecord for a row it cannot read; a listing skips such a
    # row and logs a warning naming it, so one bad row does not hide all the others.
    def get(self, rec: int) -> TaskRecord: ...

    def tasks(self, where: TaskFilter = EVERY_TASK) -> list[TaskRecord]: ...

    def run(self, task_id: str) -> list[TaskRecord]:
        """Every record of one run id, oldest first."""
        ...

    def transitions(self, rec: int) -> list[Transition]:
        """The moves of one record, in order (empty for an unknown record)."""
        ...

    def alerts(self, *, since: datetime | None = None, kind: str | None = None, limit: int = 100
               ) -> list[Alert]: ...  # fmt: skip

    def stats(self) -> Stats:
        """Records by state (every State, 0 when none), by age of `created` relative to now
        (`24h`: younger than 24 h, `7d`, `30d`, `older`: at least 30 days), size, alerts."""
        ...

    def counts(self, *, since: datetime | None = None) -> dict[str, dict[str, int]]:
        """Records created at or after `since` (every record when None) as `{workflow: {state:
        count}}`, workflows and their states in key order, non-zero counts only; ad hoc
        records (no workflow file) under `""`. The dashboard's overview and `GET /api/stats`
        both show this one read, so they cannot disagree on a window."""
        ...

    def due(self, *, limit: int = 1000) -> list[TaskRecord]:
        """Queued records (by `rec`), then waiting records whose `due` has come (by `due`):
        what the outbox is to send now, at most `limit` in all."""
        ...

    def stuck(self, *, limit: int = 1000) -> list[TaskRecord]:
        """Sent records past their `deadline` (by `deadline`) with no `stuck` alert yet; a
        sent record without a deadline is never stuck."""
        ...

    def marks(self, workflow: str) -> dict[str, datetime]:
        """The last fired instant of each cron phase of one workflow file."""
        ...

    # workflow controls
    def paused(self) -> Paused:
        """The pauses in force. Cheap when nothing changed: the SQLite store reads the table
        again only after a commit by another connection (`PRAGMA data_version`) or a control
        written through this store. Inside a transaction, as that transaction sees them (so a
        record held in it is held by a pause that is committed, or by none). Raises when the
        table cannot be read: the caller decides to fail open."""
        ...

    def controls(self) -> list[Control]:
        """Every switch ever set, by workflow and phase."""
        ...

    def control_events(self, *, workflow: str | None = None, limit: int = 100
                       ) -> list[ControlEvent]:  # fmt: skip
        """Changes of the controls (of one workflow file), newest first."""
        ...

    # the leader lease
    def acquire(self, holder: str, *, ttl: float) -> Lease:
        """Take or renew the lease for `ttl` seconds if it is free, expired or ours; return
        the lease as it stands (another holder's when it is not ours)."""
        ...

    def release(self, holder: str) -> None:
        """Give the lease up (only if `holder` has it), so a successor takes over at once."""
        ...

    def lease(self) -> Lease | None: ...

    def changed(self) -> bool:
        """Whether another connection committed since the last call (`PRAGMA data_version`);
        a memory store has no other connection: always False."""
        ...

    def purge(self, before: datetime, *, batch: int = 500, leader: str | None = None) -> int:
        """Delete one batch of finished records (and their transitions) created and last
        updated before `before`, oldest first, and of alerts before it, in one short
        transaction; returns how many rows went in all tables (0: nothing left). An alert of
        a purged record stays, with rec None. With `leader`, checked as `transaction`."""
        ...

    def close(self) -> None: ...
