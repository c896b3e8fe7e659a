"""The taskmaster: turns the cache into task records and messages, and done tasks into what
follows, while it holds the leader lease.

One loop thread does everything that changes state. Each turn (`step`): apply workflow changes,
record due cron fires, resolve a batch of done and file messages in one transaction (then
acknowledge them), send what is due from the outbox, and keep house (stuck tasks, retention).
Every unit of work runs through `_contained`, the loop's one edge: a failure is logged with the
unit's name, counted, and the loop goes on. Only losing the lease stops the leader's work.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cache import SQLiteCache
from flowlord import controls
from flowlord.bus import Consumer, Message, Producer
from flowlord.files import MetaFiles
from flowlord.holding import ControlGate
from flowlord.housekeeping import Housekeeping
from flowlord.loop import DEFAULT_SETTINGS, DEFAULT_TOPICS, Counters, LoopSettings, Topics
from flowlord.metrics import Metrics
from flowlord.outbox import Outbox
from flowlord.resolution import Effects, Resolution
from flowlord.scheduler import PhaseError, Scheduler
from flowlord.state import LeaseLost, TaskRecord, TaskStore, Tx
from workflow import PhaseRecord
from workflow.batch import DEFAULT_MAX_TASKS
from workflow.controls import Paused
from workflow.schedule import CronTable, Firing
from workflow.state import Origin, State

log = logging.getLogger("flowlord.taskmaster")

ACTOR = "flowlord"


@dataclass(slots=True)
class _Clockwork:
    """When the loop last did its periodic work (in `now` time), and when the batch whose
    children are still to be sent came (on the metrics clock)."""

    renewed: datetime | None = None
    due: datetime | None = None
    hop: tuple[float, int] | None = None  # (arrival, children queued)


class Taskmaster:
    """Schedules cron phases, resolves done tasks, starts phases on file messages, durably."""

    def __init__(
        self,
        cache: SQLiteCache,
        store: TaskStore,
        producer: Producer,
        make_consumer: Callable[[], Consumer],
        *,
        table: CronTable,
        now: Callable[[], datetime],
        new_id: Callable[[], str],
        holder: str,
        topics: Topics = DEFAULT_TOPICS,
        max_tasks: int = DEFAULT_MAX_TASKS,
        settings: LoopSettings = DEFAULT_SETTINGS,
        metrics: Metrics | None = None,
    ) -> None:
        self._cache = cache
        self._store = store
        self._producer = producer
        self._make_consumer = make_consumer
        self._consumer: Consumer | None = None
        self._now = now
        self.holder = holder
        self.topics = topics
        self._settings = settings
        self._changes: queue.SimpleQueue[list[str]] = queue.SimpleQueue()
        self._queued: list[TaskRecord] = []  # committed this turn: sent straight after
        self.counters = Counters()
        self.metrics = metrics or Metrics()
        self._paused = ControlGate(store, self.counters, now=now)
        self._start_paused = settings.start_paused  # done on first taking the lease
        meta_rows = MetaFiles(cache.workflow_folder).rows
        self._scheduler = Scheduler(
            table, new_id=new_id, meta_rows=meta_rows, max_tasks=max_tasks,
            task_ttl=settings.task_ttl,
        )  # fmt: skip
        self._resolution = Resolution(
            cache, self._scheduler.files, requirers=self._scheduler.requirers,
            files_topic=topics.files, new_id=new_id, now=now, meta_rows=meta_rows,
            max_tasks=max_tasks, paused=self._paused,
        )  # fmt: skip
        self._outbox = Outbox(
            store, producer, leader=holder, now=now, contained=self._contained,
            ttl=lambda r: self._scheduler.ttl(r.workflow, r.phase), paused=self._paused,
            counters=self.counters,
        )  # fmt: skip
        self._clock = _Clockwork()
        self._chores = Housekeeping(
            store, leader=holder, now=now, stuck_every=settings.stuck_every,
            retention=settings.retention, purge_every=settings.purge_every,
        )  # fmt: skip

    # leadership
    @property
    def leading(self) -> bool:
        return self._consumer is not None

    def lead(self) -> bool:
        """Take (or renew) the lease; on taking it, schedule every file and open the bus.

        Returns whether this process leads. A standby logs who leads instead.
        """
        lease = self._store.acquire(self.holder, ttl=self._settings.lease)
        self._clock.renewed = self._now()
        if lease.holder != self.holder and self._start_paused:
            self._start_paused = False  # a later takeover must not pause what runs by then
            log.warning("--start-paused ignored: %s leads; it pauses only at the start of "
                        "the process that leads", lease.holder)  # fmt: skip
        if lease.holder != self.holder:
            if self.leading:
                self.step_down(f"the lease is held by {lease.holder}")
            return False
        if not self.leading:
            log.info("leading: holding the lease until %s", lease.expires.isoformat())
            self._consumer = self._make_consumer()
            self.load_all()
        return True

    def step_down(self, why: str) -> None:
        """Stop sending and scheduling: another process leads now."""
        log.error("no longer leading: %s; standing by", why)
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        self._scheduler.clear()

    def release(self) -> None:
        """On a clean stop: give the lease up, so a successor takes over at once."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        self._store.release(self.holder)

    def on_change(self, keys: list[str]) -> None:
        """Called by the watch thread: queue the keys and wake the loop to apply them now.

        A standby drops them: taking the lease schedules every file afresh."""
        self._resolution.forget_lookups()
        consumer = self._consumer
        if consumer is not None:
            self._changes.put(keys)
            consumer.wakeup()

    def run(self, stop: threading.Event, *, poll: float = 0.2) -> None:
        """Lead (or stand by) until `stop`; each step is whole before `stop` is looked at."""
        standby_logged = ""
        while not stop.is_set():
            try:
                self.step(timeout=self.seconds_to_wait(poll))
            except LeaseLost as err:
                self.step_down(str(err))
            if self.leading:
                standby_logged = ""
                continue
            lease = self._store.lease()
            holder = lease.holder if lease else "nobody"
            if holder != standby_logged:
                log.info("standing by: the lease is held by %s until %s", holder,
                         lease.expires.isoformat() if lease else "-")  # fmt: skip
                standby_logged = holder
            stop.wait(min(self._settings.lease / 10, 1.0))

    def _renew_if_due(self) -> bool:
        """Renew the lease every third of its length (taking it over if it is free)."""
        renewed = self._clock.renewed
        third = timedelta(seconds=self._settings.lease / 3)
        if self.leading and renewed is not None and self._now() - renewed < third:
            return True
        return self.lead()

    # one turn
    def load_all(self) -> None:
        """Schedule every file (on taking the lease), in time linear in the phases, and fire
        what each cron phase missed while nobody led, per its `catchup=`."""
        self._resolution.forget_lookups()
        self._pause_at_start()
        by_file: dict[str, list[PhaseRecord]] = {}
        for phase in self._cache.phases_to_schedule():
            by_file.setdefault(phase.file_path, []).append(phase)
        now = self._now()  # one instant for all: jobs sharing a schedule share a next fire
        missed: list[Firing] = []
        for key, phases in by_file.items():
            self._contained(f"scheduling {key}", lambda k=key, p=phases: self._schedule(k, p, now))
            jobs = self._scheduler.table.jobs(key)
            if jobs:
                missed += self._scheduler.missed(jobs, self._store.marks(key), now)
        self._record_fires(missed, now)

    def step(self, *, timeout: float = 0.0) -> bool:
        """One turn of the loop; returns whether any message was handled. A standby only
        tries to take the lease."""
        if not self._contained("the lease", self._renew_if_due):
            threading.Event().wait(timeout)  # the database failed: try again after a poll
            return False
        if not self.leading:
            return False
        while not self._changes.empty():
            self._apply_changes(self._changes.get())
        now = self._now()
        self._contained(
            "cron fires", lambda: self._record_fires(self._scheduler.table.due(now), now)
        )
        messages = self._receive(timeout)
        if messages:  # acknowledged only once committed: a failed batch comes back on restart
            arrived = self.metrics.clock()
            self._contained(
                f"a batch of {len(messages)} message(s)", lambda: self._resolve(messages, arrived)
            )
        self._contained("the outbox", lambda: self._flush(idle=not messages))
        self._housekeeping()
        return bool(messages)

    def _flush(self, *, idle: bool) -> None:
        """Send what this turn queued, then (when idle, or every `due_every` seconds) what
        else is due: retries whose time came, records the CLI queued, anything left over."""
        queued, self._queued = self._queued, []
        sent = self._outbox.send(queued)
        self.counters.sent += sent
        if self._clock.hop is not None:  # this turn's batch queued children: they went now
            (arrived, children), self._clock.hop = self._clock.hop, None
            self.metrics.done_to_child.observe(self.metrics.clock() - arrived, min(children, sent))
        now, last = self._now(), self._clock.due
        if idle or last is None or (now - last).total_seconds() >= self._settings.due_every:
            self._clock.due = now
            self.counters.sent += self._outbox.flush()

    def _contained(self, unit: str, work: Callable[[], object]) -> bool:
        """Run one unit of work; any failure is logged with the unit's name, counted, and the
        loop goes on (a lost lease is not a failure of a unit: it goes up). Returns whether
        the unit succeeded."""
        try:
            work()
        except LeaseLost:
            raise
        except Exception:
            self.counters.failures += 1
            log.exception("%s failed (contained; going on)", unit)
            return False
        return True

    def _receive(self, timeout: float) -> list[Message]:
        """A batch of the messages available now: the first within `timeout`, then as many
        as are ready at once (group commit), up to the batch size."""
        consumer = self._consumer
        if consumer is None:
            return []
        messages: list[Message] = []
        try:
            first = consumer.receive(timeout)
            while first is not None:
                messages.append(first)
                if len(messages) >= self._settings.batch:
                    break
                first = consumer.receive(0)
        except Exception:
            self.counters.failures += 1
            log.exception("receiving from the bus failed; retrying")
            threading.Event().wait(timeout)  # at most one poll: a failing bus must not spin
        return messages

    def _resolve(self, messages: list[Message], arrived: float) -> None:
        """Resolve a batch in one transaction (`Resolution.batch`); then acknowledge it, send
        failed tasks to the failed topic, and leave what it queued to the outbox (`arrived`:
        when the batch came, on the metrics clock, to time its children's send)."""
        consumer = self._consumer
        effects = self._resolution.batch(self._store, messages, leader=self.holder)
        # Committed: now they may be acknowledged. An ack that fails leaves its message to be
        # delivered again, and a second done of a resolved task is a duplicate (ignored).
        self._contained(f"ack of {len(messages)} message(s)",
                        lambda: consumer.ack_all(messages))  # type: ignore[union-attr]  # fmt: skip
        self._count(effects)
        self._queued += effects.queued
        children = sum(record.origin is Origin.CHILD for record in effects.queued)
        self._clock.hop = (arrived, children) if children else None
        topic, send = self.topics.failed, self._producer.send
        for task in effects.failed if topic != "-" else ():
            self._contained(f"send of failed {task.type} {task.id} to {topic}",
                            lambda t=task: send(topic, t.to_json()))  # fmt: skip

    def _count(self, effects: Effects) -> None:
        for text in effects.bad:
            log.error("%s", text)
        self.counters.add(bad_messages=len(effects.bad), **effects.counts)
        self.counters.done_results.update(effects.results)
        self.counters.done_alerts.update(effects.alert_kinds)
        self.metrics.phase_durations.observe(effects.ended)

    # cron and workflow changes
    def fire_times(self, file_path: str, task: str) -> tuple[datetime, datetime] | None:
        """The previous and next fire of a cron phase (None for a phase not on a clock)."""
        return self._scheduler.table.times(file_path, task, self._now())

    def seconds_to_wait(self, poll: float) -> float:
        """Seconds until the next cron fire, at most `poll` (messages, retries and workflow
        changes are looked at every turn)."""
        wakeup = self._scheduler.table.next_wakeup()
        if wakeup is None:
            return poll
        return max(0.0, min(poll, (wakeup - self._now()).total_seconds()))

    def _record_fires(self, firings: list[Firing], now: datetime) -> None:
        if not firings:
            return
        made: list[TaskRecord] = []
        with self._store.transaction(leader=self.holder) as tx:
            paused = self._paused()
            for firing in firings:
                phase = firing.job.phase
                unit = f"cron fire of {phase.file_path}: {phase.task}"
                self._contained(unit, lambda f=firing: made.extend(self._fire(tx, f, now, paused)))
        self._queued += [record for record in made if record.state is State.QUEUED]
        self.counters.held += sum(record.state is State.HELD for record in made)

    def _fire(self, tx: Tx, firing: Firing, now: datetime, paused: Paused) -> list[TaskRecord]:
        try:
            with tx.savepoint():
                return self._scheduler.fire(tx, firing, now, paused)
        except PhaseError as err:
            phase = firing.job.phase
            self._phase_error(tx, str(err), workflow=phase.file_path, phase=phase.task)
            tx.set_mark(phase.file_path, phase.task, firing.at)
            return []

    def _phase_error(self, tx: Tx, text: str, *, workflow: str = "", phase: str = "") -> None:
        self.counters.phase_errors += 1
        tx.alert("phase_error", text, workflow=workflow, phase=phase)
        log.error("%s", text)

    def _apply_changes(self, keys: list[str]) -> None:
        """Reschedule only the changed files; a file that cannot be rescheduled keeps its jobs."""
        now = self._now()
        for key in keys:
            if key.startswith("-"):
                self._scheduler.unschedule(key[1:])
            else:
                self._contained(f"rescheduling {key}", lambda k=key: self._reschedule(k, now))

    def _reschedule(self, key: str, now: datetime) -> None:
        self._see([key])
        self._schedule(key, self._cache.phases(key), now)

    # controls
    def _pause_at_start(self) -> None:
        """`--start-paused` and `paused_at_creation`: pause before anything of the files is
        scheduled or fired."""
        keys = [f.file_path for f in self._cache.workflow_files()]
        if self._start_paused:
            self._start_paused = False
            events = controls.pause_every(self._store, keys, reason="started paused",
                                          actor=ACTOR)  # fmt: skip
            log.info("started paused: paused %d workflow file(s); %d were paused already",
                     len(events), len(keys) - len(events))  # fmt: skip
        self._see(keys)

    def _see(self, keys: list[str]) -> None:
        """Note the files scheduled; with `paused_at_creation`, pause the new ones."""
        pause = self._settings.paused_at_creation
        for event in controls.see_new(self._store, keys, pause=pause, actor=ACTOR,
                                      leader=self.holder):  # fmt: skip
            log.info("paused %s: a new workflow file (paused_at_creation)", event.workflow)

    def _schedule(self, key: str, phases: list[PhaseRecord], now: datetime) -> None:
        problems = self._scheduler.schedule(key, phases, now)
        if problems:
            with self._store.transaction(leader=self.holder) as tx:
                for text in problems:
                    self._phase_error(tx, text, workflow=key)

    # housekeeping
    def _housekeeping(self) -> None:
        now = self._now()
        chores = self._chores
        if chores.stuck_due(now):
            self._contained(
                "the stuck task check", lambda: self.counters.add(stuck=chores.alert_stuck())
            )
        if chores.purge_due(now):
            self._contained("retention", lambda: self.counters.add(purged=chores.purge()))
