"""What will fire: every cron and files phase with its previous and next fire time.

The one query behind `flowlord schedule` (and, later, the API's schedule): computed from the
cache with the scheduler's own rules, so it shows what `run` would do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from workflow import PhaseRecord
from workflow.query import parse_query
from workflow.schedule import cron_jobs, next_fire, previous_fire
from workflow.validate import status_has_error


@dataclass(frozen=True, slots=True, kw_only=True)
class Upcoming:
    """One phase that starts on its own: by `cron=` (with fire times) or by `files=`."""

    file: str
    task: str
    trigger: str
    previous: datetime | None = None
    next: datetime | None = None
    problem: str = ""


def upcoming(phases: Iterable[PhaseRecord], zone: tzinfo, now: datetime) -> list[Upcoming]:
    """Each cron or files phase (not those run by a parent), by file and file order.

    A phase `run` will not start says why in `problem` and has no fire times.
    """
    rows = []
    for phase in phases:
        rule = parse_query(phase.rule)
        triggers = [f"{key}={rule[key]}" for key in ("cron", "files") if key in rule]
        if phase.depends_on or not triggers:
            continue
        previous = following = None
        problem = f"will not run: {phase.status}" if status_has_error(phase.status) else ""
        jobs, problems = cron_jobs([phase])
        if problems:
            problem = problems[phase.task]
        elif jobs:
            previous = previous_fire(jobs[0].schedule, now, zone)
            following = next_fire(jobs[0].schedule, now, zone)
        rows.append(
            Upcoming(file=phase.file_path, task=phase.task, trigger=" ".join(triggers),
                     previous=previous, next=following, problem=problem)
        )  # fmt: skip
    return rows
