"""What the taskmaster knows of the workflow files: cron jobs, files rules, `require`
phases and time-to-live, rebuilt a file at a time; and cron fires made into task records.

A cron fire is a `queued` record whose origin key is the fire instant of the phase, and the
phase's mark (its last fired instant) moves in the same transaction: an instant is sent once,
across restarts and takeovers. After downtime, each cron phase fires what it missed per its
`catchup=` rule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from flowlord.holding import birth
from flowlord.state import NewRecord, TaskRecord, Tx
from workflow import PhaseRecord
from workflow.batch import BatchError
from workflow.build import MetaRows
from workflow.controls import Paused
from workflow.files import FileRules
from workflow.policy import PolicyRuleError, catchup_of, ttl_of
from workflow.query import parse_query
from workflow.schedule import CronJob, CronTable, Firing, cron_jobs, cron_tasks, missed_fires
from workflow.state import Origin, State
from workflow.task import rfc3339
from workflow.template import TemplateError
from workflow.validate import status_has_error

log = logging.getLogger("flowlord.taskmaster")

ACTOR = "flowlord"


class PhaseError(ValueError):
    """A phase that cannot make its tasks at fire time (a meta-file, a batch over the cap);
    the message names the file and the phase."""


class Scheduler:
    """The schedule of every loaded file, and the records its cron fires make."""

    def __init__(
        self,
        table: CronTable,
        *,
        new_id: Callable[[], str],
        meta_rows: MetaRows,
        max_tasks: int,
        task_ttl: timedelta,
    ) -> None:
        self.table = table
        self.files = FileRules()
        self._requirers: dict[str, list[PhaseRecord]] = {}
        self._ttls: dict[str, dict[str, timedelta]] = {}
        self._new_id = new_id
        self._meta_rows = meta_rows
        self._max_tasks = max_tasks
        self._task_ttl = task_ttl

    def requirers(self, key: str) -> list[PhaseRecord]:
        """The phases of a file with a `require=` rule (a fan-in may start one of them)."""
        return self._requirers.get(key, [])

    def ttl(self, workflow: str, phase: str) -> timedelta:
        """How long a sent task of this phase may go without a done (`ttl=`, else the default)."""
        return self._ttls.get(workflow, {}).get(phase, self._task_ttl)

    def schedule(self, key: str, phases: list[PhaseRecord], now: datetime) -> list[str]:
        """(Re)schedule one file; nothing changes until its new jobs are all computed.

        Logs one line with each cron phase's next fire and the time zone, and one per phase
        that will not run. Returns problems found in phases validation passed (stale statuses).
        """
        jobs, problems = cron_jobs(phases)
        runnable = [p for p in phases if not status_has_error(p.status)]
        ttls = {p.task: ttl for p in runnable if (ttl := self._phase_ttl(p)) is not None}
        upcoming = self.table.set_file(key, jobs, now)
        self.files.set_file(key, runnable)
        self._requirers[key] = [p for p in runnable if "require" in parse_query(p.rule)]
        self._ttls[key] = ttls
        fires = ", ".join(f"{f.job.phase.task} at {f.at.isoformat()}" for f in upcoming)
        zone = getattr(self.table.zone, "key", self.table.zone)
        log.info("scheduled %s: %s", key, f"next fires {fires} ({zone})" if fires else "no cron")
        for phase in phases:
            if status_has_error(phase.status):
                log.error("%s: %s will not run: %s", key, phase.task, phase.status)
        return list(problems.values())

    def unschedule(self, key: str) -> None:
        self.table.remove_file(key)
        self.files.remove_file(key)
        self._requirers.pop(key, None)
        self._ttls.pop(key, None)
        log.info("unscheduled %s: the file is gone", key)

    def clear(self) -> None:
        """Forget every file (a leader that stepped down schedules nothing)."""
        self.table = CronTable(self.table.zone)
        self.files = FileRules()
        self._requirers.clear()
        self._ttls.clear()

    def missed(self, jobs: Iterable[CronJob], marks: Mapping[str, datetime], now: datetime
               ) -> list[Firing]:  # fmt: skip
        """The fires a file's cron jobs missed since their marks, per their `catchup=`."""
        firings = []
        for job in jobs:
            last = marks.get(job.phase.task)
            if last is None:  # never fired: nothing was missed
                continue
            catchup = _catchup(job.phase)
            found, older = missed_fires(
                job.schedule, last=last, now=now, zone=self.table.zone, catchup=catchup,
                cap=self._max_tasks,
            )  # fmt: skip
            if found or older:
                log.info("catching up %s: %s: %d missed fire(s)%s (catchup=%s)",
                         job.phase.file_path, job.phase.task, len(found),
                         ", older ones skipped" if older else "", catchup)  # fmt: skip
            firings += [Firing(job=job, at=at) for at in found]
        return firings

    def fire(self, tx: Tx, firing: Firing, now: datetime, paused: Paused) -> list[TaskRecord]:
        """Record the tasks of one fire as `queued` (`held` while `paused` holds the phase)
        and move the phase's mark; returns the records that were new (an instant fired before
        makes none). `PhaseError` when the phase cannot make its tasks."""
        phase = firing.job.phase
        instant = rfc3339(firing.at)
        tx.set_mark(phase.file_path, phase.task, firing.at)
        try:
            tasks = cron_tasks(
                firing, new_id=self._new_id, created=now, meta_rows=self._meta_rows,
                max_tasks=self._max_tasks,
            )  # fmt: skip
        except (BatchError, TemplateError) as err:
            raise PhaseError(f"{phase.file_path}: {phase.task}: {err}") from None
        state, why = birth(paused, phase.file_path, phase.task, f"cron fire at {instant}")
        made = tx.add([
            NewRecord(
                task=task, workflow=phase.file_path, phase=phase.task, origin=Origin.CRON,
                origin_key=f"cron|{phase.file_path}|{phase.task}|{instant}|{item}", state=state,
            )
            for item, task in enumerate(tasks, 1)
        ], actor=ACTOR, reason=why)  # fmt: skip
        new = [record for record in made if record is not None]
        before = len(tasks) - len(new)
        log.info("fired %s: %s at %s: %d task(s)%s%s", phase.file_path, phase.task, instant,
                 len(new), " held (paused)" if state is State.HELD else "",
                 f" ({before} fired before)" if before else "")  # fmt: skip
        return new

    def _phase_ttl(self, phase: PhaseRecord) -> timedelta | None:
        if "ttl=" not in phase.rule:
            return None
        try:
            return ttl_of(parse_query(phase.rule), self._task_ttl)
        except PolicyRuleError:
            return None  # validation reports it


def _catchup(phase: PhaseRecord) -> str:
    try:
        return catchup_of(parse_query(phase.rule))
    except PolicyRuleError:
        return "latest"  # validation reports it; the phase's status keeps it from running
