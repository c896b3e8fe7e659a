"""The taskmaster: turns the cache into tasks on the bus, and done tasks into what follows.

One loop thread does everything that changes state: it fires due cron jobs and retries,
handles done and file messages, and applies cache changes (queued by the watch thread).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from cache import SQLiteCache
from flowlord.bus import Consumer, Message, Producer
from flowlord.files import MetaFiles
from workflow import PhaseRecord, Result, Task
from workflow.batch import DEFAULT_MAX_TASKS, BatchError
from workflow.files import FileRules
from workflow.query import parse_query
from workflow.resolve import Decision, Run, resolve, task_name
from workflow.schedule import CronTable, Firing, cron_jobs, cron_tasks
from workflow.template import TemplateError
from workflow.validate import status_has_error

log = logging.getLogger("flowlord.taskmaster")

RUNS_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Topics:
    """Where done tasks, failed tasks and file messages travel; `failed="-"` disables it."""

    done: str = "done"
    failed: str = "retry-failed"
    files: str = "files"


DEFAULT_TOPICS = Topics()


@dataclass(slots=True)
class Counters:
    """What the taskmaster did, for logs now and /metrics later."""

    sent: int = 0
    done: int = 0
    retries: int = 0
    failed: int = 0
    alerts: int = 0
    bad_messages: int = 0
    phase_errors: int = 0
    failures: int = 0


@dataclass(slots=True)
class _Retries:
    """Retries waiting for their time, in a heap (held in memory until durable state lands)."""

    heap: list[tuple[datetime, int, Task]] = field(default_factory=list)
    order: itertools.count = field(default_factory=itertools.count)

    def add(self, at: datetime, task: Task) -> None:
        heapq.heappush(self.heap, (at, next(self.order), task))

    def due(self, now: datetime) -> list[Task]:
        tasks = []
        while self.heap and self.heap[0][0] <= now:
            tasks.append(heapq.heappop(self.heap)[2])
        return tasks

    def next_time(self) -> datetime | None:
        return self.heap[0][0] if self.heap else None


class Taskmaster:
    """Schedules cron phases, resolves done tasks, starts phases on file messages.

    Every unit of work (one message, one cron fire, one retry, one send, one changed file)
    runs through `_contained`, the loop's one edge: a failure of any kind is logged with the
    unit's name and counted, and the loop goes on; a message is acknowledged whatever its
    handling did, so a restart never meets it again.
    """

    def __init__(
        self,
        cache: SQLiteCache,
        producer: Producer,
        consumer: Consumer,
        *,
        table: CronTable,
        now: Callable[[], datetime],
        new_id: Callable[[], str],
        topics: Topics = DEFAULT_TOPICS,
        max_tasks: int = DEFAULT_MAX_TASKS,
    ) -> None:
        self._cache = cache
        self._producer = producer
        self._consumer = consumer
        self._table = table
        self._now = now
        self._new_id = new_id
        self.topics = topics
        self._max_tasks = max_tasks
        self._retries = _Retries()
        self._changes: queue.SimpleQueue[list[str]] = queue.SimpleQueue()
        self._completed: OrderedDict[tuple[str, str], set[str]] = OrderedDict()
        self._files = FileRules()
        self._requirers: dict[str, list[PhaseRecord]] = {}
        self._meta_files = MetaFiles(cache.workflow_folder)
        self.counters = Counters()

    # wiring
    def on_change(self, keys: list[str]) -> None:
        """Called by the watch thread: queue the keys and wake the loop to apply them now."""
        self._changes.put(keys)
        self._consumer.wakeup()

    def load_all(self) -> None:
        """Schedule every file in the cache (at start-up), in time linear in the phases."""
        by_file: dict[str, list[PhaseRecord]] = {}
        for phase in self._cache.phases_to_schedule():
            by_file.setdefault(phase.file_path, []).append(phase)
        now = self._now()  # one instant for all: jobs sharing a schedule share a next fire
        for key, phases in by_file.items():
            self._contained(f"scheduling {key}", lambda k=key, p=phases: self._schedule(k, now, p))

    def run(self, stop: threading.Event, *, poll: float = 0.2) -> None:
        """Loop until `stop`: each message is handled whole before the loop looks at `stop`."""
        while not stop.is_set():
            self.step(timeout=self.seconds_to_wait(poll))

    def step(self, *, timeout: float = 0.0) -> bool:
        """One turn of the loop: cache changes, due fires and retries, at most one message.

        Returns whether a message was handled.
        """
        while not self._changes.empty():
            self._apply_changes(self._changes.get())
        self.fire_due()
        message = self._receive(timeout)
        if message is None:
            return False
        where = f"message {message.topic}@{message.offset}"
        self._contained(where, lambda: self.handle(message))
        self._contained(f"ack of {where}", lambda: self._consumer.ack(message))
        return True

    def _contained(self, unit: str, work: Callable[[], object]) -> bool:
        """Run one unit of work; any failure is logged with the unit's name, counted, and the
        loop goes on. Returns whether the unit succeeded."""
        try:
            work()
        except Exception:
            self.counters.failures += 1
            log.exception("%s failed (contained; going on)", unit)
            return False
        return True

    def _receive(self, timeout: float) -> Message | None:
        """The next message; a bus that fails is reported and retried after `timeout`."""
        try:
            return self._consumer.receive(timeout)
        except Exception:
            self.counters.failures += 1
            log.exception("receiving from the bus failed; retrying")
            time.sleep(timeout)  # at most one poll: a failing bus must not spin the loop
            return None

    # cron and retries
    def fire_times(self, file_path: str, task: str) -> tuple[datetime, datetime] | None:
        """The previous and next fire of a cron phase (None for a phase not on a clock)."""
        return self._table.times(file_path, task, self._now())

    def fire_due(self) -> None:
        now = self._now()
        for firing in self._table.due(now):
            unit = f"cron fire of {firing.job.phase.file_path}: {firing.job.phase.task}"
            self._contained(unit, lambda f=firing: self._fire(f, now))
        for task in self._retries.due(now):
            self._send(task.type, task)

    def _fire(self, firing: Firing, now: datetime) -> None:
        phase = firing.job.phase
        try:
            tasks = cron_tasks(
                firing, new_id=self._new_id, created=now, meta_rows=self._meta_files.rows,
                max_tasks=self._max_tasks,
            )  # fmt: skip
        except (BatchError, TemplateError) as err:
            self._phase_error(f"{phase.file_path}: {phase.task}: {err}")
            return
        sent = sum(self._send(task.type, task) for task in tasks)
        log.info("fired %s: %s at %s: %d task(s) sent %s", phase.file_path, phase.task,
                 firing.at.isoformat(), sent, " ".join(t.id for t in tasks[:3]))  # fmt: skip

    def seconds_to_wait(self, poll: float) -> float:
        """Seconds until the next fire or retry, at most `poll` (changes arrive meanwhile)."""
        times = [t for t in (self._table.next_wakeup(), self._retries.next_time()) if t]
        if not times:
            return poll
        return max(0.0, min(poll, (min(times) - self._now()).total_seconds()))

    def _apply_changes(self, keys: list[str]) -> None:
        """Reschedule only the changed files; a file that cannot be rescheduled keeps its jobs."""
        now = self._now()
        for key in keys:
            if key.startswith("-"):
                self._unschedule(key[1:])
            else:
                self._contained(f"rescheduling {key}", lambda k=key: self._schedule(k, now))

    def _unschedule(self, key: str) -> None:
        self._table.remove_file(key)
        self._files.remove_file(key)
        self._requirers.pop(key, None)
        log.info("unscheduled %s: the file is gone", key)

    def _schedule(self, key: str, now: datetime, phases: list[PhaseRecord] | None = None) -> None:
        """(Re)schedule one file; nothing changes until its new jobs are all computed.

        Logs one line per file with each cron phase's next fire time and the time zone.
        """
        if phases is None:
            phases = self._cache.phases(key)
        jobs, problems = cron_jobs(phases)
        runnable = [p for p in phases if not status_has_error(p.status)]
        upcoming = self._table.set_file(key, jobs, now)
        self._files.set_file(key, runnable)
        self._requirers[key] = [
            p for p in runnable if "require=" in p.rule and "require" in parse_query(p.rule)
        ]
        fires = ", ".join(f"{f.job.phase.task} at {f.at.isoformat()}" for f in upcoming)
        zone = getattr(self._table.zone, "key", self._table.zone)
        log.info("scheduled %s: %s", key, f"next fires {fires} ({zone})" if fires else "no cron")
        for phase in phases:
            if status_has_error(phase.status):
                log.error("%s: %s will not run: %s", key, phase.task, phase.status)
        for problem in problems.values():
            self._phase_error(problem)

    # messages
    def handle(self, message: Message) -> None:
        """One message of the done or files topic; a bad one is logged and counted, not fatal."""
        if message.topic == self.topics.files:
            self._handle_file(message)
            return
        try:
            done = Task.from_json(message.body)
        except ValueError as err:
            self._bad_message(message, str(err))
            return
        self.counters.done += 1
        workflow = done.meta_value("workflow")
        phase = self._cache.get(done)
        if phase.is_empty():
            self._bad_message(message, f"no phase for {task_name(done)} in workflow {workflow!r}")
            return
        completed = self._completed_in(workflow, done)
        if done.result == Result.COMPLETE and task_name(done) in completed:
            log.info("duplicate done message for %s %s ignored", task_name(done), done.id)
            return
        run = Run(
            phase=phase,
            children=self._cache.children(done),
            file_phases=self._requirers.get(phase.file_path, ()),
            completed=frozenset(completed),
            failed_topic=self.topics.failed,
            max_tasks=self._max_tasks,
            meta_rows=self._meta_files.rows,
        )
        try:
            decision = resolve(done, run, now=self._now())
        except (ValueError, TypeError) as err:
            self._bad_message(message, str(err))
            return
        if done.result == Result.COMPLETE:
            completed.add(task_name(done))
        self._perform(decision)

    def _perform(self, decision: Decision) -> None:
        for topic, task in decision.send:
            if topic == self.topics.failed:
                self.counters.failed += 1
            self._send(topic, task)
        if decision.retry is not None:
            self.counters.retries += 1
            self._retries.add(*decision.retry)
        for alert in decision.alerts:
            self.counters.alerts += 1
            log.warning("ALERT %s", alert)
        for note in decision.notes:
            log.info("%s", note)
        for error in decision.errors:
            self._phase_error(error)

    def _handle_file(self, message: Message) -> None:
        try:
            tasks, errors = self._files.tasks(
                message.body, new_id=self._new_id, now=self._now(),
                meta_rows=self._meta_files.rows, max_tasks=self._max_tasks,
            )  # fmt: skip
        except ValueError as err:
            self._bad_message(message, str(err))
            return
        for task in tasks:
            self._send(task.type, task)
        for error in errors:
            self._phase_error(error)

    def _completed_in(self, workflow: str, done: Task) -> set[str]:
        key = (workflow, done.id)
        completed = self._completed.setdefault(key, set())
        self._completed.move_to_end(key)
        while len(self._completed) > RUNS_REMEMBERED:
            self._completed.popitem(last=False)
        return completed

    def _send(self, topic: str, task: Task) -> bool:
        """Each send is a unit of its own: one task that cannot be sent stops no other.

        Logged at debug level: at thousands of tasks a second, a line each would cost more
        than the send (cron fires, retries, failures and alerts are logged at info and up).
        """
        if self._contained(f"send of {task_name(task)} {task.id} to {topic}",
                           lambda: self._producer.send(topic, task.to_json())):  # fmt: skip
            self.counters.sent += 1
            log.debug("sent %s %s %s", topic, task.id, task.info)
            return True
        return False

    def _bad_message(self, message: Message, why: str) -> None:
        self.counters.bad_messages += 1
        log.error(
            "bad message on %s at %d: %s: %.200s", message.topic, message.offset, why, message.body
        )

    def _phase_error(self, error: str) -> None:
        self.counters.phase_errors += 1
        log.error("%s", error)
