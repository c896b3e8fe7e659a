"""Done and file messages turned into task records, inside the taskmaster's transaction.

The taskmaster opens one transaction for a batch of messages (group commit) and calls
`Resolution.message` for each inside a savepoint. Everything a message causes is written here:
the answered record moved to its end, children and retries created (`queued`, `waiting`), the
alerts; it is committed before the batch is acknowledged, and sent by the outbox after.
Idempotent by origin key: a message resolved twice creates nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cache import SQLiteCache
from flowlord.bus import Message
from flowlord.holding import birth
from flowlord.state import LeaseLost, NewRecord, TaskRecord, TaskStore, Tx
from workflow import PhaseRecord, Result, Task
from workflow.build import MetaRows
from workflow.controls import NOTHING_PAUSED, Paused
from workflow.files import FileRules
from workflow.resolve import Decision, Run, attempt_of, resolve, task_name
from workflow.state import ENDS, Origin, State, done_state
from workflow.task import parse_time, rfc3339

log = logging.getLogger("flowlord.taskmaster")

ACTOR = "flowlord"
LOOKUPS_KEPT = 10_000


class BadMessage(ValueError):
    """A message that cannot be resolved; the message says why. It is acknowledged."""


@dataclass(slots=True)
class Effects:
    """What resolving messages leads to after the commit: failed tasks for the failed topic,
    bad messages to log, counts."""

    failed: list[Task] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    queued: list[TaskRecord] = field(default_factory=list)
    """Records queued by this batch: the outbox sends them straight after the commit."""
    counts: Counter[str] = field(default_factory=Counter)
    results: Counter[str] = field(default_factory=Counter)
    """Done messages by result; `alert_kinds`: the alerts they raised, by kind."""
    alert_kinds: Counter[str] = field(default_factory=Counter)
    ended: list[TaskRecord] = field(default_factory=list)
    """The records done messages moved to their end (their phase durations)."""

    def queue(self, made: Sequence[TaskRecord | None], kind: str) -> None:
        """Note the records `add` created (None: created before, by an earlier delivery);
        those born held (their workflow is paused) are not to be sent."""
        new = [record for record in made if record is not None]
        self.queued += [record for record in new if record.state is State.QUEUED]
        self.counts[kind] += len(new)
        self.counts["held"] += sum(record.state is State.HELD for record in new)


class Resolution:
    """Resolves one message at a time into an open transaction."""

    def __init__(
        self,
        cache: SQLiteCache,
        files: FileRules,
        *,
        requirers: Callable[[str], Sequence[PhaseRecord]],
        files_topic: str,
        new_id: Callable[[], str],
        now: Callable[[], datetime],
        meta_rows: MetaRows,
        max_tasks: int,
        paused: Callable[[], Paused],
    ) -> None:
        self._cache = cache
        self._paused = paused
        self._batch_paused = NOTHING_PAUSED  # read once per batch, in its transaction
        self._files = files
        self._requirers = requirers
        self._files_topic = files_topic
        self._new_id = new_id
        self._now = now
        self._meta_rows = meta_rows
        self._max_tasks = max_tasks
        # The phase and children of each (workflow, type, job) done tasks name: runs repeat
        # them, and two lookups a done cost more than the rest of resolving it. Forgotten on
        # every workflow change (`forget_lookups`, from the watch thread).
        self._lookups: dict[tuple[str, str, str], tuple[PhaseRecord, list[PhaseRecord]]] = {}

    def forget_lookups(self) -> None:
        self._lookups = {}

    def _lookup(self, done: Task) -> tuple[PhaseRecord, list[PhaseRecord]]:
        """The phase a done task belongs to, and its children (memoized, see `__init__`)."""
        key = (done.meta_value("workflow"), done.type, done.job or done.meta_value("job"))
        lookups = self._lookups
        found = lookups.get(key)
        if found is None:
            if len(lookups) >= LOOKUPS_KEPT:
                lookups.clear()
            found = lookups[key] = (self._cache.get(done), self._cache.children(done))
        return found

    def batch(self, store: TaskStore, messages: Sequence[Message], *, leader: str) -> Effects:
        """Resolve a batch of messages in one transaction (group commit) and commit it.

        Optimistic: no savepoint per message, since a bad message is refused before it writes
        anything (an alert is recorded instead). Only if a message fails some other way is the
        batch rolled back and done again, each message in its own savepoint, so that it fails
        alone: rolled back, reported, and acknowledged like a bad one.
        """
        try:
            return self._batch(store, messages, leader=leader, isolated=False)
        except LeaseLost:
            raise
        except Exception:
            return self._batch(store, messages, leader=leader, isolated=True)

    def _batch(
        self, store: TaskStore, messages: Sequence[Message], *, leader: str, isolated: bool
    ) -> Effects:
        effects = Effects()
        with store.transaction(leader=leader) as tx:
            self._batch_paused = self._paused()
            for message in messages:
                try:
                    if isolated:
                        with tx.savepoint():
                            self.message(tx, message, effects)
                    else:
                        self.message(tx, message, effects)
                except BadMessage as err:
                    _bad_message(tx, message, str(err), effects)
                except LeaseLost:
                    raise
                except Exception as err:
                    if not isolated:
                        raise
                    effects.counts["failures"] += 1
                    log.exception("message %s@%s failed (contained; going on)",
                                  message.topic, message.where)  # fmt: skip
                    why = f"internal error: {type(err).__name__}: {err}"
                    _bad_message(tx, message, why, effects)
        return effects

    def message(self, tx: Tx, message: Message, effects: Effects) -> None:
        """Resolve one message of the done or files topic; `BadMessage` when it is unusable."""
        if message.topic == self._files_topic:
            self._file(tx, message, effects)
        else:
            self._done(tx, message, effects)

    def _done(self, tx: Tx, message: Message, effects: Effects) -> None:
        """Every `BadMessage` is raised before anything is written: the taskmaster may resolve
        a batch without a savepoint per message."""
        try:
            done = Task.from_json(message.body)
        except ValueError as err:
            raise BadMessage(str(err)) from None
        if done.result == Result.NONE:
            raise BadMessage(f"{task_name(done)} {done.id}: done with no result")
        effects.counts["done"] += 1
        effects.results[done.result] += 1
        attempt = attempt_of(done)
        record = tx.find_attempt(done.id, done.type, done.job, done.info, attempt)
        if record is not None and record.state == State.CANCELLED:
            raise BadMessage(f"done for record {record.rec}, which was cancelled: ignored")
        if record is not None and record.state in ENDS:
            effects.counts["duplicates"] += 1
            log.info("duplicate done for record %d (%s %s) ignored", record.rec, record.name,
                     record.id)  # fmt: skip
            return
        phase, children = self._lookup(done)
        if phase.is_empty():
            workflow = record.workflow if record else done.meta_value("workflow")
            raise BadMessage(f"no phase for {task_name(done)} in workflow {workflow!r}")
        decision = self._decide(tx, phase, children, done)
        if record is None:
            record = self._external(tx, phase, done, attempt)
        self._apply(tx, record, done, decision, effects)

    def _decide(
        self, tx: Tx, phase: PhaseRecord, children: list[PhaseRecord], done: Task
    ) -> Decision:
        requirers = self._requirers(phase.file_path)
        run = Run(
            phase=phase,
            children=children,
            file_phases=requirers,
            # What completed in this run matters only to a `require=` (a fan-in) of the file.
            completed=frozenset(tx.completed(phase.file_path, done.id)) if requirers else (),
            max_tasks=self._max_tasks,
            meta_rows=self._meta_rows,
        )
        try:
            return resolve(done, run, now=self._now())
        except (ValueError, TypeError) as err:
            raise BadMessage(str(err)) from None

    def _external(self, tx: Tx, phase: PhaseRecord, done: Task, attempt: int) -> TaskRecord:
        """The record of a task flowlord never sent (a worker or a person started a chain)."""
        key = f"external|{done.id}|{done.type}|{done.job}|{done.info}|{attempt}"
        sent = Task(type=done.type, job=done.job, info=done.info, meta=done.meta, id=done.id,
                    created=done.created or rfc3339(self._now()))  # fmt: skip
        [record] = tx.add([NewRecord(
            task=sent, workflow=phase.file_path, phase=phase.task, attempt=attempt,
            origin=Origin.EXTERNAL, origin_key=key, state=State.SENT,
        )], actor="worker", reason="done for a task flowlord did not send")  # fmt: skip
        if record is None:  # its key exists, yet the attempt did not match it: a bug, contained
            raise LookupError(f"record {key!r} exists but its done message did not find it")
        log.debug("done for a task flowlord did not send: %s %s recorded as record %d",
                  task_name(done), done.id, record.rec)  # fmt: skip
        return record

    def _apply(
        self, tx: Tx, record: TaskRecord, done: Task, decision: Decision, effects: Effects
    ) -> None:
        """Write what a decision says: the record's end, children, a retry, alerts."""
        effects.ended.append(tx.move(
            record.rec, done_state(done.result, retried=decision.retry is not None),
            actor="worker", reason=f"done: {done.result}", result=done.result, msg=done.msg,
            started=_time(done.started), ended=_time(done.ended), current=record,
        ))  # fmt: skip
        self._children(tx, record, decision.send, effects)
        if decision.retry is not None:
            due, retry = decision.retry
            tx.add([NewRecord(
                task=retry, workflow=record.workflow, phase=record.phase,
                attempt=record.attempt + 1, origin=Origin.RETRY, origin_key=f"retry|{record.rec}",
                state=State.WAITING, due=due,
            )], actor=ACTOR, reason=f"retry of record {record.rec}")  # fmt: skip
            effects.counts["retries"] += 1
        if decision.failed is not None:
            effects.failed.append(decision.failed)
            effects.counts["failed"] += 1
        kind = "alert" if done.result == Result.ALERT else "failed"
        if decision.alerts:
            effects.counts["alerts"] += len(decision.alerts)
            effects.alert_kinds[kind] += len(decision.alerts)
        for text in decision.alerts:
            tx.alert(kind, text, workflow=record.workflow, phase=record.phase, rec=record.rec)
            log.warning("ALERT %s", text)
        for text in decision.notes:
            log.info("%s", text)
        effects.counts["phase_errors"] += len(decision.errors)
        for text in decision.errors:
            tx.alert("phase_error", text, workflow=record.workflow, rec=record.rec)
            log.error("%s", text)

    def _children(
        self,
        tx: Tx,
        parent: TaskRecord,
        children: Sequence[tuple[PhaseRecord, Task]],
        effects: Effects,
    ) -> None:
        items: Counter[str] = Counter()
        by_birth: dict[tuple[State, str], list[NewRecord]] = {}
        for phase, task in children:
            items[phase.task] += 1
            state, why = birth(self._batch_paused, phase.file_path, phase.task,
                               f"child of record {parent.rec}")  # fmt: skip
            by_birth.setdefault((state, why), []).append(NewRecord(
                task=task, workflow=phase.file_path, phase=phase.task, origin=Origin.CHILD,
                origin_key=f"child|{parent.rec}|{phase.task}|{items[phase.task]}", state=state,
            ))  # fmt: skip
        for (_, why), new in by_birth.items():
            effects.queue(tx.add(new, actor=ACTOR, reason=why), "children")

    def _file(self, tx: Tx, message: Message, effects: Effects) -> None:
        try:
            tasks, errors = self._files.tasks(
                message.body, new_id=self._new_id, now=self._now(),
                meta_rows=self._meta_rows, max_tasks=self._max_tasks,
            )  # fmt: skip
        except ValueError as err:
            raise BadMessage(str(err)) from None
        digest = hashlib.sha256(message.body.encode()).hexdigest()[:32]
        items: Counter[str] = Counter()
        by_birth: dict[tuple[State, str], list[NewRecord]] = {}
        for task in tasks:
            workflow, phase = task.meta_value("workflow"), task_name(task)
            items[f"{workflow}|{phase}"] += 1
            state, why = birth(self._batch_paused, workflow, phase, f"file {message.body[:200]}")
            by_birth.setdefault((state, why), []).append(NewRecord(
                task=task, workflow=workflow, phase=phase, origin=Origin.FILE,
                origin_key=f"file|{workflow}|{phase}|{digest}|{items[f'{workflow}|{phase}']}",
                state=state,
            ))  # fmt: skip
        for (_, why), new in by_birth.items():
            effects.queue(tx.add(new, actor=ACTOR, reason=why), "files")
        effects.counts["phase_errors"] += len(errors)
        for text in errors:
            tx.alert("phase_error", text)
            log.error("%s", text)


def _bad_message(tx: Tx, message: Message, why: str, effects: Effects) -> None:
    """An alert in the batch's transaction; the taskmaster logs it once it is committed."""
    text = f"bad message on {message.topic} at {message.where}: {why}: {message.body:.200}"
    tx.alert("bad_message", text)
    effects.bad.append(text)


def _time(text: str) -> datetime | None:
    return parse_time(text, "time") if text else None
