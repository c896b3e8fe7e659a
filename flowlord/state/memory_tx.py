"""The tables of a `MemoryTaskStore` and its `Tx`: every write pushes its own undo.

A savepoint remembers the undo log's length; a rollback runs the log backwards to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

from flowlord.state.protocol import (
    Alert,
    Lease,
    NewRecord,
    StoreError,
    TaskRecord,
    Transition,
    UnknownRecord,
)
from flowlord.state.rules import check_kind, check_new, moved, new_record
from workflow.controls import Control, ControlEvent
from workflow.state import State
from workflow.task import Result

Undo = Callable[[], None]
K = TypeVar("K")
_Attempt = tuple[str, str, str, str, int]


def _attempt(r: TaskRecord) -> _Attempt:
    return (r.id, r.type, r.job, r.info, r.attempt)


def _unindex(index: dict[K, list[int]], key: K, rec: int) -> None:
    recs = index[key]
    recs.remove(rec)
    if not recs:
        del index[key]


class Tables:
    """The rows and the few indexes the hot path needs; each write returns its undo."""

    def __init__(self) -> None:
        self.records: dict[int, TaskRecord] = {}  # in rec order: recs only grow
        self.by_origin: dict[str, int] = {}
        self.by_attempt: dict[_Attempt, list[int]] = {}
        self.by_run: dict[str, list[int]] = {}
        self.transitions: dict[int, list[Transition]] = {}
        self.alerts: dict[int, Alert] = {}
        self.marks: dict[tuple[str, str], datetime] = {}
        self.lease: Lease | None = None
        self.controls: dict[tuple[str, str], Control] = {}
        self.control_events: list[ControlEvent] = []
        self.seen: dict[str, datetime] = {}
        # Like SQLite's AUTOINCREMENT: never reused, except after a rollback of their creation.
        self.last_rec = 0
        self.last_seq = 0

    def insert(self, record: TaskRecord) -> Undo:
        self.records[record.rec] = record
        self.by_origin[record.origin_key] = record.rec
        self.by_attempt.setdefault(_attempt(record), []).append(record.rec)
        self.by_run.setdefault(record.id, []).append(record.rec)
        self.transitions[record.rec] = []
        self.last_rec = record.rec
        return lambda: self.delete(record, last_rec=record.rec - 1)

    def delete(self, record: TaskRecord, *, last_rec: int | None = None) -> None:
        del self.records[record.rec], self.by_origin[record.origin_key]
        del self.transitions[record.rec]
        _unindex(self.by_attempt, _attempt(record), record.rec)
        _unindex(self.by_run, record.id, record.rec)
        if last_rec is not None:
            self.last_rec = last_rec

    def put(self, record: TaskRecord) -> Undo:
        old = self.records[record.rec]
        self.records[record.rec] = record
        return lambda: self.records.__setitem__(old.rec, old)

    def audit(self, transition: Transition) -> Undo:
        moves = self.transitions[transition.rec]
        moves.append(transition)
        return moves.pop

    def add_alert(self, alert: Alert) -> Undo:
        self.alerts[alert.seq] = alert
        self.last_seq = alert.seq

        def undo() -> None:
            del self.alerts[alert.seq]
            self.last_seq = alert.seq - 1

        return undo

    def set_mark(self, key: tuple[str, str], fired: datetime) -> Undo:
        old = self.marks.get(key)
        self.marks[key] = fired
        if old is None:
            return lambda: self.marks.__delitem__(key)
        return lambda: self.marks.__setitem__(key, old)

    def set_control(self, control: Control, event: ControlEvent) -> Undo:
        key = (control.workflow, control.phase)
        old = self.controls.get(key)
        self.controls[key] = control
        self.control_events.append(event)

        def undo() -> None:
            self.control_events.pop()
            if old is None:
                del self.controls[key]
            else:
                self.controls[key] = old

        return undo


class MemoryTx:
    """The `Tx` of a `MemoryTaskStore` transaction; usable only while it is open."""

    def __init__(self, tables: Tables, now: Callable[[], datetime]) -> None:
        self._t = tables
        self._now = now
        self._undo: list[Undo] = []
        self.open = True

    def rollback(self, mark: int = 0) -> None:
        while len(self._undo) > mark:
            self._undo.pop()()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self._check_open()
        mark = len(self._undo)
        try:
            yield
        except BaseException:
            self.rollback(mark)
            raise

    def add(
        self, records: Sequence[NewRecord], *, actor: str, reason: str
    ) -> list[TaskRecord | None]:
        self._check_open()
        check_new(records)
        now = self._now()
        made: list[TaskRecord | None] = []
        for new in records:
            if new.origin_key in self._t.by_origin:
                made.append(None)
                continue
            record = new_record(self._t.last_rec + 1, new, now)
            self._undo.append(self._t.insert(record))
            self._audit(record.rec, None, record.state, actor, reason, now)
            made.append(record)
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
        current: TaskRecord | None = None,  # the SQLite store's short-cut: the row is at hand
    ) -> TaskRecord:
        self._check_open()
        old = self.get(rec)
        now = self._now()
        new = moved(
            old, State(to), now, result=result, msg=msg, started=started, ended=ended,
            sent=sent, deadline=deadline,
        )  # fmt: skip
        self._undo.append(self._t.put(new))
        self._audit(rec, old.state, new.state, actor, reason, now)
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
        refused = []
        for index, record in enumerate(records):
            deadline = deadlines[index] if deadlines is not None else None
            try:
                self.move(record.rec, to, actor=actor, reason=reason, deadline=deadline)
            except ValueError:
                refused.append(record.rec)
        return refused

    def get(self, rec: int) -> TaskRecord:
        self._check_open()
        try:
            return self._t.records[rec]
        except KeyError:
            raise UnknownRecord(rec) from None

    def find_attempt(
        self, task_id: str, type: str, job: str, info: str, attempt: int
    ) -> TaskRecord | None:
        self._check_open()
        recs = self._t.by_attempt.get((task_id, type, job, info, attempt))
        return self._t.records[recs[-1]] if recs else None

    def completed(self, workflow: str, task_id: str) -> set[str]:
        self._check_open()
        records = (self._t.records[rec] for rec in self._t.by_run.get(task_id, ()))
        return {r.name for r in records if r.workflow == workflow and r.state is State.COMPLETE}

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
        if rec is not None and rec not in self._t.records:
            raise UnknownRecord(rec)
        alert = Alert(
            seq=self._t.last_seq + 1, at=self._now(), kind=kind, workflow=workflow,
            phase=phase, rec=rec, message=message,
        )  # fmt: skip
        self._undo.append(self._t.add_alert(alert))
        return alert.seq

    def set_mark(self, workflow: str, phase: str, fired: datetime) -> None:
        self._check_open()
        self._undo.append(self._t.set_mark((workflow, phase), fired))

    def control(self, workflow: str, phase: str) -> Control | None:
        self._check_open()
        return self._t.controls.get((workflow, phase))

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
        was = self._t.controls.get((workflow, phase))
        now = self._now()
        events = self._t.control_events
        event = ControlEvent(
            seq=events[-1].seq + 1 if events else 1, at=now, workflow=workflow, phase=phase,
            actor=actor, from_enabled=None if was is None else was.enabled, to_enabled=enabled,
            reason=reason, released=released, discarded=discarded,
        )  # fmt: skip
        control = Control(workflow=workflow, phase=phase, enabled=enabled, reason=reason,
                          updated_by=actor, updated_at=now)  # fmt: skip
        self._undo.append(self._t.set_control(control, event))
        return event

    def held(self, workflow: str, phase: str | None = None) -> list[TaskRecord]:
        self._check_open()
        return [
            r for r in self._t.records.values()
            if r.state is State.HELD and r.workflow == workflow
            and (phase is None or r.phase == phase)
        ]  # fmt: skip

    def first_seen(self, workflows: Sequence[str]) -> list[str]:
        self._check_open()
        new = list(dict.fromkeys(key for key in workflows if key not in self._t.seen))
        now = self._now()
        for key in new:
            self._t.seen[key] = now
            self._undo.append(lambda k=key: self._t.seen.pop(k))
        return new

    def _audit(
        self, rec: int, was: State | None, to: State, actor: str, reason: str, now: datetime
    ) -> None:
        move = Transition(rec=rec, from_state=was, to_state=to, reason=reason, actor=actor, at=now)
        self._undo.append(self._t.audit(move))

    def _check_open(self) -> None:
        if not self.open:
            raise StoreError("this transaction is over: use the store's transaction() again")
