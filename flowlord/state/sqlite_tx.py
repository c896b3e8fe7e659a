"""`SQLiteTx`: the writes of one `SQLiteTaskStore` transaction, and the reads they need.

A move reads the row, checks it (UnknownRecord, CorruptRecord, IllegalTransition) and only
then writes: the refused move leaves nothing behind, and the surrounding transaction goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import apsw

from flowlord.state import queries as q
from flowlord.state import rows
from flowlord.state.protocol import NewRecord, StoreError, TaskRecord, UnknownRecord
from flowlord.state.rules import check_kind, check_new, moved, new_record
from workflow.controls import Control, ControlEvent
from workflow.state import TRANSITIONS, State
from workflow.task import Result

_t = rows.maybe_text
_MOVED = ("result", "msg", "started", "ended", "sent", "deadline")


class _RowChanged(Exception):
    """A batch move met a row that moved since it was read: the batch is undone."""


"""The fields a move may set beside the state (only those that change are written)."""


def _column(value: object) -> object:
    return rows.to_text(value) if isinstance(value, datetime) else value


def read_record(db: apsw.Connection, rec: int) -> TaskRecord:
    found = db.execute(q.GET, (rec,)).fetchall()
    if not found:
        raise UnknownRecord(rec)
    return rows.record(found[0])


class SQLiteTx:
    """Usable only while its transaction is open: afterwards a write would autocommit alone.

    Audit rows are written in bulk (`flush`, one executemany) at each savepoint and before
    the commit: every move has one, and a statement each cost a done a tenth of its time.
    """

    def __init__(
        self,
        db: apsw.Connection,
        now: Callable[[], datetime],
        *,
        on_control_write: Callable[[], None],
    ) -> None:
        self._db = db
        self._now = now
        self._on_control_write = on_control_write
        self._depth = 0
        self._audits: list[tuple[object, ...]] = []
        self.open = True

    def flush(self) -> None:
        """Write the audit rows buffered so far."""
        if self._audits:
            self._db.executemany(q.AUDIT, self._audits)
            self._audits.clear()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._check_open()
        self.flush()  # what came before is outside the savepoint, and stays on a rollback
        name = f"sp{self._depth}"
        self._depth += 1
        self._db.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._audits.clear()  # buffered since the flush above: inside the savepoint
            if self._db.in_transaction:  # else SQLite has already rolled everything back
                self._db.execute(f"ROLLBACK TO {name}")
                self._db.execute(f"RELEASE {name}")
            raise
        else:
            self._db.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1

    def add(
        self, records: Sequence[NewRecord], *, actor: str, reason: str
    ) -> list[TaskRecord | None]:
        self._check_open()
        check_new(records)
        now = self._now()
        at = rows.to_text(now)
        made: list[TaskRecord | None] = []
        for new in records:
            task, state = new.task, State(new.state)
            sent = at if state is State.SENT else None  # an external done's: sent now
            try:
                self._db.execute(
                    q.INSERT,
                    (
                        task.id, task.type, task.job, task.info, task.meta, new.workflow,
                        new.phase, new.attempt, new.origin.value, new.origin_key, state.value,
                        at, _t(new.due), sent, _t(new.deadline), at,
                    ),
                )  # fmt: skip
            except apsw.ConstraintError as err:
                if "origin_key" not in str(err):
                    raise
                made.append(None)  # the origin key exists: added before
                continue
            rec = self._db.last_insert_rowid()
            self._audits.append((rec, "", state.value, reason, actor, at))
            made.append(new_record(rec, new, now))
        return made

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
        self._check_open()
        old = current if current is not None and current.rec == rec else read_record(self._db, rec)
        now = self._now()
        new = moved(
            old, State(to), now, result=result, msg=msg, started=started, ended=ended,
            sent=sent, deadline=deadline,
        )  # fmt: skip
        at = rows.to_text(now)
        changed = [name for name in _MOVED if getattr(new, name) != getattr(old, name)]
        values = [_column(getattr(new, name)) for name in changed]
        self._db.execute(q.update(tuple(changed)), (new.state.value, *values, at, rec,
                                                     old.state.value))  # fmt: skip
        if not self._db.changes():  # the row is not as `current` said: judge it as it is
            if current is None:
                raise StoreError(f"record {rec} changed while it was being moved")
            fields = {"result": result, "msg": msg, "started": started, "ended": ended}
            return self.move(rec, to, actor=actor, reason=reason, sent=sent, deadline=deadline,
                             **fields)  # fmt: skip
        self._audits.append((rec, old.state.value, new.state.value, reason, actor, at))
        return new

    def move_all(
        self,
        records: Sequence[TaskRecord],
        to: State,
        *,
        actor: str,
        reason: str,
        deadlines: Sequence[datetime | None] | None = None,
    ) -> list[int]:
        """One executemany for the batch; if a row was not as its record said, the batch is
        undone and the moves made one by one, each judged as its row is."""
        self._check_open()
        at = rows.to_text(self._now())
        given = list(deadlines) if deadlines is not None else [r.deadline for r in records]
        refused = [r.rec for r in records if to not in TRANSITIONS[r.state]]
        moving = [(r, d) for r, d in zip(records, given, strict=True) if r.rec not in refused]
        params = [
            (to.value, at if to is State.SENT else _t(r.sent), _t(d), at, r.rec, r.state.value)
            for r, d in moving
        ]
        before = self._db.total_changes()
        try:
            with self._db:  # a savepoint: the whole batch, or none of it
                self._db.executemany(q.update(("sent", "deadline")), params)
                if self._db.total_changes() - before != len(params):
                    raise _RowChanged
        except _RowChanged:
            return refused + self._move_each(moving, to, actor=actor, reason=reason)
        self._audits += [(r.rec, r.state.value, to.value, reason, actor, at) for r, _ in moving]
        return refused

    def _move_each(
        self,
        moving: Sequence[tuple[TaskRecord, datetime | None]],
        to: State,
        *,
        actor: str,
        reason: str,
    ) -> list[int]:
        refused = []
        for record, deadline in moving:
            try:
                self.move(record.rec, to, actor=actor, reason=reason, deadline=deadline)
            except ValueError:
                refused.append(record.rec)
        return refused

    def get(self, rec: int) -> TaskRecord:
        self._check_open()
        return read_record(self._db, rec)

    def find_attempt(
        self, task_id: str, type: str, job: str, info: str, attempt: int
    ) -> TaskRecord | None:
        self._check_open()
        found = self._db.execute(q.FIND_ATTEMPT, (task_id, type, job, attempt, info)).fetchall()
        return rows.record(max(found)) if found else None  # the newest: rec comes first

    def completed(self, workflow: str, task_id: str) -> set[str]:
        self._check_open()
        found = self._db.execute(q.COMPLETED, (task_id, workflow))
        return {f"{type_}:{job}" if job else type_ for type_, job in found}

    def alert(
        self,
        kind: str,
        message: str,
        *,
        workflow: str = "",
        phase: str = "",
        rec: int | None = None,
    ) -> int:
        self._check_open()
        check_kind(kind)
        if rec is not None and not self._db.execute(q.EXISTS, (rec,)).fetchall():
            raise UnknownRecord(rec)
        at = rows.to_text(self._now())
        self._db.execute(q.ALERT, (at, kind, workflow, phase, rec, message))
        return self._db.last_insert_rowid()

    def set_mark(self, workflow: str, phase: str, fired: datetime) -> None:
        self._check_open()
        self._db.execute(q.MARK, (workflow, phase, rows.to_text(fired)))

    def control(self, workflow: str, phase: str) -> Control | None:
        self._check_open()
        found = self._db.execute(q.CONTROL, (workflow, phase)).fetchall()
        return rows.control(found[0]) if found else None

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
        self._check_open()
        was = self.control(workflow, phase)
        now = self._now()
        at = rows.to_text(now)
        self._on_control_write()
        self._db.execute(q.SET_CONTROL, (workflow, phase, int(enabled), reason, actor, at))
        from_enabled = None if was is None else was.enabled
        self._db.execute(q.CONTROL_EVENT, (
            at, workflow, phase, actor, None if from_enabled is None else int(from_enabled),
            int(enabled), reason, released, discarded,
        ))  # fmt: skip
        return ControlEvent(
            seq=self._db.last_insert_rowid(), at=now, workflow=workflow, phase=phase,
            actor=actor, from_enabled=from_enabled, to_enabled=enabled, reason=reason,
            released=released, discarded=discarded,
        )  # fmt: skip

    def held(self, workflow: str, phase: str | None = None) -> list[TaskRecord]:
        self._check_open()
        if phase is None:
            found = self._db.execute(q.HELD, (workflow,))
        else:
            found = self._db.execute(q.HELD_PHASE, (workflow, phase))
        return [rows.record(row) for row in found]

    def first_seen(self, workflows: Sequence[str]) -> list[str]:
        self._check_open()
        at = rows.to_text(self._now())
        new = []
        for key in dict.fromkeys(workflows):
            self._db.execute(q.SEE, (key, at))
            if self._db.changes():
                new.append(key)
        return new

    def _check_open(self) -> None:
        if not self.open:
            raise StoreError("this transaction is over: use the store's transaction() again")
