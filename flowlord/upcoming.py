"""What will fire: every cron and files phase with its previous and next fire time.

The one query behind `flowlord schedule` and the API's `/api/schedule` (and each phase's fire
times in `/api/phase`): computed from the cache with the scheduler's own rules, so it shows
what `run` would do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo

from cache import SQLiteCache
from workflow import PhaseRecord
from workflow.chains import ChainNode, Family
from workflow.query import parse_query
from workflow.schedule import cron_jobs, next_fire, previous_fire
from workflow.validate import BATCH_KEYS, status_has_error


@dataclass(frozen=True, slots=True, kw_only=True)
class Upcoming:
    """One phase that starts on its own: by `cron=` (with fire times) or by `files=`.

    `offset` is the rule's `offset=` (a task's time is its fire time plus it); `batch` is its
    batch rule (`for=-72h&by=day`, `meta=…`): each fire sends one task per item. `children`
    is its children chain, when asked for.
    """

    file: str
    task: str
    trigger: str
    topic: str = ""
    job: str = ""
    offset: str = ""
    batch: str = ""
    previous: datetime | None = None
    next: datetime | None = None
    problem: str = ""
    children: tuple[ChainNode, ...] = ()


def scheduled(
    cache: SQLiteCache, zone: tzinfo, now: datetime, *, children: bool = False
) -> list[Upcoming]:
    """Every phase of the cache that starts on its own, by file and file order; with its
    children chain when `children` (the phases of those files are read for it)."""
    rows = upcoming(cache.phases_to_schedule(), zone, now)
    if not children:
        return rows
    families = {key: Family(cache.phases(key)) for key in {row.file for row in rows}}
    return [replace(row, children=families[row.file].chain(row.task)) for row in rows]


def upcoming(phases: Iterable[PhaseRecord], zone: tzinfo, now: datetime) -> list[Upcoming]:
    """Each cron or files phase (not those run by a parent), by file and file order.

    A phase `run` will not start says why in `problem` and has no fire times.
    """
    return [row for phase in phases if (row := starts(phase, zone, now)) is not None]


def starts(phase: PhaseRecord, zone: tzinfo, now: datetime) -> Upcoming | None:
    """How `phase` starts on its own (its trigger and fire times around `now`), or None when
    only a parent starts it."""
    rule = parse_query(phase.rule)
    triggers = [f"{key}={rule[key]}" for key in ("cron", "files") if key in rule]
    if phase.depends_on or not triggers:
        return None
    previous = following = None
    problem = f"will not run: {phase.status}" if status_has_error(phase.status) else ""
    jobs, problems = cron_jobs([phase])
    if problems:
        problem = problems[phase.task]
    elif jobs:
        previous = previous_fire(jobs[0].schedule, now, zone)
        following = next_fire(jobs[0].schedule, now, zone)
    batch = "&".join(f"{key}={rule[key]}" for key in BATCH_KEYS if key in rule)
    return Upcoming(file=phase.file_path, task=phase.task, topic=phase.topic, job=phase.job,
                    trigger=" ".join(triggers), offset=rule.get("offset", ""),
                    batch=batch, previous=previous, next=following, problem=problem)  # fmt: skip
