"""Backloads (DESIGN §6, `POST /api/backload`): a plan of one phase's tasks over a time range,
shown (a dry run) or recorded.

Executing records every task in one transaction as a record of origin `backload`: `queued`,
or `held` while its workflow or phase is paused. The leader's outbox sends queued records, as
it sends a manual retry; whoever records a backload (an API of a standby, say) never sends on
the bus itself, so a backload is sent once, by the one process that sends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from cache import SQLiteCache
from flowlord.files import MetaFiles
from flowlord.holding import birth
from flowlord.state import NewRecord, TaskRecord, TaskStore
from workflow.backload import Plan, Request, plan
from workflow.phase import Phase
from workflow.state import Origin, State
from workflow.task import Task


@dataclass(frozen=True, slots=True, kw_only=True)
class Backloaded:
    """What a backload did: its plan, and the records it made (none on a dry run). `held`
    says why its tasks are (or would be) held, "" when they are not."""

    plan: Plan
    executed: bool
    records: tuple[TaskRecord, ...] = ()
    held: str = ""

    @property
    def tasks(self) -> tuple[Task, ...]:
        """The tasks: as recorded once executed, else as planned."""
        return tuple(r.task() for r in self.records) if self.executed else self.plan.tasks

    @property
    def status(self) -> str:
        """The Go flowlord's status text: what was done, then what was assumed."""
        prefix = "Executed: " if self.executed else "DRY RUN ONLY: "
        held = ("would be " if not self.executed else "") + self.held if self.held else ""
        return prefix + ", ".join(note for note in (self.plan.status, held) if note)


def backload(
    request: Request,
    *,
    cache: SQLiteCache,
    store: TaskStore,
    folder: os.PathLike[str] | str,
    now: datetime,
    zone: tzinfo,
    max_tasks: int,
    actor: str,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> Backloaded:
    """Plan `request` against the loaded workflows; record it when `request.execute`.

    Meta-files are read from `folder` (the workflow folder) as a rule's are. Raises
    `workflow.backload.BackloadError` naming the request field at fault; then nothing is
    written.
    """
    workflow, phase = _find(cache, request)
    planned = plan(
        request, workflow=workflow, phase=phase, now=now, zone=zone, max_tasks=max_tasks,
        meta_rows=MetaFiles(folder).rows, new_id=new_id,
    )  # fmt: skip
    reason = f"backload by {actor}" if actor else "backload"
    if not request.execute:
        state, why = birth(store.paused(), planned.workflow, planned.phase, reason)
        return Backloaded(plan=planned, executed=False, held=_held(state, why, reason))
    key = f"backload|{new_id()}"
    with store.transaction() as tx:
        state, why = birth(store.paused(), planned.workflow, planned.phase, reason)
        made = tx.add(
            [
                NewRecord(
                    task=task,
                    workflow=planned.workflow,
                    phase=planned.phase,
                    origin=Origin.BACKLOAD,
                    origin_key=f"{key}|{item}",
                    state=state,
                )
                for item, task in enumerate(planned.tasks, 1)
            ],
            actor=actor or "api",
            reason=why,
        )
    records = tuple(record for record in made if record is not None)
    return Backloaded(plan=planned, executed=True, records=records, held=_held(state, why, reason))


def _find(cache: SQLiteCache, request: Request) -> tuple[str, Phase]:
    """The phase to backload, as the Go flowlord finds it (`search`: the first by file key,
    then file order), or in the file `request.workflow` names; `("", Phase())` if none."""
    topic, job = request.target()
    if not request.workflow:
        return cache.search(topic, job)
    for phase in cache.phases(request.workflow, topic=topic):
        if not job or phase.job == job:
            return request.workflow, phase
    return "", Phase()


def _held(state: State, why: str, reason: str) -> str:
    return why.removeprefix(f"{reason}; ") if state is State.HELD else ""
