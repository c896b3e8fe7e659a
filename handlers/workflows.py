"""Workflow files, phases, their schedule and children chains (DESIGN §6).

Each route reads through the functions `flowlord phases` and `flowlord schedule` use
(`flowlord.listing`, `flowlord.upcoming`) and only translates their values. Times are RFC 3339
in UTC, or null.

`/api/schedule` is the Go flowlord's `/info` as a list: its `workflow[file][task]` entries
become items with `file` and `task`; `Next`/`Prev` are `next`/`previous`; `Schedule`
(`<cron>?offset=<d>`, or the files glob) is `trigger`, `offset` and `batch`; `warning` is
`problem`; `Child` (strings `a ➞ b`, which lose the branching) is `children`, a tree. It also
lists what `/info` missed: cron phases with batch rules, and descendants reached through a
job-qualified `dependsOn` (`topic:job`). Its entries for phases that start on nothing (an
unknown parent) are left to `/api/phases?status=error`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from flowlord.listing import (
    WorkflowSummary,
    load_failures,
    phase_detail,
    phase_switches,
    workflow_detail,
    workflow_summaries,
)
from flowlord.upcoming import Upcoming, scheduled
from handlers.context import Ctx
from handlers.errors import ERROR_RESPONSES, not_found
from handlers.keys import checked_key
from handlers.responses import model_json, plain_json
from workflow import PhaseRecord
from workflow.chains import ChainNode
from workflow.controls import Control
from workflow.task import rfc3339

router = APIRouter(tags=["workflows"])

Time = Annotated[str | None, Field(description="RFC 3339, UTC; null when there is none")]


class PhaseKey(BaseModel):
    """Which phase: its file, its stored task (`topic` or `topic:job`) and their parts."""

    file: str
    task: str
    topic: str
    job: str


class PhaseItem(PhaseKey):
    """One phase as stored, with its validation status ("" when fine) and its own switch
    (`enabled` and `reason` are null when the phase was never paused or resumed by itself)."""

    depends_on: str
    rule: str
    template: str
    retry: int
    status: str
    enabled: bool | None = None
    reason: str | None = None


class FileFields(BaseModel):
    """What a workflow file is: its last good hash, when that loaded, why its current bytes
    fail ("" when they load), how many of its phases have errors and warnings, and its
    whole-file switch (`enabled` true when never paused)."""

    file: str
    hash: str
    loaded_at: Time
    error: str
    errors: int
    warnings: int
    enabled: bool
    reason: str


class WorkflowItem(FileFields):
    phases: int = Field(description="how many phases the file has")


class WorkflowList(BaseModel):
    workflows: list[WorkflowItem]


class WorkflowOut(FileFields):
    phases: list[PhaseItem] = Field(description="in file order")


class PhaseList(BaseModel):
    phases: list[PhaseItem]


class Child(BaseModel):
    """A descendant: a phase started, directly or not, when its ancestor completes.
    `cycle`: already on the path above (not expanded again); `truncated`: it has children
    that the depth or size bound left out."""

    task: str
    children: list[Child] = Field(default_factory=list)
    cycle: bool = False
    truncated: bool = False


class Starts(BaseModel):
    """How a phase starts on its own: its `cron=`/`files=` trigger, its `offset=`, its batch
    rule (each fire sends a task per item), its fire times, and why `run` will not start it
    ("" when it will). All empty for a phase only a parent starts."""

    trigger: str = ""
    offset: str = ""
    batch: str = ""
    previous: Time = None
    next: Time = None
    problem: str = ""


class PhaseOut(Starts, PhaseItem):
    parents: list[PhaseItem] = Field(description="the phases whose completion starts it")
    children: list[Child]


class ScheduleItem(Starts, PhaseKey):
    children: list[Child]


class ScheduleOut(BaseModel):
    timezone: str = Field(description="the time zone cron rules are read in")
    phases: list[ScheduleItem]
    errors: dict[str, str] = Field(description="files (or folders) that do not load, and why")


@router.get("/api/workflows", response_model=WorkflowList, responses=ERROR_RESPONSES)
def list_workflows(ctx: Ctx) -> Response:
    """Every workflow file, loaded or failing, by key."""
    summaries = workflow_summaries(ctx.cache, ctx.store.controls())
    return model_json(WorkflowList(workflows=[_workflow_item(s) for s in summaries]))


@router.get("/api/workflows/{file:path}", response_model=WorkflowOut, responses=ERROR_RESPONSES)
def get_workflow(file: str, ctx: Ctx) -> WorkflowOut:
    """One workflow file with its phases; 400 for a malformed key, 404 for an unknown one."""
    detail = workflow_detail(ctx.cache, ctx.store.controls(), checked_key(ctx, file))
    if detail is None:
        raise not_found(f"workflow {file!r}", field="file")
    item = _workflow_item(detail.summary)
    phases = [_phase_item(p, detail.switches.get(p.task)) for p in detail.phases]
    return WorkflowOut(**item.model_dump(exclude={"phases"}), phases=phases)


@router.get("/api/phases", response_model=PhaseList, responses=ERROR_RESPONSES)
def list_phases(
    ctx: Ctx,
    file: str = "",
    topic: str = "",
    status: Annotated[str, Query(description="`error`, `warning`, `ok` or a substring")] = "",
    depends_on: str = "",
) -> Response:
    """Phases by file and file order, as `flowlord phases` lists them; an empty parameter
    does not filter."""
    records = ctx.cache.phases(
        checked_key(ctx, file) if file else None,
        topic=topic or None, depends_on=depends_on or None, status=status or None,
    )  # fmt: skip
    switches = phase_switches(ctx.store.controls())
    items = [_phase_fields(p, switches.get((p.file_path, p.task))) for p in records]
    return plain_json({"phases": items})


@router.get("/api/phase", response_model=PhaseOut, responses=ERROR_RESPONSES)
def get_phase(
    ctx: Ctx,
    file: Annotated[str, Query(min_length=1)],
    task: Annotated[str, Query(min_length=1)],
) -> PhaseOut:
    """One phase, the phases it depends on, its children chain, and its fire times."""
    key = checked_key(ctx, file)
    found = phase_detail(ctx.cache, ctx.store.controls(), key=key, task=task, zone=ctx.zone,
                         now=ctx.now())  # fmt: skip
    if found is None:
        if ctx.cache.workflow_file(key) is None:
            raise not_found(f"workflow {file!r}", field="file")
        raise not_found(f"phase {task!r} of {file!r}", field="task")
    starts = _starts(found.starts) if found.starts else Starts()
    switches = found.switches
    return PhaseOut(
        **_phase_item(found.phase, switches.get(task)).model_dump(), **starts.model_dump(),
        parents=[_phase_item(p, switches.get(p.task)) for p in found.parents],
        children=_children(found.children),
    )  # fmt: skip


@router.get("/api/schedule", response_model=ScheduleOut, responses=ERROR_RESPONSES)
def get_schedule(ctx: Ctx) -> Response:
    """Every cron and files phase, by file and file order: its fire times around now, its
    problem if `run` will not start it, and every phase it starts (the Go `/info`)."""
    rows = scheduled(ctx.cache, ctx.zone, ctx.now(), children=True)
    items = [
        ScheduleItem(**_starts(row).model_dump(), file=row.file, task=row.task,
                     topic=row.topic, job=row.job, children=_children(row.children))
        for row in rows
    ]  # fmt: skip
    errors = load_failures(ctx.cache, {})
    return model_json(ScheduleOut(timezone=ctx.timezone, phases=items, errors=errors))


def _workflow_item(summary: WorkflowSummary) -> WorkflowItem:
    f, control = summary.file, summary.control
    return WorkflowItem(
        file=f.file_path, hash=f.file_hash, loaded_at=_time(f.loaded_at), error=f.error,
        phases=summary.phases, errors=summary.errors, warnings=summary.warnings,
        enabled=control is None or control.enabled, reason=control.reason if control else "",
    )  # fmt: skip


def _phase_item(phase: PhaseRecord, switch: Control | None) -> PhaseItem:
    return PhaseItem(**_phase_fields(phase, switch))


def _phase_fields(phase: PhaseRecord, switch: Control | None) -> dict[str, object]:
    """A `PhaseItem` as plain values: a list of 10,000 is written without 10,000 models."""
    return {
        "file": phase.file_path, "task": phase.task, "topic": phase.topic, "job": phase.job,
        "depends_on": phase.depends_on, "rule": phase.rule, "template": phase.template,
        "retry": phase.retry, "status": phase.status,
        "enabled": switch.enabled if switch else None,
        "reason": switch.reason if switch else None,
    }  # fmt: skip


def _starts(row: Upcoming) -> Starts:
    return Starts(
        trigger=row.trigger, offset=row.offset, batch=row.batch, problem=row.problem,
        previous=_time(row.previous), next=_time(row.next),
    )  # fmt: skip


def _children(nodes: tuple[ChainNode, ...]) -> list[Child]:
    return [
        Child(task=n.task, children=_children(n.children), cycle=n.cycle, truncated=n.truncated)
        for n in nodes
    ]


def _time(when: datetime | None) -> str | None:
    """RFC 3339 in UTC (a naive time is taken as UTC)."""
    if when is None:
        return None
    return rfc3339(when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC))
