"""Cron scheduling decisions: which phases fire on a clock, when, and the tasks they send.

Pure: the caller passes `now`; `CronTable` only orders fire times in a heap. DST policy
(robfig/cron skips a job in the lost hour; we do not): a fire time in a skipped hour runs once
at the first valid instant after it; one in a repeated hour runs once, at its first occurrence.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from workflow.batch import DEFAULT_MAX_TASKS
from workflow.build import MetaRows, phase_tasks
from workflow.cron import CronError, Schedule, parse_cron
from workflow.duration import DurationError, parse_duration
from workflow.phase import PhaseRecord
from workflow.query import parse_query
from workflow.task import Task, rfc3339
from workflow.validate import status_has_error

_TICK = timedelta(microseconds=1)
MEMO_SIZE = 100_000
_COMPACT_FACTOR = 2
_COMPACT_SLACK = 1024


@dataclass(frozen=True, slots=True)
class CronJob:
    """A phase that fires on a clock: its schedule and the offset applied to its task time."""

    phase: PhaseRecord
    schedule: Schedule
    offset: timedelta

    @property
    def key(self) -> tuple[str, str]:
        return self.phase.file_path, self.phase.task


@dataclass(frozen=True, slots=True)
class Firing:
    """One due fire of a job, at its scheduled instant."""

    job: CronJob
    at: datetime


def cron_jobs(phases: Iterable[PhaseRecord]) -> tuple[list[CronJob], dict[str, str]]:
    """The phases that fire on a clock, and those whose cron or offset cannot be used (why).

    A phase with `dependsOn` runs from its parent only: its cron is ignored (its status says so).
    A phase whose status has an error is left out (run does only what validate accepts; the
    caller reports those phases once for every kind of phase).
    """
    jobs: list[CronJob] = []
    problems: dict[str, str] = {}
    for phase in phases:
        if "cron=" not in phase.rule or phase.depends_on or status_has_error(phase.status):
            continue
        rule = parse_query(phase.rule)
        if "cron" not in rule:
            continue
        try:
            schedule = parse_cron(rule["cron"])
            offset = parse_duration(rule.get("offset", "0"))
        except (CronError, DurationError) as err:
            problems[phase.task] = f"{phase.file_path}: {phase.task}: {err}"
            continue
        jobs.append(CronJob(phase=phase, schedule=schedule, offset=offset))
    return jobs, problems


def next_fire(schedule: Schedule, after: datetime, zone: tzinfo) -> datetime:
    """The first fire time strictly after `after`, in `zone`, under our DST policy.

    Instants are compared in UTC: datetimes sharing a tzinfo compare by wall time, fold ignored.
    """
    limit = after.astimezone(UTC)
    candidate = schedule.next_after(after.astimezone(zone))
    while candidate.astimezone(UTC) <= limit or _second_occurrence(candidate):
        candidate = schedule.next_after(candidate)
    return candidate


def previous_fire(schedule: Schedule, before: datetime, zone: tzinfo) -> datetime:
    """The last fire time strictly before `before`, in `zone`, under our DST policy."""
    limit = before.astimezone(UTC)
    candidate = schedule.prev_before(before.astimezone(zone))
    while candidate.astimezone(UTC) >= limit or _second_occurrence(candidate):
        candidate = schedule.prev_before(candidate)
    return candidate


def _second_occurrence(when: datetime) -> bool:
    """A wall time that also happened an hour earlier (the repeated hour when clocks go back)."""
    if when.fold == 0:
        return False
    first = when.replace(fold=0)
    return first.utcoffset() != when.utcoffset()


def cron_tasks(
    firing: Firing,
    *,
    new_id: Callable[[], str],
    created: datetime,
    meta_rows: MetaRows | None = None,
    max_tasks: int = DEFAULT_MAX_TASKS,
) -> list[Task]:
    """The tasks a fire sends: one per batch item, rendered at fire time + offset.

    Each carries meta `workflow`, `cron` (the fire instant) and `job`, and its own run id.
    Raises `BatchError` or `TemplateError` when the phase cannot make its tasks.
    """
    phase = firing.job.phase
    meta = {"workflow": phase.file_path, "cron": rfc3339(firing.at)}
    if phase.job:
        meta["job"] = phase.job
    return phase_tasks(
        phase, firing.at + firing.job.offset, meta=meta, new_id=new_id, created=created,
        meta_rows=meta_rows, max_tasks=max_tasks,
    )  # fmt: skip


def missed_fires(
    schedule: Schedule,
    *,
    last: datetime,
    now: datetime,
    zone: tzinfo,
    catchup: str,
    cap: int = DEFAULT_MAX_TASKS,
) -> tuple[list[datetime], bool]:
    """The fire instants after `last` up to `now` to fire at start-up, oldest first, and
    whether older missed instants were left out.

    `latest`: the newest missed instant only; `none`: none; `all`: each, the newest `cap` of
    them. Walked back from `now`, so a long outage of a frequent job costs at most `cap` steps.
    """
    if catchup == "none":
        return [], previous_fire(schedule, now + _TICK, zone).astimezone(UTC) > last
    limit = 1 if catchup == "latest" else cap
    found: list[datetime] = []
    cursor = now + _TICK
    while len(found) < limit:
        instant = previous_fire(schedule, cursor, zone)
        if instant.astimezone(UTC) <= last.astimezone(UTC):
            return found[::-1], False
        found.append(instant)
        cursor = instant
    older = previous_fire(schedule, cursor, zone).astimezone(UTC) > last.astimezone(UTC)
    return found[::-1], older


class CronTable:
    """Next fire time of every cron job, in one heap; jobs are replaced a file at a time.

    Fires at the same instant come out by file, then task.
    """

    def __init__(self, zone: tzinfo = UTC) -> None:
        self.zone = zone
        self._next: dict[tuple[Schedule, datetime], datetime] = {}
        self._files: dict[str, dict[str, tuple[CronJob, int]]] = {}
        self._count = 0
        self._heap: list[tuple[datetime, tuple[str, str], int]] = []
        self._generations = itertools.count()

    def set_file(self, file_path: str, jobs: Iterable[CronJob], now: datetime) -> list[Firing]:
        """Replace the jobs of one file; a job removed stops, a new one starts after `now`.

        Costs time in the file's jobs only. Returns each job's next fire, for the log.
        """
        self.remove_file(file_path)
        entries: dict[str, tuple[CronJob, int]] = {}
        upcoming = []
        for job in jobs:
            generation = next(self._generations)
            entries[job.phase.task] = (job, generation)
            at = self._next_fire(job.schedule, now)
            self._push(job.key, at, generation)
            upcoming.append(Firing(job=job, at=at.astimezone(self.zone)))
        if entries:
            self._files[file_path] = entries
            self._count += len(entries)
        return upcoming

    def remove_file(self, file_path: str) -> None:
        """Stop the jobs of one file; their heap entries go stale and are dropped later."""
        self._count -= len(self._files.pop(file_path, {}))
        if len(self._heap) > _COMPACT_FACTOR * self._count + _COMPACT_SLACK:
            self._heap = [entry for entry in self._heap if self._live(entry) is not None]
            heapq.heapify(self._heap)

    def due(self, now: datetime) -> list[Firing]:
        """Pop every fire at or before `now`, each rescheduled after its own fire time.

        A fire superseded by a later one that is also due (the process was paused) is skipped:
        after a pause each job fires once, at its latest due time, not once per missed interval.
        """
        limit = now.astimezone(UTC)
        firings = []
        while self._heap and self._heap[0][0] <= limit:
            entry = heapq.heappop(self._heap)
            job = self._live(entry)
            if job is None:
                continue
            at, key, generation = entry
            following = self._next_fire(job.schedule, at)
            if following.astimezone(UTC) <= limit:
                latest = previous_fire(job.schedule, limit + _TICK, self.zone)
                self._push(key, latest, generation)
                continue
            firings.append(Firing(job=job, at=at.astimezone(self.zone)))
            self._push(key, following, generation)
        return firings

    def next_wakeup(self) -> datetime | None:
        """When the earliest live job fires (stale heap entries are dropped first)."""
        while self._heap:
            if self._live(self._heap[0]) is not None:
                return self._heap[0][0]
            heapq.heappop(self._heap)
        return None

    def times(self, file_path: str, task: str, now: datetime) -> tuple[datetime, datetime] | None:
        """The previous and next fire of one job around `now`, for display."""
        entry = self._files.get(file_path, {}).get(task)
        if entry is None:
            return None
        schedule = entry[0].schedule
        return previous_fire(schedule, now, self.zone), next_fire(schedule, now, self.zone)

    def jobs(self, file_path: str) -> list[CronJob]:
        """The jobs of one file, as last set."""
        return [job for job, _ in self._files.get(file_path, {}).values()]

    def __len__(self) -> int:
        return self._count

    def _live(self, entry: tuple[datetime, tuple[str, str], int]) -> CronJob | None:
        """The job of a heap entry, or None when the entry is stale (job replaced or gone)."""
        (file_path, task), generation = entry[1], entry[2]
        found = self._files.get(file_path, {}).get(task)
        return found[0] if found is not None and found[1] == generation else None

    def _next_fire(self, schedule: Schedule, after: datetime) -> datetime:
        """`next_fire`, memoized per instant: jobs sharing a schedule fire together, and
        croniter costs ~0.25 ms a call."""
        key = (schedule, after.astimezone(UTC))
        found = self._next.get(key)
        if found is None:
            if len(self._next) >= MEMO_SIZE:
                self._next.clear()
            found = self._next[key] = next_fire(schedule, after, self.zone)
        return found

    def _push(self, key: tuple[str, str], at: datetime, generation: int) -> None:
        heapq.heappush(self._heap, (at.astimezone(UTC), key, generation))
